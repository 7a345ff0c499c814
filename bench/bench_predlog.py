"""The prediction log's cost on the request path, and what its writer thread sustains.

Prints (writes nothing):

- ``append`` cost: 1 row per call (one request), a typical row (1 input record, JSON text), from 1 thread
  and from 8 threads at once; mean per call (total time / calls) and the p50/p99 of individually timed calls.
- Write throughput: rows appended as fast as possible with ``on_full="block"``, so the writer is the
  bottleneck; rows/s from the first append to ``close()`` returning (everything durable: fsync + rename),
  with the bytes per row on disk. Once with JSON text, once with objects the writer has to encode.

    .venv/bin/python bench/bench_predlog.py            # 200,000 calls / 500,000 rows
    .venv/bin/python bench/bench_predlog.py --quick    # 20,000 / 50,000
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fresh_dir, machine_info, machine_line
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    calls, n_rows = (20_000, 50_000) if args.quick else (200_000, 500_000)
    print(machine_line(machine_info()))
    for threads in (1, 8):
        got = append_cost(calls, threads)
        print(
            f"append, 1 row/call, {threads} thread(s), {calls:,} calls: mean {got['mean_us']:.2f} µs/call "
            f"(wall/calls {got['wall_us']:.2f} µs), p50 {got['p50_us']:.2f} µs, p99 {got['p99_us']:.2f} µs, "
            f"p99.9 {got['p999_us']:.2f} µs"
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
