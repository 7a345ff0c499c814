"""Feed the prediction log from the request path without blocking the event loop.

A request's log row goes straight into the sink's buffer when the sink can take it without waiting
(``offer``: a lock and a list extend, on the event loop), with its plain inputs and outputs already JSON
text (:func:`settled`: a waiting row of lists and dicts would be walked by every full collection of the
garbage collector until written; about 2% of 1-row throughput at C=64, in paired rounds). The sink's writer
thread encodes the rest (frames), a flush at a time. Only when the sink is full (or cannot ``offer``) does
the row wait in :class:`LogFeed`'s own queue, which a background task hands to the sink's ``append`` in a
worker thread. The sink owns the durable buffer and its policy (``block``: backpressure; ``drop``: count and
drop). When the sink blocks, the feed's queue fills up to ``max_pending`` rows, and then requests wait
(``block``) or the feed drops rows and counts them (``drop``). On shutdown :meth:`LogFeed.close` hands over
everything queued, then closes the sink, which flushes it.

Encoding never loses a row: values JSON cannot hold (bytes, decimals, huge integers, ...) are written in
the encoding of ``shipyard.serving.logjson``, and a row whose encoding still fails is logged with its
``inputs``/``outputs`` marked ``$unencodable`` rather than dropped. A sink without ``offer`` gets its rows
encoded (:func:`encode_row`) in the worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from anyio import to_thread

from shipyard.serving.logjson import inputs_json, safe_json

__all__ = ["LogFeed", "PredictionSink", "encode_row", "settled"]

log = logging.getLogger("shipyard.serving")

_COALESCE_S = 0.005


class PredictionSink(Protocol):
    """The prediction log's interface (``shipyard.serving.predlog.open_prediction_log`` returns one).

    A sink that also has ``offer(rows) -> bool`` (queue the rows, raw, only if that needs no waiting) is
    fed from the event loop and encodes the rows itself, as ``ParquetPredictionLog`` does.
    """

    def append(self, rows: list[dict[str, Any]]) -> None: ...

    def append_feedback(self, rows: list[dict[str, Any]]) -> None: ...

    def stats(self) -> dict[str, int]: ...

    def close(self) -> None: ...


def encode_row(row: dict[str, Any]) -> dict[str, Any]:
    """A log row with ``inputs`` (as records) and ``outputs`` as JSON text, as the sink stores them.

    Example:
        >>> encode_row({"inputs": {"columns": {"x": [1, 2]}}, "outputs": {"predictions": [0, 1]}})["inputs"]
        '[{"x":1},{"x":2}]'
    """
    outputs = row.get("outputs")
    return {
        **row,
        "inputs": inputs_json(row.get("inputs")),
        "outputs": None if outputs is None else safe_json(outputs),
    }


def settled(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its plain-Python ``inputs`` (records, columns) and its ``outputs`` as JSON text now.

    A row waits in the sink's buffer for up to a flush interval. Held as lists and dicts, each row's
    values are objects the garbage collector tracks, and once they outlive a collection or two they are
    walked by every full collection until written; as text (one untracked string) they are not, and the
    request's own objects die young. A frame (an Arrow request) stays as it is: few objects, and turning
    it into records is the writer's work.

    Example:
        >>> settled({"inputs": [{"x": 1}], "outputs": {"predictions": [0.5]}})
        {'inputs': '[{"x":1}]', 'outputs': '{"predictions":[0.5]}'}
    """
    inputs, outputs = row.get("inputs"), row.get("outputs")
    if isinstance(inputs, list | dict):
        row["inputs"] = inputs_json(inputs)
    if outputs is not None and not isinstance(outputs, str):
        row["outputs"] = safe_json(outputs)
    return row


class LogFeed:
    """Queue of log rows between requests and the sink (see the module docstring).

    Example:
        >>> feed = LogFeed(sink, max_pending=10_000, on_full="block")  # doctest: +SKIP
        >>> await feed.put(row)  # doctest: +SKIP
    """

    def __init__(self, sink: PredictionSink, *, max_pending: int = 10_000, on_full: str = "block") -> None:
        self.sink = sink
        self.max_pending = max_pending
        self.on_full = on_full
        self.dropped = 0
        self._offer: Callable[[list[dict[str, Any]]], bool] | None = getattr(sink, "offer", None)
        self._rows: list[dict[str, Any]] = []
        self._wakeup: asyncio.Event | None = None
        self._space: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        """Start the background hand-over (on the running loop)."""
        self._wakeup = asyncio.Event()
        self._space = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="shipyard-log-feed")

    async def put(self, row: dict[str, Any]) -> None:
        """Queue one row; waits only when the queue is full and the policy is ``block``."""
        row = settled(row)
        if not self._rows and not self._closing and self._offer is not None and self._offer([row]):
            return  # the usual case: in the sink's buffer, nothing else to do on the event loop
        if self._task is None:
            self.start()
        assert self._wakeup is not None and self._space is not None
        while len(self._rows) >= self.max_pending and not self._closing:
            if self.on_full == "drop":
                self.dropped += 1
                return
            self._space.clear()
            await self._space.wait()
        self._rows.append(row)
        self._wakeup.set()

    def stats(self) -> dict[str, int]:
        """The sink's stats, with the rows still queued here counted as buffered (and drops added)."""
        stats = dict(self.sink.stats())
        stats["buffered"] = stats.get("buffered", 0) + len(self._rows)
        stats["dropped"] = stats.get("dropped", 0) + self.dropped
        return stats

    async def _run(self) -> None:
        assert self._wakeup is not None and self._space is not None
        while True:
            if not self._rows:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if not self._closing:  # gather a few milliseconds of rows: one hand-over instead of many
                await asyncio.sleep(_COALESCE_S)
            rows, self._rows = self._rows, []
            self._space.set()
            try:
                if self._offer is None or not self._offer(rows):
                    await to_thread.run_sync(self._append, rows)
            except Exception:  # the sink failing must not take the server down; it is logged
                log.exception("Prediction log: %d rows could not be appended", len(rows))
                self.dropped += len(rows)

    def _append(self, rows: list[dict[str, Any]]) -> None:
        self.sink.append(rows if self._offer is not None else [encode_row(row) for row in rows])

    async def append_feedback(self, rows: list[dict[str, Any]]) -> None:
        """Feedback rows straight to the sink (in a worker thread)."""
        await to_thread.run_sync(self.sink.append_feedback, rows)

    async def close(self) -> None:
        """Hand over every queued row, then close (flush) the sink."""
        self._closing = True
        if self._task is not None and self._wakeup is not None:
            self._wakeup.set()
            if self._space is not None:
                self._space.set()
            await self._task
        await to_thread.run_sync(self.sink.close)
