"""Rendering helpers: sparklines, value formatting, strict JSON."""

from __future__ import annotations

import json
import math

import pytest

from shipyard.cli import render


def test_sparkline_spans_the_blocks_from_min_to_max() -> None:
    assert render.sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert render.sparkline([8, 1]) == "█▁"


def test_sparkline_resamples_long_series_to_the_width() -> None:
    line = render.sparkline([float(i) for i in range(1000)], width=40)
    assert len(line) == 40 and line[0] == "▁" and line[-1] == "█"


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], ""), ([5.0, 5.0], "▄▄"), ([math.nan, 1.0, 2.0], " ▁█"), ([math.inf], "")],
)
def test_sparkline_edge_cases(values: list[float], expected: str) -> None:
    assert render.sparkline(values) == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, ""), (True, "true"), (3.0, "3"), (0.123456789, "0.12346"), (math.nan, ""), ("[x]", "[x]")],
)
def test_fmt_value(value: object, text: str) -> None:
    assert render.fmt_value(value) == text


@pytest.mark.parametrize(
    ("start", "end", "text"),
    [(0, None, ""), (0, 4200, "4.2s"), (0, 187_000, "3m 07s"), (0, 3_720_000, "1h 02m")],
)
def test_fmt_duration(start: int, end: int | None, text: str) -> None:
    assert render.fmt_duration(start, end) == text


def test_fmt_bytes() -> None:
    assert [render.fmt_bytes(n) for n in (7, 1536, 5 * 2**20)] == ["7 B", "1.5 KiB", "5.0 MiB"]


def test_jsonable_makes_strict_json() -> None:
    import numpy as np
    import pandas as pd

    data = {
        "nan": math.nan,
        "inf": -math.inf,
        "np": np.float64(0.5),
        "ts": pd.Timestamp(0, unit="ms", tz="UTC"),
    }
    text = json.dumps(render.jsonable(data), allow_nan=False)
    assert json.loads(text) == {"nan": None, "inf": None, "np": 0.5, "ts": "1970-01-01T00:00:00+00:00"}


def test_user_text_is_never_parsed_as_markup() -> None:
    assert [c.plain for c in render.cells(["[bold]x[/bold]", 1.5])] == ["[bold]x[/bold]", "1.5"]


def test_no_color_means_plain_text_even_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.text import Text

    monkeypatch.setenv("FORCE_COLOR", "1")  # rich: behave as on a terminal
    console = render.out_console()
    with console.capture() as styled:
        console.print(Text("bold", style="bold red"))
    assert "\x1b[" in styled.get()
    monkeypatch.setenv("NO_COLOR", "1")
    console = render.out_console()
    with console.capture() as plain:
        console.print(Text("bold", style="bold red"))
    assert plain.get() == "bold\n"
