"""Pipelines the CLI tests run (module level: ``shipyard pipelines run cli_pipeline_steps:sums``)."""

from __future__ import annotations

import pandas as pd

import shipyard as sy
from shipyard.data.contracts import Contract

SMALL = Contract.from_dict(
    {"name": "small", "columns": [{"name": "x", "type": "int", "nullable": False, "min": 0, "max": 2}]}
)


@sy.step
def numbers(n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": list(range(n))})


@sy.step
def total(frame: pd.DataFrame) -> dict:
    return {"total": int(frame["x"].sum())}


@sy.step
def boom(frame: pd.DataFrame) -> dict:
    raise ValueError(f"boom: {len(frame)} rows is not what I wanted")


@sy.step(contracts={"frame": SMALL})
def checked(frame: pd.DataFrame) -> dict:
    return {"rows": len(frame)}


@sy.pipeline
def sums(n: int = 3):
    return total(numbers(n))


@sy.pipeline
def broken(n: int = 3):
    return total(boom(numbers(n)))


@sy.pipeline
def guarded(n: int = 3):
    return checked(numbers(n))
