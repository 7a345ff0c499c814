"""The team path: the SDK → ``shipyard server`` vs the MLflow client → ``mlflow server``, both on PostgreSQL.

    .venv/bin/python bench/bench_team.py                # full run (~4 min on 2 cores), writes RESULTS.md
    .venv/bin/python bench/bench_team.py --quick        # smoke run at small sizes (RESULTS.md untouched)
    .venv/bin/python bench/bench_team.py --no-auth      # Shipyard's server with auth off
    .venv/bin/python bench/bench_team.py --server-arg=--workers=4   # extra ``shipyard server`` flags

Each server runs with ``--workers 2`` (``--workers``) on a PostgreSQL database of its own, created for the
run and dropped after it (``SHIPYARD_BENCH_PG``, default the local server), as its own process group on
a free loopback port, one server at a time. Clients are separate processes (``spawn``), each with its
own client object, started together behind a barrier after a warm-up; 1 and 20 of them (``--clients``).

Cells, the same work for both systems:

- **create**: runs with 5 params, 5 metrics and 2 tags, ended. Shipyard:
  ``with client.start_run(experiment, params=…, tags=…) as run: run.log_metrics(…)``; MLflow:
  ``create_run(tags=…)`` + ``log_batch(metrics, params)`` + ``set_terminated`` (its fewest requests).
  The cell runs three times in a row (fresh client processes each time); its rate is the median, as
  this machine's run-to-run spread is large.
- **points**: runs that log 10,000 metric points each (10 keys × 1,000 steps). Shipyard: one
  ``run.log_metric`` call per point, then the run ends; MLflow: ``log_batch`` of 1,000 points (its maximum).
- **search**: ``metrics.auc > 0.9 and params.model = 'rf'`` ordered by auc desc, top 100, over the runs of
  the create cells (both servers hold the same runs and must return the same 100, in order).

After every cell the databases are counted directly (runs, finished runs, params, tags, metric points):
a lost write fails the benchmark.

Auth is on by default (the issue's target): ``shipyard server --auth`` bootstraps its admin from a fresh
``SHIPYARD_ADMIN_TOKEN``; the benchmark then creates, through the server, a user ``sam`` with the
``scientist`` role and a ``read,write`` token, and every Shipyard client sends that token
(``SHIPYARD_TOKEN``): each request is authenticated and authorised as a non-admin. ``--token`` uses a
token of yours instead; ``--no-auth`` runs the server open. MLflow's clients get ``--mlflow-token`` as
``MLFLOW_TRACKING_TOKEN`` (only meaningful if ``--mlflow-arg`` turns an auth app on).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    Result,
    Section,
    fresh_dir,
    print_section,
    remove_temp_dirs,
    rerun_at_commit,
    update_results_file,
)

# MLflow's telemetry: no network here, and its client raced on _MLFLOW_TELEMETRY_SESSION_ID under 20
# concurrent clients (a KeyError failing log_batch); off for its server and clients alike.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

HOST = "127.0.0.1"
VENV_BIN = Path(sys.executable).parent
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SEARCH_FILTER = "metrics.auc > 0.9 and params.model = 'rf'"
SEARCH_LIMIT = 100
MODELS = ("rf", "gbm", "lr", "svm", "knn")
POINT_KEYS = [f"metric_{k}" for k in range(10)]
CREATE_EXP, POINTS_EXP = "team-create", "team-points"


@dataclass(frozen=True)
class Sizes:
    create_runs: dict[int, int]  # clients -> runs created per repeat of the cell (split evenly)
    points_runs: dict[int, int]  # clients -> runs of 10,000 points
    point_steps: int = 1_000  # x 10 keys
    searches: dict[int, int] | None = None  # clients -> searches per client
    warmup_runs: int = 10
    create_repeats: int = 3  # the create cell runs this many times; its rate is the median


FULL = Sizes(
    create_runs={1: 300, 20: 800}, points_runs={1: 6, 20: 40}, searches={1: 40, 20: 10}, warmup_runs=10
)
QUICK = Sizes(
    create_runs={1: 30, 20: 100}, points_runs={1: 2, 20: 20}, point_steps=100, searches={1: 10, 20: 3}
)

_T0 = time.perf_counter()


def say(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# -- shared data -------------------------------------------------------------------------------
def run_data(i: int) -> tuple[dict[str, str], dict[str, float], dict[str, str]]:
    """Run ``i``'s 5 params, 5 metrics and 2 tags (deterministic: both systems get the same runs)."""
    rng = random.Random(1_000_003 * i + 7)
    auc = rng.uniform(0.5, 1.0)
    params = {
        "model": MODELS[rng.randrange(len(MODELS))],
        "n_estimators": str(rng.choice((100, 200, 400, 800))),
        "max_depth": str(rng.randint(2, 16)),
        "learning_rate": f"{rng.uniform(0.001, 0.3):.4f}",
        "seed": str(i),
    }
    metrics = {
        "auc": auc,
        "accuracy": auc - rng.uniform(0.0, 0.1),
        "f1": auc - rng.uniform(0.0, 0.2),
        "log_loss": rng.uniform(0.1, 0.7),
        "precision": rng.uniform(0.4, 1.0),
    }
    tags = {"team": rng.choice(("fraud", "churn", "ranking")), "stage": rng.choice(("dev", "prod"))}
    return params, metrics, tags


