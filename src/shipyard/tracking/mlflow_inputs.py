"""A run's MLflow inputs on Shipyard: the datasets (and models) MLflow's client logs with
``mlflow.log_input``, kept the one way both the MLflow-compatible server and ``shipyard import
mlflow`` keep them.

A dataset input whose name and digest (a prefix of at least 8 characters) name a Shipyard dataset
version is recorded as the run's use of that version (its lineage), in the role of its
``mlflow.data.context`` tag (``input`` without one). Any other dataset input, and every model input,
is kept as MLflow's client sent it (MLflow's ``DatasetInput`` as protobuf JSON) in the run tag
:data:`INPUTS_TAG`, JSON ``{"datasets": [...], "models": [{"model_id": ...}]}``. :func:`run_inputs`
is the run's ``inputs`` as MLflow reads them back: the kept ones, then the uses.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shipyard.entities import DatasetUse, DatasetVersion, LogBatch, Run
from shipyard.errors import InvalidInput, NotFound
from shipyard.store import Store

__all__ = [
    "DATASET_CONTEXT_TAG",
    "DATASET_FIELDS",
    "INPUTS_TAG",
    "dataset_input",
    "encode_inputs",
    "kept_inputs",
    "named_version",
    "record_inputs",
    "run_inputs",
    "split_inputs",
]

INPUTS_TAG = "mlflow.inputs"
"""The run tag holding MLflow dataset and model inputs that match no Shipyard dataset (JSON)."""
DATASET_CONTEXT_TAG = "mlflow.data.context"
"""The dataset input tag naming its role (``training``, ``evaluation``; Shipyard: the use's role)."""
DATASET_FIELDS = ("name", "digest", "source_type", "source", "schema", "profile")
"""The fields of MLflow's ``Dataset`` message, in its order."""
_MIN_DIGEST = 8
_MAX_ROLE = 64


def dataset_input(dataset: Mapping[str, str | None], tags: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """One MLflow ``DatasetInput`` as protobuf JSON (empty fields left out, as MLflow's client sends).

    Example:
        >>> entry = dataset_input({"name": "train", "digest": "3028aa26", "profile": None}, [("split", "a")])
        >>> entry["dataset"], entry["tags"]
        ({'name': 'train', 'digest': '3028aa26'}, [{'key': 'split', 'value': 'a'}])
    """
    return {
        "tags": [{k: v for k, v in (("key", key), ("value", value)) if v} for key, value in tags],
        "dataset": {f: str(dataset[f]) for f in DATASET_FIELDS if dataset.get(f)},
    }


def kept_inputs(tags: Mapping[str, str]) -> dict[str, list[Any]]:
    """The inputs kept in a run's :data:`INPUTS_TAG` (none when absent or not JSON)."""
    try:
        kept = json.loads(tags.get(INPUTS_TAG) or "{}")
    except ValueError:
        kept = {}
    if not isinstance(kept, dict):
        kept = {}
    return {"datasets": list(kept.get("datasets") or []), "models": list(kept.get("models") or [])}


def _context(entry: Mapping[str, Any]) -> str:
    tags = {t.get("key", ""): t.get("value", "") for t in entry.get("tags", [])}
    return (tags.get(DATASET_CONTEXT_TAG) or "input")[:_MAX_ROLE]


def named_version(store: Store, name: str, digest: str) -> DatasetVersion | None:
    """The Shipyard dataset version that ``name`` and ``digest`` (a prefix of 8 or more) name."""
    if len(digest) < _MIN_DIGEST:
        return None
    try:
        version = store.get_dataset_version(name, digest)
    except (NotFound, InvalidInput):
        return None
    return version if version.digest.startswith(digest) else None  # digits can read as a number


def split_inputs(
    store: Store, run_id: str, datasets: Sequence[Mapping[str, Any]]
) -> tuple[list[DatasetUse], list[dict[str, Any]]]:
    """Dataset inputs (:func:`dataset_input`'s shape) as the uses of Shipyard dataset versions they
    name, and the others, kept as they are."""
    uses, kept = [], []
    for entry in datasets:
        dataset = entry.get("dataset") or {}
        version = named_version(store, str(dataset.get("name", "")), str(dataset.get("digest", "")))
        if version is None:
            kept.append(dict(entry))
        else:
            uses.append(DatasetUse(run_id, version, _context(entry)))
    return uses, kept


def record_inputs(
    store: Store, run: Run, datasets: Sequence[Mapping[str, Any]], model_ids: Sequence[str] = ()
) -> None:
    """Record a run's inputs (see the module docstring); inputs it holds already are not added twice."""
    uses, others = split_inputs(store, run.id, datasets)
    for use in uses:
        store.record_dataset_use(run.id, use.dataset.name, use.dataset.version, use.role)
    kept = kept_inputs(run.tags)
    added = [e for e in others if e not in kept["datasets"]]
    models = [{"model_id": i} for i in dict.fromkeys(model_ids) if {"model_id": i} not in kept["models"]]
    if added or models:
        kept["datasets"].extend(added)
        kept["models"].extend(models)
        store.log_batch(run.id, LogBatch(tags={INPUTS_TAG: encode_inputs(kept)}))


def encode_inputs(kept: Mapping[str, Sequence[Any]]) -> str:
    """The value of :data:`INPUTS_TAG` that keeps ``kept`` (``{"datasets": …, "models": …}``)."""
    return json.dumps(dict(kept), separators=(",", ":"))


def run_inputs(tags: Mapping[str, str], uses: Sequence[DatasetUse]) -> dict[str, Any]:
    """A run's ``inputs`` as MLflow's ``RunInputs`` message: those kept in its ``tags``, then its
    Shipyard dataset uses."""
    kept = kept_inputs(tags)
    datasets = kept["datasets"]
    for use in uses:
        version = use.dataset
        schema = {"mlflow_colspec": [{"name": n, "type": t} for n, t in version.schema]}
        datasets.append(
            {
                "tags": [{"key": DATASET_CONTEXT_TAG, "value": use.role}],
                "dataset": {
                    "name": version.name,
                    "digest": version.digest,
                    "source_type": "shipyard",
                    "source": json.dumps({"uri": version.ref}),
                    "schema": json.dumps(schema),
                    "profile": json.dumps(
                        {"num_rows": version.rows, "num_elements": version.rows * version.num_columns}
                    ),
                },
            }
        )
    return {"dataset_inputs": datasets, "model_inputs": kept["models"]}
