"""``shipyard pipelines …``: run pipelines, list and show their runs (the DAG), clear the cache, schedule.

Thin: every command parses its arguments and calls the SDK (``sy.trigger_pipeline``,
``sy.list_pipeline_runs``, ``sy.get_pipeline_run``, ``sy.clear_cache``, ``sy.schedule_pipeline`` …);
what a pipeline run recorded is read through ``shipyard.pipelines.reads``, never from tags here.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.options import JsonOption, LimitOption
from shipyard.cli.state import get_state
from shipyard.entities import PipelineSchedule, now_ms
from shipyard.errors import InvalidInput, PipelineFailed, ShipyardError, StepContractViolation
from shipyard.pipelines import reads
from shipyard.pipelines.cache import clear_cache
from shipyard.pipelines.pipeline import PipelineResult, trigger_pipeline
from shipyard.pipelines.reads import PipelineRunInfo, StepRunInfo
from shipyard.pipelines.schedule import delete_schedule, list_schedules, schedule_pipeline
from shipyard.tracking import Client

__all__ = ["app"]

app = typer.Typer(
    no_args_is_help=True, help="Run pipelines, show their runs as DAGs, clear caches, schedule."
)
cache_app = typer.Typer(no_args_is_help=True, help="Manage the step cache.")
schedules_app = typer.Typer(no_args_is_help=True, help="List and remove pipeline schedules.")
app.add_typer(cache_app, name="cache")
app.add_typer(schedules_app, name="schedules")

_STATUS_STYLE = {
    "finished": "green",
    "cached": "cyan",
    "failed": "red",
    "skipped": "magenta",
    "running": "yellow",
    "pending": "dim",
    "killed": "magenta",
}
_POLL_S = 0.5

RefArg = Annotated[
    str,
    typer.Argument(
        metavar="MODULE:PIPELINE",
        help="The pipeline to run, e.g. pipelines.train:train (importable from here).",
    ),
]
ParamOption = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        metavar="KEY=VALUE",
        help="A pipeline parameter (repeatable); the value is read as JSON when it parses (7, 0.5, true, "
        '[1,2], "7"), else as text.',
    ),
]


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``["month=7", "name=jfk"]`` → ``{"month": 7, "name": "jfk"}`` (JSON values where they parse)."""
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"Parameter {item!r} must look like KEY=VALUE, e.g. --param month=7")
        try:
            params[key.strip()] = json.loads(text)
        except ValueError:
            params[key.strip()] = text
    return params


def _status(status: str) -> Text:
    return Text(status, style=_STATUS_STYLE.get(status, ""))


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    if value < 60:
        return f"{value:.2f}s" if value < 10 else f"{value:.1f}s"
    return render.fmt_duration(0, int(value * 1000))


def _usd(value: float | None) -> str:
    if value is None:
        return ""
    return "$0" if value == 0 else f"${value:.1e}" if value < 1e-4 else f"${value:.4f}"


