"""``shipyard monitor …``: monitoring passes (one, watched, or scheduled on the server), what they found
(drift, performance, alerts and the closed loop), the status dashboard and the HTML report."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli import render
from shipyard.cli.options import JsonOption
from shipyard.cli.state import get_state
from shipyard.entities import PipelineSchedule, now_ms
from shipyard.monitoring.alerts import get_alert, list_alerts
from shipyard.monitoring.html_report import monitor_report
from shipyard.monitoring.loop import complete_retrain
from shipyard.monitoring.passes import MonitorPass, monitor_pass
from shipyard.monitoring.report import list_drift_reports
from shipyard.monitoring.scheduled import list_monitoring_schedules, schedule_monitoring
from shipyard.monitoring.status import MonitorStatus, monitor_status
from shipyard.pipelines.schedule import parse_every

__all__ = ["app"]

app = typer.Typer(
    no_args_is_help=True,
    help=(
        "Monitor deployments: passes (run once, watch in the foreground, or schedule on the server), "
        "drift, performance, alerts and the closed loop, the status dashboard and the HTML report."
    ),
)


@app.command("drift")
def drift(
    ctx: typer.Context,
    deployment: Annotated[str, typer.Option("--deployment", "-d", help="Deployment name, e.g. churn.")],
    variant: Annotated[str | None, typer.Option("--variant", help="Only this variant's reports.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Reports whose window ends at or after (ISO 8601).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="The newest N reports.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List a deployment's stored drift reports, oldest first: share of drifted features, the
    domain classifier's AUC and the verdict.

    Examples:

      shipyard monitor drift --deployment churn
      shipyard monitor drift -d churn --variant canary --since 2025-11-01 --json
    """
    reports = list_drift_reports(deployment, variant, since, limit=limit, client=get_state(ctx).client())
    if as_json:
        render.print_json([r.model_dump(mode="json") for r in reports])
        return
    table = render.make_table(
        "id", "window end", "variant", "rows", "drifted", "share", "domain AUC", "verdict"
    )
    for r in reports:
        auc = "" if r.domain_auc is None else f"{r.domain_auc:.2f}"
        table.add_row(
            *render.cells(
                [
                    r.id,
                    render.fmt_time(r.window_end),
                    r.variant or "(all)",
                    r.rows,
                    ", ".join(r.drifted_features) or "-",
                    f"{r.share_drifted:.0%}",
                    auc,
                    r.verdict,
                ]
            )
        )
    render.show(table)
    trend = [r.share_drifted for r in reports]
    if len(trend) > 1:
        render.say(f"share drifted over time: {render.sparkline(trend, width=min(60, len(trend)))}")


def _status_rows(s: MonitorStatus) -> list[tuple[str, str, str]]:
    def metrics(values: dict[str, float | None], keys: tuple[str, ...]) -> str:
        return ", ".join(f"{k} {v:.3f}" for k in keys if (v := values.get(k)) is not None) or "-"

    keys = ("roc_auc", "accuracy", "f1", "log_loss", "r2", "mae", "rmse", "labelled_share")
    share = "-" if s.share_drifted is None else f"{s.share_drifted:.0%} drifted: {s.drift_verdict}"
    alerts = ", ".join(f"{a.rule} ({a.expression})" for a in s.open_alerts) or "none"
    spark = render.sparkline
    return [
        ("drift", share, spark(s.share_drifted_series, width=20)),
        (f"performance ({s.metric or '-'})", metrics(s.performance, keys), spark(s.performance_series, 20)),
        (
            f"estimated ({s.estimated_metric or '-'})",
            metrics(s.estimated, keys),
            spark(s.estimated_series, width=20),
        ),
        ("open alerts", f"{len(s.open_alerts)}: {alerts}" if s.open_alerts else "none", ""),
    ]


