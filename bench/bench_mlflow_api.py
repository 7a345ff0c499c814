"""The MLflow client against ``mlflow server`` and against ``shipyard server``'s MLflow API (issue 15).

    .venv/bin/python bench/bench_mlflow_api.py             # SQLite and PostgreSQL, 1 and 20 clients
    .venv/bin/python bench/bench_mlflow_api.py --quick     # small sizes, SQLite only (~3 min), writes nothing
    .venv/bin/python bench/bench_mlflow_api.py --backends postgresql --clients 20
    .venv/bin/python bench/bench_mlflow_api.py --quick --modes raw --backends postgresql   # k6's shape only

The same code drives both servers: ``MlflowClient(tracking_uri=url)`` from MLflow's own package, the
calls below, nothing else. Per backend (SQLite, PostgreSQL) both servers run at once, each on a
database of its own (a SQLite file, or a fresh PostgreSQL database dropped afterwards:
``SHIPYARD_BENCH_PG``), with ``--workers 2``, as process groups on free loopback ports; their cells
alternate (Shipyard first, then MLflow first, ...) so a burst of load on this shared machine hits
both alike. Clients are a pool of processes (``spawn``, one MLflow client each) started once; a cell
hands each of its 1 or 20 clients a job, lets them set up and warm up, then starts them together.

Cells (operation × clients), each one HTTP request per call:

- **create**: ``create_run(experiment, tags=2)``.
- **log_batch**: ``log_batch(run, metrics=500)`` (500 keys at one step; each call a new step) into a
  run of the client's own: the shape of MLflow-Go's ``LogMetricBatch500``.
- **log_metric**: ``log_metric(run, "loss", v, step=i)``, one point per call, synchronous.
- **search**: ``search_runs`` top 100 of ``metrics.auc > 0.9 and params.model = 'rf'`` ordered by
  ``metrics.auc DESC``, over an experiment of a few thousand finished runs (5 params, 5 metrics,
  2 tags each; logged through the same client beforehand). Both servers must return the same runs in
  the same order.
- **history**: ``get_metric_history`` of a 1,000-point metric (checked: every point comes back).

Raw cells (``--modes raw``; the default runs both kinds) take MLflow's client out: MLflow-Go's k6
scripts' requests, pre-encoded, sent by ``bench/loadgen.py`` (raw asyncio, one process) over 1 or 20
keep-alive connections, closed loop. **batch**: k6LogBatchPerfScript.js with 500 metrics (``metric_0``
… ``metric_499`` at step 0) into one run every user shares; **search**: the query above; **scan**:
k6SearchRunPerfScript.js (``max_results`` 1,000, no filter). Each raw cell also reports the CPU per
call of each server's processes, of the PostgreSQL backends serving its database, and of the generator,
and how the keep-alive connections were split across the server's workers (``connections per worker``).

Each cell reports the median and p95 latency of a call (client side, across all clients) and the
throughput (calls ÷ wall time from the first client's start to the last one's end). After every cell
both databases are counted directly (runs, finished runs, params, tags, metric points): a lost or
extra write fails the benchmark. MLflow-Go's published ratios over MLflow (PostgreSQL, 20 users)
are printed beside ours for the matching cells: SearchRuns 1004 vs 104 ms, LogMetricBatch500 1200
vs 13 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import multiprocessing as mp
import os
import queue
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_team import (  # noqa: E402  (also turns MLflow's telemetry off)
    SEARCH_FILTER,
    SEARCH_LIMIT,
    MlflowSide,
    check_counts,
    count_mlflow,
    count_shipyard,
    run_data,
    running,
    say,
    scientist_token,
    temp_database,
)
from common import (  # noqa: E402
    Result,
    Section,
    fmt_ratio,
    fresh_dir,
    print_section,
    remove_temp_dirs,
    rerun_at_commit,
    update_results_file,
)
from loadgen import LoadResult, encode_request, fetch, run_load  # noqa: E402

# MLflow's client prints a run's URL when it ends, after fetching the run (one more request): only the
# untimed seeding ends runs, and its log is clearer without 3,000 URLs.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

SYSTEMS = ("shipyard", "mlflow")
BACKENDS = ("sqlite", "postgresql")
OPS = ("create", "batch", "single", "search", "history")
BATCH_SIZE = 500
SEARCH_EXP, HISTORY_EXP, HISTORY_KEY = "api-search", "api-history", "loss"
LABELS = {
    "create": ("create_run (2 tags)", "runs/s"),
    "batch": (f"log_batch of {BATCH_SIZE} metrics", "batches/s"),
    "single": ("log_metric, one point per call", "calls/s"),
    "search": (f"search_runs top {SEARCH_LIMIT}, filter + order_by", "searches/s"),
    "history": ("get_metric_history", "calls/s"),
}


@dataclass(frozen=True)
class Anchor:
    """A published MLflow-Go figure: average latency of MLflow's server and of MLflow-Go's, in ms."""

    name: str
    mlflow_ms: float
    go_ms: float

    @property
    def ratio(self) -> float:
        return self.mlflow_ms / self.go_ms


# github.com/mlflow/mlflow-go-backend, benchmarks/README.md: k6, 20 virtual users for 30 s, PostgreSQL,
# average durations (104.42 and 13.12 ms there; the issue rounds them, which makes the bar a bit higher).
ANCHORS = {"search": Anchor("SearchRuns", 1004, 104), "batch": Anchor("LogMetricBatch500", 1200, 13)}
ANCHOR_BACKEND, ANCHOR_CLIENTS = "postgresql", 20


@dataclass(frozen=True)
class Sizes:
    per_client: dict[str, dict[int, int]]  # op -> clients -> timed calls per client
    search_runs: int  # runs in the searched experiment
    raw: dict[str, dict[int, int]]  # raw mode: op -> users -> timed requests in all (not per user)
    history_points: int = 1_000
    warmup: int = 2  # untimed calls per client before the start (their writes are counted too)

    def calls(self, op: str, clients: int) -> int:
        table = self.per_client[op]
        return table.get(clients, max(2, table[1] // clients))

    def raw_requests(self, op: str, users: int) -> int:
        table = self.raw[op]
        return table.get(users, max(table[1], 2 * users))


FULL = Sizes(
    per_client={
        "create": {1: 300, 20: 30},
        "batch": {1: 60, 20: 8},
        "single": {1: 300, 20: 30},
        "search": {1: 40, 20: 5},
        "history": {1: 100, 20: 10},
    },
    search_runs=3_000,
    raw={"batch": {1: 100, 20: 400}, "search": {1: 100, 20: 400}, "scan": {1: 20, 20: 120}},
)
QUICK = Sizes(
    per_client={
        "create": {1: 30, 20: 3},
        "batch": {1: 10, 20: 2},
        "single": {1: 40, 20: 4},
        "search": {1: 10, 20: 2},
        "history": {1: 20, 20: 3},
    },
    search_runs=300,
    raw={"batch": {1: 20, 20: 80}, "search": {1: 20, 20: 80}, "scan": {1: 4, 20: 40}},
)


# -- the client pool (each worker in its own process) ------------------------------------------
@dataclass(frozen=True)
class Job:
    op: str  # create | batch | single | search | history | seed
    url: str
    token: str
    experiment: str
    first: int  # seed: index of the first run to log; create: index of the first run's tags
    count: int  # timed calls
    warmup: int  # untimed calls before the start
    run_id: str = ""  # history: the run to read
    points: int = 0  # history: points it holds


class Work:
    """One client's share of a cell, through MLflow's client (the same code for both servers)."""

    def __init__(self, job: Job) -> None:
        os.environ.pop("MLFLOW_TRACKING_TOKEN", None)  # MlflowSide sets it for a job that has one
        self.side = MlflowSide(job.url, job.token)
        self.client = self.side.client
        self.job = job
        found = self.client.get_experiment_by_name(job.experiment)
        if found is None:
            raise LookupError(f"experiment {job.experiment!r} missing on {job.url}")
        self.exp_id = found.experiment_id
        self.run_id = job.run_id
        if job.op in ("batch", "single"):
            self.run_id = self.client.create_run(self.exp_id).info.run_id

    def call(self, i: int) -> Callable[[], object]:
        """The ``i``-th call (built beforehand: only the request is timed)."""
        from mlflow.entities import Metric

        job, client = self.job, self.client
        if job.op == "create":
            tags = run_data(job.first + i)[2]
            return lambda: client.create_run(self.exp_id, tags=tags)
        if job.op == "seed":
            return lambda: self.side.create(job.experiment, job.first + i)
        if job.op == "batch":
            ts = int(time.time() * 1000)
            metrics = [Metric(f"m{j:03d}", j + 1.0 / (1 + i), ts, i) for j in range(BATCH_SIZE)]
            return lambda: client.log_batch(self.run_id, metrics=metrics, synchronous=True)
        if job.op == "single":
            return lambda: client.log_metric(self.run_id, "loss", 1.0 / (1 + i), step=i, synchronous=True)
        if job.op == "search":
            return lambda: tuple(self.side.search(job.experiment))
        if job.op == "history":
            return self._history
        raise ValueError(f"unknown operation {job.op!r}")

    def _history(self) -> int:
        points = self.client.get_metric_history(self.run_id, HISTORY_KEY)
        if len(points) != self.job.points:
            raise AssertionError(f"get_metric_history returned {len(points)} points, not {self.job.points}")
        return len(points)


def worker_main(index: int, inbox: Any, outbox: Any) -> None:
    """Take jobs until told to stop: set up and warm up, report ready, wait for "go", do the calls."""
    while (job := inbox.get()) is not None:
        try:
            work = Work(job)
            for i in range(job.warmup):
                work.call(i)()
            outbox.put(("ready", index, None))
            if inbox.get() != "go":
                continue
            latencies: list[float] = []
            answers: set[object] = set()
            cpu0, start = time.process_time(), time.time()
            for i in range(job.warmup, job.warmup + job.count):
                fn = work.call(i)
                t = time.perf_counter()
                answer = fn()
                latencies.append(time.perf_counter() - t)
                if job.op == "search":
                    answers.add(answer)
            end, cpu = time.time(), time.process_time() - cpu0
            done = {"start": start, "end": end, "cpu": cpu, "latencies": latencies, "answers": answers}
            outbox.put(("done", index, done))
        except BaseException as exc:  # the parent reports it and fails the benchmark
            outbox.put(("error", index, f"{type(exc).__name__}: {exc}"))


@dataclass
class CellFigures:
    calls: int
    seconds: float
    latencies: list[float]
    answers: set[tuple[str, ...]] = field(default_factory=set)
    client_cpu: float = 0.0  # CPU seconds the clients spent in the timed part

    @property
    def client_cpu_ms(self) -> float:
        """Client CPU per call (MLflow's client building the request and parsing the answer)."""
        return self.client_cpu / self.calls * 1e3

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies) * 1e3

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.latencies) * 1e3

    @property
    def p95_ms(self) -> float:
        ordered = sorted(self.latencies)  # nearest rank
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] * 1e3

    @property
    def rate(self) -> float:
        return self.calls / self.seconds


