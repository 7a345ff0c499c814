"""A real uvicorn server keeps its connections usable: after a 500, and against a body that never comes.

The server runs in a subprocess (the tracking app plus one route that raises), so what is tested is
what uvicorn does with the connection, which an in-process transport cannot show.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_process import child_env, free_port

from shipyard.config import load_settings
from shipyard.entities import LogBatch, RunCreate
from shipyard.errors import ShipyardError
from shipyard.store.rest import RestStore

pytestmark = pytest.mark.integration

BODY_READ_TIMEOUT = 1.0

_SERVE = """
import sys
import uvicorn
from shipyard.config import load_settings
from shipyard.server import create_app

app = create_app(load_settings())

@app.get("/boom")
def boom() -> None:
    raise RuntimeError("a bug in a route")

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """The tracking server with a ``/boom`` route, on a free port; its URL."""
    port = free_port()
    env = child_env(tmp_path / "home")
    env.update(
        SHIPYARD_TRACKING_URI=f"sqlite:///{tmp_path / 'server.db'}",
        SHIPYARD_ARTIFACT_URI=str(tmp_path / "artifacts"),
        SHIPYARD_BODY_READ_TIMEOUT=str(BODY_READ_TIMEOUT),
    )
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVE, str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, tmp_path / "server.log")
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
        log.close()


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Server exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"Server not healthy after {timeout}s:\n{log.read_text()}")


def _local_port(response: httpx.Response) -> int:
    """The client-side port of the connection that carried ``response``."""
    stream = response.extensions["network_stream"]
    return int(stream.get_extra_info("client_addr")[1])


def test_after_a_500_the_next_request_uses_the_same_connection(server: str) -> None:
    with httpx.Client(base_url=server, timeout=10) as http:
        first = http.get("/health")
        crash = http.get("/boom")
        assert crash.status_code == 500
        assert crash.json()["error"]["code"] == "internal_error"
        assert "a bug in a route" not in crash.text  # the message names the class, never the text
        after = http.get("/health")
        assert after.status_code == 200
        assert _local_port(first) == _local_port(crash) == _local_port(after)


def test_the_sdk_does_not_spool_after_a_500(server: str, tmp_path: Path) -> None:
    store = RestStore(server, load_settings(tracking_uri=server, home=str(tmp_path / "client")))
    try:
        spec = RunCreate(run_id="r1", experiment_name="e", name="", start_time=1, user="u")
        store.create_run(spec)
        with pytest.raises(ShipyardError, match="RuntimeError"):
            store._request("GET", "/boom")
        store.log_batch("r1", LogBatch(params={"lr": "0.1"}))
        assert not store.spooling
        assert store.get_run("r1").params == {"lr": "0.1"}
    finally:
        store.close()


def _raw_exchange(url: str, request: bytes, timeout: float) -> tuple[bytes, float]:
    """Send ``request`` on a fresh socket; what came back before the server closed, and when."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        started = time.monotonic()
        answer = b""
        while chunk := sock.recv(65536):  # until the server closes the connection
            answer += chunk
        return answer, time.monotonic() - started


def test_a_body_shorter_than_its_content_length_is_answered_408(server: str) -> None:
    body = b'{"name": "x"}'
    request = (
        b"POST /api/v1/experiments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n" + body
    )
    answer, waited = _raw_exchange(server, request, timeout=BODY_READ_TIMEOUT + 20)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"body_read_timeout" in answer
    assert BODY_READ_TIMEOUT * 0.9 <= waited < BODY_READ_TIMEOUT + 10
    assert httpx.get(f"{server}/health").status_code == 200  # and the server still answers


def test_a_stalled_blob_upload_is_answered_408(server: str) -> None:
    digest = "0" * 64
    request = (
        f"PUT /api/v1/blobs/{digest} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n".encode()
        + b"partial"
    )
    answer, _ = _raw_exchange(server, request, timeout=BODY_READ_TIMEOUT + 20)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
