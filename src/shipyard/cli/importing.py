"""``shipyard import …``: bring another tool's records into Shipyard (``shipyard import mlflow``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from shipyard.cli import render
from shipyard.cli.options import JsonOption
from shipyard.cli.state import get_state
from shipyard.importers import EntityReport, ImportReport, import_mlflow
from shipyard.tracking import Client

__all__ = ["app", "mlflow"]

app = typer.Typer(no_args_is_help=True, help="Import records from other tools (an MLflow store).")

_SHOWN_PROBLEMS = 20
_PLAIN_STEPS = (1, 2, 5)  # a piped import says how far it got at 10, 20, 50, 100, 200, 500 … runs


class _Plain:
    """Progress as lines on stderr (when stderr is not a terminal): each phase's end, and the run
    count at 10, 20, 50, 100, … (a log stays short, and a reader knows the import is moving)."""

    def __init__(self) -> None:
        self.next_runs = 10

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if phase == "runs":
            if done >= self.next_runs:
                render.err_console().print(f"runs: {done:,}", soft_wrap=True)
                self.next_runs = _next_step(self.next_runs)
        elif done == total:
            render.err_console().print(f"{phase}: {done:,}", soft_wrap=True)


def _next_step(current: int) -> int:
    """The next of 10, 20, 50, 100, 200, 500, …"""
    scale = int(10 ** (len(str(current)) - 1))
    lead = current // scale
    following = [s for s in _PLAIN_STEPS if s > lead]
    return following[0] * scale if following else _PLAIN_STEPS[0] * scale * 10


class _Bar:
    """Progress as a live bar per phase (a terminal)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, object] = {}

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if phase not in self.tasks:
            self.tasks[phase] = self.progress.add_task(phase, total=total)
        self.progress.update(self.tasks[phase], completed=done, total=total)  # type: ignore[arg-type]


@app.command("mlflow")
def mlflow(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Option(
            "--from",
            metavar="URI",
            help="The MLflow store: a mlruns/ folder, sqlite:///mlflow.db, postgresql://… or "
            "http://mlflow-server:5000.",
            show_default=False,
        ),
    ],
    experiment: Annotated[
        list[str] | None,
        typer.Option(
            "--experiment",
            "-e",
            metavar="NAME",
            help="Import only this experiment (name or MLflow id); repeat for more.",
            show_default=False,
        ),
    ] = None,
    models: Annotated[
        bool, typer.Option("--models/--no-models", help="Import the registered models too.")
    ] = True,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read both sides and report what would move; write nothing.")
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            metavar="FILE",
            help="Also write the report (with the id mapping and every problem) to FILE as JSON.",
            dir_okay=False,
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=32, help="Threads reading MLflow ahead of the writes.")
    ] = 4,
    as_json: JsonOption = False,
) -> None:
    """Import an MLflow store: experiments, runs, metrics, artifacts, models, versions, aliases.

    Run ids, version numbers, names and times are kept (experiment ids are Shipyard's own; the
    mapping is in the report and the audit log). Every record is checked after it is written, by
    checksums of both sides; the command exits 1 when anything failed or differs. Running it again
    adds nothing and checks everything once more; after an interruption it carries on. The target
    must be Shipyard's database (SQLite or PostgreSQL), not a Shipyard server.

    Examples:

      shipyard import mlflow --from ./mlruns
      shipyard import mlflow --from sqlite:///mlflow.db --experiment churn --dry-run
      shipyard import mlflow --from http://mlflow:5000 --report import.json
    """
    client = get_state(ctx).client()
    console = render.err_console()
    if console.is_terminal and not as_json:
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, transient=True) as bar:
            found = _run(client, source, experiment, models, dry_run, workers, _Bar(bar))
    else:
        found = _run(client, source, experiment, models, dry_run, workers, _Plain())
    if report is not None:
        report.write_text(json.dumps(found.to_dict(), indent=2) + "\n")
    if as_json:
        render.print_json(found.to_dict())
    else:
        _show(found, report)
    if not found.ok and not dry_run:
        raise typer.Exit(1)


def _run(
    client: Client,
    source: str,
    experiment: list[str] | None,
    models: bool,
    dry_run: bool,
    workers: int,
    progress: _Bar | _Plain,
) -> ImportReport:
    return import_mlflow(
        source,
        client=client,
        experiments=experiment or None,
        models=models,
        dry_run=dry_run,
        progress=progress,
        workers=workers,
    )


def _show(found: ImportReport, path: Path | None) -> None:
    title = f"{'Dry run: ' if found.dry_run else ''}MLflow {found.source} → Shipyard {found.target}"
    written = "would import" if found.dry_run else "imported"
    columns = ("records", "in MLflow", written, "already there", "failed", "in Shipyard", "checksum", "match")
    table = render.make_table(*columns, title=title)
    for row in found.entities.values():
        cells = [row.entity, f"{row.source:,}", f"{row.imported:,}", f"{row.existing:,}", f"{row.failed:,}"]
        table.add_row(*render.cells([*cells, f"{row.target:,}", *_verdict(found, row)]))
    render.show(table)
    if found.not_imported:
        kept = ", ".join(f"{what}: {n:,}" for what, n in found.not_imported.items())
        render.say(f"Not imported (no place for them in Shipyard yet): {kept}")
    for problem in found.problems[:_SHOWN_PROBLEMS]:
        render.say(f"- {problem}")
    if len(found.problems) > _SHOWN_PROBLEMS:
        more = len(found.problems) - _SHOWN_PROBLEMS
        render.say(
            f"… and {more:,} more" + (f" (all in {path})" if path else " (write them all with --report FILE)")
        )
    runs = found.entities.get("runs")
    speed = f" ({found.runs_per_second:,.0f} runs/s)" if runs is not None and found.seconds else ""
    verdict = (
        "nothing written (dry run)"
        if found.dry_run
        else "every record matches"
        if found.ok
        else "SOME RECORDS FAILED OR DIFFER (see above)"
    )
    render.say(f"{found.seconds:.1f} s{speed}: {verdict}")


def _verdict(found: ImportReport, row: EntityReport) -> tuple[str, str]:
    """The checksum cell (one when both sides agree, ``source≠target`` when not) and the match cell
    (in a dry run, a kind not in Shipyard yet is neither a match nor a mismatch: ``-``)."""
    pending = found.dry_run and row.target < row.source
    source, target = row.source_checksum, row.target_checksum
    if source is None:
        digest = ""
    elif target == source or pending:
        digest = source[:12]
    else:
        digest = f"{source[:12]}≠{(target or '-')[:12]}"
    return digest, "-" if pending else "yes" if row.matches else "NO"
