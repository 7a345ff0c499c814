"""The model server's admin routes need a ``serve`` token, and with ``auth`` its traffic routes need
a token too; tokens are checked against the metadata store the deployment reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio.from_thread
import httpx
import pytest
from deployment_harness import records
from fastapi import FastAPI
from serving_harness import flights

from polling_helpers import wait_until
from shipyard.artifacts import FsspecBlobStore
from shipyard.config import load_settings
from shipyard.serving import ServeOptions, create_deployment_app, single_model_deployment
from shipyard.store.sql import SqlStore
from shipyard.tracking import Client


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore(f"sqlite:///{tmp_path / 'meta.db'}")
    s.create_user("eng", ["engineer"], "test")
    s.create_user("viewer", ["viewer"], "test")
    yield s
    s.close()


def _app(store: SqlStore, tmp_path: Path, model_dir: Path, auth: bool) -> FastAPI:
    settings = load_settings(tracking_uri=store.uri, artifact_uri=str(tmp_path / "art"), env={})
    client = Client.from_stores(settings, store, FsspecBlobStore(settings.artifact_uri))
    spec = single_model_deployment(
        str(model_dir), name="m", prediction_log={"enabled": False}, reload={"poll_interval_s": 0}
    )
    app: FastAPI = create_deployment_app(spec, ServeOptions(auth=auth), client=client)
    app.state.engine.preload()
    return app


class _Transport(httpx.BaseTransport):
    """In-process calls to the app as seen from ``client`` (no lifespan: the model is preloaded)."""

    def __init__(self, app: FastAPI, client: tuple[str, int]) -> None:
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self._inner = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=client)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        inner = httpx.Request(request.method, request.url, headers=request.headers, content=request.read())

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            response = await self._inner.handle_async_request(inner)
            return response.status_code, response.headers.raw, await response.aread()

        status, headers, content = self._portal.call(call)
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        self._portal_cm.__exit__(None, None, None)


def _http(app: FastAPI, client: tuple[str, int]) -> httpx.Client:
    return httpx.Client(transport=_Transport(app, client), base_url="http://testserver")


REMOTE = ("203.0.113.5", 5000)
LOCAL = ("127.0.0.1", 5000)


def test_admin_routes_need_a_serve_token_from_another_machine(
    store: SqlStore, tmp_path: Path, classifier_dir: Path
) -> None:
    app = _app(store, tmp_path, classifier_dir, auth=False)
    _r, serve_token = store.create_token("eng", "ops", "test", scopes=["serve"])
    _r, read_token = store.create_token("viewer", "look", "test")
    with _http(app, REMOTE) as remote, _http(app, LOCAL) as local:
        assert remote.post("/admin/reload").status_code == 401
        assert (
            remote.post("/admin/reload", headers={"Authorization": f"Bearer {read_token}"}).status_code == 403
        )
        assert (
            remote.post("/admin/reload", headers={"Authorization": f"Bearer {serve_token}"}).status_code
            == 200
        )
        assert local.post("/admin/reload").status_code == 200  # a local server without auth, as before
        body = {"records": records(flights(3))}
        assert remote.post("/predict", json=body).status_code == 200  # traffic stays open without auth


def test_with_auth_predict_needs_a_token_and_revocation_applies_within_a_second(
    store: SqlStore, tmp_path: Path, classifier_dir: Path
) -> None:
    app = _app(store, tmp_path, classifier_dir, auth=True)
    record, token = store.create_token("viewer", "app", "test")
    body = {"records": records(flights(3))}
    with _http(app, LOCAL) as http:
        assert http.post("/predict", json=body).status_code == 401
        assert http.post("/admin/reload").status_code == 401  # no loopback exception with auth on
        assert http.post("/predict", json=body, headers={"Authorization": "Bearer junk"}).status_code == 401
        ok = http.post("/predict", json=body, headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200, ok.text
        assert http.get("/health").status_code == 200 and http.get("/metrics").status_code == 200
        assert token not in http.get("/metrics").text
        store.revoke_token(record.id, "test")
        wait_until(
            lambda: (
                http.post("/predict", json=body, headers={"Authorization": f"Bearer {token}"}).status_code
                == 401
            ),
            "the revoked token to be refused",
            timeout=10,
        )
