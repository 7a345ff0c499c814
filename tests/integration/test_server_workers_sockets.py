"""A real ``shipyard server --workers 2``: each worker accepts on a socket of its own, so keep-alive
connections opened together are spread across both workers (uvicorn's shared socket gave one worker
all 20 of them in most trials); a worker killed with SIGKILL is replaced while the server keeps
answering; SIGTERM to the server ends every worker, and so does killing it outright; a worker that
cannot start stops the server.

Which worker holds a connection is read from the operating system (psutil: the established sockets
of each process), the same thing ``ss -tnp`` shows.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, closing
from pathlib import Path

import psutil
import pytest
from server_process import LiveServer, child_env, free_port

from polling_helpers import wait_until
from shipyard.wire.workers import REUSEPORT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not REUSEPORT, reason="a socket per worker needs SO_REUSEPORT (Linux)"),
]

CONNECTIONS = 40


def _workers(server: LiveServer) -> dict[int, psutil.Process]:
    """The server's processes listening on its port (the workers), by pid."""
    assert server.proc is not None
    found = {}
    for proc in psutil.Process(server.proc.pid).children(recursive=True):
        try:
            if any(
                c.status == psutil.CONN_LISTEN and c.laddr.port == server.port
                for c in proc.net_connections(kind="tcp")
            ):
                found[proc.pid] = proc
        except psutil.NoSuchProcess:
            continue
    return found


def _held(proc: psutil.Process, port: int) -> int:
    """How many established connections to ``port`` this process holds."""
    return sum(
        1
        for c in proc.net_connections(kind="tcp")
        if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
    )


def _open_connections(stack: ExitStack, port: int, n: int) -> None:
    """``n`` keep-alive connections opened together, then one request each (all answered, kept open)."""
    connections = [
        stack.enter_context(closing(http.client.HTTPConnection("127.0.0.1", port))) for _ in range(n)
    ]
    for conn in connections:
        conn.connect()
    for conn in connections:
        conn.request("GET", "/health")
        answer = conn.getresponse()
        answer.read()
        assert answer.status == 200
        assert not answer.will_close


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path, workers=2).start()
    try:
        wait_until(lambda: len(_workers(live)) == 2, "two workers listening on the port", timeout=60)
        yield live
    finally:
        live.stop()


def _split(server: LiveServer) -> list[int]:
    workers = _workers(server)
    return sorted((_held(p, server.port) for p in workers.values()), reverse=True)


def test_keepalive_connections_opened_together_are_spread_over_both_workers(server: LiveServer) -> None:
    with ExitStack() as stack:
        _open_connections(stack, server.port, CONNECTIONS)
        split = wait_until(
            lambda: (s := _split(server)) and sum(s) == CONNECTIONS and s,
            lambda: f"all {CONNECTIONS} connections held by the workers: {_split(server)}",
        )
    assert len(split) == 2
    # The kernel hashes each connection to one of the two sockets: fewer than a quarter on one worker
    # has a chance of about 1 in 5,000 (binomial, 40 draws); a shared socket gave 40/0 or close to it.
    assert min(split) >= CONNECTIONS // 4, f"connections per worker: {split}"


def test_a_worker_killed_with_sigkill_is_replaced_and_the_server_keeps_answering(server: LiveServer) -> None:
    before = _workers(server)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    after = wait_until(
        lambda: (w := _workers(server)) and len(w) == 2 and victim not in w and w,
        lambda: f"a new worker in place of {victim}: {sorted(_workers(server))}",
        timeout=60,
    )
    assert set(after) - set(before), "the same workers: none was started"
    with ExitStack() as stack:
        _open_connections(stack, server.port, CONNECTIONS)  # every one answered, whichever socket
        split = wait_until(
            lambda: (s := _split(server)) and sum(s) == CONNECTIONS and s,
            lambda: f"all {CONNECTIONS} connections held by the workers: {_split(server)}",
        )
    assert min(split) > 0, f"the replacement serves no connection: {split}"


def test_sigterm_to_the_server_ends_every_worker(server: LiveServer) -> None:
    assert server.proc is not None
    workers = list(_workers(server))
    os.kill(server.proc.pid, signal.SIGTERM)  # the server process alone, not its process group
    assert server.proc.wait(timeout=30) == 0
    server.proc = None
    for pid in workers:
        assert not psutil.pid_exists(pid), f"worker {pid} outlived the server"


def test_workers_end_with_the_server_killed_outright(server: LiveServer) -> None:
    assert server.proc is not None
    workers = list(_workers(server))
    os.kill(server.proc.pid, signal.SIGKILL)  # the server process alone: no shutdown of its own
    server.proc.wait(timeout=30)
    server.proc = None
    wait_until(
        lambda: not any(psutil.pid_exists(pid) for pid in workers),
        lambda: f"workers still running: {[p for p in workers if psutil.pid_exists(p)]}",
        timeout=30,
    )


_RUN = (
    "import sys\n"
    "from shipyard.wire.workers import run_workers\n"
    "run_workers(sys.argv[1], 2, port=int(sys.argv[2]))\n"
)


def test_a_worker_that_cannot_start_stops_the_server(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _RUN, "no_such_module_here:app", str(free_port())],
        env=child_env(tmp_path),
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 3, proc.stderr.decode(errors="replace")[-2000:]


def test_a_port_taken_by_another_program_stops_the_server_at_once(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-c", _RUN, "shipyard.server.app:app_from_env", str(port)],
            env=child_env(tmp_path),
            capture_output=True,
            timeout=60,
        )
    assert proc.returncode == 3, proc.stderr.decode(errors="replace")[-2000:]
    assert b"Cannot bind" in proc.stderr
