"""``SqlStore`` on a real PostgreSQL: races between writers and servers that SQLite serialises away.

SQLite takes the write lock up front (``BEGIN IMMEDIATE``); PostgreSQL runs writers side by side
under READ COMMITTED, so idempotency, upserts and migrations must hold under real concurrency.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from shipyard import Client
from shipyard.config import load_settings
from shipyard.entities import LogBatch, RunCreate, RunStatus
from shipyard.errors import StoreUnavailable
from shipyard.store.sql import SqlStore
from shipyard.store.sql.schema import HEAD_REVISION

pytestmark = pytest.mark.integration

THREADS = 6
T0 = 1_767_225_600_000


def race(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``n`` threads released together; return results (exceptions included)."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def target(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:  # collected and asserted on by the caller
            results[i] = exc

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    return results


@pytest.fixture
def stores(pg_uri: str) -> Iterator[list[SqlStore]]:
    """Several stores (each with its own connection pool), like several server workers."""
    first = SqlStore(pg_uri)
    made = [first] + [SqlStore(pg_uri) for _ in range(THREADS - 1)]
    yield made
    for s in made:
        s.close()


def spec(run_id: str, experiment: str = "exp", **kw: Any) -> RunCreate:
    return RunCreate(run_id=run_id, experiment_name=experiment, name="r", start_time=T0, user="u", **kw)


def test_servers_opening_a_fresh_database_at_once_migrate_it_exactly_once(pg_uri: str) -> None:
    results = race(THREADS, lambda _: SqlStore(pg_uri))
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors
    try:
        assert {s.schema_version() for s in results} == {HEAD_REVISION}
    finally:
        for s in results:
            s.close()
    engine = sa.create_engine(pg_uri)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [
            HEAD_REVISION
        ]
    engine.dispose()


def test_concurrent_creates_of_the_same_run_id_all_return_that_run(stores: list[SqlStore]) -> None:
    """A retried request racing its original must not surface a raw unique-violation error."""
    for attempt in range(3):
        run_id = f"same-{attempt}"
        same = spec(run_id, f"exp-{attempt}", params={"p": "1"})
        results = race(THREADS, lambda i, same=same: stores[i].create_run(same))
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, errors
        assert {r.id for r in results} == {run_id}
        assert all(r.params == {"p": "1"} for r in results)
    assert [e.name for e in stores[0].list_experiments()] == ["exp-0", "exp-1", "exp-2"]


def test_concurrent_runs_creating_one_new_experiment_share_it(stores: list[SqlStore]) -> None:
    results = race(THREADS, lambda i: stores[i].create_run(spec(uuid.uuid4().hex, "brand-new")))
    assert not [r for r in results if isinstance(r, BaseException)]
    assert len({r.experiment_id for r in results}) == 1
    assert [e.name for e in stores[0].list_experiments()] == ["brand-new"]


def test_replaying_one_batch_concurrently_applies_it_once(stores: list[SqlStore]) -> None:
    run_id = stores[0].create_run(spec("replayed")).id
    batch = LogBatch(metrics=[("loss", float(i), i, T0 + i) for i in range(100)], batch_id=uuid.uuid4().hex)
    results = race(THREADS, lambda i: stores[i].log_batch(run_id, batch))
    assert not [r for r in results if isinstance(r, BaseException)]
    assert stores[0].get_metric_history(run_id, "loss").steps == list(range(100))


def test_concurrent_writers_of_one_key_keep_the_latest_point_by_step(stores: list[SqlStore]) -> None:
    run_id = stores[0].create_run(spec("upserts")).id
    rounds = 30

    def write(i: int) -> None:
        for r in range(rounds):
            step = r * THREADS + i  # interleaved: every writer holds some of the highest steps
            stores[i].log_batch(run_id, LogBatch(metrics=[("acc", step / 1000, step, T0 + step)]))

    assert not [r for r in race(THREADS, write) if isinstance(r, BaseException)]
    top = rounds * THREADS - 1
    assert stores[0].get_run(run_id).metrics == {"acc": top / 1000}
    assert stores[0].get_metric_history(run_id, "acc").steps == list(range(top + 1))


def test_compaction_racing_with_writers_loses_no_point(stores: list[SqlStore]) -> None:
    run_id = stores[0].create_run(spec("compacting")).id

    def work(i: int) -> None:
        if i == 0:
            for _ in range(20):
                stores[0].update_run(run_id, status=RunStatus.FINISHED)  # compacts every time
            return
        for r in range(40):
            stores[i].log_batch(run_id, LogBatch(metrics=[(f"k{i}", float(r), r, T0 + r)]))

    assert not [r for r in race(THREADS, work) if isinstance(r, BaseException)]
    stores[0].update_run(run_id, status=RunStatus.FINISHED)
    for i in range(1, THREADS):
        history = stores[0].get_metric_history(run_id, f"k{i}")
        assert history.steps == list(range(40))
        assert history.values == [float(r) for r in range(40)]


def test_non_finite_values_survive_postgresql_double_precision(pg_uri: str) -> None:
    store = SqlStore(pg_uri)
    try:
        run_id = store.create_run(spec("nonfinite")).id
        values = [math.inf, -math.inf, math.nan, -0.0, 5e-324, 1.7976931348623157e308]
        store.log_batch(run_id, LogBatch(metrics=[("v", v, i, T0) for i, v in enumerate(values)]))
        got = store.get_metric_history(run_id, "v").values
        assert [math.copysign(1, x) for x in got if not math.isnan(x)] == [1, -1, -1, 1, 1]
        assert got[:2] == [math.inf, -math.inf] and math.isnan(got[2]) and got[3:] == values[3:]
        store.log_batch(run_id, LogBatch(metrics=[("latest", math.inf, 0, T0)]))
        assert store.search_runs(filter="metrics.latest > 1e308").runs[0].id == run_id
        # a search page and get_run read latest values through JSON on PostgreSQL: exact, signs kept
        store.log_batch(run_id, LogBatch(metrics=[(f"k{i}", v, 0, T0) for i, v in enumerate(values)]))
        for run in (store.search_runs(filter="metrics.latest > 1e308").runs[0], store.get_run(run_id)):
            got = [run.metrics[f"k{i}"] for i in range(len(values))]
            assert [math.copysign(1, x) for x in got if not math.isnan(x)] == [1, -1, -1, 1, 1]
            assert got[:2] == [math.inf, -math.inf] and math.isnan(got[2]) and got[3:] == values[3:]
            assert run.metrics["latest"] == math.inf and run.params == {} and run.tags == {}
        only = store.search_runs(filter="metrics.latest > 1e308", columns=["metrics.k4"]).runs[0]
        assert only.metrics == {"k4": 5e-324} and only.params == {} and only.experiment_name == "exp"
    finally:
        store.close()


def test_sdk_clients_in_threads_log_to_postgresql(pg_uri: str, tmp_path: Any) -> None:
    client = Client(
        settings=load_settings(tracking_uri=pg_uri, artifact_uri=str(tmp_path / "a"), flush_interval=0.02)
    )
    try:

        def train(i: int) -> str:
            with client.start_run(
                experiment="pg", name=f"t{i}", params={"i": i}, log_environment=False
            ) as run:
                for step in range(500):
                    run.log_metric("loss", 1 / (step + 1))
                run.log_bytes(f"model {i}".encode(), "model.bin")
            return run.id

        ids = race(4, train)
        assert not [r for r in ids if isinstance(r, BaseException)]
        df = client.search_runs("pg", order_by="params.i")
        assert df["run_name"].tolist() == ["t0", "t1", "t2", "t3"]
        assert (df["metrics.loss"] == 1 / 500).all()
        assert [client.read_artifact(r, "model.bin") for r in df["run_id"]] == [
            f"model {i}".encode() for i in range(4)
        ]
    finally:
        client.close()


def test_unreachable_postgresql_raises_store_unavailable_naming_the_store() -> None:
    uri = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="127.0.0.1:1"):
        SqlStore(uri)
    assert time.monotonic() - started < 10
