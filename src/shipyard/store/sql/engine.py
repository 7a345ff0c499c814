"""Engine creation: SQLite tuned for several processes (WAL, busy timeout, immediate writes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from shipyard.errors import ConfigError, MissingExtra

__all__ = ["make_engine", "sqlite_path"]

BUSY_TIMEOUT_MS = 60_000


def sqlite_path(uri: str) -> str | None:
    url = make_url(uri)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return url.database


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so we can say BEGIN IMMEDIATE for writes.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: never corrupt, durable across kills
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA case_sensitive_like=ON")  # LIKE is case-sensitive, as on PostgreSQL
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front: no deadlock-prone read->write upgrade.
        immediate = conn.get_execution_options().get("immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(uri: str) -> Engine:
    """Create an engine for ``sqlite:///…`` or ``postgresql+psycopg://…``."""
    try:
        url = make_url(uri)
    except ArgumentError as exc:
        raise ConfigError(
            f"Cannot parse tracking URI {uri!r}: {exc}. Use sqlite:///path.db, "
            "postgresql+psycopg://user@host/db or http://host:port"
        ) from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = url.database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        in_memory = not path or path == ":memory:"
        kwargs: dict[str, Any] = {"poolclass": StaticPool} if in_memory else {}
        engine = create_engine(url, **kwargs)
        _tune_sqlite(engine)
        return engine
    if backend == "postgresql":
        try:
            return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
        except ModuleNotFoundError as exc:
            raise MissingExtra(
                f"PostgreSQL support needs psycopg: pip install 'shipyard[postgres]' ({exc})"
            ) from None
    raise ConfigError(
        f"Unsupported tracking URI scheme {url.drivername!r} in {uri!r}; "
        "use sqlite:///…, postgresql+psycopg://… or http(s)://…"
    )
