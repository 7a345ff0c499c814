"""Demo stage: serve the champion over HTTP and send it July's flights, watching the prediction log grow.

A real uvicorn server on a free loopback port runs the deployment app in a background thread (the
same app ``shipyard serve models:/flights-delay@champion`` runs). Clients post batches of July flights
concurrently; afterwards the server shuts down gracefully, which flushes the prediction log, and the
demo reads the log back: one row per request, none lost.
"""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import uvicorn
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shipyard.demo.context import DemoContext
from shipyard.errors import InvalidState
from shipyard.serving.app import create_deployment_app
from shipyard.serving.deployment import single_model_deployment
from shipyard.serving.predlog import prediction_log_root, read_prediction_log

__all__ = ["serve_champion"]

DEPLOYMENT = "flights-delay-demo"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(app: Any, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="demo-model-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return server, thread
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.should_exit = True
    raise InvalidState("The demo's model server did not become ready within 60 s")


def _batches(ctx: DemoContext, columns: list[str]) -> tuple[list[list[dict[str, Any]]], float]:
    """July flights onwards as request bodies of 1 to 8 rows, and the share that really arrived late."""
    later = ctx.require_data().later
    pool = later[later["month"] >= 7]
    july = pool.sample(n=min(len(pool), 1_500 if ctx.quick else 6_000), random_state=ctx.seed)
    features = july[columns]
    records = features.astype(object).where(features.notna(), None).to_dict(orient="records")
    out, i, size = [], 0, 1
    while i < len(records):
        out.append(records[i : i + size])
        i += size
        size = size % 8 + 1
    return out, float(july["late"].mean())


def serve_champion(ctx: DemoContext) -> None:
    """Stage: serve ``models:/flights-delay@champion``, send July traffic, show the log growing."""
    champion = ctx.extras.get("champion")
    if champion is None:
        ctx.console.print("No champion was promoted in this run; nothing to serve.")
        return
    spec = single_model_deployment(
        "models:/flights-delay@champion",
        name=DEPLOYMENT,
        prediction_log={"flush_interval_s": 0.5},
        reload={"poll_interval_s": 2.0},
    )
    app = create_deployment_app(spec, client=ctx.client)
    port = _free_port()
    server, thread = _start(app, port)
    columns = [c["name"] for c in champion.signature.get("inputs", [])]
    batches, actual_late = _batches(ctx, columns)
    ctx.console.print(
        f"Serving {champion.ref} (alias champion) at http://127.0.0.1:{port}: "
        f"POST /predict, /metrics, /info, /docs. Sending {len(batches):,} requests of July flights."
    )
    try:
        summary = _send(ctx, port, batches)
        summary["actual_late"] = actual_late
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    root = prediction_log_root(spec.prediction_log, ctx.client.settings.artifact_uri)
    logged = read_prediction_log(root, deployment=DEPLOYMENT)
    ids = set(logged["request_id"]) if len(logged) else set()
    missing = [r for r in summary["ids"] if r not in ids]
    ours = len(summary["ids"]) - len(missing)
    ctx.console.print(
        f"Answered {summary['ok']:,} requests ({summary['rows']:,} flights) in {summary['seconds']:.1f}s, "
        f"p50 {summary['p50']:.1f} ms, p99 {summary['p99']:.1f} ms; {summary['failed']} failed. "
        f"Mean predicted chance of a late arrival: {summary['p_late']:.1%}; actually late: "
        f"{summary['actual_late']:.1%} (the model learned on January-June)."
    )
    ctx.console.print(
        f"Prediction log ({root}): {ours:,} rows for these requests after shutdown ({len(logged):,} in all), "
        f"{len(missing)} missing. It is what monitoring will read: inputs, outputs, model version, latency, "
        "request id."
    )
    if missing or summary["failed"]:
        raise InvalidState(
            f"{len(missing)} requests missing from the prediction log, {summary['failed']} failed"
        )


def _send(ctx: DemoContext, port: int, batches: list[list[dict[str, Any]]]) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    latencies: list[float] = []
    ids: list[str] = []
    p_late = 0.0
    rows = failed = 0
    table = Table("after", "requests answered", "log rows written", "flushes", "buffered", box=None)
    lock = threading.Lock()
    with httpx.Client(base_url=base, timeout=30) as http, ThreadPoolExecutor(8) as pool:

        def one(body: list[dict[str, Any]]) -> None:
            nonlocal p_late, rows, failed
            started = time.perf_counter()
            response = http.post("/predict", json={"records": body, "proba": True})
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                if response.status_code != 200:
                    failed += 1
                    return
                answer = response.json()
                ids.append(answer["request_id"])
                p_late += sum(float(p[-1]) for p in answer["probabilities"])
                rows += len(body)

        progress = Progress(
            TextColumn("predicting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=ctx.console,
        )
        started = time.perf_counter()
        with progress:
            task = progress.add_task("requests", total=len(batches))
            chunk = max(1, len(batches) // 4)
            for start in range(0, len(batches), chunk):
                list(pool.map(one, batches[start : start + chunk]))
                progress.advance(task, min(chunk, len(batches) - start))
                stats = _log_stats(http)
                table.add_row(
                    f"{time.perf_counter() - started:.1f}s",
                    f"{len(ids):,}",
                    f"{stats.get('written', 0):,}",
                    f"{stats.get('flushes', 0):,}",
                    f"{stats.get('buffered', 0):,}",
                )
        seconds = time.perf_counter() - started
    ctx.console.print(table)
    latencies.sort()
    return {
        "ok": len(ids),
        "ids": ids,
        "rows": rows,
        "failed": failed,
        "seconds": seconds,
        "p50": latencies[len(latencies) // 2] if latencies else 0.0,
        "p99": latencies[int(len(latencies) * 0.99)] if latencies else 0.0,
        "p_late": p_late / rows if rows else 0.0,
    }


def _log_stats(http: httpx.Client) -> dict[str, int]:
    """The prediction log's counters, read from the server's Prometheus metrics."""
    found: dict[str, int] = {}
    for line in http.get("/metrics").text.splitlines():
        if line.startswith("shipyard_serving_prediction_log_"):
            name, _, value = line.partition(" ")
            key = name.removeprefix("shipyard_serving_prediction_log_").split("{")[0]
            found[key] = int(float(value))
    return found
