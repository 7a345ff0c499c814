"""``shipyard audit …``: read the hash-chained audit log, checkpoint its head, and verify it has
not been tampered with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli import render
from shipyard.cli.options import JsonOption
from shipyard.cli.state import get_state

__all__ = ["anchor", "app", "ls", "verify"]

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
def verify(
    ctx: typer.Context,
    anchor: Annotated[
        Path | None,
        typer.Option(
            "--anchor",
            metavar="FILE",
            help="Also check against checkpoints you pinned (shipyard audit anchor --out, or saved "
            "answers of GET /api/v1/audit/head): one JSON object, a list, or JSON lines.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check the chain, its checkpoints and the registry; exit 1 naming what was tampered with.

    Finds edited, deleted or reordered entries, the last entries (or all) deleted, a chain
    rewritten with recomputed hashes (against checkpoints), and aliases, alias history or
    policies changed outside Shipyard. Notes say what could not be checked.

    Examples:

      shipyard audit verify
      shipyard audit verify --anchor /secure/pinned-heads.jsonl --json
    """
    report = get_state(ctx).client().verify_audit(anchor=anchor)
    if as_json:
        render.print_json(report.to_dict())
    elif report.ok:
        anchored = f", matching the checkpoint at entry {report.anchored_seq}" if report.anchored_seq else ""
        render.say(
            f"Audit log intact: {report.checked:,} entries, every hash and link checks out{anchored}; "
            "aliases and policies match the chain."
        )
    else:
        for problem in report.problems[:20]:
            render.error(problem)
    if not as_json:
        for note in report.notes:
            render.say(f"note: {note}")
    if not report.ok:
        raise typer.Exit(1)


@app.command("anchor")
def anchor(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="FILE",
            help="Also append the checkpoint to FILE (JSON lines): keep it where the store's "
            "writers cannot reach, and verify with --anchor FILE.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Checkpoint the audit chain's head now, outside the database (keyed with audit_key_file).

    Checkpoints are also written automatically after every audited change; run this before a
    backup or on a schedule, and pin the output somewhere the database's writers cannot reach.

    Examples:

      shipyard audit anchor
      shipyard audit anchor --out /secure/pinned-heads.jsonl
    """
    checkpoint = get_state(ctx).client().audit_checkpoint()
    if out is not None:
        with out.open("a") as fh:
            fh.write(json.dumps(checkpoint.to_dict(), sort_keys=True) + "\n")
    if as_json:
        render.print_json(checkpoint.to_dict())
        return
    keyed = "keyed" if checkpoint.mac else "NOT keyed (set audit_key_file)"
    where = f"; appended to {out}" if out is not None else ""
    render.say(
        f"Checkpoint at entry {checkpoint.seq} ({checkpoint.count:,} entries, {keyed}): "
        f"{checkpoint.hash}{where}"
    )
