"""MLflow's wire conventions on Shipyard's server: its error shape and status codes, and JSON
answers with empty fields left out (as MLflow's protobuf JSON does).

Every route of the MLflow-compatible API uses :class:`MlflowRoute` (``APIRouter(route_class=…)``):
whatever goes wrong in it — a :class:`MlflowApiError`, a Shipyard error from the store, a body that
fails validation — answers ``{"error_code": "...", "message": "..."}`` with the status MLflow's
server gives that code, so MLflow's client raises the ``MlflowException`` it would raise against
MLflow itself. Nothing a client sends answers 500.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel

from shipyard.errors import (
    AlreadyExists,
    FilterSyntaxError,
    InvalidInput,
    InvalidState,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    ShipyardError,
    StoreUnavailable,
    Unauthenticated,
)
from shipyard.wire.handlers import ClientFault, ErrorOut

__all__ = [
    "ERROR_RESPONSES",
    "ERROR_STATUS",
    "MlflowApiError",
    "MlflowErrorOut",
    "MlflowRoute",
    "error_code_of",
    "json_answer",
    "mlflow_error_answer",
    "offset_of",
    "omit_empty",
    "page_token",
]

ERROR_STATUS: dict[str, int] = {
    "BAD_REQUEST": 400,
    "INVALID_PARAMETER_VALUE": 400,
    "INVALID_STATE": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "RESOURCE_LIMIT_EXCEEDED": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "RESOURCE_CONFLICT": 409,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "INTERNAL_ERROR": 500,
    "TEMPORARILY_UNAVAILABLE": 503,
}
"""MLflow's error codes and the HTTP status its server answers each with."""


class MlflowErrorOut(BaseModel):
    """MLflow's error answer (for OpenAPI)."""

    error_code: str
    message: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": MlflowErrorOut, "description": "INVALID_PARAMETER_VALUE, RESOURCE_ALREADY_EXISTS, …"},
    401: {
        "model": MlflowErrorOut,
        "description": "UNAUTHENTICATED: no valid token (the server runs with auth)",
    },
    403: {"model": MlflowErrorOut, "description": "PERMISSION_DENIED: a missing permission or grant"},
    404: {"model": MlflowErrorOut, "description": "RESOURCE_DOES_NOT_EXIST or ENDPOINT_NOT_FOUND"},
    408: {"model": ErrorOut, "description": "The request body stopped arriving (Shipyard's error shape)"},
    413: {
        "model": ErrorOut,
        "description": "Request body larger than max_request_bytes (Shipyard's error shape)",
    },
    429: {"model": MlflowErrorOut, "description": "REQUEST_LIMIT_EXCEEDED: too many failed sign-ins"},
    503: {
        "model": MlflowErrorOut,
        "description": "TEMPORARILY_UNAVAILABLE: the metadata store is unavailable",
    },
}
"""OpenAPI ``responses=`` of every MLflow route: MLflow's error shape, but for the body limits that
the server checks before any route runs."""

_CODES: tuple[tuple[type[ShipyardError], str], ...] = (  # most specific first
    (FilterSyntaxError, "INVALID_PARAMETER_VALUE"),
    (InvalidInput, "INVALID_PARAMETER_VALUE"),
    (NotFound, "RESOURCE_DOES_NOT_EXIST"),
    (AlreadyExists, "RESOURCE_ALREADY_EXISTS"),
    (InvalidState, "INVALID_STATE"),
    (PermissionDenied, "PERMISSION_DENIED"),
    (Unauthenticated, "UNAUTHENTICATED"),
    (RateLimited, "REQUEST_LIMIT_EXCEEDED"),
    (PayloadTooLarge, "RESOURCE_LIMIT_EXCEEDED"),
    (StoreUnavailable, "TEMPORARILY_UNAVAILABLE"),
)


