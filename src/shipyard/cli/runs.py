"""``shipyard runs …``: list, show, search, compare, delete, restore runs and plot a metric."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.options import JsonOption, LimitOption, PageTokenOption
from shipyard.cli.state import get_state
from shipyard.errors import NotFound

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.entities import Artifact, Run

__all__ = ["app", "compare", "delete", "history", "ls", "restore", "search", "show"]

app = typer.Typer(no_args_is_help=True, help="List, show, search, compare and delete runs.")

ExperimentOption = Annotated[
    str | None, typer.Option("--experiment", "-e", metavar="NAME", help="Only runs of this experiment.")
]
ExperimentsOption = Annotated[
    list[str] | None,
    typer.Option("--experiment", "-e", metavar="NAME", help="Only runs of this experiment (repeatable)."),
]
FilterOption = Annotated[
    str | None,
    typer.Option(
        "--filter",
        "-f",
        metavar="FILTER",
        help="A filter such as \"metrics.auc > 0.9 and params.model = 'rf'\".",
    ),
]
OrderByOption = Annotated[
    list[str] | None,
    typer.Option("--order-by", "-o", metavar="FIELD [asc|desc]", help="Sort key (repeatable)."),
]
ColumnsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--columns",
        "-c",
        metavar="FIELDS",
        help="Only these params/metrics/tags (comma-separated or repeated).",
    ),
]
RunIdArg = Annotated[str, typer.Argument(metavar="RUN_ID", help="A run id (see: shipyard runs ls).")]
RunIdsArg = Annotated[list[str], typer.Argument(metavar="RUN_ID", help="One or more run ids.")]

_STATUS_STYLE = {"finished": "green", "failed": "red", "running": "yellow", "killed": "magenta"}
_SEARCH_MAX_EXTRA_COLUMNS = 8
_HISTORY_EDGE_ROWS = 10


def _status(status: object) -> Text:
    text = str(status)
    return Text(text, style=_STATUS_STYLE.get(text, ""))


def _page_hint(command: str, token: str | None) -> None:
    if token:
        render.err_console().print(
            Text(f"More runs: {command} --page-token {token}", style="dim"), soft_wrap=True
        )


@app.command("ls")
def ls(
    ctx: typer.Context,
    experiment: ExperimentOption = None,
    limit: LimitOption = 20,
    page_token: PageTokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first.

    Shows id, name, experiment, status, start time and duration; `shipyard runs search`
    adds filters and metric columns.

    Examples:

      shipyard runs ls
      shipyard runs ls -e flights-delay --limit 5
      shipyard runs ls --json | jq -r '.runs[].id'
    """
    found, token = (
        get_state(ctx).client().search_runs_page(experiments=experiment, limit=limit, page_token=page_token)
    )
    if as_json:
        render.print_json({"runs": [r.to_dict() for r in found], "next_page_token": token})
        return
    if not found:
        render.say("No runs found. Create some with: shipyard demo")
        return
    table = render.make_table("run id", "name", "experiment", "status", "started", "duration")
    table.columns[0].no_wrap = True
    for r in found:
        table.add_row(
            *render.cells([r.id, r.name, r.experiment_name]),
            _status(r.status),
            *render.cells([render.fmt_time(r.start_time), render.fmt_duration(r.start_time, r.end_time)]),
        )
    render.show(table)
    _page_hint("shipyard runs ls", token)


@app.command("show")
def show(ctx: typer.Context, run_id: RunIdArg, as_json: JsonOption = False) -> None:
    """Show one run: attributes, params, latest metrics, tags and artifacts.

    Metrics show their latest value (`shipyard runs history RUN_ID KEY` shows the series);
    system tags (sy.*) are dimmed on a terminal.

    Examples:

      shipyard runs show 3f2a9c…
      shipyard runs show 3f2a9c… --json | jq .metrics
    """
    client = get_state(ctx).client()
    run = client.get_run(run_id)
    found = client.list_artifacts(run_id)
    if as_json:
        render.print_json({**run.to_dict(), "artifacts": [asdict(a) for a in found]})
        return
    render.show(
        _attributes_table(run),
        _mapping_table("Params", run.params),
        _mapping_table("Metrics, latest values", run.metrics),
        _mapping_table("Tags", run.tags, dim_prefix="sy."),
        _artifacts_table(found),
    )


