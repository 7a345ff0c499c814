"""The tracking server's error answers: the shared handlers of :mod:`shipyard.wire.handlers` (one JSON
shape for both servers, pinned by a test) and the OpenAPI ``responses=`` entry its routers share.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from shipyard.wire import handlers
from shipyard.wire.handlers import ErrorOut

__all__ = ["ERROR_RESPONSES", "ROUTES_HINT", "install_error_handlers"]

ROUTES_HINT = "the API is described at /docs"
"""How a 404 for an unknown route ends."""

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Bad input (malformed JSON, unsafe path, bad filter …)"},
    401: {"model": ErrorOut, "description": "No valid token (the server runs with auth)"},
    403: {
        "model": ErrorOut,
        "description": "Not allowed: a missing permission or grant, or an admin route off loopback",
    },
    404: {"model": ErrorOut, "description": "No such experiment, run, artifact or blob"},
    408: {"model": ErrorOut, "description": "The request body stopped arriving (body_read_timeout)"},
    409: {"model": ErrorOut, "description": "Conflict with the current state"},
    413: {"model": ErrorOut, "description": "Request body larger than max_request_bytes"},
    422: {"model": ErrorOut, "description": "A field is missing or has the wrong type"},
    429: {"model": ErrorOut, "description": "Too many failed sign-ins from this client (see Retry-After)"},
    503: {"model": ErrorOut, "description": "The metadata store is unavailable"},
}
"""OpenAPI ``responses=`` entry shared by every router."""


def install_error_handlers(app: FastAPI) -> None:
    """Register the shared error handlers on ``app`` (called once by ``create_app``).

    Example:
        >>> install_error_handlers(FastAPI())
    """
    handlers.install_error_handlers(app, routes_hint=ROUTES_HINT)
