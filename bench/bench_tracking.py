"""Shipyard vs MLflow tracking benchmarks (issue deliverable 10), both on the same work in one process.

    .venv/bin/python bench/bench_tracking.py                 # everything, issue sizes (~8 min on 2 cores)
    .venv/bin/python bench/bench_tracking.py --only a,b      # some benchmarks
    .venv/bin/python bench/bench_tracking.py --quick         # smoke run at small sizes (RESULTS.md untouched)

Benchmarks: (a) in-process cost of one log_metric call, (b) durable ingest rate, (c) creating runs,
(d) filtered + ordered search, (e) bytes per metric point, (f) a search naming 50 keys on SQLite and
PostgreSQL (``SHIPYARD_BENCH_PG``, default the local server; skipped when unreachable; Shipyard only).
Each uses fresh temporary stores on local
disk: Shipyard on SQLite (WAL), MLflow with a SQLite backend through ``MlflowClient``. Tables are
printed and written to ``bench/RESULTS.md`` (one section per benchmark, replaced on each full run).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import random
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    Result,
    Section,
    fresh_dir,
    interleaved_medians,
    print_section,
    remove_temp_dirs,
    rerun_at_commit,
    sqlite_file_size,
    update_results_file,
)

# MLflow reads this at import time; synchronous logging is its default and what (b) and (c) compare.
os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"

import shipyard as sy  # noqa: E402
from shipyard.config import default_user, load_settings  # noqa: E402

SEARCH_FILTER = "metrics.auc > 0.9 and params.model = 'rf'"
SEARCH_ORDER = "metrics.auc desc"
SEARCH_LIMIT = 100


# -- sizes -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sizes:
    a_calls: int = 200_000  # Shipyard log_metric calls per repetition
    a_mlflow_sync: int = 2_000
    a_mlflow_async: int = 1_000
    b_keys: int = 10
    b_steps: int = 10_000  # keys x steps points
    c_runs: int = 5_000
    d_runs_large: int = 100_000
    e_runs: int = 100  # x e_keys x e_steps points for Shipyard
    e_keys: int = 10
    e_steps: int = 1_000
    e_mlflow_runs: int = 10  # MLflow gets the first runs only (100,000 points)
    repeats: int = 3
    f_runs: int = 1_000
    f_keys: int = 50


QUICK = Sizes(
    f_runs=100,
    a_calls=20_000,
    a_mlflow_sync=200,
    a_mlflow_async=200,
    b_steps=1_000,
    c_runs=500,
    d_runs_large=10_000,
    e_runs=10,
    e_mlflow_runs=2,
    repeats=3,
)


# -- progress ----------------------------------------------------------------------------------
_T0 = time.perf_counter()


def say(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# -- clients -----------------------------------------------------------------------------------
def shipyard_client(root: Path, **overrides: Any) -> sy.Client:
    """A client on a fresh SQLite store; ignores SHIPYARD_* env and shipyard.toml so runs are comparable."""
    settings = load_settings(
        config_file=root / "no-config.toml",
        env={},
        tracking_uri=f"sqlite:///{root / 'shipyard.db'}",
        artifact_uri=str(root / "artifacts"),
        system_metrics=False,
        **overrides,
    )
    return sy.Client(settings=settings)


def start_sy_run(client: sy.Client, experiment: str, **kwargs: Any) -> sy.ActiveRun:
    return client.start_run(experiment=experiment, system_metrics=False, log_environment=False, **kwargs)


_MLFLOW: ModuleType | None = None


def mlflow_module() -> ModuleType:
    """Import MLflow once (it takes seconds) and quiet its migration logging."""
    global _MLFLOW
    if _MLFLOW is None:
        say("importing mlflow")
        warnings.filterwarnings("ignore")
        import mlflow

        for name in ("mlflow", "alembic", "sqlalchemy"):
            logging.getLogger(name).setLevel(logging.ERROR)
        _MLFLOW = mlflow
    return _MLFLOW


def mlflow_client(root: Path) -> tuple[Any, str]:
    """An ``MlflowClient`` on a fresh SQLite DB (migrated now, untimed) and a new experiment in it."""
    mlflow = mlflow_module()
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    exp_id = client.create_experiment("bench", artifact_location=(root / "mlartifacts").as_uri())
    return client, exp_id


def now_ms() -> int:
    return int(time.time() * 1000)


# -- shared data -------------------------------------------------------------------------------
MODELS = ("rf", "gbm", "lr", "svm", "knn")


@dataclass(frozen=True)
class RunData:
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]


def make_run_data(n: int, seed: int = 7) -> list[RunData]:
    """``n`` runs of 5 params, 5 metrics and 2 tags; the same list feeds Shipyard and MLflow."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
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
        out.append(RunData(params, metrics, tags))
    return out


