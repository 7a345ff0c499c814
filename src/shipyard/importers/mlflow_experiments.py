"""Experiments of an MLflow store written into Shipyard: name, creation time, description and tags,
and, once their runs are in, MLflow's deleted state; each checked on both sides.

An experiment keeps MLflow's name unless Shipyard cannot hold it (:func:`experiment_name`); its id
is Shipyard's own, and the mapping goes into the report and the audit log. An experiment deleted in
MLflow is deleted after its runs are written (a deleted experiment takes no new runs), as MLflow
deletes one: with its runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from shipyard.entities import Experiment
from shipyard.errors import NotFound
from shipyard.importers.checksums import experiment_checksum
from shipyard.importers.context import ImportContext, check
from shipyard.importers.mlflow_source import experiment_name
from shipyard.importers.records import SourceExperiment
from shipyard.store import EditsExperiments, ImportsRecords

__all__ = ["finish_experiments", "import_experiments"]

Chosen = tuple[SourceExperiment, str]
"""An experiment of the import: MLflow's, and its name in Shipyard."""


def import_experiments(ctx: ImportContext, names: Iterable[str] | None) -> list[Chosen]:
    """Create (or find) each chosen experiment under its Shipyard name, with its tags."""
    chosen = ctx.source.experiments(list(names) if names else None)
    mapping: list[dict[str, Any]] = ctx.report.mapping.setdefault("experiments", [])
    out = []
    for i, exp in enumerate(chosen, 1):
        name = experiment_name(exp.name)
        if name != exp.name:
            ctx.report.problems.append(f"experiment {exp.name!r} is named {name!r} in Shipyard")
        target = _write(ctx, exp, name)
        mapping.append(
            {
                "mlflow_id": exp.source_id,
                "mlflow_name": exp.name,
                "shipyard_id": target.id if target is not None else None,
                "shipyard_name": name,
            }
        )
        out.append((exp, name))
        ctx.progress("experiments", i, len(chosen))
    return out


def _write(ctx: ImportContext, exp: SourceExperiment, name: str) -> Experiment | None:
    row = ctx.report.entity("experiments")
    store = ctx.client.store
    if ctx.dry_run or not isinstance(store, ImportsRecords):
        found = _find(ctx, name)
        if found is None:
            row.imported += 1  # would be
        else:
            row.existing += 1
        return found
    origin = ctx.origin(id=exp.source_id, name=exp.name)
    target, created = store.import_experiment(
        name, exp.description, exp.created_at, ctx.actor, origin, tags=exp.tags
    )
    if created:
        row.imported += 1
    else:
        row.existing += 1
    return target


def finish_experiments(ctx: ImportContext, chosen: Sequence[Chosen]) -> None:
    """Delete the experiments MLflow deleted (their runs are in by now), then check every one."""
    store = ctx.client.store
    for exp, name in chosen:
        target = _find(ctx, name)
        deleting = exp.deleted and target is not None and not target.deleted and not ctx.dry_run
        if deleting and target is not None and isinstance(store, EditsExperiments):
            reason = f"deleted in MLflow; {ctx.reason}"
            target = store.delete_experiment(target.id, actor=ctx.actor, reason=reason)
        tags = _tags(ctx, target)
        theirs = experiment_checksum(name, exp.description, exp.tags, exp.deleted)
        ours = (
            experiment_checksum(target.name, target.description, tags, target.deleted)
            if target is not None
            else None
        )
        check(ctx, ctx.report.entity("experiments"), name, theirs, ours)


def _find(ctx: ImportContext, name: str) -> Experiment | None:
    try:
        return ctx.client.store.get_experiment_by_name(name)
    except NotFound:
        return None


def _tags(ctx: ImportContext, target: Experiment | None) -> dict[str, str]:
    store = ctx.client.store
    if target is None or not isinstance(store, EditsExperiments):
        return {}
    return store.experiment_tags([target.id]).get(target.id, {})
