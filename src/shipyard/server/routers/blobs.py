"""Blobs by BLAKE3 digest: ``HEAD`` (exists?), ``GET`` (verified bytes), ``PUT`` (streamed upload)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import anyio
import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, Request, Response, status
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from shipyard.artifacts.blobs import check_digest
from shipyard.errors import BlobNotFound, DigestMismatch, InvalidInput
from shipyard.server.errors import ERROR_RESPONSES, ClientFault
from shipyard.server.routers.artifacts import verified_stream
from shipyard.server.schemas import BlobOut
from shipyard.server.state import Blobs

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/blobs", tags=["blobs"], responses=ERROR_RESPONSES)


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


@router.put("/{digest}", status_code=status.HTTP_201_CREATED)
async def put_blob(digest: str, request: Request, blobs: Blobs) -> BlobOut:
    """Store the request body as blob ``digest``, streaming; 400 ``digest_mismatch`` if it hashes otherwise.

    The body is never held in memory: it is hashed and written chunk by chunk. Storing
    content that is already there is harmless (blobs are content-addressed).
    """
    check_digest(digest)
    reader = io.BufferedReader(_BodyReader(request.stream()), 1 << 20)
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


class _BodyReader(io.RawIOBase):
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
