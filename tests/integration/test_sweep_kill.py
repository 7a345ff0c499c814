"""A sweep driver killed with SIGKILL mid-sweep, then resumed: the store ends with exactly ``trials``
finished or pruned trial runs; trials that were running at the kill are marked killed and re-run with
their params.

Locally (threads) and on Ray (``ray.init(num_cpus=4)`` in the driver, 50 trials, 4 at a time, the
median pruner on). The kill lands at a point the test controls, never after a guessed delay: trials
``hold`` … ``hold + parallel - 2`` wait in the objective and the driver waits inside ``study.ask`` for
trial ``hold + parallel - 1`` (in its sampler, before the trial has params or its process tag), each
until the test creates ``gate/go``. The test polls for that state, SIGKILLs the driver, then opens the
gate. The Ray instance a killed driver started is ended by stopping the processes that live in its own
temp folder, never with ``ray stop`` (which would stop every Ray cluster of the user).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import optuna
import psutil
import pytest

import shipyard as sy
from polling_helpers import wait_until

DRIVER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path

    import optuna
    import shipyard as sy

    uri, artifacts, trials, parallel, executor, ray_dir, gate, hold = sys.argv[1:]
    GATE, HOLD, PARALLEL = Path(gate), int(hold), int(parallel)


    def wait_at(point):
        (GATE / point).touch()
        while not (GATE / "go").exists():  # the test opens the gate once the driver is killed
            time.sleep(0.01)


    def objective(params):
        number = int(sy.active_run().info.tags["sy.trial"])
        if HOLD <= number < HOLD + PARALLEL - 1:
            wait_at(f"trial-{number}")  # before any metric: the pruner cannot end it first
        x = params["x"]
        for step in range(4):
            sy.log_metric("score", -(x - 1) ** 2 + step, step=step)
        return -(x - 1) ** 2 + 3


    class Sampler(optuna.samplers.TPESampler):
        def sample_independent(self, study, trial, name, dist):
            if trial.number == HOLD + PARALLEL - 1:
                wait_at("asking")  # the trial exists in optuna, without params or process tag
            return super().sample_independent(study, trial, name, dist)


    if executor == "ray":
        import ray

        ray.init(num_cpus=PARALLEL, include_dashboard=False, _temp_dir=ray_dir)
    client = sy.Client(tracking_uri=uri, artifact_uri=artifacts)
    result = sy.sweep(objective, {"x": ("float", -3.0, 3.0)}, metric="score", trials=int(trials),
                      parallel=PARALLEL, executor=executor, sampler=Sampler(), name="killme",
                      client=client)
    print("best", result.best_run_id)
    """
)


def _trial_runs(client: sy.Client) -> list[sy.Run]:
    return client.search_runs_page(filter="tags.`sy.run_type` = 'sweep_trial'")[0]


def _counted(runs: list[sy.Run]) -> list[sy.Run]:
    return [
        r
        for r in runs
        if (r.status == sy.RunStatus.FINISHED and r.tags["sy.trial_state"] == "complete")
        or (r.status == sy.RunStatus.KILLED and r.tags["sy.trial_state"] == "pruned")
    ]


def _uses(proc: psutil.Process, path: str) -> bool:
    """Whether ``proc`` names ``path`` in its command line or has a file under it open (Ray renames
    its worker and agent processes, ``ray::…``, but they keep their session's log files open)."""
    try:
        named = any(path in a for a in proc.cmdline())
        return named or any(f.path.startswith(path) for f in proc.open_files())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def _processes_using(path: str) -> set[psutil.Process]:
    """Every process of the Ray instance living in ``path`` (its own temp folder), children included."""
    procs = {p for p in psutil.process_iter() if _uses(p, path)}
    for proc in list(procs):
        try:
            procs.update(proc.children(recursive=True))
        except psutil.NoSuchProcess:
            continue
    return procs


def _signal_processes_using(path: str, signum: int) -> set[psutil.Process]:
    procs = _processes_using(path)
    for proc in procs:
        try:
            proc.send_signal(signum)
        except psutil.NoSuchProcess:
            continue
    return procs


def _end_processes_using(path: str) -> None:
    """SIGKILL every process of the Ray instance living in ``path`` (its own temp folder)."""
    psutil.wait_procs(_signal_processes_using(path, signal.SIGKILL), timeout=30)


