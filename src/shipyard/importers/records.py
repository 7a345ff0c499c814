"""What an import reads from another tool, in Shipyard's shapes (whatever the source was).

A :class:`SourceRun` holds the run as Shipyard will hold it (a ``Run``), its full metric histories
and its artifact listing; experiments, registered models and versions keep the source's own ids
and times beside the names they get in Shipyard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shipyard.entities import LoggedModel, MetricHistory, Run

__all__ = [
    "SourceExperiment",
    "SourceFile",
    "SourceLoggedModel",
    "SourceModel",
    "SourceRun",
    "SourceVersion",
]


@dataclass(frozen=True)
class SourceFile:
    """An artifact file: its path under the run's root and its size in bytes."""

    path: str
    size: int


@dataclass(frozen=True)
class SourceExperiment:
    source_id: str
    name: str
    description: str
    created_at: int
    tags: dict[str, str] = field(default_factory=dict)
    deleted: bool = False


@dataclass(frozen=True)
class SourceLoggedModel:
    """A logged model (MLflow 3) a run produced, as Shipyard will hold it (its ``experiment_id`` is
    the run's in Shipyard), with the files at its own artifact location."""

    model: LoggedModel
    artifact_uri: str
    files: list[SourceFile]


@dataclass
class SourceRun:
    """A run as Shipyard will hold it, with every point of every metric and its artifact files.

    ``inputs`` are its dataset inputs (``mlflow.log_input``) as MLflow's ``DatasetInput`` JSON
    (:func:`~shipyard.tracking.mlflow_inputs.dataset_input`), ``model_inputs`` the ids of the
    logged models it used, ``logged_models`` those it produced (its model outputs) and
    ``unreadable`` why any of those could not be read.
    """

    run: Run
    histories: dict[str, MetricHistory]
    files: list[SourceFile]
    artifact_uri: str = ""
    inputs: list[dict[str, Any]] = field(default_factory=list)
    model_inputs: list[str] = field(default_factory=list)
    logged_models: list[SourceLoggedModel] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SourceVersion:
    version: int
    description: str
    created_at: int
    updated_at: int
    user: str
    source: str
    run_id: str | None
    status: str
    stage: str
    tags: dict[str, str]
    model_id: str | None = None


@dataclass(frozen=True)
class SourceModel:
    name: str
    description: str
    created_at: int
    updated_at: int
    tags: dict[str, str]
    aliases: dict[str, int]
    versions: list[SourceVersion]
