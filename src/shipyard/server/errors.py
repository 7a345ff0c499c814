"""The one place where exceptions become HTTP answers.

Every error the server sends has the same JSON shape, pinned by a test::

    {"error": {"code": "run_not_found", "message": "Run 'a1b2' not found ...", "details": {}}}

- ``ShipyardError`` → its ``http_status`` and ``to_dict()``.
- Request validation → 422 ``invalid_request`` naming each bad field; malformed JSON → 400
  ``invalid_json``.
- Unknown routes and methods → 404 ``not_found`` / 405 ``method_not_allowed``.
- Anything else → 500 ``internal_error`` (logged with its traceback; bad input never gets here).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from shipyard.errors import ShipyardError
from shipyard.server.schemas import ErrorOut

__all__ = [
    "ERROR_RESPONSES",
    "ClientFault",
    "error_body",
    "error_response",
    "install_error_handlers",
]

log = logging.getLogger("shipyard.server")

_MAX_LISTED_ERRORS = 5
_LOCATIONS = ("body", "query", "path", "header", "cookie")
_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    415: "unsupported_media_type",
}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Bad input (malformed JSON, unsafe path, bad filter …)"},
    404: {"model": ErrorOut, "description": "No such experiment, run, artifact or blob"},
    409: {"model": ErrorOut, "description": "Conflict with the current state"},
    413: {"model": ErrorOut, "description": "Request body larger than max_request_bytes"},
    422: {"model": ErrorOut, "description": "A field is missing or has the wrong type"},
    503: {"model": ErrorOut, "description": "The metadata store is unavailable"},
}
"""OpenAPI ``responses=`` entry shared by every router."""


class ClientFault(Exception):
    """Raise a ``ShipyardError`` that is the client's fault here with a 4xx status of its own.

    Code and body stay those of ``error`` (so the client maps it back to the same class);
    only the status differs. Example: an uploaded blob that does not hash to the digest
    in its URL is a ``DigestMismatch`` (500 when a stored blob is corrupt) answered with 400.
    """

    def __init__(self, error: ShipyardError, status: int = 400) -> None:
        super().__init__(error.message)
        self.error = error
        self.status = status


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON error shape for errors that are not a ``ShipyardError``.

    Example:
        >>> error_body("not_found", "No route GET /nope")["error"]["code"]
        'not_found'
    """
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(exc: ShipyardError, status: int | None = None) -> JSONResponse:
    """The HTTP answer for a Shipyard error: its ``http_status`` (unless ``status``) and ``to_dict()``.

    Example:
        >>> from shipyard.errors import RunNotFound
        >>> error_response(RunNotFound("Run 'x' not found")).status_code
        404
    """
    return JSONResponse(status_code=status or exc.http_status, content=exc.to_dict())


def _field_name(loc: Sequence[str | int]) -> str:
    parts = list(loc[1:]) if loc and loc[0] in _LOCATIONS else list(loc)
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    if name:
        return name
    return "request body" if loc and loc[0] == "body" else "request"


def _validation_answer(exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    for err in errors:
        if err.get("type") == "json_invalid":
            loc = err.get("loc", ())
            position = loc[-1] if loc and isinstance(loc[-1], int) else 0
            reason = (err.get("ctx") or {}).get("error", "not valid JSON")
            message = f"Malformed JSON in the request body at position {position}: {reason}"
            return JSONResponse(
                status_code=400, content=error_body("invalid_json", message, {"position": position})
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
    return JSONResponse(status_code=422, content=error_body("invalid_request", message, {"errors": listed}))


async def _on_shipyard_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ShipyardError)
    if exc.http_status >= 500:
        log.warning("%s: %s", exc.code, exc.message)
    return error_response(exc)


async def _on_client_fault(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ClientFault)
    return error_response(exc.error, exc.status)


async def _on_validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return _validation_answer(exc)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    if exc.status_code == 404:
        message = f"No route {request.method} {request.url.path}; the API is described at /docs"
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}; see /docs"
    else:
        message = str(exc.detail)
    return JSONResponse(status_code=exc.status_code, content=error_body(code, message), headers=exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.error("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    message = (
        f"Internal server error ({type(exc).__name__}) on {request.method} {request.url.path}; "
        "the server log has the traceback"
    )
    return JSONResponse(status_code=500, content=error_body("internal_error", message))


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app`` (called once by ``create_app``).

    Example:
        >>> app = FastAPI()
        >>> install_error_handlers(app)
    """
    app.add_exception_handler(ShipyardError, _on_shipyard_error)
    app.add_exception_handler(ClientFault, _on_client_fault)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
