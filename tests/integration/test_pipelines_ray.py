"""The Ray executor against real Ray: a two-node cluster started with ``ray start`` and joined by a
second ``ray start --address`` process, pipelines submitted by address; and ``ray.init(num_cpus=2)``
in the test process.

Ray advertises the machine's own interface address even when told 127.0.0.1, so traffic stays on this
host but may use that address; no other network is touched. The cluster is ended by stopping the
processes it started (found by its own temp folder), not with ``ray stop``, which would stop every Ray
cluster of this user on the machine.

The steps live in this module so Ray workers can import them (the cluster's ``PYTHONPATH`` holds this
folder, as a user's nodes would have their project installed).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import numpy as np
import psutil
import pytest

import shipyard as sy
from shipyard.pipelines import LocalExecutor, RayExecutor

ray = pytest.importorskip("ray")

HERE = Path(__file__).resolve().parent
RAY = str(Path(sys.executable).parent / "ray")
TEST_SECONDS = 90  # each test's budget (the cluster's start is the fixture's, below)


# -- steps and pipelines (module level: the Ray workers import them by name) -----------------------
@sy.step
def make_data(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=n, n_features=8, n_informative=4, random_state=seed)
    return x, y.astype(np.int64)


@sy.step(resources={"cpus": 1})
def forest(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=25, random_state=seed, n_jobs=1)
    return model.fit(x[:300], y[:300]).predict_proba(x[300:])[:, 1]


@sy.step(resources={"cpus": 1})
def logreg(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=500).fit(x[:300], y[:300]).predict_proba(x[300:])[:, 1]


@sy.step
def scores(p_forest: np.ndarray, p_logreg: np.ndarray, y: np.ndarray) -> dict:
    from sklearn.metrics import roc_auc_score

    auc = {
        "forest": float(roc_auc_score(y[300:], p_forest)),
        "logreg": float(roc_auc_score(y[300:], p_logreg)),
    }
    sy.log_metric("auc_forest", auc["forest"])
    return auc


@sy.pipeline
def train(seed: int = 7):
    x, y = make_data(seed)
    return scores(forest(x, y, seed), logreg(x, y), y)


@sy.step(resources={"cpus": 1})
def meet(folder: str, me: str, other: str) -> dict:
    """Arrive, then wait for the other branch: passes only if both run at the same time."""
    Path(folder, me).touch()
    deadline = time.monotonic() + 60
    while not Path(folder, other).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{other} never arrived: the branches did not run concurrently")
        time.sleep(0.05)
    return {"node": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}


@sy.pipeline
def rendezvous(folder: str):
    return meet(folder, "a", "b"), meet(folder, "b", "a")


@sy.step
def sample(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=100)


@sy.step
def boom(x: np.ndarray, marker: str) -> np.ndarray:
    if not Path(marker).exists():
        raise RuntimeError("disk on fire")
    return x + 1


@sy.step
def total(x: np.ndarray) -> float:
    return float(x.sum())


@sy.pipeline
def fragile(marker: str, seed: int = 1):
    return total(boom(sample(seed), marker))


@sy.step(retries=2, retry_backoff=0.01)
def flaky(x: np.ndarray, counter: str) -> np.ndarray:
    n = int(Path(counter).read_text()) if Path(counter).exists() else 0
    Path(counter).write_text(str(n + 1))
    if n < 2:
        raise ConnectionError(f"attempt {n + 1} failed")
    return x * 2


@sy.step(timeout=1.0)
def sleepy(x: np.ndarray) -> np.ndarray:
    time.sleep(60)
    return x


@sy.pipeline
def retry_and_timeout(counter: str):
    x = sample(3)
    return flaky(x, counter), sleepy(x)


@sy.step(resources={"cpus": 1, "memory": 50e6}, cache=False)
def assigned() -> dict:
    return dict(ray.get_runtime_context().get_assigned_resources())


@sy.step(resources={"cpus": 2}, cache=False)
def two_cpus() -> dict:
    return dict(ray.get_runtime_context().get_assigned_resources())


@sy.pipeline
def hints():
    return assigned()


@sy.pipeline
def big():
    return two_cpus()


# -- fixtures --------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _processes_of(temp_dir: str) -> list[psutil.Process]:
    """The Ray processes whose command line names this cluster's temp folder, and their children."""
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        if any(temp_dir in arg for arg in proc.info["cmdline"] or ()):
            found[proc.pid] = proc
            with contextlib.suppress(psutil.NoSuchProcess):
                found.update({c.pid: c for c in proc.children(recursive=True)})
    found.pop(os.getpid(), None)
    return list(found.values())


