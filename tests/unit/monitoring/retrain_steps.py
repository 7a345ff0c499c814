"""A tiny pipeline the retrain-action tests trigger by reference (``retrain_steps:retrain``)."""

from __future__ import annotations

import shipyard as sy


@sy.step
def fit(months: int) -> dict[str, int]:
    sy.log_metric("months", months)
    return {"months": months}


@sy.pipeline
def retrain(months: int = 1):  # type: ignore[no-untyped-def]
    return fit(months)