# -- run ------------------------------------------------------------------------------------------
@app.command("run")
def run(
    ctx: typer.Context,
    ref: RefArg,
    param: ParamOption = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every step; reuse nothing.")] = False,
    executor: Annotated[
        str, typer.Option("--executor", metavar="local|ray", help="Where steps run.")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            metavar="ADDR",
            help="Ray cluster to use with --executor ray (e.g. 10.0.0.5:6379).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run a pipeline: one tracked run, a child run per step; ends with its DAG table.

    MODULE is imported from the working directory. Steps whose code, params, inputs and
    libraries did not change come from the cache (--no-cache runs them all). On a terminal
    the steps' progress is shown while it runs.

    Examples:

      shipyard pipelines run pipelines.train:train
      shipyard pipelines run pipelines.train:train --param month=7 --param n_trials=4
      shipyard pipelines run pipelines.train:train --no-cache --json
      shipyard pipelines run pipelines.train:train --executor ray --ray-address 10.0.0.5:6379
    """
    if executor not in ("local", "ray"):
        raise InvalidInput(f"Executor {executor!r} is not known; use local or ray")
    if ray_address and executor != "ray":
        raise InvalidInput("--ray-address needs --executor ray")
    if ray_address:
        os.environ["RAY_ADDRESS"] = ray_address  # what ray.init() connects to when given no address
    params = parse_params(param)
    _import_from_here()
    client = get_state(ctx).client()
    live = not as_json and render.err_console().is_terminal
    try:
        with _Progress(client, ref, enabled=live):
            result = trigger_pipeline(ref, params, executor=executor, no_cache=no_cache, client=client)
    except (PipelineFailed, StepContractViolation) as exc:
        _show_failed_run(client, exc, as_json)
        raise typer.Exit(1) from None
    _show_result(client, result, as_json)


def _import_from_here() -> None:
    """Pipelines import from the working directory, as with ``python -m`` (a console script's
    ``sys.path`` starts with its own folder instead)."""
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)


def _show_result(client: Client, result: PipelineResult, as_json: bool) -> None:
    info = reads.get_pipeline_run(result.run_id, client=client)
    if as_json:
        render.print_json(info.to_dict())
        return
    render.show(_dag_table(info), *_failures(info))
    hits = f", {info.cache_hits} from the cache" if info.cache_hits else ""
    render.say(
        f"Pipeline '{info.pipeline}' {info.status} in {_seconds(info.duration_s)}: "
        f"{info.n_steps} steps{hits}, cost {_usd(info.cost_usd)} "
        f"(details: shipyard pipelines show {info.run_id})"
    )


def _show_failed_run(client: Client, exc: PipelineFailed | StepContractViolation, as_json: bool) -> None:
    """Show the failed run's DAG (the report or traceback under its failed step), then one error line."""
    run_id = exc.run_id if isinstance(exc, StepContractViolation) else exc.details.get("pipeline_run_id")
    info = reads.get_pipeline_run(str(run_id), client=client) if run_id else None
    if as_json and info is not None:
        render.print_json({**info.to_dict(), "error": exc.to_dict()})
    elif info is not None:
        render.show(_dag_table(info), *_failures(info))
    if isinstance(exc, StepContractViolation):
        where = "its output" if exc.boundary == "return" else f"input '{exc.boundary}'"
        message = (
            f"Step '{exc.step}' stopped the pipeline: {where} broke its contract (report above; step run "
            f"{exc.run_id}); fix the data or the contract and re-run: finished steps come from the cache"
        )
    else:
        message = exc.message
    render.error(message)


class _Progress:
    """While a pipeline runs on a terminal: a live table of its steps, read from the store."""

    def __init__(self, client: Client, ref: str, *, enabled: bool) -> None:
        self.client, self.ref, self.enabled = client, ref, enabled
        self.since = now_ms() - 1000
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Live | None = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            self._live = Live(
                Text(f"Starting {self.ref} …", style="dim"), console=render.err_console(), transient=True
            )
            self._live.__enter__()
            self._thread = threading.Thread(target=self._poll, name="shipyard-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def _poll(self) -> None:
        run_id: str | None = None
        while not self._stop.wait(_POLL_S):
            try:
                if run_id is None:
                    found = reads.list_pipeline_runs(ref=self.ref, limit=1, client=self.client)
                    run_id = found[0].run_id if found and found[0].start_time >= self.since else None
                if run_id is not None and self._live is not None:
                    info = reads.get_pipeline_run(run_id, client=self.client)
                    self._live.update(_dag_table(info, title=f"Running {info.pipeline} (run {run_id})"))
            except ShipyardError:  # progress is best effort; the run itself reports errors
                continue


# -- ls / show ------------------------------------------------------------------------------------
@app.command("ls")
def ls(
    ctx: typer.Context,
    pipeline: Annotated[
        str | None, typer.Option("--pipeline", "-P", metavar="NAME", help="Only runs of this pipeline.")
    ] = None,
    limit: LimitOption = 20,
    as_json: JsonOption = False,
) -> None:
    """List pipeline runs, newest first: status, start, duration, steps, cache hits and cost.

    Examples:

      shipyard pipelines ls
      shipyard pipelines ls --pipeline train -n 5
      shipyard pipelines ls --json | jq -r '.runs[].run_id'
    """
    found = reads.list_pipeline_runs(pipeline, limit=limit, client=get_state(ctx).client())
    if as_json:
        render.print_json({"runs": [r.to_dict() for r in found]})
        return
    if not found:
        render.say("No pipeline runs found. Run one with: shipyard pipelines run MODULE:PIPELINE")
        return
    table = render.make_table(
        "run id", "pipeline", "status", "started", "duration", "steps", "cached", "cost"
    )
    table.columns[0].no_wrap = True
    for r in found:
        table.add_row(
            *render.cells([r.run_id, r.pipeline]),
            _status(r.status),
            *render.cells(
                [
                    render.fmt_time(r.start_time),
                    _seconds(r.duration_s),
                    r.n_steps,
                    r.cache_hits,
                    _usd(r.cost_usd),
                ]
            ),
        )
    render.show(table)


@app.command("show")
def show(
    ctx: typer.Context,
    run_id: Annotated[
        str, typer.Argument(metavar="RUN_ID", help="A pipeline run id, or one of its step runs' ids.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Show a pipeline run as its DAG: each step's status, duration, cache hit and cost.

    A step that broke a contract shows its validation report; a failed step, the end of
    its traceback (the whole one: shipyard artifacts ls STEP_RUN_ID, error/traceback.txt).

    Examples:

      shipyard pipelines show 3f2a9c…
      shipyard pipelines show 3f2a9c… --json | jq '.steps[] | {node, status, cache}'
    """
    info = reads.get_pipeline_run(run_id, client=get_state(ctx).client())
    if as_json:
        render.print_json(info.to_dict())
        return
    render.show(_summary(info), _dag_table(info), *_failures(info))


def _summary(info: PipelineRunInfo) -> RenderableType:
    table = render.make_table("attribute", "value", title="Pipeline run")
    counts = ", ".join(f"{n} {s}" for s, n in info.step_counts.items()) or "none"
    rows: list[tuple[str, Any]] = [
        ("run id", info.run_id),
        ("pipeline", f"{info.pipeline} ({info.ref})" if info.ref else info.pipeline),
        ("status", _status(info.status)),
        ("started", render.fmt_time(info.start_time)),
        ("duration", _seconds(info.duration_s)),
        ("executor", info.executor),
        ("params", ", ".join(f"{k}={v}" for k, v in sorted(info.params.items()))),
        ("steps", counts),
        ("cpu", _seconds(info.cost.get("cpu_seconds"))),
        ("energy", f"{info.cost['energy_kwh']:.3g} kWh" if "energy_kwh" in info.cost else ""),
        ("cost", _usd(info.cost_usd)),
    ]
    for key, value in rows:
        table.add_row(Text(key), value if isinstance(value, Text) else Text(render.fmt_value(value)))
    return table


def _tree_prefix(step: StepRunInfo, depth: dict[str, int]) -> str:
    level = max((depth.get(u, 0) + 1 for u in step.upstream), default=0)
    depth[step.node] = level
    return ("  " * (level - 1) + "└─ ") if level else ""


def _dag_table(info: PipelineRunInfo, title: str | None = None) -> RenderableType:
    table = render.make_table(
        "step",
        "after",
        "status",
        "duration",
        "cache",
        "cpu",
        "peak mem",
        "cost",
        "run id",
        title=title or "DAG",
    )
    table.columns[0].no_wrap = True
    depth: dict[str, int] = {}
    for s in info.steps:
        mem = s.cost.get("peak_memory_mb")
        table.add_row(
            Text(_tree_prefix(s, depth) + s.node),
            Text(", ".join(s.upstream), style="dim"),
            _status(s.status),
            *render.cells(
                [
                    _seconds(s.duration_s),
                    s.cache,
                    _seconds(s.cost.get("cpu_seconds")),
                    "" if mem is None else f"{mem:.0f} MB",
                    _usd(s.cost_usd),
                    s.run_id,
                ]
            ),
        )
    return table


def _failures(info: PipelineRunInfo) -> list[RenderableType]:
    out: list[RenderableType] = []
    for s in info.steps:
        if s.contract_report is not None:
            out.append(_contract_report(s))
        elif s.error:
            head = Text(f"Step '{s.node}' failed (run {s.run_id}):", style="bold red")
            out.append(Group(head, Text(s.error)))
    return out


def _contract_report(step: StepRunInfo) -> RenderableType:
    report = step.contract_report or {}
    where = "its output" if step.boundary == "return" else f"input '{step.boundary}'"
    title = f"Step '{step.node}': {where} broke contract {report.get('contract', '')}"
    table = render.make_table("rule", "column", "severity", "count", "examples", "message", title=title)
    for v in report.get("violations", []):
        examples = ", ".join(render.fmt_value(e) for e in (v.get("examples") or [])[:5])
        table.add_row(
            *render.cells([v.get("rule"), v.get("column"), v.get("severity"), v.get("count"), examples]),
            Text(str(v.get("message", ""))),
        )
    return table


# -- cache ----------------------------------------------------------------------------------------
@cache_app.command("clear")
def cache_clear(
    ctx: typer.Context,
    pipeline: Annotated[
        str | None, typer.Argument(metavar="[PIPELINE]", help="Only this pipeline's steps (default: all).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Forget cached step results, so the next run executes every step again.

    The step runs stay (their cache key is cleared).

    Examples:

      shipyard pipelines cache clear
      shipyard pipelines cache clear train
    """
    count = clear_cache(pipeline, client=get_state(ctx).client())
    if as_json:
        render.print_json({"cleared": count, "pipeline": pipeline})
        return
    render.say(f"Cleared {count} cached step result(s){f' of pipeline {pipeline!r}' if pipeline else ''}.")


# -- schedules ------------------------------------------------------------------------------------
@app.command("schedule")
def schedule(
    ctx: typer.Context,
    ref: RefArg,
    cron: Annotated[
        str | None,
        typer.Option(
            "--cron",
            metavar="EXPR",
            help="Cron expression, e.g. '0 3 * * *' (03:00 daily); a sixth field adds seconds (last).",
        ),
    ] = None,
    every: Annotated[
        str | None,
        typer.Option("--every", metavar="INTERVAL", help="A fixed interval instead: 30s, 15m, 1h, 1d."),
    ] = None,
    param: ParamOption = None,
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME", help="Schedule name (default: the pipeline's); replaces one."),
    ] = None,
    timezone: Annotated[
        str, typer.Option("--timezone", metavar="TZ", help="Time zone of the cron expression.")
    ] = "UTC",
    as_json: JsonOption = False,
) -> None:
    """Have the Shipyard server run a pipeline on a timetable.

    The server (shipyard server, any number of workers) runs each fire exactly once, in a
    subprocess with the local executor, importing the pipeline from its working directory.
    Schedules live in the metadata store: point --tracking-uri at the server's store (or the
    server). Saving a schedule with an existing name replaces it.

    Examples:

      shipyard pipelines schedule pipelines.train:train --cron "0 3 * * *"
      shipyard pipelines schedule pipelines.train:train --every 1h --param month=7 --name hourly
      shipyard pipelines schedule pipelines.train:train --cron "30 6 * * 1-5" --timezone Europe/Berlin
    """
    saved = schedule_pipeline(
        ref,
        cron=cron,
        every=every,
        params=parse_params(param),
        name=name,
        timezone=timezone,
        client=get_state(ctx).client(),
    )
    if as_json:
        render.print_json(saved.to_dict())
        return
    render.say(
        f"Scheduled '{saved.name}': {saved.ref} {_when(saved)}. The Shipyard server on this store runs it "
        "(start one with: shipyard server); see: shipyard pipelines schedules ls"
    )


def _when(s: PipelineSchedule) -> str:
    if s.cron is not None:
        return f"at cron '{s.cron}' ({s.timezone})"
    return f"every {render.fmt_value(s.every_seconds)}s"


@schedules_app.command("ls")
def schedules_ls(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List pipeline schedules with their latest fire.

    Examples:

      shipyard pipelines schedules ls
      shipyard pipelines schedules ls --json
    """
    found = list_schedules(client=get_state(ctx).client())
    if as_json:
        render.print_json({"schedules": [s.to_dict() for s in found]})
        return
    if not found:
        render.say(
            "No schedules. Add one with: shipyard pipelines schedule MODULE:PIPELINE --cron '0 3 * * *'"
        )
        return
    table = render.make_table("name", "pipeline", "when", "params", "last fire", "last status", "last run")
    for s in found:
        table.add_row(
            *render.cells(
                [
                    s.name,
                    s.ref,
                    _when(s),
                    json.dumps(s.params) if s.params else "",
                    render.fmt_time(s.last_fire_time),
                ]
            ),
            _status(s.last_status or ""),
            *render.cells([s.last_run_id]),
        )
    render.show(table)


@schedules_app.command("rm")
def schedules_rm(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The schedule (see: shipyard pipelines schedules ls).")
    ],
    as_json: JsonOption = False,
) -> None:
    """Remove a schedule (its pipeline runs stay).

    Examples:

      shipyard pipelines schedules rm nightly
    """
    delete_schedule(name, client=get_state(ctx).client())
    if as_json:
        render.print_json({"deleted": name})
        return
    render.say(f"Removed schedule '{name}'.")
