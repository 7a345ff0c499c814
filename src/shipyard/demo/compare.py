"""Demo stage 3: compare this session's runs with a search, best validation AUC first."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from shipyard.demo.context import DemoContext, ModelResult
from shipyard.errors import InvalidState

__all__ = ["METRICS", "compare_models"]

METRICS = ["val_auc", "val_log_loss", "val_f1", "val_recall", "fit_time_s"]


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("#", justify="right")
    table.add_column("run", no_wrap=True)
    table.add_column("model")
    for name in METRICS:
        table.add_column(name, justify="right")
    for rank, row in enumerate(rows, 1):
        values = [f"{row.get(f'metrics.{m}', float('nan')):.3f}" for m in METRICS]
        name = ("★ " if rank == 1 else "  ") + str(row["run_name"])
        table.add_row(
            str(rank),
            name,
            str(row.get("params.model", "")),
            *values,
            style="bold green" if rank == 1 else "",
        )
    return table


def compare_models(ctx: DemoContext) -> None:
    """Stage: ``search_runs`` ordered by AUC, shown as a table with the best run highlighted."""
    majority = 1 - float(ctx.require_data().y_val.mean())
    query = f"tags.demo_session = '{ctx.session}'"
    ctx.console.print(
        Text(f'client.search_runs("{ctx.experiment}", filter="{query}", order_by=["metrics.val_auc desc"])'),
        style="dim",
        soft_wrap=True,
    )
    df = ctx.client.search_runs(ctx.experiment, filter=query, order_by=["metrics.val_auc desc"])
    rows: list[dict[str, Any]] = df.to_dict(orient="records")
    if not rows:
        raise InvalidState(
            f"No runs of this demo session in experiment '{ctx.experiment}'; did training run?"
        )
    ctx.console.print(_table(rows))
    rank = {str(row["run_id"]): i for i, row in enumerate(rows)}
    ctx.results.sort(key=lambda r: rank.get(r.run_id, len(rank)))  # best first, for later stages
    top = rows[0]
    ctx.best = ModelResult(
        run_id=str(top["run_id"]),
        name=str(top["run_name"]),
        family=str(top.get("params.model", "")),
        metrics={m: float(top[f"metrics.{m}"]) for m in METRICS if f"metrics.{m}" in top},
    )
    ctx.console.print(
        Text.assemble(
            "Best: ",
            (ctx.best.name, "bold green"),
            f", validation AUC {ctx.best.metrics['val_auc']:.3f}. ",
            (
                f"For scale: always answering 'on time' is right {majority:.1%} of the time, at AUC 0.5.",
                "dim",
            ),
        )
    )
