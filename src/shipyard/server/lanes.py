"""A fast lane for the SDK's hottest request: ``POST /api/v1/runs/record``, one per short run.

FastAPI's per-request machinery (route matching across every router, dependency solving, its own
middlewares) costs more server CPU than recording the run does. :class:`RecordLane` answers that
one request below the shared middlewares (access control has authenticated and authorised it
through :data:`shipyard.server.access.RULES`, the body limit applies) and above FastAPI's router,
with the route's own code (:func:`shipyard.server.routers.runs.record`) and the route's model:

- a valid body is recorded (204), a refused one answered with the error the route's handlers
  give (``install_error_handlers``: a ``ShipyardError`` or a ``ClientFault``);
- anything else (a body that fails validation, not JSON, another content type) goes on to the
  FastAPI route unchanged, body included, so every error answer is exactly the route's.

The route stays declared for ``/openapi.json`` and answers whatever the lane passes on.
``tests/unit/server/test_record_lane.py`` checks both give the same answers.
"""

from __future__ import annotations

import logging

import anyio.to_thread
import orjson
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.errors import ShipyardError
from shipyard.server.routers.runs import record
from shipyard.server.schemas import RunRecordIn
from shipyard.server.state import ServerState
from shipyard.wire.handlers import ClientFault, error_response

__all__ = ["RECORD_PATH", "RecordLane"]

log = logging.getLogger(__name__)

RECORD_PATH = "/api/v1/runs/record"
_NO_CONTENT: Message = {"type": "http.response.start", "status": 204, "headers": []}
_EMPTY: Message = {"type": "http.response.body", "body": b""}


def _is_json(scope: Scope) -> bool:
    for key, value in scope.get("headers", ()):
        if key == b"content-type":
            return bool(value.split(b";", 1)[0].strip().lower() == b"application/json")
    return False


class RecordLane:
    """Answer ``POST /api/v1/runs/record`` with a valid JSON body; pass everything else on."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != RECORD_PATH
            or scope["method"] != "POST"
            or not _is_json(scope)
        ):
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        try:
            parsed = RunRecordIn.model_validate(orjson.loads(body))
        except (orjson.JSONDecodeError, ValidationError, RecursionError):
            await self.app(scope, _replay(body, receive), send)  # the route answers: its exact message
            return
        principal = scope.get("state", {}).get("principal")
        author = principal.name if principal is not None else parsed.user
        try:
            await anyio.to_thread.run_sync(record, parsed, self.state.store, self.state.blobs, author)
        except ShipyardError as exc:
            if exc.http_status >= 500:
                log.warning("%s: %s", exc.code, exc.message)
            await error_response(exc)(scope, receive, send)
            return
        except ClientFault as fault:  # e.g. an artifact whose blob was never uploaded
            await error_response(fault.error, fault.status)(scope, receive, send)
            return
        await send(_NO_CONTENT)
        await send(_EMPTY)


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` handing over ``body`` once more (it was read already), then the connection's own."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
