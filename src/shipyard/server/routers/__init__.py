"""One router per capability: auth (users, tokens, grants, sign-in), experiments,
runs, artifacts, blobs, datasets (and contracts), audit,
models (registry and governance), deployments, pipeline schedules, monitoring reports, and admin
(health, info, maintenance)."""

from shipyard.server.routers import (
    admin,
    artifacts,
    audit,
    auth,
    blobs,
    datasets,
    deployments,
    experiments,
    models,
    monitoring,
    runs,
    schedules,
)

__all__ = [
    "admin",
    "artifacts",
    "audit",
    "auth",
    "blobs",
    "datasets",
    "deployments",
    "experiments",
    "models",
    "monitoring",
    "runs",
    "schedules",
]
