"""Blobs by BLAKE3 digest: ``HEAD`` (exists?), ``GET`` (verified bytes), ``PUT`` (streamed upload),
``DELETE`` (only blobs nothing refers to) and a paged listing, so ``RestBlobStore`` is a whole
``BlobStore`` and garbage collection (``collect_garbage``) runs the same against a server.
The ``DELETE`` routes are admin routes: loopback clients only, unless ``--allow-remote-admin``."""

from __future__ import annotations

import io
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator

import anyio
import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from shipyard.artifacts import BlobStore
from shipyard.artifacts.blobs import check_digest
from shipyard.errors import BlobNotFound, DigestMismatch, InvalidInput, InvalidState
from shipyard.server.errors import ERROR_RESPONSES
from shipyard.server.guards import AdminOnly
from shipyard.server.routers.artifacts import verified_stream
from shipyard.server.schemas import BlobOut, CountOut
from shipyard.server.state import Blobs, StoreDep
from shipyard.wire.handlers import ClientFault

__all__ = ["BodyReader", "router"]

router = APIRouter(prefix="/api/v1/blobs", tags=["blobs"], responses=ERROR_RESPONSES)


@router.get(
    "",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/x-ndjson": {}},
            "description": '{"now": <server time>, "blobs": [[digest, mtime], ...]} per line',
        }
    },
)
def list_blobs(blobs: Blobs, batch_size: int = Query(default=1000, ge=1, le=10_000)) -> StreamingResponse:
    """Every stored blob as ``[digest, modified time]`` (epoch seconds), ``batch_size`` per JSON line.

    Each line also carries the server's clock (``now``), so a client can judge a blob's age
    without trusting its own clock to agree with the server's. Memory stays bounded: the blob
    store is listed lazily, one page at a time.
    """
    return StreamingResponse(_blob_pages(blobs, batch_size), media_type="application/x-ndjson")


def _blob_pages(blobs: BlobStore, batch_size: int) -> Iterator[bytes]:
    listing = blobs.iter_digests()
    while page := list(itertools.islice(listing, batch_size)):
        yield json.dumps({"now": time.time(), "blobs": page}).encode() + b"\n"


@router.head("/{digest}", responses={200: {"description": "The blob is stored"}})
def blob_exists(digest: str, blobs: Blobs) -> Response:
    """200 when the blob is stored, 404 otherwise (no body, as for any HEAD)."""
    if not blobs.exists(check_digest(digest)):
        raise BlobNotFound(f"Blob {digest} not found in {blobs.url}")
    return Response(status_code=status.HTTP_200_OK)


@router.get(
    "/{digest}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The verified bytes"}},
)
def get_blob(digest: str, blobs: Blobs) -> StreamingResponse:
    """The blob's bytes, hashed as they stream (a corrupt blob never reaches a client whole)."""
    chunks = verified_stream(blobs.iter_chunks(check_digest(digest)))
    headers = {"ETag": f'"{digest}"', "Cache-Control": "public, max-age=31536000, immutable"}
    return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)


@router.delete("/tmp", dependencies=[AdminOnly])
def clean_tmp(blobs: Blobs, older_than_s: float = Query(default=3600.0, ge=0)) -> CountOut:
    """Remove temp files that crashed uploads left behind, older than ``older_than_s`` (server clock)."""
    return CountOut(count=blobs.clean_tmp(older_than_s))


@router.delete("/{digest}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[AdminOnly])
def delete_blob(digest: str, blobs: Blobs, store: StoreDep) -> Response:
    """Delete a blob nothing refers to; 409 ``invalid_state`` if a run, dataset or model uses it.

    Deleting a blob that is not there is harmless (204), as for any content-addressed store.
    """
    check_digest(digest)
    if store.referenced_digests([digest]):
        raise InvalidState(
            f"Blob {digest} is still referenced by a run artifact, dataset version or model file in "
            f"{blobs.url}; it was not deleted (delete what uses it, then run: shipyard gc)",
            details={"digest": digest},
        )
    blobs.delete(digest)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/{digest}", status_code=status.HTTP_201_CREATED)
async def put_blob(digest: str, request: Request, blobs: Blobs) -> BlobOut:
    """Store the request body as blob ``digest``, streaming; 400 ``digest_mismatch`` if it hashes otherwise.

    The body is never held in memory: it is hashed and written chunk by chunk. Storing
    content that is already there is harmless (blobs are content-addressed).
    """
    check_digest(digest)
    reader = io.BufferedReader(BodyReader(request.stream()), 1 << 20)
    try:
        actual, size = await anyio.to_thread.run_sync(blobs.put_stream, reader)
    except ClientDisconnect:
        raise InvalidInput(f"Client disconnected while uploading blob {digest}") from None
    if actual != digest:
        mismatch = DigestMismatch(
            f"Upload of blob {digest} does not match its digest: the {size} bytes received hash to "
            f"{actual}. Send the file again (did it change while uploading?).",
            details={"digest": digest, "actual": actual, "size": size},
        )
        raise ClientFault(mismatch, status.HTTP_400_BAD_REQUEST)
    return BlobOut(digest=digest, size=size)


class BodyReader(io.RawIOBase):
    """A blocking file view of an async request body, read from a worker thread.

    ``put_stream`` runs in a worker thread and calls ``read``; each read pulls the
    next chunk from the event loop, so the upload streams with bounded memory.
    """

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._buffer = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    async def _next(self) -> bytes | None:
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            return None

    def readinto(self, target: memoryview | bytearray) -> int:  # type: ignore[override]
        while not self._buffer and not self._eof:
            chunk = anyio.from_thread.run(self._next)
            if chunk is None:
                self._eof = True
            else:
                self._buffer = chunk
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size
