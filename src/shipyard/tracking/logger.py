"""Asynchronous, batched logging for runs.

A logging call validates its value and appends it to a bounded in-memory buffer
(per key: steps, timestamps, values) — well under a microsecond. One background
thread per process (``FlushService``) swaps each open run's buffer out every
``flush_interval`` seconds, or at once when a buffer fills, and writes it to the
store as one batch (one transaction). When a buffer is full the caller waits for
that write (backpressure): memory stays bounded. ``flush()`` writes everything
logged before it and returns when it is durable. If the process is killed, at
most what was logged since the last flush is lost; the store is transactional,
so it is never corrupted.

The same thread sends each open run's heartbeat (``Store.heartbeat``, one call
per store for all its runs) every ``heartbeat_interval`` seconds, the first one
at once: a run whose heartbeats stop (its process was killed) is marked
``killed`` by the store once ``run_heartbeat_timeout`` has passed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from shipyard.entities import LogBatch, MetricSeries
from shipyard.errors import StoreUnavailable

if TYPE_CHECKING:
    from shipyard.store import DefersRunStarts, Store

__all__ = ["FlushService", "RunLogger"]

log = logging.getLogger("shipyard.tracking")


class FlushService:
    """The one background thread that flushes every open run's buffer when it is due (or full).

    One thread per process rather than one per run: starting a thread costs more than a short
    run's whole bookkeeping, and hundreds of runs (a sweep) need no hundreds of threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._due: dict[RunLogger, float] = {}
        self._beats: dict[RunLogger, float] = {}  # when each run's next heartbeat is due
        self._nudge = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self, logger: RunLogger) -> None:
        with self._lock:
            now = time.monotonic()
            self._due[logger] = now + logger.interval
            if logger.heartbeat_interval > 0:
                self._beats[logger] = now  # the first heartbeat at once
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="shipyard-flusher", daemon=True)
                self._thread.start()
        self._nudge.set()

    def unregister(self, logger: RunLogger) -> None:
        with self._lock:
            self._due.pop(logger, None)
            self._beats.pop(logger, None)

    def nudge(self) -> None:
        """Wake the thread now (a buffer is full)."""
        self._nudge.set()

    def _next_wait(self) -> float | None:
        with self._lock:
            if not self._due:
                return None
            soonest = min(self._due.values())
            if self._beats:
                soonest = min(soonest, min(self._beats.values()))
            return max(0.0, soonest - time.monotonic())

    def _loop(self) -> None:
        while True:
            self._nudge.wait(self._next_wait())
            self._nudge.clear()
            now = time.monotonic()
            with self._lock:
                ready = [lg for lg, due in self._due.items() if due <= now or lg.urgent]
            for logger in ready:
                logger.background_flush()
                with self._lock:
                    if logger in self._due:
                        self._due[logger] = time.monotonic() + logger.interval
            self._send_heartbeats()

    def _send_heartbeats(self) -> None:
        """One ``heartbeat`` call per store for its runs whose heartbeat is due; never raises."""
        now = time.monotonic()
        with self._lock:
            due = [lg for lg, at in self._beats.items() if at <= now]
            for logger in due:
                self._beats[logger] = now + logger.heartbeat_interval
        groups: dict[int, tuple[Store, list[str]]] = {}
        for logger in due:
            groups.setdefault(id(logger.store), (logger.store, []))[1].append(logger.run_id)
        for store, run_ids in groups.values():
            try:
                store.heartbeat(run_ids)
            except Exception as exc:  # a missed heartbeat is retried next interval
                log.debug("Shipyard could not send the heartbeat of runs %s: %s", run_ids, exc)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._due = {}
        self._beats = {}
        self._nudge = threading.Event()
        self._thread = None


SERVICE = FlushService()
os.register_at_fork(after_in_child=SERVICE._after_fork)