class Pool:
    """``size`` client processes, spawned once and reused by every cell (importing MLflow's client
    costs seconds of CPU per process on this machine)."""

    def __init__(self, size: int) -> None:
        ctx = mp.get_context("spawn")
        self.outbox: Any = ctx.Queue()
        self.inboxes: list[Any] = [ctx.Queue() for _ in range(size)]
        self.procs = [
            ctx.Process(target=worker_main, args=(k, self.inboxes[k], self.outbox), daemon=True)
            for k in range(size)
        ]
        for proc in self.procs:
            proc.start()

    def _collect(self, n: int, timeout: float) -> list[tuple[str, int, Any]]:
        got: list[tuple[str, int, Any]] = []
        deadline = time.monotonic() + timeout
        while len(got) < n:
            try:
                got.append(self.outbox.get(timeout=5))
            except queue.Empty:
                dead = [p.pid for p in self.procs if not p.is_alive()]
                if dead or time.monotonic() > deadline:
                    raise RuntimeError(f"client processes lost (dead: {dead}) or too slow") from None
        return got

    def run(self, jobs: list[Job]) -> CellFigures:
        for inbox, job in zip(self.inboxes, jobs, strict=False):
            inbox.put(job)
        ready = self._collect(len(jobs), timeout=900)
        errors = [msg for kind, _, msg in ready if kind == "error"]
        go = "abort" if errors else "go"
        for kind, k, _ in ready:
            if kind == "ready":
                self.inboxes[k].put(go)
        if errors:
            raise RuntimeError(f"{jobs[0].op} at {jobs[0].url}: a client failed to set up: {errors[0]}")
        done = self._collect(len(jobs), timeout=1800)
        errors = [msg for kind, _, msg in done if kind == "error"]
        if errors:
            raise RuntimeError(f"{jobs[0].op} at {jobs[0].url} with {len(jobs)} clients failed: {errors[0]}")
        results = [msg for _, _, msg in done]
        return CellFigures(
            calls=sum(len(r["latencies"]) for r in results),
            seconds=max(r["end"] for r in results) - min(r["start"] for r in results),
            latencies=[x for r in results for x in r["latencies"]],
            answers=set().union(*(r["answers"] for r in results)),
            client_cpu=sum(r["cpu"] for r in results),
        )

    def close(self) -> None:
        for inbox in self.inboxes:
            with contextlib.suppress(Exception):
                inbox.put(None)
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()


