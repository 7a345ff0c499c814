"""``shipyard monitor …``: what monitoring found for a deployment (drift reports over time)."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli import render
from shipyard.cli.options import JsonOption
from shipyard.cli.state import get_state
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