def _attributes_table(run: Run) -> Any:
    table = render.make_table("attribute", "value", title=f"Run {run.id}")
    rows: list[tuple[str, Any]] = [
        ("name", run.name),
        ("experiment", f"{run.experiment_name} (id {run.experiment_id})"),
        ("status", _status(run.status)),
        ("user", run.user),
        ("source", run.source),
        ("started", render.fmt_time(run.start_time)),
        ("ended", render.fmt_time(run.end_time)),
        ("duration", render.fmt_duration(run.start_time, run.end_time)),
        ("parent run", run.parent_run_id),
        ("deleted", run.deleted),
    ]
    for key, value in rows:
        table.add_row(*render.cells([key, value]))
    return table


def _mapping_table(title: str, values: dict[str, Any], dim_prefix: str | None = None) -> Any:
    table = render.make_table("key", "value", title=f"{title} ({len(values)})")
    for key in sorted(values):
        style = "dim" if dim_prefix and key.startswith(dim_prefix) else ""
        table.add_row(*render.cells([key, values[key]]), style=style)
    return table


def _artifacts_table(found: list[Artifact]) -> Any:
    table = render.make_table("path", "size", "digest", title=f"Artifacts ({len(found)})")
    for a in found:
        table.add_row(*render.cells([a.path, render.fmt_bytes(a.size), a.digest[:16]]))
    return table