@app.command("status")
def status(
    ctx: typer.Context,
    deployment: Annotated[
        str | None, typer.Option("--deployment", "-d", help="One deployment (default: every one).")
    ] = None,
    points: Annotated[int, typer.Option("--points", min=2, max=1000, help="Recent windows per series.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """A dashboard per deployment: drift, performance, estimated performance, alerts, with sparklines.

    Shows the latest drift verdict and share of drifted features, the latest realised and estimated
    metrics and the open alerts, each with a sparkline of its recent windows.

    Examples:

      shipyard monitor status
      shipyard monitor status --deployment churn --json
    """
    statuses = monitor_status(deployment, points=points, client=get_state(ctx).client())
    if as_json:
        render.print_json([s.to_dict() for s in statuses])
        return
    if not statuses:
        render.say("No deployments stored: create one with shipyard deploy, or pass --deployment NAME.")
    for s in statuses:
        table = render.make_table("", "latest", "recent windows", title=f"deployment {s.deployment}")
        for row in _status_rows(s):
            table.add_row(*render.cells(row))
        render.show(table)


@app.command("report")
def report(
    ctx: typer.Context,
    deployment: Annotated[str, typer.Option("--deployment", "-d", help="Deployment name, e.g. churn.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path(
        "report.html"
    ),
    variant: Annotated[str | None, typer.Option("--variant", help="Only this variant's reports.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Windows ending at or after (ISO 8601).")
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="Model whose history to show (repeatable; default: the deployment's)."),
    ] = None,
) -> None:
    """Write one self-contained HTML report of a deployment's monitoring, to open offline.

    It shows feature distributions (reference vs current), drift and performance over time, estimated
    vs realised performance, alerts, and the model's retraining and promotion history.

    Examples:

      shipyard monitor report --deployment churn -o churn.html
      shipyard monitor report -d churn --since 2025-11-01 --model churn
    """
    path = monitor_report(
        deployment, output, variant=variant, since=since, models=model, client=get_state(ctx).client()
    )
    render.say(f"report written: {path}")


@app.command("run")
def run_pass(
    ctx: typer.Context,
    deployment: Annotated[str, typer.Option("--deployment", "-d", help="Deployment name, e.g. churn.")],
    rules: Annotated[
        str | None, typer.Option("--rules", help="Alert rules YAML file (docs/monitoring.md, Alerts).")
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference", help="Drift reference dataset, e.g. flights@v3 (default: training data)."
        ),
    ] = None,
    root: Annotated[
        str | None, typer.Option("--root", help="The prediction log's root folder or URL.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run one incremental monitoring pass: traffic, drift and performance of the predictions logged
    since the last pass, then the alert rules and their actions.

    Examples:

      shipyard monitor run --deployment churn --rules alerts.yaml
      shipyard monitor run -d churn --reference churn-train@v3 --json
    """
    result = monitor_pass(
        deployment, rules=rules, reference=reference, root=root, client=get_state(ctx).client()
    )
    if as_json:
        outcomes = [
            {"rule": o.rule, "outcome": o.outcome, "value": o.value, "alert": o.alert and o.alert.id}
            for o in result.outcomes
        ]
        render.print_json(
            {
                "id": result.id,
                "since": result.since,
                "high_water_ms": result.high_water_ms,
                "requests": result.requests,
                "reports": result.reports,
                "outcomes": outcomes,
                "notes": result.notes,
            }
        )
        return
    table = render.make_table("what", "value", "verdict", title=f"monitoring pass of {deployment}")
    for row in result.rows():
        table.add_row(*render.cells(row))
    render.show(table)


alerts_app = typer.Typer(
    no_args_is_help=True,
    help=(
        "Alerts opened by monitoring passes (shipyard monitor run --rules FILE).\n\n"
        "Examples:\n\n  shipyard monitor alerts ls --state firing\n\n  shipyard monitor alerts show 7"
    ),
)
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("ls")
def alerts_ls(
    ctx: typer.Context,
    deployment: Annotated[
        str | None, typer.Option("--deployment", "-d", help="Only this deployment.")
    ] = None,
    state: Annotated[str | None, typer.Option("--state", help="firing or resolved.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="The newest N alerts.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """List alerts, most recently seen first.

    Examples:

      shipyard monitor alerts ls --state firing
      shipyard monitor alerts ls -d churn --json
    """
    found = list_alerts(deployment, state, limit=limit, client=get_state(ctx).client())
    if as_json:
        render.print_json([a.to_dict() for a in found])
        return
    table = render.make_table(
        "id", "deployment", "variant", "rule", "state", "condition", "windows", "last seen"
    )
    for a in found:
        table.add_row(
            *render.cells(
                [
                    a.id,
                    a.deployment,
                    a.variant or "(all)",
                    a.rule,
                    a.state,
                    a.expression,
                    a.windows,
                    render.fmt_time(a.last_seen_at),
                ]
            )  # fmt: skip
        )
    render.show(table)


@alerts_app.command("show")
def alerts_show(
    ctx: typer.Context,
    alert_id: Annotated[int, typer.Argument(help="The alert's id (from: shipyard monitor alerts ls).")],
    as_json: JsonOption = False,
) -> None:
    """Show one alert: its state, the evidence that fired it and what its actions did (for a retrain,
    the closed loop: pipeline run and status, version, evaluations, promotion and its reasons).

    Examples:

      shipyard monitor alerts show 7
    """
    alert = get_alert(alert_id, client=get_state(ctx).client())
    if as_json:
        render.print_json(alert.to_dict())
        return
    table = render.make_table("field", "value", title=f"alert {alert.id}: {alert.rule}")
    rows = [
        ("deployment", alert.deployment),
        ("variant", alert.variant or "(all)"),
        ("condition", alert.expression),
        ("state", alert.state),
        ("opened", render.fmt_time(alert.opened_at)),
        ("last seen", render.fmt_time(alert.last_seen_at)),
        ("resolved", render.fmt_time(alert.resolved_at)),
        ("windows firing", alert.windows),
    ]
    rows += [(f"evidence {k}", v) for k, v in alert.evidence.items()]
    retrain = alert.actions.get("retrain")
    if isinstance(retrain, dict):
        rows.append(("retrain pipeline", retrain.get("pipeline")))
        rows.append(("retrain run", retrain.get("run_id") or retrain.get("error")))
    loop = alert.actions.get("closed_loop")
    if isinstance(loop, dict):
        rows += _loop_rows(loop)
    rows += [(f"action {k}", v) for k, v in alert.actions.items() if k not in ("retrain", "closed_loop")]
    for row in rows:
        table.add_row(*render.cells(row))
    render.show(table)


@alerts_app.command("close-loop")
def alerts_close_loop(
    ctx: typer.Context,
    alert_id: Annotated[int, typer.Argument(help="An alert whose retrain action ran its pipeline.")],
    model: Annotated[
        str | None, typer.Option("--model", help="Registered model (default: the one the deployment serves).")
    ] = None,
    root: Annotated[
        str | None, typer.Option("--root", help="The prediction log's root folder or URL.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Close (or resume) the loop of a retrain alert: register the pipeline's model as challenger,
    evaluate it beside the champion on the newest labelled predictions, and promote it to champion
    through the model's policy. Run it again once a missing approval is in.

    Examples:

      shipyard monitor alerts close-loop 7
    """
    loop = complete_retrain(alert_id, model=model, root=root, client=get_state(ctx).client())
    if as_json:
        render.print_json(loop.to_dict())
        return
    table = render.make_table("field", "value", title=f"closed loop of alert {alert_id}")
    for row in _loop_rows(loop.to_dict()):
        table.add_row(*render.cells(row))
    render.show(table)


def _loop_rows(loop: dict[str, Any]) -> list[tuple[str, Any]]:
    """The closed loop's chain: pipeline run, version, evaluations, promotions (``loop.ClosedLoop``)."""
    model = loop.get("model")
    rows: list[tuple[str, Any]] = [
        ("closed loop", loop.get("status")),
        ("pipeline run", f"{loop.get('pipeline_run')} ({loop.get('pipeline_status') or '?'})"),
    ]
    if loop.get("version") is not None:
        rows.append(("version", f"models:/{model}/{loop['version']} (source run {loop.get('step_run')})"))
    for role, ev in (loop.get("evaluations") or {}).items():
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in ev.get("metrics", {}).items())
        rows.append(
            (
                f"evaluation {role}",
                f"models:/{model}/{ev.get('version')} on {ev.get('rows')} labelled rows: {metrics} "
                f"(record {ev.get('record')})",
            )
        )
    for what, step in (("challenger alias", loop.get("challenger")), ("promotion", loop.get("promotion"))):
        if isinstance(step, dict):
            reasons = "; ".join(step.get("reasons") or [])
            rows.append(
                (
                    what,
                    f"{step.get('status')} (record {step.get('record')}){': ' + reasons if reasons else ''}",
                )
            )
    rows += [("loop reason", r) for r in loop.get("reasons") or []]
    return rows


@app.command("watch")
def watch(
    ctx: typer.Context,
    deployment: Annotated[str, typer.Option("--deployment", "-d", help="Deployment name, e.g. churn.")],
    every: Annotated[
        str, typer.Option("--every", help="Time between passes' starts: 30s, 5m, 1h (at least 1s).")
    ] = "5m",
    rules: Annotated[
        str | None, typer.Option("--rules", help="Alert rules YAML file (docs/monitoring.md, Alerts).")
    ] = None,
    reference: Annotated[
        str | None, typer.Option("--reference", help="Drift reference dataset (default: training data).")
    ] = None,
    root: Annotated[
        str | None, typer.Option("--root", help="The prediction log's root folder or URL.")
    ] = None,
    max_passes: Annotated[int | None, typer.Option("--max-passes", min=1, hidden=True)] = None,
    as_json: JsonOption = False,
) -> None:
    """Run monitoring passes on a schedule in the foreground, one summary line per pass, until Ctrl-C.

    To have the Shipyard server run the passes instead (no terminal kept open), use
    shipyard monitor schedule.

    Examples:

      shipyard monitor watch --deployment churn --every 5m --rules alerts.yaml
    """
    interval = parse_every(every)
    client = get_state(ctx).client()
    done = 0
    next_at = time.monotonic()
    try:
        while max_passes is None or done < max_passes:
            if done:
                time.sleep(max(0.0, next_at - time.monotonic()))
            started = now_ms()
            result = monitor_pass(deployment, rules=rules, reference=reference, root=root, client=client)
            done += 1
            next_at += interval
            typer.echo(_watch_line(done, started, result, as_json))
    except KeyboardInterrupt:
        pass
    render.say(f"stopped after {done} pass(es)")


def _watch_line(n: int, started: int, result: MonitorPass, as_json: bool) -> str:
    counts: dict[str, list[str]] = {}
    for o in result.outcomes:
        counts.setdefault(o.outcome, []).append(o.rule)
    if as_json:
        data = {"pass": n, "at": started, "id": result.id, "requests": result.requests, "rules": counts}
        return json.dumps({**data, "notes": result.notes})
    rules = "; ".join(f"{k}: {', '.join(v)}" for k, v in counts.items() if k not in ("ok", "no data"))
    return f"{render.fmt_time(started)} pass {n}: {result.requests} new requests" + (
        f"; {rules}" if rules else ""
    )


@app.command("schedule")
def schedule(
    ctx: typer.Context,
    deployment: Annotated[str, typer.Option("--deployment", "-d", help="Deployment name, e.g. churn.")],
    every: Annotated[
        str | None,
        typer.Option("--every", metavar="INTERVAL", help="Time between passes: 30s, 5m, 1h (at least 1s)."),
    ] = None,
    cron: Annotated[
        str | None,
        typer.Option("--cron", metavar="EXPR", help="A cron expression instead, e.g. '*/10 * * * *'."),
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules", help="Alert rules YAML file, read and checked now and stored in the schedule."
        ),
    ] = None,
    reference: Annotated[
        str | None, typer.Option("--reference", help="Drift reference dataset (default: training data).")
    ] = None,
    root: Annotated[
        str | None, typer.Option("--root", help="The prediction log's root folder or URL.")
    ] = None,
    multivariate: Annotated[
        bool,
        typer.Option("--multivariate/--no-multivariate", help="Run drift's domain classifier each pass."),
    ] = True,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            metavar="NAME",
            help="Schedule name (default: monitor-DEPLOYMENT); replaces one of that name.",
        ),
    ] = None,
    timezone: Annotated[
        str, typer.Option("--timezone", metavar="TZ", help="Time zone of the cron expression.")
    ] = "UTC",
    as_json: JsonOption = False,
) -> None:
    """Have the Shipyard server run monitoring passes on a timetable (watch without a terminal).

    Saves a pipeline schedule of the built-in pipeline shipyard.monitoring.scheduled:monitor with
    the deployment, the rules (parsed now: a bad rule fails here, and later edits of the file need
    a new schedule) and the options as its params. The Shipyard server on this store (shipyard
    server, any number of workers) runs each fire once, in a subprocess: one incremental pass, its
    alerts and their actions (a retrain pipeline must be importable from the server's working
    directory). List and remove it with shipyard monitor schedules and shipyard pipelines
    schedules rm NAME; each fire is a pipeline run tagged with the schedule.

    Examples:

      shipyard monitor schedule --deployment churn --every 5m --rules alerts.yaml
      shipyard monitor schedule -d churn --cron "0 * * * *" --reference churn-train@v3 --name churn-hourly
    """
    saved = schedule_monitoring(
        deployment,
        every=every,
        cron=cron,
        rules=rules,
        reference=reference,
        root=root,
        multivariate=multivariate,
        name=name,
        timezone=timezone,
        client=get_state(ctx).client(),
    )
    if as_json:
        render.print_json(saved.to_dict())
        return
    rule_count = len((saved.params.get("rules") or {}).get("rules", []))
    render.say(
        f"Scheduled '{saved.name}': a monitoring pass of {deployment} {_when(saved)} with {rule_count} "
        "alert rule(s). The Shipyard server on this store runs it (start one with: shipyard server); "
        "see: shipyard monitor schedules"
    )


def _when(s: PipelineSchedule) -> str:
    if s.cron is not None:
        return f"at cron '{s.cron}' ({s.timezone})"
    return f"every {render.fmt_value(s.every_seconds)}s"


@app.command("schedules")
def schedules(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the monitoring schedules (shipyard monitor schedule) with their latest fire.

    Remove one with shipyard pipelines schedules rm NAME; a fire's pass is its pipeline run
    (shipyard pipelines show RUN_ID) and a stored pass report (shipyard monitor status).

    Examples:

      shipyard monitor schedules
      shipyard monitor schedules --json
    """
    found = list_monitoring_schedules(client=get_state(ctx).client())
    if as_json:
        render.print_json({"schedules": [s.to_dict() for s in found]})
        return
    if not found:
        render.say("No monitoring schedules. Add one with: shipyard monitor schedule -d NAME --every 5m")
        return
    table = render.make_table("name", "deployment", "when", "rules", "last fire", "last status", "last run")
    for s in found:
        rules = [r.get("name") for r in (s.params.get("rules") or {}).get("rules", [])]
        table.add_row(
            *render.cells(
                [
                    s.name,
                    s.params.get("deployment"),
                    _when(s),
                    ", ".join(str(r) for r in rules) or "-",
                    render.fmt_time(s.last_fire_time),
                    s.last_status or "",
                    s.last_run_id,
                ]
            )
        )
    render.show(table)
