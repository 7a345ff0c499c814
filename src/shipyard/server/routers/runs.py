"""Runs: create (idempotent), get, update, log batches, metric history, search, delete and restore."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response, status

from shipyard.artifacts import FsspecBlobStore
from shipyard.entities import Artifact, LogBatch, RunCreate
from shipyard.server.access import actor_for, author_for
from shipyard.server.errors import ERROR_RESPONSES
from shipyard.server.routers.artifacts import stored_files
from shipyard.server.schemas import (
    ArtifactIn,
    CountOut,
    LogBatchIn,
    MetricHistoryOut,
    RunCreateIn,
    RunDeletionIn,
    RunIdsIn,
    RunIdsOut,
    RunOut,
    RunPageOut,
    RunRecordIn,
    RunUpdateIn,
    SearchRunsIn,
)
from shipyard.server.state import Blobs, StoreDep
from shipyard.store import Store

__all__ = ["record", "router"]

router = APIRouter(prefix="/api/v1/runs", tags=["runs"], responses=ERROR_RESPONSES)


def _end_parts(
    batch_in: LogBatchIn | None, artifacts_in: list[ArtifactIn], blobs: FsspecBlobStore, run_id: str
) -> tuple[LogBatch | None, list[Artifact]]:
    """The last batch and the artifact records an end of a run carries (blobs checked as stored)."""
    batch = None
    if batch_in is not None:
        b = batch_in
        batch = LogBatch(metrics=b.metrics.rows(), params=b.params, tags=b.tags, batch_id=b.batch_id)
    artifacts: list[Artifact] = []
    if artifacts_in:
        files = [Artifact(a.path, a.digest, a.size, a.created_at) for a in artifacts_in]
        artifacts = stored_files(files, blobs, f"run '{run_id}'")
    return batch, artifacts


@router.post("")
def create_run(body: RunCreateIn, store: StoreDep, request: Request) -> RunOut:
    """Create a run with its first params and tags; an existing ``run_id`` returns that run unchanged.

    That makes the call safe to retry (the REST client replays it from its offline spool).
    """
    spec = RunCreate(**{**body.model_dump(), "user": author_for(request, body.user)})
    return RunOut.of(store.create_run(spec))


@router.post("/record", status_code=status.HTTP_204_NO_CONTENT)
def record_run(body: RunRecordIn, store: StoreDep, blobs: Blobs, request: Request) -> Response:
    """Create an ended run with its params, tags, last batch and artifacts in one transaction.

    One request for a whole short run (the SDK sends it when a run ends before its start was
    sent). ``status`` must be an end status. A ``run_id`` that exists already is left unchanged, so a
    retry is a no-op; an artifact whose blob was never uploaded is refused (400 ``blob_not_found``).
    """
    record(body, store, blobs, author_for(request, body.user))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def record(body: RunRecordIn, store: Store, blobs: FsspecBlobStore, author: str) -> None:
    """What ``POST /runs/record`` does, for the route and for ``shipyard.server.lanes.RecordLane``."""
    fields = body.model_dump(include=_CREATE_FIELDS)
    spec = RunCreate(**{**fields, "user": author})
    batch, artifacts = _end_parts(body.batch, body.artifacts, blobs, body.run_id)
    store.log_run(spec, status=body.status, end_time=body.end_time, batch=batch, artifacts=artifacts)


_CREATE_FIELDS = set(RunCreateIn.model_fields)


@router.post("/search", response_model=RunPageOut)
def search_runs(body: SearchRunsIn, store: StoreDep) -> Response:
    """Runs matching ``filter`` ordered by ``order_by``; pass ``next_page_token`` back for the next page.
    ``view`` lists the ``active`` runs (the default), the ``deleted`` ones not purged yet, or ``all``."""
    page = store.search_runs(
        experiment_ids=body.experiment_ids,
        filter=body.filter,
        order_by=body.order_by,
        limit=body.limit,
        page_token=body.page_token,
        columns=body.columns,
        view=body.view,
    )
    return Response(RunPageOut.json_of(page.runs, page.next_page_token), media_type="application/json")


@router.post("/heartbeat", status_code=status.HTTP_204_NO_CONTENT)
def heartbeat(body: RunIdsIn, store: StoreDep) -> Response:
    """The processes of these runs are alive (live runs send this every ``run_heartbeat_timeout / 5`` s)."""
    store.heartbeat(body.run_ids)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/expire-stale")
def expire_stale_runs(store: StoreDep) -> RunIdsOut:
    """Mark ``killed`` the running runs whose heartbeat is older than this server's timeout."""
    return RunIdsOut(run_ids=store.expire_stale_runs())


@router.post("/delete")
def delete_runs(body: RunDeletionIn, store: StoreDep, request: Request) -> CountOut:
    """Mark runs deleted (hidden from search, purged by gc); all-or-nothing on unknown ids; audited."""
    actor = actor_for(request, body.actor, required=False)
    return CountOut(count=store.delete_runs(body.run_ids, actor, body.reason))


@router.post("/restore")
def restore_runs(body: RunDeletionIn, store: StoreDep, request: Request) -> CountOut:
    """Undo :func:`delete_runs` for runs not purged yet; audited."""
    actor = actor_for(request, body.actor, required=False)
    return CountOut(count=store.restore_runs(body.run_ids, actor, body.reason))


@router.get("/{run_id}")
def get_run(run_id: str, store: StoreDep) -> RunOut:
    """One run with its params, latest metrics and tags."""
    return RunOut.of(store.get_run(run_id))


@router.patch("/{run_id}", status_code=status.HTTP_204_NO_CONTENT)
def update_run(run_id: str, body: RunUpdateIn, store: StoreDep, blobs: Blobs) -> Response:
    """Set the status (and ``end_time`` for a terminal status; the server's clock when omitted).

    The end of a run can carry its last ``batch`` and its ``artifacts``: written with the status in one
    transaction, so a client ends a run in one request. A repeated ``batch_id`` is skipped (safe to
    retry); an artifact whose blob was never uploaded is refused (400 ``blob_not_found``) before
    anything is written.
    """
    batch, artifacts = _end_parts(body.batch, body.artifacts, blobs, run_id)
    store.update_run(
        run_id,
        status=body.status,
        end_time=body.end_time,
        final_batch=batch,
        compact=body.compact,
        artifacts=artifacts,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{run_id}/batch", status_code=status.HTTP_204_NO_CONTENT)
def log_batch(run_id: str, body: LogBatchIn, store: StoreDep) -> Response:
    """Write params, tags and metric points in one transaction; a repeated ``batch_id`` is a no-op."""
    batch = LogBatch(metrics=body.metrics.rows(), params=body.params, tags=body.tags, batch_id=body.batch_id)
    store.log_batch(run_id, batch)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{run_id}/metrics/history")
def get_metric_history(
    run_id: str, store: StoreDep, key: str = Query(min_length=1, max_length=255)
) -> MetricHistoryOut:
    """Every point of one metric, ordered by (step, timestamp), in columns."""
    return MetricHistoryOut.of(store.get_metric_history(run_id, key))