# -- one backend: both servers, every cell --------------------------------------------------------
@dataclass
class Target:
    system: str
    url: str
    db: str
    token: str
    pid: int  # the server's main process (its workers are its children)

    def count(self, experiment: str) -> dict[str, int]:
        return (count_shipyard if self.system == "shipyard" else count_mlflow)(self.db, experiment)


@dataclass
class BackendFigures:
    backend: str
    cells: dict[tuple[str, str, int], CellFigures] = field(default_factory=dict)  # (system, op, clients)
    seed_rate: dict[str, float] = field(default_factory=dict)  # system -> runs/s logged by the seeding
    answer: tuple[str, ...] = ()
    counts: dict[str, str] = field(default_factory=dict)  # system -> final counts, for the notes
    raw: dict[tuple[str, str, int], RawCell] = field(default_factory=dict)  # (system, op, users)


def cell_experiment(op: str, clients: int) -> str:
    return f"api-{op}-{clients}c"


def expected_counts(op: str, clients: int, calls: int, sz: Sizes) -> dict[str, int]:
    """What the database must hold in the cell's experiment afterwards (warm-up calls included)."""
    each = clients * (sz.warmup + calls)
    zero = {"runs": 0, "finished": 0, "params": 0, "tags": 0, "points": 0}
    if op == "create":
        return {**zero, "runs": each, "tags": 2 * each}
    if op == "batch":
        return {**zero, "runs": clients, "points": BATCH_SIZE * each}
    if op == "single":
        return {**zero, "runs": clients, "points": each}
    if op == "search":
        n = sz.search_runs
        return {"runs": n, "finished": n, "params": 5 * n, "tags": 2 * n, "points": 5 * n}
    return {**zero, "runs": 1, "finished": 1, "points": sz.history_points}  # history


@contextlib.contextmanager
def servers(backend: str, args: argparse.Namespace) -> Iterator[dict[str, Target]]:
    """Both servers up at once on ``backend``, each on a database of its own."""
    with contextlib.ExitStack() as stack:
        targets = {}
        for system in SYSTEMS:
            home = fresh_dir(f"mlapi-{backend}-{system}", args.keep)
            if backend == "postgresql":
                db = stack.enter_context(temp_database(f"mlapi_{system[:2]}"))
            else:
                db = f"sqlite:///{home / f'{system}.db'}"
            extra = list(args.server_arg if system == "shipyard" else args.mlflow_arg)
            admin = ""
            if system == "shipyard" and args.auth:
                extra.append("--auth")
                admin = "sy_" + uuid.uuid4().hex + uuid.uuid4().hex
            server = stack.enter_context(running(system, db, args.workers, home, extra, admin))
            token = scientist_token(server.url, admin) if admin else ""
            targets[system] = Target(system, server.url, db, token, server.proc.pid)
            say(f"{backend}: {system} server up at {server.url} ({args.workers} workers)")
        yield targets


def prepare(target: Target, sz: Sizes, clients: list[int]) -> str:
    """The cells' experiments and the history run (its points checked); returns the run's id."""
    from mlflow.entities import Metric

    os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
    client = MlflowSide(target.url, target.token).client
    for op in OPS:
        for c in clients:
            client.create_experiment(cell_experiment(op, c))
    client.create_experiment(SEARCH_EXP)
    run_id = str(client.create_run(client.create_experiment(HISTORY_EXP)).info.run_id)
    sent = [Metric(HISTORY_KEY, 1.0 / (1 + s), 1_700_000_000_000 + s, s) for s in range(sz.history_points)]
    for at in range(0, len(sent), 1000):  # MLflow's limit per batch
        client.log_batch(run_id, metrics=sent[at : at + 1000], synchronous=True)
    client.set_terminated(run_id)
    got = client.get_metric_history(run_id, HISTORY_KEY)
    if sorted((m.step, m.value, m.timestamp) for m in got) != [(m.step, m.value, m.timestamp) for m in sent]:
        raise AssertionError(f"{target.system}: the history read back differs from the points logged")
    return run_id


def jobs_for(op: str, target: Target, clients: int, calls: int, sz: Sizes, history_run: str) -> list[Job]:
    experiment = (
        SEARCH_EXP if op == "search" else HISTORY_EXP if op == "history" else cell_experiment(op, clients)
    )
    return [
        Job(
            op,
            target.url,
            target.token,
            experiment,
            first=k * (sz.warmup + calls),
            count=calls,
            warmup=sz.warmup,
            run_id=history_run,
            points=sz.history_points,
        )
        for k in range(clients)
    ]


def seed(pool: Pool, target: Target, sz: Sizes, clients: int) -> float:
    """Log the searched runs through the client (``create_run`` + ``log_batch`` + ``set_terminated``
    each), split across ``clients`` workers; returns the rate, in runs/s."""
    per, extra = divmod(sz.search_runs, clients)
    jobs, at = [], 0
    for k in range(clients):
        n = per + (1 if k < extra else 0)
        jobs.append(Job("seed", target.url, target.token, SEARCH_EXP, first=at, count=n, warmup=0))
        at += n
    cell = pool.run([j for j in jobs if j.count])
    check_counts(target.system, target.count(SEARCH_EXP), expected_counts("search", 1, 0, sz))
    return cell.rate


