"""HTTP plumbing of the model server: request ids and fast JSON.

Errors have the tracking server's shape and come from the same handlers (``shipyard.wire.handlers``),
here encoded with orjson::

    {"error": {"code": "signature_mismatch", "message": "...", "details": {"problems": [...]}}}

Bodies are read within ``max_request_bytes`` by ``shipyard.wire.limits.read_body``. Serving keeps its own
:class:`JSONResponse` because prediction lists are large (orjson is several times faster than the stdlib)
and may hold NaN (written as ``null`` instead of failing).

Every answer, errors and 500s included, carries ``x-request-id``: the caller's own when it sent a
sane one, else a fresh one.

Error answers are bounded whatever raised them: a message past ``MAX_ERROR_MESSAGE`` characters is cut
(with a count) and ``details`` past ``MAX_ERROR_DETAILS`` bytes of JSON are replaced by a note. Messages
quote request values through ``shipyard.quoting`` in the first place; this is the backstop.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.wire import handlers
from shipyard.wire.shape import error_body

try:  # orjson is several times faster on big prediction lists; the stdlib is the fallback
    import orjson
except ImportError:  # pragma: no cover - orjson is installed with the serving requirements
    orjson = None  # type: ignore[assignment]

__all__ = [
    "MAX_ERROR_DETAILS",
    "MAX_ERROR_MESSAGE",
    "REQUEST_ID_HEADER",
    "JSONResponse",
    "RequestIdMiddleware",
    "ROUTES_HINT",
    "dumps",
    "error_answer",
    "fresh_id",
    "install_error_handlers",
    "loads",
    "request_id",
]

log = logging.getLogger("shipyard.serving")

REQUEST_ID_HEADER = "x-request-id"
# An incoming id is echoed in a header and in logs: anything but short plain tokens is replaced.
_SANE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
ROUTES_HINT = "this model server answers POST /predict"
"""How a 404 for an unknown route ends."""
MAX_ERROR_MESSAGE = 4_000
"""Characters of an error message an answer carries at most."""
MAX_ERROR_DETAILS = 64_000
"""Bytes of JSON an error answer's ``details`` may take."""


def dumps(content: Any) -> bytes:
    """Encode ``content`` as JSON bytes (orjson when installed); NaN and infinities become ``null``.

    Example:
        >>> dumps({"predictions": [1, float("nan")]})
        b'{"predictions":[1,null]}'
    """
    if orjson is not None:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    try:
        text = json.dumps(content, separators=(",", ":"), allow_nan=False)
    except ValueError:  # NaN / inf: strict JSON has no spelling for them
        text = json.dumps(_finite(content), separators=(",", ":"))
    return text.encode()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def loads(body: bytes) -> Any:
    """Decode a JSON request body; raises ``ValueError`` (with a ``pos`` when known) if it is not JSON.

    Example:
        >>> loads(b'{"records": []}')
        {'records': []}
    """
    if orjson is not None:
        return orjson.loads(body)
    return json.loads(body)


class JSONResponse(Response):
    """A JSON response encoded by :func:`dumps`.

    Example:
        >>> JSONResponse({"status": "ok"}).body
        b'{"status":"ok"}'
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def request_id(request: Request) -> str:
    """The id :class:`RequestIdMiddleware` gave this request.

    Example:
        >>> request_id(Request({"type": "http", "state": {"request_id": "abc"}}))
        'abc'
    """
    return str(request.scope.get("state", {}).get("request_id", ""))


class RequestIdMiddleware:
    """Pure ASGI middleware: gives each request an id, echoes it on the answer, turns crashes into 500s.

    It sits outside the exception handlers, so it also sees errors they did not handle: those are
    logged with their traceback and answered with a JSON 500 carrying the request id (instead of
    Starlette's plain-text page without it).

    Example:
        >>> app = FastAPI()
        >>> app.add_middleware(RequestIdMiddleware)
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _incoming_id(scope) or fresh_id()
        scope.setdefault("state", {})["request_id"] = rid
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:  # the client went away mid-request: nobody to answer, nothing broke
            log.info("Client disconnected during %s %s [%s]", scope.get("method"), scope.get("path"), rid)
        except Exception as exc:
            log.error(
                "Unhandled error on %s %s [%s]", scope.get("method"), scope.get("path"), rid, exc_info=exc
            )
            if started:
                raise
            message = handlers.internal_error_message(
                exc, str(scope.get("method")), str(scope.get("path")), rid
            )
            answer = JSONResponse(error_body("internal_error", message), status_code=500)
            await answer(scope, receive, send_with_id)


_UUID4_KEEP = ~((0xF000 << 64) | (0xC000 << 48))  # the version nibble and the variant's two bits cleared
_UUID4_SET = (4 << 76) | (0x8000 << 48)  # version 4, variant RFC 4122: what uuid.UUID(version=4) sets


def fresh_id() -> str:
    """A random request id in the format of ``uuid.uuid4().hex`` (version and variant bits included).

    Built from the random bits directly: a ``uuid.UUID`` object cost several times as much, on every
    request that comes without an id of its own.

    Example:
        >>> import uuid
        >>> uuid.UUID(fresh_id()).version
        4
    """
    return f"{int.from_bytes(os.urandom(16)) & _UUID4_KEEP | _UUID4_SET:032x}"


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1").strip()
            return text if _SANE_ID.fullmatch(text) else None
    return None


def install_error_handlers(app: FastAPI) -> None:
    """Register the shared error handlers on ``app``, answering with :class:`JSONResponse` (orjson).

    Example:
        >>> install_error_handlers(FastAPI())
    """
    handlers.install_error_handlers(app, routes_hint=ROUTES_HINT, response_class=error_answer)


def error_answer(content: Any, status_code: int = 500, headers: Any = None) -> JSONResponse:
    """A :class:`JSONResponse` for an error body, its message and details cut to their bounds.

    Example:
        >>> answer = error_answer(error_body("invalid_input", "x" * 100_000), status_code=400)
        >>> len(answer.body) < 5_000
        True
    """
    error = content.get("error") if isinstance(content, dict) else None
    if isinstance(error, dict):
        error = dict(error)
        message = str(error.get("message", ""))
        if len(message) > MAX_ERROR_MESSAGE:
            error["message"] = f"{message[:MAX_ERROR_MESSAGE]}… ({len(message)} characters)"
        details = error.get("details") or {}
        size = len(dumps(details)) if details else 0
        if size > MAX_ERROR_DETAILS:
            error["details"] = {
                "truncated": f"the details took {size} bytes of JSON; the message names the problem"
            }
        content = {**content, "error": error}
    return JSONResponse(content, status_code=status_code, headers=headers)
