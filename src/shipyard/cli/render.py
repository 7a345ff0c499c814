"""Rendering for the CLI: rich consoles and tables, JSON output, value formatting, sparklines.

Everything the CLI prints goes through here, so the rules live in one place:
colour only on a terminal (rich honours ``NO_COLOR`` and non-TTY output), user
data is never parsed as rich markup, ``--json`` writes exactly one JSON document
to stdout, and errors, progress and hints go to stderr.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import typer
from rich import box
from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

__all__ = [
    "SPARK_BLOCKS",
    "cells",
    "err_console",
    "error",
    "fmt_bytes",
    "fmt_duration",
    "fmt_time",
    "fmt_value",
    "jsonable",
    "make_table",
    "out_console",
    "print_json",
    "say",
    "show",
    "sparkline",
]

SPARK_BLOCKS = "▁▂▃▄▅▆▇█"
# Piped output is read by grep/less, not wrapped by a terminal: give tables room.
_PIPE_WIDTH = 100
_MEASURE_WIDTH = 100_000


def _console(stderr: bool, width: int | None = None) -> Console:
    # rich's own NO_COLOR handling drops colours but keeps bold/dim; the convention wants plain text.
    colors: Literal["auto"] | None = None if os.environ.get("NO_COLOR") else "auto"
    probe = Console(stderr=stderr, color_system=colors)
    if probe.is_terminal:
        return probe
    return Console(
        stderr=stderr, color_system=colors, width=width or int(os.environ.get("COLUMNS") or _PIPE_WIDTH)
    )


def show(*renderables: RenderableType) -> None:
    """Print to stdout. Piped, a table gets its natural width (no folding) unless COLUMNS is set."""
    console = out_console()
    if console.is_terminal or os.environ.get("COLUMNS"):
        console.print(*renderables)
        return
    wide = Console(width=_MEASURE_WIDTH)
    natural = max(Measurement.get(wide, wide.options, r).maximum for r in renderables)
    _console(stderr=False, width=max(natural, _PIPE_WIDTH)).print(*renderables)


def out_console() -> Console:
    """A console on stdout (built per call: tests and pipes swap ``sys.stdout``)."""
    return _console(stderr=False)


def err_console() -> Console:
    """A console on stderr, for errors, hints and progress bars."""
    return _console(stderr=True)


def say(message: str) -> None:
    """Print a plain message on stdout (never parsed as markup)."""
    out_console().print(Text(message), soft_wrap=True)


def error(message: str) -> None:
    """Print ``error: <message>`` in red on stderr."""
    err_console().print(Text(f"error: {message}", style="red"), soft_wrap=True)


def jsonable(value: Any) -> Any:
    """Turn SDK values (numpy scalars, timestamps, NaN) into strict-JSON-safe Python values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and getattr(value, "size", 2) == 1:  # numpy scalars
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if hasattr(value, "isoformat"):  # pandas.Timestamp, NaT
        return None if str(value) == "NaT" else value.isoformat()
    return str(value)


def print_json(data: Any) -> None:
    """Write one JSON document to stdout (strict JSON: NaN becomes null)."""
    typer.echo(json.dumps(jsonable(data), indent=2, allow_nan=False))


def make_table(*columns: str, title: str | None = None) -> Table:
    """A table in the house style (light rules; readable when piped)."""
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", title_style="bold", pad_edge=False)
    for name in columns:
        table.add_column(name, overflow="fold")
    return table


def cells(values: Iterable[Any]) -> list[Text]:
    """Format values as table cells that rich will not interpret as markup."""
    return [v if isinstance(v, Text) else Text(fmt_value(v)) for v in values]


def fmt_value(value: Any) -> str:
    """A compact, human-readable rendering of a param, metric or attribute value."""
    if value is None:
        return ""
    if hasattr(value, "item") and getattr(value, "size", 2) == 1:
        value = value.item()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.5g}"
    if hasattr(value, "isoformat"):  # pandas.Timestamp / NaT
        return "" if str(value) == "NaT" else value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def fmt_time(ms: int | None) -> str:
    """Epoch milliseconds as local ``YYYY-MM-DD HH:MM:SS`` (empty when unknown)."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(start_ms: int, end_ms: int | None) -> str:
    """``1h 02m``, ``3m 07s`` or ``4.2s``; empty while a run is still going."""
    if end_ms is None:
        return ""
    seconds = max(0.0, (end_ms - start_ms) / 1000)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def fmt_bytes(size: int) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 MiB`` …"""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - loop always returns


def sparkline(values: Sequence[float], width: int = 60) -> str:
    """A one-line unicode chart of a series, resampled to at most ``width`` characters.

    Example:
        >>> sparkline([0, 1, 2, 3, 4, 5, 6, 7])
        '▁▂▃▄▅▆▇█'
    """
    finite = [v for v in values if math.isfinite(v)]
    if not finite or width < 1:
        return ""
    buckets = _resample([v if math.isfinite(v) else math.nan for v in values], width)
    low, high = min(finite), max(finite)
    span = high - low
    top = len(SPARK_BLOCKS) - 1
    chars = []
    for v in buckets:
        if math.isnan(v):
            chars.append(" ")
        else:
            chars.append(SPARK_BLOCKS[round((v - low) / span * top) if span else top // 2])
    return "".join(chars)


def _resample(values: Sequence[float], width: int) -> list[float]:
    """Bucket means (ignoring NaN) so a long series fits ``width`` characters."""
    n = len(values)
    if n <= width:
        return list(values)
    out = []
    for i in range(width):
        part = [v for v in values[i * n // width : (i + 1) * n // width] if not math.isnan(v)]
        out.append(sum(part) / len(part) if part else math.nan)
    return out