def measure_backend(backend: str, pool: Pool, sz: Sizes, args: argparse.Namespace) -> BackendFigures:
    figures = BackendFigures(backend)
    with servers(backend, args) as targets:
        history_runs = {s: prepare(t, sz, args.clients) for s, t in targets.items()}
        for system, target in targets.items():
            say(f"{backend}: {system}: logging {sz.search_runs:,} runs to search")
            figures.seed_rate[system] = seed(pool, target, sz, max(args.clients))
        turn = 0
        for op in OPS if "client" in args.modes else ():
            for clients in args.clients:
                calls = sz.calls(op, clients)
                order = SYSTEMS if turn % 2 == 0 else SYSTEMS[::-1]
                turn += 1
                for system in order:
                    target = targets[system]
                    jobs = jobs_for(op, target, clients, calls, sz, history_runs[system])
                    cell = pool.run(jobs)
                    figures.cells[(system, op, clients)] = cell
                    experiment = jobs[0].experiment
                    check_counts(system, target.count(experiment), expected_counts(op, clients, calls, sz))
                    say(
                        f"{backend}: {system:8} {op:7} {clients:2} client(s): {cell.calls:4} calls, median "
                        f"{cell.median_ms:7.1f} ms, p95 {cell.p95_ms:7.1f} ms, {cell.rate:7.1f}/s"
                    )
                    if op == "search":
                        if len(cell.answers) != 1:
                            raise AssertionError(
                                f"{system} on {backend}: clients got different search answers"
                            )
                        answer = next(iter(cell.answers))
                        if figures.answer and answer != figures.answer:
                            raise AssertionError(f"{backend}: Shipyard and MLflow returned different runs")
                        figures.answer = answer
        if "raw" in args.modes:
            measure_raw(targets, figures, sz, args, turn)
        for system, target in targets.items():
            totals = {"runs": 0, "finished": 0, "params": 0, "tags": 0, "points": 0}
            raw = [raw_experiment("batch", u) for u in args.clients] if "raw" in args.modes else []
            for experiment in (
                [SEARCH_EXP, HISTORY_EXP] + raw + [cell_experiment(o, c) for o in OPS for c in args.clients]
            ):
                for key, value in target.count(experiment).items():
                    totals[key] += value
            figures.counts[system] = ", ".join(f"{v:,} {k}" for k, v in totals.items())
    return figures


# -- raw mode: MLflow-Go's k6 shape (pre-encoded JSON, a cheap closed-loop generator) ------------
RAW_OPS = ("batch", "search", "scan")
SCAN_LIMIT = 1_000
API = "/api/2.0/mlflow/"
RAW_LABELS = {
    "batch": (f"raw log-batch of {BATCH_SIZE} metrics, one shared run", "batches/s"),
    "search": (f"raw runs/search top {SEARCH_LIMIT}, filter + order_by", "searches/s"),
    "scan": (f"raw runs/search of {SCAN_LIMIT:,} runs, no filter", "searches/s"),
}
RAW_ANCHORS = {"batch": ANCHORS["batch"], "search": ANCHORS["search"], "scan": ANCHORS["search"]}


@dataclass
class RawCell:
    """One raw cell: what the generator measured and the CPU each party spent meanwhile (seconds)."""

    load: LoadResult
    generator_cpu: float  # this process: the generator alone
    server_cpu: float  # the server's process tree
    database_cpu: float | None  # the PostgreSQL backends serving the server's database (None on SQLite)
    busy: float  # the whole machine's CPU use during the cell, as a share of all its cores
    split: tuple[
        int, ...
    ] = ()  # connections each server process held as the timed requests began, most first
    errors: dict[int, int] = field(default_factory=dict)  # failed answers by status (peer only)

    @property
    def calls(self) -> int:
        return len(self.load.latencies)

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.load.latencies) * 1e3

    @property
    def median_ms(self) -> float:
        return statistics.median(self.load.latencies) * 1e3

    @property
    def p95_ms(self) -> float:
        ordered = sorted(self.load.latencies)  # nearest rank, as the client cells
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] * 1e3

    @property
    def split_text(self) -> str:
        """The connections per worker as ``14/6``."""
        return "/".join(str(n) for n in self.split) or "?"

    def per_call_ms(self, cpu: float | None) -> float | None:
        return None if cpu is None else cpu / self.calls * 1e3

    @property
    def generator_share(self) -> float:
        """The generator's CPU as a share of one core over the cell."""
        return self.generator_cpu / self.load.elapsed


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def _headers(target: Target) -> dict[str, str]:
    return {"Authorization": f"Bearer {target.token}"} if target.token else {}


def raw_request(target: Target, method: str, path: str, payload: object = None) -> bytes:
    """One pre-encoded request to MLflow's REST API at ``target``."""
    host, port = _host_port(target.url)
    body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
    return encode_request(host, port, method, API + path, body, _headers(target))


def rest(target: Target, method: str, path: str, payload: object = None) -> dict[str, Any]:
    """One call (untimed: set-up and checks), its JSON answer; anything but a 200 fails the benchmark."""
    status, answer = fetch(*_host_port(target.url), raw_request(target, method, path, payload))
    if status != 200:
        raise RuntimeError(f"{target.system}: {method} {API}{path} answered {status}: {answer[:300]!r}")
    found: dict[str, Any] = json.loads(answer) if answer else {}
    return found


def _experiment_id(target: Target, name: str) -> str:
    found = rest(target, "GET", f"experiments/get-by-name?experiment_name={quote(name)}")
    return str(found["experiment"]["experiment_id"])


def raw_experiment(op: str, users: int) -> str:
    return f"api-raw-{op}-{users}u"


def raw_pool(op: str, target: Target, users: int, total: int) -> list[bytes]:
    """The cell's requests: ``users`` warm-up ones first, then ``total`` timed ones, each sent once.

    log-batch is k6LogBatchPerfScript.js's body: 500 metrics ``metric_0`` … ``metric_499`` at step 0,
    value ``i × random``, into one run created beforehand and shared by every user; each request has a
    timestamp of its own (k6 sends ``Date.now()``, which two users can share in a millisecond, and
    MLflow refuses a duplicate point), so every point is a new row in both stores.
    """
    if op == "batch":
        exp_id = str(
            rest(target, "POST", "experiments/create", {"name": raw_experiment(op, users)})["experiment_id"]
        )
        run = rest(
            target,
            "POST",
            "runs/create",
            {
                "experiment_id": exp_id,
                "start_time": int(time.time() * 1000),
                "tags": [{"key": "mlflow.user", "value": "k6"}],
            },
        )
        run_id = run["run"]["info"]["run_id"]
        rng, t0 = random.Random(users), int(time.time() * 1000)
        return [
            raw_request(
                target,
                "POST",
                "runs/log-batch",
                {
                    "run_id": run_id,
                    "tags": [],
                    "params": [],
                    "metrics": [
                        {"key": f"metric_{i}", "value": i * rng.random(), "timestamp": t0 + k, "step": 0}
                        for i in range(BATCH_SIZE)
                    ],
                },
            )
            for k in range(users + total)
        ]
    exp_id = _experiment_id(target, SEARCH_EXP)
    if op == "search":
        query = {
            "experiment_ids": [exp_id],
            "filter": SEARCH_FILTER,
            "order_by": ["metrics.auc DESC"],
            "max_results": SEARCH_LIMIT,
        }
    else:  # scan: k6SearchRunPerfScript.js's body
        query = {"experiment_ids": [exp_id], "max_results": SCAN_LIMIT}
    return [raw_request(target, "POST", "runs/search", query)]


