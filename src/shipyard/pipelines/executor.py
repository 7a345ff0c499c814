"""Executors: where step tasks run. ``LocalExecutor`` (default) and the protocol others implement.

The pipeline driver schedules; an executor only runs :class:`~shipyard.pipelines.runner.StepTask`
objects and hands back futures of :class:`~shipyard.pipelines.runner.StepResult`. A task carries its
inputs as blob digests, so an executor never ships data through the driver. A Ray executor
implements the same three methods (``start``, ``submit``, ``close``) with ``run_step_task`` as the
remote function and ``task.step.options.resources`` as its resource request.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import threading
from collections.abc import MutableMapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Protocol, runtime_checkable

from shipyard.pipelines.runner import StepResult, StepTask, run_step_task
from shipyard.pipelines.steps import StepOptions
from shipyard.tracking import Client

__all__ = ["Executor", "ExecutorContext", "LocalExecutor", "report_deadline"]


@dataclass
class ExecutorContext:
    """What the driver lends an executor for one pipeline run: its client and in-memory values."""

    client: Client
    memo: MutableMapping[str, Any]


@runtime_checkable
class Executor(Protocol):
    """Runs step tasks. ``alone`` is True when no other task is ready or running (a chain)."""

    name: str

    def start(self, context: ExecutorContext) -> None: ...

    def submit(self, task: StepTask, *, alone: bool) -> cf.Future[StepResult]: ...

    def close(self) -> None: ...


def report_deadline(options: StepOptions) -> float | None:
    """Seconds to wait for a timed step's report before ending its worker (None: no timeout).

    Every attempt's timeout, the backoffs between them and 120 s of slack (process start, queueing):
    the runner enforces the timeout per attempt; this bound only ends a worker that never reports.

    Example:
        >>> report_deadline(StepOptions(timeout=10.0, retries=1, retry_backoff=1.0))
        144.0
    """
    if options.timeout is None:
        return None
    backoffs = options.retry_backoff * float(2 ** (options.retries + 1))
    return options.timeout * (options.retries + 1) + backoffs + 120.0


def _in_own_process(task: StepTask, conn: Connection) -> None:
    """Entry of a timed step's process: run, send the result, exit at once (ends a stuck attempt)."""
    try:
        conn.send(run_step_task(task))
    finally:
        conn.close()
        os._exit(0)


class LocalExecutor:
    """Chains run in the driver process; parallel branches in a process pool (forkserver workers).

    A step with a ``timeout`` runs in a process of its own that is ended after it reports, so an
    attempt that overran cannot keep running. Steps a worker cannot import (defined in ``__main__``
    or inside a function) run in the driver process.

    Example:
        >>> result = my_pipeline.run(executor=LocalExecutor(max_workers=2))  # doctest: +SKIP
    """

    name = "local"

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers or max(1, min(4, os.cpu_count() or 1))
        self._ctx = multiprocessing.get_context("forkserver")
        self._pool: cf.ProcessPoolExecutor | None = None
        self._context: ExecutorContext | None = None

    def start(self, context: ExecutorContext) -> None:
        self._context = context

    def _process_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._ctx.set_forkserver_preload(["shipyard.pipelines.runner"])
            self._pool = cf.ProcessPoolExecutor(self.max_workers, mp_context=self._ctx)
        return self._pool

    def submit(self, task: StepTask, *, alone: bool) -> cf.Future[StepResult]:
        if self._context is None:
            raise RuntimeError("LocalExecutor.start() was not called")
        importable = task.step.importable
        if task.step.options.timeout is not None and importable:
            return self._own_process(task)
        if alone or not importable or self.max_workers == 1:
            future: cf.Future[StepResult] = cf.Future()
            try:
                future.set_result(run_step_task(task, self._context.client, self._context.memo))
            except BaseException as exc:
                future.set_exception(exc)
            return future
        return self._process_pool().submit(run_step_task, task)

    def _own_process(self, task: StepTask) -> cf.Future[StepResult]:
        future: cf.Future[StepResult] = cf.Future()
        receive, send = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(target=_in_own_process, args=(task, send), daemon=True)
        process.start()
        send.close()
        deadline = report_deadline(task.step.options) or 0.0

        def wait() -> None:
            try:
                if receive.poll(deadline):
                    future.set_result(receive.recv())
                else:
                    raise TimeoutError(f"Step '{task.node}' worker did not report within {deadline:.0f} s")
            except BaseException as exc:
                future.set_exception(exc)
            finally:
                receive.close()
                process.join(5)
                if process.is_alive():
                    process.kill()

        threading.Thread(target=wait, name=f"shipyard-wait-{task.node}", daemon=True).start()
        return future

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._context = None
