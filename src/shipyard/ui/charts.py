"""Metric charts the server draws: a series downsampled with LTTB, drawn as inline SVG.

A run's series may hold a million points; a page needs a few hundred to look the same. LTTB
(largest-triangle-three-buckets, Steinarsson 2013) keeps the first and last points and, from each
bucket between, the point that makes the largest triangle with the point kept before it and the
mean of the next bucket: peaks and troughs survive, flat stretches thin out. The SVG needs no
JavaScript and scales with the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Chart", "chart", "lttb"]

WIDTH, HEIGHT, PAD = 640, 180, 6


def lttb(x: npt.ArrayLike, y: npt.ArrayLike, n_out: int) -> npt.NDArray[np.int64]:
    """Indices of the ``n_out`` points LTTB keeps of the series ``(x, y)`` (x ascending).

    Every point is kept when there are at most ``n_out`` of them (or ``n_out < 3``).

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
    # n_out - 2 buckets over points 1 … n-2: bucket i is [floor(i·every) + 1, floor((i+1)·every) + 1)
    # with every = (n-2)/(n_out-2), in integers (exact where a float floor might round down)
    edges = np.arange(n_out - 1, dtype=np.int64) * (n - 2) // (n_out - 2) + 1
    a = 0
    for i in range(n_out - 2):
        lo, hi = edges[i], edges[i + 1]
        nlo, nhi = hi, (edges[i + 2] if i + 2 < len(edges) else n)
        avg_x, avg_y = xs[nlo:nhi].mean(), ys[nlo:nhi].mean()
        bx, by = xs[lo:hi], ys[lo:hi]
        area = np.abs((xs[a] - avg_x) * (by - ys[a]) - (xs[a] - bx) * (avg_y - ys[a]))
        a = lo + int(np.argmax(area))
        keep[i + 1] = a
    return keep


@dataclass(frozen=True)
class Chart:
    """One series ready to draw: its key, SVG points, axis labels and how many points it stands for."""

    key: str
    points: str  # "x,y x,y …" in the SVG's coordinates
    drawn: int
    total: int
    x_range: tuple[int, int]
    y_range: tuple[float, float]
    width: int = WIDTH
    height: int = HEIGHT


def chart(key: str, steps: Sequence[int], values: Sequence[float], max_points: int = 500) -> Chart | None:
    """The chart of a series (non-finite values left out), or None when nothing finite is left."""
    x = np.asarray(steps, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(y)
    x, y = x[finite], y[finite]
    if len(x) == 0:
        return None
    kept = lttb(x, y, max_points)
    x, y = x[kept], y[kept]
    x0, x1 = float(x.min()), float(x.max())
    y0, y1 = float(y.min()), float(y.max())
    sx = (WIDTH - 2 * PAD) / (x1 - x0) if x1 > x0 else 0.0
    sy = (HEIGHT - 2 * PAD) / (y1 - y0) if y1 > y0 else 0.0
    px = PAD + (x - x0) * sx if sx else np.full(len(x), WIDTH / 2)
    py = HEIGHT - PAD - (y - y0) * sy if sy else np.full(len(y), HEIGHT / 2)
    points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py, strict=True))
    return Chart(key, points, len(kept), int(finite.sum()), (int(x0), int(x1)), (y0, y1))
