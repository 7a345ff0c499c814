"""Demo stage: serve the champion over HTTP and send it July's flights, watching the prediction log grow.

A real uvicorn server on a free loopback port runs the deployment app in a background thread (the
same app ``shipyard serve models:/flights-delay@champion`` runs), following the ``champion`` alias.
Clients post batches of July flights concurrently; the demo waits until the prediction log has flushed
every answer and reads it back: one row per request, none lost. The server keeps running for the
monitoring stage (which replays August to December and posts labels to its ``/feedback``); it shuts
down gracefully when the demo ends.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pandas as pd
import uvicorn
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shipyard.demo.context import DemoContext
from shipyard.errors import InvalidState
from shipyard.serving.app import create_deployment_app
from shipyard.serving.deployment import single_model_deployment
from shipyard.serving.predlog import prediction_log_root, read_prediction_log

__all__ = ["DEPLOYMENT", "LiveServer", "Sent", "month_traffic", "serve_champion"]

DEPLOYMENT = "flights-delay-demo"
MONTH_ROWS = {False: 2_500, True: 600}  # flights sent per month of traffic
_FLUSH_WAIT_S = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sent:
    """One month of traffic as the clients saw it: every answer's request id, rows and model version."""

    requests: list[tuple[str, list[int]]] = field(default_factory=list)  # request id, frame row labels
    versions: Counter[str] = field(default_factory=Counter)
    scores: dict[Any, float] = field(default_factory=dict)  # frame row label → predicted P(late)
    latencies: list[float] = field(default_factory=list)
    failed: int = 0
    rows: int = 0
    p_late: float = 0.0
    seconds: float = 0.0

    @property
    def ok(self) -> int:
        return len(self.requests)

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


