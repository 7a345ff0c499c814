"""The SQL store answers the same on SQLite and PostgreSQL: NUL, out-of-range integers, names nobody
could reference, search limits and runaway statements (each test runs on both backends)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from shipyard.entities import DatasetVersionCreate, LogBatch, RunCreate
from shipyard.errors import FilterSyntaxError, InvalidInput, StoreUnavailable
from shipyard.store.query import MAX_KEYS
from shipyard.store.sql import SqlStore
from shipyard.store.sql.engine import make_engine
from shipyard.store.sql.search import FREE_JOINS, SearchQuery

DIGEST = "a" * 64


@pytest.fixture
def store(store_uri: str) -> Iterator[SqlStore]:
    s = SqlStore(store_uri)
    yield s
    s.close()


def _run(store: SqlStore, run_id: str = "r1", **params: str) -> None:
    store.create_run(RunCreate(run_id, "e", "", 1, "u", params=dict(params)))


def test_nul_is_refused_in_writes_and_lookups(store: SqlStore) -> None:
    _run(store)
    attempts = [
        lambda: store.create_experiment("a\x00b"),
        lambda: store.create_experiment("ok", "a description with \x00"),
        lambda: store.get_experiment_by_name("a\x00b"),
        lambda: _run(store, "r2", lr="0.1\x00"),
        lambda: store.log_batch("r1", LogBatch(tags={"t": "\x00"})),
        lambda: store.log_batch("r1", LogBatch(params={"p\x00": "1"})),
        lambda: store.get_run("r\x00"),
        lambda: store.search_runs(filter="params.lr = '\x00'"),
        lambda: store.list_artifacts("r1", "a\x00"),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidInput, match="NUL"):
            attempt()
    assert [e.name for e in store.list_experiments()] == ["e"]
    assert store.get_run("r1").tags == {}


def test_integers_past_64_bits_are_refused(store: SqlStore) -> None:
    _run(store)
    for attempt in (
        lambda: store.get_experiment(10**30),
        lambda: store.search_runs(experiment_ids=[10**30]),
        lambda: store.list_audit(after_seq=10**30),
        lambda: store.get_dataset_version("d", f"v{10**30}"),
    ):
        with pytest.raises(InvalidInput):
            attempt()


@pytest.mark.parametrize(
    "name", ["", "   ", " lead", "trail ", "a\nb", "a\tb", "bell\x07", "rlo\u202egnp.exe", "iso\u2066x"]
)
def test_names_nobody_could_reference_are_refused_at_creation(store: SqlStore, name: str) -> None:
    with pytest.raises(InvalidInput):
        store.create_experiment(name)
    with pytest.raises(InvalidInput):
        store.create_dataset_version(DatasetVersionCreate(name, DIGEST, 1, 1, [("a", "Int64")], 1))
    with pytest.raises(InvalidInput):
        store.save_contract(name, "name: x\n", DIGEST)
    assert store.list_experiments() == []


@pytest.mark.parametrize("name", ["flights@v1", "flights@latest"])
def test_at_signs_are_refused_where_they_would_read_as_a_version(store: SqlStore, name: str) -> None:
    with pytest.raises(InvalidInput, match="'@'"):
        store.create_dataset_version(DatasetVersionCreate(name, DIGEST, 1, 1, [("a", "Int64")], 1))
    with pytest.raises(InvalidInput, match="'@'"):
        store.save_contract(name, "name: x\n", DIGEST)
    assert store.create_experiment(name).name == name  # experiments are never written name@ref


def test_a_search_past_the_key_limit_is_refused_not_a_join_error(store: SqlStore) -> None:
    _run(store)
    too_many = " or ".join(f"metrics.m{i} > 0" for i in range(70))  # SQLite joins at most 64 tables
    with pytest.raises(FilterSyntaxError, match=str(MAX_KEYS)):
        store.search_runs(filter=too_many)
    split = " and ".join(f"params.p{i} = '1'" for i in range(MAX_KEYS))
    with pytest.raises(InvalidInput, match=str(MAX_KEYS)):
        store.search_runs(filter=split, order_by=["metrics.extra desc"])


def test_a_search_with_the_most_keys_runs_on_both_backends(store: SqlStore) -> None:
    for i in range(4):
        _run(store, f"r{i}", **{f"p{j}": str(j) for j in range(MAX_KEYS)})
    every_key = " and ".join(f"params.p{j} = '{j}'" for j in range(MAX_KEYS))
    started = time.perf_counter()
    page = store.search_runs(filter=every_key, order_by=["params.p0 desc"])
    assert len(page.runs) == 4
    assert time.perf_counter() - started < 10  # was seconds of planning per key on PostgreSQL


def test_a_statement_past_statement_timeout_is_cancelled_with_a_clear_error(store_uri: str) -> None:
    engine = make_engine(store_uri, statement_timeout=0.3)
    slow = (
        "SELECT pg_sleep(5)"
        if engine.dialect.name == "postgresql"
        else "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    )
    try:
        with engine.connect() as conn:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="statement_timeout"):
                conn.execute(text(slow)).all()
            assert time.monotonic() - started < 4
            conn.rollback()
            assert conn.execute(text("SELECT 1")).scalar_one() == 1  # the connection is still good
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "flt",
    [
        "metrics.auc > 0.5 and params.model = 'rf'",
        "params.depth >= 4 or tags.team like 'r%'",
        "not params.model = 'rf' and metrics.loss is not null",
        "metrics.loss is null or params.depth in (2, 8)",
        "tags.team is null and not metrics.auc < 0.3",
    ],
)
def test_many_key_searches_answer_like_few_key_searches(store: SqlStore, flt: str) -> None:
    """Past FREE_JOINS keys a search reads pivots instead of one join per key: same answers."""
    for i in range(12):
        params = {"model": "rf" if i % 3 else "gb", "depth": str(i % 5 * 2)}
        store.create_run(RunCreate(f"r{i:02}", "e", "", 1000 + i, "u", params=params))
        metrics = [("auc", i / 12, 0, 1)] + ([("loss", 1 / (i + 1), 0, 1)] if i % 4 else [])
        store.log_batch(f"r{i:02}", LogBatch(metrics=metrics, tags={"team": "risk"} if i % 2 else {}))
    order = ["params.depth desc", "metrics.auc"]
    few = [r.id for r in store.search_runs(filter=flt, order_by=order).runs]
    padding = " or ".join(f"metrics.never{i} > 1" for i in range(FREE_JOINS + 1))
    many = [r.id for r in store.search_runs(filter=f"({flt}) or {padding}", order_by=order).runs]
    assert few and many == few
    query = SearchQuery.build(None, flt, order, 1000, None, None)  # both forms on either backend
    with store._engine.connect() as conn:
        for pivot in (False, True):
            assert list(conn.execute(query.statement(pivot)).scalars()) == few
