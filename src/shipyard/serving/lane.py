"""A direct lane for the model server's traffic: ``POST /predict``, ``/explain``, ``/feedback`` and
``/invocations`` (``shipyard.serving.access.TRAFFIC_PATHS``).

On a 1-row prediction FastAPI's per-request machinery cost a third of the event loop's time: route
matching, the request wrapping and dependency solving of its route, and two layers of exception
wrappers (Starlette's ``ExceptionMiddleware`` and the route's own). :class:`TrafficLane` answers these
requests as the innermost of the server's middlewares, so the layers outside it still apply (request
ids, access control, a crash answered as a JSON 500), with the routes' own endpoint functions:

- the endpoint's answer is sent as it is;
- an exception it raises goes to the app's exception handler for it, looked up as Starlette's
  ``ExceptionMiddleware`` does (by status for an ``HTTPException``, then along the exception's MRO;
  ``Exception`` itself is left to the outer layers, as Starlette leaves it to ``ServerErrorMiddleware``);
- any other method or path goes on to FastAPI's router (a ``GET /predict`` is a 405 as before), and
  so does everything under a ``root_path`` (a proxied or mounted server), which the router resolves.

The routes stay declared on the FastAPI app with the same endpoints, so ``/openapi.json`` and
``/docs`` describe them as before. ``tests/unit/serving/test_traffic_lane.py`` checks that both ways
give the same answers.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, HTTPExceptionHandler, Receive, Scope, Send

__all__ = ["Endpoint", "TrafficLane"]

Endpoint = Callable[[Request], Awaitable[Response]]
"""A route's endpoint: the request in, the answer out."""


class TrafficLane:
    """Pure ASGI middleware answering ``POST`` on ``endpoints``' paths itself (see the module docstring).

    Example:
        >>> from fastapi import FastAPI
        >>> app = FastAPI()
        >>> app.add_middleware(TrafficLane, endpoints={}, handlers=app.exception_handlers)
    """

    def __init__(
        self, app: ASGIApp, endpoints: Mapping[str, Endpoint], handlers: Mapping[Any, HTTPExceptionHandler]
    ) -> None:
        # Built with the middleware stack, at the app's first call: every handler is registered by then.
        self.app = app
        self.endpoints = dict(endpoints)
        self.by_status = {k: v for k, v in handlers.items() if isinstance(k, int) and k != 500}
        self.by_class = {k: v for k, v in handlers.items() if isinstance(k, type) and k is not Exception}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            endpoint = self.endpoints.get(scope["path"])
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            answer = handler(request, exc)  # the model server's handlers are all async
            response = await answer if inspect.isawaitable(answer) else answer
            exc.__traceback__ = None  # as Starlette does: a reused exception would pile up tracebacks
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> HTTPExceptionHandler | None:
        if isinstance(exc, HTTPException) and exc.status_code in self.by_status:
            return self.by_status[exc.status_code]
        for cls in type(exc).__mro__:
            if cls in self.by_class:
                return self.by_class[cls]
        return None
