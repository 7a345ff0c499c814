"""A whole ended run in one write (``log_run``), and artifacts recorded with a run's end (``update_run``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event

from shipyard.entities import Artifact, LogBatch, RunCreate, RunStatus
from shipyard.errors import InvalidInput, RunNotFound, UnsafePath
from shipyard.store.sql import SqlStore


@pytest.fixture
def store(store_uri: str) -> Iterator[SqlStore]:
    s = SqlStore(store_uri)
    yield s
    s.close()


def _spec(run_id: str, parent: str | None = None) -> RunCreate:
    return RunCreate(
        run_id=run_id,
        experiment_name="e",
        name="step",
        start_time=5,
        user="u",
        parent_run_id=parent,
        params={"x": "1"},
        tags={"sy.cache": "hit"},
    )


def _writes(store: SqlStore) -> list[str]:
    """Statements run on the store's engine from now on (BEGIN IMMEDIATE marks a write on SQLite)."""
    seen: list[str] = []
    event.listen(store._engine, "before_cursor_execute", lambda c, cur, stmt, *a: seen.append(stmt))
    event.listen(store._engine, "commit", lambda conn: seen.append("COMMIT"))
    return seen


def test_log_run_records_the_whole_ended_run_in_one_transaction(store: SqlStore) -> None:
    store.create_run(_spec("p" * 32))
    seen = _writes(store)
    batch = LogBatch(tags={"sy.step_status": "cached"}, metrics=[("cost.usd", 0.5, 0, 7)])
    arts = [Artifact("inputs/x", "a" * 64, 3, 6), Artifact("outputs/0", "b" * 64, 4, 6)]
    store.log_run(
        _spec("r" * 32, parent="p" * 32), status=RunStatus.FINISHED, end_time=9, batch=batch, artifacts=arts
    )
    assert seen.count("COMMIT") == 1
    run = store.get_run("r" * 32)
    assert (run.status, run.start_time, run.end_time, run.parent_run_id) == (
        RunStatus.FINISHED,
        5,
        9,
        "p" * 32,
    )
    assert run.params == {"x": "1"}
    assert run.tags == {"sy.cache": "hit", "sy.step_status": "cached"}
    assert run.metrics == {"cost.usd": 0.5}
    assert [(a.path, a.digest) for a in store.list_artifacts("r" * 32)] == [
        ("inputs/x", "a" * 64),
        ("outputs/0", "b" * 64),
    ]


def test_log_run_is_idempotent_and_refuses_a_live_status(store: SqlStore) -> None:
    store.log_run(_spec("r" * 32), status=RunStatus.KILLED, end_time=9)
    store.log_run(_spec("r" * 32), status=RunStatus.FINISHED, end_time=10)  # a retry: left as it is
    assert (store.get_run("r" * 32).status, store.get_run("r" * 32).end_time) == (RunStatus.KILLED, 9)
    with pytest.raises(InvalidInput, match="not an end status"):
        store.log_run(_spec("s" * 32), status=RunStatus.RUNNING, end_time=9)


def test_a_refused_log_run_leaves_no_run(store: SqlStore) -> None:
    clash = [Artifact("m", "a" * 64, 1, 1), Artifact("m/w.bin", "b" * 64, 1, 1)]
    with pytest.raises(UnsafePath):
        store.log_run(_spec("r" * 32), status=RunStatus.FINISHED, end_time=9, artifacts=clash)
    assert store.search_runs().runs == []


def test_update_run_records_artifacts_with_the_end(store: SqlStore) -> None:
    store.create_run(_spec("r" * 32))
    seen = _writes(store)
    store.update_run(
        "r" * 32,
        status=RunStatus.FINISHED,
        final_batch=LogBatch(tags={"t": "1"}),
        artifacts=[Artifact("outputs/0", "b" * 64, 4, 6)],
    )
    assert seen.count("COMMIT") == 1
    assert [a.path for a in store.list_artifacts("r" * 32)] == ["outputs/0"]
    assert store.get_run("r" * 32).status == RunStatus.FINISHED


def test_a_path_clash_with_recorded_artifacts_fails_the_end_as_a_whole(store: SqlStore) -> None:
    store.create_run(_spec("r" * 32))
    store.record_artifacts("r" * 32, [Artifact("outputs/0/extra.txt", "a" * 64, 1, 1)])
    with pytest.raises(UnsafePath):
        store.update_run(
            "r" * 32, status=RunStatus.FINISHED, artifacts=[Artifact("outputs/0", "b" * 64, 4, 6)]
        )
    assert store.get_run("r" * 32).status == RunStatus.RUNNING
    assert [a.path for a in store.list_artifacts("r" * 32)] == ["outputs/0/extra.txt"]


def test_a_run_of_a_known_experiment_is_recorded_whole_idempotently_and_all_or_nothing(
    store: SqlStore,
) -> None:
    """Once the experiment is known, PostgreSQL records a run in one statement without a
    transaction: the same answers as the transactional path (which SQLite always takes)."""
    store.log_run(_spec("a" * 32), status=RunStatus.FINISHED, end_time=9)  # the experiment is now known
    seen = _writes(store)
    batch = LogBatch(params={"y": "2"}, tags={"t": "v"}, metrics=[("loss", 0.5, 0, 7), ("loss", 0.25, 1, 8)])
    store.log_run(_spec("b" * 32, parent="a" * 32), status=RunStatus.FAILED, end_time=10, batch=batch)
    if store._dialect == "postgresql":
        assert "COMMIT" not in seen and len(seen) == 2, seen  # the parent's check, then the run
    run = store.get_run("b" * 32)
    assert (run.status, run.end_time, run.parent_run_id, run.experiment_name) == (
        RunStatus.FAILED,
        10,
        "a" * 32,
        "e",
    )
    assert (run.params, run.tags, run.metrics) == (
        {"x": "1", "y": "2"},
        {"sy.cache": "hit", "t": "v"},
        {"loss": 0.25},
    )
    assert store.get_metric_history("b" * 32, "loss").values == [0.5, 0.25]

    retry = LogBatch(params={"z": "3"}, tags={"t": "other"}, metrics=[("loss", 9.0, 5, 9)])
    store.log_run(_spec("b" * 32), status=RunStatus.FINISHED, end_time=11, batch=retry)  # left as it is
    again = store.get_run("b" * 32)
    assert (again.status, again.params, again.tags, again.metrics) == (
        run.status,
        run.params,
        run.tags,
        run.metrics,
    )
    assert store.get_metric_history("b" * 32, "loss").steps == [0, 1]

    with pytest.raises(InvalidInput, match="Param 'x'"):  # refused before anything is written
        store.log_run(
            _spec("c" * 32), status=RunStatus.FINISHED, end_time=9, batch=LogBatch(params={"x": "2"})
        )
    with pytest.raises(InvalidInput):
        store.log_run(
            _spec("d" * 32),
            status=RunStatus.FINISHED,
            end_time=9,
            batch=LogBatch(params={"big": "x" * 10**6}),
        )
    with pytest.raises(RunNotFound):
        store.log_run(_spec("e" * 32, parent="f" * 32), status=RunStatus.FINISHED, end_time=9)
    assert sorted(r.id for r in store.search_runs().runs) == ["a" * 32, "b" * 32]