def _stop(temp_dir: str) -> None:
    procs = _processes_of(temp_dir)
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=3)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=10)


@pytest.fixture(scope="module")
def ray_env() -> Iterator[dict[str, str]]:
    """Environment for Ray in this module: no usage stats; token authentication off, explicitly.

    Ray reads the authentication mode once per process, when it is imported, so a token set here
    would not reach this process's driver; off, the cluster (loopback, a temp folder of its own)
    neither reads nor writes ``~/.ray/auth_token``.
    """
    env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        yield env


@pytest.fixture(scope="module")
def cluster(ray_env: dict[str, str]) -> Iterator[str]:
    """A head (1 CPU) and a worker node (1 CPU) started with ``ray start``; yields the address."""
    temp_dir = tempfile.mkdtemp(prefix="syray", dir="/tmp")  # short: Ray's socket paths live under it
    port = _free_port()
    env = {**os.environ, **ray_env, "PYTHONPATH": str(HERE)}
    head = [RAY, "start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false"]
    head += ["--disable-usage-stats", f"--temp-dir={temp_dir}", "--object-store-memory=100000000"]
    worker = [RAY, "start", f"--address=127.0.0.1:{port}", "--num-cpus=1", "--object-store-memory=100000000"]
    try:
        for command in (head, worker):
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stdout + done.stderr
        yield f"127.0.0.1:{port}"
    finally:
        _stop(temp_dir)
        assert not _processes_of(temp_dir), "Ray processes left running"
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def local_ray(ray_env: dict[str, str]) -> Iterator[None]:
    """``ray.init(num_cpus=2)`` in this process (a new local instance, in a temp folder of its own)."""
    temp_dir = tempfile.mkdtemp(prefix="syrayl", dir="/tmp")
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        _temp_dir=temp_dir,
        object_store_memory=100_000_000,
        runtime_env={"env_vars": {"PYTHONPATH": str(HERE)}},
    )
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(autouse=True)
def _time_bound() -> Iterator[None]:
    """Fail a test that runs over its budget (the fixtures' teardown still stops the cluster)."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"test ran over its {TEST_SECONDS} s budget")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[sy.Client]:
    sy.set_tracking_uri(f"sqlite:///{tmp_path / 'ray.db'}", str(tmp_path / "ray-artifacts"))
    yield sy.get_client()
    sy.set_tracking_uri(None)


def _local_client(tmp_path: Path) -> sy.Client:
    """A second, separate store for the local run (so the Ray run cannot hit its cache)."""
    from shipyard.config import load_settings

    return sy.Client(
        settings=load_settings(
            tracking_uri=f"sqlite:///{tmp_path / 'local.db'}", artifact_uri=str(tmp_path / "local-artifacts")
        )
    )


def _digests(result: sy.PipelineResult) -> dict[str, list[str]]:
    return {node: [o.digest for o in r.outputs] for node, r in result.steps.items()}


def _children(client: sy.Client, run_id: str) -> dict[str, sy.Run]:
    runs, _ = client.search_runs_page(filter=f"tags.`sy.pipeline.run` = '{run_id}'")
    return {r.tags["sy.node"]: r for r in runs}


# -- the cluster, by address -----------------------------------------------------------------------
def test_by_address_gives_the_local_digests_and_runs_branches_on_both_nodes(
    cluster: str, store: sy.Client, tmp_path: Path
) -> None:
    local = train.run(seed=7, executor=LocalExecutor(), client=_local_client(tmp_path))
    remote = sy.trigger_pipeline(train, params={"seed": 7}, executor="ray", ray_address=cluster)
    assert _digests(remote) == _digests(local)
    assert remote.cache_hits == []
    assert remote.output() == local.output() and remote.output()["forest"] > 0.8
    assert store.get_run(remote.run_id).tags["sy.executor"] == "ray"
    children = _children(store, remote.run_id)
    assert {n: c.tags["sy.step_status"] for n, c in children.items()} == dict.fromkeys(
        ["make_data", "forest", "logreg", "scores"], "finished"
    )
    assert children["scores"].metrics["auc_forest"] == pytest.approx(local.output()["forest"])

    (tmp_path / "meet").mkdir()
    met = rendezvous.run(folder=str(tmp_path / "meet"), executor="ray", ray_address=cluster).output()
    assert met[0]["node"] != met[1]["node"]  # 1 CPU per node: two concurrent branches need both nodes
    assert os.getpid() not in {met[0]["pid"], met[1]["pid"]}
    assert not ray.is_initialized()  # the executor disconnected the connection it opened


def test_failure_skips_downstream_stores_traceback_and_rerun_resumes_on_ray(
    cluster: str, store: sy.Client, tmp_path: Path
) -> None:
    marker = str(tmp_path / "marker")
    with pytest.raises(sy.PipelineFailed, match="disk on fire") as err:
        fragile.run(marker=marker, executor="ray", ray_address=cluster)
    details = err.value.details
    assert details["step"] == "boom" and details["skipped"] == ["total"]
    assert store.get_run(details["pipeline_run_id"]).status == sy.RunStatus.FAILED
    assert store.get_run(details["step_run_id"]).status == sy.RunStatus.FAILED
    children = _children(store, details["pipeline_run_id"])
    assert children["total"].tags["sy.step_status"] == "skipped"
    traceback = store.read_artifact(details["step_run_id"], "error/traceback.txt")
    assert b"RuntimeError: disk on fire" in traceback and b"in boom" in traceback

    Path(marker).write_text("fixed")
    resumed = fragile.run(marker=marker, executor="ray", ray_address=cluster)
    assert resumed.cache_hits == ["sample"]
    assert resumed.output() == pytest.approx(float((sample.fn(1) + 1).sum()))


def test_retries_with_backoff_and_a_timeout_on_ray(cluster: str, store: sy.Client, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    started = time.monotonic()
    with pytest.raises(sy.PipelineFailed, match="timeout of 1.0 s") as err:
        retry_and_timeout.run(counter=str(counter), executor="ray", ray_address=cluster)
    assert time.monotonic() - started < 45  # the 60 s sleep was cut at its 1 s timeout
    assert err.value.details["step"] == "sleepy"
    flaky_run = _children(store, err.value.details["pipeline_run_id"])["flaky"]
    assert counter.read_text() == "3" and flaky_run.tags["sy.attempts"] == "3"
    assert flaky_run.tags["sy.step_status"] == "finished"


def test_resource_hints_reach_ray_and_an_unschedulable_request_fails_clearly(
    cluster: str, store: sy.Client
) -> None:
    granted = hints.run(executor="ray", ray_address=cluster).output()
    assert granted == {"CPU": 1.0, "memory": 50e6}

    started = time.monotonic()
    with pytest.raises(sy.PipelineFailed, match=r"asks Ray for CPU=2.*largest: CPU=1") as err:
        big.run(executor=RayExecutor(cluster, infeasible_timeout=2.0))
    assert time.monotonic() - started < 30
    assert store.get_run(err.value.details["pipeline_run_id"]).status == sy.RunStatus.FAILED


def test_an_unreachable_address_is_a_config_error_and_leaves_no_running_run(
    ray_env: dict[str, str], store: sy.Client
) -> None:
    with pytest.raises(sy.ConfigError, match="Cannot connect to a Ray cluster"):
        hints.run(executor="ray", ray_address=f"127.0.0.1:{_free_port()}")
    runs, _ = store.search_runs_page(filter="tags.`sy.run_type` = 'pipeline'")
    assert [r.status for r in runs] == [sy.RunStatus.FAILED]


# -- ray.init(num_cpus=2) in this process -----------------------------------------------------------
def test_in_process_ray_init_gives_the_local_digests_and_grants_two_cpus(
    local_ray: None, store: sy.Client, tmp_path: Path
) -> None:
    local = train.run(seed=3, executor=LocalExecutor(), client=_local_client(tmp_path))
    remote = train.run(seed=3, executor="ray")
    assert _digests(remote) == _digests(local)
    assert big.run(executor="ray").output() == {"CPU": 2.0}
    assert ray.is_initialized()  # the user's connection is left open

    @sy.step
    def local_only() -> int:
        return 1

    @sy.pipeline
    def inline():
        return local_only()

    with pytest.raises(sy.PipelineFailed, match="cannot run on Ray"):
        inline.run(executor="ray")
    first_run = json.loads(store.get_run(remote.run_id).tags["sy.dag"])
    assert set(first_run) == {"make_data", "forest", "logreg", "scores"}


# -- without a cluster -----------------------------------------------------------------------------
def test_missing_ray_raises_missing_extra_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, store: sy.Client
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(sy.MissingExtra, match=r"pip install 'shipyard\[ray\]'"):
        hints.run(executor="ray")


def test_ray_address_needs_the_ray_executor() -> None:
    with pytest.raises(sy.InvalidInput, match="ray_address"):
        hints.run(executor="local", ray_address="127.0.0.1:6379")


def test_relative_local_stores_become_absolute_for_workers_and_memory_is_refused(tmp_path: Path) -> None:
    from shipyard.config import load_settings
    from shipyard.pipelines.ray_executor import shareable_settings

    relative = load_settings(tracking_uri="sqlite:///.shipyard/s.db", artifact_uri="arts", home=".shipyard")
    shared = shareable_settings(relative, tmp_path)
    assert shared.tracking_uri == f"sqlite:///{tmp_path}/.shipyard/s.db"
    assert (shared.artifact_uri, shared.home) == (str(tmp_path / "arts"), str(tmp_path / ".shipyard"))
    remote = load_settings(tracking_uri="postgresql+psycopg://db/sy", artifact_uri="s3://bucket/sy")
    assert shareable_settings(remote, tmp_path).artifact_uri == "s3://bucket/sy"
    with pytest.raises(sy.InvalidInput, match="in-memory SQLite"):
        shareable_settings(load_settings(tracking_uri="sqlite:///:memory:"), tmp_path)


def test_local_stores_are_refused_when_the_cluster_spans_machines(tmp_path: Path) -> None:
    """A stand-in for ``ray`` describing two machines (a second machine is not available here)."""
    from types import SimpleNamespace

    from shipyard.config import load_settings

    nodes = [
        {"Alive": True, "NodeManagerAddress": "10.0.0.5"},
        {"Alive": True, "NodeManagerAddress": "10.0.0.6"},
    ]
    two_machines = SimpleNamespace(
        util=SimpleNamespace(get_node_ip_address=lambda: "10.0.0.5"), nodes=lambda: nodes
    )
    local = load_settings(tracking_uri=f"sqlite:///{tmp_path}/s.db", artifact_uri=str(tmp_path / "a"))
    with pytest.raises(sy.ConfigError, match=r"other machines \(10.0.0.6\).*PostgreSQL.*object store"):
        RayExecutor()._check_stores_reachable(two_machines, local)  # type: ignore[arg-type]
    RayExecutor(shared_filesystem=True)._check_stores_reachable(two_machines, local)  # type: ignore[arg-type]
    server = load_settings(tracking_uri="http://shipyard:5000", artifact_uri="s3://bucket/sy")
    RayExecutor()._check_stores_reachable(two_machines, server)  # type: ignore[arg-type]
