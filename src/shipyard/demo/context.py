"""What demo stages share: the ``DemoContext`` they read and fill, and the ``Stage`` record.

A stage is a name, a title, a one-paragraph description and a function taking the
context. Stages run in order; each reads what earlier stages left on the context
(``require_data()``, ``results``, ``best``) and adds its own. Later stages (data
versioning, registry, serving, monitoring) add fields here or use ``extras``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console

from shipyard.errors import InvalidState
from shipyard.tracking import Client

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DemoContext", "FlightsData", "ModelResult", "Stage"]


@dataclass
class FlightsData:
    """The prepared flights: H1 2013 split for training/validation, H2 kept for later stages.

    ``later`` holds July–December flights (features plus a ``late`` column): the
    traffic a served model would see, with real drift (the late share moves by month).
    """

    train: pd.DataFrame
    y_train: pd.Series
    val: pd.DataFrame
    y_val: pd.Series
    later: pd.DataFrame
    numeric: list[str]
    categorical: list[str]
    total_flights: int
    cancelled: int
    h1_rows: int


@dataclass(frozen=True)
class ModelResult:
    """One trained model: its run and the validation metrics it logged."""

    run_id: str
    name: str
    family: str
    metrics: dict[str, float]


@dataclass
class DemoContext:
    """State shared by the stages of one demo invocation."""

    client: Client
    console: Console
    quick: bool = False
    executor: str = "local"  # where the training pipeline runs: local | ray
    ray_address: str | None = None
    experiment: str = "flights-delay"
    seed: int = 13
    session: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    data: FlightsData | None = None
    results: list[ModelResult] = field(default_factory=list)
    best: ModelResult | None = None
    timings: dict[str, float] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    cleanups: list[Callable[[], None]] = field(default_factory=list)  # run when the demo ends, newest first

    def require_data(self) -> FlightsData:
        """The prepared data (raises if the data stage has not run)."""
        if self.data is None:
            raise InvalidState("The demo's data stage has not run yet; stages must run in order")
        return self.data

    def require_best(self) -> ModelResult:
        """The best run (raises if the train stage has not run)."""
        if self.best is None:
            raise InvalidState(
                "The demo's train stage has not picked a best run yet; stages must run in order"
            )
        return self.best


@dataclass(frozen=True)
class Stage:
    """One step of the demo. Add a stage by writing ``run(ctx)`` and listing it in ``stages.STAGES``."""

    name: str
    title: str
    description: str
    run: Callable[[DemoContext], None]
