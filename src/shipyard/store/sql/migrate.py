"""Apply Alembic migrations on open, once, under a lock; refuse a schema newer than this code."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

from shipyard.errors import SchemaError, SchemaTooNew
from shipyard.store.sql.schema import HEAD_REVISION
from shipyard.version import __version__

__all__ = ["current_revision", "known_revisions", "upgrade"]

_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_LOCK_KEY = 0x5348_4950  # "SHIP": serialises migrations across server workers


def current_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    return None if row is None else str(row[0])


def known_revisions() -> list[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(_MIGRATIONS))
    return [rev.revision for rev in script.walk_revisions()]


@contextlib.contextmanager
def _migration_lock(engine: Engine, sqlite_path: str | None) -> Iterator[None]:
    if sqlite_path:
        lock_path = Path(sqlite_path + ".migrate.lock")
        with lock_path.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
        return
    yield


def _check(rev: str | None, uri: str) -> bool:
    """True when the schema is current; raise when it is newer than this Shipyard."""
    if rev == HEAD_REVISION:
        return True
    if rev is not None and rev not in known_revisions():
        raise SchemaTooNew(
            f"The store {uri} has schema revision '{rev}', which this Shipyard "
            f"({__version__}, schema {HEAD_REVISION}) does not know: it was written by a newer "
            "Shipyard. Upgrade with: pip install -U shipyard"
        )
    return False


def upgrade(engine: Engine, uri: str, sqlite_path: str | None) -> None:
    """Bring the schema to head (no-op when already there)."""
    with engine.connect() as conn:
        if _check(current_revision(conn), uri):
            return
    with _migration_lock(engine, sqlite_path):
        with engine.connect() as conn:
            if _check(current_revision(conn), uri):
                return
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        try:
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except Exception as exc:
            raise SchemaError(f"Migrating the store {uri} to schema {HEAD_REVISION} failed: {exc}") from exc
