"""The log feed with the real Parquet sink: a request's row goes straight into the sink's buffer (its
plain inputs and outputs as JSON text, a frame as it is) and the writer thread encodes the rest; a full
sink makes the feed queue and hand over in a worker thread, and every row still lands exactly once
(block) or is counted as dropped (drop)."""

from __future__ import annotations

import asyncio
import gc
import threading
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import orjson
import pandas as pd
import pytest

from polling_helpers import await_until
from shipyard.serving.logfeed import LogFeed
from shipyard.serving.predlog import ParquetPredictionLog, read_prediction_log

T0 = 1_764_226_800_000  # 2025-11-27 07:00:00 UTC


def raw_row(i: int, inputs: Any = None, outputs: Any = None) -> dict[str, Any]:
    """A row as the engine builds it: inputs as sent, outputs as the model's numpy arrays."""
    return {
        "request_id": f"r{i}",
        "ts": T0 + i,
        "status": 200,
        "inputs": [{"x": i}] if inputs is None else inputs,
        "outputs": {"predictions": np.array([i])} if outputs is None else outputs,
    }


def gated_put(gate: threading.Event) -> Any:
    """A store that takes nothing until ``gate`` is set (the writer thread waits in it)."""
    fs = fsspec.filesystem("file")

    def put(path: str, data: bytes) -> None:
        assert gate.wait(30), "the test never opened the gate"
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        fs.pipe_file(path, data)

    return put


def test_rows_go_straight_into_the_sink_raw_and_its_writer_encodes_them(tmp_path: Path) -> None:
    sink = ParquetPredictionLog(str(tmp_path / "log"), deployment="churn", flush_interval_s=60)
    feed = LogFeed(sink)
    rows = [
        raw_row(0),
        raw_row(1, inputs={"columns": {"x": [1, 2], "k": ["a", "b"]}}),
        raw_row(2, inputs=pd.DataFrame({"x": [2.5], "b": [b"\x00\xff"]})),
        raw_row(3, inputs={"columns": {"x": [1, 2], "k": ["a"]}}),  # ragged: not records
        raw_row(4, outputs={"predictions": np.array([0.25]), "probabilities": np.array([[0.75, 0.25]])}),
        {**raw_row(5), "outputs": None, "status": 500},  # a failed request
    ]

    async def main() -> int:
        feed.start()
        for row in rows:
            await feed.put(row)
        in_sink = sink.stats()["buffered"]  # before the loop ran anything else: no hand-over task
        await feed.close()
        return in_sink

    assert asyncio.run(main()) == len(rows)
    logged = read_prediction_log(tmp_path / "log").set_index("request_id")
    inputs = {rid: orjson.loads(text) for rid, text in logged["inputs"].items()}
    assert inputs["r0"] == [{"x": 0}]
    assert inputs["r1"] == [{"x": 1, "k": "a"}, {"x": 2, "k": "b"}]
    assert inputs["r2"] == [{"x": 2.5, "b": {"$base64": "AP8="}}]
    assert "zip() argument 2 is shorter" in inputs["r3"]["$unencodable"]  # logged, not lost
    assert orjson.loads(logged.loc["r0", "outputs"]) == {"predictions": [0]}
    assert orjson.loads(logged.loc["r4", "outputs"]) == {
        "predictions": [0.25],
        "probabilities": [[0.75, 0.25]],
    }
    assert pd.isna(logged.loc["r5", "outputs"]) and logged.loc["r5", "status"] == 500
    assert sink.stats()["written"] == len(rows)


def test_a_queued_row_holds_text_the_garbage_collector_does_not_walk(tmp_path: Path) -> None:
    """A row waits up to a flush interval: its plain inputs and outputs are JSON text by then (one
    untracked string each), so full collections meanwhile do not walk them; a frame stays a frame."""
    sink = ParquetPredictionLog(str(tmp_path / "log"), deployment="churn", flush_interval_s=60)
    feed = LogFeed(sink)
    frame = pd.DataFrame({"x": [2.5]})
    rows = [raw_row(0), raw_row(1, inputs={"columns": {"x": [1, 2]}}), raw_row(2, inputs=frame)]

    async def main() -> None:
        feed.start()
        for row in rows:
            await feed.put(row)
        gc.collect()  # a collection untracks a dict that holds only untracked values
        assert [gc.is_tracked(row) for row in rows] == [False, False, True]
        assert rows[0]["inputs"] == '[{"x":0}]' and rows[1]["inputs"] == '[{"x":1},{"x":2}]'
        assert rows[2]["inputs"] is frame
        assert [row["outputs"] for row in rows] == [
            '{"predictions":[0]}',
            '{"predictions":[1]}',
            '{"predictions":[2]}',
        ]
        await feed.close()

    asyncio.run(main())
    logged = read_prediction_log(tmp_path / "log").set_index("request_id")
    assert orjson.loads(logged.loc["r2", "inputs"]) == [{"x": 2.5}]
    assert orjson.loads(logged.loc["r1", "outputs"]) == {"predictions": [1]}


def test_offer_never_waits_and_neither_queues_nor_drops_what_does_not_fit(tmp_path: Path) -> None:
    gate = threading.Event()
    for policy in ("block", "drop"):
        sink = ParquetPredictionLog(
            str(tmp_path / policy),
            deployment="churn",
            max_buffered_rows=3,
            on_full=policy,
            put=gated_put(gate),
        )
        assert sink.offer([raw_row(0), raw_row(1)]) and sink.offer([raw_row(2)])
        assert not sink.offer([raw_row(3)])  # full (block would wait here, drop would count it)
        assert (sink.stats()["buffered"], sink.stats()["dropped"]) == (3, 0)
        gate.set()
        sink.close()
        assert read_prediction_log(tmp_path / policy)["request_id"].tolist() == ["r0", "r1", "r2"]
        gate.clear()


@pytest.mark.parametrize("policy", ["block", "drop"])
def test_a_full_sink_makes_the_feed_queue_and_every_row_lands_once_or_is_counted(
    tmp_path: Path, policy: str
) -> None:
    gate = threading.Event()
    sink = ParquetPredictionLog(
        str(tmp_path / "log"), deployment="churn", max_buffered_rows=10, on_full=policy, put=gated_put(gate)
    )
    feed = LogFeed(sink, max_pending=1_000, on_full=policy)

    async def main() -> dict[str, int]:
        feed.start()
        for i in range(25):
            await feed.put(raw_row(i))  # 10 fit the sink (its store is stuck); 15 wait in the feed's queue
        held = feed.stats()
        if policy == "drop":  # the hand-over gives them to the sink, which drops them
            await await_until(lambda: feed.stats()["dropped"] == 15, "the sink to drop what does not fit")
        gate.set()
        await feed.close()
        return held

    held = asyncio.run(main())
    ids = read_prediction_log(tmp_path / "log")["request_id"].tolist()
    assert (held["buffered"], held["dropped"]) == (25, 0)
    if policy == "drop":
        assert sorted(ids) == sorted(f"r{i}" for i in range(10)) and sink.stats()["dropped"] == 15
    else:
        assert sorted(ids) == sorted(f"r{i}" for i in range(25))  # each exactly once
    assert sink.stats()["written"] == len(ids)
