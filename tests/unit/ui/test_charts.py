"""LTTB against a plain transcription of the published algorithm, and the charts drawn from it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.ui.charts import HEIGHT, WIDTH, chart, lttb


def reference_lttb(x: list[float], y: list[float], threshold: int) -> list[int]:
    """Steinarsson's LTTB (2013, the reference implementation's loop), point by point."""
    n = len(x)
    if threshold >= n or threshold < 3:
        return list(range(n))
    every = (n - 2) / (threshold - 2)
    a, kept = 0, [0]
    for i in range(threshold - 2):
        avg_start = math.floor((i + 1) * every) + 1
        avg_end = min(math.floor((i + 2) * every) + 1, n)
        avg_x = sum(x[avg_start:avg_end]) / (avg_end - avg_start)
        avg_y = sum(y[avg_start:avg_end]) / (avg_end - avg_start)
        start, end = math.floor(i * every) + 1, math.floor((i + 1) * every) + 1
        best, best_area = start, -1.0
        for j in range(start, end):
            area = abs((x[a] - avg_x) * (y[j] - y[a]) - (x[a] - x[j]) * (avg_y - y[a])) * 0.5
            if area > best_area:
                best, best_area = j, area
        kept.append(best)
        a = best
    kept.append(n - 1)
    return kept


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=0, max_size=300),
    st.integers(min_value=0, max_value=120),
)
def test_lttb_keeps_the_points_the_reference_keeps(values: list[float], threshold: int) -> None:
    xs = [float(i * 3) for i in range(len(values))]
    assert lttb(xs, values, threshold).tolist() == reference_lttb(xs, values, threshold)


def test_lttb_on_a_long_noisy_series_keeps_its_spikes() -> None:
    rng = np.random.default_rng(7)
    y = rng.normal(0, 1, 100_000)
    y[[1234, 56_789, 98_765]] = [50.0, -60.0, 70.0]
    kept = lttb(np.arange(len(y)), y, 300)
    assert len(kept) == 300 and kept[0] == 0 and kept[-1] == len(y) - 1
    assert np.all(np.diff(kept) > 0)
    assert {1234, 56_789, 98_765} <= set(kept.tolist())


def test_a_chart_draws_at_most_max_points_inside_its_box() -> None:
    steps = list(range(10_000))
    values = [math.sin(s / 300) for s in steps]
    values[5] = math.nan
    drawn = chart("loss", steps, values, max_points=400)
    assert drawn is not None and drawn.drawn == 400 and drawn.total == 9_999
    points = [tuple(map(float, p.split(","))) for p in drawn.points.split()]
    assert len(points) == 400
    assert all(0 <= px <= WIDTH and 0 <= py <= HEIGHT for px, py in points)
    assert drawn.x_range == (0, 9_999) and drawn.y_range[1] == pytest.approx(1.0, abs=1e-3)
    assert chart("empty", [1, 2], [math.nan, math.inf]) is None
    flat = chart("flat", [0, 1, 2], [3.0, 3.0, 3.0])
    assert flat is not None and flat.points.count(",") == 3
