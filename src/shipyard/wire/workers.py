"""Several uvicorn worker processes on one port, each accepting on a listening socket of its own.

uvicorn's ``workers=N`` shares one listening socket among its workers, and whichever worker wakes first
accepts every connection waiting: 20 keep-alive connections opened together against an idle 2-worker
server were split 20/0 or 19/1 in 15 of 20 trials (``bench/bench_mlflow_api.py`` reports the split of
each raw cell). A keep-alive connection stays with the worker that accepted it, so one worker did the
work of both. Here each worker binds its own socket with ``SO_REUSEPORT`` to the same host and port, and
the kernel spreads new connections across the sockets by a hash of their addresses.

:func:`run_workers` is that supervisor: it starts the workers (``spawn``, as uvicorn does, so they
inherit the environment of the moment they start), starts another in place of one that dies (a second
later if it died within a second of starting), passes SIGINT, SIGTERM and SIGHUP on as a graceful
shutdown (uvicorn's own in each worker), and gives up when a worker fails during its startup (uvicorn's
exit code 3: a bad application would fail the same way again). Workers end with the supervisor even
when it is killed outright (``PR_SET_PDEATHSIG``), so none is left holding the port. Where
the platform has no ``SO_REUSEPORT`` it is ``uvicorn.run(..., workers=N)``. The tracking server and the
model server both run their workers through it; it imports uvicorn, so only they import it.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Iterable
from multiprocessing.connection import wait
from multiprocessing.context import SpawnProcess
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

__all__ = ["REUSEPORT", "reuseport_socket", "run_workers"]

REUSEPORT = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
"""Whether :func:`run_workers` gives each worker a socket of its own (Linux: the kernel balances them)."""

_log = logging.getLogger("uvicorn.error")
_SPAWN = multiprocessing.get_context("spawn")
_STOP_GRACE = 5.0  # seconds past uvicorn's own graceful-shutdown timeout before a worker is killed
_YOUNG = 1.0  # a worker that dies sooner after its start than this is replaced this much later
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def run_workers(app: str, workers: int, **options: Any) -> None:
    """Serve the application ``app`` (an import string) with ``workers`` processes until SIGINT or SIGTERM.

    Args:
        app: ``"module:attribute"``, as uvicorn takes it (``factory=True`` for a factory).
        workers: How many worker processes.
        **options: uvicorn's settings (``host``, ``port``, ``factory``, ``log_level``, ...).

    Raises:
        SystemExit: a worker failed while starting (uvicorn's code 3), or the port is taken.

    Example:
        >>> run_workers("shipyard.server.app:app_from_env", 2, factory=True, port=5000)  # doctest: +SKIP
    """
    if not REUSEPORT or workers <= 1 or options.get("uds") or options.get("fd") is not None:
        uvicorn.run(app, workers=workers, **options)
        return
    _Supervisor(uvicorn.Config(app, **options), workers).run()


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEPORT`` (not yet listening).

    Example:
        >>> sock = reuseport_socket("127.0.0.1", 0); sock.close()  # doctest: +SKIP
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn's Config.bind_socket
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _end_with_parent(parent: int) -> None:
    """Have the kernel send this process SIGTERM when its parent dies (the supervisor killed outright)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the supervisor's own shutdown still stops the workers
        return
    if os.getppid() != parent:  # it died before the request took effect
        sys.exit(0)


def _worker(config: uvicorn.Config, parent: int) -> None:
    """One worker process: its own listening socket on the shared port, then uvicorn until signalled."""
    _end_with_parent(parent)
    config.configure_logging()  # logging is per process, as in uvicorn's own workers
    try:
        sock = reuseport_socket(config.host, config.port)
    except OSError as exc:
        _log.error("Cannot bind %s:%d: %s", config.host, config.port, exc)
        sys.exit(STARTUP_FAILURE)
    sock.listen(config.backlog)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # a second Ctrl-C while shutting down: the parent expects the end
        pass
    finally:
        sock.close()


class _Supervisor:
    """Starts the workers, replaces any that dies, stops them all on SIGINT or SIGTERM."""

    def __init__(self, config: uvicorn.Config, workers: int) -> None:
        self.config = config
        self.count = workers
        self.workers: list[SpawnProcess] = []
        self.started: dict[int, float] = {}  # worker pid -> when it was started (monotonic)
        self.signalled = False
        self.failed = False
        self.wake_read, self.wake_write = socket.socketpair()

    def run(self) -> None:
        # Held (bound, never listening, so never handed a connection) for as long as the server runs:
        # a port in use fails here, port 0 becomes one port for all workers, and no other program can
        # take the port while a worker is being replaced.
        try:
            holder = reuseport_socket(self.config.host, self.config.port)
        except OSError as exc:
            _log.error("Cannot bind %s:%d: %s", self.config.host, self.config.port, exc)
            sys.exit(STARTUP_FAILURE)
        self.config.port = holder.getsockname()[1]
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _SIGNALS}
        _log.info(
            "Started parent process [%d], %d workers on port %d", os.getpid(), self.count, self.config.port
        )
        try:
            self.workers = [self._start() for _ in range(self.count)]
            while not self.signalled and not self.failed:
                self._watch()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            holder.close()
            self.wake_read.close()
            self.wake_write.close()
            _log.info("Stopping parent process [%d]", os.getpid())
        if self.failed:
            sys.exit(STARTUP_FAILURE)

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self.signalled = True
        self.wake_write.send(b"\0")  # wakes _watch at once

    def _start(self) -> SpawnProcess:
        process = _SPAWN.Process(target=_worker, args=(self.config, os.getpid()), name="shipyard-worker")
        process.start()
        assert process.pid is not None
        self.started[process.pid] = time.monotonic()
        return process

    def _watch(self) -> None:
        """Wait for a worker to end (or a signal); start another in place of each that ended."""
        ready = wait([p.sentinel for p in self.workers] + [self.wake_read], timeout=1.0)
        if self.wake_read in ready:
            self.wake_read.recv(64)
        if self.signalled:
            return
        for index, process in enumerate(self.workers):
            if process.sentinel not in ready:
                continue
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                _log.error("Worker [%s] failed to start; stopping the server", process.pid)
                self.failed = True
                return
            _log.warning("Worker [%s] died (exit code %s); starting another", process.pid, process.exitcode)
            lived = time.monotonic() - self.started.pop(process.pid or 0, 0.0)
            if lived < _YOUNG and wait([self.wake_read], timeout=_YOUNG):  # no busy loop of crashes
                return  # a signal came meanwhile: the dead worker stays in the list, and is not stopped
            self.workers[index] = self._start()

    def _stop_all(self) -> None:
        """SIGTERM to every worker (uvicorn shuts down gracefully), then SIGKILL to any still running."""
        for process in self.workers:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        grace = float(self.config.timeout_graceful_shutdown or 0) + _STOP_GRACE
        deadline = time.monotonic() + grace
        _join(self.workers, deadline)
        for process in self.workers:
            if process.is_alive():
                _log.warning("Worker [%s] still running after %.0fs; killing it", process.pid, grace)
                process.kill()
                process.join()


def _join(processes: Iterable[SpawnProcess], deadline: float) -> None:
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
