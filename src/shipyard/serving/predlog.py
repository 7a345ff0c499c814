"""The prediction log: every request and answer, appended asynchronously to partitioned Parquet.

The server calls :func:`open_prediction_log` in its lifespan, ``append`` on the request path and ``close``
on shutdown; monitoring reads the log back with :func:`read_prediction_log`. Layout under the root
(``spec.path``, else ``<artifact_uri>/predictions-log``; a local folder or any fsspec URL)::

    <root>/predictions/deployment=<name>/date=YYYY-MM-DD/hour=HH/part-<epoch ms>-<uuid>.parquet
    <root>/feedback/deployment=<name>/date=YYYY-MM-DD/hour=HH/part-<epoch ms>-<uuid>.parquet

Schema (:data:`PREDICTION_SCHEMA`, fixed; zstd):

==================  =====================  ====================================================
column              Arrow type             meaning
==================  =====================  ====================================================
request_id          string                 the ``x-request-id`` (a shadow row repeats it)
ts                  timestamp[ms, UTC]     callers pass epoch ms (int); missing → flush time
deployment          string                 defaults to the sink's deployment
variant, model      string                 e.g. ``main``, ``models:/churn/3``
model_version       string
shadow              bool                   True for a shadow variant's (never returned) answer
latency_ms          float64
n_rows              int32                  rows in the request
inputs, outputs     large_string           JSON text (the field metadata ``encoding`` says how bytes,
                                           decimals and other non-JSON values are written:
                                           ``shipyard.serving.logjson.ENCODING``)
status              int16                  the HTTP status answered
==================  =====================  ====================================================

Feedback (:data:`FEEDBACK_SCHEMA`): ``request_id`` string, ``ts``, ``deployment`` string, ``label``
large_string (JSON text), ``row`` int32 (which row of the request, or null), ``key`` string (a user key
naming the predicted row instead of a request id, from ``sy.log_feedback(keys=...)``; null otherwise; files
written before it existed read back with nulls). ``inputs``, ``outputs`` and
``label`` may be given as JSON text or as objects, which the writer thread encodes off the request path, in
batches (do not mutate them after ``append``): ``inputs`` as records (a request's rows as sent: a records
list, a ``{"columns": ...}`` body or a frame), ``outputs`` and ``label`` as JSON (numpy arrays, Series and
frames included), all in ``shipyard.serving.logjson``'s encoding, which never loses a row.
The hour partition is the row's ``ts`` hour in UTC.

How it works and what it promises:

- **Off the request path.** ``append`` takes a lock, extends a list and returns (0.3 µs per call measured,
  ``bench/bench_predlog.py``); ``offer`` does the same but never waits for room, so an event loop can call
  it. A writer thread encodes and flushes every ``flush_interval_s``, or sooner when a quarter of
  ``max_buffered_rows`` is waiting, writing ONE Parquet file per flush per hour partition.
- **Bounded memory; policy when the sink is slow** (``on_full``): at most ``max_buffered_rows`` rows per
  kind are held (waiting, being written or waiting for a retry). ``block`` (default) applies backpressure:
  ``append`` waits until the writer has made room and never drops a row (a request waits rather than
  being forgotten; a store that stays down therefore stalls the callers). ``drop`` never waits: rows that
  do not fit are counted in ``stats()["dropped"]`` (``feedback_dropped``) and discarded.
- **Never a partial file.** On a local disk a part is written to ``.part-….parquet.tmp`` in its
  directory, fsynced and renamed; on object stores and other fsspec filesystems it is one PUT. A kill -9
  leaves at most a dot-temp file, which readers skip (they read only ``part-*.parquet``). A kill -9 loses
  the rows not yet written: those of the last flush interval while the writer keeps up (it writes
  ~400,000 rows/s), at most ``max_buffered_rows`` when it does not (a slow or failing store).
- **Exactly once.** A batch gets its file name when it is cut, and keeps it on every retry, so a write that
  failed after the bytes landed is overwritten, not duplicated. A failed write keeps its rows, counts in
  ``stats()["errors"]`` and is retried with exponential backoff (from ``flush_interval_s`` up to 30 s); the
  writer thread never raises into the server. Rows that cannot be converted to the schema (say a string
  ``status``) are skipped, logged and counted in ``stats()["invalid"]``.
- **Shutdown.** ``close()`` writes everything, joins the writer and is idempotent; ``append`` after it raises
  ``InvalidState``. Nothing global is registered: the server's lifespan calls ``close()``. As a safety net
  the (non-daemon) writer also makes a final flush when the main thread has finished. If the store is
  still failing when ``close(timeout)`` runs out, the remaining rows are counted in ``stats()["lost"]``.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from shipyard.errors import IntegrityError, InvalidInput, InvalidState
from shipyard.serving.deployment import PredictionLogSpec
from shipyard.serving.logjson import ENCODING, inputs_json, safe_json

__all__ = [
    "FEEDBACK_SCHEMA",
    "PREDICTION_SCHEMA",
    "NullPredictionLog",
    "ParquetPredictionLog",
    "PredictionSink",
    "open_prediction_log",
    "prediction_log_root",
    "read_prediction_log",
]

log = logging.getLogger("shipyard.serving.predlog")

Kind = Literal["predictions", "feedback"]
PutFunction = Callable[[str, bytes], None]

PREDICTION_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string()),
        pa.field("ts", pa.timestamp("ms", tz="UTC")),
        pa.field("deployment", pa.string()),
        pa.field("variant", pa.string()),
        pa.field("model", pa.string()),
        pa.field("model_version", pa.string()),
        pa.field("shadow", pa.bool_()),
        pa.field("latency_ms", pa.float64()),
        pa.field("n_rows", pa.int32()),
        pa.field("inputs", pa.large_string(), metadata={"encoding": ENCODING}),
        pa.field("outputs", pa.large_string(), metadata={"encoding": ENCODING}),
        pa.field("status", pa.int16()),
    ]
)
FEEDBACK_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string()),
        pa.field("ts", pa.timestamp("ms", tz="UTC")),
        pa.field("deployment", pa.string()),
        pa.field("label", pa.large_string(), metadata={"encoding": ENCODING}),
        pa.field("row", pa.int32()),
        pa.field("key", pa.string()),
    ]
)
_SCHEMAS: dict[str, pa.Schema] = {"predictions": PREDICTION_SCHEMA, "feedback": FEEDBACK_SCHEMA}
_JSON_FIELDS = frozenset({"inputs", "outputs", "label"})
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HOUR_MS = 3_600_000
_MAX_BACKOFF_S = 30.0
_WATCH_S = 0.5  # how often an idle writer checks that the main thread is still alive
_EXIT_TIMEOUT_S = 30.0  # the final flush when the program ends without close()
_CHUNK_ROWS = 2_048  # rows per Arrow conversion call (see _to_table)
_CONVERSION_ERRORS = (pa.ArrowException, TypeError, ValueError, OverflowError)
# Columns with few distinct values get Parquet dictionaries; request ids, inputs, outputs and labels are
# nearly all distinct, and a dictionary of them is work for a larger file (2.83 → 2.44 µs per row, 4%
# smaller files, in-process, 3,000 one-row predictions)
_DICTIONARY_FIELDS = frozenset({"deployment", "variant", "model", "model_version", "n_rows", "status"})


class PredictionSink(Protocol):
    """Where the server sends one row per answered request (and per shadow answer), and feedback rows."""

    def append(self, rows: list[dict[str, Any]]) -> None: ...

    def offer(self, rows: list[dict[str, Any]]) -> bool: ...

    def append_feedback(self, rows: list[dict[str, Any]]) -> None: ...

    def stats(self) -> dict[str, int]: ...

    def close(self) -> None: ...


def prediction_log_root(spec: PredictionLogSpec, artifact_uri: str) -> str:
    """The folder or URL a log lives under: ``spec.path``, else ``<artifact_uri>/predictions-log``.

    Example:
        >>> prediction_log_root(PredictionLogSpec(), "s3://bucket/artifacts")
        's3://bucket/artifacts/predictions-log'
    """
    return (spec.path or f"{artifact_uri.rstrip('/')}/predictions-log").rstrip("/")


class NullPredictionLog:
    """The sink of a deployment whose prediction log is disabled: accepts rows and forgets them.

    Example:
        >>> sink = NullPredictionLog()
        >>> sink.append([{"request_id": "r1"}])
        >>> sink.stats()["written"]
        0
    """

    def append(self, rows: list[dict[str, Any]]) -> None:
        return None

    def offer(self, rows: list[dict[str, Any]]) -> bool:
        return True

    def append_feedback(self, rows: list[dict[str, Any]]) -> None:
        return None

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def stats(self) -> dict[str, int]:
        return dict.fromkeys(_STAT_KEYS, 0)

    def close(self, timeout: float | None = None) -> None:
        return None


_STAT_KEYS = (
    "buffered",
    "written",
    "dropped",
    "flushes",
    "files",
    "errors",
    "invalid",
    "lost",
    "feedback_buffered",
    "feedback_written",
    "feedback_dropped",
)


@dataclass
class _Channel:
    """One kind of rows (predictions or feedback): its buffer and counters. Guarded by the sink's lock."""

    kind: Kind
    schema: pa.Schema
    rows: list[dict[str, Any]] = field(default_factory=list)
    buffered: int = 0  # waiting + being written + waiting for a retry: what memory is bounded by
    accepted: int = 0
    written: int = 0
    dropped: int = 0
    settled: int = 0  # written + invalid + lost: rows the writer is done with


