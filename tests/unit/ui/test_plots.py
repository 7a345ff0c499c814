"""The profile bar charts: lengths proportional to counts, inside the chart, and bins named as the
profile defines them (its two open tail bins included)."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.data.profiles import profile
from shipyard.ui.plots import HEIGHT, LABEL, ROW, WIDTH, bar_chart, edge_text, histogram_labels


@given(st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=60))
def test_vertical_bars_are_proportional_to_the_counts_and_inside_the_chart(counts: list[int]) -> None:
    chart = bar_chart(counts, [str(i) for i in range(len(counts))])
    top = max(counts)
    tallest = max(b.height for b in chart.bars)
    for bar, count in zip(chart.bars, counts, strict=True):
        assert bar.count == count
        assert bar.y >= 0 and bar.y + bar.height <= HEIGHT + 1e-6 and bar.x + bar.width <= WIDTH + 1e-6
        if top:
            assert bar.height == pytest.approx(count / top * tallest, abs=0.01)
        else:
            assert bar.height == 0
    assert [b.x for b in chart.bars] == sorted(b.x for b in chart.bars)
    assert chart.total == sum(counts) and not chart.horizontal


def test_the_largest_count_spans_the_chart_and_bars_stand_on_the_baseline() -> None:
    chart = bar_chart([3, 0, 6], ["a", "b", "c"])
    heights = [b.height for b in chart.bars]
    assert heights[2] == HEIGHT - 4 and heights[0] == heights[2] / 2 and heights[1] == 0
    assert {round(b.y + b.height, 6) for b in chart.bars} == {HEIGHT - 2}


def test_horizontal_bars_get_one_row_each_and_lengths_proportional_to_the_counts() -> None:
    chart = bar_chart([10, 5, 1], ["Oslo", "Lyon", "Kyiv"], horizontal=True)
    assert chart.horizontal and chart.height == 4 + 3 * ROW
    assert [b.label for b in chart.bars] == ["Oslo", "Lyon", "Kyiv"]
    assert all(b.x == LABEL for b in chart.bars) and chart.label_x < LABEL
    lengths = [b.width for b in chart.bars]
    assert lengths[0] == WIDTH - LABEL - 2 and lengths[1] == pytest.approx(lengths[0] / 2)
    assert lengths[2] == pytest.approx(lengths[0] / 10)
    assert [b.y for b in chart.bars] == sorted(b.y for b in chart.bars)


def test_bad_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="2 counts but 1 labels"):
        bar_chart([1, 2], ["a"])
    with pytest.raises(ValueError, match="negative"):
        bar_chart([1, -2], ["a", "b"])
    assert bar_chart([], []).bars == ()


def test_a_profile_histogram_has_a_label_per_bin_tails_included() -> None:
    column = profile(pl.DataFrame({"x": [float(i) for i in range(100)]}), bins=4).columns["x"]
    assert column.histogram is not None
    labels = histogram_labels(column.histogram.edges)
    assert len(labels) == len(column.histogram.counts)
    edges = [edge_text(e) for e in column.histogram.edges]
    assert labels[0] == f"< {edges[0]}" and labels[-1] == f"≥ {edges[-1]}"
    assert labels[1] == f"{edges[0]} – {edges[1]}"
    assert histogram_labels([]) == []


def test_datetime_edges_read_as_utc_times() -> None:
    assert edge_text(0, datetime=True) == "1970-01-01"
    assert edge_text(90_061_000_000, datetime=True) == "1970-01-02 01:01:01"
    assert edge_text(1e30, datetime=True).endswith("µs")  # beyond any calendar: the raw number
    assert edge_text(float("inf")) == "∞" and edge_text(float("nan")) == "NaN"
