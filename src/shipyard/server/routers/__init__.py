"""One router per capability: experiments, runs, artifacts, blobs, datasets (and contracts), audit,
models (registry and governance), deployments, pipeline schedules, and admin (health, info,
maintenance)."""

from shipyard.server.routers import (
    admin,
    artifacts,
    audit,
    blobs,
    datasets,
    deployments,
    experiments,
    models,
    runs,
    schedules,
)

__all__ = [
    "admin",
    "artifacts",
    "audit",
    "blobs",
    "datasets",
    "deployments",
    "experiments",
    "models",
    "runs",
    "schedules",
]
