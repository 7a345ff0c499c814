"""Charts the server draws as inline SVG: metric series downsampled, curves overlaid, parallel coordinates.

A run's series may hold a million points; a page needs a few hundred to look the same. LTTB
(largest-triangle-three-buckets, Steinarsson 2013) keeps the first and last points and, from each
bucket between, the point that makes the largest triangle with the point kept before it and the
mean of the next bucket: peaks and troughs survive, flat stretches thin out. :func:`lttb` is the
published algorithm; :func:`downsample`, which the pages use, first keeps each bucket's first,
last, lowest and highest point (M4) and lets LTTB choose among those four, all buckets at once, so
a long series costs a few array passes instead of a loop over its buckets; it keeps the series'
global minimum and maximum whatever LTTB would choose.

Everything here is pure: numbers in, coordinates and labels out. The templates draw them (and
escape every label); ``static/shipyard.js`` redraws a chart with uPlot from the same points, which
:meth:`Chart.data` gives as JSON. The SVG needs no JavaScript and scales with the page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "Axis",
    "Chart",
    "Line",
    "Parallel",
    "Trace",
    "chart",
    "downsample",
    "lttb",
    "overlay",
    "parallel",
]

WIDTH, HEIGHT, PAD = 640, 180, 6
COLORS = ("#1f5fbf", "#e8710a", "#1e8e3e", "#c5221f", "#9334e6", "#0d8a9c", "#c2185b", "#7a6200", "#5f6368")
"""Line colours, in order; lines past the palette repeat it dashed."""
DASH = (6, 3)
MISSING_COLOR = "#9aa0a6"
"""A parallel-coordinates trace whose run lacks the metric."""
SCALE = ((0x2C, 0x4B, 0x9B), (0x1E, 0x9C, 0x89), (0xE3, 0x8D, 0x0B))
"""Low, middle and high colour of the metric in parallel coordinates (blue, teal, amber)."""


# -- downsampling -------------------------------------------------------------------------------
def _edges(n: int, n_out: int) -> npt.NDArray[np.int64]:
    """Bucket bounds: ``n_out - 2`` buckets over points 1 … n-2, bucket i = [edges[i], edges[i+1]).

    As the published algorithm computes them, in floating point: with every = (n-2)/(n_out-2),
    bucket i starts at floor(i·every) + 1.
    """
    every = (n - 2) / (n_out - 2)
    edges: npt.NDArray[np.int64] = (np.floor(np.arange(n_out - 1) * every) + 1).astype(np.int64)
    return edges


def _next_means(
    xs: npt.NDArray[np.float64], ys: npt.NDArray[np.float64], edges: npt.NDArray[np.int64], in_order: bool
) -> Any:
    """For each bucket, the mean point of the next one (the rest of the series, for the last bucket).

    ``in_order``: add each bucket's points one after another, as the published algorithm does (the
    buckets are then the columns of a zero-padded grid summed down its rows); otherwise numpy adds
    them in pairs, many times faster, rounding a little differently (the same below 8 points).
    """
    starts = edges[1:]
    ends = np.append(starts[1:], len(xs))
    counts = ends - starts
    if not in_order:
        return np.add.reduceat(xs, starts) / counts, np.add.reduceat(ys, starts) / counts
    grid = starts[None, :] + np.arange(int(counts.max()))[:, None]
    inside = grid < ends[None, :]
    grid = np.minimum(grid, len(xs) - 1)
    return (
        np.where(inside, xs[grid], 0.0).sum(axis=0) / counts,
        np.where(inside, ys[grid], 0.0).sum(axis=0) / counts,
    )


def lttb(x: npt.ArrayLike, y: npt.ArrayLike, n_out: int) -> npt.NDArray[np.int64]:
    """Indices of the ``n_out`` points LTTB keeps of the series ``(x, y)`` (x ascending).

    Every point is kept when there are at most ``n_out`` of them (or ``n_out < 3``). This is the
    published algorithm, bucket by bucket; :func:`downsample` is the fast version the pages use.

    Example:
        >>> lttb([0, 1, 2, 3, 4], [0, 5, 0, 0, 0], 3).tolist()
        [0, 1, 4]
    """
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    n = len(xs)
    if n_out >= n or n_out < 3:
        return np.arange(n, dtype=np.int64)
    keep = np.empty(n_out, dtype=np.int64)
    keep[0], keep[-1] = 0, n - 1
    edges = _edges(n, n_out)
    avg_xs, avg_ys = _next_means(xs, ys, edges, in_order=True)
    a = 0
    for i in range(n_out - 2):
        lo, hi = edges[i], edges[i + 1]
        bx, by = xs[lo:hi], ys[lo:hi]
        area = np.abs((xs[a] - avg_xs[i]) * (by - ys[a]) - (xs[a] - bx) * (avg_ys[i] - ys[a]))
        a = lo + int(np.argmax(area))
        keep[i + 1] = a
    return keep


def _candidates(ys: npt.NDArray[np.float64], edges: npt.NDArray[np.int64]) -> tuple[Any, bool]:
    """Each bucket's candidates, a row of 4 indices ascending, and whether they were preselected:
    all of a bucket's points when no bucket has more than 4 (the last repeated to fill the row),
    else its first, lowest, highest and last point (M4)."""
    starts, ends = edges[:-1], edges[1:]  # bucket i = [starts[i], ends[i])
    width = int((ends - starts).max())
    if width <= 4:
        return np.minimum(starts[:, None] + np.arange(4), ends[:, None] - 1), False
    # one row per bucket, short buckets padded with their last point (argmin/argmax take the first)
    values = ys[np.minimum(starts[:, None] + np.arange(width), ends[:, None] - 1)]
    lowest = starts + np.argmin(values, axis=1)
    highest = starts + np.argmax(values, axis=1)
    return np.sort(np.stack([starts, lowest, highest, ends - 1], axis=1), axis=1), True


def downsample(x: npt.ArrayLike, y: npt.ArrayLike, n_out: int) -> npt.NDArray[np.int64]:
    """Indices (ascending) of about ``n_out`` points of ``(x, y)`` (x ascending, y finite) that draw
    like the whole series: LTTB choosing, in each bucket, among its first, last, lowest and highest
    point.

    Where no bucket holds more than 4 points this is exactly :func:`lttb`. Otherwise the global
    minimum and maximum are always kept: LTTB must choose them in their buckets (when both fall in
    one bucket, it chooses one and the other is added: ``n_out + 1`` points).

    Example:
        >>> kept = downsample(range(10_000), [0.0] * 5_000 + [9.0] + [0.0] * 4_999, 50)
        >>> len(kept), 5_000 in kept
        (50, True)
    """
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    n = len(xs)
    if n_out >= n or n_out < 3:
        return np.arange(n, dtype=np.int64)
    edges = _edges(n, n_out)
    cand, preselected = _candidates(ys, edges)
    extremes = sorted({int(np.argmin(ys)), int(np.argmax(ys))}) if preselected else []
    forced: dict[int, list[int]] = {}
    for e in extremes:
        if 0 < e < n - 1:  # the first and last points are kept anyway
            forced.setdefault(int(np.searchsorted(edges, e, side="right")) - 1, []).append(e)
    for bucket, points in forced.items():  # LTTB may only choose the extremes in their buckets
        cand[bucket] = [points[0], points[0], points[-1], points[-1]]
    avg_x, avg_y = _next_means(xs, ys, edges, in_order=False)
    # The point kept before bucket i is one of bucket i-1's candidates (point 0 before bucket 0):
    # the triangle of every (previous candidate, candidate) pair, for all buckets at once.
    prev = np.vstack([np.zeros((1, 4), dtype=np.int64), cand[:-1]])
    xa, ya = xs[prev][:, :, None], ys[prev][:, :, None]
    xb, yb = xs[cand][:, None, :], ys[cand][:, None, :]
    ax, ay = avg_x[:, None, None], avg_y[:, None, None]
    area = np.abs((xa - ax) * (yb - ya) - (xa - xb) * (ay - ya))
    best = np.argmax(np.where(np.isnan(area), -np.inf, area), axis=2).tolist()
    chosen, rows, p = [0], cand.tolist(), 0
    for i, row in enumerate(rows):  # follow the choices: a few hundred list lookups
        p = best[i][p]
        chosen.append(row[p])
    chosen.append(n - 1)
    return np.array(sorted(set(chosen).union(extremes)), dtype=np.int64)


# -- line charts -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Line:
    """One series of a chart: its label, colour, SVG points and the data points they draw."""

    label: str
    color: str
    dash: tuple[int, ...]  # stroke dash pattern, () for solid
    points: str  # "x,y x,y …" in the SVG's coordinates
    steps: tuple[int, ...]  # the drawn points' steps and values (finite)
    values: tuple[float, ...]
    total: int  # finite points of the whole series

    @property
    def drawn(self) -> int:
        return len(self.steps)


@dataclass(frozen=True)
class Chart:
    """Lines on common axes: one for a run's series, one per run for curves overlaid."""

    key: str
    lines: tuple[Line, ...]
    x_range: tuple[int, int]
    y_range: tuple[float, float]
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def points(self) -> str:
        """The first line's SVG points (a run's chart has one line)."""
        return self.lines[0].points

    @property
    def drawn(self) -> int:
        return sum(line.drawn for line in self.lines)

    @property
    def total(self) -> int:
        return sum(line.total for line in self.lines)

    def data(self) -> dict[str, Any]:
        """The drawn points as plain data, for the page's JSON data island (shipyard.js reads it);
        values to 7 significant digits, more than a chart or its readout shows (half the bytes)."""
        return {
            "key": self.key,
            "series": [
                {
                    "label": li.label,
                    "color": li.color,
                    "dash": list(li.dash),
                    "x": li.steps,
                    "y": [float(f"{v:.7g}") for v in li.values],
                }
                for li in self.lines
            ],
        }


