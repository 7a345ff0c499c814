"""The monitoring pages' charts as geometry: lines over time (with a threshold and flagged points) and
two histograms overlaid, computed here and drawn as inline SVG by the templates.

Pure functions of numbers the stored reports hold: nothing is read, nothing is computed about the
data beyond where it lands on the page (a bin's count divided by its side's total, to overlay two
sides of different sizes). Text never enters the SVG from here: names and values are placed by the
autoescaping templates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Bar", "Histogram", "Line", "Mark", "TimePlot", "histogram", "time_plot"]

WIDTH, HEIGHT = 560, 190
LEFT, RIGHT, TOP, BOTTOM = 52, 10, 10, 22
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

Point = tuple[int, float | None, bool]
"""One point of a series: epoch ms, value (None or non-finite: not drawn), flagged (drawn marked)."""


@dataclass(frozen=True)
class Mark:
    """A drawn point: where it lands (``x``, ``y``) and what it stands for."""

    x: float
    y: float
    when: int
    value: float
    flagged: bool


@dataclass(frozen=True)
class Line:
    """One named series: its polyline points (``"x,y x,y …"``) and its marks."""

    name: str
    points: str
    marks: tuple[Mark, ...]


@dataclass(frozen=True)
class TimePlot:
    """Lines over time, ready to draw. ``threshold`` is a polyline (empty without one);
    ``ticks`` are ``(y, value)`` pairs for the value axis."""

    lines: tuple[Line, ...]
    threshold: str
    t_range: tuple[int, int]
    y_range: tuple[float, float]
    ticks: tuple[tuple[float, float], ...]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    bottom: int = HEIGHT - BOTTOM


def time_plot(
    series: Mapping[str, Sequence[Point]],
    threshold: Sequence[tuple[int, float]] = (),
    floor: float | None = None,
) -> TimePlot | None:
    """Lines of ``(epoch ms, value, flagged)`` points, with an optional threshold line (its value at
    each time; held flat to the plot's edges) and the value axis reaching down to ``floor``.

    None when no series has a finite value. Points are drawn in time order; missing values are
    left out (the line joins the neighbours).

    Example:
        >>> plot = time_plot({"psi": [(0, 0.1, False), (60_000, 0.4, True)]}, [(0, 0.2), (60_000, 0.2)])
        >>> [m.flagged for m in plot.lines[0].marks], plot.y_range[0] <= 0.1
        ([False, True], True)
    """
    kept = {
        name: sorted((t, v, f) for t, v, f in pts if v is not None and math.isfinite(v))
        for name, pts in series.items()
    }
    limits = sorted((t, v) for t, v in threshold if math.isfinite(v))
    values = [v for pts in kept.values() for _, v, _ in pts]
    if not values:
        return None
    times = [t for pts in kept.values() for t, _, _ in pts] + [t for t, _ in limits]
    t0, t1 = min(times), max(times)
    lo = min([*values, *(v for _, v in limits), *([floor] if floor is not None else [])])
    hi = max([*values, *(v for _, v in limits)])
    if hi - lo < 1e-12:
        pad = abs(hi) * 0.1 or 0.5
        hi += pad
        lo -= 0.0 if floor is not None and lo <= floor else pad
    hi += (hi - lo) * 0.05  # headroom: a point at the top is not cut by the frame

    def x_of(t: int) -> float:
        return LEFT + (PLOT_W * (t - t0) / (t1 - t0) if t1 > t0 else PLOT_W / 2)

    def y_of(v: float) -> float:
        return TOP + PLOT_H * (hi - v) / (hi - lo)

    lines = []
    for name, pts in kept.items():
        marks = tuple(Mark(round(x_of(t), 1), round(y_of(v), 1), t, v, f) for t, v, f in pts)
        lines.append(Line(name, " ".join(f"{m.x},{m.y}" for m in marks), marks))
    edge = ""
    if limits:
        ys = [round(y_of(v), 1) for _, v in limits]
        inner = [f"{round(x_of(t), 1)},{y}" for (t, _), y in zip(limits, ys, strict=True)]
        edge = " ".join([f"{LEFT},{ys[0]}", *inner, f"{WIDTH - RIGHT},{ys[-1]}"])
    ticks = tuple((round(y_of(v), 1), v) for v in (lo, (lo + hi) / 2, hi))
    return TimePlot(tuple(lines), edge, (t0, t1), (lo, hi), ticks)


@dataclass(frozen=True)
class Bar:
    """One bin of the overlaid histograms: both sides' counts and shares, and their bars."""

    label: str
    reference_count: float
    current_count: float
    reference_share: float
    current_share: float
    x: float
    width: float
    reference_y: float
    reference_h: float
    current_y: float
    current_h: float


@dataclass(frozen=True)
class Histogram:
    """Reference and current shares per bin, overlaid in one frame."""

    bars: tuple[Bar, ...]
    top_share: float
    reference_total: float
    current_total: float
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    bottom: int = HEIGHT - BOTTOM
    top: int = TOP


def _shares(counts: Sequence[float]) -> tuple[list[float], float]:
    total = sum(c for c in counts if math.isfinite(c))
    return [c / total if total and math.isfinite(c) else 0.0 for c in counts], total


def histogram(
    reference: Sequence[float], current: Sequence[float], labels: Sequence[str] = ()
) -> Histogram | None:
    """Two sides' counts over the same bins as shares of their side, overlaid (bin ``i`` of one over
    bin ``i`` of the other). ``labels`` names the bins (default ``1``, ``2``, …). None without bins.

    Example:
        >>> h = histogram([5, 5], [2, 8])
        >>> [(b.reference_share, b.current_share) for b in h.bars]
        [(0.5, 0.2), (0.5, 0.8)]
    """
    n = max(len(reference), len(current))
    if n == 0:
        return None
    ref, ref_total = _shares(reference)
    cur, cur_total = _shares(current)
    ref += [0.0] * (n - len(ref))
    cur += [0.0] * (n - len(cur))
    top = max([*ref, *cur]) or 1.0
    slot = PLOT_W / n
    bars = []
    for i in range(n):
        ref_h, cur_h = PLOT_H * ref[i] / top, PLOT_H * cur[i] / top
        bars.append(
            Bar(
                label=labels[i] if i < len(labels) else str(i + 1),
                reference_count=float(reference[i]) if i < len(reference) else 0.0,
                current_count=float(current[i]) if i < len(current) else 0.0,
                reference_share=ref[i],
                current_share=cur[i],
                x=round(LEFT + i * slot + slot * 0.05, 1),
                width=round(slot * 0.9, 1),
                reference_y=round(TOP + PLOT_H - ref_h, 1),
                reference_h=round(ref_h, 1),
                current_y=round(TOP + PLOT_H - cur_h, 1),
                current_h=round(cur_h, 1),
            )
        )
    return Histogram(tuple(bars), top, ref_total, cur_total)
