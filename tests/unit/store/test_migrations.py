"""Schema migrations: applied once on open, in step with the code, refusing a newer schema."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import alembic.command
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from shipyard.errors import SchemaError, SchemaTooNew
from shipyard.store.sql import SqlStore, migrate, schema

MIGRATIONS = Path(migrate.__file__).parent / "migrations"


@pytest.fixture
def db(store_uri: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(store_uri)
    yield engine
    engine.dispose()


def test_head_revision_constant_is_the_alembic_head() -> None:
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head == schema.HEAD_REVISION
    assert migrate.known_revisions()[0] == schema.HEAD_REVISION


def test_migration_history_is_linear() -> None:
    script = ScriptDirectory(str(MIGRATIONS))
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1


def test_fresh_database_is_migrated_to_head_on_open(store_uri: str, db: sa.Engine) -> None:
    store = SqlStore(store_uri)
    try:
        assert store.schema_version() == schema.HEAD_REVISION
    finally:
        store.close()
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [
            schema.HEAD_REVISION
        ]
        assert set(sa.inspect(conn).get_table_names()) == set(schema.metadata.tables) | {"alembic_version"}


def test_migrated_schema_matches_the_table_definitions(store_uri: str, db: sa.Engine) -> None:
    SqlStore(store_uri).close()
    # Server defaults are compared on PostgreSQL only: SQLite reflects '' defaults as raw SQL text.
    opts = {"compare_type": True, "compare_server_default": db.dialect.name == "postgresql"}
    with db.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts=opts), schema.metadata)
    assert diffs == []


def test_opening_a_current_store_again_runs_no_migration(
    store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_upgrade = alembic.command.upgrade

    def counting_upgrade(config, revision, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(revision)
        return real_upgrade(config, revision, **kwargs)

    monkeypatch.setattr(alembic.command, "upgrade", counting_upgrade)
    SqlStore(store_uri).close()
    assert calls == ["head"]
    first = SqlStore(store_uri)
    second = SqlStore(store_uri)
    assert calls == ["head"]
    assert first.schema_version() == second.schema_version() == schema.HEAD_REVISION
    first.close()
    second.close()


def test_opening_keeps_existing_data(store_uri: str) -> None:
    store = SqlStore(store_uri)
    store.create_experiment("kept")
    store.close()
    again = SqlStore(store_uri)
    assert [e.name for e in again.list_experiments()] == ["kept"]
    again.close()


def test_schema_newer_than_this_shipyard_is_refused_with_upgrade_advice(
    store_uri: str, db: sa.Engine
) -> None:
    SqlStore(store_uri).close()
    with db.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaTooNew) as info:
        SqlStore(store_uri)
    message = str(info.value)
    assert "'9999'" in message
    assert "newer" in message
    assert "pip install -U shipyard" in message
    assert isinstance(info.value, SchemaError)
    with db.connect() as conn:  # and it left the store alone
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == "9999"


def test_sqlite_store_is_in_wal_mode(sqlite_uri: str, tmp_path: Path) -> None:
    SqlStore(sqlite_uri).close()
    conn = sqlite3.connect(tmp_path / "shipyard.db")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_sqlite_connections_are_tuned_for_several_processes(sqlite_uri: str) -> None:
    store = SqlStore(sqlite_uri)
    try:
        with store._engine.connect() as conn:  # the pragmas are per connection
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    finally:
        store.close()


def test_sqlite_store_in_a_missing_folder_creates_the_folder(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "shipyard.db"
    SqlStore(f"sqlite:///{path}").close()
    assert path.is_file()


def test_a_failed_migration_raises_schema_error_naming_the_store(sqlite_uri: str, tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "shipyard.db")
    conn.execute("CREATE TABLE experiments (squatter TEXT)")  # a table in the way of revision 0001
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match="Migrating the store") as info:
        SqlStore(sqlite_uri)
    assert sqlite_uri in str(info.value)
