"""Health, server info and maintenance (garbage collection, purge, digest and run-id listings).

The maintenance routes (``/api/v1/admin/*``) answer only to loopback clients unless the server
runs with ``--allow-remote-admin`` (``shipyard.server.guards``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from shipyard import __version__
from shipyard.server.errors import ERROR_RESPONSES
from shipyard.server.guards import AdminOnly
from shipyard.server.schemas import DigestsIn, DigestsOut, GcIn, GcOut, HealthOut, InfoOut, PurgeIn, PurgeOut
from shipyard.server.state import StateDep, StoreDep, redact_uri
from shipyard.store import Store
from shipyard.tracking.maintenance import collect_garbage

__all__ = ["health_router", "router"]

health_router = APIRouter(tags=["admin"], responses=ERROR_RESPONSES)
router = APIRouter(prefix="/api/v1", tags=["admin"], responses=ERROR_RESPONSES)


@health_router.get("/health")
def health(store: StoreDep) -> HealthOut:
    """200 ``{"status": "ok"}`` when the metadata store answers; 503 ``store_unavailable`` otherwise."""
    store.schema_version()
    return HealthOut()


@router.get("/info")
def info(state: StateDep) -> InfoOut:
    """Versions and the stores this server uses (passwords redacted)."""
    return InfoOut(
        shipyard_version=__version__,
        schema_version=state.store.schema_version(),
        tracking_uri=redact_uri(state.settings.tracking_uri),
        artifact_uri=redact_uri(state.settings.artifact_uri),
        max_request_bytes=state.settings.max_request_bytes,
    )


@router.post("/admin/gc", dependencies=[AdminOnly])
def gc(body: GcIn, state: StateDep) -> GcOut:
    """Purge deleted runs, then delete blobs no run refers to that are older than ``grace_seconds``."""
    report = collect_garbage(state.store, state.blobs, body.grace_seconds, body.batch_size)
    return GcOut(**report.to_dict())


@router.post("/admin/purge", dependencies=[AdminOnly])
def purge(body: PurgeIn, store: StoreDep) -> PurgeOut:
    """Remove deleted runs for good (blobs are left to gc)."""
    return PurgeOut(runs_purged=store.purge_deleted_runs(batch_size=body.batch_size))


@router.post("/admin/referenced-digests", dependencies=[AdminOnly])
def referenced_digests(body: DigestsIn, store: StoreDep) -> DigestsOut:
    """Which of ``digests`` some artifact row refers to."""
    return DigestsOut(digests=sorted(store.referenced_digests(body.digests)))


@router.get(
    "/admin/run-ids",
    dependencies=[AdminOnly],
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": '{"run_ids": [...]} per line'}},
)
def run_ids(store: StoreDep, batch_size: int = Query(default=1000, ge=1, le=10_000)) -> StreamingResponse:
    """Every run id (deleted ones too), in pages of ``batch_size``: one JSON line per page.

    The server reads one page at a time from the store, so memory stays bounded.
    """
    return StreamingResponse(_pages(store, batch_size), media_type="application/x-ndjson")


def _pages(store: Store, batch_size: int) -> Iterator[bytes]:
    for ids in store.iter_run_ids(batch_size=batch_size):
        yield json.dumps({"run_ids": ids}).encode() + b"\n"
