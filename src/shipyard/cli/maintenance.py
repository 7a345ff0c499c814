"""``shipyard gc``: purge deleted runs and the blobs no run refers to any more."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli import render
from shipyard.cli.options import JsonOption
from shipyard.cli.state import get_state

__all__ = ["gc"]


def gc(
    ctx: typer.Context,
    grace_seconds: Annotated[
        float,
        typer.Option(
            "--grace-seconds",
            min=0,
            metavar="S",
            help="Keep unreferenced blobs younger than this (a writer may not have recorded them yet).",
        ),
    ] = 3600.0,
    as_json: JsonOption = False,
) -> None:
    """Garbage-collect: purge soft-deleted runs for good, then delete unreferenced artifact blobs.

    Runs deleted with `shipyard runs delete` lose their params, metrics and artifact records
    for good; then blobs that no run refers to and that are older than the grace period are
    deleted from the artifact store.

    Examples:

      shipyard runs delete 3f2a9c… && shipyard gc
      shipyard gc --grace-seconds 0 --json
    """
    client = get_state(ctx).client()
    with render.err_console().status("Collecting garbage…"):
        report = client.gc(grace_seconds=grace_seconds)
    if as_json:
        render.print_json(report.to_dict())
        return
    table = render.make_table("what", "count", title="Garbage collection")
    for key, value in report.to_dict().items():
        table.add_row(*render.cells([key.replace("_", " "), value]))
    render.show(table)
