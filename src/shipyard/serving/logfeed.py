"""Feed the prediction log from the request path without blocking the event loop.

A request adds its log row (raw inputs and outputs, not yet JSON) to :class:`LogFeed`'s queue and goes
on; a background task hands queued rows to the sink in a worker thread, where they are encoded as JSON
text (``inputs``, ``outputs``) and appended. The sink owns the durable buffer and its policy (``block``:
backpressure; ``drop``: count and drop). The feed only bridges the event loop to it: when the sink blocks,
the feed's own queue fills up to ``max_pending`` rows, and then requests wait (``block``) or the feed
drops rows and counts them (``drop``). On shutdown :meth:`LogFeed.close` hands over everything queued,
then closes the sink, which flushes it.

Encoding never loses a row: values JSON cannot hold (bytes, decimals, huge integers, ...) are written in
the encoding of ``shipyard.serving.logjson``, and a row whose encoding still fails is logged with its
``inputs``/``outputs`` marked ``$unencodable`` rather than dropped.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

import pandas as pd
from anyio import to_thread

from shipyard.serving.logjson import frame_records, safe_json
from shipyard.serving.payload import jsonable

__all__ = ["LogFeed", "PredictionSink", "encode_row"]

log = logging.getLogger("shipyard.serving")

_COALESCE_S = 0.005


class PredictionSink(Protocol):
    """The prediction log's interface (``shipyard.serving.predlog.open_prediction_log`` returns one)."""

    def append(self, rows: list[dict[str, Any]]) -> None: ...

    def append_feedback(self, rows: list[dict[str, Any]]) -> None: ...

    def stats(self) -> dict[str, int]: ...

    def close(self) -> None: ...


def encode_row(row: dict[str, Any]) -> dict[str, Any]:
    """A queued row with ``inputs`` and ``outputs`` as JSON text (records), as the sink stores them.

    Example:
        >>> encode_row({"inputs": {"columns": {"x": [1, 2]}}, "outputs": {"predictions": [0, 1]}})["inputs"]
        '[{"x":1},{"x":2}]'
    """
    out = dict(row)
    try:
        out["inputs"] = _records_json(row.get("inputs"))
    except Exception as exc:  # never lose the row: log what it was instead
        out["inputs"] = safe_json({"$unencodable": f"{type(exc).__name__}: {exc}"[:500]})
    outputs = row.get("outputs")
    if not isinstance(outputs, str):
        try:
            outputs = safe_json(jsonable(outputs))
        except Exception as exc:  # an odd model output (a shadow's, say) must not lose the row
            outputs = safe_json({"$unencodable": f"{type(exc).__name__}: {exc}"[:500]})
    out["outputs"] = outputs
    return out


def _records_json(inputs: Any) -> str:
    if isinstance(inputs, str):
        return inputs
    if isinstance(inputs, pd.DataFrame):
        return frame_records(inputs)
    if isinstance(inputs, dict) and isinstance(inputs.get("columns"), dict):
        columns: dict[str, list[Any]] = inputs["columns"]
        names = list(columns)
        rows = [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]
        return safe_json(rows)
    return safe_json(inputs)


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
                await to_thread.run_sync(self._append, rows)
            except Exception:  # the sink failing must not take the server down; it is logged
                log.exception("Prediction log: %d rows could not be appended", len(rows))
                self.dropped += len(rows)

    def _append(self, rows: list[dict[str, Any]]) -> None:
        self.sink.append([encode_row(row) for row in rows])

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
