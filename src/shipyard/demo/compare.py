"""Demo stage: compare the sweep's trial runs with a search, best validation AUC first."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from shipyard.demo.context import DemoContext, ModelResult
from shipyard.errors import InvalidState

__all__ = ["METRICS", "compare_models"]

METRICS = ["val_auc", "val_log_loss", "val_f1", "val_recall", "fit_time_s"]


def _table(rows: list[dict[str, Any]], best: str) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("#", justify="right")
    table.add_column("run", no_wrap=True)
    table.add_column("model")
    for name in METRICS:
        table.add_column(name, justify="right")
    for rank, row in enumerate(rows, 1):
        values = [f"{row.get(f'metrics.{m}', float('nan')):.3f}" for m in METRICS]
        chosen = row["run_id"] == best
        name = ("★ " if chosen else "  ") + _name(row)
        table.add_row(
            str(rank),
            name,
            str(row.get("params.model", "")),
            *values,
            style="bold green" if chosen else "",
        )
    return table


def _name(row: dict[str, Any]) -> str:
    name = row.get("tags.model_name")
    return name if isinstance(name, str) else str(row["run_name"])


def compare_models(ctx: DemoContext) -> None:
    """Stage: ``search_runs`` over the sweep's trials ordered by AUC; the pipeline's pick highlighted."""
    best = ctx.require_best()
    sweep = ctx.extras.get("sweep_run_id")
    if not sweep:
        raise InvalidState("The demo's train stage has not run a sweep yet; stages must run in order")
    majority = 1 - float(ctx.require_data().y_val.mean())
    query = f"tags.`sy.sweep.run` = '{sweep}' and tags.`sy.trial_state` = 'complete'"
    ctx.console.print(
        Text(f'client.search_runs("{ctx.experiment}", filter="{query}", order_by=["metrics.val_auc desc"])'),
        style="dim",
        soft_wrap=True,
    )
    df = ctx.client.search_runs(ctx.experiment, filter=query, order_by=["metrics.val_auc desc"])
    rows: list[dict[str, Any]] = df.to_dict(orient="records")
    if not rows:
        raise InvalidState(f"Sweep run '{sweep}' has no complete trial in experiment '{ctx.experiment}'")
    ctx.console.print(_table(rows, best.run_id))
    ctx.results = [
        ModelResult(
            run_id=str(row["run_id"]),
            name=_name(row),
            family=str(row.get("params.model", "")),
            metrics={m: float(row[f"metrics.{m}"]) for m in METRICS if f"metrics.{m}" in row},
        )
        for row in rows
    ]  # best first, for later stages
    ctx.console.print(
        Text.assemble(
            "Best (picked by the pipeline's select step): ",
            (best.name, "bold green"),
            f", validation AUC {best.metrics['val_auc']:.3f}. ",
            (
                f"For scale: always answering 'on time' is right {majority:.1%} of the time, at AUC 0.5.",
                "dim",
            ),
        )
    )
