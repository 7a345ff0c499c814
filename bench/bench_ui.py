"""The web UI at scale: ``shipyard server``'s runs table and run page vs ``mlflow server``'s UI requests.

    .venv/bin/python bench/bench_ui.py                  # full run: 100,000 runs per store, writes RESULTS.md
    .venv/bin/python bench/bench_ui.py --quick          # smoke run: 2,000 runs (RESULTS.md untouched)
    .venv/bin/python bench/bench_ui.py --backends sqlite # one backend only (sqlite, postgresql)
    .venv/bin/python bench/bench_ui.py --commit HEAD    # measure src/ as committed, not the working tree

Issue 14, deliverable 3: the runs table's first page at 100,000 runs in ≤ 300 ms server time on SQLite and
on PostgreSQL, next to MLflow's UI search endpoint over the same runs; a run page with 10 series of 100,000
points in ≤ 500 ms; the runs page weighing ≤ 300 KB.

The data, built once per backend (the same runs for both systems):

- **Shipyard**: 100,000 ended runs in one experiment, each with 5 params, 5 metrics (one point each) and
  2 tags, recorded in process by ``SqlStore.log_run`` (a ``RunCreate`` and a ``LogBatch``: what the SDK
  sends for a short run), on a SQLite file (one loop) and on a temporary PostgreSQL database (threads).
  The run page's run (10 series) is logged through the SDK: ``run.log_metric_series`` per key.
- **MLflow**: its schema is created by opening its ``SqlAlchemyStore`` on the URI; one reference run goes
  through that store's API (``create_run`` + ``log_batch`` + ``update_run_info``), and the 100,000 runs
  are inserted straight into its tables (``runs``, ``params``, ``metrics``, ``latest_metrics``,
  ``tags``) with ``executemany`` (SQLite) and ``COPY`` (PostgreSQL), because its client would take hours
  (a few runs/s, see the team section). A bulk-inserted run must read back through the store exactly
  like the reference run (same fields, keys, tags). Both databases are then counted.

Then each server runs alone (``--workers 1``, loopback, Shipyard with auth off), one at a time, and one
client (a keep-alive HTTP connection, like a browser tab) times each request after warm-up requests:
the median of at least 20 round trips, interleaved across the requests of that server. Latency is the
measured round trip on loopback: server time plus the HTTP hop (the hop is well under 1 ms here).

- Shipyard: ``GET /experiments/{id}`` (the runs table's first page: 50 runs, newest first, HTML);
  the same page filtered ``metrics.m0 > 0.5 and params.model = 'rf'``, ordered ``metrics.m0 desc``;
  ``GET /runs/{id}`` for the run with 10 series. Page weight: the HTML plus every stylesheet and
  script it names (``<link href>``, ``<script src>``): everything the page loads.
- MLflow: ``POST /ajax-api/2.0/mlflow/runs/search`` with the body its UI sends for an experiment's first
  page (read from its built JS, see the notes), the same at 50 runs, and the same filter and order; as
  context for the run page, ``runs/get`` plus one ``metrics/get-history-bulk-interval`` per series
  (``max_results=320``, the chart's default in its JS), one after another.

Both systems must return the expected runs in the expected order (computed from the generated data).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import json
import os
import random
import re
import sqlite3
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_team import (  # noqa: E402  (also turns MLflow's telemetry off)
    check_counts,
    count_mlflow,
    count_shipyard,
    running,
    say,
    temp_database,
)
from common import (  # noqa: E402
    Result,
    Section,
    fresh_dir,
    interleaved_medians,
    median_time,
    print_section,
    remove_temp_dirs,
    rerun_at_commit,
    update_results_file,
)

EXPERIMENT = "ui-runs"
RUN_PAGE_EXPERIMENT = "ui-run-page"
REFERENCE_EXPERIMENT = "ui-reference"
USER = "bench"
SOURCE = "bench/bench_ui.py"
MODELS = ("rf", "gbm", "lr", "svm", "knn")
FILTER = "metrics.m0 > 0.5 and params.model = 'rf'"
ORDER = "metrics.m0 desc"
SHIPYARD_PAGE = 50  # the runs table's default page
MLFLOW_PAGE = 100  # MLflow's UI: maxResults defaults to 100 (see the notes)
SERIES = 10
CHART_POINTS = 320  # MLflow's sampled-history default in its JS (maxResults = 320)
BASE_MS = 1_767_225_600_000  # 2026-01-01 UTC: run i starts 30 s after run i - 1
PG_THREADS = 4
BACKENDS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


@dataclass(frozen=True)
class Sizes:
    runs: int
    points: int  # per series of the run page
    repeats: int  # timed requests per measure (median)
    warmup: int
    mlflow_run_page_repeats: int  # its 11 requests are slow at 100,000 points: fewer repeats
    mlflow_repeats: int  # its searches take seconds at 100,000 runs on SQLite: fewer repeats


FULL = Sizes(runs=100_000, points=100_000, repeats=25, warmup=3, mlflow_run_page_repeats=3, mlflow_repeats=3)
QUICK = Sizes(runs=2_000, points=5_000, repeats=20, warmup=2, mlflow_run_page_repeats=3, mlflow_repeats=20)


# -- the data -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunRow:
    id: str
    name: str
    start: int
    end: int
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]


def run_row(i: int) -> RunRow:
    """Run ``i``: 5 params, 5 metrics and 2 tags (deterministic: both systems get the same runs)."""
    rng = random.Random(1_000_003 * i + 11)
    run_id = uuid.UUID(int=rng.getrandbits(128), version=4).hex
    params = {
        "model": MODELS[rng.randrange(len(MODELS))],
        "n_estimators": str(rng.choice((100, 200, 400, 800))),
        "max_depth": str(rng.randint(2, 16)),
        "learning_rate": f"{rng.uniform(0.001, 0.3):.4f}",
        "seed": str(i),
    }
    m0 = rng.random()
    metrics = {
        "m0": m0,
        "m1": m0 - rng.uniform(0.0, 0.1),
        "m2": rng.uniform(0.0, 1.0),
        "m3": rng.uniform(0.1, 0.7),
        "m4": rng.uniform(0.4, 1.0),
    }
    tags = {"team": rng.choice(("fraud", "churn", "ranking")), "stage": rng.choice(("dev", "prod"))}
    start = BASE_MS + 30_000 * i
    end = start + rng.randint(5_000, 600_000)
    return RunRow(run_id, f"run-{i:06d}", start, end, params, metrics, tags)


def expected_pages(n: int) -> tuple[list[str], list[str]]:
    """Run ids of the first page (newest first) and of the filtered page (m0 desc), 50 each."""
    newest = [run_row(i).id for i in range(n - 1, max(n - 1 - SHIPYARD_PAGE, -1), -1)]
    rows = [run_row(i) for i in range(n)]
    hits = [r for r in rows if r.metrics["m0"] > 0.5 and r.params["model"] == "rf"]
    hits.sort(key=lambda r: -r.metrics["m0"])
    return newest, [r.id for r in hits[:SHIPYARD_PAGE]]


def series(k: int, points: int) -> tuple[Any, Any, Any]:
    """Series ``k`` of the run page: a noisy decreasing training curve, (steps, timestamps, values)."""
    import numpy as np

    rng = np.random.default_rng(k)
    steps = np.arange(points, dtype=np.int64)
    stamps = BASE_MS + 20 * steps
    values = (1.0 + 0.1 * k) / (1.0 + steps / 500.0) + rng.normal(0.0, 0.02, points)
    return steps, stamps, values


# -- Shipyard's stores --------------------------------------------------------------------------
@dataclass
class ShipyardData:
    experiment_id: int
    run_page_id: str
    build_s: float
    series_s: float


def build_shipyard(uri: str, n: int, points: int, home: Path, postgres: bool) -> ShipyardData:
    from shipyard.entities import LogBatch, RunCreate, RunStatus
    from shipyard.store.sql import SqlStore

    store = SqlStore(uri)
    experiment_id = store.create_experiment(EXPERIMENT).id

    def record(i: int) -> None:
        r = run_row(i)
        spec = RunCreate(
            run_id=r.id,
            experiment_name=EXPERIMENT,
            name=r.name,
            start_time=r.start,
            user=USER,
            source=SOURCE,
            params=r.params,
            tags=r.tags,
        )
        batch = LogBatch(metrics=[(k, v, 0, r.end) for k, v in r.metrics.items()])
        store.log_run(spec, status=RunStatus.FINISHED, end_time=r.end, batch=batch)

    start = time.perf_counter()
    record(0)  # caches the experiment's id in the store (PostgreSQL: one-statement records from here)
    if postgres:
        errors: list[BaseException] = []

        def worker(first: int) -> None:
            try:
                for i in range(first, n, PG_THREADS):
                    record(i)
            except BaseException as exc:  # re-raised below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(1 + t,)) for t in range(PG_THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
    else:
        for i in range(1, n):
            record(i)
    build_s = time.perf_counter() - start
    store.close()

    import shipyard as sy
    from shipyard.config import load_settings

    settings = load_settings(
        config_file=Path("no-config.toml"),
        env={},
        tracking_uri=uri,
        artifact_uri=str(home / "sy-artifacts"),
        system_metrics=False,
        user=USER,
    )
    client = sy.Client(settings=settings)
    ref = run_row(0)
    start = time.perf_counter()
    with client.start_run(
        RUN_PAGE_EXPERIMENT,
        name="ten-series",
        params=ref.params,
        tags=ref.tags,
        system_metrics=False,
        log_environment=False,
    ) as run:
        for k in range(SERIES):
            steps, stamps, values = series(k, points)
            run.log_metric_series(f"series_{k}", values, steps=steps, timestamps=stamps)
    series_s = time.perf_counter() - start
    history = client.store.get_metric_history(run.id, "series_3")
    want = series(3, points)
    if len(history) != points or history.values[-1] != float(want[2][-1]) or history.steps[-1] != points - 1:
        raise AssertionError(f"Shipyard's series_3 read back wrong: {len(history)} points")
    client.close()
    return ShipyardData(experiment_id, run.id, build_s, series_s)


# -- MLflow's stores ----------------------------------------------------------------------------
@dataclass
class MlflowData:
    experiment_id: str
    run_page_id: str
    build_s: float
    series_s: float


_ML_COLUMNS = {
    "runs": (
        "run_uuid",
        "name",
        "source_type",
        "source_name",
        "entry_point_name",
        "user_id",
        "status",
        "start_time",
        "end_time",
        "source_version",
        "lifecycle_stage",
        "artifact_uri",
        "experiment_id",
        "deleted_time",
    ),
    "params": ("key", "value", "run_uuid"),
    "tags": ("key", "value", "run_uuid"),
    "metrics": ("key", "value", "timestamp", "run_uuid", "step", "is_nan"),
    "latest_metrics": ("key", "value", "timestamp", "step", "is_nan", "run_uuid"),
}


def mlflow_rows(r: RunRow, experiment_id: int, artifact_location: str) -> dict[str, list[tuple[Any, ...]]]:
    """The rows MLflow's store writes for ``create_run(tags)`` + ``log_batch`` + ``update_run_info``
    (checked against a run made through its API before the numbers count)."""
    run = (
        r.id,
        r.name,
        "UNKNOWN",
        "",
        "",
        USER,
        "FINISHED",
        r.start,
        r.end,
        "",
        "active",
        f"{artifact_location}/{r.id}/artifacts",
        experiment_id,
        None,
    )
    tags = {**r.tags, "mlflow.runName": r.name}
    return {
        "runs": [run],
        "params": [(k, v, r.id) for k, v in r.params.items()],
        "tags": [(k, v, r.id) for k, v in tags.items()],
        "metrics": [(k, v, r.end, r.id, 0, False) for k, v in r.metrics.items()],
        "latest_metrics": [(k, v, r.end, 0, False, r.id) for k, v in r.metrics.items()],
    }


class BulkWriter:
    """Rows straight into MLflow's tables: ``executemany`` on SQLite, ``COPY`` on PostgreSQL."""

    def __init__(self, uri: str) -> None:
        self.postgres = uri.startswith("postgresql")
        if self.postgres:
            import psycopg
            from sqlalchemy.engine import make_url

            plain = make_url(uri).set(drivername="postgresql").render_as_string(hide_password=False)
            self.pg = psycopg.connect(plain)
        else:
            self.lite = sqlite3.connect(uri.removeprefix("sqlite:///"))

    def write(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        cols = _ML_COLUMNS[table]
        quoted = ", ".join(f'"{c}"' for c in cols)
        if self.postgres:
            with self.pg.cursor() as cur, cur.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in cols)
            lite_rows = [tuple(int(v) if isinstance(v, bool) else v for v in row) for row in rows]
            self.lite.executemany(f"INSERT INTO {table} ({quoted}) VALUES ({marks})", lite_rows)

    def commit_and_close(self) -> None:
        if self.postgres:
            self.pg.commit()
            self.pg.close()
        else:
            self.lite.commit()
            self.lite.close()


