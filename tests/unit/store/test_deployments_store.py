"""Deployment records in ``SqlStore`` (SQLite and PostgreSQL), through ``deploy`` and over REST."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shipyard.audit import verify_chain
from shipyard.errors import InvalidInput, NotFound
from shipyard.store.sql import SqlStore


@pytest.fixture
def store(store_uri: str) -> Iterator[SqlStore]:
    s = SqlStore(store_uri)
    yield s
    s.close()


def test_versions_audit_and_the_same_spec_is_a_no_op(store: SqlStore) -> None:
    first = store.save_deployment("churn", "a: 1\n", "alice", "first")
    same = store.save_deployment("churn", "a: 1\n", "bob")
    second = store.save_deployment("churn", "a: 2\n", "bob", "canary")
    assert (first.version, same.version, second.version) == (1, 1, 2)
    assert store.get_deployment("churn").spec_yaml == "a: 2\n"
    assert store.get_deployment("churn", "v1").created_by == "alice"
    assert store.get_deployment("churn", 1).digest == first.digest
    entries = store.list_audit(action="deployment.save")
    assert [(e.actor, e.before, e.after["version"], e.reason) for e in entries] == [
        ("alice", None, 1, "first"),
        ("bob", {"version": 1, "spec": "a: 1\n"}, 2, "canary"),
    ]
    assert verify_chain(store.list_audit()).ok


def test_listing_latest_per_name_and_history(store: SqlStore) -> None:
    store.save_deployment("b", "x: 1\n", "u")
    store.save_deployment("a", "x: 1\n", "u")
    store.save_deployment("a", "x: 2\n", "u")
    assert [(d.name, d.version) for d in store.list_deployments()] == [("a", 2), ("b", 1)]
    assert [d.version for d in store.list_deployments("a")] == [1, 2]


def test_errors_name_the_problem(store: SqlStore) -> None:
    with pytest.raises(NotFound, match="shipyard deployments ls"):
        store.get_deployment("ghost")
    with pytest.raises(InvalidInput, match="Deployment name"):
        store.save_deployment("bad name", "x: 1", "u")
    with pytest.raises(InvalidInput, match="needs a spec"):
        store.save_deployment("ok", "  ", "u")
    store.save_deployment("ok", "x: 1", "u")
    with pytest.raises(InvalidInput, match="not understood"):
        store.get_deployment("ok", "newest")
