"""Request-size limit: refuse bodies larger than ``max_request_bytes`` with 413, before any parsing.

A declared ``Content-Length`` over the limit is refused without reading the
body; a body without one (chunked) is counted as it streams in and refused as
soon as it passes the limit. Blob uploads stream straight to the blob store and
are exempt (``exempt`` decides per request).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.errors import PayloadTooLarge
from shipyard.server.errors import error_response

__all__ = ["BodyLimitMiddleware"]


class BodyLimitMiddleware:
    """Pure ASGI middleware buffering each request body up to ``max_bytes``.

    Example:
        >>> from fastapi import FastAPI
        >>> app = FastAPI()
        >>> app.add_middleware(BodyLimitMiddleware, max_bytes=1024, exempt=lambda scope: False)
    """

    def __init__(self, app: ASGIApp, max_bytes: int, exempt: Callable[[Scope], bool]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt

    def _too_large(self, size: int, declared: bool) -> PayloadTooLarge:
        how = "declares" if declared else "sent more than"
        return PayloadTooLarge(
            f"Request body {how} {size} bytes; this server accepts at most {self.max_bytes} bytes "
            "(server setting max_request_bytes / SHIPYARD_MAX_REQUEST_BYTES). Send smaller batches.",
            details={"limit": self.max_bytes, "size": size},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await error_response(self._too_large(declared, True))(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away: let the app see it
                await self.app(scope, _replay([], message, receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await error_response(self._too_large(self.max_bytes, False))(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(chunks, None, receive), send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(chunks: list[bytes], pending: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that hands out the buffered body once, then defers to the real one."""
    first: list[Message] = (
        [pending]
        if pending is not None
        else [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]
    )

    async def replay() -> Message:
        if first:
            return first.pop()
        return await receive()

    return replay
