"""LTTB against a plain transcription of the published algorithm, the faster downsampling the pages use,
and the charts drawn from them: a series, curves overlaid, parallel coordinates."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.ui.charts import (
    COLORS,
    HEIGHT,
    MAX_AXES,
    MISSING_COLOR,
    PAD,
    WIDTH,
    Line,
    chart,
    downsample,
    lttb,
    overlay,
    parallel,
)


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


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_downsample_is_lttb_where_no_bucket_needs_preselecting(data: st.DataObject) -> None:
    threshold = data.draw(st.integers(min_value=0, max_value=120))
    most = 300 if threshold < 3 else min(300, 4 * (threshold - 2) + 2)  # buckets of at most 4 points
    values = data.draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False), max_size=most))
    xs = [float(i * 3) for i in range(len(values))]
    assert downsample(xs, values, threshold).tolist() == reference_lttb(xs, values, threshold)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=30, max_size=3_000),
    st.integers(min_value=3, max_value=60),
)
def test_downsample_keeps_the_ends_and_the_global_extremes(values: list[float], n_out: int) -> None:
    kept = downsample(range(len(values)), values, n_out).tolist()
    if len(values) - 2 <= 4 * (n_out - 2):  # no preselection: LTTB itself (previous test)
        return
    assert kept[0] == 0 and kept[-1] == len(values) - 1 and kept == sorted(set(kept))
    assert n_out <= len(kept) <= n_out + 1  # one more only when the min and max share a bucket
    assert min(values) == min(values[i] for i in kept) and max(values) == max(values[i] for i in kept)


def test_downsample_of_a_long_noisy_series_keeps_its_spikes() -> None:
    rng = np.random.default_rng(11)
    y = np.cumsum(rng.normal(0, 1, 100_000))
    y[[777, 50_001, 99_000]] += [400.0, -500.0, 450.0]
    kept = downsample(np.arange(len(y)), y, 500)
    assert len(kept) in (500, 501) and {777, 50_001, 99_000} <= set(kept.tolist())
    assert np.all(np.diff(kept) > 0) and kept[0] == 0 and kept[-1] == len(y) - 1


def _pairs(line: Line) -> list[tuple[int, float]]:
    return list(zip(line.steps, line.values, strict=True))


def test_overlay_draws_one_line_per_series_from_its_own_points_on_common_axes() -> None:
    a_steps, a_values = list(range(0, 2_000, 2)), [math.cos(s / 100) for s in range(0, 2_000, 2)]
    a_values[10] = math.inf
    b_steps, b_values = [5, 6, 7], [10.0, -3.0, math.nan]
    series = [("run a", a_steps, a_values), ("run b", b_steps, b_values), ("c", [1], [math.nan])]
    drawn = overlay("loss", series, max_points=200)
    assert drawn is not None and [line.label for line in drawn.lines] == [
        "run a",
        "run b",
    ]  # c: nothing finite
    a, b = drawn.lines
    finite_a = [(s, v) for s, v in zip(a_steps, a_values, strict=True) if math.isfinite(v)]
    assert a.total == len(finite_a) == 999 and a.drawn == 200 and set(_pairs(a)) <= set(finite_a)
    assert _pairs(a)[0] == finite_a[0] and _pairs(a)[-1] == finite_a[-1]
    assert _pairs(b) == [(5, 10.0), (6, -3.0)] and b.total == 2
    assert drawn.x_range == (0, 1_998) and drawn.y_range == (-3.0, 10.0)
    assert a.color != b.color
    # the same data → pixel mapping for both lines
    for line in (a, b):
        for (step, value), point in zip(_pairs(line), line.points.split(), strict=True):
            px, py = map(float, point.split(","))
            assert px == pytest.approx(PAD + (step - 0) * (WIDTH - 2 * PAD) / 1_998, abs=0.06)
            assert py == pytest.approx(HEIGHT - PAD - (value + 3.0) * (HEIGHT - 2 * PAD) / 13.0, abs=0.06)
    island = json.loads(json.dumps(drawn.data()))
    assert [s["label"] for s in island["series"]] == ["run a", "run b"]
    assert list(zip(island["series"][1]["x"], island["series"][1]["y"], strict=True)) == [
        (5, 10.0),
        (6, -3.0),
    ]
    assert overlay("none", []) is None and overlay("none", [("x", [1, 2], [math.nan, -math.inf])]) is None


def test_lines_past_the_palette_are_dashed() -> None:
    lines = overlay("m", [(f"r{i}", [0, 1], [0.0, float(i)]) for i in range(2 * len(COLORS))])
    assert lines is not None
    styles = [(line.color, line.dash) for line in lines.lines]
    assert len(set(styles)) == len(styles) and all(dash for _, dash in styles[len(COLORS) :])


def _y(value: float, lo: float, hi: float, top: float, bottom: float) -> float:
    return (top + bottom) / 2 if hi == lo else bottom - (value - lo) / (hi - lo) * (bottom - top)


def _xy(points: str) -> list[tuple[float, float]]:
    return [(float(p.split(",")[0]), float(p.split(",")[1])) for p in points.split()]


def test_parallel_coordinates_have_an_axis_per_differing_param_and_the_metric() -> None:
    runs = [
        ("a", {"lr": "0.1", "opt": "sgd", "seed": "1", "depth": "3"}, 0.70),
        ("b", {"lr": "0.4", "opt": "adam", "seed": "1", "depth": "5"}, 0.90),
        ("c", {"lr": "0.2", "opt": "rms", "seed": "1"}, None),  # no depth, no metric
        ("d", {"lr": "1e-3", "opt": "adam", "seed": "1", "depth": "4"}, 0.80),
    ]
    pc = parallel("auc", runs)
    assert pc is not None and pc.left_out == 0
    assert [a.name for a in pc.axes] == ["params.depth", "params.lr", "params.opt", "metrics.auc"]  # not seed
    depth, lr, opt, auc = pc.axes
    assert (depth.numeric, depth.low, depth.high) == (True, "3", "5")
    assert (lr.numeric, lr.low, lr.high) == (True, "0.001", "0.4")
    assert (auc.low, auc.high) == ("0.7", "0.9") and pc.metric_range == (0.70, 0.90)
    categories = ["adam", "rms", "sgd"]  # sorted, evenly from the bottom up
    assert not opt.numeric and [label for _, label in opt.ticks] == categories
    ys = [y for y, _ in opt.ticks]
    assert ys[0] == pc.bottom and ys[-1] == pc.top and ys[1] == pytest.approx((pc.top + pc.bottom) / 2)
    xs = [a.x for a in pc.axes]
    assert len({round(b - a, 6) for a, b in zip(xs, xs[1:], strict=False)}) == 1  # evenly spaced

    def expected(values: list[float | None], axis_values: list[float]) -> list[float | None]:
        lo, hi = min(axis_values), max(axis_values)
        return [None if v is None else _y(v, lo, hi, pc.top, pc.bottom) for v in values]

    depth_y = expected([3.0, 5.0, None, 4.0], [3.0, 5.0, 4.0])
    lr_y = expected([0.1, 0.4, 0.2, 0.001], [0.1, 0.4, 0.2, 0.001])
    opt_y = [ys[categories.index(p["opt"])] for _, p, _ in runs]
    auc_y = expected([0.70, 0.90, None, 0.80], [0.70, 0.90, 0.80])
    traces = {t.label: t for t in pc.traces}
    for r, (label, _, _) in enumerate(runs):
        want = [(x, y) for x, y in zip(xs, [depth_y[r], lr_y[r], opt_y[r], auc_y[r]], strict=True)]
        got = [p for segment in traces[label].segments for p in _xy(segment)]
        present = [(x, y) for x, y in want if y is not None]
        assert got == [(pytest.approx(x, abs=0.06), pytest.approx(y, abs=0.06)) for x, y in present]
    assert len(traces["c"].segments) == 1 and len(_xy(traces["c"].segments[0])) == 2  # lr → opt only
    assert traces["c"].color == MISSING_COLOR and traces["c"].value is None
    low, high = traces["a"].color, traces["b"].color  # the lowest and highest auc: the scale's ends
    assert (low, high) == pc.scale[::2] and traces["d"].color == pc.scale[1]


def test_parallel_coordinates_need_a_differing_param_and_cap_their_axes() -> None:
    assert parallel("auc", [("a", {"lr": "1"}, 0.5), ("b", {"lr": "1"}, 0.6)]) is None
    lone = parallel("auc", [("a", {"x": "1"}, 0.5), ("b", {}, math.nan)])
    assert lone is not None and lone.metric_range == (0.5, 0.5)
    traces = {t.label: t for t in lone.traces}
    assert traces["b"].segments == () and traces["b"].dots == ()  # nothing to draw: no value anywhere
    assert len(traces["a"].segments) == 1
    many = parallel(
        "m", [(str(i), {f"p{k:02d}": str(i * k) for k in range(1, 31)}, float(i)) for i in range(3)]
    )
    assert many is not None and len(many.axes) == MAX_AXES and many.left_out == 30 - (MAX_AXES - 1)
    dots = parallel("m", [("a", {"p": "1", "q": "x"}, None), ("b", {"p": "2"}, None)])
    assert dots is not None and {t.label: t.dots for t in dots.traces}["b"] == ((dots.axes[0].x, dots.top),)