# -- databases and servers ---------------------------------------------------------------------
def pg_admin_url() -> str:
    return os.environ.get("SHIPYARD_BENCH_PG", PG_DEFAULT)


def db_url(name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(pg_admin_url()).set(database=name).render_as_string(hide_password=False)


@contextlib.contextmanager
def temp_database(label: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one server, dropped afterwards; yields its URL."""
    from sqlalchemy import create_engine, text

    name = f"bench_team_{label}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield db_url(name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    system: str
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


def server_command(system: str, port: int, workers: int, db: str, home: Path, extra: list[str]) -> list[str]:
    if system == "shipyard":
        return [
            str(VENV_BIN / "shipyard"),
            "server",
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--store",
            db,
            "--artifacts",
            str(home / "sy-artifacts"),
            *extra,
        ]
    return [
        str(VENV_BIN / "mlflow"),
        "server",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--backend-store-uri",
        db,
        "--default-artifact-root",
        (home / "ml-artifacts").as_uri(),
        *extra,
    ]


@contextlib.contextmanager
def running(
    system: str, db: str, workers: int, home: Path, extra: list[str], admin_token: str = ""
) -> Iterator[Server]:
    port = free_port()
    log = home / f"{system}.log"
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")]),
        "SHIPYARD_HOME": str(home / "shipyard-home"),
        "PYTHONUNBUFFERED": "1",
    }
    if admin_token:
        env["SHIPYARD_ADMIN_TOKEN"] = admin_token
    for name in ("SHIPYARD_TRACKING_URI", "SHIPYARD_ARTIFACT_URI", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            server_command(system, port, workers, db, home, extra),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            cwd=home,
        )
    server = Server(system, f"http://{HOST}:{port}", proc, log)
    try:
        wait_ready(server, workers)
        yield server
    finally:
        stop(server)


def wait_ready(server: Server, workers: int, timeout: float = 180.0) -> None:
    path = "/health"  # both servers answer it
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.system} server exited ({server.proc.returncode}):\n{server.tail()}")
        with (
            contextlib.suppress(OSError, ValueError),
            urllib.request.urlopen(server.url + path, timeout=2) as answer,
        ):
            text = server.log.read_text(errors="replace")
            if answer.status == 200 and text.count("Application startup complete") >= workers:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{server.system} server not ready after {timeout:.0f}s:\n{server.tail()}")


def stop(server: Server) -> None:
    """SIGTERM to the whole process group, SIGKILL after 15 s."""
    proc = server.proc
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # uvicorn's worker processes, if any are left


# -- clients (each in its own process) ---------------------------------------------------------
@dataclass(frozen=True)
class Job:
    system: str
    url: str
    cell: str  # create | points | search
    first: int  # index of this client's first run (create) or its seed (points)
    count: int  # runs (create, points) or searches
    steps: int
    token: str
    warmup: int


class ShipyardSide:
    def __init__(self, url: str, token: str) -> None:
        import shipyard as sy
        from shipyard.config import load_settings

        env = {"SHIPYARD_TOKEN": token} if token else {}
        settings = load_settings(
            config_file=Path("no-config.toml"), env=env, tracking_uri=url, system_metrics=False
        )
        self.client = sy.Client(settings=settings)
        http = getattr(self.client.store, "_http", None)
        if token and http is not None:  # servers from before SHIPYARD_TOKEN support read the header
            http.headers["Authorization"] = f"Bearer {token}"
        self.exp_ids: dict[str, int] = {}

    def create(self, experiment: str, i: int) -> None:
        params, metrics, tags = run_data(i)
        with self.client.start_run(
            experiment=experiment, params=params, tags=tags, system_metrics=False, log_environment=False
        ) as run:
            run.log_metrics(metrics)

    def points(self, experiment: str, seed: int, steps: int) -> None:
        with self.client.start_run(experiment=experiment, system_metrics=False, log_environment=False) as run:
            for s in range(steps):
                for j, key in enumerate(POINT_KEYS):
                    run.log_metric(key, 1.0 / (1 + s) + 0.01 * j + seed * 1e-9, step=s)

    def search(self, experiment: str) -> list[str]:
        if experiment not in self.exp_ids:
            self.exp_ids[experiment] = self.client.get_experiment(experiment).id
        page = self.client.store.search_runs(
            [self.exp_ids[experiment]], SEARCH_FILTER, ["metrics.auc desc"], SEARCH_LIMIT
        )
        return [r.params["seed"] for r in page.runs]

    def close(self) -> None:
        self.client.close()


class MlflowSide:
    def __init__(self, url: str, token: str) -> None:
        import warnings

        warnings.filterwarnings("ignore")
        import logging

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # no "View run …" line per run
        os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"
        if token:
            os.environ["MLFLOW_TRACKING_TOKEN"] = token
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=url)
        self.exp_ids: dict[str, str] = {}

    def _exp(self, name: str) -> str:
        if name not in self.exp_ids:
            exp = self.client.get_experiment_by_name(name)
            self.exp_ids[name] = exp.experiment_id if exp is not None else self.client.create_experiment(name)
        return self.exp_ids[name]

    def create(self, experiment: str, i: int) -> None:
        from mlflow.entities import Metric, Param

        params, metrics, tags = run_data(i)
        run_id = self.client.create_run(self._exp(experiment), tags=tags).info.run_id
        ts = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, v, ts, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
            synchronous=True,
        )
        self.client.set_terminated(run_id)

    def points(self, experiment: str, seed: int, steps: int) -> None:
        from mlflow.entities import Metric

        run_id = self.client.create_run(self._exp(experiment)).info.run_id
        batch: list[Any] = []
        for s in range(steps):
            ts = int(time.time() * 1000)
            for j, key in enumerate(POINT_KEYS):
                batch.append(Metric(key, 1.0 / (1 + s) + 0.01 * j + seed * 1e-9, ts, s))
                if len(batch) == 1000:
                    self.client.log_batch(run_id, metrics=batch, synchronous=True)
                    batch = []
        if batch:
            self.client.log_batch(run_id, metrics=batch, synchronous=True)
        self.client.set_terminated(run_id)

    def search(self, experiment: str) -> list[str]:
        runs = self.client.search_runs(
            [self._exp(experiment)],
            filter_string=SEARCH_FILTER,
            order_by=["metrics.auc DESC"],
            max_results=SEARCH_LIMIT,
        )
        return [r.data.params["seed"] for r in runs]

    def close(self) -> None:
        pass


def client_main(job: Job, barrier: Any, results: Any) -> None:
    """One client process: connect, warm up (untimed), wait for the others, do the cell's work."""
    try:
        side: ShipyardSide | MlflowSide = (
            ShipyardSide(job.url, job.token) if job.system == "shipyard" else MlflowSide(job.url, job.token)
        )
        for w in range(job.warmup):
            side.create("warmup", 10_000_000 + w)
        if job.cell == "search":
            side.search(CREATE_EXP)
        barrier.wait()
        latencies, answers = [], []
        cpu0 = time.process_time()
        start = time.time()
        for k in range(job.count):
            t = time.perf_counter()
            if job.cell == "create":
                side.create(CREATE_EXP, job.first + k)
            elif job.cell == "points":
                side.points(POINTS_EXP, job.first + k, job.steps)
            else:
                answers.append(side.search(CREATE_EXP))
            latencies.append(time.perf_counter() - t)
        end = time.time()
        cpu = time.process_time() - cpu0
        side.close()
        results.put({"start": start, "end": end, "latencies": latencies, "answers": answers[:1], "cpu": cpu})
    except BaseException as exc:  # the parent reports it and fails the benchmark
        with contextlib.suppress(Exception):
            barrier.abort()
        results.put({"error": f"{type(exc).__name__}: {exc}"})


@dataclass
class CellResult:
    seconds: float
    latencies: list[float]
    answers: list[list[str]]
    client_cpu: float = 0.0  # CPU seconds all clients spent in the timed part


def run_cell(
    system: str, url: str, cell: str, clients: int, total: int, first: int, sz: Sizes, token: str
) -> CellResult:
    """``total`` units of work split across ``clients`` processes started together; wall time of all."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(clients), ctx.Queue()
    per, extra = divmod(total, clients)
    jobs, at = [], first
    for c in range(clients):
        n = per + (1 if c < extra else 0)
        warm = sz.warmup_runs if cell != "search" else 1
        jobs.append(Job(system, url, cell, at, n, sz.point_steps, token, warm))
        at += n
    procs = [ctx.Process(target=client_main, args=(job, barrier, results), daemon=True) for job in jobs]
    for p in procs:
        p.start()
    got = [results.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    errors = [g["error"] for g in got if "error" in g]
    if errors:
        raise RuntimeError(f"{system} {cell} with {clients} clients failed: {errors[0]}")
    seconds = max(g["end"] for g in got) - min(g["start"] for g in got)
    return CellResult(
        seconds,
        [x for g in got for x in g["latencies"]],
        [a for g in got for a in g["answers"]],
        sum(g["cpu"] for g in got),
    )


# -- counting what landed ----------------------------------------------------------------------
def count_shipyard(db: str, experiment: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(db)
    q = {
        "runs": "select count(*) from runs r join experiments e on e.id = r.experiment_id where e.name = :x",
        "finished": "select count(*) from runs r join experiments e on e.id = r.experiment_id "
        "where e.name = :x and r.status = 'finished'",
        "params": "select count(*) from params p join runs r on r.id = p.run_id "
        "join experiments e on e.id = r.experiment_id where e.name = :x",
        "tags": "select count(*) from tags g join runs r on r.id = g.run_id "
        "join experiments e on e.id = r.experiment_id where e.name = :x and g.key in ('team', 'stage')",
        "points": "select coalesce(sum(c.n), 0) from metric_chunks c join runs r on r.id = c.run_id "
        "join experiments e on e.id = r.experiment_id where e.name = :x",
    }
    with engine.connect() as conn:
        out = {k: int(conn.execute(text(s), {"x": experiment}).scalar_one()) for k, s in q.items()}
    engine.dispose()
    return out


def count_mlflow(db: str, experiment: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(db)
    exp = "join experiments e on e.experiment_id = r.experiment_id where e.name = :x"

    def child(table: str) -> str:
        return f"select count(*) from {table} c join runs r on r.run_uuid = c.run_uuid {exp}"

    q = {
        "runs": f"select count(*) from runs r {exp}",
        "finished": f"select count(*) from runs r {exp} and r.status = 'FINISHED'",
        "params": child("params"),
        "tags": child("tags") + " and c.key in ('team', 'stage')",
        "points": child("metrics"),
    }
    with engine.connect() as conn:
        out = {k: int(conn.execute(text(s), {"x": experiment}).scalar_one()) for k, s in q.items()}
    engine.dispose()
    return out


def check_counts(system: str, got: dict[str, int], want: dict[str, int]) -> None:
    if got != want:
        raise AssertionError(f"{system} lost or added writes: found {got}, expected {want}")


# -- the benchmark -----------------------------------------------------------------------------
@dataclass
class SystemFigures:
    create_rate: dict[int, float]  # clients -> runs/s, the median of the repeats
    create_rates: dict[int, list[float]]  # clients -> runs/s of every repeat
    points_rate: dict[int, float]  # clients -> points/s
    search_ms: dict[int, float]  # clients -> median latency
    search_rate: dict[int, float]  # clients -> searches/s
    answer: list[str]
    counts: str


def scientist_token(url: str, admin_token: str) -> str:
    """Through the server, as its admin: a user ``sam`` (scientist) and a read,write token of sam's."""
    import shipyard as sy
    from shipyard.config import load_settings

    settings = load_settings(
        config_file=Path("no-config.toml"), env={"SHIPYARD_TOKEN": admin_token}, tracking_uri=url
    )
    client = sy.Client(settings=settings)
    try:
        client.store.create_user("sam", ["scientist"], "")  # type: ignore[attr-defined]
        _, secret = client.store.create_token("sam", "bench", "", ["read", "write"])  # type: ignore[attr-defined]
    finally:
        client.close()
    return str(secret)


def measure(system: str, sz: Sizes, args: argparse.Namespace, home: Path) -> SystemFigures:
    token = args.token if system == "shipyard" else args.mlflow_token
    extra = list(args.server_arg if system == "shipyard" else args.mlflow_arg)
    admin = ""
    if system == "shipyard" and args.auth:
        extra.append("--auth")
        admin = "sy_" + uuid.uuid4().hex + uuid.uuid4().hex
    figures = SystemFigures({}, {}, {}, {}, {}, [], "")
    with (
        temp_database("sy" if system == "shipyard" else "ml") as db,
        running(system, db, args.workers, home, extra, admin) as server,
    ):
        if admin and not token:
            token = scientist_token(server.url, admin)
            say("shipyard: auth on; clients send the token of sam (scientist, scopes read,write)")
        count = count_shipyard if system == "shipyard" else count_mlflow
        say(f"{system}: server up at {server.url} ({args.workers} workers) on {db.rsplit('/', 1)[-1]}")
        created = 0
        for clients in args.clients:
            n = sz.create_runs[clients] if clients in sz.create_runs else sz.create_runs[max(sz.create_runs)]
            rates = figures.create_rates[clients] = []
            for rep in range(sz.create_repeats):
                say(f"{system}: create {n:,} runs with {clients} client(s) ({rep + 1}/{sz.create_repeats})")
                cell = run_cell(system, server.url, "create", clients, n, created, sz, token)
                created += n
                rates.append(n / cell.seconds)
            figures.create_rate[clients] = statistics.median(rates)
            check_counts(
                system,
                count(db, CREATE_EXP),
                {
                    "runs": created,
                    "finished": created,
                    "params": 5 * created,
                    "tags": 2 * created,
                    "points": 5 * created,
                },
            )
        points_done = 0
        for clients in args.clients:
            n = sz.points_runs.get(clients, max(clients, 2))
            say(f"{system}: {n} runs of {10 * sz.point_steps:,} points with {clients} client(s)")
            cell = run_cell(system, server.url, "points", clients, n, points_done, sz, token)
            points_done += n
            figures.points_rate[clients] = n * 10 * sz.point_steps / cell.seconds
            check_counts(
                system,
                count(db, POINTS_EXP),
                {
                    "runs": points_done,
                    "finished": points_done,
                    "params": 0,
                    "tags": 0,
                    "points": points_done * 10 * sz.point_steps,
                },
            )
        for clients in args.clients:
            per = (sz.searches or {}).get(clients, 10)
            say(f"{system}: {per} searches per client over {created:,} runs with {clients} client(s)")
            cell = run_cell(system, server.url, "search", clients, per * clients, 0, sz, token)
            figures.search_ms[clients] = statistics.median(cell.latencies) * 1e3
            figures.search_rate[clients] = len(cell.latencies) / cell.seconds
            answers = {tuple(a) for a in cell.answers}
            if len(answers) != 1:
                raise AssertionError(f"{system}: clients got different search answers")
            figures.answer = list(answers.pop())
        final = count(db, CREATE_EXP)
        figures.counts = ", ".join(f"{v:,} {k}" for k, v in final.items())
    return figures


def build_section(sy: SystemFigures, ml: SystemFigures, sz: Sizes, args: argparse.Namespace) -> Section:
    sec = Section("team", "Team path: SDK → shipyard server vs MLflow client → mlflow server (PostgreSQL)")
    auth = (
        "auth on (scientist token)"
        if args.auth and not args.token
        else "with a token"
        if args.token
        else "auth off"
    )
    for c in args.clients:
        sec.results.append(
            Result(
                f"runs created (5 params, 5 metrics, 2 tags), {c} client(s), {auth}",
                "runs/s",
                sy.create_rate[c],
                ml.create_rate[c],
                better="higher",
                target="≥ 10× MLflow",
                met=sy.create_rate[c] >= 10 * ml.create_rate[c],
            )
        )
    for c in args.clients:
        sec.results.append(
            Result(
                f"metric points until durable (10,000 per run), {c} client(s)",
                "points/s",
                sy.points_rate[c],
                ml.points_rate[c],
                better="higher",
            )
        )
    for c in args.clients:
        sec.results.append(
            Result(
                f"search top {SEARCH_LIMIT}, {c} client(s): median latency",
                "ms",
                sy.search_ms[c],
                ml.search_ms[c],
                target="≥ 5× MLflow",
                met=sy.search_ms[c] * 5 <= ml.search_ms[c],
            )
        )
        sec.results.append(
            Result(
                f"search top {SEARCH_LIMIT}, {c} client(s)",
                "searches/s",
                sy.search_rate[c],
                ml.search_rate[c],
                better="higher",
            )
        )
    sec.notes = [
        f"Both servers: `--workers {args.workers}`, loopback, default log level (access log on), each on a "
        f"fresh PostgreSQL database of its own, one server at a time. Shipyard extra flags: "
        f"{' '.join(args.server_arg) or 'none'}; MLflow extra flags: {' '.join(args.mlflow_arg) or 'none'}. "
        f"Clients are separate processes started together behind a barrier after {sz.warmup_runs} "
        "untimed warm-up runs each; rates are work ÷ wall time from the first client's start to the last "
        "one's end. Clients and servers share the machine's cores.",
        "create: Shipyard `with client.start_run(experiment, params=5, tags=2, system_metrics=False, "
        "log_environment=False) as run: run.log_metrics(5)`; MLflow `create_run(tags=2)` + "
        "`log_batch(metrics=5, params=5)` + `set_terminated`. The cell runs "
        f"{sz.create_repeats} times in a row (runs per repeat: "
        + ", ".join(f"{c} client(s) {sz.create_runs.get(c, 0):,}" for c in args.clients)
        + "); the rate shown is the median, every repeat's rate: Shipyard "
        + "; ".join(
            f"{c} client(s) " + ", ".join(f"{r:.0f}" for r in sy.create_rates[c]) for c in args.clients
        )
        + "; MLflow "
        + "; ".join(
            f"{c} client(s) " + ", ".join(f"{r:.1f}" for r in ml.create_rates[c]) for c in args.clients
        )
        + " runs/s.",
        f"points: per run 10 keys × {sz.point_steps:,} steps; Shipyard one `run.log_metric` per point, the "
        "run ended by the `with` (everything durable); MLflow `log_batch` of 1,000 `Metric`s, then "
        "`set_terminated`. Runs per cell: "
        + ", ".join(f"{c} client(s) {sz.points_runs.get(c, 0)}" for c in args.clients)
        + ".",
        f"search: `{SEARCH_FILTER}`, order by auc desc, limit {SEARCH_LIMIT}, over the runs of the create "
        "cells (identical in both databases); both returned the same runs in the same order "
        "(checked). Shipyard `client.store.search_runs` (entities over REST), MLflow "
        "`MlflowClient.search_runs`.",
        f"No lost writes: after every cell both databases were counted directly (runs, finished runs, "
        f"params, tags, metric points) against what the clients sent. Shipyard at the end: {sy.counts}; "
        f"MLflow: {ml.counts}.",
    ]
    if args.auth:
        sec.notes.append(
            "Auth on: `shipyard server --auth`; every Shipyard request carries the token of a non-admin "
            "user (`sam`, role scientist, scopes read,write) and is authenticated and authorised by the "
            "server (MLflow's server runs without its auth app: it has no equivalent by default)."
        )
    else:
        sec.notes.append("Measured with auth off (`--no-auth`): the issue's target is with auth on.")
    sec.notes.append(
        "Shipyard's SDK holds a run's start back (`defer_run_start`, on by default) until its first "
        "background flush or its end: a run that ends within `flush_interval` (1 s) is one request "
        "(`POST /runs/record`), a longer one two (start, end). The first run of an experiment in each "
        "client starts at once (the warm-up runs here)."
    )
    return sec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="update bench/RESULTS.md (default: yes, except with --quick)",
    )
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    parser.add_argument("--clients", default="1,20", help="concurrent clients per cell (default 1,20)")
    parser.add_argument("--only", choices=("shipyard", "mlflow"), help="measure one system (no ratios)")
    parser.add_argument(
        "--token",
        default=os.environ.get("SHIPYARD_BENCH_TOKEN", ""),
        help="API token Shipyard's clients send (default $SHIPYARD_BENCH_TOKEN)",
    )
    parser.add_argument(
        "--auth",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run shipyard server with --auth and a scientist's token (default: on)",
    )
    parser.add_argument(
        "--mlflow-token",
        default=os.environ.get("MLFLOW_BENCH_TOKEN", ""),
        help="token MLflow's clients send (MLFLOW_TRACKING_TOKEN)",
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
    sz = QUICK if args.quick else FULL
    write = (not args.quick) if args.write is None else args.write
    home = fresh_dir("team", args.keep)
    os.chdir(home)  # spools and mlruns land here, not in the caller's directory
    import shipyard

    say(f"shipyard imported from {Path(shipyard.__file__).parent}")
    try:
        systems = [args.only] if args.only else ["shipyard", "mlflow"]
        figures = {s: measure(s, sz, args, fresh_dir(f"team-{s}", args.keep)) for s in systems}
        if len(figures) == 2:
            if figures["shipyard"].answer != figures["mlflow"].answer:
                raise AssertionError("Shipyard and MLflow returned different search answers")
            section = build_section(figures["shipyard"], figures["mlflow"], sz, args).finish()
            print_section(section)
            if write:
                update_results_file([section])
        else:
            only = figures[args.only]
            print(only)
    finally:
        if not args.keep:
            remove_temp_dirs()
    say("done" + (" — bench/RESULTS.md updated" if write and not args.only else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
