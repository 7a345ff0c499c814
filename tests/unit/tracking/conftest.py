"""Fixtures for the tracking SDK: a module-level (fluent) API pointed at the test's own stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import shipyard as sy
from shipyard import Client
from shipyard.config import load_settings


@pytest.fixture
def fluent_client(tmp_path: Path, sqlite_uri: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """``sy.*`` helpers log to this test's SQLite store and artifact folder."""
    monkeypatch.setenv("SHIPYARD_FLUSH_INTERVAL", "0.05")
    sy.set_tracking_uri(sqlite_uri, str(tmp_path / "artifacts"))
    client = sy.get_client()
    yield client
    while (run := sy.active_run()) is not None:  # a failed test must not leak its run into the next
        run.end("killed")
    client.close()
    sy.set_tracking_uri(None)


@pytest.fixture
def make_client(tmp_path: Path, sqlite_uri: str) -> Iterator[object]:
    """Build extra clients on the same stores as ``client`` (other settings, or a second reader)."""
    made: list[Client] = []

    def make(**overrides: object) -> Client:
        settings = load_settings(
            tracking_uri=sqlite_uri, artifact_uri=str(tmp_path / "artifacts"), flush_interval=0.05
        ).replace(**overrides)
        c = Client(settings=settings)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
