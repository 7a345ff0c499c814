"""A real ``shipyard serve --workers 2``: one scrape of ``/metrics``, whichever worker answers it, shows
every worker's requests (prometheus_client's multiprocess mode, in a directory made for the server and
removed when it stops)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from server_process import child_env, free_port

from polling_helpers import wait_until
from shipyard.registry.flavors import save_model_dir
from shipyard.serving.scrape import parse_metrics, scrape

pytestmark = pytest.mark.integration

_CLI = "from shipyard.cli.main import main; main()"
REQUESTS = 300
SCRAPES = 20


def _model_dir(root: Path) -> Path:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"dep_delay": rng.normal(10, 20, 400), "distance": rng.uniform(100, 3000, 400)})
    model = LogisticRegression().fit(frame, (frame["dep_delay"] > 15).astype(int))
    save_model_dir(model, root / "model", input_example=frame.head(50))
    return root / "model"


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    tmp: Path  # the server's TMPDIR: its metrics directory is made in here
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def metrics_dirs(self) -> list[Path]:
        return sorted(self.tmp.glob("shipyard-serve-metrics-*"))

    def worker_pids(self) -> list[int]:
        """The workers, from the files their metrics are in (one ``gauge_livemax`` file each)."""
        return sorted(
            int(f.stem.rsplit("_", 1)[1]) for d in self.metrics_dirs() for f in d.glob("gauge_livemax_*.db")
        )

    def workers_with(self, kind: str) -> int:
        """How many worker processes wrote metrics of this kind (``counter``, ``gauge_livemax``...)."""
        return sum(len(list(d.glob(f"{kind}_*.db"))) for d in self.metrics_dirs())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    model = _model_dir(tmp_path)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**child_env(tmp_path / "home"), "TMPDIR": str(tmp)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("OMP_NUM_THREADS", None)
    args = ["serve", str(model), "--port", str(port), "--workers", "2", "--log-level", "warning"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", _CLI, *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Server(proc, port, tmp, log)
    try:
        # each worker sets model_info once its model is loaded: both are up when both wrote it
        wait_until(
            lambda: _alive(running) and running.workers_with("gauge_livemax") == 2, "2 workers up", timeout=90
        )
        yield running
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _alive(server: Server) -> bool:
    assert server.proc.poll() is None, server.log.read_text()
    return True


async def _predict(url: str, n: int, concurrency: int) -> list[int]:
    body = {"records": [{"dep_delay": 30.0, "distance": 500.0}]}
    statuses: list[int] = []

    async def one_connection_each(count: int) -> None:
        for _ in range(count):  # a new connection per request: the workers take turns accepting
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                statuses.append((await http.post("/predict", json=body)).status_code)

    await asyncio.gather(*(one_connection_each(n // concurrency) for _ in range(concurrency)))
    return statuses


def test_every_scrape_of_a_two_worker_server_shows_the_requests_of_both(server: Server) -> None:
    statuses = asyncio.run(_predict(server.url, REQUESTS, concurrency=10))
    assert statuses == [200] * REQUESTS
    assert server.workers_with("counter") == 2, "both workers answered (else any scrape would be complete)"

    for _ in range(SCRAPES):  # each on a new connection: either worker may answer
        text = httpx.get(f"{server.url}/metrics", timeout=10).text
        found = parse_metrics(text)
        assert found.requests == {("main", "200"): REQUESTS}, text
        assert sum(1 for line in text.splitlines() if line.startswith("shipyard_serving_model_info{")) == 1
        latency = dict(found.latency["main"])
        assert latency[float("inf")] == REQUESTS
        assert _sample(text, "shipyard_serving_batch_rows_sum") == REQUESTS  # 1 row each, in some model call

    seen = scrape(server.url)  # the web UI's reader
    assert seen.requests == {("main", "200"): REQUESTS}
    assert set(seen.serving) == {"main"}


def test_the_metrics_directory_is_removed_when_the_server_stops(server: Server) -> None:
    assert len(server.metrics_dirs()) == 1
    os.killpg(server.proc.pid, signal.SIGTERM)
    server.proc.wait(timeout=30)
    assert server.metrics_dirs() == []


def _sample(text: str, name: str) -> float:
    """The sum of a metric's samples over its label sets."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def test_each_worker_gets_its_share_of_the_cores_for_openmp(server: Server) -> None:
    """Idle OpenMP threads spin: N workers with a thread per core each would fight over the cores."""
    expected = str(max(1, (os.cpu_count() or 1) // 2))
    for pid in server.worker_pids():
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert f"OMP_NUM_THREADS={expected}".encode() in environ, pid
