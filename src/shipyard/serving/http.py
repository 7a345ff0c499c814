"""HTTP plumbing of the model server: request ids, the JSON error shape, fast JSON, bounded bodies.

Errors have the tracking server's shape (``shipyard.server.errors``; serving sits below the server,
so the few lines are repeated here rather than imported)::

    {"error": {"code": "signature_mismatch", "message": "...", "details": {"problems": [...]}}}

- ``ShipyardError`` → its ``http_status`` and ``to_dict()``.
- Unknown routes and methods → 404 ``not_found`` / 405 ``method_not_allowed``; a body that is not
  JSON → 415 ``unsupported_media_type``.
- Anything else → 500 ``internal_error``, logged with its traceback (bad input never gets here).

Every answer, errors and 500s included, carries ``x-request-id``: the caller's own when it sent a
sane one, else a fresh one.
"""

from __future__ import annotations

import json
import logging
import math
import re
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.errors import PayloadTooLarge, ShipyardError

try:  # orjson is several times faster on big prediction lists; the stdlib is the fallback
    import orjson
except ImportError:  # pragma: no cover - orjson is installed with the serving requirements
    orjson = None  # type: ignore[assignment]

__all__ = [
    "REQUEST_ID_HEADER",
    "JSONResponse",
    "RequestIdMiddleware",
    "dumps",
    "error_body",
    "install_error_handlers",
    "loads",
    "read_body",
    "request_id",
]

log = logging.getLogger("shipyard.serving")

REQUEST_ID_HEADER = "x-request-id"
# An incoming id is echoed in a header and in logs: anything but short plain tokens is replaced.
_SANE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 415: "unsupported_media_type"}


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


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON error shape for errors that are not a ``ShipyardError``.

    Example:
        >>> error_body("not_found", "No route GET /nope")["error"]["code"]
        'not_found'
    """
    return {"error": {"code": code, "message": message, "details": details or {}}}


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
        rid = _incoming_id(scope) or uuid.uuid4().hex
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
            message = (
                f"Internal server error ({type(exc).__name__}) on {scope.get('method')} {scope.get('path')}; "
                f"the server log has the traceback (request id {rid})"
            )
            answer = JSONResponse(error_body("internal_error", message), status_code=500)
            await answer(scope, receive, send_with_id)


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1").strip()
            return text if _SANE_ID.fullmatch(text) else None
    return None


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refused with ``PayloadTooLarge`` as soon as it is known to exceed ``max_bytes``.

    A declared ``Content-Length`` over the limit is refused before reading; a body without one
    (chunked) is counted as it streams in.

    Example:
        >>> body = await read_body(request, 1024)  # doctest: +SKIP
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(int(declared), max_bytes, declared=True)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(size, max_bytes, declared=False)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int, *, declared: bool) -> PayloadTooLarge:
    how = "declares" if declared else "sent more than"
    shown = size if declared else limit
    return PayloadTooLarge(
        f"Request body {how} {shown} bytes; this model server accepts at most {limit} bytes. "
        "Send smaller batches (or start the server with a larger limit).",
        details={"limit": limit, "size": size},
    )


async def _on_shipyard_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ShipyardError)
    if exc.http_status >= 500:
        log.warning("%s: %s", exc.code, exc.message)
    return JSONResponse(exc.to_dict(), status_code=exc.http_status)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    if exc.status_code == 404:
        message = f"No route {request.method} {request.url.path}; this model server answers POST /predict"
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}; see /docs"
    else:
        message = str(exc.detail)
    return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)


async def _on_validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"field": ".".join(str(p) for p in err.get("loc", ())), "message": str(err.get("msg", ""))}
        for err in exc.errors()
    ]
    message = "Invalid request: " + "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return JSONResponse(error_body("invalid_request", message, {"errors": problems}), status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app`` (called once by ``create_model_app``).

    Example:
        >>> install_error_handlers(FastAPI())
    """
    app.add_exception_handler(ShipyardError, _on_shipyard_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
