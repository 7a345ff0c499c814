"""Shared fixtures: hermetic SQLite stores, and a PostgreSQL database of the test's own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pg_helpers import pg_database
from shipyard import Client
from shipyard.config import load_settings

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's SHIPYARD_* settings or writes into the work tree."""
    for key in list(os.environ):
        if key.startswith("SHIPYARD_") and key != "SHIPYARD_TEST_PG":
            monkeypatch.delenv(key)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_SYSTEM_METRICS", "false")
    monkeypatch.setenv("SHIPYARD_CONFIG", str(tmp_path / "absent.toml"))
    from shipyard.tracking import fluent

    fluent.set_tracking_uri(None)


@pytest.fixture
def sqlite_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'shipyard.db'}"


@pytest.fixture
def client(tmp_path: Path, sqlite_uri: str) -> Iterator[Client]:
    settings = load_settings(
        tracking_uri=sqlite_uri, artifact_uri=str(tmp_path / "artifacts"), flush_interval=0.05
    )
    c = Client(settings=settings)
    yield c
    c.close()


@pytest.fixture
def pg_uri() -> Iterator[str]:
    """A fresh PostgreSQL database on 127.0.0.1, dropped after the test."""
    with pg_database() as uri:
        yield uri


@pytest.fixture(params=["sqlite", "postgresql"])
def store_uri(request: pytest.FixtureRequest, sqlite_uri: str) -> str:
    """Both SQL backends: every test using it runs against SQLite and the real PostgreSQL."""
    if request.param == "sqlite":
        return sqlite_uri
    return str(request.getfixturevalue("pg_uri"))


# -- markers and CI strictness ---------------------------------------------------------------------
_LIVE_FIXTURES = {"pg_uri", "make_server", "shared_server"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything that needs PostgreSQL or a live server process carries the ``integration`` marker,
    wherever it lives, so ``-m "not integration"`` is the hermetic tier."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        if (
            "integration" in item.path.parts
            or fixtures & _LIVE_FIXTURES
            or params.get("store_uri") == "postgresql"
        ):
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under CI a test skipped for a missing optional library fails: the dev install includes every
    extra the tests use, so a skip there would hide a broken install."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
        if "could not import" in reason or "No module named" in reason:
            report.outcome = "failed"
            report.longrepr = f"{reason} (under CI every extra of .[dev] must be installed)"
