"""A real ``shipyard serve`` process under load: concurrency 64, zero 5xx, every request logged exactly once,
an A/B split within statistical tolerance, and an alias move mid-load with zero failed requests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from server_process import child_env, free_port

from polling_helpers import wait_until
from shipyard.registry import core
from shipyard.serving.predlog import read_prediction_log
from shipyard.tracking import Client

pytestmark = pytest.mark.integration

REQUESTS = int(os.environ.get("SHIPYARD_LIVE_REQUESTS", "10000"))
CONCURRENCY = 64
_CLI = "from shipyard.cli.main import main; main()"


def flights(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "dep_delay": rng.normal(10, 20, n).round(1),
            "distance": rng.integers(100, 3000, n),
            "carrier": rng.choice(["UA", "AA", "DL", "B6"], n),
        }
    )


def classifier(frame: pd.DataFrame, flip: bool) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    late = ((frame["dep_delay"] > 15) | (frame["carrier"] == "B6")).astype(int)
    features = ColumnTransformer(
        [("num", StandardScaler(), ["dep_delay", "distance"]), ("cat", OneHotEncoder(), ["carrier"])]
    )
    return Pipeline([("features", features), ("clf", LogisticRegression())]).fit(
        frame, 1 - late if flip else late
    )


@dataclass
class Registry:
    root: Path
    env: dict[str, str]
    client: Client
    models: dict[str, Any]  # version -> the fitted model


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("serving-live")
    tracking, artifacts = f"sqlite:///{root / 'registry.db'}", str(root / "artifacts")
    client = Client(tracking_uri=tracking, artifact_uri=artifacts)
    frame = flights(500)
    models = {}
    for flip in (False, True):
        model = classifier(frame, flip)
        version = core.register_model(model, "flights", input_example=frame.head(5), client=client)
        models[str(version.version)] = model
    env = child_env(root / "home")
    env.update(SHIPYARD_TRACKING_URI=tracking, SHIPYARD_ARTIFACT_URI=artifacts)
    yield Registry(root, env, client, models)
    client.close()


class Serve:
    """``shipyard serve ...`` in its own process group on a free port, ready-checked; SIGTERM to stop."""

    def __init__(self, registry: Registry, *args: str) -> None:
        self.port = free_port()
        self.log = registry.root / f"serve-{self.port}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _CLI,
                    "serve",
                    *args,
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                ],
                env=registry.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_until(self._ready, "GET /ready to answer 200", timeout=60, interval=0.1)
        except AssertionError:
            self.stop()
            raise

    def _ready(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(f"{self.url}/ready", timeout=1).status_code == 200
        return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise


@dataclass
class Answer:
    request_id: str
    status: int
    variant: str = ""
    version: str = ""


async def hammer(port: int, n: int, concurrency: int, on_progress: Any = None) -> list[Answer]:
    """``n`` prediction requests of 1-3 rows over ``concurrency`` keep-alive connections.

    A minimal HTTP/1.1 client on asyncio streams: httpx's AsyncClient tops out at a few hundred requests
    per second on a small machine, which would measure the load generator instead of the server.
    """
    rows = flights(300, seed=7).to_dict(orient="records")
    answers: list[Answer] = []
    counter = iter(range(n))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in counter:
                rid = uuid.uuid4().hex
                body = json.dumps({"records": rows[i % 297 : i % 297 + 1 + i % 3]}).encode()
                head = (
                    f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    f"X-Request-ID: {rid}\r\nContent-Length: {len(body)}\r\n\r\n"
                )
                writer.write(head.encode() + body)
                status, payload = await read_response(reader)
                data = json.loads(payload) if status == 200 else {}
                answers.append(Answer(rid, status, data.get("variant", ""), data.get("model_version", "")))
                if on_progress is not None:
                    on_progress(len(answers))
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return answers


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    length = int(next(v for k, v in headers.items() if k.strip().lower() == "content-length"))
    return int(lines[0].split()[1]), await reader.readexactly(length)


def within(count: int, n: int, share: float, sigmas: float = 5.0) -> bool:
    return abs(count - n * share) <= sigmas * math.sqrt(n * share * (1 - share))


def test_under_load_no_5xx_every_request_logged_once_and_ab_shares_hold(registry: Registry) -> None:
    registry.client.store.set_model_alias("flights", "champion", 1, "tests")
    config = registry.root / "ab.yaml"
    config.write_text(
        "name: live\n"
        "variants:\n"
        "  - {name: a, model: 'models:/flights@champion', weight: 70}\n"
        "  - {name: b, model: 'models:/flights/2', weight: 30, mode: canary}\n"
        "prediction_log: {flush_interval_s: 0.25}\n"
    )
    server = Serve(registry, "--config", str(config))
    try:
        started = time.monotonic()
        answers = asyncio.run(hammer(server.port, REQUESTS, CONCURRENCY))
        elapsed = time.monotonic() - started
    finally:
        code = server.stop()
    statuses = Counter(a.status for a in answers)
    assert statuses == {200: REQUESTS}, statuses
    variants = Counter(a.variant for a in answers)
    assert within(variants["b"], REQUESTS, 0.3), variants
    assert {a.version for a in answers if a.variant == "b"} == {"2"}
    assert code in (0, -signal.SIGTERM)  # a graceful shutdown (uvicorn re-raises the signal it handled)
    log = read_prediction_log(registry.root / "artifacts" / "predictions-log", deployment="live")
    logged = log.loc[~log["shadow"], "request_id"]
    assert logged.is_unique
    assert set(logged) == {a.request_id for a in answers}
    print(f"\n{REQUESTS} requests at c={CONCURRENCY}: {REQUESTS / elapsed:.0f} req/s")


def test_an_alias_move_mid_load_fails_no_request_and_the_new_version_answers(registry: Registry) -> None:
    registry.client.store.set_model_alias("flights", "moving", 1, "tests")
    server = Serve(registry, "models:/flights@moving", "--poll-interval", "0.2", "--no-prediction-log")
    moved: list[float] = []

    def progress(done: int) -> None:
        if done >= 1000 and not moved:
            registry.client.store.set_model_alias("flights", "moving", 2, "tests")
            moved.append(time.monotonic())

    try:
        answers = asyncio.run(hammer(server.port, 4000, 32, progress))
        frame = flights(50, seed=3)
        body = {"records": frame.to_dict(orient="records")}

        def answered_by_v2() -> dict[str, Any]:
            answer: dict[str, Any] = httpx.post(f"{server.url}/predict", json=body, timeout=10).json()
            return answer if answer["model_version"] == "2" else {}

        after = wait_until(answered_by_v2, "version 2 to answer after the alias move", interval=0.1)
    finally:
        server.stop()
    assert moved
    assert Counter(a.status for a in answers) == {200: 4000}
    versions = [a.version for a in answers]
    assert versions[0] == "1" and versions[-1] == "2"  # the swap happened under load
    assert after["model_version"] == "2"
    assert after["predictions"] == registry.models["2"].predict(frame).tolist()
