"""Shared fixtures: hermetic SQLite stores, and a PostgreSQL database of the test's own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard import Client
from shipyard.config import load_settings

PG_ADMIN_URL = os.environ.get("SHIPYARD_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


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
    sqlalchemy = pytest.importorskip("sqlalchemy")
    pytest.importorskip("psycopg")
    name = f"shipyard_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sqlalchemy.exc.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_uri(request: pytest.FixtureRequest, sqlite_uri: str) -> str:
    """Both SQL backends: every test using it runs against SQLite and the real PostgreSQL."""
    if request.param == "sqlite":
        return sqlite_uri
    return str(request.getfixturevalue("pg_uri"))
