"""Live-server fixtures: real uvicorn processes on 127.0.0.1, a free port each, health-checked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from server_process import LiveServer


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start live servers for one test (stopped at its end): ``make_server(workers=2, tracking_uri=...)``."""
    servers: list[LiveServer] = []

    def make(
        tracking_uri: str | None = None,
        workers: int = 1,
        start: bool = True,
        env: dict[str, str] | None = None,
    ) -> LiveServer:
        root = tmp_path / f"server{len(servers)}"
        root.mkdir()
        server = LiveServer(root, tracking_uri, workers, env)
        servers.append(server)
        return server.start() if start else server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One live server (SQLite) shared by the tests of a module."""
    server = LiveServer(tmp_path_factory.mktemp("shared-server")).start()
    yield server
    server.stop()