def raw_answer(target: Target, op: str) -> tuple[str, ...]:
    """The searched runs' ``seed`` params, in the order the server answered (checked across servers)."""
    if op == "search":
        query = {
            "experiment_ids": [_experiment_id(target, SEARCH_EXP)],
            "filter": SEARCH_FILTER,
            "order_by": ["metrics.auc DESC"],
            "max_results": SEARCH_LIMIT,
        }
    else:
        query = {"experiment_ids": [_experiment_id(target, SEARCH_EXP)], "max_results": SCAN_LIMIT}
    runs = rest(target, "POST", "runs/search", query).get("runs", [])
    return tuple(next(p["value"] for p in r["data"]["params"] if p["key"] == "seed") for r in runs)


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its live descendants."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def _database_pids(target: Target) -> list[int]:
    """The PostgreSQL backends connected to the target's database (its server's pool, warm by now)."""
    from sqlalchemy import create_engine, make_url, text

    from bench_team import pg_admin_url

    name = make_url(target.db).database
    engine = create_engine(pg_admin_url())
    with engine.connect() as conn:
        pids = [
            int(p)
            for p in conn.execute(
                text("select pid from pg_stat_activity where datname = :d"), {"d": name}
            ).scalars()
        ]
    engine.dispose()
    return pids


def _pids_cpu(pids: list[int]) -> dict[int, float]:
    import psutil

    out = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            out[pid] = times.user + times.system
    return out


def connections_per_worker(pid: int, port: int, expected: int, workers: int) -> tuple[int, ...]:
    """The established connections to ``port`` each process of the server ``pid`` holds, most first,
    padded with zeros to ``workers`` entries.

    A keep-alive connection stays with the worker that accepted it for good, so this split decides how
    the cell's work is shared: 20/0 leaves one worker idle. It waits (up to a few seconds) for the
    server to accept all ``expected`` connections the generator has opened.
    """
    import psutil

    deadline = time.monotonic() + 5.0
    while True:
        counts: dict[int, int] = {}
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                held = sum(
                    1
                    for c in proc.net_connections(kind="tcp")
                    if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
                )
                if held:
                    counts[proc.pid] = held
        if sum(counts.values()) >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    found = sorted(counts.values(), reverse=True)
    return tuple(found + [0] * (workers - len(found)))


def run_raw_cell(op: str, target: Target, users: int, total: int, workers: int = 2) -> RawCell:
    """Warm up (one request per user, untimed), then ``total`` requests over ``users`` connections."""
    import psutil

    host, port = _host_port(target.url)
    pool = raw_pool(op, target, users, total)
    gc.freeze()  # run_load starts with a full collection: not of MLflow's modules, imported here too
    warm, timed = (pool[:users], pool[users:]) if op == "batch" else (pool, pool)
    warmed = run_load(host, port, warm, users, users)
    if warmed.errors:
        raise RuntimeError(
            f"{target.system} raw {op}: warm-up failed: {warmed.statuses} {warmed.failures[:2]}"
        )
    on_pg = target.db.startswith("postgresql")
    pids = _database_pids(target) if on_pg else []
    db0, sv0, gen0, machine0 = _pids_cpu(pids), _tree_cpu(target.pid), time.process_time(), psutil.cpu_times()
    split: list[tuple[int, ...]] = []
    looked = [0.0]  # the generator's CPU spent looking at the split: not the generator's cost

    def see_split() -> None:
        t0 = time.process_time()
        split.append(connections_per_worker(target.pid, port, users, workers))
        looked[0] += time.process_time() - t0

    load = run_load(host, port, timed, users, total, on_connected=see_split)
    gen, sv, db1, machine1 = (
        time.process_time() - gen0 - looked[0],
        _tree_cpu(target.pid) - sv0,
        _pids_cpu(pids),
        psutil.cpu_times(),
    )
    failed = {status: n for status, n in load.statuses.items() if not 200 <= status < 300}
    # Shipyard must answer every request; the peer's failures on a read are reported, not fatal (a
    # failed write would break the counts checked after the cell, so it stays fatal for both)
    if load.errors and (target.system == "shipyard" or op == "batch" or load.failures or not failed):
        raise RuntimeError(
            f"{target.system} raw {op} with {users} users: {load.statuses} {load.failures[:2]}"
        )
    idle = (machine1.idle + machine1.iowait) - (machine0.idle + machine0.iowait)
    wall_all = sum(machine1) - sum(machine0)
    if on_pg:  # backends opened during the cell count whole; any closed during it are missed
        born = _pids_cpu([p for p in _database_pids(target) if p not in db0])
        database: float | None = sum(db1[p] - db0[p] for p in db1 if p in db0) + sum(born.values())
    else:
        database = None
    busy = 1 - idle / wall_all if wall_all else 0.0
    return RawCell(load, gen, sv, database, busy, split[0] if split else (), failed)


def raw_expected(op: str, users: int, total: int, sz: Sizes) -> dict[str, int]:
    zero = {"runs": 0, "finished": 0, "params": 0, "tags": 0, "points": 0}
    if op == "batch":
        return {**zero, "runs": 1, "points": BATCH_SIZE * (users + total)}
    return expected_counts("search", 1, 0, sz)


