"""Pooled PostgreSQL connections are pinged only after sitting idle (``engine.PING_AFTER_IDLE_S``).

A ping on every checkout is a round trip on every request of a busy server; without any, a
connection PostgreSQL dropped (a restart, an idle timeout) fails the next request. These tests kill
the store's backends with ``pg_terminate_backend`` and check both sides of the trade: after the idle
time the dead connection is replaced before use; within it one call fails with ``StoreUnavailable``
and the pool is replaced for the next.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from shipyard.errors import StoreUnavailable
from shipyard.store.sql import SqlStore, engine


def kill_backends(uri: str) -> int:
    """Terminate every other connection to the store's database; how many there were."""
    admin = create_engine(uri, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).all()
            )
    finally:
        admin.dispose()


def test_a_connection_dropped_while_idle_is_replaced_before_use(
    pg_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "PING_AFTER_IDLE_S", 0.0)  # every pooled connection counts as idle
    store = SqlStore(pg_uri)
    try:
        store.create_experiment("before")
        assert kill_backends(pg_uri) >= 1
        assert [e.name for e in store.list_experiments()] == ["before"]  # no error: pinged, replaced
    finally:
        store.close()


def test_a_connection_dropped_while_busy_fails_one_call_then_the_pool_is_new(
    pg_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "PING_AFTER_IDLE_S", 3600.0)  # never pinged
    store = SqlStore(pg_uri)
    try:
        store.create_experiment("before")
        assert kill_backends(pg_uri) >= 1
        with pytest.raises(StoreUnavailable):
            store.list_experiments()
        assert [e.name for e in store.list_experiments()] == ["before"]
    finally:
        store.close()
