"""``shipyard monitor …``: what monitoring found for a deployment (drift reports over time)."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli import render
from shipyard.cli.options import JsonOption
from shipyard.cli.state import get_state
from shipyard.monitoring.alerts import list_alerts
from shipyard.monitoring.passes import monitor_pass
from shipyard.monitoring.report import list_drift_reports

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


alerts_app = typer.Typer(no_args_is_help=True, help="Alerts opened by monitoring passes.")
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
    the pipeline run id).

    Examples:

      shipyard monitor alerts show 7
    """
    alert = get_state(ctx).client().store.get_alert(alert_id)
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
    rows += [(f"action {k}", v) for k, v in alert.actions.items() if k != "retrain"]
    for row in rows:
        table.add_row(*render.cells(row))
    render.show(table)