def measure_raw(
    targets: dict[str, Target], figures: BackendFigures, sz: Sizes, args: argparse.Namespace, turn: int
) -> None:
    """Every raw cell on this backend, the servers taking turns to go first; writes counted after each."""
    for op in RAW_OPS:
        if op != "batch":
            answers = {s: raw_answer(t, op) for s, t in targets.items()}
            want = min(SCAN_LIMIT, sz.search_runs)
            if op == "search" and len(set(answers.values())) != 1:
                raise AssertionError(f"{figures.backend}: raw search: the servers returned different runs")
            if op == "search" and figures.answer and answers["shipyard"] != figures.answer:
                raise AssertionError(f"{figures.backend}: raw search differs from the client's search")
            if op == "scan" and any(len(a) != want for a in answers.values()):
                raise AssertionError(
                    f"{figures.backend}: raw scan: not {want} runs each: "
                    f"{ {s: len(a) for s, a in answers.items()} }"
                )
        for users in args.clients:
            total = sz.raw_requests(op, users)
            order = SYSTEMS if turn % 2 == 0 else SYSTEMS[::-1]
            turn += 1
            for system in order:
                target = targets[system]
                cell = run_raw_cell(op, target, users, total, args.workers)
                figures.raw[(system, op, users)] = cell
                experiment = raw_experiment(op, users) if op == "batch" else SEARCH_EXP
                check_counts(system, target.count(experiment), raw_expected(op, users, total, sz))
                db = cell.per_call_ms(cell.database_cpu)
                say(
                    f"{figures.backend}: raw {system:8} {op:6} {users:2} user(s): {cell.calls:4} calls, mean "
                    f"{cell.mean_ms:7.1f} ms, median {cell.median_ms:7.1f} ms, {cell.load.rate:7.1f}/s; "
                    f"CPU/call server {cell.per_call_ms(cell.server_cpu):.2f} ms"
                    + (f", postgres {db:.2f} ms" if db is not None else "")
                    + f", generator {cell.per_call_ms(cell.generator_cpu):.2f} ms "
                    f"({cell.generator_share:.0%} of a core); machine {cell.busy:.0%} busy; "
                    f"connections per worker {cell.split_text}"
                    + (f"; FAILED answers {cell.errors}" if cell.errors else "")
                )


# -- the report ---------------------------------------------------------------------------------
def _verdict(ours: float, anchor: float, matching: bool) -> str:
    """Our ratio against MLflow-Go's, judged only in the anchor's own cell."""
    return ("met" if ours >= anchor else "MISSED") if matching else "not the anchor's cell"


def anchor_lines(all_figures: list[BackendFigures], clients: list[int]) -> list[str]:
    """MLflow-Go's published ratio beside ours for each matching cell (or the nearest we measured)."""
    lines = []
    for op, anchor in ANCHORS.items():
        for figures in all_figures:
            c = ANCHOR_CLIENTS if ANCHOR_CLIENTS in clients else max(clients)
            sy, ml = figures.cells[("shipyard", op, c)], figures.cells[("mlflow", op, c)]
            matching = figures.backend == ANCHOR_BACKEND and c == ANCHOR_CLIENTS
            ours = ml.median_ms / sy.median_ms
            verdict = _verdict(ours, anchor.ratio, matching)
            lines.append(
                f"{anchor.name} (MLflow-Go {anchor.mlflow_ms:g} vs {anchor.go_ms:g} ms = "
                f"{fmt_ratio(anchor.ratio)} MLflow, {ANCHOR_BACKEND}, {ANCHOR_CLIENTS} users): ours on "
                f"{figures.backend}, {c} client(s): MLflow {ml.median_ms:.1f} vs Shipyard {sy.median_ms:.1f} "
                f"ms median = {fmt_ratio(ours)} (by mean: {ml.mean_ms:.1f} vs {sy.mean_ms:.1f} ms = "
                f"{fmt_ratio(ml.mean_ms / sy.mean_ms)}): {verdict}"
            )
    return lines


def client_cpu_line(figures: BackendFigures, clients: int) -> str:
    cpu = {(s, op): figures.cells[(s, op, clients)].client_cpu_ms for s in SYSTEMS for op in OPS}
    per_op = ", ".join(f"{op} {cpu[('shipyard', op)]:.1f}/{cpu[('mlflow', op)]:.1f}" for op in OPS)
    return f"{figures.backend}, {clients} client(s): {per_op}"


