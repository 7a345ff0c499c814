"""Checksums an import computes on both sides: what was read from the source, and what Shipyard
holds afterwards, read back. Each is BLAKE3 over one canonical JSON form, so the two agree exactly
when every field, param, tag, metric point and artifact listing does.

Metric values are written with ``repr`` (``nan``, ``inf``, ``-0.0`` stay distinct) and a series'
points are sorted, since stores may return points logged at the same step in either order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import blake3

from shipyard.entities import LoggedModel, MetricHistory, Run

__all__ = [
    "combined",
    "digest_of",
    "experiment_checksum",
    "inputs_checksum",
    "logged_model_checksum",
    "model_checksum",
    "run_checksum",
    "version_checksum",
]


def digest_of(value: Any) -> str:
    """BLAKE3 of ``value`` as canonical JSON (sorted keys, no spaces).

    Example:
        >>> digest_of({"b": 1, "a": [2]}) == digest_of({"a": [2], "b": 1})
        True
    """
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return blake3.blake3(text.encode()).hexdigest()


def combined(digests: Iterable[str]) -> str:
    """One checksum for a set of items: BLAKE3 over their sorted digests.

    Example:
        >>> combined(["b", "a"]) == combined(["a", "b"])
        True
    """
    return blake3.blake3("\n".join(sorted(digests)).encode()).hexdigest()


def _points(history: MetricHistory) -> list[list[Any]]:
    rows = zip(history.steps, history.timestamps, history.values, strict=True)
    return sorted([int(s), int(t), repr(float(v))] for s, t, v in rows)


def run_checksum(run: Run, histories: Mapping[str, MetricHistory], files: Iterable[tuple[str, int]]) -> str:
    """A run's fields, params, tags, every metric point and its artifact files (path, size).

    The experiment counts by name (its id is the store's own).

    Example:
        >>> from shipyard.entities import RunStatus
        >>> run = Run("a" * 32, 1, "r", RunStatus.FINISHED, 5, experiment_name="churn")
        >>> len(run_checksum(run, {}, [("model/MLmodel", 10)]))
        64
    """
    return digest_of(
        {
            "id": run.id,
            "experiment": run.experiment_name,
            "name": run.name,
            "status": str(run.status),
            "start_time": run.start_time,
            "end_time": run.end_time,
            "parent_run_id": run.parent_run_id,
            "user": run.user,
            "source": run.source,
            "deleted": run.deleted,
            "params": sorted(run.params.items()),
            "tags": sorted(run.tags.items()),
            "metrics": {key: _points(h) for key, h in sorted(histories.items())},
            "files": sorted([str(p), int(s)] for p, s in files),
        }
    )


def experiment_checksum(name: str, description: str, tags: Mapping[str, str], deleted: bool) -> str:
    """An experiment as both sides keep it: name, description, tags and whether it is deleted."""
    return digest_of(
        {"name": name, "description": description, "tags": sorted(tags.items()), "deleted": deleted}
    )


def model_checksum(
    name: str,
    description: str,
    created_at: int,
    updated_at: int,
    tags: Mapping[str, str],
    aliases: Mapping[str, int],
) -> str:
    """A registered model: name, description, times, tags and where its aliases point."""
    return digest_of(
        {
            "name": name,
            "description": description,
            "created_at": created_at,
            "updated_at": updated_at,
            "tags": sorted(tags.items()),
            "aliases": sorted(aliases.items()),
        }
    )


def version_checksum(
    name: str,
    version: int,
    *,
    description: str,
    created_at: int,
    created_by: str,
    run_id: str | None,
    tags: Mapping[str, str],
    aliases: Iterable[str],
    files: Iterable[tuple[str, int]],
) -> str:
    """A model version: number, description, times, author, source run, tags, aliases and the
    model folder's files (path, size)."""
    return digest_of(
        {
            "name": name,
            "version": version,
            "description": description,
            "created_at": created_at,
            "created_by": created_by,
            "run_id": run_id,
            "tags": sorted(tags.items()),
            "aliases": sorted(aliases),
            "files": sorted([str(p), int(s)] for p, s in files),
        }
    )


def inputs_checksum(inputs: Mapping[str, Any]) -> str:
    """A run's inputs as MLflow reads them (``RunInputs``: dataset inputs with every field and
    tag, model inputs), in any order."""
    return digest_of(
        {
            "datasets": sorted(digest_of(d) for d in inputs.get("dataset_inputs", [])),
            "models": sorted(digest_of(m) for m in inputs.get("model_inputs", [])),
        }
    )


def logged_model_checksum(model: LoggedModel, files: Iterable[tuple[str, int]]) -> str:
    """A logged model: id, run, name, type, status, step, deletion, times, params, tags, every
    metric point and its files (path under the model's folder, size)."""
    points = sorted(
        [p.key, p.step, p.timestamp, p.run_id, repr(float(p.value)), p.dataset_name, p.dataset_digest]
        for p in model.metrics
    )
    return digest_of(
        {
            "id": model.id,
            "run_id": model.run_id,
            "name": model.name,
            "model_type": model.model_type,
            "status": str(model.status),
            "step": model.step,
            "deleted": model.deleted,
            "created_at": model.created_at,
            "updated_at": model.updated_at,
            "params": sorted(model.params.items()),
            "tags": sorted(model.tags.items()),
            "metrics": points,
            "files": sorted([str(p), int(s)] for p, s in files),
        }
    )
