"""The prediction log's cost on the request path, and what its writer thread sustains.

Prints (writes nothing):

- ``append`` cost: 1 row per call (one request), a typical row (1 input record, JSON text), from 1 thread
  and from 8 threads at once; mean per call (total time / calls) and the p50/p99 of individually timed calls.
- Write throughput: rows appended as fast as possible with ``on_full="block"``, so the writer is the
  bottleneck; rows/s from the first append to ``close()`` returning (everything durable: fsync + rename),
  with the bytes per row on disk. Once with JSON text, once with objects the writer has to encode.
- Request-path cost, in process: what logging adds per request at a server's pace (``--rate`` requests/s,
  default 600, about what one worker answers at C=64), from building the row (as ``Engine._log_row`` does:
  inputs as sent, outputs as numpy arrays) through ``LogFeed.put`` to the part on disk: CPU µs per request
  on the event-loop thread and in the other threads (feed hand-over, encoding, Parquet, writer), less the
  same paced loop without a log. Thread CPU time, so it holds on a loaded machine where requests/s do not.
- With ``--serve``, the log's cost under load (issue 16): ``shipyard serve`` with and without
  ``--no-prediction-log`` (bench_serving.py's flights model and 1-row requests, 1 worker), both servers up
  at once and measured in turn, closed loop at C=16 and C=64, ``--repeat`` rounds (at least 4, the order
  alternating: ``bench_serving.log_pair``), so the noise shows: the cost as 1 − requests/s with ÷ without,
  per round and as the median, and by the server's CPU per request (steadier on a shared machine).

    .venv/bin/python bench/bench_predlog.py            # 200,000 calls / 500,000 rows
    .venv/bin/python bench/bench_predlog.py --quick    # 20,000 / 50,000
    .venv/bin/python bench/bench_predlog.py --serve    # only the served cost: 4 rounds of 2.5 s per cell
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fresh_dir, machine_info, machine_line, remove_temp_dirs
from shipyard.serving.logfeed import LogFeed
from shipyard.serving.predlog import ParquetPredictionLog, read_prediction_log


def make_row(i: int, objects: bool = False) -> dict[str, Any]:
    """A log row like the server's for a 1-record flights request: random ids, varying numbers."""
    rng = random.Random(i)
    record = {
        "carrier": rng.choice(["UA", "AA", "B6", "DL", "EV"]),
        "origin": rng.choice(["EWR", "JFK", "LGA"]),
        "dest": rng.choice(["IAH", "MIA", "ORD", "ATL", "LAX", "SFO"]),
        "distance": rng.randint(100, 2500),
        "dep_delay": round(rng.gauss(10, 30), 1),
        "hour": rng.randint(5, 23),
    }
    proba = round(rng.random(), 6)
    outputs: Any = {"predictions": [int(proba > 0.5)], "probabilities": [[1 - proba, proba]]}
    return {
        "request_id": uuid.UUID(int=rng.getrandbits(128)).hex,
        "ts": time.time_ns() // 1_000_000,
        "deployment": "flights",
        "variant": "main",
        "model": "models:/flights/3",
        "model_version": "3",
        "shadow": False,
        "latency_ms": round(rng.uniform(0.3, 3.0), 3),
        "n_rows": 1,
        "inputs": [record] if objects else orjson.dumps([record]).decode(),
        "outputs": outputs if objects else orjson.dumps(outputs).decode(),
        "status": 200,
    }