@pytest.fixture
def ray_dir() -> Iterator[str]:
    """A short temp folder for Ray's sockets; afterwards, every process still using it is ended."""
    path = tempfile.mkdtemp(prefix="sysweep", dir="/tmp")
    yield path
    _end_processes_using(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.integration
@pytest.mark.parametrize(("executor", "trials", "parallel", "hold"), [("local", 12, 2, 3), ("ray", 50, 4, 6)])
def test_a_killed_sweep_driver_resumes_to_exactly_the_requested_trials(
    tmp_path: Path, ray_dir: str, executor: str, trials: int, parallel: int, hold: int
) -> None:
    if executor == "ray":
        pytest.importorskip("ray")
    uri, artifacts = f"sqlite:///{tmp_path / 'shipyard.db'}", tmp_path / "artifacts"
    gate = tmp_path / "gate"
    gate.mkdir()
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    args = [sys.executable, str(script), uri, str(artifacts), str(trials), str(parallel), executor]
    args += [ray_dir, str(gate), str(hold)]
    env = {**os.environ, "SHIPYARD_SYSTEM_METRICS": "false"}
    client = sy.Client(tracking_uri=uri, artifact_uri=str(artifacts))
    held = {f"trial-{n}" for n in range(hold, hold + parallel - 1)}
    asking = hold + parallel - 1  # the trial the driver is asking optuna for at the kill

    log = tmp_path / "first.log"  # a file, not a pipe: a full pipe would stall the driver
    with log.open("w") as out:
        first = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:

        def at_the_kill_point() -> bool:
            assert first.poll() is None, f"the driver ended before the kill point: {log.read_text()[-3000:]}"
            if not held | {"asking"} <= {p.name for p in gate.iterdir()}:
                return False  # (the held trials started their runs first: the store exists)
            runs = _trial_runs(client)
            ended = [r for r in runs if r.status != sy.RunStatus.RUNNING]
            running = {r.tags["sy.trial"] for r in runs if r.status == sy.RunStatus.RUNNING}
            # every trial before the held ones has ended, and the held ones' runs are stored (a
            # run's start reaches the store with its first flush, not always before its gate)
            return len(ended) == hold and {n[6:] for n in held} <= running

        wait_until(at_the_kill_point, f"{hold} trials ended, {held} and ask {asking} held", timeout=60)
        if executor == "ray":  # the driver's machine is lost: its Ray instance dies with it, at once.
            # Stop them all first: a raylet that saw its driver die would end its workers gracefully
            # (SIGTERM), and they would end their trial runs before a later SIGKILL reached them.
            psutil.Process(first.pid).suspend()
            _signal_processes_using(ray_dir, signal.SIGSTOP)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        if executor == "ray":
            _end_processes_using(ray_dir)  # SIGKILL: no worker gets to end its trial run
    finally:
        first.kill()
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    (gate / "go").touch()
    at_kill = _trial_runs(client)
    in_flight = {r.id for r in at_kill if r.status == sy.RunStatus.RUNNING}
    assert {r.tags["sy.trial"] for r in at_kill if r.id in in_flight} == {n[6:] for n in held}
    assert len(at_kill) == hold + len(held)

    second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr[-3000:]

    runs = _trial_runs(client)
    counted = _counted(runs)
    assert len(counted) == trials
    killed = [r for r in runs if r.tags.get("sy.trial_failure") == "killed"]
    assert {r.id for r in killed} == in_flight  # exactly the trials running at the kill
    assert all(r.status == sy.RunStatus.KILLED and r.tags["sy.trial_state"] == "failed" for r in killed)
    assert not [r for r in runs if r.status == sy.RunStatus.RUNNING]
    assert len(runs) == trials + len(killed)  # nothing else: no duplicates
    counted_x = [r.params["x"] for r in counted]
    assert all(counted_x.count(r.params["x"]) == 1 for r in killed)  # each re-run once, same params

    parents = client.search_runs_page(filter="tags.`sy.run_type` = 'sweep'")[0]
    assert len(parents) == 1 and parents[0].status == sy.RunStatus.FINISHED
    assert parents[0].tags["sy.sweep.resumed"] == "true"
    assert {r.parent_run_id for r in runs} == {parents[0].id}
    assert f"best {parents[0].tags['sy.best_run_id']}" in second.stdout

    study = optuna.load_study(study_name="killme", storage=f"sqlite:///{tmp_path / 'shipyard.optuna.db'}")
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    assert sum(t.state in done for t in study.trials) == trials
    assert not [t for t in study.trials if not t.state.is_finished()]  # no retry left waiting
    failed = {t.number: t for t in study.trials if t.state == optuna.trial.TrialState.FAIL}
    assert {t.user_attrs.get("sy.failure") for t in failed.values()} == {"killed"}
    # the held trials (killed with their runs) and the one being asked for (no params, no run)
    assert set(failed) == {int(n[6:]) for n in held} | {asking}
    assert failed[asking].params == {} and "sy.run_id" not in failed[asking].user_attrs
    assert {t.user_attrs["sy.run_id"] for n, t in failed.items() if n != asking} == in_flight
    retries = {t.user_attrs["sy.retry_of"]: t for t in study.trials if "sy.retry_of" in t.user_attrs}
    assert set(retries) == set(failed) - {asking}  # a killed trial with params runs again, once
    assert all(retries[n].state in done and retries[n].params == failed[n].params for n in retries)
    if executor == "ray":
        assert any(r.tags["sy.trial_state"] == "pruned" for r in counted)  # the median pruner worked
    client.close()
