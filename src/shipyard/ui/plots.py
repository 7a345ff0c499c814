"""Bar charts the server draws for dataset profiles: a histogram's bins or a column's top categories.

Pure geometry: :func:`bar_chart` turns counts into rectangles whose lengths are proportional to the
counts (the largest count fills the chart), and the template draws them as inline SVG, so a profile
reads without JavaScript. :func:`histogram_labels` names a profile histogram's bins, including its two
open-ended tail bins, in the column's own unit (numbers, or datetimes from epoch microseconds).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Bar", "BarChart", "bar_chart", "edge_text", "histogram_labels"]

WIDTH, HEIGHT, PAD, GAP = 240, 64, 2, 1
"""A histogram's size in SVG units, its padding, and the gap between two of its bars."""
ROW, LABEL = 14, 110
"""Horizontal bars (categories): each row's height, and the room its label takes on the left."""


@dataclass(frozen=True)
class Bar:
    """One bar in the SVG's coordinates, with what it stands for."""

    x: float
    y: float
    width: float
    height: float
    label: str
    count: int


@dataclass(frozen=True)
class BarChart:
    """Bars ready to draw: vertical (a histogram, low values left) or horizontal (categories)."""

    bars: tuple[Bar, ...]
    width: int
    height: int
    horizontal: bool
    total: int

    @property
    def label_x(self) -> int:
        """Where a horizontal chart's labels end (they are drawn right-aligned there)."""
        return LABEL - 4


def bar_chart(counts: Sequence[int], labels: Sequence[str], *, horizontal: bool = False) -> BarChart:
    """Bars whose lengths are proportional to ``counts`` (the largest count spans the chart).

    Vertical bars share the width equally; horizontal bars get one row each, the label on the left.
    With no counts, or only zeros, every bar has length 0.

    Example:
        >>> [b.height for b in bar_chart([1, 2, 4], ["a", "b", "c"]).bars]
        [15.0, 30.0, 60.0]
    """
    if len(counts) != len(labels):
        raise ValueError(f"{len(counts)} counts but {len(labels)} labels")
    if any(c < 0 for c in counts):
        raise ValueError("counts cannot be negative")
    top = max(counts, default=0)
    scale = 1.0 / top if top > 0 else 0.0
    bars: list[Bar] = []
    if horizontal:
        length = WIDTH - LABEL - PAD
        for i, (count, label) in enumerate(zip(counts, labels, strict=True)):
            y = PAD + i * ROW
            bars.append(Bar(LABEL, y + 1, round(count * scale * length, 2), ROW - 2, label, count))
        height = 2 * PAD + ROW * len(bars)
        return BarChart(tuple(bars), WIDTH, height, True, sum(counts))
    step = (WIDTH - 2 * PAD) / len(counts) if counts else 0.0
    tall = HEIGHT - 2 * PAD
    for i, (count, label) in enumerate(zip(counts, labels, strict=True)):
        h = round(count * scale * tall, 2)
        x = round(PAD + i * step, 2)
        bars.append(Bar(x, round(HEIGHT - PAD - h, 2), round(max(step - GAP, 0.5), 2), h, label, count))
    return BarChart(tuple(bars), WIDTH, HEIGHT, False, sum(counts))


def edge_text(value: float, datetime: bool = False) -> str:
    """A bin edge as text: 4 significant digits, or for datetimes (epoch microseconds) UTC time.

    Example:
        >>> edge_text(1234.5678), edge_text(86_400_000_000, datetime=True)
        ('1235', '1970-01-02')
    """
    if not math.isfinite(value):
        return "∞" if value > 0 else "-∞" if value < 0 else "NaN"
    if datetime:
        try:
            moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=value)
        except OverflowError:
            return f"{value:.4g} µs"
        if moment.time() == dt.time(0):
            return moment.date().isoformat()
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return f"{value:.4g}"


def histogram_labels(edges: Sequence[float], datetime: bool = False) -> list[str]:
    """Names of the ``len(edges) + 1`` bins of a profile histogram: ``< e0``, ``e0 – e1``, …, ``≥ eN``.

    Example:
        >>> histogram_labels([0.0, 0.5, 1.0])
        ['< 0', '0 – 0.5', '0.5 – 1', '≥ 1']
    """
    if not edges:
        return []
    text = [edge_text(e, datetime) for e in edges]
    inner = [f"{a} – {b}" for a, b in zip(text, text[1:], strict=False)]
    return [f"< {text[0]}", *inner, f"≥ {text[-1]}"]
