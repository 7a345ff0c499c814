"""Asynchronous, batched logging for one run.

A logging call validates its value and appends a tuple to a bounded in-memory
buffer — a few hundred nanoseconds. A background thread swaps the buffer out
every ``flush_interval`` seconds (or sooner when it fills) and writes it to the
store as one batch (one transaction). When the buffer is full the caller waits
for the flusher (backpressure): memory stays bounded. ``flush()`` writes
everything logged before it and returns when it is durable. If the process is
killed, at most what was logged since the last flush is lost; the store is
transactional, so it is never corrupted.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from shipyard.entities import LogBatch, MetricSeries
from shipyard.errors import StoreUnavailable

if TYPE_CHECKING:
    from shipyard.store import Store

__all__ = ["RunLogger"]

log = logging.getLogger("shipyard.tracking")


class RunLogger:
    """Bounded buffer + background flusher for one run's metrics, params and tags."""

    def __init__(self, store: Store, run_id: str, flush_interval: float, max_buffer: int) -> None:
        self._store = store
        self._run_id = run_id
        self._interval = max(flush_interval, 0.01)
        self._max = max(1, max_buffer)
        self._cond = threading.Condition(threading.Lock())
        self._write_lock = threading.Lock()  # batches reach the store in logging order
        # Per key: steps, timestamps, values. Columns cost one dict lookup per point at the call
        # and save the flusher from regrouping rows.
        self._cols: dict[str, tuple[list[int], list[int], list[float]]] = {}
        self._bulk: list[MetricSeries] = []  # whole series handed over at once (log_metric_series)
        self._count = 0
        self._params: dict[str, str] = {}
        self._tags: dict[str, str] = {}
        self._pending: LogBatch | None = None  # a batch whose write failed, retried first
        self._error: BaseException | None = None
        self._closed = False
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"shipyard-flush-{run_id[:8]}", daemon=True)
        self._thread.start()

    # -- producer side (hot path) -------------------------------------------------------------
    def add_metric(self, key: str, value: float, step: int, timestamp: int) -> None:
        with self._cond:
            if self._count >= self._max:
                self._wait_for_room()
            cols = self._cols.get(key)
            if cols is None:
                cols = self._cols[key] = ([], [], [])
            cols[0].append(step)
            cols[1].append(timestamp)
            cols[2].append(value)
            self._count += 1

    def add_metrics(self, rows: list[tuple[str, float, int, int]]) -> None:
        with self._cond:
            if self._count and self._count + len(rows) > self._max:
                self._wait_for_room()
            for key, value, step, timestamp in rows:
                cols = self._cols.get(key)
                if cols is None:
                    cols = self._cols[key] = ([], [], [])
                cols[0].append(step)
                cols[1].append(timestamp)
                cols[2].append(value)
            self._count += len(rows)

    def add_series(self, series: MetricSeries) -> None:
        with self._cond:
            if self._count and self._count + len(series) > self._max:
                self._wait_for_room()
            self._bulk.append(series)
            self._count += len(series)

    def add_params(self, params: dict[str, str]) -> None:
        with self._cond:
            self._params.update(params)

    def add_tags(self, tags: dict[str, str]) -> None:
        with self._cond:
            self._tags.update(tags)

    def _wait_for_room(self) -> None:
        self._wake.set()
        while self._count >= self._max and not self._closed:
            self._cond.wait(0.5)

    # -- consumer side ------------------------------------------------------------------------
    def _swap(self) -> LogBatch:
        with self._cond:
            series = [MetricSeries(k, c[0], c[1], c[2]) for k, c in self._cols.items()]
            batch = LogBatch(params=self._params, tags=self._tags, series=series + self._bulk)
            self._cols, self._bulk, self._params, self._tags, self._count = {}, [], {}, {}, 0
            self._cond.notify_all()
        return batch

    def _write(self) -> None:
        with self._write_lock:
            if self._pending is not None:
                self._store.log_batch(self._run_id, self._pending)
                self._pending = None
            batch = self._swap()
            if not batch:
                return
            try:
                self._store.log_batch(self._run_id, batch)
            except StoreUnavailable:
                self._pending = batch  # transient: retried before the next batch
                raise

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._closed:
                return
            try:
                self._write()
            except Exception as exc:  # keep the user's training alive; surface on flush/close
                if not isinstance(exc, StoreUnavailable):
                    self._error = exc
                log.warning("Shipyard could not write run %s yet: %s", self._run_id, exc)
                time.sleep(self._interval)

    def flush(self) -> None:
        """Write everything logged so far; return when it is durable."""
        self._write()
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def close(self) -> None:
        """Final flush and stop the background thread."""
        try:
            self.flush()
        finally:
            self._closed = True
            self._wake.set()
            with self._cond:
                self._cond.notify_all()
            self._thread.join(timeout=5)