def build_mlflow(uri: str, n: int, points: int, home: Path) -> MlflowData:
    import warnings

    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    import numpy as np
    from mlflow.entities import Metric, Param, RunStatus, RunTag
    from mlflow.store.tracking import sqlalchemy_store

    open_store: Any = sqlalchemy_store.SqlAlchemyStore  # untyped
    store = open_store(uri, (home / "ml-artifacts").as_uri())  # creates and migrates its schema
    experiment_id = store.create_experiment(EXPERIMENT)
    location = store.get_experiment(experiment_id).artifact_location

    def through_api(exp: str, r: RunRow) -> str:
        tags = [RunTag(k, v) for k, v in r.tags.items()]
        run_id = store.create_run(exp, USER, r.start, tags, r.name).info.run_id
        metrics = [Metric(k, v, r.end, 0) for k, v in r.metrics.items()]
        store.log_batch(run_id, metrics, [Param(k, v) for k, v in r.params.items()], [])
        store.update_run_info(run_id, RunStatus.FINISHED, r.end, None)
        return str(run_id)

    reference = through_api(store.create_experiment(REFERENCE_EXPERIMENT), run_row(0))

    start = time.perf_counter()
    writer = BulkWriter(uri)
    batch: dict[str, list[tuple[Any, ...]]] = {t: [] for t in _ML_COLUMNS}
    for i in range(n):
        for table, rows in mlflow_rows(run_row(i), int(experiment_id), location).items():
            batch[table].extend(rows)
        if (i + 1) % 10_000 == 0 or i == n - 1:
            for table in _ML_COLUMNS:  # runs first: the others reference them
                writer.write(table, batch[table])
                batch[table] = []
    writer.commit_and_close()
    build_s = time.perf_counter() - start
    check_shape(store, reference, run_row(0).id)

    # The run page's run: made through the API, its 10 series inserted into ``metrics`` directly.
    page_exp = store.create_experiment(RUN_PAGE_EXPERIMENT)
    ref = run_row(0)
    start = time.perf_counter()
    page_id = through_api(page_exp, RunRow("", "ten-series", ref.start, ref.end, ref.params, {}, ref.tags))
    writer = BulkWriter(uri)
    latest = []
    for k in range(SERIES):
        steps, stamps, values = series(k, points)
        key = f"series_{k}"
        writer.write(
            "metrics",
            [
                (key, float(v), int(ts), page_id, int(s), False)
                for s, ts, v in zip(steps, stamps, values, strict=True)
            ],
        )
        last = int(np.argmax(steps))
        latest.append((key, float(values[last]), int(stamps[last]), int(steps[last]), False, page_id))
    writer.write("latest_metrics", latest)
    writer.commit_and_close()
    series_s = time.perf_counter() - start
    history = store.get_metric_history(page_id, "series_3")
    if len(history) != points:
        raise AssertionError(f"MLflow's series_3 has {len(history)} points, expected {points}")
    store.engine.dispose()
    return MlflowData(str(experiment_id), page_id, build_s, series_s)


