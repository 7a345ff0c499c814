"""The request-body limit: a body larger than ``max_request_bytes`` is refused with 413 before parsing.

A declared ``Content-Length`` over the limit is refused without reading the body; a body without one
(chunked) is counted as it streams in and refused as soon as it passes the limit. The tracking server
applies the rule to every request with :class:`BodyLimitMiddleware` (blob uploads stream to the blob
store and are exempt); the model server reads its bodies itself with :func:`read_body`. Both raise the
same :class:`~shipyard.errors.PayloadTooLarge` through :class:`BodyBudget`.

Both also bound the wait for each part of a body (``body_read_timeout``): a client that declares a
``Content-Length`` and sends less would otherwise hold a connection and a worker for ever. Past the
timeout the answer is 408 (code ``invalid_input``) and the connection is closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import anyio
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.config import DEFAULT_BODY_READ_TIMEOUT
from shipyard.errors import InvalidInput, PayloadTooLarge
from shipyard.wire.handlers import ClientFault, error_response

__all__ = ["BodyBudget", "BodyLimitMiddleware", "BodyTimeout", "declared_length", "read_body"]

REQUEST_TIMEOUT = 408


class BodyTimeout(ClientFault):
    """The client stopped sending its request body: answered 408 ``invalid_input``, connection closed.

    Example:
        >>> BodyTimeout(2.0).status
        408
    """

    def __init__(self, timeout: float) -> None:
        super().__init__(
            InvalidInput(
                f"The request body stopped arriving: nothing for {timeout:g} s before it was complete "
                "(does Content-Length match the bytes sent?). Setting body_read_timeout / "
                "SHIPYARD_BODY_READ_TIMEOUT.",
                details={"timeout_s": timeout},
            ),
            REQUEST_TIMEOUT,
        )


async def _within(timeout: float, receive: Receive) -> Message:
    """The next message of a request body, or :class:`BodyTimeout` after ``timeout`` s (0: no limit)."""
    if timeout <= 0:
        return await receive()
    with anyio.move_on_after(timeout):
        return await receive()
    raise BodyTimeout(timeout)


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


async def read_body(request: Request, max_bytes: int, timeout: float = DEFAULT_BODY_READ_TIMEOUT) -> bytes:
    """The request body, refused with ``PayloadTooLarge`` as soon as it is known to exceed ``max_bytes``.

    Raises :class:`BodyTimeout` (408) when no part of the body arrives for ``timeout`` seconds.

    Example:
        >>> body = await read_body(request, 1024)  # doctest: +SKIP
    """
    budget = BodyBudget(max_bytes)
    budget.declare(declared_length(request.scope))
    chunks: list[bytes] = []
    stream = request.stream()
    loop = asyncio.get_running_loop()
    # One stdlib timeout for the whole body, pushed back after each part: a fraction of the cost of a
    # cancel scope per part, on the path of every prediction. Servers here run on asyncio (uvloop).
    deadline = asyncio.timeout(None)
    try:
        async with deadline:
            while True:
                deadline.reschedule(loop.time() + timeout if timeout > 0 else None)
                try:
                    chunk = await stream.__anext__()
                except StopAsyncIteration:
                    break
                budget.add(chunk)
                chunks.append(chunk)
    except TimeoutError:
        if deadline.expired():
            raise BodyTimeout(timeout) from None
        raise
    return b"".join(chunks)


class BodyLimitMiddleware:
    """Pure ASGI middleware buffering each request body up to ``max_bytes`` (413 past it).

    Exempt requests (streamed uploads) are not buffered, but their body parts still arrive within
    ``read_timeout`` seconds each (408 otherwise).

    Example:
        >>> from fastapi import FastAPI
        >>> app = FastAPI()
        >>> app.add_middleware(BodyLimitMiddleware, max_bytes=1024, exempt=lambda scope: False)
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        exempt: Callable[[Scope], bool],
        read_timeout: float = DEFAULT_BODY_READ_TIMEOUT,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.exempt(scope):
            await self.app(scope, _timed_receive(receive, self.read_timeout), send)
            return
        try:
            replay = await _buffered(scope, receive, BodyBudget(self.max_bytes), self.read_timeout)
        except PayloadTooLarge as exc:
            await error_response(exc)(scope, receive, send)
            return
        except BodyTimeout as exc:  # the rest of the body may never come: end the connection
            answer = error_response(exc.error, exc.status)
            answer.headers["Connection"] = "close"
            await answer(scope, receive, send)
            return
        await self.app(scope, replay, send)


def _timed_receive(receive: Receive, timeout: float) -> Receive:
    """``receive`` with :class:`BodyTimeout` while the body is incomplete (later waits are unbounded:
    a streaming answer listens for the disconnect for as long as it streams)."""
    done = False

    async def timed() -> Message:
        nonlocal done
        if done:
            return await receive()
        message = await _within(timeout, receive)
        done = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    return timed


async def _buffered(scope: Scope, receive: Receive, budget: BodyBudget, timeout: float) -> Receive:
    """Read the whole body within ``budget``; return a ``receive`` that replays it to the app."""
    budget.declare(declared_length(scope))
    chunks: list[bytes] = []
    while True:
        message = await _within(timeout, receive)
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
