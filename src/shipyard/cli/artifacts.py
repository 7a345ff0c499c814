"""``shipyard artifacts …``: list a run's artifacts and download them (every blob verified)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from shipyard.cli import render
from shipyard.cli.options import JsonOption
from shipyard.cli.state import get_state
from shipyard.errors import ArtifactNotFound

__all__ = ["app", "get", "ls"]

app = typer.Typer(no_args_is_help=True, help="List and download run artifacts.")

RunIdArg = Annotated[str, typer.Argument(metavar="RUN_ID", help="A run id (see: shipyard runs ls).")]
PathArg = Annotated[
    str,
    typer.Argument(
        metavar="PATH", help="An artifact file or folder, e.g. model/model.skops.", show_default=False
    ),
]


@app.command("ls")
def ls(ctx: typer.Context, run_id: RunIdArg, path: PathArg = "", as_json: JsonOption = False) -> None:
    """List a run's artifacts (path, size, content digest), optionally under PATH.

    Digests are BLAKE3 hashes of the content: the same bytes are stored once.

    Examples:

      shipyard artifacts ls 3f2a9c…
      shipyard artifacts ls 3f2a9c… model --json
    """
    found = get_state(ctx).client().list_artifacts(run_id, path)
    if as_json:
        render.print_json([asdict(a) for a in found])
        return
    if not found:
        render.say(f"Run {run_id} has no artifacts{f' under {path}' if path else ''}.")
        return
    table = render.make_table("path", "size", "digest", "logged")
    for a in found:
        table.add_row(
            *render.cells([a.path, render.fmt_bytes(a.size), a.digest, render.fmt_time(a.created_at)])
        )
    render.show(table)


@app.command("get")
def get(
    ctx: typer.Context,
    run_id: RunIdArg,
    path: PathArg = "",
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="DIR", help="Folder to download into.", file_okay=False)
    ] = Path("."),
    as_json: JsonOption = False,
) -> None:
    """Download a run's artifacts (all, or the file/folder at PATH) into DIR, verifying every blob.

    Files keep their artifact paths below DIR, so `model/model.skops` lands in `DIR/model/model.skops`.

    Examples:

      shipyard artifacts get 3f2a9c… -o ./downloads
      shipyard artifacts get 3f2a9c… model/model.skops -o .
    """
    client = get_state(ctx).client()
    found = client.list_artifacts(run_id, path)
    if not found:
        where = f"at '{path}'" if path else "at all"
        raise ArtifactNotFound(
            f"Run '{run_id}' has no artifacts {where} (list them: shipyard artifacts ls {run_id})"
        )
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=render.err_console(),
        transient=True,
    )
    with progress:
        task = progress.add_task("downloading", total=sum(a.size for a in found))
        for artifact in found:
            progress.update(task, description=artifact.path)
            client.download_artifacts(run_id, artifact.path, output)
            progress.advance(task, artifact.size)
    target = output / path if path else output
    if as_json:
        render.print_json({"run_id": run_id, "path": str(target), "files": [asdict(a) for a in found]})
        return
    total = render.fmt_bytes(sum(a.size for a in found))
    render.say(f"Downloaded {len(found)} file(s), {total}, to {target}")
