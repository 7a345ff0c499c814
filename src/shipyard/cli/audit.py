"""``shipyard audit …``: read the hash-chained audit log and verify it has not been tampered with."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli import render
from shipyard.cli.options import JsonOption
from shipyard.cli.state import get_state

__all__ = ["app", "ls", "verify"]

app = typer.Typer(no_args_is_help=True, help="Read and verify the audit log.")

_Opt = Annotated[str | None, typer.Option(help="Only entries with this value.")]


@app.command("ls")
def ls(
    ctx: typer.Context,
    actor: _Opt = None,
    action: _Opt = None,
    object_type: Annotated[str | None, typer.Option("--type", help="Only this kind of object.")] = None,
    object_id: Annotated[str | None, typer.Option("--object", help="Only this object.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many entries.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """List audit entries, oldest first: who did what to which object, when and why.

    Examples:

      shipyard audit ls --action run.delete
      shipyard audit ls --type dataset --json
    """
    filters = {"actor": actor, "action": action, "object_type": object_type, "object_id": object_id}
    entries = get_state(ctx).client().list_audit(0, limit, **filters)
    if as_json:
        render.print_json([e.to_dict() for e in entries])
        return
    table = render.make_table("seq", "when", "actor", "action", "object", "reason")
    for e in entries:
        table.add_row(
            *render.cells(
                [e.seq, render.fmt_time(e.ts), e.actor, e.action, f"{e.object_type} {e.object_id}", e.reason]
            )
        )
    render.show(table)


@app.command("verify")
def verify(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Check the whole chain; exit 1 naming the first edited, deleted or reordered entry.

    Examples:

      shipyard audit verify
    """
    report = get_state(ctx).client().verify_audit()
    if as_json:
        render.print_json(
            {
                "ok": report.ok,
                "checked": report.checked,
                "first_bad_seq": report.first_bad_seq,
                "problems": report.problems,
            }
        )
    elif report.ok:
        render.say(f"Audit log intact: {report.checked:,} entries, every hash and link checks out.")
    else:
        for problem in report.problems[:20]:
            render.error(problem)
    if not report.ok:
        raise typer.Exit(1)