class LiveServer:
    """The demo's model server: a uvicorn thread serving the deployment app on a loopback port."""

    def __init__(self, ctx: DemoContext, columns: list[str]) -> None:
        self.spec = single_model_deployment(
            "models:/flights-delay@champion",
            name=DEPLOYMENT,
            prediction_log={"flush_interval_s": 0.5},
            reload={"poll_interval_s": 1.0},
        )
        self.columns = columns
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.root = prediction_log_root(self.spec.prediction_log, ctx.client.settings.artifact_uri)
        app = create_deployment_app(self.spec, client=ctx.client)
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, name="demo-model-server", daemon=True)
        self.http = httpx.Client(base_url=self.base, timeout=30)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.http.get("/ready", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise InvalidState("The demo's model server did not become ready within 60 s")

    def stop(self) -> None:
        """Graceful shutdown: the server drains and flushes its prediction log."""
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.http.close()

    def version(self) -> str | None:
        """The champion version the server answers with now."""
        info = self.http.get("/info").json()
        return None if info.get("version") is None else str(info["version"])

    def log_stats(self) -> dict[str, int]:
        """The prediction log's counters, read from the server's Prometheus metrics."""
        found: dict[str, int] = {}
        for line in self.http.get("/metrics").text.splitlines():
            if line.startswith("shipyard_serving_prediction_log_"):
                name, _, value = line.partition(" ")
                key = name.removeprefix("shipyard_serving_prediction_log_").split("{")[0]
                found[key] = found.get(key, 0) + int(float(value))
        return found

    def wait_flushed(self, written: int, feedback: int = 0) -> dict[str, int]:
        """Wait until the log has written ``written`` rows and ``feedback`` labels to disk."""
        deadline = time.monotonic() + _FLUSH_WAIT_S
        while True:
            stats = self.log_stats()
            done = stats.get("written", 0) >= written and stats.get("feedback_written", 0) >= feedback
            if done and stats.get("buffered", 0) == 0:
                return stats
            if time.monotonic() > deadline:
                raise InvalidState(f"The prediction log did not flush within {_FLUSH_WAIT_S:.0f} s: {stats}")
            time.sleep(0.1)

    def send(
        self,
        frame: pd.DataFrame,
        progress: Progress | None = None,
        on_batch: Callable[[Sent], None] | None = None,
    ) -> Sent:
        """Post ``frame``'s flights as requests of 1 to 8 rows from 8 client threads."""
        batches = _batches(frame)
        features = frame[self.columns]
        records = features.astype(object).where(features.notna(), None).to_dict(orient="records")
        by_label = dict(zip(frame.index, records, strict=True))
        sent, lock = Sent(), threading.Lock()

        def one(labels: list[int]) -> None:
            started = time.perf_counter()
            try:
                response = self.http.post(
                    "/predict", json={"records": [by_label[i] for i in labels], "proba": True}
                )
            except httpx.TransportError:
                response = None
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                sent.latencies.append(elapsed)
                if response is None or response.status_code != 200:
                    sent.failed += 1
                    return
                answer = response.json()
                sent.requests.append((answer["request_id"], labels))
                sent.versions[str(answer["model_version"])] += 1
                for label, p in zip(labels, answer["probabilities"], strict=True):
                    sent.scores[label] = float(p[-1])
                sent.p_late += sum(float(p[-1]) for p in answer["probabilities"])
                sent.rows += len(labels)

        task = progress.add_task("requests", total=len(batches)) if progress is not None else None
        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            chunk = max(1, len(batches) // 8)
            for start in range(0, len(batches), chunk):
                list(pool.map(one, batches[start : start + chunk]))
                if progress is not None and task is not None:
                    progress.advance(task, min(chunk, len(batches) - start))
                if on_batch is not None:
                    on_batch(sent)
        sent.seconds = time.perf_counter() - started
        return sent

    def post_labels(self, frame: pd.DataFrame, requests: list[tuple[str, list[int]]]) -> int:
        """Post the true ``late`` of the given requests' rows to the server's ``/feedback``."""
        items = [
            {"request_id": rid, "row": i, "label": int(frame.at[label, "late"])}
            for rid, labels in requests
            for i, label in enumerate(labels)
        ]
        for start in range(0, len(items), 5_000):
            response = self.http.post("/feedback", json={"feedback": items[start : start + 5_000]})
            if response.status_code != 202:
                raise InvalidState(f"POST /feedback answered {response.status_code}: {response.text[:300]}")
        return len(items)


def _batches(frame: pd.DataFrame) -> list[list[int]]:
    """The frame's row labels as requests of 1, 2, ... 8, 1, 2, ... rows."""
    labels, out, i, size = list(frame.index), [], 0, 1
    while i < len(labels):
        out.append(labels[i : i + size])
        i += size
        size = size % 8 + 1
    return out


def month_traffic(ctx: DemoContext, month: int) -> pd.DataFrame:
    """A seeded sample of one month's flights (features and ``late``): that month's traffic."""
    later = ctx.require_data().later
    pool = later[later["month"] == month]
    return pool.sample(n=min(len(pool), MONTH_ROWS[ctx.quick]), random_state=ctx.seed + month)


def serve_champion(ctx: DemoContext) -> None:
    """Stage: serve ``models:/flights-delay@champion``, send July traffic, show the log growing."""
    champion = ctx.extras.get("champion")
    if champion is None:
        ctx.console.print("No champion was promoted in this run; nothing to serve.")
        return
    columns = [c["name"] for c in champion.signature.get("inputs", [])]
    live = LiveServer(ctx, columns).start()
    ctx.extras["server"] = live
    ctx.cleanups.append(live.stop)
    july = month_traffic(ctx, 7)
    ctx.console.print(
        f"Serving {champion.ref} (alias champion) at {live.base}: POST /predict, /feedback, /metrics, /info, "
        f"/docs. Sending {len(july):,} July flights as requests of 1 to 8 rows from 8 clients."
    )
    table = Table("after", "requests answered", "log rows written", "flushes", "buffered", box=None)
    started = time.perf_counter()

    def snapshot(so_far: Sent) -> None:
        stats = live.log_stats()
        table.add_row(
            f"{time.perf_counter() - started:.1f}s",
            f"{so_far.ok:,}",
            f"{stats.get('written', 0):,}",
            f"{stats.get('flushes', 0):,}",
            f"{stats.get('buffered', 0):,}",
        )

    progress = Progress(
        TextColumn("predicting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=ctx.console
    )
    with progress:
        sent = live.send(july, progress, on_batch=snapshot)
    stats = live.wait_flushed(written=sent.ok)
    table.add_row(
        f"{time.perf_counter() - started:.1f}s",
        f"{sent.ok:,}",
        f"{stats.get('written', 0):,}",
        f"{stats.get('flushes', 0):,}",
        "0",
    )
    ctx.console.print(table)
    ctx.extras["traffic"] = {7: (july, sent)}
    logged = read_prediction_log(live.root, deployment=DEPLOYMENT)
    ids = set(logged["request_id"]) if len(logged) else set()
    missing = [rid for rid, _ in sent.requests if rid not in ids]
    ctx.console.print(
        f"Answered {sent.ok:,} requests ({sent.rows:,} flights) in {sent.seconds:.1f}s, "
        f"p50 {sent.quantile(0.5):.1f} ms, p99 {sent.quantile(0.99):.1f} ms; {sent.failed} failed. "
        f"Mean predicted chance of a late arrival: {sent.p_late / max(sent.rows, 1):.1%}; actually late: "
        f"{float(july['late'].mean()):.1%} (the model learned on January-June)."
    )
    ctx.console.print(
        f"Prediction log ({live.root}): {sent.ok - len(missing):,} rows for these requests "
        f"({len(logged):,} in all), {len(missing)} missing. It is what monitoring reads: inputs, outputs, "
        "model version, latency, request id."
    )
    if missing or sent.failed:
        raise InvalidState(f"{len(missing)} requests missing from the prediction log, {sent.failed} failed")
