"""One router per capability: experiments, runs, artifacts, blobs, admin (health, info, gc)."""

from shipyard.server.routers import admin, artifacts, blobs, experiments, runs

__all__ = ["admin", "artifacts", "blobs", "experiments", "runs"]