# -- (a) log_metric call cost ------------------------------------------------------------------
def bench_a(sz: Sizes, keep: bool) -> Section:
    sec = Section("a", "In-process cost of one log_metric call")
    n = sz.a_calls
    values = [2.0 / (1.0 + 0.001 * i) for i in range(n)]

    say(f"(a) Shipyard: {sz.repeats} x {n:,} run.log_metric calls")
    client = shipyard_client(fresh_dir("a-shipyard", keep))
    with start_sy_run(client, "warmup") as run:
        for i in range(min(n, 20_000)):
            run.log_metric("loss", values[i], step=i)
    per_call, flushes = [], []
    for _ in range(sz.repeats):
        run = start_sy_run(client, "a")
        start = time.perf_counter()
        for i in range(n):
            run.log_metric("loss", values[i], step=i)
        elapsed = time.perf_counter() - start
        start = time.perf_counter()
        run.flush()
        flushes.append(time.perf_counter() - start)
        run.end()
        per_call.append(elapsed / n * 1e6)
        stored = len(client.store.get_metric_history(run.id, "loss"))
        assert stored == n, f"Shipyard stored {stored} of {n} points"
    sy_us = sorted(per_call)[len(per_call) // 2]
    client.close()

    mlflow = mlflow_module()
    say(f"(a) MLflow: {sz.a_mlflow_sync:,} synchronous + {sz.a_mlflow_async:,} async mlflow.log_metric calls")
    ml_client, exp_id = mlflow_client(fresh_dir("a-mlflow", keep))
    with mlflow.start_run(experiment_id=exp_id) as ml_run:
        for i in range(20):  # warm-up: first-call costs (engine, caches, async thread pool)
            mlflow.log_metric("warmup", values[i], step=i, synchronous=True)
            mlflow.log_metric("warmup_async", values[i], step=i, synchronous=False)
        mlflow.flush_async_logging()
        start = time.perf_counter()
        for i in range(sz.a_mlflow_sync):
            mlflow.log_metric("loss", values[i], step=i, synchronous=True)
        ml_sync_us = (time.perf_counter() - start) / sz.a_mlflow_sync * 1e6
        start = time.perf_counter()
        for i in range(sz.a_mlflow_async):
            mlflow.log_metric("loss_async", values[i], step=i, synchronous=False)
        ml_async_us = (time.perf_counter() - start) / sz.a_mlflow_async * 1e6
        start = time.perf_counter()
        mlflow.flush_async_logging()
        ml_async_flush = time.perf_counter() - start
    for key, count in (("loss", sz.a_mlflow_sync), ("loss_async", sz.a_mlflow_async)):
        stored = len(ml_client.get_metric_history(ml_run.info.run_id, key))
        assert stored == count, f"MLflow stored {stored} of {count} {key} points"

    sec.results = [
        Result(
            "log_metric vs MLflow synchronous (its default)",
            "µs/call",
            sy_us,
            ml_sync_us,
            target="Shipyard ≤ 5 µs",
            met=sy_us <= 5.0,
        ),
        Result("log_metric vs MLflow async (synchronous=False)", "µs/call", sy_us, ml_async_us),
    ]
    flush_ms = sorted(flushes)[len(flushes) // 2] * 1e3
    sec.notes = [
        f'Shipyard: `run.log_metric("loss", v, step=i)` in a plain Python loop, {n:,} calls per repetition, '
        f"median of {sz.repeats} (each: {', '.join(f'{x:.2f}' for x in per_call)} µs); loop overhead "
        "included; "
        "default settings (flush_interval 1 s, buffer_size 100,000, so the buffer fills and backpressure "
        f"is part of the figure). The flush() after the loop is timed apart: median {flush_ms:.0f} ms "
        f"for the points still buffered. Every point was read back.",
        f'MLflow: `mlflow.log_metric("loss", v, step=i, synchronous=...)` in an active run; synchronous '
        f"{sz.a_mlflow_sync:,} calls (one SQLite transaction each), async {sz.a_mlflow_async:,} calls "
        "(calls only; "
        f"`mlflow.flush_async_logging()` then took {ml_async_flush:.1f} s = "
        f"{sz.a_mlflow_async / ml_async_flush:,.0f} points/s to become durable).",
    ]
    return sec


# -- (b) durable ingest ------------------------------------------------------------------------
def bench_b(sz: Sizes, keep: bool) -> Section:
    sec = Section("b", "Durable ingest rate of 100,000 metric points")
    keys = [f"metric_{k}" for k in range(sz.b_keys)]
    points = [(k, 1.0 / (1 + s) + 0.01 * j, s) for s in range(sz.b_steps) for j, k in enumerate(keys)]
    total = len(points)
    mlflow_module()
    from mlflow.entities import Metric

    say(
        f"(b) {total:,} points: Shipyard log_metric + flush() x {sz.repeats}, "
        "MLflow log_batch of 1,000, interleaved"
    )
    client = shipyard_client(fresh_dir("b-shipyard", keep))
    with start_sy_run(client, "warmup") as run:
        for key, value, step in points[:10_000]:
            run.log_metric(key, value, step=step)
    ml_client, exp_id = mlflow_client(fresh_dir("b-mlflow", keep))
    warm = ml_client.create_run(exp_id).info.run_id
    ml_client.log_batch(warm, metrics=[Metric("warm", 0.0, now_ms(), i) for i in range(1000)])
    ml_run_id = ml_client.create_run(exp_id).info.run_id
    ts = now_ms()
    batches = [[Metric(k, v, ts, s) for k, v, s in points[i : i + 1000]] for i in range(0, total, 1000)]
    # MLflow's 100 batches are split into as many segments as Shipyard repetitions and the two alternate,
    # so both see the same machine conditions (the box is shared).
    per = math.ceil(len(batches) / sz.repeats)
    segments = [batches[i : i + per] for i in range(0, len(batches), per)]

    import numpy as np

    columns = {
        k: (np.arange(sz.b_steps, dtype=np.int64), np.array([v for kk, v, _ in points if kk == k]))
        for k in keys
    }
    totals, log_times, bulk_totals, ml_s = [], [], [], 0.0
    for segment in segments:
        # Bulk API vs bulk API: one log_metric_series call per key (MLflow: log_batch below).
        run = start_sy_run(client, "b-series")
        start = time.perf_counter()
        for key, (steps, values) in columns.items():
            run.log_metric_series(key, values, steps=steps)
        run.flush()
        bulk_totals.append(time.perf_counter() - start)
        run.end()
        stored = sum(len(client.store.get_metric_history(run.id, k)) for k in keys)
        assert stored == total, f"Shipyard stored {stored} of {total} points (series)"

        run = start_sy_run(client, "b")
        start = time.perf_counter()
        for key, value, step in points:
            run.log_metric(key, value, step=step)
        logged = time.perf_counter()
        run.flush()
        done = time.perf_counter()
        totals.append(done - start)
        log_times.append(logged - start)
        run.end()
        stored = sum(len(client.store.get_metric_history(run.id, k)) for k in keys)
        assert stored == total, f"Shipyard stored {stored} of {total} points"

        start = time.perf_counter()
        for batch in segment:
            ml_client.log_batch(ml_run_id, metrics=batch, synchronous=True)
        ml_s += time.perf_counter() - start
    client.close()
    stored = sum(len(ml_client.get_metric_history(ml_run_id, k)) for k in keys)
    assert stored == total, f"MLflow stored {stored} of {total} points"
    sy_s = sorted(totals)[len(totals) // 2]
    sy_log = sorted(log_times)[len(log_times) // 2]

    bulk_s = sorted(bulk_totals)[len(bulk_totals) // 2]

    sy_rate, ml_rate, bulk_rate = total / sy_s, total / ml_s, total / bulk_s
    sec.results = [
        Result(
            f"{total:,} points until durable, bulk API (log_metric_series vs log_batch)", "s", bulk_s, ml_s
        ),
        Result(
            "durable ingest rate, bulk API vs bulk API",
            "points/s",
            bulk_rate,
            ml_rate,
            better="higher",
            target="≥ 100× MLflow",
            met=bulk_rate >= 100 * ml_rate,
        ),
        Result(f"{total:,} points until durable, one log_metric call per point", "s", sy_s, ml_s),
        Result(
            "durable ingest rate, per-point calls vs MLflow log_batch",
            "points/s",
            sy_rate,
            ml_rate,
            better="higher",
        ),
    ]
    sec.notes = [
        f"Same points for both: {sz.b_keys} keys × {sz.b_steps:,} steps. Shipyard bulk: one "
        "`run.log_metric_series(key, values, steps=steps)` call per key (numpy arrays built before the "
        f"clock starts), then `run.flush()`; median of {sz.repeats} "
        f"({', '.join(f'{x * 1e3:.0f}' for x in bulk_totals)} ms). "
        "Shipyard per point: one `run.log_metric` call "
        f"per point, then `run.flush()`, timed together; median of {sz.repeats} runs "
        f"({', '.join(f'{x * 1e3:.0f}' for x in totals)} ms; in the median one the calls took "
        f"{sy_log * 1e3:.0f} ms and the flush {(sy_s - sy_log) * 1e3:.0f} ms). MLflow: {len(batches)} "
        "`MlflowClient.log_batch` calls of 1,000 `Metric`s (its maximum) into one run, synchronous, Metric "
        "objects built before the clock starts, total time. The two alternate in segments. Every point was "
        "read back from both stores.",
        "Durability differs in kind: Shipyard runs SQLite in WAL mode with synchronous=NORMAL (a committed "
        "batch survives a process kill; the last commits can be lost on power loss), MLflow uses SQLite's "
        "default rollback journal with synchronous=FULL (fsync per commit).",
    ]
    return sec


# -- (c) creating runs -------------------------------------------------------------------------
@dataclass
class CState:
    """The stores (c) filled, which (d) searches."""

    sy_client: sy.Client
    ml_client: Any
    ml_exp_id: str
    data: list[RunData]
    sy_ms: float
    ml_ms: float


def _ml_run(client: Any, exp_id: str, d: RunData) -> None:
    from mlflow.entities import Metric, Param, RunTag

    run_id = client.create_run(exp_id).info.run_id
    ts = now_ms()
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, ts, 0) for k, v in d.metrics.items()],
        params=[Param(k, v) for k, v in d.params.items()],
        tags=[RunTag(k, v) for k, v in d.tags.items()],
        synchronous=True,
    )
    client.set_terminated(run_id)


def build_c(sz: Sizes, keep: bool, blocks: int = 10) -> CState:
    data = make_run_data(sz.c_runs)
    say(f"(c) creating {sz.c_runs:,} runs in each system, alternating in {blocks} blocks")
    client = shipyard_client(fresh_dir("cd-shipyard", keep))
    for d in data[:20]:  # warm-up, in another experiment
        with start_sy_run(client, "warmup", params=d.params, tags=d.tags) as run:
            run.log_metrics(d.metrics)
    ml_client, exp_id = mlflow_client(fresh_dir("cd-mlflow", keep))
    warm_exp = ml_client.create_experiment("warmup")
    for d in data[:20]:
        _ml_run(ml_client, warm_exp, d)

    sy_s = ml_s = 0.0
    size = math.ceil(len(data) / blocks)
    for first in range(0, len(data), size):
        block = data[first : first + size]
        start = time.perf_counter()
        for d in block:
            with start_sy_run(client, "c", params=d.params, tags=d.tags) as run:
                run.log_metrics(d.metrics)
        sy_s += time.perf_counter() - start
        start = time.perf_counter()
        for d in block:
            _ml_run(ml_client, exp_id, d)
        ml_s += time.perf_counter() - start
        say(f"(c)   {first + len(block):,} runs: Shipyard {sy_s:.1f} s, MLflow {ml_s:.1f} s so far")
    return CState(client, ml_client, exp_id, data, sy_s / len(data) * 1e3, ml_s / len(data) * 1e3)


def section_c(state: CState) -> Section:
    n = len(state.data)
    sy_rate, ml_rate = 1000 / state.sy_ms, 1000 / state.ml_ms
    return Section(
        "c",
        f"Creating {n:,} runs (5 params, 5 metrics, 2 tags each)",
        [
            Result("time per run", "ms", state.sy_ms, state.ml_ms),
            Result(
                "runs created",
                "runs/s",
                sy_rate,
                ml_rate,
                better="higher",
                target="≥ 10× MLflow",
                met=sy_rate >= 10 * ml_rate,
            ),
        ],
        [
            "Shipyard: `with client.start_run(experiment=..., params=5, tags=2, system_metrics=False, "
            "log_environment=False) as run: run.log_metrics(5 metrics)`; the run is ended (flushed, status "
            "finished) by the `with`. MLflow: `MlflowClient.create_run` + "
            "`log_batch(metrics, params, tags)` + `set_terminated`. Same params/metrics/tags for both; "
            "20 warm-up runs each in another experiment; "
            "one timed pass, the two systems alternating in blocks of a tenth so both see the same load.",
        ],
    )


# -- (f) many-key search ------------------------------------------------------------------------
def _f_store(uri: str, sz: Sizes) -> Any:
    from shipyard.entities import LogBatch, RunCreate
    from shipyard.store.sql import SqlStore

    store = SqlStore(uri)
    keys = range(sz.f_keys)
    for i in range(sz.f_runs):
        rid = uuid.uuid4().hex
        params = {f"p{k}": str((i + k) % 7) for k in keys}
        store.create_run(RunCreate(rid, "f", "", now_ms(), "bench", params=params))
        store.log_batch(rid, LogBatch(metrics=[(f"m{k}", random.random(), 0, now_ms()) for k in keys]))
    return store


def _pg_bench_uri() -> str | None:
    import sqlalchemy

    admin_url = os.environ.get("SHIPYARD_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    name = f"shipyard_bench_{uuid.uuid4().hex[:8]}"
    try:
        admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # no PostgreSQL here: SQLite only
        say(f"(f) PostgreSQL not reachable at {admin_url} ({type(exc).__name__}); SQLite only")
        return None
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def _drop_pg(uri: str) -> None:
    import sqlalchemy

    admin_url, name = uri.rsplit("/", 1)
    admin = sqlalchemy.create_engine(f"{admin_url}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def bench_f(sz: Sizes, keep: bool) -> Section:
    half = sz.f_keys // 2
    conditions = [f"params.p{k} != '9'" for k in range(half)] + [f"metrics.m{k} >= 0" for k in range(half)]
    flt_and, flt_or = " and ".join(conditions), " or ".join(conditions)
    order = ["metrics.m0 desc", "params.p1"]
    sec = Section("f", f"Search naming {sz.f_keys} keys ({sz.f_runs:,} runs, limit {SEARCH_LIMIT})")
    backends = {"SQLite": f"sqlite:///{fresh_dir('f', keep) / 'f.db'}"}
    pg = _pg_bench_uri()
    if pg:
        backends["PostgreSQL"] = pg
    for label, uri in backends.items():
        say(f"(f) filling {sz.f_runs:,} runs x {sz.f_keys} params and metrics on {label}")
        store = _f_store(uri, sz)
        try:
            ms = interleaved_medians(
                {
                    "and": lambda s=store: s.search_runs(None, flt_and, order, SEARCH_LIMIT),
                    "or": lambda s=store: s.search_runs(None, flt_or, order, SEARCH_LIMIT),
                },
                repeat=sz.repeats * 3,
                warmup=1,
            )
        finally:
            store.close()
            if uri == pg:
                _drop_pg(uri)
        for how, seconds in ms.items():
            sec.results.append(
                Result(
                    f"{label}: {sz.f_keys} conditions joined by '{how}', order by 2 keys",
                    "ms",
                    seconds * 1000,
                    target="< 250 ms",
                    met=seconds < 0.25,
                )
            )
    sec.notes.append(
        "A search takes at most 60 keys (filter and order_by together; SQLite joins at most 64 tables). "
        "SQLite compiles one join per key; PostgreSQL does up to 8, then reads one pivot per table "
        "(one join per key took ~0.5 s to plan 50 keys over 16 runs, 109 s at 300; 0.56 s / 1.7 s "
        "here with a fixed join order). Times include loading the 100 runs returned. MLflow is not "
        "compared here."
    )
    return sec


# -- (d) search --------------------------------------------------------------------------------
@contextlib.contextmanager
def one_transaction(store: Any) -> Iterator[None]:
    """Run the store's public methods inside one write transaction.

    ``SqlStore`` opens a transaction per call through its ``_write()`` and ``_read()`` context
    managers; here both hand out one connection, already in a write transaction, until the block
    ends and commits it. The store's own code still does all the work, so the rows are those the SDK
    writes; only the commits are grouped.
    """
    if not (callable(getattr(store, "_write", None)) and callable(getattr(store, "_read", None))):
        raise RuntimeError(f"{type(store).__name__} has no _write()/_read(); use --build-100k public")
    with store._write() as conn:
        store._write = store._read = lambda: contextlib.nullcontext(conn)
        try:
            yield
        finally:
            del store._write, store._read  # the class's context managers again


def _store_run(store: Any, experiment: str, d: RunData, user: str) -> None:
    """One run as the SDK makes it: create_run (params, tags), log_batch (metrics), update_run."""
    from shipyard.entities import LogBatch, RunCreate, RunStatus

    run_id = uuid.uuid4().hex
    ts = now_ms()
    store.create_run(
        RunCreate(run_id, experiment, f"run-{run_id[:8]}", ts, user, "bench", None, d.params, d.tags)
    )
    store.log_batch(run_id, LogBatch(metrics=[(k, v, 0, ts) for k, v in d.metrics.items()]))
    store.update_run(run_id, status=RunStatus.FINISHED, end_time=now_ms())


def build_runs_batched(store: Any, experiment: str, data: list[RunData], batch: int = 1000) -> None:
    """Insert finished runs with the public Store API, ``batch`` runs per transaction."""
    user = default_user()
    started = time.perf_counter()
    for first in range(0, len(data), batch):
        if first and first % (20 * batch) == 0:
            rate = first / (time.perf_counter() - started)
            say(f"(d)   {first:,} of {len(data):,} runs inserted ({rate:,.0f} runs/s)")
        with one_transaction(store):
            for d in data[first : first + batch]:
                _store_run(store, experiment, d, user)


def build_runs_public(store: Any, experiment: str, data: list[RunData]) -> None:
    """The same runs with the public Store API, one transaction per call (3 per run)."""
    user = default_user()
    for d in data:
        _store_run(store, experiment, d, user)


def check_batched_builder(keep: bool) -> None:
    """The batched builder must store what the SDK stores: compare a run made each way."""
    client = shipyard_client(fresh_dir("d-check", keep))
    d = make_run_data(1, seed=99)[0]
    with start_sy_run(client, "sdk", params=d.params, tags=d.tags) as run:
        run.log_metrics(d.metrics)
    build_runs_batched(client.store, "batched", [d])
    a = client.get_run(run.id)
    b = client.search_runs_page("batched")[0][0]
    for attr in ("params", "metrics", "tags", "status", "user", "parent_run_id", "deleted"):
        assert getattr(a, attr) == getattr(b, attr), f"batched builder differs from the SDK in {attr}"
    assert a.end_time is not None and b.end_time is not None
    for key in d.metrics:
        ha, hb = client.store.get_metric_history(a.id, key), client.store.get_metric_history(b.id, key)
        assert (ha.steps, ha.values) == (hb.steps, hb.values), f"metric history of {key} differs"
    client.close()


def bench_d(sz: Sizes, state: CState, keep: bool, builder: str) -> Section:
    mlflow = mlflow_module()
    n = len(state.data)
    client, store = state.sy_client, state.sy_client.store
    exp_id = client.get_experiment("c").id
    order = [SEARCH_ORDER]
    ml_order = ["metrics.auc DESC"]

    def sy_search() -> Any:
        return store.search_runs([exp_id], SEARCH_FILTER, order, SEARCH_LIMIT)

    def sy_search_df() -> Any:
        return client.search_runs("c", SEARCH_FILTER, order, SEARCH_LIMIT)

    def ml_search() -> Any:
        return state.ml_client.search_runs(
            [state.ml_exp_id], filter_string=SEARCH_FILTER, order_by=ml_order, max_results=SEARCH_LIMIT
        )

    def ml_search_df() -> Any:
        return mlflow.search_runs(
            experiment_ids=[state.ml_exp_id],
            filter_string=SEARCH_FILTER,
            order_by=ml_order,
            max_results=SEARCH_LIMIT,
        )

    say(f"(d) searching {n:,} runs, the four searches in turn")
    ms = interleaved_medians(
        {"sy": sy_search, "sy_df": sy_search_df, "ml": ml_search, "ml_df": ml_search_df}, repeat=15, warmup=2
    )
    sy_store_ms, sy_df_ms, ml_ms, ml_df_ms = (ms[k] * 1e3 for k in ("sy", "sy_df", "ml", "ml_df"))

    # Both stores hold the same data, so the answers must agree run for run.
    sy_seeds = [
        r.params["seed"] for r in store.search_runs([exp_id], SEARCH_FILTER, order, SEARCH_LIMIT).runs
    ]
    ml_seeds = [r.data.params["seed"] for r in ml_search()]
    assert sy_seeds == ml_seeds, "Shipyard and MLflow returned different runs"
    matches = sum(1 for d in state.data if d.metrics["auc"] > 0.9 and d.params["model"] == "rf")

    extra = sz.d_runs_large - n
    say(f"(d) adding {extra:,} runs to Shipyard ({builder} store path)")
    check_batched_builder(keep)
    more = make_run_data(sz.d_runs_large)[n:]
    start = time.perf_counter()
    (build_runs_batched if builder == "batched" else build_runs_public)(store, "c", more)
    build_s = time.perf_counter() - start
    say(f"(d) searching {sz.d_runs_large:,} runs")
    ms = interleaved_medians({"sy": sy_search, "sy_df": sy_search_df}, repeat=30, warmup=3)
    big_store_ms, big_df_ms = ms["sy"] * 1e3, ms["sy_df"] * 1e3
    big_page = store.search_runs([exp_id], SEARCH_FILTER, order, SEARCH_LIMIT)
    assert len(big_page.runs) == SEARCH_LIMIT
    aucs = [r.metrics["auc"] for r in big_page.runs]
    assert aucs == sorted(aucs, reverse=True) and all(a > 0.9 for a in aucs)
    big_matches = matches + sum(1 for d in more if d.metrics["auc"] > 0.9 and d.params["model"] == "rf")

    big = f"{sz.d_runs_large:,}"
    sec = Section("d", f"Search: `{SEARCH_FILTER}`, order by auc desc, limit {SEARCH_LIMIT}")
    sec.results = [
        Result(
            f"{n:,} runs: entities (store.search_runs vs MlflowClient.search_runs)",
            "ms",
            sy_store_ms,
            ml_ms,
            target="faster than MLflow",
            met=sy_store_ms < ml_ms,
        ),
        Result(
            f"{n:,} runs: DataFrame (client.search_runs vs mlflow.search_runs)",
            "ms",
            sy_df_ms,
            ml_df_ms,
            target="faster than MLflow",
            met=sy_df_ms < ml_df_ms,
        ),
        Result(
            f"{big} runs: entities (store.search_runs)",
            "ms",
            big_store_ms,
            target="≤ 50 ms",
            met=big_store_ms <= 50,
        ),
        Result(
            f"{big} runs: DataFrame (client.search_runs)",
            "ms",
            big_df_ms,
            target="≤ 50 ms",
            met=big_df_ms <= 50,
        ),
    ]
    how = (
        "the public Store API (`create_run` + `log_batch` + `update_run` per run) with 1,000 runs per "
        "transaction (the store's `_write()`/`_read()` share one open transaction; checked against an "
        "SDK-made run before timing)"
        if builder == "batched"
        else "the public Store API (`create_run` + `log_batch` + `update_run` per run, 3 transactions each)"
    )
    sec.notes = [
        f"The {n:,} runs are those of (c), identical in both stores; {matches} match the filter and both "
        f"systems returned the same {SEARCH_LIMIT} runs in the same order. Medians of 15 calls each, the "
        f"four searches taking turns (the two Shipyard ones, 30 calls each, at {sz.d_runs_large:,} runs), "
        "after 2–3 warm-up calls. Shipyard's DataFrame has one column per param/metric/tag, as "
        "`mlflow.search_runs`'s does.",
        f"{big} runs: the {n:,} SDK-made runs of (c) plus {extra:,} more in the same experiment, from the "
        f"same generator, inserted via {how}; built in {build_s:.0f} s. {big_matches:,} runs match the "
        "filter. MLflow was not run at this size.",
    ]
    return sec


# -- (e) bytes per point -----------------------------------------------------------------------
E_KEYS = (
    "train_loss",
    "val_loss",
    "train_acc",
    "val_acc",
    "lr",
    "grad_norm",
    "top5_acc",
    "perplexity",
    "kl_loss",
    "throughput",
)


def make_curves(run: int, keys: int, steps: int) -> tuple[list[int], list[list[float]]]:
    """Timestamps and one realistic training curve per key for run ``run`` (deterministic)."""
    import numpy as np

    rng = np.random.default_rng(1000 + run)
    step = np.arange(steps, dtype=np.float64)
    stamps = (1_760_000_000_000 + run * 10_000_000 + step * 250 + rng.integers(0, 40, steps)).astype(np.int64)
    curves = []
    for k in range(keys):
        name = E_KEYS[k % len(E_KEYS)]
        if name == "lr":  # a smooth cosine schedule
            values = 1e-3 * 0.5 * (1 + np.cos(math.pi * step / steps))
        elif name == "throughput":
            values = rng.normal(1250.0, 40.0, steps)
        elif "acc" in name:
            top = rng.uniform(0.7, 0.99)
            values = top - (top - 0.1) * np.exp(-step / rng.uniform(80, 300)) + rng.normal(0, 0.01, steps)
        else:  # noisy decaying loss
            floor, start = rng.uniform(0.05, 0.4), rng.uniform(1.5, 4.0)
            values = floor + (start - floor) * np.exp(-step / rng.uniform(80, 300))
            values = values * (1 + rng.normal(0, 0.03, steps))
        curves.append(values.tolist())
    return stamps.tolist(), curves


def bench_e(sz: Sizes, keep: bool) -> Section:
    per_run = sz.e_keys * sz.e_steps
    total = sz.e_runs * per_run
    ml_total = sz.e_mlflow_runs * per_run
    keys = [E_KEYS[k % len(E_KEYS)] for k in range(sz.e_keys)]

    say(f"(e) Shipyard: {total:,} points ({sz.e_runs} runs × {sz.e_keys} keys × {sz.e_steps:,} steps)")
    root = fresh_dir("e-shipyard", keep)
    client = shipyard_client(root)
    db = root / "shipyard.db"
    client.store.list_experiments()
    sy_empty = sqlite_file_size(db)
    sy_at_ml = 0
    start = time.perf_counter()
    for r in range(sz.e_runs):
        stamps, curves = make_curves(r, sz.e_keys, sz.e_steps)
        with start_sy_run(client, "e", params={"run": r}) as run:
            for s in range(sz.e_steps):
                ts = stamps[s]
                for k, key in enumerate(keys):
                    run.log_metric(key, curves[k][s], step=s, timestamp=ts)
        if r + 1 == sz.e_mlflow_runs:
            sy_at_ml = sqlite_file_size(db)
    sy_time = time.perf_counter() - start
    sy_full = sqlite_file_size(db)
    hist = client.store.get_metric_history(run.id, keys[0])
    assert hist.values == curves[0] and hist.timestamps == stamps, "Shipyard did not round-trip the curve"
    client.close()

    mlflow_module()
    from mlflow.entities import Metric

    say(f"(e) MLflow: {ml_total:,} points ({sz.e_mlflow_runs} runs) via log_batch")
    root = fresh_dir("e-mlflow", keep)
    ml_client, exp_id = mlflow_client(root)
    ml_db = root / "mlflow.db"
    ml_empty = sqlite_file_size(ml_db)
    start = time.perf_counter()
    for r in range(sz.e_mlflow_runs):
        stamps, curves = make_curves(r, sz.e_keys, sz.e_steps)
        run_id = ml_client.create_run(exp_id).info.run_id
        ml_client.log_param(run_id, "run", str(r))
        metrics = [
            Metric(key, curves[k][s], stamps[s], s) for s in range(sz.e_steps) for k, key in enumerate(keys)
        ]
        for i in range(0, len(metrics), 1000):
            ml_client.log_batch(run_id, metrics=metrics[i : i + 1000], synchronous=True)
        ml_client.set_terminated(run_id)
    ml_time = time.perf_counter() - start
    ml_size = sqlite_file_size(ml_db)

    sy_bpp_small = (sy_at_ml - sy_empty) / ml_total
    sy_bpp = (sy_full - sy_empty) / total
    ml_bpp = (ml_size - ml_empty) / ml_total
    ten_m = 10_000_000
    sec = Section("e", "Bytes per metric point (SQLite file size after wal_checkpoint(TRUNCATE))")
    sec.results = [
        Result(
            f"{ml_total:,} points ({sz.e_mlflow_runs} runs), net of the empty DB",
            "bytes/point",
            sy_bpp_small,
            ml_bpp,
        ),
        Result(f"{total:,} points ({sz.e_runs} runs), net of the empty DB", "bytes/point", sy_bpp),
        Result(
            "extrapolated DB size at 10 M points",
            "MB",
            (sy_empty + sy_bpp * ten_m) / 1e6,
            (ml_empty + ml_bpp * ten_m) / 1e6,
        ),
    ]
    sec.notes = [
        f"Points: per run {sz.e_keys} keys × {sz.e_steps:,} steps of realistic curves (noisy decaying "
        "losses, noisy rising accuracies, a cosine learning-rate schedule, noisy throughput; full float64 "
        "noise) with "
        "timestamps 250 ms apart plus 0–40 ms jitter. The same points (first runs) went to both systems.",
        f"Shipyard: `run.log_metric(key, v, step=s, timestamp=ts)` for every point, one run after another "
        f"({sz.e_runs} runs took {sy_time:.1f} s end to end); empty store {sy_empty / 1e3:,.0f} kB, after "
        f"{ml_total:,} points {sy_at_ml / 1e6:.2f} MB, after {total:,} points {sy_full / 1e6:.2f} MB. "
        "The 10 M figure is the empty store plus 10 M × the 1 M-point rate.",
        f"MLflow: `MlflowClient.log_batch` of 1,000 `Metric`s, {ml_total:,} points only (1 M takes minutes; "
        f"these took {ml_time:.1f} s); empty DB {ml_empty / 1e3:,.0f} kB, after {ml_size / 1e6:.2f} MB. "
        "The 10 M figure is the empty DB plus 10 M × its rate. Both sizes include indexes.",
    ]
    return sec


# -- driver ------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="abcdef", help="benchmarks to run, e.g. a,b or cd (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="update bench/RESULTS.md (default: yes, except with --quick)",
    )
    parser.add_argument(
        "--build-100k",
        choices=("batched", "public"),
        default="batched",
        help="how (d) inserts its large run set: batched store transactions (default) or the "
        "public Store API, one run at a time (several minutes slower)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores (paths are printed)")
    parser.add_argument(
        "--commit",
        metavar="REV",
        help="measure src/ as of this commit (e.g. HEAD), exported to a temp dir, instead of the working "
        "tree, which others may be editing",
    )
    args = parser.parse_args(argv)
    say(f"shipyard imported from {Path(sy.__file__).parent}")
    if args.commit:
        rest = list(sys.argv[1:] if argv is None else argv)
        i = next(i for i, a in enumerate(rest) if a.startswith("--commit"))
        del rest[i : i + (1 if "=" in rest[i] else 2)]
        return rerun_at_commit(args.commit, Path(__file__).resolve(), rest)

    only = {c for c in args.only.lower() if c in "abcdef"}
    if not only:
        parser.error(f"--only {args.only!r} names no benchmark (use letters a–f)")
    sizes = QUICK if args.quick else Sizes()
    write = (not args.quick) if args.write is None else args.write
    os.chdir(fresh_dir("cwd", args.keep))  # nothing may land in the caller's directory (mlruns, spools)

    sections: list[Section] = []

    def done(section: Section) -> None:
        section.finish()
        print_section(section)
        sections.append(section)
        if write:
            update_results_file([section])

    try:
        if "a" in only:
            done(bench_a(sizes, args.keep))
        if "b" in only:
            done(bench_b(sizes, args.keep))
        if only & {"c", "d"}:
            state = build_c(sizes, args.keep)
            if "c" in only:
                done(section_c(state))
            if "d" in only:
                done(bench_d(sizes, state, args.keep, args.build_100k))
            state.sy_client.close()
        if "e" in only:
            done(bench_e(sizes, args.keep))
        if "f" in only:
            done(bench_f(sizes, args.keep))
    finally:
        if not args.keep:
            remove_temp_dirs()
    say("done" + (" — bench/RESULTS.md updated" if write else " (RESULTS.md not written)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