def check_shape(store: Any, reference_id: str, bulk_id: str) -> None:
    """A bulk-inserted run must read back through MLflow's store like the one made through its API."""

    def shape(run_id: str) -> dict[str, Any]:
        run = store.get_run(run_id)
        info = run.info
        return {
            "run_name": info.run_name,
            "status": info.status,
            "lifecycle_stage": info.lifecycle_stage,
            "user_id": info.user_id,
            "start_time": info.start_time,
            "end_time": info.end_time,
            "artifact_uri": info.artifact_uri.replace(run_id, "<id>").rsplit("/", 3)[-2:],
            "params": run.data.params,
            "metrics": run.data.metrics,
            "tags": run.data.tags,
            "history": [
                (m.key, m.value, m.step, m.timestamp) for m in store.get_metric_history(run_id, "m0")
            ],
        }

    want, got = shape(reference_id), shape(bulk_id)
    if want != got:
        diff = {k: (want[k], got[k]) for k in want if want[k] != got[k]}
        raise AssertionError(f"a bulk-inserted MLflow run differs from one made through its API: {diff}")


def vacuum_analyze(uri: str) -> None:
    """PostgreSQL: ``VACUUM ANALYZE`` (what autovacuum gives a database that has settled)."""
    import psycopg
    from sqlalchemy.engine import make_url

    plain = make_url(uri).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