def append_cost(calls: int, threads: int) -> dict[str, float]:
    """Mean, p50 and p99 microseconds per ``append`` of one row, from ``threads`` threads at once."""
    sink = ParquetPredictionLog(
        str(fresh_dir("predlog") / "log"),
        deployment="churn",
        flush_interval_s=0.2,
        max_buffered_rows=2_000_000,
    )
    per_thread = calls // threads
    rows = [[make_row(i)] for i in range(per_thread * threads)]
    samples: list[list[int]] = [[] for _ in range(threads)]
    totals: list[float] = [0.0] * threads
    barrier = threading.Barrier(threads + 1)

    def work(t: int) -> None:
        mine = rows[t * per_thread : (t + 1) * per_thread]
        barrier.wait()
        start = time.perf_counter()
        for batch in mine:  # untimed per call: the mean
            sink.append(batch)
        totals[t] = time.perf_counter() - start
        clock = time.perf_counter_ns
        for batch in mine[: per_thread // 4]:  # timed per call: the distribution
            t0 = clock()
            sink.append(batch)
            samples[t].append(clock() - t0)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    wall = time.perf_counter()
    for w in workers:
        w.join()
    wall = time.perf_counter() - wall
    sink.close()
    assert sink.stats()["dropped"] == 0
    flat = sorted(s for ss in samples for s in ss)
    return {
        "mean_us": statistics.mean(totals) / per_thread * 1e6,
        "wall_us": wall / (per_thread * threads * 1.25) * 1e6,
        "p50_us": flat[len(flat) // 2] / 1e3,
        "p99_us": flat[int(len(flat) * 0.99)] / 1e3,
        "p999_us": flat[int(len(flat) * 0.999)] / 1e3,
    }


def write_throughput(n_rows: int, objects: bool) -> dict[str, float]:
    """Rows/s from the first append to close() (all durable), with the default buffer and block policy."""
    root = fresh_dir("predlog") / "log"
    rows = [make_row(i, objects) for i in range(n_rows)]
    sink = ParquetPredictionLog(
        str(root), deployment="churn", flush_interval_s=1.0, max_buffered_rows=100_000
    )
    start = time.perf_counter()
    for i in range(0, n_rows, 10):
        sink.append(rows[i : i + 10])
    sink.close()
    elapsed = time.perf_counter() - start
    stats = sink.stats()
    assert stats["written"] == n_rows and len(read_prediction_log(root)) == n_rows
    size = sum(p.stat().st_size for p in root.rglob("part-*.parquet"))
    return {"rows_per_s": n_rows / elapsed, "bytes_per_row": size / n_rows, "files": stats["files"]}


def engine_row(i: int, inputs: list[dict[str, Any]], outputs: dict[str, Any]) -> dict[str, Any]:
    """A row as ``Engine._log_row`` builds it: the parsed request's records and the model's numpy outputs
    as they are (not copied), the rest made per request."""
    return {
        "request_id": f"r{i}",
        "ts": time.time_ns() // 1_000_000,
        "deployment": "flights",
        "variant": "main",
        "model": "models:/flights/3",
        "model_version": "3",
        "shadow": False,
        "latency_ms": round(0.3 + (i % 97) / 97, 3),
        "n_rows": 1,
        "inputs": inputs,
        "outputs": outputs,
        "status": 200,
    }


def request_path_cost(n: int, rate: float) -> dict[str, float]:
    """CPU µs per request that the log adds at ``rate`` requests/s: event-loop thread, other threads."""
    pool = []  # what the requests bring: parsed records, the batch's numpy answers for each
    for i in range(97):
        example = make_row(i, objects=True)
        inputs = orjson.loads(orjson.dumps(example["inputs"]))
        proba = example["outputs"]["probabilities"][0][1]
        pool.append(
            (
                inputs,
                {
                    "predictions": np.array([int(proba > 0.5)]),
                    "probabilities": np.array([[1 - proba, proba]]),
                },
            )
        )

    def run(logged: bool) -> tuple[float, float]:
        root = fresh_dir("predlog-path") / "log"
        sink = ParquetPredictionLog(str(root), deployment="flights", flush_interval_s=1.0)
        feed = LogFeed(sink, max_pending=100_000)

        async def requests() -> float:
            feed.start()
            loop_cpu = time.thread_time()
            step, due = 1.0 / rate, time.perf_counter()
            for i in range(n):
                if logged:
                    await feed.put(engine_row(i, *pool[i % len(pool)]))
                due += step
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await feed.close()  # everything handed over and written (fsync + rename)
            return time.thread_time() - loop_cpu

        total = time.process_time()
        loop_cpu = asyncio.run(requests())
        total = time.process_time() - total
        assert sink.stats()["written"] == (n if logged else 0)
        return loop_cpu, total - loop_cpu

    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for _ in range(3):  # interleaved, so a change in the machine's load hits both alike
        for logged in (False, True):
            runs[logged].append(run(logged))
    (bare_loop, bare_other), (log_loop, log_other) = (
        [statistics.median(x[k] for x in runs[logged]) for k in (0, 1)] for logged in (False, True)
    )
    return {
        "loop_us": (log_loop - bare_loop) / n * 1e6,
        "other_us": (log_other - bare_other) / n * 1e6,
    }


def serve_cost(repeat: int, seconds: float) -> None:
    """Print the log's cost under load: ``bench_serving``'s paired measure (``shipyard serve`` with and
    without the log, both up, 1-row requests at C=16 and C=64 in ``repeat`` alternating rounds)."""
    import bench_serving as bs

    work = bs.build_workload(quick=False)
    home = fresh_dir("predlog-serve")
    args = argparse.Namespace(rounds=max(repeat, 4), seconds=seconds, min_requests=400)
    pair = bs.log_pair(work, args, home)
    for concurrency in bs.LOG_CONCURRENCY:
        cost = bs.log_costs(pair, concurrency)
        each = ", ".join(f"{v:.1f}" for v in cost["rate_rounds"])
        cpu_each = ", ".join(f"{v:.1f}" for v in cost["cpu_rounds"])
        print(
            f"served, 1 row, C={concurrency}: log cost by requests/s median {cost['rate']:.1f}% "
            f"(rounds: {each}); by server CPU per request median {cost['cpu']:.1f}% (rounds: {cpu_each})"
        )
    written = pair["metrics"].get("shipyard_serving_prediction_log_written", 0.0)
    answered = pair["metrics"].get("shipyard_serving_requests_total", 0.0)
    print(f"log rows written {written:,.0f} of {answered:,.0f} requests answered")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rate", type=float, default=600.0, help="requests/s of the request-path cell")
    parser.add_argument("--serve", action="store_true", help="only the cost under load of shipyard serve")
    parser.add_argument("--repeat", type=int, default=4, help="with --serve: rounds (default 4)")
    parser.add_argument("--seconds", type=float, default=5.0, help="with --serve: traffic per cell")
    args = parser.parse_args()
    if args.serve:
        print(machine_line(machine_info()))
        try:
            serve_cost(args.repeat, args.seconds)
        finally:
            remove_temp_dirs()
        return
    calls, n_rows = (20_000, 50_000) if args.quick else (200_000, 500_000)
    print(machine_line(machine_info()))
    for threads in (1, 8):
        got = append_cost(calls, threads)
        print(
            f"append, 1 row/call, {threads} thread(s), {calls:,} calls: mean {got['mean_us']:.2f} µs/call "
            f"(wall/calls {got['wall_us']:.2f} µs), p50 {got['p50_us']:.2f} µs, p99 {got['p99_us']:.2f} µs, "
            f"p99.9 {got['p999_us']:.2f} µs"
        )
    n = 2_000 if args.quick else 6_000
    got = request_path_cost(n, args.rate)
    print(
        f"request path, {n:,} requests at {args.rate:,.0f}/s, row built as Engine._log_row does, to disk: "
        f"{got['loop_us'] + got['other_us']:.1f} µs CPU/request (event loop {got['loop_us']:.1f} µs, other "
        f"threads {got['other_us']:.1f} µs; less the same paced loop without a log)"
    )
    for objects in (False, True):
        got = write_throughput(n_rows, objects)
        kind = "objects encoded by the writer" if objects else "JSON text"
        print(
            f"write throughput, {n_rows:,} rows ({kind}): {got['rows_per_s']:,.0f} rows/s until durable, "
            f"{got['bytes_per_row']:.1f} bytes/row on disk (zstd), {got['files']:.0f} files"
        )


if __name__ == "__main__":
    main()
