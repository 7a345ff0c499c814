"""In-process server harness: the app behind ``httpx.ASGITransport``, driven synchronously.

``httpx.ASGITransport`` is async-only, and ``starlette.testclient`` warns when used
with httpx (it wants httpx2), so ``SyncASGITransport`` runs the app on a private
event loop (an anyio blocking portal) and runs its lifespan, so stores are closed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
from fastapi import FastAPI

from shipyard.config import Settings, load_settings


class SyncASGITransport(httpx.BaseTransport):
    """A synchronous httpx transport that calls an ASGI app in-process."""

    def __init__(
        self, app: FastAPI, raise_app_exceptions: bool = True, client: tuple[str, int] = ("127.0.0.1", 123)
    ) -> None:
        """``client``: the peer address the app sees (loopback by default, as httpx's own default)."""
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self._inner = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions, client=client)
        self._lifespan = self._portal.wrap_async_context_manager(app.router.lifespan_context(app))
        self._lifespan.__enter__()
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        inner = httpx.Request(request.method, request.url, headers=request.headers, content=body)
        if "transfer-encoding" in request.headers:  # keep a chunked upload chunked (no length)
            del inner.headers["content-length"]

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            response = await self._inner.handle_async_request(inner)
            content = await response.aread()
            return response.status_code, response.headers.raw, content

        status, headers, content = self._portal.call(call)
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._lifespan.__exit__(None, None, None)
        self._portal_cm.__exit__(None, None, None)


class FlakyTransport(httpx.BaseTransport):
    """Wraps a transport; while ``down`` every request fails as if the server were gone."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.down = False
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def make_settings(root: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "tracking_uri": f"sqlite:///{root / 'server.db'}",
        "artifact_uri": str(root / "artifacts"),
        "home": str(root / "home"),
        "flush_interval": 0.05,
        "system_metrics": False,
    }
    values.update(overrides)
    return load_settings(**values)


class Borrowed(httpx.BaseTransport):
    """A transport that a client may close without closing the shared one underneath."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.inner.handle_request(request)
