"""``shipyard experiments …``: list experiments."""

from __future__ import annotations

import typer

from shipyard.cli import render
from shipyard.cli.options import JsonOption
from shipyard.cli.state import get_state

__all__ = ["app", "ls"]

app = typer.Typer(no_args_is_help=True, help="List experiments.")


@app.command("ls")
def ls(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List experiments (id, name, creation time, description).

    An experiment is created by the first run that names it.

    Examples:

      shipyard experiments ls
      shipyard experiments ls --json
    """
    found = get_state(ctx).client().list_experiments()
    if as_json:
        render.print_json(
            [
                {"id": e.id, "name": e.name, "created_at": e.created_at, "description": e.description}
                for e in found
            ]
        )
        return
    if not found:
        render.say("No experiments yet. Create some with: shipyard demo")
        return
    table = render.make_table("id", "name", "created", "description")
    for e in found:
        table.add_row(*render.cells([e.id, e.name, render.fmt_time(e.created_at), e.description]))
    render.show(table)
