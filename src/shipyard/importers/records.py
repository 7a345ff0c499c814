"""What an import reads from another tool, in Shipyard's shapes (whatever the source was).

A :class:`SourceRun` holds the run as Shipyard will hold it (a ``Run``), its full metric histories
and its artifact listing; experiments, registered models and versions keep the source's own ids
and times beside the names they get in Shipyard.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shipyard.entities import MetricHistory, Run

__all__ = ["SourceExperiment", "SourceFile", "SourceModel", "SourceRun", "SourceVersion"]


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


@dataclass
class SourceRun:
    """A run as Shipyard will hold it, with every point of every metric and its artifact files.

    ``dataset_inputs`` counts what the source logged with ``log_input`` and ``model_outputs`` the
    logged models (MLflow 3) the run produced: neither is imported (a registered version's files are).
    """

    run: Run
    histories: dict[str, MetricHistory]
    files: list[SourceFile]
    artifact_uri: str = ""
    dataset_inputs: int = 0
    model_outputs: int = 0


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