class MlflowApiError(Exception):
    """An answer in MLflow's error shape: ``error_code`` (a key of :data:`ERROR_STATUS`) and a message
    that says what was wrong and how to fix it."""

    def __init__(self, message: str, error_code: str = "INVALID_PARAMETER_VALUE") -> None:
        if error_code not in ERROR_STATUS:
            raise ValueError(f"unknown MLflow error code {error_code!r}")
        super().__init__(message)
        self.message = message
        self.error_code = error_code

    @property
    def status(self) -> int:
        return ERROR_STATUS[self.error_code]


def error_code_of(exc: ShipyardError) -> str:
    """The MLflow error code for a Shipyard error (``INTERNAL_ERROR`` for what is not the client's)."""
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return "INTERNAL_ERROR" if exc.http_status >= 500 else "BAD_REQUEST"


_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def omit_empty(value: Any) -> Any:
    """``value`` as protobuf's JSON writes it: without the empty fields MLflow leaves out (None, "",
    [], {}), recursively, and non-finite floats as the strings protobuf reads back (``"NaN"``,
    ``"Infinity"``, ``"-Infinity"``). Zero and False stay: they are values.

    Example:
        >>> omit_empty({"a": None, "b": [], "c": {"d": ""}, "e": 0, "f": [{"g": float("nan"), "h": 1}]})
        {'e': 0, 'f': [{'g': 'NaN', 'h': 1}]}
    """
    kind = type(value)
    if kind is dict or isinstance(value, dict):
        out = {}
        for k, v in value.items():
            t = type(v)
            if t is int or t is bool:  # the common leaves first: nothing to do
                out[k] = v
            elif t is str:
                if v:
                    out[k] = v
            elif t is float:
                out[k] = v if v - v == 0.0 else _NON_FINITE[repr(v)]  # inf - inf and nan - nan are nan
            elif v is None:
                continue
            else:
                v = omit_empty(v)
                if v != "" and v != [] and v != {}:
                    out[k] = v
        return out
    if kind is list or isinstance(value, list):
        return [omit_empty(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return _NON_FINITE[repr(value)]
    return value


def json_answer(content: Any, status: int = 200) -> Response:
    """``content`` as MLflow's server sends it (see :func:`omit_empty`), int64 as JSON numbers."""
    body = orjson.dumps(omit_empty(content))
    return Response(body, status_code=status, media_type="application/json")


def mlflow_error_answer(error_code: str, message: str) -> Response:
    """``{"error_code", "message"}`` with MLflow's status for ``error_code``."""
    body = orjson.dumps({"error_code": error_code, "message": message})
    return Response(body, status_code=ERROR_STATUS[error_code], media_type="application/json")


def page_token(offset: int) -> str:
    """The ``next_page_token`` of a page that ends at ``offset`` (MLflow's own form: base64 JSON).

    Example:
        >>> offset_of(page_token(1000))
        1000
    """
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def offset_of(token: str | None) -> int:
    """Where the page a ``page_token`` names starts (0 without one); a token this server did not
    make answers ``INVALID_PARAMETER_VALUE``."""
    if not token:
        return 0
    offset: Any = None
    if len(token) <= 200:
        try:
            data = json.loads(base64.b64decode(token.encode("ascii"), validate=True))
            offset = data.get("offset") if isinstance(data, dict) else None
        except (ValueError, UnicodeEncodeError, binascii.Error, RecursionError):
            offset = None
    if offset.__class__ is not int or offset < 0:
        raise MlflowApiError(
            f"Invalid page token {token[:60]!r}: pass the next_page_token of the previous page"
        )
    return int(offset)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts)


class MlflowRoute(APIRoute):
    """A route whose every failure answers in MLflow's error shape (see the module's docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except MlflowApiError as exc:
                return mlflow_error_answer(exc.error_code, exc.message)
            except ClientFault as exc:
                return mlflow_error_answer(error_code_of(exc.error), exc.error.message)
            except ShipyardError as exc:
                return mlflow_error_answer(error_code_of(exc), exc.message)
            except RequestValidationError as exc:
                return mlflow_error_answer("INVALID_PARAMETER_VALUE", _validation_message(exc))

        return answer
