"""``shipyard monitor …``: what monitoring found for a deployment (drift reports over time)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli import render
from shipyard.cli.options import JsonOption
from shipyard.cli.state import get_state
from shipyard.entities import now_ms
from shipyard.monitoring.alerts import get_alert, list_alerts
from shipyard.monitoring.html_report import monitor_report
from shipyard.monitoring.loop import complete_retrain
from shipyard.monitoring.passes import MonitorPass, monitor_pass
from shipyard.monitoring.report import list_drift_reports
from shipyard.monitoring.status import MonitorStatus, monitor_status
from shipyard.pipelines.schedule import parse_every

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Drift and other monitoring results of deployments.")


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
