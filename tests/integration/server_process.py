"""A live Shipyard server process: real uvicorn on 127.0.0.1, a free port, health-checked."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

_SERVE = (
    "import sys\n"
    "from shipyard.server import serve\n"
    "serve(host='127.0.0.1', port=int(sys.argv[1]), workers=int(sys.argv[2]),\n"
    "      tracking_uri=sys.argv[3], artifact_uri=sys.argv[4], log_level='warning')\n"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(home: Path) -> dict[str, str]:
    """The environment of a child process: no developer SHIPYARD_* settings leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_") or k == "SHIPYARD_TEST_PG"}
    env.update(
        SHIPYARD_HOME=str(home),
        SHIPYARD_SYSTEM_METRICS="false",
        SHIPYARD_CONFIG=str(home / "absent.toml"),
    )
    return env


class LiveServer:
    """``shipyard.server.serve`` in a subprocess; start, kill (-9) and restart it on the same port."""

    def __init__(
        self, root: Path, tracking_uri: str | None = None, workers: int = 1, env: dict[str, str] | None = None
    ) -> None:
        self.root = root
        self.env = dict(env or {})  # extra SHIPYARD_* settings of the server
        self.port = free_port()
        self.workers = workers
        self.tracking_uri = tracking_uri or f"sqlite:///{root / 'server.db'}"
        self.artifact_uri = str(root / "artifacts")
        self.log_path = root / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> LiveServer:
        args = [str(self.port), str(self.workers), self.tracking_uri, self.artifact_uri]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _SERVE, *args],
                env={**child_env(self.root / "server-home"), **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: workers are stopped with it
            )
        self._wait_healthy(timeout)
        return self

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Server exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Server not healthy after {timeout}s:\n{self.log_path.read_text()}")

    def kill(self) -> None:
        """SIGKILL the whole server (no graceful shutdown): a crash."""
        self._signal(signal.SIGKILL, wait=10)

    def stop(self) -> None:
        """Graceful shutdown, then SIGKILL if it takes too long."""
        try:
            self._signal(signal.SIGTERM, wait=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def _signal(self, sig: signal.Signals, wait: float) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=wait)
        self.proc = None
