"""Artifacts of a run: record and list the path → digest mapping; download one by its logical path."""

from __future__ import annotations

import mimetypes
import posixpath
from collections.abc import Iterator
from urllib.parse import quote

from fastapi import APIRouter, Response, status
from fastapi.responses import StreamingResponse

from shipyard.entities import Artifact, clean_artifact_path
from shipyard.errors import ArtifactNotFound
from shipyard.server.errors import ERROR_RESPONSES
from shipyard.server.schemas import ArtifactList, ArtifactOut, ArtifactsIn
from shipyard.server.state import Blobs, StoreDep

__all__ = ["router", "verified_stream"]

router = APIRouter(prefix="/api/v1/runs", tags=["artifacts"], responses=ERROR_RESPONSES)


@router.post("/{run_id}/artifacts", status_code=status.HTTP_204_NO_CONTENT)
def record_artifacts(run_id: str, body: ArtifactsIn, store: StoreDep) -> Response:
    """Record (or overwrite) path → digest rows; upload the blobs first with ``PUT /api/v1/blobs/…``."""
    artifacts = [Artifact(a.path, a.digest, a.size, a.created_at) for a in body.artifacts]
    for artifact in artifacts:
        clean_artifact_path(artifact.path)  # 400 unsafe_path before anything is written
    store.record_artifacts(run_id, artifacts)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{run_id}/artifacts")
def list_artifacts(run_id: str, store: StoreDep, prefix: str = "") -> ArtifactList:
    """The run's artifacts under ``prefix`` (a file path or a directory), sorted by path."""
    return ArtifactList(artifacts=[ArtifactOut.of(a) for a in store.list_artifacts(run_id, prefix)])


@router.get(
    "/{run_id}/artifacts/{path:path}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The verified bytes"}},
)
def download_artifact(run_id: str, path: str, store: StoreDep, blobs: Blobs) -> StreamingResponse:
    """The bytes of one artifact, verified against its digest as they stream."""
    clean = clean_artifact_path(path)
    found = next((a for a in store.list_artifacts(run_id, clean) if a.path == clean), None)
    if found is None:
        raise ArtifactNotFound(
            f"Run '{run_id}' has no artifact '{clean}' (list them: GET /api/v1/runs/{run_id}/artifacts)"
        )
    media_type = mimetypes.guess_type(clean)[0] or "application/octet-stream"
    headers = {
        "Content-Length": str(found.size),
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(posixpath.basename(clean))}",
        "ETag": f'"{found.digest}"',
        "X-Shipyard-Digest": found.digest,
    }
    return StreamingResponse(
        verified_stream(blobs.iter_chunks(found.digest)), media_type=media_type, headers=headers
    )


def verified_stream(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Start a verified blob stream before the answer's headers go out.

    The first chunk is read (so a missing blob is a clean 404), and when the blob
    fits in one chunk the digest check also runs before the status line is sent.
    A larger blob that turns out corrupt aborts the connection mid-body, which
    clients see as a truncated transfer (the REST client also verifies digests).

    Example:
        >>> list(verified_stream(iter([b"a", b"b"])))
        [b'a', b'b']
    """
    first = next(chunks, None)
    second = next(chunks, None) if first is not None else None
    return _chain(first, second, chunks)


def _chain(first: bytes | None, second: bytes | None, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first is not None:
        yield first
    if second is not None:
        yield second
        yield from rest
