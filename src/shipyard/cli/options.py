"""Option types shared by several commands, so they read and behave the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["JsonOption", "LimitOption", "PageTokenOption"]

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON on stdout (and nothing else).")
]
LimitOption = Annotated[int, typer.Option("--limit", "-n", min=1, max=50_000, help="Most rows to show.")]
PageTokenOption = Annotated[
    str | None,
    typer.Option(
        "--page-token", metavar="TOKEN", help="Continue a listing from the token a previous page printed."
    ),
]
