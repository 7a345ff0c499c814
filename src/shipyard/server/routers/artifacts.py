"""Artifacts of a run: record and list the path → digest mapping; download one by its logical path."""

from __future__ import annotations

import mimetypes
import posixpath
from collections.abc import Iterator, Sequence
from urllib.parse import quote

from fastapi import APIRouter, Response, status
from fastapi.responses import StreamingResponse

from shipyard.artifacts import FsspecBlobStore
from shipyard.artifacts.blobs import check_digest
from shipyard.entities import Artifact, clean_artifact_path
from shipyard.errors import ArtifactNotFound, BlobNotFound
from shipyard.server.errors import ERROR_RESPONSES
from shipyard.server.schemas import ArtifactList, ArtifactOut, ArtifactsIn
from shipyard.server.state import Blobs, StoreDep
from shipyard.wire.handlers import ClientFault

__all__ = ["router", "stored_files", "verified_stream"]

router = APIRouter(prefix="/api/v1/runs", tags=["artifacts"], responses=ERROR_RESPONSES)


@router.post("/{run_id}/artifacts", status_code=status.HTTP_204_NO_CONTENT)
def record_artifacts(run_id: str, body: ArtifactsIn, store: StoreDep, blobs: Blobs) -> Response:
    """Record (or overwrite) path → digest rows; upload the blobs first with ``PUT /api/v1/blobs/…``.

    400 ``unsafe_path`` for a path that is not a safe relative path, 400 ``blob_not_found`` for a
    digest never uploaded: a record must never point at bytes the server does not hold.
    """
    artifacts = [Artifact(a.path, a.digest, a.size, a.created_at) for a in body.artifacts]
    store.record_artifacts(run_id, stored_files(artifacts, blobs, f"run '{run_id}'"))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def stored_files(files: Sequence[Artifact], blobs: FsspecBlobStore, owner: str) -> list[Artifact]:
    """``files`` with clean relative paths, after checking each blob was uploaded (400 otherwise).

    Used for run artifacts and model files alike, before anything is written.

    Example:
        >>> stored_files([Artifact("../x", "ab" * 32, 1)], blobs, "run 'r1'")  # doctest: +SKIP
        Traceback (most recent call last):
        UnsafePath: Artifact path '../x' escapes the run's artifact root
    """
    clean = [
        Artifact(clean_artifact_path(f.path), check_digest(f.digest), f.size, f.created_at) for f in files
    ]
    for f in clean:
        if not blobs.exists(f.digest):
            missing = BlobNotFound(
                f"File '{f.path}' of {owner} refers to blob {f.digest}, which was never uploaded to "
                f"{blobs.url}: upload it first (PUT /api/v1/blobs/{f.digest}); nothing was recorded",
                details={"path": f.path, "digest": f.digest},
            )
            raise ClientFault(missing, status.HTTP_400_BAD_REQUEST)
    return clean


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