def _numbers(seq: Sequence[float] | npt.ArrayLike, dtype: type[np.generic]) -> Any:
    """A sequence as an array (a list converts fastest through fromiter)."""
    if isinstance(seq, list):
        return np.fromiter(seq, dtype, count=len(seq))
    return np.asarray(seq, dtype=dtype)


def overlay(
    key: str, series: Sequence[tuple[str, Sequence[int], Sequence[float]]], max_points: int = 500
) -> Chart | None:
    """Series ``(label, steps, values)`` drawn on common axes, each downsampled to about
    ``max_points`` and left without its non-finite values; None when nothing finite is left.

    Example:
        >>> c = overlay("loss", [("a", [0, 1, 2], [3.0, 2.0, 1.0]), ("b", [0, 1], [2.5, 0.5])])
        >>> [line.label for line in c.lines], c.x_range, c.y_range
        (['a', 'b'], (0, 2), (0.5, 3.0))
    """
    kept: list[tuple[str, Any, Any, int]] = []
    for label, steps, values in series:
        x = _numbers(steps, np.int64).astype(np.float64)
        y = _numbers(values, np.float64)
        finite = np.isfinite(y)
        if not finite.all():
            x, y = x[finite], y[finite]
        if len(x):
            chosen = downsample(x, y, max_points)
            kept.append((label, x[chosen], y[chosen], len(x)))
    if not kept:
        return None
    x0 = min(float(x[0]) for _, x, _, _ in kept)
    x1 = max(float(x[-1]) for _, x, _, _ in kept)
    y0 = min(float(y.min()) for _, _, y, _ in kept)
    y1 = max(float(y.max()) for _, _, y, _ in kept)
    sx = (WIDTH - 2 * PAD) / (x1 - x0) if x1 > x0 else 0.0
    sy = (HEIGHT - 2 * PAD) / (y1 - y0) if y1 > y0 else 0.0
    lines = []
    for i, (label, x, y, total) in enumerate(kept):
        px = PAD + (x - x0) * sx if sx else np.full(len(x), WIDTH / 2)
        py = HEIGHT - PAD - (y - y0) * sy if sy else np.full(len(y), HEIGHT / 2)
        points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px.tolist(), py.tolist(), strict=True))
        color, dash = COLORS[i % len(COLORS)], DASH if (i // len(COLORS)) % 2 else ()
        steps = tuple(int(s) for s in x.tolist())
        lines.append(Line(label, color, dash, points, steps, tuple(y.tolist()), total))
    return Chart(key, tuple(lines), (int(x0), int(x1)), (y0, y1))


def chart(key: str, steps: Sequence[int], values: Sequence[float], max_points: int = 500) -> Chart | None:
    """The chart of a series (non-finite values left out), or None when nothing finite is left."""
    return overlay(key, [(key, steps, values)], max_points)


# -- parallel coordinates ----------------------------------------------------------------------
PC_SPACING, PC_PAD_X, PC_TOP, PC_BOTTOM, PC_HEIGHT = 130, 70, 40, 250, 280
MAX_AXES = 16
"""Most axes a parallel-coordinates chart draws (params by name, then the metric)."""


@dataclass(frozen=True)
class Axis:
    """A vertical axis: a param (``params.lr``) or the metric (``metrics.auc``).

    A numeric axis is linear from ``low`` (bottom) to ``high`` (top); a categorical one puts its
    categories, sorted, evenly from bottom to top (``ticks``: their y and label).
    """

    name: str
    x: float
    numeric: bool
    low: str
    high: str
    ticks: tuple[tuple[float, str], ...]


@dataclass(frozen=True)
class Trace:
    """A run across the axes: polylines through the axes where it has values (a run lacking a value
    breaks there), lone points where both neighbours are missing, coloured by its metric."""

    label: str
    color: str
    value: float | None
    segments: tuple[str, ...]  # "x,y x,y …", two or more axes each
    dots: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Parallel:
    """Parallel coordinates of runs: one axis per differing param and one for the metric."""

    metric: str
    axes: tuple[Axis, ...]
    traces: tuple[Trace, ...]
    width: int
    height: int
    metric_range: tuple[float, float] | None  # over the runs that have it
    left_out: int  # differing params past MAX_AXES, not drawn
    top: int = PC_TOP  # the axes' ends: a value's y is between them
    bottom: int = PC_BOTTOM

    @property
    def scale(self) -> tuple[str, ...]:
        """The metric's colours, low to high."""
        return tuple("#{:02x}{:02x}{:02x}".format(*rgb) for rgb in SCALE)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _label(value: float) -> str:
    return f"{value:.4g}"


def _color(t: float) -> str:
    """The metric's colour at ``t`` in [0, 1] along :data:`SCALE`."""
    (r0, g0, b0), (r1, g1, b1) = (SCALE[0], SCALE[1]) if t <= 0.5 else (SCALE[1], SCALE[2])
    u = t * 2 if t <= 0.5 else t * 2 - 1
    return "#{:02x}{:02x}{:02x}".format(*(round(a + (b - a) * u) for a, b in ((r0, r1), (g0, g1), (b0, b1))))


def _axis(name: str, x: float, values: Sequence[str | float | None]) -> tuple[Axis, list[float | None]]:
    """An axis over one value per run (None: the run lacks it), and each run's y on it."""
    present = [v for v in values if v is not None]
    as_numbers = [v if isinstance(v, float) else _number(v) for v in present]
    span = PC_BOTTOM - PC_TOP
    if not present:
        return Axis(name, x, True, "", "", ()), [None] * len(values)
    if all(v is not None for v in as_numbers):
        numbers = [float(v) for v in as_numbers if v is not None]
        lo, hi = min(numbers), max(numbers)

        def y_of(v: float) -> float:
            return PC_BOTTOM - (v - lo) / (hi - lo) * span if hi > lo else (PC_TOP + PC_BOTTOM) / 2

        ys = [None if v is None else y_of(v if isinstance(v, float) else float(v)) for v in values]
        return Axis(name, x, True, _label(lo), _label(hi), ()), ys
    categories = sorted({str(v) for v in present})
    k = len(categories)
    at = {
        c: PC_BOTTOM - i / (k - 1) * span if k > 1 else (PC_TOP + PC_BOTTOM) / 2
        for i, c in enumerate(categories)
    }
    ticks = tuple((at[c], c) for c in categories)
    return Axis(name, x, False, "", "", ticks), [None if v is None else at[str(v)] for v in values]


def _stretches(
    points: Sequence[tuple[float, float | None] | None],
) -> tuple[tuple[str, ...], tuple[tuple[float, float], ...]]:
    """A trace's points (None where its run lacks a value) as SVG polylines of two or more points,
    and the lone points between gaps."""
    segments: list[str] = []
    dots: list[tuple[float, float]] = []
    stretch: list[tuple[float, float]] = []
    for point in [*points, None]:  # a final gap ends the last stretch
        if point is not None and point[1] is not None:
            stretch.append((point[0], point[1]))
            continue
        if len(stretch) > 1:
            segments.append(" ".join(f"{x:.1f},{y:.1f}" for x, y in stretch))
        elif stretch:
            dots.append((round(stretch[0][0], 1), round(stretch[0][1], 1)))
        stretch = []
    return tuple(segments), tuple(dots)


def parallel(metric: str, runs: Sequence[tuple[str, Mapping[str, str], float | None]]) -> Parallel | None:
    """Parallel coordinates of ``runs`` (``(label, params, metric value)``): an axis per param whose
    values differ among them (a param some runs lack differs; numeric when every value is a finite
    number, else categorical), sorted by name, then the metric's axis; each run a trace coloured by
    its metric. None when no param differs.

    Example:
        >>> pc = parallel("auc", [("a", {"lr": "0.1"}, 0.8), ("b", {"lr": "0.3"}, 0.9)])
        >>> [(axis.name, axis.low, axis.high) for axis in pc.axes]
        [('params.lr', '0.1', '0.3'), ('metrics.auc', '0.8', '0.9')]
    """
    keys = sorted({k for _, params, _ in runs for k in params})
    differing = [k for k in keys if len({params.get(k) for _, params, _ in runs}) > 1]
    if not differing:
        return None
    shown = differing[: MAX_AXES - 1]
    columns: list[tuple[str, list[str | float | None]]] = [
        (f"params.{k}", [params.get(k) for _, params, _ in runs]) for k in shown
    ]
    scores = [v if v is not None and math.isfinite(v) else None for _, _, v in runs]
    columns.append((f"metrics.{metric}", list(scores)))
    axes, ys = [], []
    for i, (name, values) in enumerate(columns):
        axis, at = _axis(name, PC_PAD_X + i * PC_SPACING, values)
        axes.append(axis)
        ys.append(at)
    finite = [v for v in scores if v is not None]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 0.0)
    traces = []
    for r, (label, _, _) in enumerate(runs):
        score = scores[r]
        color = MISSING_COLOR if score is None else _color((score - lo) / (hi - lo) if hi > lo else 0.5)
        segments, dots = _stretches(
            [None if at[r] is None else (axis.x, at[r]) for axis, at in zip(axes, ys, strict=True)]
        )
        traces.append(Trace(label, color, score, segments, dots))
    width = 2 * PC_PAD_X + (len(axes) - 1) * PC_SPACING
    return Parallel(
        metric,
        tuple(axes),
        tuple(traces),
        width,
        PC_HEIGHT,
        (lo, hi) if finite else None,
        len(differing) - len(shown),
    )
