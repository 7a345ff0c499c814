"""Fixtures for CLI tests: a runner bound to a tmp SQLite store, and a store seeded with runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from shipyard import ActiveRun, Client
from shipyard.cli import app

Invoke = Callable[..., Result]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sqlite_uri: str) -> Invoke:
    """Run ``shipyard ARGS…`` in-process against the same stores as the ``client`` fixture."""
    monkeypatch.setenv("SHIPYARD_TRACKING_URI", sqlite_uri)
    monkeypatch.setenv("SHIPYARD_ARTIFACT_URI", str(tmp_path / "artifacts"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("COLUMNS", raising=False)  # piped tables then take their natural width
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), prog_name="shipyard")

    return invoke


@dataclass(frozen=True)
class Seeded:
    """Ids of the seeded runs."""

    forest: str
    linear: str
    other: str


@pytest.fixture
def seeded(client: Client) -> Seeded:
    """Two runs in experiment 'churn' (with a metric history and artifacts), one in 'other'."""

    def start(experiment: str, name: str, params: dict[str, object] | None = None) -> ActiveRun:
        return client.start_run(
            experiment, name=name, params=params, system_metrics=False, log_environment=False
        )

    with start("churn", "forest", {"model": "rf", "depth": 6}) as forest:
        for step, value in enumerate([0.6, 0.7, 0.8]):
            forest.log_metric("auc", value, step=step)
        forest.log_metric("loss", 0.4)
        forest.set_tags({"team": "risk"})
        forest.log_bytes(b"weights", "model/model.bin")
        forest.log_text("hello", "notes.txt")
    with start("churn", "linear", {"model": "lr", "C": 1.0}) as linear:
        linear.log_metric("auc", 0.7)
        linear.set_tags({"team": "risk"})
    with start("other", "lonely") as other:
        other.log_metric("auc", 0.5)
    return Seeded(forest.id, linear.id, other.id)
