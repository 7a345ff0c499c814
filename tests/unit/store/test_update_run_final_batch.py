"""Ending a run writes its last batch and its status in one call (one transaction on SQL)."""

from __future__ import annotations

import pytest

from shipyard.entities import LogBatch, MetricSeries, RunCreate, RunStatus
from shipyard.errors import InvalidInput
from shipyard.store.sql import SqlStore
from shipyard.store.sql import schema as t


def _new_run(store: SqlStore, run_id: str) -> None:
    store.create_run(RunCreate(run_id=run_id, experiment_name="e", name="r", start_time=1, user="u"))


def _chunks(store: SqlStore, run_id: str) -> int:
    from sqlalchemy import func, select

    with store._read() as conn:
        return int(conn.execute(select(func.count()).where(t.metric_chunks.c.run_id == run_id)).scalar_one())


def test_final_batch_and_status_are_written_together(store_uri: str) -> None:
    store = SqlStore(store_uri)
    try:
        _new_run(store, "a" * 32)
        last = LogBatch(tags={"t": "1"}, series=[MetricSeries("loss", [0, 1], [10, 11], [0.5, 0.25])])
        store.update_run("a" * 32, status=RunStatus.FINISHED, end_time=99, final_batch=last)
        run = store.get_run("a" * 32)
        assert (run.status, run.end_time, run.tags, run.metrics) == (
            RunStatus.FINISHED,
            99,
            {"t": "1"},
            {"loss": 0.25},
        )
    finally:
        store.close()


def test_a_refused_final_batch_leaves_the_run_unchanged(store_uri: str) -> None:
    store = SqlStore(store_uri)
    try:
        _new_run(store, "b" * 32)
        store.log_batch("b" * 32, LogBatch(params={"lr": "0.1"}))
        with pytest.raises(InvalidInput):
            store.update_run("b" * 32, status=RunStatus.FINISHED, final_batch=LogBatch(params={"lr": "0.2"}))
        assert store.get_run("b" * 32).status == RunStatus.RUNNING  # nothing of the transaction landed
    finally:
        store.close()


@pytest.mark.parametrize(("compact", "chunks"), [(True, 1), (False, 3)])
def test_compaction_on_end_can_be_skipped(store_uri: str, compact: bool, chunks: int) -> None:
    store = SqlStore(store_uri)
    try:
        _new_run(store, "c" * 32)
        for step in range(3):
            store.log_batch("c" * 32, LogBatch(metrics=[("m", float(step), step, step)]))
        store.update_run("c" * 32, status=RunStatus.FINISHED, compact=compact)
        assert _chunks(store, "c" * 32) == chunks
        assert store.get_metric_history("c" * 32, "m").values == [0.0, 1.0, 2.0]
    finally:
        store.close()
