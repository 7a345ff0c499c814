"""Where Shipyard's time goes in the tracking benchmarks whose targets are tight: a wall-clock breakdown.

    .venv/bin/python bench/profile_tracking.py runs     # (c): one run = start_run + log_metrics + end
    .venv/bin/python bench/profile_tracking.py ingest   # (a)/(b): log_metric calls, then flush()
    .venv/bin/python bench/profile_tracking.py build    # (d): inserting runs in batched store transactions
    .venv/bin/python bench/profile_tracking.py all --cprofile   # also print the top functions (cProfile)
    .venv/bin/python bench/profile_tracking.py all --commit HEAD  # the committed code, not the working tree

Timings come from perf_counter wrappers installed on one store / logger instance for the duration of the
script (Shipyard's source is not touched) and from SQLAlchemy cursor events, so the shares are of real
wall time, not of a profiler's inflated one. ``--cprofile`` adds the usual cProfile view on top.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import event  # noqa: E402

import shipyard as sy  # noqa: E402
import shipyard.tracking.logger as logger_mod  # noqa: E402
from bench_tracking import (  # noqa: E402
    build_runs_batched,
    make_run_data,
    shipyard_client,
    start_sy_run,
)
from common import fresh_dir, load_average, remove_temp_dirs, rerun_at_commit  # noqa: E402


class Clock:
    """Accumulates inclusive wall time and call counts per label."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, owner: Any, name: str, label: str) -> None:
        """Time calls of ``owner.name``; a name missing from this version of the code is skipped."""
        original = getattr(owner, name, None)
        if original is None:
            return

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.total[label] += time.perf_counter() - start
                self.calls[label] += 1

        setattr(owner, name, timed)

    @contextmanager
    def span(self, label: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.total[label] += time.perf_counter() - start
            self.calls[label] += 1

    def reset(self) -> None:
        self.total.clear()
        self.calls.clear()


def watch_sql(engine: Any, clock: Clock) -> None:
    """Time each DBAPI cursor call and each COMMIT (the part SQLite itself does)."""
    starts: list[float] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _before(*_: Any) -> None:
        starts.append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _after(*_: Any) -> None:
        clock.total["sqlite: execute"] += time.perf_counter() - starts.pop()
        clock.calls["sqlite: execute"] += 1

    clock.wrap(engine.dialect, "do_commit", "sqlite: commit")


def print_rows(title: str, rows: list[tuple[str, float, float]], total: float, per: str) -> None:
    print(f"\n{title}")
    print(f"  {'':58s} {'ms/' + per:>10s} {'share':>7s} {'calls/' + per:>10s}")
    for label, seconds, calls in rows:
        if not seconds and not calls:
            continue  # not present in this version of the code
        print(f"  {label:58s} {seconds * 1e3:10.3f} {seconds / total * 100:6.1f}% {calls:10.1f}")


def cprofile(fn: Callable[[], object], top: int) -> None:
    profile = cProfile.Profile()
    profile.enable()
    fn()
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(top)
    print("\n".join(line[:170] for line in out.getvalue().splitlines()[4:]))


# -- (c) runs ----------------------------------------------------------------------------------
def profile_runs(n: int, use_cprofile: bool) -> None:
    data = make_run_data(n * 2 + 20)
    client = shipyard_client(fresh_dir("prof-runs"))
    store = client.store
    clock = Clock()
    for name in ("create_run", "get_run", "log_batch", "update_run", "_compact"):
        clock.wrap(store, name, f"store.{name}")
    for name in ("__init__", "close", "flush"):
        clock.wrap(logger_mod.RunLogger, name, f"RunLogger.{name}")
    clock.wrap(threading.Thread, "start", "Thread.start")
    clock.wrap(threading.Thread, "join", "Thread.join")
    watch_sql(store._engine, clock)

    def one(d: Any) -> None:
        with clock.span("run total"):
            with clock.span("start_run"):
                run = start_sy_run(client, "c", params=d.params, tags=d.tags)
            with clock.span("log_metrics"):
                run.log_metrics(d.metrics)
            with clock.span("end (__exit__)"):
                run.__exit__(None, None, None)

    for d in data[:20]:
        one(d)
    clock.reset()
    for d in data[20 : 20 + n]:
        one(d)
    t, c = clock.total, clock.calls
    total = t["run total"]
    rows = [
        ("start_run", t["start_run"], c["start_run"]),
        (
            "  store.create_run: one write txn (minus any get_run inside)",
            t["store.create_run"] - t["store.get_run"],
            c["store.create_run"],
        ),
        (
            "  store.get_run: SELECTs re-reading the run just written",
            t["store.get_run"],
            c["store.get_run"],
        ),
        (
            "  RunLogger.__init__ (starts the flusher thread)",
            t["RunLogger.__init__"],
            c["RunLogger.__init__"],
        ),
        ("    of which Thread.start", t["Thread.start"], c["Thread.start"]),
        (
            "  rest of start_run (uuid, RunCreate, checks, ActiveRun)",
            t["start_run"] - t["store.create_run"] - t["RunLogger.__init__"],
            0.0,
        ),
        ("log_metrics (buffer append)", t["log_metrics"], c["log_metrics"]),
        ("end (__exit__)", t["end (__exit__)"], c["end (__exit__)"]),
        ("  RunLogger.close: final flush + stop thread", t["RunLogger.close"], c["RunLogger.close"]),
        (
            "    store.log_batch (write txn: require_run, chunks, latest)",
            t["store.log_batch"],
            c["store.log_batch"],
        ),
        ("    Thread.join (wake the flusher, wait for it to exit)", t["Thread.join"], c["Thread.join"]),
        (
            "  store.update_run (write txn: require_run, update, _compact)",
            t["store.update_run"],
            c["store.update_run"],
        ),
        ("    of which _compact (GROUP BY query; no-op here)", t["store._compact"], c["store._compact"]),
        ("SQL statements sent to SQLite (incl. BEGIN IMMEDIATE)", 0.0, c["sqlite: execute"]),
        ("time inside sqlite3 execute/executemany", t["sqlite: execute"], c["sqlite: execute"]),
        ("time inside sqlite3 COMMIT", t["sqlite: commit"], c["sqlite: commit"]),
        (
            "=> Python above the driver (SQLAlchemy + Shipyard + threads)",
            total - t["sqlite: execute"] - t["sqlite: commit"],
            0.0,
        ),
    ]
    rows = [(label, s / n, k / n) for label, s, k in rows]
    print_rows(f"(c) one run, mean over {n:,} runs: {total / n * 1e3:.2f} ms/run", rows, total / n, "run")
    if use_cprofile:
        print("\ncProfile, tottime (the same work again):")
        cprofile(lambda: [one(d) for d in data[20 + n :]], 25)
    client.close()


# -- (a)/(b) ingest ----------------------------------------------------------------------------
def _per_call_ns(method: Callable[..., object], values: list[float]) -> float:
    results = []
    for _ in range(5):
        start = time.perf_counter()
        for i, v in enumerate(values):
            method("loss", v, step=i)
        results.append((time.perf_counter() - start) / len(values) * 1e9)
    return statistics.median(results)


class _Steps:
    """Re-creations of ActiveRun.log_metric + RunLogger.add_metric, one line at a time, to price each.

    The ladder follows the code as of ef091c3 (columnar per-key buffers under a Condition); the last
    two variants are the cheaper designs suggested in the report.
    """

    def __init__(self) -> None:
        self._next_step: dict[str, int] = {}
        self._cond = threading.Condition(threading.Lock())
        self._lock = threading.Lock()
        self._cols: dict[str, tuple[list[int], list[float], list[float]]] = {}
        self._rows: list[tuple[str, float, int, float]] = []
        self._count = 0
        self._max = 1 << 60

    def call_only(self, key: str, value: float, step: int | None = None) -> None:
        pass

    def checks(self, key: str, value: float, step: Any = None) -> None:
        if value.__class__ is not float or key.__class__ is not str or not key or len(key) > 255:
            raise AssertionError
        if step.__class__ is not int:
            raise AssertionError
        self._next_step[key] = step + 1

    def clock(self, key: str, value: float, step: Any = None) -> None:
        if value.__class__ is not float or key.__class__ is not str or not key or len(key) > 255:
            raise AssertionError
        if step.__class__ is not int:
            raise AssertionError
        self._next_step[key] = step + 1
        self._noop(key, value, step, None or int(time.time() * 1000))

    def _noop(self, key: str, value: float, step: int, ts: float) -> None:
        pass

    def condition(self, key: str, value: float, step: Any = None) -> None:
        if value.__class__ is not float or key.__class__ is not str or not key or len(key) > 255:
            raise AssertionError
        if step.__class__ is not int:
            raise AssertionError
        self._next_step[key] = step + 1
        self._with_cond(key, value, step, None or int(time.time() * 1000))

    def _with_cond(self, key: str, value: float, step: int, ts: float) -> None:
        with self._cond:
            if self._count >= self._max:
                raise AssertionError

    def columns(self, key: str, value: float, step: Any = None) -> None:
        if value.__class__ is not float or key.__class__ is not str or not key or len(key) > 255:
            raise AssertionError
        if step.__class__ is not int:
            raise AssertionError
        self._next_step[key] = step + 1
        self._add_columns(key, value, step, None or int(time.time() * 1000))

    def _add_columns(self, key: str, value: float, step: int, ts: float) -> None:
        with self._cond:
            if self._count >= self._max:
                raise AssertionError
            cols = self._cols.get(key)
            if cols is None:
                cols = self._cols[key] = ([], [], [])
            cols[0].append(step)
            cols[1].append(ts)
            cols[2].append(value)
            self._count += 1

    def columns_lock_float_ts(self, key: str, value: float, step: Any = None) -> None:
        if value.__class__ is not float or key.__class__ is not str or not key or len(key) > 255:
            raise AssertionError
        if step.__class__ is not int:
            raise AssertionError
        self._next_step[key] = step + 1
        ts = time.time()  # converted to int ms in bulk (numpy) at flush
        with self._lock:
            cols = self._cols.get(key)
            if cols is None:
                cols = self._cols[key] = ([], [], [])
            cols[0].append(step)
            cols[1].append(ts)
            cols[2].append(value)
            self._count += 1

    def rows_lock_float_ts(self, key: str, value: float, step: Any = None) -> None:
        if value.__class__ is not float or key.__class__ is not str or not key or len(key) > 255:
            raise AssertionError
        if step.__class__ is not int:
            raise AssertionError
        self._next_step[key] = step + 1
        ts = time.time()
        with self._lock:
            self._rows.append((key, value, step, ts))


def profile_ingest(points: int, use_cprofile: bool) -> None:
    values = [2.0 / (1.0 + 0.001 * i) for i in range(points)]
    print(f"\n(a)/(b) log_metric: {points:,} calls, median of 5, ns per call")
    variants = [
        ("empty method call + loop", "call_only"),
        ("+ ActiveRun.log_metric's checks and next-step dict", "checks"),
        ("+ int(time.time() * 1000) and the call into RunLogger.add_metric", "clock"),
        ("+ `with self._cond` (a threading.Condition) and the count check", "condition"),
        ("+ per-key columns: dict lookup, 3 list appends, count (as ef091c3)", "columns"),
        ("alternative: one frame, plain Lock, float time.time(), columns", "columns_lock_float_ts"),
        ("alternative: one frame, plain Lock, float time.time(), one tuple", "rows_lock_float_ts"),
    ]
    for label, name in variants:
        print(f"  {label:66s} {_per_call_ns(getattr(_Steps(), name), values):7.0f}")
    client = shipyard_client(fresh_dir("prof-ingest"), flush_interval=3600.0, buffer_size=10 * points)
    run = start_sy_run(client, "a")
    print(
        f"  {'real ActiveRun.log_metric (flusher idle, no backpressure)':66s} "
        f"{_per_call_ns(run.log_metric, values):7.0f}"
    )
    run.end()
    gc.disable()
    run = start_sy_run(client, "a")
    print(f"  {'  the same with gc disabled':66s} {_per_call_ns(run.log_metric, values):7.0f}")
    gc.enable()
    run.end()

    # (b) flush of 100,000 buffered points (as in bench (b)): phases of SqlStore._write_metrics
    import zlib

    import numpy as np

    from shipyard.store.sql import store as store_mod

    keys = [f"metric_{k}" for k in range(10)]
    points = [(k, 1.0 / (1 + s) + 0.01 * j, s) for s in range(10_000) for j, k in enumerate(keys)]
    clock = Clock()
    store = client.store
    clock.wrap(store, "log_batch", "store.log_batch")
    clock.wrap(np, "fromiter", "  np.fromiter over generators (3 per key)")
    clock.wrap(store_mod, "_columns", "  _columns: buffered lists -> numpy arrays per key")
    clock.wrap(store_mod, "encode_chunk", "  encode_chunk (delta + byte shuffle + zlib level 6)")
    clock.wrap(np, "lexsort", "  np.lexsort (latest point per key)")
    watch_sql(store._engine, clock)
    flushes, snapshots = [], []
    for _ in range(5):
        run = start_sy_run(client, "b")
        for key, value, step in points:
            run.log_metric(key, value, step=step)
        clock.reset()
        start = time.perf_counter()
        run.flush()
        flushes.append(time.perf_counter() - start)
        snapshots.append((flushes[-1], dict(clock.total), dict(clock.calls)))
        run.end()
    total, t, c = sorted(snapshots, key=lambda x: x[0])[len(snapshots) // 2]
    inner = sum(v for k, v in t.items() if k.startswith(("  ", "sqlite")))
    names = ["store.log_batch"] + [k for k in t if k.startswith("  ")]
    out = [(k, t[k], c[k]) for k in names]
    out.append(
        ("  sqlite3 execute + COMMIT", t["sqlite: execute"] + t["sqlite: commit"], c["sqlite: commit"])
    )
    out.append(
        ("  rest of log_batch: per-key Python, row dicts, SQLAlchemy", t["store.log_batch"] - inner, 0)
    )
    out.append(("outside log_batch (RunLogger swap, LogBatch)", total - t["store.log_batch"], 0))
    print_rows(
        f"(b) flush() of {len(points):,} buffered points (median of 5): {total * 1e3:.1f} ms",
        out,
        total,
        "flush",
    )
    groups: dict[str, list[tuple[float, int]]] = {}
    for key, value, step in points:
        groups.setdefault(key, []).append((value, step))
    payloads = []
    stamp = int(time.time() * 1000)
    for series in groups.values():
        n = len(series)
        vals = np.array([v for v, _ in series], dtype=np.float64)
        steps = np.array([s for _, s in series], dtype=np.int64)
        shuffled = np.ascontiguousarray(vals.view(np.uint8).reshape(n, 8).T).tobytes()
        stamps = np.diff(np.full(n, stamp, dtype=np.int64), prepend=0).tobytes()
        payloads.append(np.diff(steps, prepend=0).tobytes() + stamps + shuffled)
    for level in (1, 6):
        start = time.perf_counter()
        size = sum(len(zlib.compress(payload, level)) for payload in payloads)
        print(
            f"  (zlib level {level} on these 10 chunks: {(time.perf_counter() - start) * 1e3:.1f} ms, "
            f"{size / len(points):.2f} bytes/point)"
        )
    import array

    steps_list = [p[2] for p in points]
    stamps_list = [stamp] * len(points)
    values_list = [p[1] for p in points]
    start = time.perf_counter()
    np.asarray(steps_list, np.int64), np.asarray(stamps_list, np.int64), np.asarray(values_list, np.float64)
    from_lists = time.perf_counter() - start
    buffers = array.array("q", steps_list), array.array("q", stamps_list), array.array("d", values_list)
    start = time.perf_counter()
    np.frombuffer(buffers[0], np.int64), np.frombuffer(buffers[1], np.int64), np.frombuffer(buffers[2])
    from_buffers = time.perf_counter() - start
    print(
        f"  (3 columns of {len(points):,} points to numpy: from lists {from_lists * 1e3:.1f} ms, "
        f"from array.array buffers {from_buffers * 1e3:.3f} ms)"
    )
    if use_cprofile:
        run = start_sy_run(client, "b")
        for key, value, step in points:
            run.log_metric(key, value, step=step)
        print("\ncProfile of one flush(), tottime:")
        cprofile(run.flush, 15)
        run.end()
    client.close()


# -- (d) batched build -------------------------------------------------------------------------
def profile_build(n: int, use_cprofile: bool) -> None:
    client = shipyard_client(fresh_dir("prof-build"))
    store = client.store
    data = make_run_data(n)
    clock = Clock()
    for name in (
        "create_run",
        "get_run",
        "log_batch",
        "update_run",
        "_compact",
        "_get_or_create_experiment_id",
        "_write_params",
        "_write_tags",
        "_write_metrics",
    ):
        clock.wrap(store, name, f"store.{name}")
    watch_sql(store._engine, clock)
    start = time.perf_counter()
    build_runs_batched(store, "d", data)
    total = time.perf_counter() - start
    t, c = clock.total, clock.calls
    rows = [
        ("store.create_run", t["store.create_run"], c["store.create_run"]),
        (
            "  _get_or_create_experiment_id",
            t["store._get_or_create_experiment_id"],
            c["store._get_or_create_experiment_id"],
        ),
        ("  _write_params", t["store._write_params"], c["store._write_params"]),
        ("  _write_tags", t["store._write_tags"], c["store._write_tags"]),
        ("  get_run (re-reads the new run)", t["store.get_run"], c["store.get_run"]),
        ("store.log_batch", t["store.log_batch"], c["store.log_batch"]),
        (
            "  _write_metrics (encode 5 chunks, insert, upsert latest)",
            t["store._write_metrics"],
            c["store._write_metrics"],
        ),
        ("store.update_run", t["store.update_run"], c["store.update_run"]),
        ("  _compact", t["store._compact"], c["store._compact"]),
        ("SQL statements", 0.0, c["sqlite: execute"]),
        ("time inside sqlite3 execute/executemany", t["sqlite: execute"], c["sqlite: execute"]),
        ("time inside sqlite3 COMMIT", t["sqlite: commit"], c["sqlite: commit"]),
    ]
    rows = [(label, s / n, k / n) for label, s, k in rows]
    print_rows(
        f"(d) build: {n:,} runs, public Store API, 1,000 runs per transaction: {total / n * 1e3:.2f} ms/run",
        rows,
        total / n,
        "run",
    )
    if use_cprofile:
        print("\ncProfile, tottime (1,000 more runs):")
        cprofile(lambda: build_runs_batched(store, "d", data[:1000]), 25)
    client.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("case", choices=("runs", "ingest", "build", "all"))
    parser.add_argument("-n", type=int, default=1000, help="runs for `runs`/`build` (default 1,000)")
    parser.add_argument("--cprofile", action="store_true", help="also print cProfile's top functions")
    parser.add_argument("--commit", metavar="REV", help="profile src/ as of this commit (e.g. HEAD)")
    args = parser.parse_args()
    if args.commit:
        rest = sys.argv[1:]
        i = next(i for i, a in enumerate(rest) if a.startswith("--commit"))
        del rest[i : i + (1 if "=" in rest[i] else 2)]
        return rerun_at_commit(args.commit, Path(__file__).resolve(), rest)
    print(f"shipyard imported from {Path(sy.__file__).parent}")
    print(f"load average at start: {load_average()} (2 cores; shares shift when the machine is busy)")
    try:
        if args.case in ("runs", "all"):
            profile_runs(args.n, args.cprofile)
        if args.case in ("ingest", "all"):
            profile_ingest(200_000, args.cprofile)
        if args.case in ("build", "all"):
            profile_build(max(args.n, 5000), args.cprofile)
    finally:
        remove_temp_dirs()
    print(f"\nload average at end: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