class RunLogger:
    """Bounded buffer for one run's metrics, params and tags, flushed by :data:`SERVICE`."""

    def __init__(
        self,
        store: Store,
        run_id: str,
        flush_interval: float,
        max_buffer: int,
        service: FlushService = SERVICE,
        heartbeat_interval: float = 0.0,
    ) -> None:
        self._store = store
        self._run_id = run_id
        self.interval = max(flush_interval, 0.01)
        self.heartbeat_interval = heartbeat_interval  # 0: send none
        self._max = max(1, max_buffer)
        self._lock = threading.Lock()
        self._room = threading.Event()  # set while the buffer has room
        self._room.set()
        self._write_lock = threading.Lock()  # batches reach the store in logging order
        self._cols: dict[str, tuple[list[int], list[int], list[float]]] = {}
        self._bulk: list[MetricSeries] = []  # whole series handed over at once (log_metric_series)
        self._count = 0
        self._params: dict[str, str] = {}
        self._tags: dict[str, str] = {}
        self._pending: LogBatch | None = None  # a batch whose write failed, retried first
        self._error: BaseException | None = None
        self._closed = False
        self.urgent = False
        self.metric_batches = 0  # batches with metric points written so far
        self._service = service
        from shipyard.store import DefersRunStarts

        self._defers: DefersRunStarts | None = store if isinstance(store, DefersRunStarts) else None
        service.register(self)

    @property
    def store(self) -> Store:
        return self._store

    @property
    def run_id(self) -> str:
        return self._run_id

    # -- producer side (hot path) -------------------------------------------------------------
    def add_metric(self, key: str, value: float, step: int, timestamp: int) -> None:
        if self._count >= self._max:
            self._wait_for_room()
        with self._lock:
            cols = self._cols.get(key)
            if cols is None:
                cols = self._cols[key] = ([], [], [])
            cols[0].append(step)
            cols[1].append(timestamp)
            cols[2].append(value)
            self._count += 1

    def add_metrics(self, rows: list[tuple[str, float, int, int]]) -> None:
        if self._count and self._count + len(rows) > self._max:
            self._wait_for_room()
        with self._lock:
            for key, value, step, timestamp in rows:
                cols = self._cols.get(key)
                if cols is None:
                    cols = self._cols[key] = ([], [], [])
                cols[0].append(step)
                cols[1].append(timestamp)
                cols[2].append(value)
            self._count += len(rows)

    def add_series(self, series: MetricSeries) -> None:
        if self._count and self._count + len(series) > self._max:
            self._wait_for_room()
        with self._lock:
            self._bulk.append(series)
            self._count += len(series)

    def add_params(self, params: dict[str, str]) -> None:
        with self._lock:
            self._params.update(params)

    def add_tags(self, tags: dict[str, str]) -> None:
        with self._lock:
            self._tags.update(tags)

    def _wait_for_room(self) -> None:
        # The count is read without the lock: with several producer threads the buffer can
        # overshoot by at most one call per thread, which keeps memory bounded all the same.
        while self._count >= self._max and not self._closed:
            self._room.clear()
            self.urgent = True
            self._service.nudge()
            self._room.wait(0.5)

    # -- consumer side ------------------------------------------------------------------------
    def _swap(self) -> LogBatch:
        with self._lock:
            series = [MetricSeries(k, c[0], c[1], c[2]) for k, c in self._cols.items()]
            batch = LogBatch(params=self._params, tags=self._tags, series=series + self._bulk)
            self._cols, self._bulk, self._params, self._tags, self._count = {}, [], {}, {}, 0
            self.urgent = False
        self._room.set()
        return batch

    def _write(self, finish: Callable[[LogBatch], None] | None = None) -> None:
        """Write the failed batch (if any), then the buffer; ``finish`` writes the last batch."""
        with self._write_lock:
            if finish is None and self._defers is not None:
                # The run's start, if its store held it back, is due now (with the first flush).
                self._defers.send_deferred([self._run_id])
            if self._pending is not None:
                self._store.log_batch(self._run_id, self._pending)
                self._pending = None
            batch = self._swap()
            if finish is not None:
                try:
                    finish(batch)
                except StoreUnavailable:
                    self._pending = batch
                    raise
                self.metric_batches += bool(batch.series)
                return
            if not batch:
                return
            try:
                self._store.log_batch(self._run_id, batch)
            except StoreUnavailable:
                self._pending = batch  # transient: retried before the next batch
                raise
            self.metric_batches += bool(batch.series)

    def background_flush(self) -> None:
        """Called by the flush service: never raises (the user's training must go on)."""
        if self._closed:
            return
        try:
            self._write()
        except Exception as exc:  # surfaced on flush()/close() unless transient
            if not isinstance(exc, StoreUnavailable):
                self._error = exc
            log.warning("Shipyard could not write run %s yet: %s", self._run_id, exc)

    def flush(self) -> None:
        """Write everything logged so far; return when it is durable."""
        self._write()
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def close(self, finish: Callable[[LogBatch], None] | None = None) -> None:
        """Final write; ``finish`` receives the last batch (e.g. to write it with the run's end)."""
        self._service.unregister(self)
        try:
            self._write(finish)
            self._raise_error()
        finally:
            self._closed = True
            self._room.set()
