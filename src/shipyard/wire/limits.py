"""The request-body limit: a body larger than ``max_request_bytes`` is refused with 413 before parsing.

A declared ``Content-Length`` over the limit is refused without reading the body; a body without one
(chunked) is counted as it streams in and refused as soon as it passes the limit. The tracking server
applies the rule to every request with :class:`BodyLimitMiddleware` (blob uploads stream to the blob
store and are exempt); the model server reads its bodies itself with :func:`read_body`. Both raise the
same :class:`~shipyard.errors.PayloadTooLarge` through :class:`BodyBudget`.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.errors import PayloadTooLarge
from shipyard.wire.handlers import error_response

__all__ = ["BodyBudget", "BodyLimitMiddleware", "declared_length", "read_body"]


class BodyBudget:
    """Counts a request body against ``max_bytes``; raises ``PayloadTooLarge`` once it is over.

    Example:
        >>> budget = BodyBudget(4)
        >>> budget.add(b"abc")
        >>> budget.add(b"de")
        Traceback (most recent call last):
        shipyard.errors.PayloadTooLarge: Request body sent more than 4 bytes; ...
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0

    def declare(self, length: int | None) -> None:
        """Refuse a declared ``Content-Length`` over the limit before anything is read."""
        if length is not None and length > self.max_bytes:
            raise self._too_large(length, declared=True)

    def add(self, chunk: bytes) -> None:
        """Count one chunk of the body; refuse as soon as the total passes the limit."""
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise self._too_large(self.size, declared=False)

    def _too_large(self, size: int, *, declared: bool) -> PayloadTooLarge:
        how, shown = ("declares", size) if declared else ("sent more than", self.max_bytes)
        return PayloadTooLarge(
            f"Request body {how} {shown} bytes; this server accepts at most {self.max_bytes} bytes "
            "(setting max_request_bytes / SHIPYARD_MAX_REQUEST_BYTES). Send smaller batches.",
            details={"limit": self.max_bytes, "size": size},
        )


def declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length`` as a number, or None when absent or not a number.

    Example:
        >>> declared_length({"type": "http", "headers": [(b"content-length", b"12")]})
        12
    """
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refused with ``PayloadTooLarge`` as soon as it is known to exceed ``max_bytes``.

    Example:
        >>> body = await read_body(request, 1024)  # doctest: +SKIP
    """
    budget = BodyBudget(max_bytes)
    budget.declare(declared_length(request.scope))
    chunks: list[bytes] = []
    async for chunk in request.stream():
        budget.add(chunk)
        chunks.append(chunk)
    return b"".join(chunks)


class BodyLimitMiddleware:
    """Pure ASGI middleware buffering each request body up to ``max_bytes`` (413 past it).

    Example:
        >>> from fastapi import FastAPI
        >>> app = FastAPI()
        >>> app.add_middleware(BodyLimitMiddleware, max_bytes=1024, exempt=lambda scope: False)
    """

    def __init__(self, app: ASGIApp, max_bytes: int, exempt: Callable[[Scope], bool]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope):
            await self.app(scope, receive, send)
            return
        try:
            replay = await _buffered(scope, receive, BodyBudget(self.max_bytes))
        except PayloadTooLarge as exc:
            await error_response(exc)(scope, receive, send)
            return
        await self.app(scope, replay, send)


async def _buffered(scope: Scope, receive: Receive, budget: BodyBudget) -> Receive:
    """Read the whole body within ``budget``; return a ``receive`` that replays it to the app."""
    budget.declare(declared_length(scope))
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # client went away: let the app see it
            return _replay([], message, receive)
        chunk = message.get("body", b"")
        budget.add(chunk)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return _replay(chunks, None, receive)


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
