"""The one JSON error shape every Shipyard server answers, and its decoding back into an exception::

    {"error": {"code": "run_not_found", "message": "Run 'a1b2' not found ...", "details": {}}}

``ShipyardError.to_dict()`` builds it for Shipyard errors, :func:`error_body` for the others (unknown
routes, malformed requests, crashes); :func:`error_from_response` turns an answer back into the same
``ShipyardError`` subclass on the client side. No FastAPI here: the REST client imports this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.errors import (
    FilterSyntaxError,
    InvalidInput,
    InvalidState,
    NotFound,
    PayloadTooLarge,
    ServerUnreachable,
    ShipyardError,
    StoreUnavailable,
    error_class_for_code,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["error_body", "error_from_response"]

_UNAVAILABLE_STATUS = (502, 503, 504)
_BY_STATUS: dict[int, type[ShipyardError]] = {
    400: InvalidInput,
    404: NotFound,
    409: InvalidState,
    413: PayloadTooLarge,
    422: InvalidInput,
    503: StoreUnavailable,
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON error shape for errors that are not a ``ShipyardError``.

    Example:
        >>> error_body("not_found", "No route GET /nope")
        {'error': {'code': 'not_found', 'message': 'No route GET /nope', 'details': {}}}
    """
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_from_response(response: httpx.Response, server: str) -> ShipyardError:
    """The ``ShipyardError`` a server's error answer stands for (same class, message and details).

    An answer without the JSON shape (a proxy's HTML page) maps by status: 502-504 are
    ``ServerUnreachable`` (the server behind the gateway did not answer), 404 ``NotFound``, and so on.

    Example:
        >>> import httpx
        >>> r = httpx.Response(404, json={"error": {"code": "run_not_found", "message": "no run x"}})
        >>> type(error_from_response(r, "http://srv")).__name__
        'RunNotFound'
    """
    status = response.status_code
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
        details = dict(error.get("details") or {})
    except (ValueError, KeyError, TypeError):
        if status in _UNAVAILABLE_STATUS:
            return ServerUnreachable(f"Shipyard server {server} answered {status}; it is down or restarting")
        cls = _BY_STATUS.get(status, ShipyardError)
        return cls(
            f"Shipyard server {server} answered {status} {response.reason_phrase}: {response.text[:300]}"
        )
    if code == FilterSyntaxError.code and {"reason", "text", "position"} <= details.keys():
        return FilterSyntaxError(
            str(details["reason"]), text=str(details["text"]), position=int(details["position"])
        )
    cls = error_class_for_code(code)
    if cls is ShipyardError and code != ShipyardError.code:
        cls = _BY_STATUS.get(status, ShipyardError)
    error = cls(message, details=details)
    error.remote_code = code  # the answer's own code, e.g. method_not_allowed for a route it lacks
    return error
