"""MLflow's artifact proxy (``/api/2.0/mlflow-artifacts/artifacts/...``) over Shipyard's
content-addressed blob store.

Every run's ``artifact_uri`` is ``mlflow-artifacts:/<experiment_id>/<run_id>/artifacts``, so MLflow's
client uploads a run's files here (``PUT``), reads them back (``GET``) and lists a folder (``GET
...?path=``). An upload is streamed into the blob store (hashed as it arrives, stored once per
content) and recorded as the run's artifact at its path, exactly as Shipyard's SDK records one: the
same files show in ``shipyard runs``, the web UI and ``Client.list_artifacts``. A logged model's
``artifact_uri`` is a folder of its run's artifacts (``.../artifacts/models/<model_id>``), so its
files arrive the same way. Paths outside a run's artifacts are refused with
``INVALID_PARAMETER_VALUE``.
"""

from __future__ import annotations

import io
import mimetypes
import posixpath
import re
from collections.abc import Sequence
from urllib.parse import quote

import anyio.to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from shipyard.entities import Artifact, Run, clean_artifact_path, now_ms
from shipyard.errors import ArtifactNotFound, InvalidInput
from shipyard.server.access import require_grant
from shipyard.server.mlflow.wire import ERROR_RESPONSES, MlflowApiError, MlflowRoute, json_answer
from shipyard.server.routers.artifacts import verified_stream
from shipyard.server.routers.blobs import BodyReader
from shipyard.server.state import Blobs, StoreDep
from shipyard.store import Store

__all__ = ["directory", "router"]

router = APIRouter(route_class=MlflowRoute, tags=["mlflow"], responses=ERROR_RESPONSES)

_RUN_PATH = re.compile(r"(\d{1,10})/([0-9A-Za-z_\-]{1,64})/artifacts(?:/(.*))?", re.DOTALL)


def directory(files: Sequence[Artifact], folder: str) -> list[tuple[str, bool, int | None]]:
    """The entries directly in ``folder`` of a run's files: (name, is a folder, size of a file).
    A file itself lists as nothing, as in MLflow.

    Example:
        >>> directory([Artifact("a/b.txt", "0" * 64, 3), Artifact("c.txt", "0" * 64, 5)], "")
        [('a', True, None), ('c.txt', False, 5)]
    """
    base = f"{folder.rstrip('/')}/" if folder else ""
    entries: dict[str, tuple[bool, int | None]] = {}
    for f in files:
        if not f.path.startswith(base) or f.path == folder:
            continue
        head, sep, _rest = f.path[len(base) :].partition("/")
        entries[head] = (True, None) if sep else entries.get(head, (False, f.size))
    return [(name, is_dir, size) for name, (is_dir, size) in sorted(entries.items())]


def _run_path(path: str) -> tuple[int, str, str]:
    """``<experiment_id>/<run_id>/artifacts[/<path>]`` as (experiment id, run id, clean path)."""
    found = _RUN_PATH.fullmatch(path)
    if found is None:
        raise MlflowApiError(
            f"'{path[:200]}' is not a run's artifact path on Shipyard: it keeps the artifacts of runs, "
            "at <experiment_id>/<run_id>/artifacts/<path> (the run's artifact_uri)"
        )
    rest = found.group(3) or ""
    return int(found.group(1)), found.group(2), clean_artifact_path(rest) if rest else ""


def _run(store: Store, experiment_id: int, run_id: str) -> Run:
    run = store.get_run(run_id)
    if run.experiment_id != experiment_id:
        raise ArtifactNotFound(
            f"Run '{run_id}' is in experiment {run.experiment_id}, not {experiment_id}; use the run's "
            f"artifact_uri (mlflow-artifacts:/{run.experiment_id}/{run_id}/artifacts)"
        )
    return run


def _writable_run(store: Store, request: Request, experiment_id: int, run_id: str) -> Run:
    run = _run(store, experiment_id, run_id)
    if run.deleted:
        raise MlflowApiError(f"The run {run_id} must be in the 'active' state. Current state is deleted.")
    require_grant(request, store, "experiment", str(run.experiment_id))
    return run


@router.put("/artifacts/{path:path}")
async def upload_artifact(path: str, request: Request, store: StoreDep, blobs: Blobs) -> Response:
    """Store the body as the run's artifact at ``path`` (streamed into the blob store, then recorded)."""
    experiment_id, run_id, rel = _run_path(path)
    if not rel:
        raise MlflowApiError("Upload to a file path under the run's artifacts, e.g. .../artifacts/model.pkl")
    await anyio.to_thread.run_sync(_writable_run, store, request, experiment_id, run_id)
    reader = io.BufferedReader(BodyReader(request.stream()), 1 << 20)
    try:
        digest, size = await anyio.to_thread.run_sync(blobs.put_stream, reader)
    except ClientDisconnect:
        raise InvalidInput(f"Client disconnected while uploading {rel!r} of run {run_id}") from None
    artifact = Artifact(rel, digest, size, now_ms())
    await anyio.to_thread.run_sync(store.record_artifacts, run_id, [artifact])
    return json_answer({})


@router.get(
    "/artifacts/{path:path}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The verified bytes"}},
)
def download_artifact(path: str, store: StoreDep, blobs: Blobs) -> StreamingResponse:
    """The bytes of a run's artifact, verified against their digest as they stream."""
    experiment_id, run_id, rel = _run_path(path)
    _run(store, experiment_id, run_id)
    found = next((a for a in store.list_artifacts(run_id, rel) if a.path == rel), None) if rel else None
    if found is None:
        raise ArtifactNotFound(f"Run '{run_id}' has no artifact '{rel}'")
    headers = {
        "Content-Length": str(found.size),
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(posixpath.basename(rel))}",
        "ETag": f'"{found.digest}"',
    }
    media_type = mimetypes.guess_type(rel)[0] or "application/octet-stream"
    return StreamingResponse(
        verified_stream(blobs.iter_chunks(found.digest)), media_type=media_type, headers=headers
    )


@router.get("/artifacts")
def list_artifacts(store: StoreDep, path: str | None = None) -> Response:
    """The entries of one folder of a run's artifacts (names relative to it), as MLflow lists them."""
    if not path:
        return json_answer({})
    experiment_id, run_id, rel = _run_path(path.strip("/"))
    _run(store, experiment_id, run_id)
    files = [
        {"path": name, "is_dir": is_dir, "file_size": size}
        for name, is_dir, size in directory(store.list_artifacts(run_id, rel), rel)
    ]
    return json_answer({"files": files})