# -- HTTP ---------------------------------------------------------------------------------------
class Http:
    """One keep-alive connection, like a browser tab's."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=900)

    def call(self, method: str, path: str, body: Any = None, accept: str = "text/html") -> bytes:
        headers = {"Accept": accept, "Accept-Encoding": "identity"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=data, headers=headers)
            answer = self.conn.getresponse()
            payload = answer.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            raise
        if answer.status != 200:
            raise RuntimeError(f"{method} {path} answered {answer.status}: {payload[:500]!r}")
        return payload

    def get(self, path: str) -> bytes:
        return self.call("GET", path)

    def post(self, path: str, body: Any) -> bytes:
        return self.call("POST", path, body, accept="application/json")

    def close(self) -> None:
        self.conn.close()


@contextlib.contextmanager
def connected(url: str) -> Iterator[Http]:
    client = Http(url)
    try:
        yield client
    finally:
        client.close()


def page_ids(html: bytes) -> list[str]:
    return list(dict.fromkeys(re.findall(r'href="/runs/([0-9a-f]{32})"', html.decode())))


def search_ids(answer: bytes) -> list[str]:
    return [r["info"]["run_id"] for r in json.loads(answer).get("runs", [])]


def check_ids(what: str, got: list[str], want: list[str]) -> None:
    if got != want:
        first = next((k for k, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), None)
        raise AssertionError(
            f"{what}: {len(got)} runs, expected {len(want)}; first difference at position {first}"
        )


# -- measuring ----------------------------------------------------------------------------------
@dataclass
class Figures:
    """Milliseconds and bytes of one system on one backend."""

    page_ms: float = 0.0
    page50_ms: float = 0.0  # MLflow only: its search at 50 runs
    filter_ms: float = 0.0
    run_ms: float = 0.0
    page_bytes: int = 0  # HTML + CSS (Shipyard); index + main JS + CSS + search JSON (MLflow)
    run_bytes: int = 0
    page_gzip: int = 0
    detail: dict[str, Any] = field(default_factory=dict)


def page_assets(c: Http, html: bytes) -> dict[str, bytes]:
    """Every stylesheet and script a page loads from this site (``<link href>``, ``<script src>``)."""
    paths = re.findall(rb'<link[^>]+href="(/[^"]+)"|<script[^>]+src="(/[^"]+)"', html)
    return {p.decode(): c.get(p.decode()) for pair in paths for p in pair if p}


def measure_shipyard(
    url: str, data: ShipyardData, sz: Sizes, expected: tuple[list[str], list[str]]
) -> Figures:
    q = urllib.parse.urlencode({"filter": FILTER, "order": ORDER})
    first, filtered = f"/experiments/{data.experiment_id}", f"/experiments/{data.experiment_id}?{q}"
    run_page = f"/runs/{data.run_page_id}"
    fig = Figures()
    with connected(url) as c:
        html = c.get(first)
        assets = page_assets(c, html)
        check_ids("Shipyard's first page", page_ids(html), expected[0])
        check_ids("Shipyard's filtered page", page_ids(c.get(filtered)), expected[1])
        run_html = c.get(run_page)
        charts = run_html.count(b'class="chart"')
        if charts != SERIES or run_html.count(f"{sz.points} points".encode()) != SERIES:
            raise AssertionError(
                f"Shipyard's run page drew {charts} charts, expected {SERIES} of {sz.points}"
            )
        loaded = sum(len(a) for a in assets.values())
        fig.page_bytes = len(html) + loaded
        fig.page_gzip = len(gzip.compress(html)) + sum(len(gzip.compress(a)) for a in assets.values())
        fig.run_bytes = len(run_html) + loaded
        fig.detail = {"html": len(html), **{path.rsplit("/", 1)[-1]: len(a) for path, a in assets.items()}}
        times = interleaved_medians(
            {
                "page": lambda: c.get(first),
                "filter": lambda: c.get(filtered),
                "run": lambda: c.get(run_page),
            },
            sz.repeats,
            sz.warmup,
        )
    fig.page_ms, fig.filter_ms, fig.run_ms = (times[k] * 1e3 for k in ("page", "filter", "run"))
    return fig


def mlflow_search_body(experiment_id: str, limit: int, filtered: bool) -> dict[str, Any]:
    """What MLflow's UI posts for an experiment's runs (default view: active runs, newest first)."""
    body: dict[str, Any] = {
        "experiment_ids": [experiment_id],
        "run_view_type": "ACTIVE_ONLY",
        "max_results": limit,
        "order_by": ["metrics.m0 DESC" if filtered else "attributes.start_time DESC"],
    }
    if filtered:
        body["filter"] = FILTER
    return body


def mlflow_ui_bytes(c: Http) -> int:
    """Bytes of MLflow's UI shell: ``/`` plus the main script and stylesheet it names (at least what a
    first visit loads; its lazily loaded chunks are not counted)."""
    index = c.get("/")
    total = len(index)
    for ref in re.findall(rb'(?:src|href)="([^"]*static/(?:js|css)/main\.[^"]+)"', index):
        path = ref.decode()
        total += len(c.get(path if path.startswith("/") else "/" + path))
    return total


SEARCH = "/ajax-api/2.0/mlflow/runs/search"


def measure_mlflow(url: str, data: MlflowData, sz: Sizes, expected: tuple[list[str], list[str]]) -> Figures:
    page = mlflow_search_body(data.experiment_id, MLFLOW_PAGE, False)
    page50 = mlflow_search_body(data.experiment_id, SHIPYARD_PAGE, False)
    filtered = mlflow_search_body(data.experiment_id, MLFLOW_PAGE, True)
    history = [
        "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?"
        + urllib.parse.urlencode(
            {"run_ids": data.run_page_id, "metric_key": f"series_{k}", "max_results": 320}
        )
        for k in range(SERIES)
    ]
    fig = Figures()
    with connected(url) as c:
        answer = c.post(SEARCH, page)
        check_ids("MLflow's first page", search_ids(answer)[:SHIPYARD_PAGE], expected[0])
        check_ids(
            "MLflow's filtered search", search_ids(c.post(SEARCH, filtered))[:SHIPYARD_PAGE], expected[1]
        )
        fig.page_bytes = mlflow_ui_bytes(c) + len(answer)
        fig.detail = {"search_json": len(answer), "runs": len(search_ids(answer))}

        def run_page() -> None:
            c.call(
                "GET", f"/ajax-api/2.0/mlflow/runs/get?run_id={data.run_page_id}", accept="application/json"
            )
            for path in history:
                got = json.loads(c.call("GET", path, accept="application/json")).get("metrics", [])
                if not got:
                    raise AssertionError(f"MLflow returned no points for {path}")

        times = interleaved_medians(
            {
                "page": lambda: c.post(SEARCH, page),
                "page50": lambda: c.post(SEARCH, page50),
                "filter": lambda: c.post(SEARCH, filtered),
            },
            sz.mlflow_repeats,
            1,
        )
        run_s, _ = median_time(run_page, sz.mlflow_run_page_repeats, warmup=1)
    fig.page_ms, fig.page50_ms, fig.filter_ms = (times[k] * 1e3 for k in ("page", "page50", "filter"))
    fig.run_ms = run_s * 1e3
    return fig


@dataclass
class BackendFigures:
    backend: str
    shipyard: Figures
    mlflow: Figures
    sy_data: ShipyardData
    ml_data: MlflowData
    counts: str


def measure_backend(backend: str, sz: Sizes, args: argparse.Namespace) -> BackendFigures:
    label = BACKENDS[backend]
    home = fresh_dir(f"ui-{backend}", args.keep)
    expected = expected_pages(sz.runs)
    want = {
        "runs": sz.runs,
        "finished": sz.runs,
        "params": 5 * sz.runs,
        "tags": 2 * sz.runs,
        "points": 5 * sz.runs,
    }
    with contextlib.ExitStack() as stack:
        if backend == "postgresql":
            sy_uri = stack.enter_context(temp_database("ui_sy"))
            ml_uri = stack.enter_context(temp_database("ui_ml"))
        else:
            sy_uri, ml_uri = f"sqlite:///{home / 'shipyard.db'}", f"sqlite:///{home / 'mlflow.db'}"
        say(
            f"{label}: Shipyard, {sz.runs:,} runs through SqlStore.log_run, "
            f"then {SERIES} × {sz.points:,} points"
        )
        sy_data = build_shipyard(sy_uri, sz.runs, sz.points, home, backend == "postgresql")
        say(f"{label}: Shipyard built in {sy_data.build_s:.1f} s (+ {sy_data.series_s:.1f} s for the series)")
        say(f"{label}: MLflow, {sz.runs:,} runs inserted into its tables")
        ml_data = build_mlflow(ml_uri, sz.runs, sz.points, home)
        say(f"{label}: MLflow built in {ml_data.build_s:.1f} s (+ {ml_data.series_s:.1f} s for the series)")
        sy_counts, ml_counts = count_shipyard(sy_uri, EXPERIMENT), count_mlflow(ml_uri, EXPERIMENT)
        check_counts("shipyard", sy_counts, want)
        check_counts("mlflow", ml_counts, want)
        if backend == "postgresql":
            for uri in (sy_uri, ml_uri):
                vacuum_analyze(uri)
        with running("shipyard", sy_uri, 1, home, ["--no-auth"]) as server:
            say(f"{label}: shipyard server up at {server.url}; timing")
            sy = measure_shipyard(server.url, sy_data, sz, expected)
            say(f"{label}: shipyard timed; stopping its server")
        with running("mlflow", ml_uri, 1, home, []) as server:
            say(f"{label}: mlflow server up at {server.url}; timing")
            ml = measure_mlflow(server.url, ml_data, sz, expected)
            say(f"{label}: mlflow timed; stopping its server")
    counts = ", ".join(f"{v:,} {k}" for k, v in sy_counts.items())
    return BackendFigures(label, sy, ml, sy_data, ml_data, counts)


# -- the table ----------------------------------------------------------------------------------
def build_section(results: list[BackendFigures], sz: Sizes, wall_s: float) -> Section:
    sec = Section("ui", f"Web UI at {sz.runs:,} runs: shipyard server pages vs mlflow server's UI requests")
    for b in results:
        sy, ml = b.shipyard, b.mlflow
        sec.results += [
            Result(
                f"runs table, first page, {b.backend}: Shipyard page ({SHIPYARD_PAGE} runs, HTML) vs MLflow "
                f"UI's runs/search ({MLFLOW_PAGE} runs, JSON)",
                "ms",
                sy.page_ms,
                ml.page_ms,
                target="≤ 300 ms",
                met=sy.page_ms <= 300,
            ),
            Result(
                f"runs table, first page, {b.backend}: {SHIPYARD_PAGE} runs each",
                "ms",
                sy.page_ms,
                ml.page50_ms,
            ),
            Result(
                f"runs table filtered and sorted, {b.backend}: `{FILTER}`, `{ORDER}`",
                "ms",
                sy.filter_ms,
                ml.filter_ms,
                target="≤ 300 ms",
                met=sy.filter_ms <= 300,
            ),
            Result(
                f"run page, {SERIES} series × {sz.points:,} points, {b.backend} (MLflow: runs/get + "
                f"{SERIES} × get-history-bulk-interval, context)",
                "ms",
                sy.run_ms,
                ml.run_ms,
                target="≤ 500 ms",
                met=sy.run_ms <= 500,
            ),
        ]
    heaviest = max(results, key=lambda b: b.shipyard.page_bytes)
    sy, ml = heaviest.shipyard, heaviest.mlflow
    sec.results.append(
        Result(
            "page weight, runs table first page (Shipyard: HTML + CSS, all it loads; MLflow: UI shell "
            "+ main JS + CSS + the search JSON, at least)",
            "KB",
            sy.page_bytes / 1000,
            ml.page_bytes / 1000,
            target="≤ 300 KB",
            met=sy.page_bytes <= 300_000,
        )
    )
    sec.results.append(
        Result(
            f"page weight, run page with {SERIES} charts (HTML + CSS)",
            "KB",
            max(b.shipyard.run_bytes for b in results) / 1000,
        )
    )
    lines = []
    for b in results:
        pg = b.backend == "PostgreSQL"
        lines.append(
            f"{b.backend}: Shipyard {b.sy_data.build_s:.0f} s for the {sz.runs:,} runs "
            f"({sz.runs / b.sy_data.build_s:,.0f} runs/s, "
            + (f"{PG_THREADS} threads" if pg else "one loop")
            + f"), {b.sy_data.series_s:.1f} s for the run page's {SERIES} × {sz.points:,} points through the "
            f"SDK; MLflow {b.ml_data.build_s:.1f} s of "
            + ("COPY" if pg else "executemany")
            + f" for the runs, {b.ml_data.series_s:.1f} s for the series"
        )
    sec.notes = [
        f"Latency is the median of {sz.repeats} round trips on loopback after {sz.warmup} warm-up requests "
        f"each (MLflow's searches: {sz.mlflow_repeats} after 1, since each takes seconds at this size), "
        "one client on a keep-alive connection, the requests of one server interleaved (server time "
        "plus the HTTP hop, which is well under 1 ms here). Page weight: the page's HTML plus every "
        "stylesheet and script it loads from the server. Each server alone, `--workers 1`, loopback, "
        "default log level; Shipyard `--no-auth`. Both systems on the same PostgreSQL server (one temporary "
        "database each, `VACUUM ANALYZE` after loading, as autovacuum would) and on SQLite files.",
        f"The data: {sz.runs:,} ended runs in one experiment, each with 5 params, 5 metrics (one point) and "
        "2 tags, identical in both systems (same ids, names, times, values). Shipyard's went in through "
        "`SqlStore.log_run` (a `RunCreate` and a `LogBatch`, what the SDK sends for a short run). MLflow's "
        "were inserted straight into its tables (`runs`, `params`, `tags` with its `mlflow.runName`, "
        "`metrics`, `latest_metrics`) because its client would take hours at a few runs/s; a bulk-inserted "
        "run was checked to read back through `SqlAlchemyStore.get_run` exactly like one made by its API. "
        "Both databases were counted (runs, finished, params, tags, metric points) against the data: "
        + "; ".join(f"{b.backend} {b.counts}" for b in results)
        + ". "
        + "Build times: "
        + "; ".join(lines)
        + ".",
        f"MLflow's request is what its UI (mlflow {_mlflow_version()}, built JS) sends for an experiment's "
        "runs: `POST /ajax-api/2.0/mlflow/runs/search` with `experiment_ids`, `run_view_type: ACTIVE_ONLY`, "
        f"`max_results: {MLFLOW_PAGE}` (its `maxResults` default) and "
        "`order_by` `attributes.start_time DESC` (its default sort); the filtered one adds the same "
        "filter and `metrics.m0 DESC`. That is the data "
        "request only: the browser also loads the UI itself and sends other requests (experiment, "
        "parents of the page's runs when any). The 50-run row shows MLflow at Shipyard's page size.",
        "Checked: both systems' first pages hold the newest 50 runs, newest first, and both filtered pages "
        "the 50 runs of highest m0 among those matching, in that order (MLflow's first 50 of its 100), as "
        f"computed from the data; the run page draws {SERIES} charts, each captioned with its {sz.points:,} "
        "points.",
        f"Run page: one run with {SERIES} series of {sz.points:,} points (a noisy training curve each), "
        f"logged by `run.log_metric_series` per key. Shipyard's page reads the {SERIES} series and draws "
        "each from at most 500 LTTB-chosen points. MLflow's figure is context, not a peer page: "
        f"`runs/get` plus one `metrics/get-history-bulk-interval?max_results={CHART_POINTS}` per series "
        f"(the REST form of the sampled history its charts request), one after another, median of "
        f"{sz.mlflow_run_page_repeats}; its series rows were inserted directly too.",
        "Page weight in KB of 1,000 bytes, uncompressed: Shipyard's runs page is "
        f"{sy.detail['html']:,} bytes of HTML + "
        + " + ".join(f"{v:,} of {k}" for k, v in sy.detail.items() if k != "html")
        + f" ({sy.page_gzip / 1000:.1f} KB gzipped): everything the page loads; MLflow's is "
        f"its index, main JS and CSS bundles (cached after a first visit) + {ml.detail['search_json']:,} "
        "bytes of search JSON, its lazily loaded chunks not counted.",
        f"Whole benchmark: {wall_s / 60:.1f} min.",
    ]
    return sec


def _mlflow_version() -> str:
    from importlib import metadata

    return metadata.version("mlflow")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2,000 runs and 10 × 5,000 points (smoke run)")
    parser.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="update bench/RESULTS.md (default: yes, except with --quick)",
    )
    parser.add_argument("--backends", default="sqlite,postgresql", help="sqlite, postgresql or both")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    parser.add_argument("--commit", metavar="REV", help="measure src/ as of this commit, exported")
    args = parser.parse_args(argv)
    if args.commit:
        rest = list(sys.argv[1:] if argv is None else argv)
        i = next(i for i, a in enumerate(rest) if a.startswith("--commit"))
        del rest[i : i + (1 if "=" in rest[i] else 2)]
        return rerun_at_commit(args.commit, Path(__file__).resolve(), rest)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or any(b not in BACKENDS for b in backends):
        parser.error(f"--backends takes sqlite and/or postgresql, got {args.backends!r}")
    sz = QUICK if args.quick else FULL
    write = (not args.quick) if args.write is None else args.write
    start = time.perf_counter()
    home = fresh_dir("ui", args.keep)
    os.chdir(home)  # anything either system drops in the working directory lands here
    import shipyard

    say(f"shipyard imported from {Path(shipyard.__file__).parent}")
    try:
        results = [measure_backend(b, sz, args) for b in backends]
        section = build_section(results, sz, time.perf_counter() - start).finish()
        print_section(section)
        if write:
            update_results_file([section])
    finally:
        if not args.keep:
            remove_temp_dirs()
    say("done" + (" — bench/RESULTS.md updated" if write else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
