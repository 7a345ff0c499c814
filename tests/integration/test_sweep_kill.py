"""A sweep driver killed with SIGKILL mid-sweep, then resumed: the store ends with exactly ``trials``
finished or pruned trial runs; trials that were running at the kill are marked killed and re-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest

import shipyard as sy
from polling_helpers import wait_until

TRIALS = 12

DRIVER = textwrap.dedent(
    """
    import sys, time
    import shipyard as sy

    def objective(params):
        x = params["x"]
        for step in range(4):
            time.sleep(0.1)  # stands in for an epoch of training
            sy.log_metric("score", -(x - 1) ** 2 + step, step=step)
        return -(x - 1) ** 2 + 3

    client = sy.Client(tracking_uri=sys.argv[1], artifact_uri=sys.argv[2])
    result = sy.sweep(objective, {"x": ("float", -3.0, 3.0)}, metric="score", trials=int(sys.argv[3]),
                      parallel=2, seed=0, name="killme", client=client)
    print("best", result.best_run_id)
    """
)


def _trial_runs(client: sy.Client) -> list[sy.Run]:
    return client.search_runs_page(filter="tags.`sy.run_type` = 'sweep_trial'")[0]


def _driver(script: Path, uri: str, artifacts: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "SHIPYARD_SYSTEM_METRICS": "false"}
    return subprocess.Popen(
        [sys.executable, str(script), uri, str(artifacts), str(TRIALS)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _counted(runs: list[sy.Run]) -> list[sy.Run]:
    return [
        r
        for r in runs
        if (r.status == sy.RunStatus.FINISHED and r.tags["sy.trial_state"] == "complete")
        or (r.status == sy.RunStatus.KILLED and r.tags["sy.trial_state"] == "pruned")
    ]


@pytest.mark.integration
def test_a_killed_sweep_driver_resumes_to_exactly_the_requested_trials(tmp_path: Path) -> None:
    uri, artifacts = f"sqlite:///{tmp_path / 'shipyard.db'}", tmp_path / "artifacts"
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    client = sy.Client(tracking_uri=uri, artifact_uri=str(artifacts))

    first = _driver(script, uri, artifacts)
    try:

        def mid_sweep() -> bool:
            runs = _trial_runs(client) if (tmp_path / "shipyard.db").exists() else []
            running = [r for r in runs if r.status == sy.RunStatus.RUNNING]
            return len(_counted(runs)) >= 3 and len(running) >= 1

        wait_until(mid_sweep, "three trials done and one running", timeout=60, interval=0.02)
        first.send_signal(signal.SIGKILL)
    finally:
        first.communicate(timeout=30)
    assert first.returncode == -signal.SIGKILL
    at_kill = _trial_runs(client)
    in_flight = {r.id for r in at_kill if r.status == sy.RunStatus.RUNNING}
    assert in_flight and len(_counted(at_kill)) < TRIALS

    second = _driver(script, uri, artifacts)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err[-3000:]

    runs = _trial_runs(client)
    counted = _counted(runs)
    assert len(counted) == TRIALS
    killed = [r for r in runs if r.tags.get("sy.trial_failure") == "killed"]
    assert {r.id for r in killed} == in_flight
    assert all(r.status == sy.RunStatus.KILLED and r.tags["sy.trial_state"] == "failed" for r in killed)
    assert not [r for r in runs if r.status == sy.RunStatus.RUNNING]
    assert len(runs) == TRIALS + len(killed)  # nothing else: no duplicates
    rerun_params = {r.params["x"] for r in counted}
    assert {r.params["x"] for r in killed} <= rerun_params  # killed trials ran again with their params

    parents = client.search_runs_page(filter="tags.`sy.run_type` = 'sweep'")[0]
    assert len(parents) == 1 and parents[0].status == sy.RunStatus.FINISHED
    assert parents[0].tags["sy.sweep.resumed"] == "true"
    assert {r.parent_run_id for r in runs} == {parents[0].id}
    assert f"best {parents[0].tags['sy.best_run_id']}" in out

    study = optuna.load_study(study_name="killme", storage=f"sqlite:///{tmp_path / 'shipyard.optuna.db'}")
    states = [t.state for t in study.trials]
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    assert sum(s in done for s in states) == TRIALS
    assert [t.user_attrs.get("sy.failure") for t in study.trials if t.state.name == "FAIL"] == [
        "killed"
    ] * len(killed)
    client.close()
