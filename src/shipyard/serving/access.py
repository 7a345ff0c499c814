"""Who may call the model server: its admin routes always need a token with the ``serve`` scope
(except from loopback when the server runs without ``auth``, as before), and with ``auth`` on its
traffic routes (``/predict``, ``/explain``, ``/feedback``, ``/invocations``) need a token with ``read`` or
``serve``.

Tokens are checked against the same metadata store the deployment reads (``ChecksTokens``: the
database itself, or the tracking server's ``/api/v1/auth/whoami``); an answer is cached per process
for at most :data:`CACHE_S` so a revoked token stops working within that second. Failed checks are
limited per client address like the tracking server's.
"""

from __future__ import annotations

import ipaddress
import threading
import time

import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from shipyard.auth import FailureLimiter, Principal, bearer_credential, looks_like_token, token_digest
from shipyard.errors import PermissionDenied, RateLimited, ShipyardError, Unauthenticated
from shipyard.store import ChecksTokens
from shipyard.wire.handlers import error_response

__all__ = ["CACHE_S", "TRAFFIC_PATHS", "ServingAccess"]

CACHE_S = 1.0
"""How long a model server process trusts a token check (revocation takes effect within this)."""
TRAFFIC_PATHS = frozenset({"/predict", "/explain", "/feedback", "/invocations"})
_CACHE_MAX = 10_000


def _loopback(scope: Scope) -> bool:
    client = scope.get("client")
    if not client:
        return False
    try:
        return ipaddress.ip_address(str(client[0]).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class ServingAccess:
    """ASGI middleware of the model server (see the module docstring)."""

    def __init__(self, app: ASGIApp, store: ChecksTokens | None, auth: bool) -> None:
        self.app, self.store, self.auth = app, store, auth
        self.limiter = FailureLimiter()
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        admin = path.startswith("/admin/")
        if admin or (self.auth and path in TRAFFIC_PATHS):
            try:
                await self._check(scope, admin)
            except ShipyardError as exc:
                response = error_response(exc)
                if isinstance(exc, Unauthenticated):
                    response.headers["WWW-Authenticate"] = 'Bearer realm="shipyard-serve"'
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _check(self, scope: Scope, admin: bool) -> None:
        credential = bearer_credential(scope.get("headers", []))
        if admin and credential is None and not self.auth and _loopback(scope):
            return  # unchanged for a local, unauthenticated model server
        client = str(scope["client"][0]) if scope.get("client") else "unknown"
        wait = self.limiter.retry_after(client)
        if wait > 0:
            raise RateLimited(f"Too many failed token checks from {client}; retry in {int(wait) + 1} s")
        if not credential:
            if credential == "":
                self.limiter.fail(client)
            what = (
                "admin routes need a token with the 'serve' scope"
                if admin
                else "this model server needs a token"
            )
            raise Unauthenticated(f"{scope['path']}: {what} (Authorization: Bearer <token>)")
        principal = await self._principal(credential)
        if principal is None:
            self.limiter.fail(client)
            raise Unauthenticated("The token is not valid (unknown, expired or revoked)")
        needed = {"serve"} if admin else {"read", "serve"}
        if not needed & set(principal.scopes):
            raise PermissionDenied(
                f"{principal.name}'s token lacks the scope {' or '.join(sorted(needed))} for {scope['path']}"
            )
        if admin and "serve" not in principal.permissions:
            raise PermissionDenied(
                f"{principal.name} holds no role that may manage serving (engineer or admin)"
            )

    async def _principal(self, credential: str) -> Principal | None:
        if self.store is None:
            raise Unauthenticated("This model server has no metadata store to check tokens against")
        if not looks_like_token(credential):
            return None
        key, now = token_digest(credential), time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < CACHE_S:
            return hit[1]
        principal = await anyio.to_thread.run_sync(self.store.check_token, credential)
        with self._lock:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key] = (now, principal)
        return principal