@app.command("search")
def search(
    ctx: typer.Context,
    experiment: ExperimentsOption = None,
    filter: FilterOption = None,
    order_by: OrderByOption = None,
    limit: LimitOption = 100,
    columns: ColumnsOption = None,
    page_token: PageTokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Search runs with the filter language; one row per run, one column per param and metric.

    Fields are metrics.NAME, params.NAME, tags.NAME and attributes.NAME (status, run_name,
    start_time, …); operators =, !=, <, <=, >, >=, like, ilike, in, not in, is null,
    is not null; combine with and, or, not and parentheses. See docs/sdk.md.

    Examples:

      shipyard runs search -e flights-delay -o "metrics.val_auc desc" -n 5
      shipyard runs search -f "params.model = 'hgb' and metrics.val_auc > 0.7"
      shipyard runs search -f "attributes.status = 'failed'" -c metrics.val_auc,params.model
      shipyard runs search -f "tags.team like 'risk%'" --json
    """
    wanted = [c.strip() for item in columns or [] for c in item.split(",") if c.strip()]
    client = get_state(ctx).client()
    df = client.search_runs(experiment or None, filter, order_by or None, limit, page_token, wanted or None)
    token = df.attrs.get("next_page_token")
    if as_json:
        render.print_json({"runs": df.to_dict(orient="records"), "next_page_token": token})
        return
    if df.empty:
        render.say("No runs match.")
        return
    render.show(_frame_table(df, explicit=bool(wanted)))
    _page_hint("shipyard runs search … ", token)


def _frame_table(df: pd.DataFrame, explicit: bool) -> Any:
    """Attributes, then the chosen columns; by default metrics first (no system.*), then params."""
    if explicit:
        extra = [c for c in df.columns if c.startswith(("params.", "metrics.", "tags."))]
    else:
        metrics = [c for c in df.columns if c.startswith("metrics.") and not c.startswith("metrics.system.")]
        extra = metrics + [c for c in df.columns if c.startswith("params.")]
        hidden = len(extra) - _SEARCH_MAX_EXTRA_COLUMNS
        if hidden > 0:
            extra = extra[:_SEARCH_MAX_EXTRA_COLUMNS]
            render.err_console().print(
                Text(f"{hidden} more columns hidden; pick columns with --columns, or use --json", style="dim")
            )
    short = {"params.": "p.", "metrics.": "m.", "tags.": "t."}  # the filter language's own aliases
    headers = [next(a + c[len(g) :] for g, a in short.items() if c.startswith(g)) for c in extra]
    table = render.make_table("run_id", "run_name", "status", *headers)
    table.columns[0].no_wrap = table.columns[1].no_wrap = True
    for record in df[["run_id", "run_name", "status", *extra]].itertuples(index=False):
        values = list(record)
        table.add_row(*render.cells(values[:2]), _status(values[2]), *render.cells(values[3:]))
    return table


@app.command("compare")
def compare(
    ctx: typer.Context,
    run_ids: RunIdsArg,
    only_diff: Annotated[
        bool, typer.Option("--only-diff", help="Show only rows whose values differ.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Compare runs side by side: params, metrics and tags; differing rows are highlighted.

    Rows are params.*, metrics.* (latest values) and tags.*; rows whose values differ are
    marked ≠ (and highlighted on a terminal).

    Examples:

      shipyard runs compare 3f2a9c… 8b1d04…
      shipyard runs compare 3f2a9c… 8b1d04… 55e0aa… --only-diff
    """
    df = get_state(ctx).client().compare_runs(run_ids)
    names = [c for c in df.columns if c != "differs"]
    rows = [
        {"field": field, "values": [row[n] for n in names], "differs": bool(row["differs"])}
        for field, row in df.iterrows()
        if row["differs"] or not only_diff
    ]
    if as_json:
        runs = [{"id": run_id, "name": name} for run_id, name in zip(run_ids, names, strict=False)]
        render.print_json({"runs": runs, "rows": rows})
        return
    table = render.make_table("", "field", *names)
    for row in rows:
        mark = "≠" if row["differs"] else ""
        table.add_row(
            *render.cells([mark, row["field"], *row["values"]]), style="bold yellow" if row["differs"] else ""
        )
    render.show(table)
    differing = sum(1 for row in rows if row["differs"])
    render.err_console().print(Text(f"{differing} of {len(df)} fields differ (marked ≠)", style="dim"))


@app.command("delete")
def delete(ctx: typer.Context, run_ids: RunIdsArg, as_json: JsonOption = False) -> None:
    """Delete runs (soft delete: undo with `shipyard runs restore`).

    Deleted runs vanish from listings and searches; their data stays until `shipyard gc`
    purges it.

    Examples:

      shipyard runs delete 3f2a9c… 8b1d04…
    """
    count = get_state(ctx).client().delete_runs(run_ids)
    if as_json:
        render.print_json({"deleted": count, "run_ids": run_ids})
        return
    render.say(f"Deleted {count} run(s). Undo with: shipyard runs restore {' '.join(run_ids)}")


@app.command("restore")
def restore(ctx: typer.Context, run_ids: RunIdsArg, as_json: JsonOption = False) -> None:
    """Restore soft-deleted runs.

    Works until `shipyard gc` has purged them.

    Examples:

      shipyard runs restore 3f2a9c… 8b1d04…
    """
    count = get_state(ctx).client().restore_runs(run_ids)
    if as_json:
        render.print_json({"restored": count, "run_ids": run_ids})
        return
    render.say(f"Restored {count} run(s).")


@app.command("history")
def history(
    ctx: typer.Context,
    run_id: RunIdArg,
    key: Annotated[str, typer.Argument(metavar="KEY", help="Metric name, e.g. val_loss.")],
    show_all: Annotated[
        bool, typer.Option("--all", help="Print every point, not just the first and last ten.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show a metric's full series as a table, with a sparkline.

    The table shows the first and last ten points (every point with --all); --json prints
    every point.

    Examples:

      shipyard runs history 3f2a9c… curve_val_loss
      shipyard runs history 3f2a9c… curve_val_loss --json | jq '.points[-1].value'
    """
    client = get_state(ctx).client()
    df = client.get_metric_history(run_id, key)
    if df.empty:
        known = ", ".join(sorted(client.get_run(run_id).metrics)) or "none"
        raise NotFound(f"Run '{run_id}' has no metric '{key}'; its metrics: {known}")
    if as_json:
        render.print_json({"run_id": run_id, "key": key, "points": df.to_dict(orient="records")})
        return
    _print_history(df, key, show_all)


def _print_history(df: pd.DataFrame, key: str, show_all: bool) -> None:
    values = [float(v) for v in df["value"]]
    line = Text(f"{key}  ")
    line.append(render.sparkline(values), style="cyan")
    finite = [v for v in values if v == v]
    summary = f"  {len(values)} points"
    if finite:
        summary += f", min {render.fmt_value(min(finite))}, max {render.fmt_value(max(finite))}"
    line.append(f"{summary}, last {render.fmt_value(values[-1])}")
    table = render.make_table("step", "value", "time")
    records = list(df.itertuples(index=False))
    edge = _HISTORY_EDGE_ROWS
    cut = not show_all and len(records) > 2 * edge
    for i, r in enumerate(records[:edge] + records[-edge:] if cut else records):
        if cut and i == edge:
            table.add_row(Text("…"), Text(f"({len(records) - 2 * edge} more; --all shows them)"), Text(""))
        table.add_row(*render.cells([r.step, r.value, r.timestamp]))
    render.show(line, table)