def build_section(
    all_figures: list[BackendFigures], sz: Sizes, args: argparse.Namespace, quick: bool
) -> Section:
    sec = Section(
        "mlflow-api",
        "The MLflow client: shipyard server's MLflow API vs mlflow server (SQLite, PostgreSQL)"
        + (" — QUICK sizes" if quick else ""),
    )
    for figures in all_figures:
        for op in OPS if "client" in args.modes else ():
            label, unit = LABELS[op]
            for c in args.clients:
                sy, ml = figures.cells[("shipyard", op, c)], figures.cells[("mlflow", op, c)]
                anchor = (
                    ANCHORS.get(op) if figures.backend == ANCHOR_BACKEND and c == ANCHOR_CLIENTS else None
                )
                what = f"{label}, {figures.backend}, {c} client(s)"
                median = Result(f"{what}: median latency", "ms", sy.median_ms, ml.median_ms)
                if anchor is not None:
                    median.target = f"≥ {fmt_ratio(anchor.ratio)} MLflow (MLflow-Go's {anchor.name})"
                    median.met = ml.median_ms >= anchor.ratio * sy.median_ms
                sec.results += [
                    median,
                    Result(f"{what}: p95 latency", "ms", sy.p95_ms, ml.p95_ms),
                    Result(what, unit, sy.rate, ml.rate, better="higher"),
                ]
    calls = "; ".join(
        f"{LABELS[op][0]}: " + ", ".join(f"{c} client(s) {c} × {sz.calls(op, c)}" for c in args.clients)
        for op in OPS
    )
    sec.results += raw_results(all_figures, args)
    sec.notes = raw_notes(all_figures, sz, args) if "raw" in args.modes else []
    if "client" not in args.modes:
        return sec
    sec.notes[:0] = [
        f"Both servers: `--workers {args.workers}`, loopback, default log level (access log on), both up "
        "at once on each backend, each on a database of its own (a SQLite file; a fresh PostgreSQL "
        "database). Shipyard extra flags: "
        f"{' '.join(args.server_arg) or 'none'}{' --auth (a scientist token)' if args.auth else ''}; MLflow "
        f"extra flags: {' '.join(args.mlflow_arg) or 'none'}. The clients: MLflow's own `MlflowClient` "
        f"({_mlflow_version()}) in separate processes, the same code for both servers; each cell starts "
        f"them together after {sz.warmup} untimed calls each; the cells alternate which server goes first. "
        "Clients and servers share the machine's cores.",
        f"Timed calls per cell (clients × calls each): {calls}. Latency is one call, client side; the "
        "rate is calls ÷ wall time from the first client's start to the last one's end.",
        f"log_batch: {BATCH_SIZE} `Metric`s (500 keys, one new step per call) into a run of each client's "
        "own, synchronous. log_metric: one point per call, synchronous (MLflow's default). create_run: "
        "2 tags. get_metric_history: a run's 1,000-point metric (read back exactly as logged, checked).",
        f"search_runs: `{SEARCH_FILTER}`, order_by `metrics.auc DESC`, max_results {SEARCH_LIMIT}, over "
        f"{sz.search_runs:,} finished runs (5 params, 5 metrics, 2 tags each) logged beforehand through the "
        "same client (`create_run` + `log_batch` + `set_terminated`, with "
        "`MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT`: without it MLflow's client fetches each ended run to "
        "print its URL; at "
        + "; ".join(
            f"{f.backend}: Shipyard {f.seed_rate['shipyard']:.0f}, MLflow {f.seed_rate['mlflow']:.0f} runs/s"
            for f in all_figures
        )
        + f" with {max(args.clients)} clients). Both servers returned the same runs in the same order "
        "(checked, on every backend).",
        "No lost writes: after every cell both databases were counted directly (runs, finished runs, "
        "params, tags, metric points) against what the clients sent, warm-up calls included. At the end: "
        + "; ".join(
            f"{f.backend}: Shipyard {f.counts['shipyard']} / MLflow {f.counts['mlflow']}" for f in all_figures
        )
        + ".",
        "MLflow-Go's published figures (github.com/mlflow/mlflow-go-backend, benchmarks/README.md: k6, "
        "20 users for 30 s, PostgreSQL, average latency; 104.42 and 13.12 ms there, rounded as in the "
        "issue): " + " · ".join(anchor_lines(all_figures, args.clients)),
        "Client CPU per call (MLflow's Python client building the request and reading the answer; the "
        "clients share the 2 cores with the servers): "
        + "; ".join(client_cpu_line(f, c) for f in all_figures for c in args.clients)
        + " ms (Shipyard/MLflow).",
        "MLflow-Go's README says its LogMetricBatch500 hit a bug (mlflow-go issue #81) and was left out of "
        "their results; its 13 ms comes from their table all the same. Their k6 script logs 500 keys at "
        "step 0 per batch into one run all users share, POSTed as raw JSON: the raw cells' shape; the "
        "client cells go through MLflow's Python client.",
    ]
    return sec


def raw_results(all_figures: list[BackendFigures], args: argparse.Namespace) -> list[Result]:
    """The raw cells' rows: mean latency (what k6 reports; MLflow-Go's targets are judged on it),
    median, p95, rate and each server's CPU per call."""
    rows = []
    for figures in all_figures:
        for op in RAW_OPS if "raw" in args.modes else ():
            label, unit = RAW_LABELS[op]
            for users in args.clients:
                sy, ml = figures.raw[("shipyard", op, users)], figures.raw[("mlflow", op, users)]
                what = f"{label}, {figures.backend}, {users} user(s)"
                mean = Result(f"{what}: mean latency", "ms", sy.mean_ms, ml.mean_ms)
                if figures.backend == ANCHOR_BACKEND and users == ANCHOR_CLIENTS:
                    anchor = RAW_ANCHORS[op]
                    mean.target = f"≥ {fmt_ratio(anchor.ratio)} MLflow (MLflow-Go's {anchor.name})"
                    mean.met = ml.mean_ms >= anchor.ratio * sy.mean_ms
                rows += [
                    mean,
                    Result(f"{what}: median latency", "ms", sy.median_ms, ml.median_ms),
                    Result(f"{what}: p95 latency", "ms", sy.p95_ms, ml.p95_ms),
                    Result(what, unit, sy.load.rate, ml.load.rate, better="higher"),
                    Result(
                        f"{what}: server CPU per call",
                        "ms",
                        sy.per_call_ms(sy.server_cpu),
                        ml.per_call_ms(ml.server_cpu),
                    ),
                ]
                if sy.database_cpu is not None:
                    rows.append(
                        Result(
                            f"{what}: PostgreSQL CPU per call",
                            "ms",
                            sy.per_call_ms(sy.database_cpu),
                            ml.per_call_ms(ml.database_cpu),
                        )
                    )
    return rows


def raw_anchor_lines(all_figures: list[BackendFigures], users: list[int]) -> list[str]:
    """MLflow-Go's published ratio beside the raw cells' (mean latency, as k6 reports)."""
    lines = []
    u = ANCHOR_CLIENTS if ANCHOR_CLIENTS in users else max(users)
    for op, anchor in RAW_ANCHORS.items():
        for figures in all_figures:
            sy, ml = figures.raw[("shipyard", op, u)], figures.raw[("mlflow", op, u)]
            matching = figures.backend == ANCHOR_BACKEND and u == ANCHOR_CLIENTS
            ours = ml.mean_ms / sy.mean_ms
            verdict = _verdict(ours, anchor.ratio, matching)
            lines.append(
                f"{anchor.name} ({fmt_ratio(anchor.ratio)}) vs raw {op} on {figures.backend}, {u} user(s): "
                f"MLflow {ml.mean_ms:.1f} vs Shipyard {sy.mean_ms:.1f} ms mean = {fmt_ratio(ours)} (median "
                f"{fmt_ratio(ml.median_ms / sy.median_ms)}; throughput "
                f"{fmt_ratio(sy.load.rate / ml.load.rate)}): {verdict}"
            )
    return lines


