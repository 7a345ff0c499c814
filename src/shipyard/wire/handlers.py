"""The one place where exceptions become HTTP answers, for the tracking server and the model server.

Every error either server sends has the shape of :mod:`shipyard.wire.shape`, pinned by a test::

    {"error": {"code": "run_not_found", "message": "Run 'a1b2' not found ...", "details": {}}}

- ``ShipyardError`` → its ``http_status`` and ``to_dict()`` (:class:`ClientFault` overrides the status).
- Request validation → 422 ``invalid_request`` naming each bad field; malformed JSON → 400
  ``invalid_json``.
- Unknown routes and methods → 404 ``not_found`` / 405 ``method_not_allowed`` (others keep their status).
- Anything else → 500 ``internal_error`` (logged with its traceback; bad input never gets here),
  answered by :class:`InternalErrorMiddleware` *without re-raising*: Starlette's outermost
  ``ServerErrorMiddleware`` sends its 500 and then re-raises, which makes uvicorn drop the
  keep-alive connection (and a client then sees a reset on its next request). Only an error after
  the answer has started still propagates (the connection cannot carry on then).

Each server passes its own JSON response class (the model server's encodes with orjson) and a hint for
404 messages; the shape and the rules are the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.errors import ShipyardError
from shipyard.wire.shape import error_body

__all__ = [
    "ClientFault",
    "ErrorDetail",
    "ErrorOut",
    "InternalErrorMiddleware",
    "ResponseClass",
    "error_response",
    "install_error_handlers",
    "internal_error_message",
    "validation_answer",
]

log = logging.getLogger("shipyard.server")

ResponseClass = Callable[..., Response]
"""A JSON response class: ``cls(content, status_code=..., headers=...)``."""

_MAX_LISTED_ERRORS = 5
_LOCATIONS = ("body", "query", "path", "header", "cookie")
_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    415: "unsupported_media_type",
}


class ErrorDetail(BaseModel):
    code: str = Field(examples=["run_not_found"])
    message: str = Field(examples=["Run 'a1b2' not found in sqlite:///shipyard.db"])
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorOut(BaseModel):
    """Every error answer: ``{"error": {"code", "message", "details"}}`` (for OpenAPI)."""

    error: ErrorDetail


class ClientFault(Exception):
    """Raise a ``ShipyardError`` that is the client's fault here with a 4xx status of its own.

    Code and body stay those of ``error`` (so the client maps it back to the same class);
    only the status differs. Example: an uploaded blob that does not hash to the digest
    in its URL is a ``DigestMismatch`` (500 when a stored blob is corrupt) answered with 400.

    Example:
        >>> from shipyard.errors import DigestMismatch
        >>> ClientFault(DigestMismatch("upload does not match its digest")).status
        400
    """

    def __init__(self, error: ShipyardError, status: int = 400) -> None:
        super().__init__(error.message)
        self.error = error
        self.status = status


def error_response(
    exc: ShipyardError, status: int | None = None, response_class: ResponseClass = JSONResponse
) -> Response:
    """The HTTP answer for a Shipyard error: its ``http_status`` (unless ``status``) and ``to_dict()``.

    Example:
        >>> from shipyard.errors import RunNotFound
        >>> error_response(RunNotFound("Run 'x' not found")).status_code
        404
    """
    return response_class(exc.to_dict(), status_code=status or exc.http_status)


def internal_error_message(exc: BaseException, method: str, path: str, request_id: str = "") -> str:
    """The message of a 500 answer: what broke where, never the traceback (that goes to the log).

    Example:
        >>> internal_error_message(RuntimeError("boom"), "POST", "/predict", "abc")[:50]
        'Internal server error (RuntimeError) on POST /pred'
    """
    rid = f" (request id {request_id})" if request_id else ""
    return (
        f"Internal server error ({type(exc).__name__}) on {method} {path}; "
        f"the server log has the traceback{rid}"
    )


def _internal_error(exc: Exception, scope: Scope, response_class: ResponseClass = JSONResponse) -> Response:
    method, path = str(scope.get("method", "")), str(scope.get("path", ""))
    log.error("Unhandled error on %s %s", method, path, exc_info=exc)
    request_id = str((scope.get("state") or {}).get("request_id", ""))  # set by the model server
    message = internal_error_message(exc, method, path, request_id)
    return response_class(error_body("internal_error", message), status_code=500)


class InternalErrorMiddleware:
    """Answer an unexpected exception with the 500 ``internal_error`` shape and keep the connection.

    Installed by :func:`install_error_handlers` inside Starlette's ``ServerErrorMiddleware``, which
    would otherwise answer and then re-raise (uvicorn closes the connection on a raised error).

    Example:
        >>> app = FastAPI()
        >>> app.add_middleware(InternalErrorMiddleware, response_class=JSONResponse)
    """

    def __init__(self, app: ASGIApp, response_class: ResponseClass = JSONResponse) -> None:
        self.app = app
        self.response_class = response_class

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:  # nobody to answer: the server's outer layers log it
            raise
        except Exception as exc:
            if started:  # half an answer is out: only closing the connection can end it
                raise
            await _internal_error(exc, scope, self.response_class)(scope, receive, send)


def _field_name(loc: Sequence[str | int]) -> str:
    parts = list(loc[1:]) if loc and loc[0] in _LOCATIONS else list(loc)
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    if name:
        return name
    return "request body" if loc and loc[0] == "body" else "request"


def validation_answer(exc: RequestValidationError, response_class: ResponseClass = JSONResponse) -> Response:
    """400 ``invalid_json`` with the position for malformed JSON, else 422 ``invalid_request`` per field.

    Example:
        >>> missing = RequestValidationError([{"type": "missing", "loc": ("query", "k")}])
        >>> validation_answer(missing).status_code
        422
    """
    errors = list(exc.errors())
    for err in errors:
        if err.get("type") == "json_invalid":
            loc = err.get("loc", ())
            position = loc[-1] if loc and isinstance(loc[-1], int) else 0
            reason = (err.get("ctx") or {}).get("error", "not valid JSON")
            message = f"Malformed JSON in the request body at position {position}: {reason}"
            return response_class(
                error_body("invalid_json", message, {"position": position}), status_code=400
            )
    listed = [
        {
            "field": _field_name(err.get("loc", ())),
            "location": str(err["loc"][0]) if err.get("loc") else "",
            "message": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in errors
    ]
    shown = "; ".join(
        f"{e['field']} is required" if e["type"] == "missing" else f"{e['field']}: {e['message']}"
        for e in listed[:_MAX_LISTED_ERRORS]
    )
    more = f" (and {len(listed) - _MAX_LISTED_ERRORS} more)" if len(listed) > _MAX_LISTED_ERRORS else ""
    message = f"Invalid request: {shown}{more}. See /docs for the expected shape."
    return response_class(error_body("invalid_request", message, {"errors": listed}), status_code=422)


def _http_message(request: Request, exc: StarletteHTTPException, routes_hint: str) -> str:
    if exc.status_code == 404:
        return f"No route {request.method} {request.url.path}; {routes_hint}"
    if exc.status_code == 405:
        return f"Method {request.method} is not allowed on {request.url.path}; see /docs"
    return str(exc.detail)


def install_error_handlers(
    app: FastAPI, *, routes_hint: str, response_class: ResponseClass = JSONResponse
) -> None:
    """Register the handlers described above on ``app`` (called once by each server's app factory).

    Args:
        app: The application.
        routes_hint: Ends the message of a 404 for an unknown route ("the API is described at /docs").
        response_class: The JSON response class every error answer is built with.

    Example:
        >>> install_error_handlers(FastAPI(), routes_hint="the API is described at /docs")
    """

    async def on_shipyard_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ShipyardError)
        if exc.http_status >= 500:
            log.warning("%s: %s", exc.code, exc.message)
        return error_response(exc, response_class=response_class)

    async def on_client_fault(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ClientFault)
        return error_response(exc.error, exc.status, response_class)

    async def on_validation_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return validation_answer(exc, response_class)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        body = error_body(code, _http_message(request, exc, routes_hint))
        return response_class(body, status_code=exc.status_code, headers=exc.headers)

    async def on_unexpected(request: Request, exc: Exception) -> Response:  # outside the middleware
        return _internal_error(exc, request.scope, response_class)

    app.add_exception_handler(ShipyardError, on_shipyard_error)
    app.add_exception_handler(ClientFault, on_client_fault)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
    app.add_middleware(InternalErrorMiddleware, response_class=response_class)
