"""The prediction log: rows round-trip through partitioned Parquet, asynchronously, bounded, exactly once."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import orjson
import pandas as pd
import pyarrow.parquet as pq
import pytest

from polling_helpers import wait_until
from shipyard.errors import IntegrityError, InvalidInput, InvalidState
from shipyard.serving.deployment import PredictionLogSpec
from shipyard.serving.predlog import (
    FEEDBACK_SCHEMA,
    PREDICTION_SCHEMA,
    NullPredictionLog,
    ParquetPredictionLog,
    open_prediction_log,
    prediction_log_root,
    read_prediction_log,
)

T0 = 1_764_226_800_000  # 2025-11-27 07:00:00 UTC, on an hour boundary


def row(i: int, ts: int = T0 + 1_000, **extra: Any) -> dict[str, Any]:
    return {
        "request_id": f"r{i}",
        "ts": ts,
        "deployment": "churn",
        "variant": "main",
        "model": "models:/churn/3",
        "model_version": "3",
        "shadow": False,
        "latency_ms": 1.25,
        "n_rows": 1,
        "inputs": '[{"x": 1}]',
        "outputs": "[0.5]",
        "status": 200,
        **extra,
    }


def parts(root: Path, kind: str = "predictions") -> list[Path]:
    return sorted(root.glob(f"{kind}/deployment=*/date=*/hour=*/part-*.parquet"))


@pytest.fixture
def make_log(tmp_path: Path) -> Iterator[Callable[..., ParquetPredictionLog]]:
    """Open sinks on a local folder (closed at the end of the test): ``make_log(on_full="drop", ...)``."""
    sinks: list[ParquetPredictionLog] = []

    def make(root: str | None = None, **options: Any) -> ParquetPredictionLog:
        options.setdefault("flush_interval_s", 0.05)
        sink = ParquetPredictionLog(root or str(tmp_path / "log"), deployment="churn", **options)
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.close(timeout=1.0)


def test_rows_round_trip_with_the_fixed_schema(
    make_log: Callable[..., ParquetPredictionLog], tmp_path: Path
) -> None:
    sink = make_log()
    rows = [row(i, ts=T0 + i, shadow=i % 2 == 1, status=200 + i) for i in range(10)]
    sink.append(rows)
    sink.close()
    files = parts(tmp_path / "log")
    assert len(files) == 1
    assert pq.read_schema(files[0]) == PREDICTION_SCHEMA
    group = pq.ParquetFile(files[0]).metadata.row_group(0)
    assert group.column(0).compression == "ZSTD"
    dictionary = {
        group.column(i).path_in_schema
        for i in range(group.num_columns)
        if any("DICTIONARY" in e for e in group.column(i).encodings)
    }  # few distinct values: a dictionary; request ids, inputs, outputs: none (work for a larger file)
    assert dictionary == {"deployment", "variant", "model", "model_version", "n_rows", "status"}
    frame = read_prediction_log(tmp_path / "log")
    assert frame["request_id"].tolist() == [f"r{i}" for i in range(10)]
    assert frame["ts"].tolist() == [pd.Timestamp(T0 + i, unit="ms", tz="UTC") for i in range(10)]
    assert frame["shadow"].tolist() == [i % 2 == 1 for i in range(10)]
    assert frame["status"].tolist() == [200 + i for i in range(10)]
    first = frame.iloc[0]
    assert (first["variant"], first["model"], first["model_version"]) == ("main", "models:/churn/3", "3")
    assert (first["latency_ms"], first["n_rows"], first["inputs"], first["outputs"]) == (
        1.25,
        1,
        '[{"x": 1}]',
        "[0.5]",
    )
    assert sink.stats() == {
        "buffered": 0,
        "written": 10,
        "dropped": 0,
        "flushes": 1,
        "files": 1,
        "errors": 0,
        "invalid": 0,
        "lost": 0,
        "feedback_buffered": 0,
        "feedback_written": 0,
        "feedback_dropped": 0,
    }


def test_objects_are_json_encoded_by_the_writer_and_missing_fields_defaulted(
    make_log: Callable[..., ParquetPredictionLog], tmp_path: Path
) -> None:
    sink = make_log()
    before = time.time_ns() // 1_000_000
    sink.append([{"request_id": "r1", "inputs": [{"x": 1.5, "c": "a"}], "outputs": {"p": [0.25]}}])
    sink.close()
    got = read_prediction_log(tmp_path / "log").iloc[0]
    assert orjson.loads(got["inputs"]) == [{"x": 1.5, "c": "a"}]
    assert orjson.loads(got["outputs"]) == {"p": [0.25]}
    assert got["deployment"] == "churn"  # the sink's deployment when a row names none
    assert got["ts"] >= pd.Timestamp(before, unit="ms", tz="UTC")  # the flush time when a row has no ts
    assert pd.isna(got["status"]) and pd.isna(got["variant"])


def test_rows_are_partitioned_by_the_hour_of_their_ts(
    make_log: Callable[..., ParquetPredictionLog], tmp_path: Path
) -> None:
    sink = make_log(flush_interval_s=60)  # one flush: at close
    sink.append([row(1, ts=T0 - 1), row(2, ts=T0), row(3, ts=T0 + 3_599_999), row(4, ts=T0 + 3_600_000)])
    sink.close()
    files = parts(tmp_path / "log")
    folders = [f.parent.relative_to(tmp_path / "log").as_posix() for f in files]
    assert folders == [
        "predictions/deployment=churn/date=2025-11-27/hour=06",
        "predictions/deployment=churn/date=2025-11-27/hour=07",
        "predictions/deployment=churn/date=2025-11-27/hour=08",
    ]  # one file per flush per partition
    ids = [pq.read_table(f)["request_id"].to_pylist() for f in files]
    assert ids == [["r1"], ["r2", "r3"], ["r4"]]


def test_a_flush_happens_every_interval_without_close(
    make_log: Callable[..., ParquetPredictionLog], tmp_path: Path
) -> None:
    sink = make_log(flush_interval_s=0.1)
    sink.append([row(1)])
    wait_until(lambda: parts(tmp_path / "log"), "the writer to flush without close", timeout=5)
    sink.append([row(2)])
    assert sink.flush(timeout=5)
    assert len(parts(tmp_path / "log")) == 2
    assert read_prediction_log(tmp_path / "log")["request_id"].tolist() == ["r1", "r2"]


def test_concurrent_appends_are_each_written_exactly_once(
    make_log: Callable[..., ParquetPredictionLog], tmp_path: Path
) -> None:
    sink = make_log(max_buffered_rows=2_000)  # small: the writers also meet backpressure

    def producer(t: int) -> None:
        for i in range(5_000):
            sink.append([row(0, request_id=f"t{t}-{i}")])

    threads = [threading.Thread(target=producer, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sink.close()
    ids = read_prediction_log(tmp_path / "log")["request_id"]
    assert len(ids) == 40_000 and ids.nunique() == 40_000
    stats = sink.stats()
    assert (stats["written"], stats["dropped"], stats["buffered"]) == (40_000, 0, 0)


def slow_put(seconds: float, calls: list[float] | None = None) -> Callable[[str, bytes], None]:
    """A store that takes ``seconds`` per file, writing to the real local folder."""
    fs = fsspec.filesystem("file")

    def put(path: str, data: bytes) -> None:
        time.sleep(seconds)
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        fs.pipe_file(path, data)
        if calls is not None:
            calls.append(time.monotonic())

    return put


def test_block_policy_makes_append_wait_for_a_slow_sink_and_drops_nothing(
    make_log: Callable[..., ParquetPredictionLog], tmp_path: Path
) -> None:
    sink = make_log(max_buffered_rows=100, on_full="block", put=slow_put(0.3))
    for i in range(100):
        sink.append([row(i)])  # fits: returns at once
    started = time.monotonic()
    sink.append([row(100)])  # full: waits until the slow writer has made room
    waited = time.monotonic() - started
    assert waited >= 0.2
    sink.close()
    assert sink.stats()["dropped"] == 0
    assert read_prediction_log(tmp_path / "log")["request_id"].nunique() == 101


def test_drop_policy_never_waits_and_counts_what_it_drops(
    make_log: Callable[..., ParquetPredictionLog], tmp_path: Path
) -> None:
    gate = threading.Event()
    fs = fsspec.filesystem("file")

    def stuck_put(path: str, data: bytes) -> None:
        gate.wait(10)
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        fs.pipe_file(path, data)

    sink = make_log(max_buffered_rows=100, on_full="drop", put=stuck_put)
    started = time.monotonic()
    for i in range(250):
        sink.append([row(i)])
    assert time.monotonic() - started < 1.0  # never waits for the stuck store
    stats = sink.stats()
    assert stats["dropped"] == 150 and stats["buffered"] == 100
    gate.set()
    sink.close()
    stats = sink.stats()
    written = read_prediction_log(tmp_path / "log")["request_id"]
    assert (stats["written"], stats["dropped"]) == (100, 150)
    assert written.tolist() == [f"r{i}" for i in range(100)]


def test_memory_filesystem_round_trip() -> None:
    root = f"memory://predlog-{uuid.uuid4().hex}"
    sink = ParquetPredictionLog(root, deployment="churn", flush_interval_s=0.05)
    sink.append([row(1), row(2, shadow=True)])
    sink.append_feedback([{"request_id": "r1", "ts": T0, "label": 1, "row": 0}])
    sink.close()
    frame = read_prediction_log(root, deployment="churn")
    assert frame["request_id"].tolist() == ["r1", "r2"]
    assert frame["shadow"].tolist() == [False, True]
    feedback = read_prediction_log(root, kind="feedback")
    assert feedback[["request_id", "label", "row", "deployment"]].to_dict("records") == [
        {"request_id": "r1", "label": "1", "row": 0, "deployment": "churn"}
    ]
    fs = fsspec.filesystem("memory")
    names = fs.glob(f"{root.removeprefix('memory://')}/**/*.parquet")
    assert len(names) == 2 and all(n.rsplit("/", 1)[-1].startswith("part-") for n in names)
    assert sink.stats()["feedback_written"] == 1


def test_feedback_has_its_own_schema_and_folder(
    make_log: Callable[..., ParquetPredictionLog], tmp_path: Path
) -> None:
    sink = make_log()
    sink.append_feedback([{"request_id": "r9", "ts": T0, "label": '"yes"', "row": None}])
    sink.close()
    (only,) = parts(tmp_path / "log", "feedback")
    assert pq.read_schema(only) == FEEDBACK_SCHEMA
    assert read_prediction_log(tmp_path / "log", kind="predictions").empty
    got = read_prediction_log(tmp_path / "log", kind="feedback").iloc[0]
    assert (got["request_id"], got["label"]) == ("r9", '"yes"') and pd.isna(got["row"])


def test_appending_after_close_raises_and_close_is_idempotent(
    make_log: Callable[..., ParquetPredictionLog],
) -> None:
    sink = make_log()
    sink.append([row(1)])
    sink.close()
    sink.close()
    with pytest.raises(InvalidState, match="closed"):
        sink.append([row(2)])
    with pytest.raises(InvalidState, match="closed"):
        sink.append_feedback([{"request_id": "r1", "ts": T0, "label": "1"}])
    assert sink.stats()["written"] == 1


def test_close_releases_an_appender_blocked_on_a_full_buffer(
    make_log: Callable[..., ParquetPredictionLog], monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(path: str, data: bytes) -> None:
        raise OSError("store down")

    sink = make_log(max_buffered_rows=100, put=failing)
    sink.append([row(i) for i in range(100)])
    errors: list[BaseException] = []

    def blocked() -> None:
        try:
            sink.append([row(100)])
        except InvalidState as exc:
            errors.append(exc)

    waiting = threading.Event()
    wait = sink._space.wait  # blocked appenders (and only they, before close) wait on this condition

    def observed_wait(timeout: float | None = None) -> bool:
        waiting.set()
        return wait(timeout)

    monkeypatch.setattr(sink._space, "wait", observed_wait)
    thread = threading.Thread(target=blocked)
    thread.start()
    assert waiting.wait(10), "the append never waited for room"
    assert thread.is_alive()  # backpressure: waiting for room
    sink.close(timeout=0.2)
    thread.join(5)
    assert not thread.is_alive() and len(errors) == 1
    stats = sink.stats()
    assert (stats["lost"], stats["written"], stats["buffered"]) == (100, 0, 0)
    assert stats["errors"] >= 1


def test_a_failing_write_is_retried_and_loses_nothing(
    make_log: Callable[..., ParquetPredictionLog], tmp_path: Path
) -> None:
    fs = fsspec.filesystem("file")
    attempts: list[str] = []

    def flaky(path: str, data: bytes) -> None:
        attempts.append(path)
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        if len(attempts) <= 3:
            if len(attempts) == 2:  # the bytes land, then the call fails: the retry must not duplicate
                fs.pipe_file(path, data)
            raise OSError("connection reset")
        fs.pipe_file(path, data)

    sink = make_log(flush_interval_s=0.02, put=flaky)
    sink.append([row(i) for i in range(50)])
    assert sink.flush(timeout=10)
    sink.append([row(i) for i in range(50, 60)])
    sink.close()
    frame = read_prediction_log(tmp_path / "log")
    assert frame["request_id"].tolist() == [f"r{i}" for i in range(60)]  # all there, once each
    assert attempts[0] == attempts[1] == attempts[2] == attempts[3]  # a retry rewrites the same part
    stats = sink.stats()
    assert (stats["errors"], stats["written"], stats["lost"]) == (3, 60, 0)


def test_rows_that_do_not_fit_the_schema_are_skipped_and_counted(
    make_log: Callable[..., ParquetPredictionLog], tmp_path: Path
) -> None:
    sink = make_log()
    sink.append([row(1), row(2, status="two hundred"), row(3, n_rows=2**40), row(4)])
    sink.close()
    assert read_prediction_log(tmp_path / "log")["request_id"].tolist() == ["r1", "r4"]
    stats = sink.stats()
    assert (stats["written"], stats["invalid"], stats["buffered"]) == (2, 2, 0)


def test_large_flushes_are_converted_in_chunks_without_losing_order_or_good_rows(
    make_log: Callable[..., ParquetPredictionLog], tmp_path: Path
) -> None:
    sink = make_log(flush_interval_s=60)  # everything in the final flush: several conversion chunks
    rows = [row(i, ts=T0 + i * 1_000) for i in range(5_000)]  # 5,000 s: two hour partitions
    rows[3_000]["status"] = "broken"
    sink.append(rows)
    sink.close()
    expected = [f"r{i}" for i in range(5_000) if i != 3_000]
    assert read_prediction_log(tmp_path / "log")["request_id"].tolist() == expected
    assert len(parts(tmp_path / "log")) == 2
    assert (sink.stats()["written"], sink.stats()["invalid"]) == (4_999, 1)


def test_readers_ignore_temp_files_of_a_dead_writer(
    make_log: Callable[..., ParquetPredictionLog], tmp_path: Path
) -> None:
    sink = make_log()
    sink.append([row(1)])
    sink.close()
    folder = parts(tmp_path / "log")[0].parent
    (folder / f".part-1-{uuid.uuid4().hex}.parquet.tmp").write_bytes(b"PAR1 half a file")
    assert read_prediction_log(tmp_path / "log")["request_id"].tolist() == ["r1"]


def test_a_damaged_part_is_an_integrity_error_naming_the_log(
    make_log: Callable[..., ParquetPredictionLog], tmp_path: Path
) -> None:
    sink = make_log()
    sink.append([row(1)])
    sink.close()
    (parts(tmp_path / "log")[0].parent / "part-1-damaged.parquet").write_bytes(b"PAR1 not parquet")
    with pytest.raises(IntegrityError, match=r"prediction log at .*log.* not readable Parquet.*aside"):
        read_prediction_log(tmp_path / "log")


def test_a_root_with_an_unknown_protocol_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match=r"Cannot read the prediction log at 'nosuch://x'.*fsspec URL"):
        read_prediction_log("nosuch://x")


def test_reader_filters_by_deployment_and_returns_the_schema_when_empty(tmp_path: Path) -> None:
    for name in ("churn", "fraud"):
        sink = ParquetPredictionLog(str(tmp_path / "log"), deployment=name, flush_interval_s=0.05)
        sink.append([row(1, deployment=name)])
        sink.close()
    assert read_prediction_log(tmp_path / "log", deployment="fraud")["deployment"].tolist() == ["fraud"]
    assert len(read_prediction_log(tmp_path / "log")) == 2
    empty = read_prediction_log(tmp_path / "nothing")
    assert empty.empty and empty.columns.tolist() == PREDICTION_SCHEMA.names
    with pytest.raises(InvalidInput, match="kind"):
        read_prediction_log(tmp_path / "log", kind="labels")  # type: ignore[arg-type]


def test_open_prediction_log_follows_the_spec(tmp_path: Path) -> None:
    assert isinstance(
        open_prediction_log(PredictionLogSpec(enabled=False), str(tmp_path), "churn"), NullPredictionLog
    )
    spec = PredictionLogSpec(flush_interval_s=0.05, max_buffered_rows=500, on_full="drop")
    assert prediction_log_root(spec, f"{tmp_path}/") == f"{tmp_path}/predictions-log"
    assert prediction_log_root(spec.model_copy(update={"path": "memory://x/"}), "ignored") == "memory://x"
    sink = open_prediction_log(spec, str(tmp_path), "churn")
    assert isinstance(sink, ParquetPredictionLog)
    sink.append([row(1)])
    sink.close()
    assert read_prediction_log(tmp_path / "predictions-log")["request_id"].tolist() == ["r1"]
    with pytest.raises(InvalidInput, match="Deployment name"):
        open_prediction_log(PredictionLogSpec(), str(tmp_path), "../escape")


def test_null_sink_accepts_everything_and_writes_nothing() -> None:
    sink = NullPredictionLog()
    sink.append([row(1)])
    sink.append_feedback([{"request_id": "r1"}])
    assert sink.flush() and set(sink.stats().values()) == {0}
    sink.close()