def raw_notes(all_figures: list[BackendFigures], sz: Sizes, args: argparse.Namespace) -> list[str]:
    requests = "; ".join(
        f"{op}: " + ", ".join(f"{u} user(s) {sz.raw_requests(op, u)}" for u in args.clients) for op in RAW_OPS
    )

    def cpu(f: BackendFigures, op: str, u: int) -> str:
        sy, ml = f.raw[("shipyard", op, u)], f.raw[("mlflow", op, u)]
        return (
            f"{f.backend} {op} {u}u: generator {sy.per_call_ms(sy.generator_cpu):.2f}/"
            f"{ml.per_call_ms(ml.generator_cpu):.2f} ms per call ({sy.generator_share:.0%}/"
            f"{ml.generator_share:.0%} of a core), machine {sy.busy:.0%}/{ml.busy:.0%} busy"
        )

    return [
        "Raw cells (MLflow-Go's k6 shape): a closed-loop generator (bench/loadgen.py: raw asyncio, one "
        "process, pre-encoded JSON requests over keep-alive connections, no client library) in place of "
        "k6; each user one connection, sending its next request when the answer is in; one untimed request "
        f"per user first. Timed requests in all per cell: {requests}. Every answer must be a 200.",
        f"Raw log-batch: k6LogBatchPerfScript.js's body with metricCount {BATCH_SIZE}: `metric_0` … "
        f"`metric_{BATCH_SIZE - 1}` at step 0, value i × random, no params or tags, into one run created "
        "beforehand (tag `mlflow.user=k6`) that every user shares; each request has a timestamp of its own "
        "(k6's `Date.now()` can repeat across users, and MLflow refuses a duplicate point), so every point "
        "is new in both stores (counted after each cell). Raw search: the client cells' query (filter, "
        f"order_by, top {SEARCH_LIMIT}; same runs in the same order from both servers, checked). Raw scan: "
        f"k6SearchRunPerfScript.js's body, `max_results` {SCAN_LIMIT:,} and no filter, over the "
        f"{sz.search_runs:,} seeded runs (theirs: 23,525 runs of one tag each, made by their CreateRun "
        "test); "
        f"both servers answered {min(SCAN_LIMIT, sz.search_runs):,} runs (checked).",
        "CPU per call: the server's process tree (the main process and its workers) and, on PostgreSQL, the "
        "backends connected to its database, from /proc over the timed requests; the generator's own CPU "
        "(Shipyard/MLflow cells): "
        + "; ".join(cpu(f, op, u) for f in all_figures for op in RAW_OPS for u in args.clients)
        + ".",
        "Connections per worker (the established connections each server process held when the timed "
        "requests began, most first; a keep-alive connection stays with the worker that accepted it; "
        "Shipyard/MLflow): "
        + "; ".join(
            f"{f.backend} {op} {u}u: {f.raw[('shipyard', op, u)].split_text} vs "
            f"{f.raw[('mlflow', op, u)].split_text}"
            for f in all_figures
            for op in RAW_OPS
            for u in args.clients
            if u > 1
        )
        + ".",
        "MLflow-Go's figures beside the raw cells (their measure: k6's average duration, so ours is the "
        "mean): " + " · ".join(raw_anchor_lines(all_figures, args.clients)),
    ] + _failure_notes(all_figures, args.clients)


def _failure_notes(all_figures: list[BackendFigures], clients: list[int]) -> list[str]:
    """The peer's failed answers in the raw read cells (their latencies are in the figures too)."""
    failed = [
        f"{f.backend} {op} {u}u: {', '.join(f'{n} × HTTP {s}' for s, n in sorted(cell.errors.items()))} of "
        f"{cell.calls} requests"
        for f in all_figures
        for op in RAW_OPS
        for u in clients
        if (cell := f.raw[("mlflow", op, u)]).errors
    ]
    return (
        ["MLflow's server failed some raw read requests (counted, not retried): " + "; ".join(failed)]
        if failed
        else []
    )


def _mlflow_version() -> str:
    from importlib import metadata

    return f"mlflow {metadata.version('mlflow')}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, SQLite only, writes nothing")
    parser.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="update bench/RESULTS.md (default: yes, except with --quick)",
    )
    parser.add_argument("--backends", help="sqlite,postgresql (default both; sqlite with --quick)")
    parser.add_argument("--clients", default="1,20", help="concurrent clients per cell (default 1,20)")
    parser.add_argument(
        "--modes",
        default="client,raw",
        help="client (MLflow's Python client), raw (MLflow-Go's k6 shape: pre-encoded JSON); default both",
    )
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    parser.add_argument(
        "--auth",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="shipyard server --auth, its clients sending a scientist's token (default: off, as MLflow's)",
    )
    parser.add_argument("--server-arg", action="append", default=[], help="extra `shipyard server` argument")
    parser.add_argument("--mlflow-arg", action="append", default=[], help="extra `mlflow server` argument")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    parser.add_argument("--commit", metavar="REV", help="measure src/ as of this commit, exported")
    args = parser.parse_args(argv)
    if args.commit:
        rest = list(sys.argv[1:] if argv is None else argv)
        i = next(i for i, a in enumerate(rest) if a.startswith("--commit"))
        del rest[i : i + (1 if "=" in rest[i] else 2)]
        return rerun_at_commit(args.commit, Path(__file__).resolve(), rest)
    try:
        args.clients = sorted({int(c) for c in args.clients.split(",") if c.strip()})
    except ValueError:
        parser.error(f"--clients takes numbers separated by commas, got {args.clients!r}")
    if not args.clients or min(args.clients) < 1:
        parser.error("--clients needs at least one positive number")
    args.modes = {m.strip() for m in args.modes.split(",") if m.strip()}
    if not args.modes or args.modes - {"client", "raw"}:
        parser.error(f"--modes takes client, raw or both, got {args.modes!r}")
    backends = (args.backends or ("sqlite" if args.quick else ",".join(BACKENDS))).split(",")
    if not backends or set(backends) - set(BACKENDS):
        parser.error(f"--backends takes {', '.join(BACKENDS)}, got {args.backends!r}")
    sz = QUICK if args.quick else FULL
    write = (not args.quick) if args.write is None else args.write
    home = fresh_dir("mlapi", args.keep)
    os.chdir(home)  # anything a client or server drops in its working directory lands here
    say(f"starting {max(args.clients)} client processes")
    pool = Pool(max(args.clients))
    try:
        all_figures = [measure_backend(b, pool, sz, args) for b in backends]
        section = build_section(all_figures, sz, args, args.quick).finish()
        print_section(section)
        lines = anchor_lines(all_figures, args.clients) if "client" in args.modes else []
        for line in lines + (raw_anchor_lines(all_figures, args.clients) if "raw" in args.modes else []):
            print(line)
        if write:
            update_results_file([section])
    finally:
        pool.close()
        if not args.keep:
            remove_temp_dirs()
    say("done" + (" — bench/RESULTS.md updated" if write else " (RESULTS.md untouched)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
