"""A training process killed with SIGKILL: its run is listed ``killed`` once its heartbeats stop.

Real processes: a child starts a run (on SQLite, or on a live server) and is killed with
SIGKILL; ``shipyard runs ls`` in another process then shows the run ``killed``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from server_process import child_env

pytestmark = pytest.mark.integration

TIMEOUT = "1.0"  # run_heartbeat_timeout (s): a heartbeat every 0.2 s

TRAINER = textwrap.dedent(
    """
    import time
    from shipyard import Client

    client = Client()
    run = client.start_run(experiment="doomed", log_environment=False)
    run.log_metric("loss", 0.5)
    run.flush()
    print("RUN", run.id, flush=True)
    while True:
        run.log_metric("loss", 0.4)
        time.sleep(0.05)
    """
)


def start_trainer(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", TRAINER], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("RUN "):
        proc.kill()
        raise AssertionError(f"trainer failed: {line}{proc.communicate()[1]}")
    return proc, line.split()[1]


def runs_ls(env: dict[str, str]) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "shipyard.cli", "runs", "ls", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return {r["id"]: r["status"] for r in json.loads(done.stdout)["runs"]}


def status_after_kill(env: dict[str, str]) -> tuple[str, str, str]:
    """Start a trainer, see it running, SIGKILL it; its status before, and once it changed."""
    proc, run_id = start_trainer(env)
    try:
        time.sleep(float(TIMEOUT) * 1.5)  # longer than the timeout: heartbeats must keep it alive
        before = runs_ls(env)[run_id]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)  # reaps it and closes its pipes
    deadline = time.monotonic() + 60
    while (after := runs_ls(env)[run_id]) == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    return run_id, before, after


def test_a_sigkilled_run_on_sqlite_is_listed_killed(tmp_path: Path) -> None:
    env = child_env(tmp_path / "home")
    env.update(
        SHIPYARD_TRACKING_URI=f"sqlite:///{tmp_path / 'runs.db'}",
        SHIPYARD_ARTIFACT_URI=str(tmp_path / "artifacts"),
        SHIPYARD_RUN_HEARTBEAT_TIMEOUT=TIMEOUT,
        SHIPYARD_FLUSH_INTERVAL="0.1",
    )
    _, before, after = status_after_kill(env)
    assert (before, after) == ("running", "killed")


def test_a_sigkilled_run_on_a_server_is_listed_killed_by_the_servers_timeout(
    make_server: Any, tmp_path: Path
) -> None:
    server = make_server(env={"SHIPYARD_RUN_HEARTBEAT_TIMEOUT": TIMEOUT})
    env = child_env(tmp_path / "home")
    env.update(
        SHIPYARD_TRACKING_URI=server.url,
        SHIPYARD_RUN_HEARTBEAT_TIMEOUT=TIMEOUT,  # the client's heartbeat interval
        SHIPYARD_FLUSH_INTERVAL="0.1",
    )
    _, before, after = status_after_kill(env)
    assert (before, after) == ("running", "killed")
