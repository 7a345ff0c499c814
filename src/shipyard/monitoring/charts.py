"""Small inline SVG charts for the HTML report, drawn in Python so the file needs no script or network.

Every piece of text placed in a chart goes through ``html.escape`` (feature names and category values come
from users); the result is SVG text that the autoescaping template inserts with ``|safe``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape

__all__ = ["bars", "lines"]

WIDTH, HEIGHT = 520, 200
LEFT, RIGHT, TOP, BOTTOM = 46, 12, 12, 34
COLOURS = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#c53030", "#718096")


def _shares(counts: Sequence[float]) -> list[float]:
    total = sum(c for c in counts if math.isfinite(c))
    return [c / total if total and math.isfinite(c) else 0.0 for c in counts]


def _frame(title: str, body: list[str], legend: Sequence[str]) -> str:
    keys = "".join(
        f'<rect x="{LEFT + 110 * i}" y="{HEIGHT - 12}" width="10" height="10" fill="{COLOURS[i % 6]}"/>'
        f'<text x="{LEFT + 110 * i + 14}" y="{HEIGHT - 3}" font-size="11">{escape(name)}</text>'
        for i, name in enumerate(legend)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}"><title>{escape(title)}</title>'
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" '
        'stroke="#999"/>'
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#999"/>'
        + "".join(body)
        + keys
        + "</svg>"
    )


def _y_axis(low: float, high: float) -> list[str]:
    out = []
    for k in range(3):
        value = low + (high - low) * k / 2
        y = HEIGHT - BOTTOM - (HEIGHT - BOTTOM - TOP) * k / 2
        out.append(
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{value:.3g}</text>'
        )
    return out


def bars(reference: Sequence[float], current: Sequence[float], title: str) -> str:
    """Reference and current shares per bin (or category) side by side.

    Example:
        >>> "<rect" in bars([5, 5], [2, 8], "dep_delay")
        True
    """
    ref, cur = _shares(reference), _shares(current)
    n = max(len(ref), len(cur), 1)
    high = max([*ref, *cur, 1e-9])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / n
    body = _y_axis(0.0, high)
    for i in range(n):
        for j, values in enumerate((ref, cur)):
            v = values[i] if i < len(values) else 0.0
            h = plot_h * v / high
            x = LEFT + i * slot + slot * (0.1 + 0.4 * j)
            body.append(
                f'<rect x="{x:.1f}" y="{HEIGHT - BOTTOM - h:.1f}" width="{slot * 0.4:.1f}" '
                f'height="{h:.1f}" fill="{COLOURS[j]}"><title>bin {i + 1}: {v:.1%}</title></rect>'
            )
    return _frame(title, body, ("reference", "current"))


def _day(ms: int, span_ms: int = 3_600_000) -> str:
    """A point's time; with seconds when the whole chart spans under an hour (a replay, a burst)."""
    fmt = "%Y-%m-%d %H:%M" if span_ms >= 3_600_000 else "%Y-%m-%d %H:%M:%S"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime(fmt)


def lines(series: Mapping[str, Sequence[tuple[int, float | None]]], title: str) -> str:
    """One line per named series of ``(epoch ms, value)`` points; ``None`` values leave a gap.

    Example:
        >>> "<polyline" in lines({"share drifted": [(0, 0.1), (3_600_000, 0.4)]}, "drift")
        True
    """
    points = [(t, v) for s in series.values() for t, v in s if v is not None and math.isfinite(v)]
    if not points:
        return _frame(title, [f'<text x="{LEFT + 10}" y="{HEIGHT / 2}">no data</text>'], ())
    t0, t1 = min(t for t, _ in points), max(t for t, _ in points)
    low, high = min(v for _, v in points), max(v for _, v in points)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def xy(t: int, v: float) -> str:
        x = LEFT + (plot_w * (t - t0) / (t1 - t0) if t1 > t0 else plot_w / 2)
        return f"{x:.1f},{HEIGHT - BOTTOM - plot_h * (v - low) / (high - low):.1f}"

    body = _y_axis(low, high)
    body.append(f'<text x="{LEFT}" y="{HEIGHT - BOTTOM + 13}" font-size="10">{_day(t0, t1 - t0)}</text>')
    body.append(
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - BOTTOM + 13}" font-size="10" text-anchor="end">'
        f"{_day(t1, t1 - t0)}</text>"
    )
    for i, s in enumerate(series.values()):
        colour = COLOURS[i % len(COLOURS)]
        good = [(t, v) for t, v in s if v is not None and math.isfinite(v)]
        coords = " ".join(xy(t, v) for t, v in good)
        body.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>')
        body += [
            f'<circle cx="{xy(t, v).split(",")[0]}" cy="{xy(t, v).split(",")[1]}" r="3" fill="{colour}">'
            f"<title>{_day(t, t1 - t0)}: {v:.4g}</title></circle>"
            for t, v in good
        ]
    return _frame(title, body, list(series))
