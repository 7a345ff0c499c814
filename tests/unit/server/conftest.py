"""Fixtures: one in-process server per test module, plain HTTP and ``RestStore`` clients on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from server_harness import Borrowed, SyncASGITransport, make_settings

from shipyard.server import create_app
from shipyard.store.rest import RestStore


@pytest.fixture(scope="module")
def server_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server")


@pytest.fixture(scope="module")
def app(server_root: Path) -> FastAPI:
    return create_app(make_settings(server_root, max_request_bytes=256 * 1024))


@pytest.fixture(scope="module")
def transport(app: FastAPI) -> Iterator[SyncASGITransport]:
    t = SyncASGITransport(app)
    yield t
    t.close()


@pytest.fixture
def http(transport: SyncASGITransport) -> Iterator[httpx.Client]:
    """A plain HTTP client on the module's in-process server."""
    with httpx.Client(transport=Borrowed(transport), base_url="http://testserver") as client:
        yield client


@pytest.fixture
def rest_store(transport: SyncASGITransport, tmp_path: Path) -> Iterator[RestStore]:
    """The REST client store on the module's in-process server (its spool in this test's folder)."""
    store = RestStore("http://testserver", make_settings(tmp_path), transport=Borrowed(transport))
    yield store
    store.close()