@dataclass
class _Batch:
    """Rows bound for one part file; its name is fixed when cut, so a retry overwrites, never duplicates."""

    channel: _Channel
    path: str
    table: pa.Table


@dataclass
class _Outcome:
    """What one writer cycle did, applied to the counters under the lock."""

    written: dict[str, int] = field(default_factory=dict)
    settled: dict[str, int] = field(default_factory=dict)
    invalid: int = 0
    files: int = 0
    errors: int = 0
    flushes: int = 0
    lost: int = 0

    def add(self, channel: _Channel, written: int, settled: int) -> None:
        self.written[channel.kind] = self.written.get(channel.kind, 0) + written
        self.settled[channel.kind] = self.settled.get(channel.kind, 0) + settled


class ParquetPredictionLog:
    """An asynchronous, bounded, exactly-once prediction log in partitioned Parquet (see the module docs).

    Args:
        root: a local folder or fsspec URL; parts go under ``<root>/<kind>/deployment=<name>/…``.
        deployment: the deployment name (the ``deployment=`` partition, and the default of the column).
        flush_interval_s: how often the writer flushes.
        max_buffered_rows: the most rows held in memory per kind.
        on_full: ``"block"`` (backpressure, never drop) or ``"drop"`` (count and discard).
        put: writes one whole file (path, bytes); the default is atomic for the root's filesystem. Tests wrap
            it to make the store slow or failing.

    Example:
        >>> sink = ParquetPredictionLog("memory://doc-predlog", deployment="churn", flush_interval_s=0.05)
        >>> sink.append([{"request_id": "r1", "ts": 1_764_000_000_000, "status": 200}])
        >>> sink.close()
        >>> read_prediction_log("memory://doc-predlog")["request_id"].tolist()
        ['r1']
    """

    def __init__(
        self,
        root: str,
        *,
        deployment: str,
        flush_interval_s: float = 1.0,
        max_buffered_rows: int = 100_000,
        on_full: Literal["block", "drop"] = "block",
        put: PutFunction | None = None,
    ) -> None:
        if not _NAME_RE.match(deployment):
            raise InvalidInput(
                f"Deployment name {deployment!r} cannot name a prediction-log partition: use letters, "
                "digits, '_', '.' and '-' (at most 64, starting with a letter or digit)"
            )
        if on_full not in ("block", "drop"):
            raise InvalidInput(f"on_full must be 'block' or 'drop', not {on_full!r}")
        if flush_interval_s <= 0 or max_buffered_rows < 1:
            raise InvalidInput("flush_interval_s must be > 0 and max_buffered_rows >= 1")
        try:
            self._fs, path = fsspec.core.url_to_fs(root)
        except (ImportError, ValueError) as exc:
            raise InvalidInput(f"Cannot open the prediction log at {root!r}: {exc}") from exc
        self.root = root
        self.deployment = deployment
        self._base = path.rstrip("/")
        self._interval = flush_interval_s
        self._max = max_buffered_rows
        self._kick_at = max(1, max_buffered_rows // 4)
        self._drop = on_full == "drop"
        self._put: PutFunction = put or _default_put(self._fs)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the writer waits here for work
        self._space = threading.Condition(self._lock)  # blocked appenders and flush() wait here
        self._predictions = _Channel("predictions", PREDICTION_SCHEMA)
        self._feedback = _Channel("feedback", FEEDBACK_SCHEMA)
        self._pending: list[_Batch] = []  # cut batches whose write failed, oldest first (writer-only)
        self._counters = dict.fromkeys(("flushes", "files", "errors", "invalid", "lost"), 0)
        self._kicked = False
        self._closing = False
        self._failures = 0
        self._close_deadline = float("inf")
        self._thread = threading.Thread(target=self._run, name=f"shipyard-predlog-{deployment}", daemon=False)
        self._thread.start()

    # ---- request path -------------------------------------------------------------------------------

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Queue prediction rows for the log; returns at once unless the buffer is full (see ``on_full``).

        The sink keeps the dicts themselves (no copy): do not change them after the call.
        """
        self._append(self._predictions, rows, wait=True)

    def offer(self, rows: list[dict[str, Any]]) -> bool:
        """Queue prediction rows if they fit now; False (nothing queued, nothing dropped) if they do not.

        Never waits for room, so an event loop can call it: on False, hand the rows to :meth:`append` in a
        worker thread, where the ``on_full`` policy applies.

        Example:
            >>> sink = ParquetPredictionLog("memory://doc-offer", deployment="churn", max_buffered_rows=1)
            >>> sink.offer([{"request_id": "r1"}]), sink.offer([{"request_id": "r2"}])
            (True, False)
            >>> sink.close()
        """
        return self._append(self._predictions, rows, wait=False)

    def append_feedback(self, rows: list[dict[str, Any]]) -> None:
        """Queue feedback rows (``request_id``, ``ts``, ``label``, ``row``) for the log."""
        self._append(self._feedback, rows, wait=True)

    def _append(self, channel: _Channel, rows: list[dict[str, Any]], *, wait: bool) -> bool:
        n = len(rows)
        if not n:
            return True
        with self._lock:
            if self._closing:
                raise self._closed_error()
            if channel.buffered + n > self._max and channel.buffered:
                if not wait:
                    return False
                if self._drop:
                    channel.dropped += n
                    return True
                self._wait_for_room(channel, n)
            channel.rows.extend(rows)
            channel.buffered += n
            channel.accepted += n
            if len(channel.rows) >= self._kick_at and not self._kicked:
                self._kicked = True
                self._wake.notify()
        return True

    def _wait_for_room(self, channel: _Channel, n: int) -> None:
        # a single append larger than the whole buffer is admitted once the buffer is empty
        while channel.buffered + n > self._max and channel.buffered:
            if not self._kicked:
                self._kicked = True
                self._wake.notify()
            self._space.wait()
            if self._closing:
                raise self._closed_error()

    def _closed_error(self) -> InvalidState:
        return InvalidState(
            f"The prediction log of deployment '{self.deployment}' at {self.root} is closed; "
            "rows cannot be appended after close() (open a new log with open_prediction_log)"
        )

    # ---- control ------------------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counters: rows buffered, written, dropped (per kind), flushes, files, errors, invalid, lost."""
        with self._lock:
            p, f = self._predictions, self._feedback
            return {
                "buffered": p.buffered,
                "written": p.written,
                "dropped": p.dropped,
                **self._counters,
                "feedback_buffered": f.buffered,
                "feedback_written": f.written,
                "feedback_dropped": f.dropped,
            }

    def flush(self, timeout: float | None = None) -> bool:
        """Write every row appended so far now; True once they are written, False if ``timeout`` ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            targets = [(ch, ch.accepted) for ch in (self._predictions, self._feedback)]
            self._kicked = True
            self._wake.notify()
            while any(ch.settled < target for ch, target in targets):
                if not self._thread.is_alive():
                    return False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._space.wait(_WATCH_S if left is None else min(left, _WATCH_S))
            return True

    def close(self, timeout: float | None = 30.0) -> None:
        """Write everything and stop the writer; idempotent. Rows still failing after ``timeout`` are lost."""
        with self._lock:
            if not self._closing:
                self._closing = True
                if timeout is not None:
                    self._close_deadline = time.monotonic() + timeout
                self._wake.notify()
                self._space.notify_all()  # blocked appenders give up with InvalidState
        if threading.current_thread() is not self._thread:
            self._thread.join()

    # ---- writer thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        next_flush = time.monotonic() + self._interval
        while True:
            with self._lock:
                self._wait_for_work(next_flush)
                taken = [(ch, ch.rows) for ch in (self._predictions, self._feedback)]
                for ch in (self._predictions, self._feedback):
                    ch.rows = []
                self._kicked = False
                closing = self._closing
            outcome = _Outcome()
            try:
                self._cycle(taken, outcome)
            except Exception:  # a bug here must not kill the writer and stall the server
                log.exception("Prediction log writer cycle failed at %s", self.root)
            finished = closing and not self._pending
            if closing and self._pending and time.monotonic() >= self._close_deadline:
                self._give_up(outcome)
                finished = True
            self._settle(outcome)
            if finished:
                return
            next_flush = time.monotonic() + self._backoff()

    def _wait_for_work(self, next_flush: float) -> None:
        while True:
            now = time.monotonic()
            if self._closing:
                if not self._pending or now >= min(next_flush, self._close_deadline):
                    return
            elif now >= next_flush or (self._kicked and not self._pending):
                return
            elif not threading.main_thread().is_alive():
                # the program is ending without close(): a final flush (bounded), then stop
                self._closing = True
                self._close_deadline = now + _EXIT_TIMEOUT_S
                continue
            self._wake.wait(min(next_flush - now, self._close_deadline - now, _WATCH_S))

    def _backoff(self) -> float:
        if not self._failures:
            return self._interval
        return float(min(_MAX_BACKOFF_S, self._interval * 2 ** min(self._failures - 1, 16)))

    def _cycle(self, taken: Sequence[tuple[_Channel, list[dict[str, Any]]]], outcome: _Outcome) -> None:
        now_ms = time.time_ns() // 1_000_000
        for channel, rows in taken:
            if not rows:
                continue
            try:
                self._pending.extend(self._cut(channel, rows, now_ms, outcome))
            except Exception:  # unforeseen input: count the rows as invalid rather than hold them forever
                log.exception("Prediction log could not convert %d %s row(s)", len(rows), channel.kind)
                outcome.invalid += len(rows)
                outcome.add(channel, 0, len(rows))
        files_before = outcome.files
        self._write_pending(outcome)
        outcome.flushes += int(outcome.files > files_before)

    def _write_pending(self, outcome: _Outcome) -> None:
        """Write the cut batches in order; stop at the first failure (the store is likely down)."""
        while self._pending:
            batch = self._pending[0]
            try:
                self._put(batch.path, _serialize(batch.table))
            except Exception as exc:  # any fsspec/OS error: keep the batch (and its name), retry later
                outcome.errors += 1
                self._failures += 1
                if self._failures == 1 or self._closing:
                    log.warning("Prediction log write to %s failed (will retry): %s", batch.path, exc)
                return
            self._pending.pop(0)
            if self._failures:
                log.warning("Prediction log writes to %s work again", self.root)
            self._failures = 0
            outcome.files += 1
            outcome.add(batch.channel, batch.table.num_rows, batch.table.num_rows)

    def _cut(
        self, channel: _Channel, rows: list[dict[str, Any]], now_ms: int, outcome: _Outcome
    ) -> list[_Batch]:
        table, ts, bad = _to_table(rows, channel.schema, self.deployment, now_ms)
        if bad:
            outcome.invalid += bad
            outcome.add(channel, 0, bad)
            log.warning("Prediction log skipped %d %s row(s) that do not fit its schema", bad, channel.kind)
        hours = [t // _HOUR_MS for t in ts]
        groups: dict[int, list[int]] = {}
        for i, hour in enumerate(hours):
            groups.setdefault(hour, []).append(i)
        stamp = f"{now_ms}"
        batches = []
        for hour, idx in sorted(groups.items()):
            part = table if len(groups) == 1 else table.take(pa.array(idx, pa.int64()))
            when = datetime.fromtimestamp(hour * 3600, UTC)
            path = (
                f"{self._base}/{channel.kind}/deployment={self.deployment}/date={when:%Y-%m-%d}/"
                f"hour={when:%H}/part-{stamp}-{uuid.uuid4().hex}.parquet"
            )
            batches.append(_Batch(channel, path, part))
        return batches

    def _give_up(self, outcome: _Outcome) -> None:
        lost = sum(b.table.num_rows for b in self._pending)
        log.error(
            "Prediction log at %s still failing at close: %d row(s) not written (see earlier warnings)",
            self.root,
            lost,
        )
        for batch in self._pending:
            outcome.add(batch.channel, 0, batch.table.num_rows)
        outcome.lost += lost
        self._pending = []

    def _settle(self, outcome: _Outcome) -> None:
        with self._lock:
            for ch in (self._predictions, self._feedback):
                ch.written += outcome.written.get(ch.kind, 0)
                settled = outcome.settled.get(ch.kind, 0)
                ch.settled += settled
                ch.buffered -= settled
            self._counters["files"] += outcome.files
            self._counters["flushes"] += outcome.flushes
            self._counters["errors"] += outcome.errors
            self._counters["invalid"] += outcome.invalid
            self._counters["lost"] += outcome.lost
            self._space.notify_all()


def _encoded(rows: list[dict[str, Any]], name: str) -> list[str | None]:
    """Column ``name`` of ``rows`` as the log's JSON text (never raises: see ``shipyard.serving.logjson``)."""
    if name == "inputs":
        return [inputs_json(r.get(name)) for r in rows]
    return [None if (v := r.get(name)) is None else safe_json(v) for r in rows]


def _columns(
    rows: list[dict[str, Any]], schema: pa.Schema, deployment: str, now_ms: int, encoded: dict[str, list[Any]]
) -> tuple[list[pa.Array], list[int]]:
    """Arrow arrays for ``rows`` (raising on a value that does not fit) and each row's ts in epoch ms.

    ``encoded`` holds the JSON columns, already text (encoding never fails, so it is done once).
    """
    ts = [now_ms if (t := r.get("ts")) is None else int(t) for r in rows]
    arrays = []
    for f in schema:
        name = f.name
        if name == "ts":
            values: list[Any] = ts
        elif name == "deployment":
            values = [r.get("deployment") or deployment for r in rows]
        elif name in encoded:
            values = encoded[name]
        else:
            values = [r.get(name) for r in rows]
        arrays.append(pa.array(values, type=f.type))
    return arrays, ts


def _to_table(
    rows: list[dict[str, Any]], schema: pa.Schema, deployment: str, now_ms: int
) -> tuple[pa.Table, list[int], int]:
    """The rows as a table of ``schema``, their ts, and how many rows were skipped as unconvertible.

    Converted in chunks: building an Arrow array from Python objects holds the GIL for the whole call, and
    short calls keep the request threads' wait for the GIL short.
    """
    batches, ts, bad = [], [], 0
    for start in range(0, len(rows), _CHUNK_ROWS):
        batch, chunk_ts, chunk_bad = _to_batch(rows[start : start + _CHUNK_ROWS], schema, deployment, now_ms)
        batches.append(batch)
        ts.extend(chunk_ts)
        bad += chunk_bad
    return pa.Table.from_batches(batches, schema=schema), ts, bad


def _to_batch(
    rows: list[dict[str, Any]], schema: pa.Schema, deployment: str, now_ms: int
) -> tuple[pa.RecordBatch, list[int], int]:
    encoded = {name: _encoded(rows, name) for name in schema.names if name in _JSON_FIELDS}
    try:
        arrays, ts = _columns(rows, schema, deployment, now_ms, encoded)
        return pa.RecordBatch.from_arrays(arrays, schema=schema), ts, 0
    except _CONVERSION_ERRORS:
        pass
    good = []
    for i, row in enumerate(rows):  # rare: find the rows that do not fit, keep the rest
        try:
            _columns([row], schema, deployment, now_ms, {k: [v[i]] for k, v in encoded.items()})
            good.append(i)
        except _CONVERSION_ERRORS:
            continue
    kept = {k: [v[i] for i in good] for k, v in encoded.items()}
    arrays, ts = _columns([rows[i] for i in good], schema, deployment, now_ms, kept)
    return pa.RecordBatch.from_arrays(arrays, schema=schema), ts, len(rows) - len(good)


def _serialize(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    dictionary = [name for name in table.column_names if name in _DICTIONARY_FIELDS]
    pq.write_table(table, sink, compression="zstd", use_dictionary=dictionary)
    return bytes(sink.getvalue().to_pybytes())


def _is_local(fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols


def _default_put(fs: Any) -> PutFunction:
    if _is_local(fs):
        return _put_local

    def put(path: str, data: bytes) -> None:
        fs.pipe_file(path, data)  # one PUT: an object appears whole or not at all

    return put


def _put_local(path: str, data: bytes) -> None:
    """Write ``data`` to a dot-temp file beside ``path``, fsync it and rename it into place."""
    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{name}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def open_prediction_log(
    spec: PredictionLogSpec, artifact_uri: str, deployment: str
) -> ParquetPredictionLog | NullPredictionLog:
    """The prediction log of ``deployment`` as ``spec`` says (a no-op sink when it is disabled).

    Call it in the server's lifespan (after any fork) and ``close()`` the sink on shutdown.

    Example:
        >>> sink = open_prediction_log(PredictionLogSpec(flush_interval_s=0.05), "memory://doc-art", "churn")
        >>> sink.append([{"request_id": "r1", "ts": 1_764_000_000_000, "variant": "main", "status": 200}])
        >>> sink.close()
        >>> read_prediction_log("memory://doc-art/predictions-log", deployment="churn")["variant"].tolist()
        ['main']
    """
    if not spec.enabled:
        return NullPredictionLog()
    return ParquetPredictionLog(
        prediction_log_root(spec, artifact_uri),
        deployment=deployment,
        flush_interval_s=spec.flush_interval_s,
        max_buffered_rows=spec.max_buffered_rows,
        on_full=spec.on_full,
    )


def read_prediction_log(
    path_or_uri: str | os.PathLike[str], *, kind: Kind = "predictions", deployment: str | None = None
) -> pd.DataFrame:
    """Every row of the log under a root (a folder or fsspec URL), oldest first, as pandas.

    Only finished parts (``part-*.parquet``) are read; temp files of a writer that died are ignored.

    Raises:
        InvalidInput: ``kind`` or ``deployment`` is not valid, or the root is not a readable URL.
        IntegrityError: a part file is not readable Parquet of the log's schema (it names the root).

    Example:
        >>> read_prediction_log("memory://nothing-logged-here").columns.tolist()[:3]
        ['request_id', 'ts', 'deployment']
    """
    if kind not in _SCHEMAS:
        raise InvalidInput(f"kind must be 'predictions' or 'feedback', not {kind!r}")
    if deployment is not None and not _NAME_RE.match(deployment):
        raise InvalidInput(f"Deployment name {deployment!r} is not a valid deployment name")
    schema = _SCHEMAS[kind]
    root = os.fspath(path_or_uri)
    try:
        fs, base = fsspec.core.url_to_fs(root)
    except (ImportError, ValueError) as exc:  # an unknown protocol, or its fsspec driver not installed
        raise InvalidInput(
            f"Cannot read the prediction log at {root!r}: {exc}; pass a folder or an fsspec URL "
            "(file://, s3://, gs://, memory://, ...) with its driver installed"
        ) from exc
    pattern = f"{base.rstrip('/')}/{kind}/deployment={deployment or '*'}/date=*/hour=*/part-*.parquet"
    # refresh: another process (a model server) adds parts; object-store drivers cache listings
    files = sorted(fs.glob(pattern, refresh=True))
    if not files:
        return schema.empty_table().to_pandas()
    filesystem = None if _is_local(fs) else fs  # pyarrow's own local filesystem is faster than a wrapper
    try:
        table = pads.dataset(files, schema=schema, format="parquet", filesystem=filesystem).to_table()
    except (pa.ArrowException, OSError) as exc:  # the writer renames only whole files: someone else's
        raise IntegrityError(
            f"The prediction log at {root!r} holds a part that is not readable Parquet of the {kind} "
            f"schema ({type(exc).__name__}: {exc}); move the damaged part-*.parquet file aside and read again"
        ) from exc
    return table.sort_by([("ts", "ascending")]).to_pandas()
