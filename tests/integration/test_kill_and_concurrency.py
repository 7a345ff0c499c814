"""Crash safety and multi-process logging against one SQLite store, with real processes.

* A logging process killed with SIGKILL mid-stream leaves a store that opens, passes
  ``PRAGMA integrity_check``, and holds at least every point it reported flushed, as a gapless prefix.
* Eight processes logging at once (each its own run, or all into one run) lose nothing.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from shipyard.entities import RunCreate, RunStatus
from shipyard.store.sql import SqlStore

pytestmark = pytest.mark.integration

WORKERS = 8
POINTS = 2_000
KEYS = ("a", "b", "c")

KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from shipyard import Client
    from shipyard.config import load_settings

    uri, artifacts = sys.argv[1], sys.argv[2]
    client = Client(settings=load_settings(tracking_uri=uri, artifact_uri=artifacts, flush_interval=0.2))
    run = client.start_run(experiment="kill", log_environment=False)
    print("RUN", run.id, flush=True)
    n = 0
    while True:
        for _ in range(250):
            run.log_metric("loss", 1.0 / (n + 1))
            n += 1
        run.flush()
        print("FLUSHED", n, flush=True)
    """
)

WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from shipyard import ActiveRun, Client
    from shipyard.config import load_settings

    uri, artifacts, barrier, idx, shared_run = sys.argv[1:6]
    barrier, idx = Path(barrier), int(idx)
    (barrier / f"ready-{idx}").touch()
    while not (barrier / "go").exists():  # start together, so migrations and writes really race
        time.sleep(0.005)
    client = Client(settings=load_settings(tracking_uri=uri, artifact_uri=artifacts, flush_interval=0.05))
    if shared_run == "-":
        run = client.start_run(
            experiment="concurrent", name=f"w{idx}", params={"worker": idx, "lr": idx / 10},
            log_environment=False,
        )
        prefix = ""
    else:
        run = ActiveRun(client, client.get_run(shared_run))
        run.log_params({f"worker{idx}": idx})
        prefix = f"w{idx}."
    for i in range(%(points)d):
        run.log_metrics({f"{prefix}a": i, f"{prefix}b": 2 * i, f"{prefix}c": -i}, step=i)
    run.end()
    client.close()
    print(run.id, flush=True)
    """
) % {"points": POINTS}


def _sqlite_file(uri: str) -> Path:
    return Path(uri.removeprefix("sqlite:///"))


def _integrity(uri: str) -> str:
    conn = sqlite3.connect(_sqlite_file(uri))
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def _kill_mid_stream(uri: str, artifacts: Path, flushes_before_kill: int) -> tuple[str, int]:
    """Start a logging process, SIGKILL it after it reported ``flushes_before_kill`` flushes.

    Returns the run id and the number of points it reported durable before the kill.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, uri, str(artifacts)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(30, proc.kill)
    watchdog.start()
    run_id, flushed, seen = "", 0, 0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            word, value = line.split()
            if word == "RUN":
                run_id = value
            else:
                flushed = int(value)
                seen += 1
                if seen == flushes_before_kill:
                    os.kill(proc.pid, signal.SIGKILL)  # while it keeps logging and flushing
                    break
    finally:
        watchdog.cancel()
        proc.wait(timeout=30)
        stderr = proc.stderr.read() if proc.stderr else ""
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, stderr
    assert run_id and flushed > 0, stderr
    return run_id, flushed


def test_killed_writer_leaves_an_intact_store_holding_every_flushed_point(
    sqlite_uri: str, tmp_path: Path
) -> None:
    killed = [_kill_mid_stream(sqlite_uri, tmp_path / "artifacts", n) for n in (3, 12)]
    assert _integrity(sqlite_uri) == "ok"
    store = SqlStore(sqlite_uri)
    try:
        for run_id, flushed in killed:
            history = store.get_metric_history(run_id, "loss")
            assert len(history) >= flushed  # everything reported durable survived
            assert history.steps == list(range(len(history)))  # a prefix: no gaps, no duplicates
            assert history.values == [1.0 / (i + 1) for i in range(len(history))]
            assert store.get_run(run_id).status is RunStatus.RUNNING  # nobody could end it
        # The store still takes writes after the crashes.
        store.update_run(killed[0][0], status=RunStatus.KILLED)
        assert store.get_run(killed[0][0]).status is RunStatus.KILLED
    finally:
        store.close()
    assert _integrity(sqlite_uri) == "ok"


def _run_workers(uri: str, tmp_path: Path, shared_run: str = "-") -> list[str]:
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                uri,
                str(tmp_path / "artifacts"),
                str(barrier),
                str(i),
                shared_run,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(WORKERS)
    ]
    deadline = time.monotonic() + 30
    while len(list(barrier.glob("ready-*"))) < WORKERS:
        assert time.monotonic() < deadline, "workers did not start"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs if p.poll() is not None]
        time.sleep(0.01)
    (barrier / "go").touch()
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        outputs.append(out.strip())
    return outputs


def test_eight_processes_logging_their_own_runs_lose_nothing(sqlite_uri: str, tmp_path: Path) -> None:
    # No store exists yet: the eight first opens race to migrate it.
    run_ids = _run_workers(sqlite_uri, tmp_path)
    assert len(set(run_ids)) == WORKERS
    assert _integrity(sqlite_uri) == "ok"
    store = SqlStore(sqlite_uri)
    try:
        assert store.schema_version() != ""
        runs = store.search_runs(filter="attributes.status = 'finished'").runs
        assert sorted(r.id for r in runs) == sorted(run_ids)
        for run in runs:
            idx = int(run.name.removeprefix("w"))
            assert run.params == {"worker": str(idx), "lr": str(idx / 10)}
            assert run.metrics == {"a": POINTS - 1, "b": 2 * (POINTS - 1), "c": -(POINTS - 1)}
            for key, factor in zip(KEYS, (1, 2, -1), strict=True):
                history = store.get_metric_history(run.id, key)
                assert history.steps == list(range(POINTS))
                assert history.values == [float(factor * i) for i in range(POINTS)]
    finally:
        store.close()


def test_eight_processes_logging_into_the_same_run_lose_nothing(sqlite_uri: str, tmp_path: Path) -> None:
    store = SqlStore(sqlite_uri)
    run = store.create_run(
        RunCreate(
            run_id="shared0run",
            experiment_name="shared",
            name="shared",
            start_time=int(time.time() * 1000),
            user="test",
        )
    )
    store.close()
    _run_workers(sqlite_uri, tmp_path, shared_run=run.id)
    assert _integrity(sqlite_uri) == "ok"
    store = SqlStore(sqlite_uri)
    try:
        stored = store.get_run(run.id)
        assert stored.status is RunStatus.FINISHED
        assert stored.params == {f"worker{i}": str(i) for i in range(WORKERS)}
        assert len(stored.metrics) == WORKERS * len(KEYS)
        for i in range(WORKERS):
            for key, factor in zip(KEYS, (1, 2, -1), strict=True):
                history = store.get_metric_history(run.id, f"w{i}.{key}")
                assert history.steps == list(range(POINTS)), f"w{i}.{key}"
                assert history.values == [float(factor * s) for s in range(POINTS)]
    finally:
        store.close()
