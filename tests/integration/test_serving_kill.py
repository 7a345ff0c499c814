"""``kill -9`` of a real ``shipyard serve`` under traffic: the prediction log stays readable, holds no
duplicates, and loses at most the last flush interval (plus a little hand-over slack)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from server_process import child_env, free_port
from sklearn.linear_model import LogisticRegression

from polling_helpers import wait_until
from shipyard.registry import core
from shipyard.serving.predlog import read_prediction_log
from shipyard.tracking import Client

pytestmark = pytest.mark.integration

FLUSH_S = 0.2
SLACK_S = 0.8  # the event loop's hand-over to the sink (5 ms batches) and one write of a part file
MIN_CHECKED = 300  # answers that must be in the log when the server is killed
_CLI = "from shipyard.cli.main import main; main()"


def _start(root: Path, env: dict[str, str], config: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with open(root / "serve.log", "wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _CLI,
                "serve",
                "--config",
                str(config),
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, (root / "serve.log").read_text()
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(f"{url}/ready", timeout=1).status_code == 200
        return False

    try:
        wait_until(ready, "the server to answer GET /ready with 200", timeout=60, interval=0.1)
    except AssertionError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc, url


def test_kill_9_of_the_server_loses_at_most_the_last_flush_interval(tmp_path: Path) -> None:
    tracking, artifacts = f"sqlite:///{tmp_path / 'reg.db'}", str(tmp_path / "artifacts")
    client = Client(tracking_uri=tracking, artifact_uri=artifacts)
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    model = LogisticRegression().fit(X, (X["a"] > 0).astype(int))
    core.register_model(model, "killme", input_example=X.head(3), client=client)
    client.close()
    config = tmp_path / "deployment.yaml"
    config.write_text(
        "name: killme\nvariants: [{name: main, model: 'models:/killme/1'}]\n"
        f"prediction_log: {{flush_interval_s: {FLUSH_S}}}\nreload: {{poll_interval_s: 0}}\n"
    )
    env = child_env(tmp_path / "home")
    env.update(SHIPYARD_TRACKING_URI=tracking, SHIPYARD_ARTIFACT_URI=artifacts)
    proc, url = _start(tmp_path, env, config)

    answered: list[tuple[str, float]] = []
    stop = threading.Event()

    def send() -> None:
        with httpx.Client(base_url=url, timeout=5) as http:
            while not stop.is_set():
                try:
                    r = http.post("/predict", json={"records": [{"a": 0.3, "b": -1.0}]})
                except httpx.TransportError:
                    return
                if r.status_code == 200:
                    answered.append((r.json()["request_id"], time.monotonic()))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    # kill once plenty of answers are older than a flush interval plus slack (the ones that must be logged)
    wait_until(
        lambda: sum(at < time.monotonic() - FLUSH_S - SLACK_S for _, at in list(answered)) >= MIN_CHECKED,
        lambda: f"{MIN_CHECKED} answers older than {FLUSH_S + SLACK_S} s (have {len(answered)} answers)",
        timeout=60,
        interval=0.05,
    )
    killed_at = time.monotonic()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    stop.set()
    for t in threads:
        t.join(timeout=10)

    log = read_prediction_log(f"{artifacts}/predictions-log", deployment="killme")  # every part readable

    assert log["request_id"].is_unique
    logged = set(log["request_id"])
    old_enough = [rid for rid, at in answered if at < killed_at - FLUSH_S - SLACK_S]
    assert len(old_enough) >= MIN_CHECKED, "the load was too small to mean anything"
    missing = [rid for rid in old_enough if rid not in logged]
    assert not missing, (
        f"{len(missing)} of {len(old_enough)} requests answered before the last flush are lost"
    )
