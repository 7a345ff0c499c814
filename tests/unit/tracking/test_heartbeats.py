"""Runs whose process died stay ``running`` no more: live runs send heartbeats; stale runs read ``killed``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from shipyard import Client
from shipyard.config import load_settings
from shipyard.entities import RunCreate, RunStatus
from shipyard.store.sql import SqlStore

MakeClient = Callable[..., Client]


def spec() -> RunCreate:
    return RunCreate(
        run_id=uuid.uuid4().hex,
        experiment_name="hb",
        name="r",
        start_time=int(time.time() * 1000),
        user="ann",
    )


def heartbeat_ms(sqlite_uri: str, run_id: str) -> int | None:
    engine = sa.create_engine(sqlite_uri)
    try:
        with engine.connect() as conn:
            value = conn.execute(
                sa.text("SELECT heartbeat_ms FROM runs WHERE id = :r"), {"r": run_id}
            ).scalar()
    finally:
        engine.dispose()
    return None if value is None else int(value)


@pytest.fixture
def short_store(sqlite_uri: str, tmp_path: Path) -> Iterator[SqlStore]:
    settings = load_settings(
        tracking_uri=sqlite_uri, artifact_uri=str(tmp_path / "a"), run_heartbeat_timeout=0.2
    )
    store = SqlStore(sqlite_uri, settings=settings)
    yield store
    store.close()


def wait_for_status(store: SqlStore, run_id: str, status: RunStatus, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while store.get_run(run_id).status is not status:
        assert time.monotonic() < deadline, f"run {run_id} never became {status.value}"
        time.sleep(0.02)


def test_a_live_run_sends_its_first_heartbeat_at_once_and_keeps_sending(
    make_client: MakeClient, sqlite_uri: str
) -> None:
    client = make_client(run_heartbeat_timeout=0.5)  # a heartbeat every 0.1 s
    with client.start_run("hb", system_metrics=False, log_environment=False) as run:
        deadline = time.monotonic() + 10
        while (first := heartbeat_ms(sqlite_uri, run.id)) is None:
            assert time.monotonic() < deadline, "no heartbeat was recorded"
            time.sleep(0.01)
        while (later := heartbeat_ms(sqlite_uri, run.id)) == first:
            assert time.monotonic() < deadline, "the heartbeat was sent only once"
            time.sleep(0.01)
        assert later is not None and later > first


def test_a_live_run_stays_running_well_past_the_timeout(make_client: MakeClient) -> None:
    client = make_client(run_heartbeat_timeout=0.3)
    with client.start_run("hb", system_metrics=False, log_environment=False) as run:
        until = time.monotonic() + 1.5  # five timeouts; every read also runs the expiry
        while time.monotonic() < until:
            assert client.get_run(run.id).status is RunStatus.RUNNING
            time.sleep(0.05)
    assert client.get_run(run.id).status is RunStatus.FINISHED


def test_a_run_whose_heartbeats_stopped_is_listed_killed_ending_at_its_last_heartbeat(
    short_store: SqlStore, sqlite_uri: str
) -> None:
    run = short_store.create_run(spec())
    short_store.heartbeat([run.id])
    last = heartbeat_ms(sqlite_uri, run.id)
    deadline = time.monotonic() + 10
    while short_store.search_runs(filter="attributes.status = 'killed'").runs == []:
        assert time.monotonic() < deadline, "the stale run was never marked killed"
        time.sleep(0.02)
    killed = short_store.get_run(run.id)
    assert killed.status is RunStatus.KILLED and killed.end_time == last


def test_a_killed_run_whose_process_was_only_suspended_is_running_again_at_its_next_heartbeat(
    short_store: SqlStore,
) -> None:
    run = short_store.create_run(spec())
    short_store.heartbeat([run.id])
    wait_for_status(short_store, run.id, RunStatus.KILLED)
    short_store.heartbeat([run.id])
    back = short_store.get_run(run.id)
    assert back.status is RunStatus.RUNNING and back.end_time is None


def test_heartbeats_never_touch_ended_runs_and_runs_without_heartbeats_are_never_marked(
    short_store: SqlStore,
) -> None:
    ended = short_store.create_run(spec())
    short_store.update_run(ended.id, status=RunStatus.KILLED, end_time=123)  # a Ctrl-C, say
    legacy = short_store.create_run(spec())  # an old client: no heartbeats at all
    short_store.heartbeat([ended.id, "no-such-run"])
    time.sleep(0.3)  # longer than the timeout: nothing may change
    assert short_store.expire_stale_runs() == []
    got = short_store.get_run(ended.id)
    assert (got.status, got.end_time) == (RunStatus.KILLED, 123)
    assert short_store.get_run(legacy.id).status is RunStatus.RUNNING


def test_a_timeout_of_zero_never_marks_runs(sqlite_uri: str, tmp_path: Path) -> None:
    settings = load_settings(
        tracking_uri=sqlite_uri, artifact_uri=str(tmp_path / "a"), run_heartbeat_timeout=0
    )
    store = SqlStore(sqlite_uri, settings=settings)
    try:
        run = store.create_run(spec())
        store.heartbeat([run.id])
        time.sleep(0.05)
        assert store.expire_stale_runs() == [] and store.get_run(run.id).status is RunStatus.RUNNING
    finally:
        store.close()
