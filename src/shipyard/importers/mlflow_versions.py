"""An MLflow model version as a Shipyard version: its files, how Shipyard loads them, and its card.

The files are the MLflow model folder as MLflow stored it (``MLmodel`` and the flavor's files, from
the version's download URI; for MLflow 3, the logged model's folder), each copied into the blob
store, plus two of Shipyard's:

- ``shipyard-model.yaml``, written by the registry's reader of MLflow folders
  (:func:`~shipyard.registry.flavors.mlflow_folder.with_shipyard_meta`), exactly as for a folder
  registered through MLflow's API: a scikit-learn folder loads with Shipyard's safe loaders, any
  other is kept with the flavor ``mlflow`` and refused at load with the reason;
- ``records/mlflow/model-version.json``: everything MLflow said about the version (source URI,
  stage, status, logged-model id, tags, times). It also keeps two MLflow versions of the same files
  distinct (Shipyard keeps one version per content of a model).

The card is the registry's (:func:`~shipyard.registry.cards.metadata`): the version's tags are
MLflow's, and ``metadata["mlflow"]`` holds the stage, status, source and logged-model id.

A version registered from a logged model (``models:/m-…``) is made of the same files as that
model, which the runs phase imported into its run's artifacts under ``models/<model_id>/``: its
card's ``artifact`` names that folder, as for a version registered through Shipyard's MLflow API,
and a version whose files differ from the model's there is reported.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import yaml

from shipyard.entities import Artifact, ModelVersionCreate, Run
from shipyard.errors import InvalidInput, NotFound
from shipyard.importers.context import ImportContext
from shipyard.importers.records import SourceFile, SourceModel, SourceVersion
from shipyard.registry import cards
from shipyard.registry.core import MODEL_FILE, manifest_digest
from shipyard.registry.flavors.mlflow_folder import MLFLOW_FLAVOR, with_shipyard_meta
from shipyard.store import KeepsLoggedModels

__all__ = ["RECORD_FILE", "SHIPYARD_FILES", "version_spec"]

RECORD_FILE = "records/mlflow/model-version.json"
SHIPYARD_FILES = ("records/", MODEL_FILE)
"""Files of an imported version that Shipyard adds (prefixes): not part of MLflow's folder."""


def version_spec(
    ctx: ImportContext,
    model: SourceModel,
    name: str,
    version: SourceVersion,
    run_id: str | None,
    listed: list[SourceFile],
) -> ModelVersionCreate:
    """Copy the version's files into the blob store and describe the version to write."""
    blobs = ctx.client.blobs
    copied = ctx.source.copy_version_files(model.name, version.version, listed, blobs.put_file)
    files = [Artifact(path, digest, size) for path, digest, size in copied]
    record = {"system": "mlflow", "store": ctx.source.uri, "name": model.name, **dataclasses.asdict(version)}
    files.append(
        Artifact(RECORD_FILE, *blobs.put_bytes(json.dumps(record, indent=2, sort_keys=True).encode()))
    )
    run = _run(ctx, run_id)
    item = f"model version {name}/{version.version}"
    folder = _artifact_path(version.source)
    if run is not None and version.model_id and folder is None:
        folder = _logged_model_folder(ctx, run, version.model_id, files, item)
    flavor, signature, card = (
        MLFLOW_FLAVOR,
        {},
        {"tags": dict(version.tags), "size": sum(f.size for f in files)},
    )
    try:
        files = with_shipyard_meta(files, blobs)
    except InvalidInput as exc:  # not an MLflow model folder: kept as it is, not loadable by Shipyard
        ctx.report.problems.append(f"{item}: {exc.message}")
    else:
        meta = yaml.safe_load(blobs.get_bytes(next(f.digest for f in files if f.path == MODEL_FILE)))
        flavor = str(meta.get("flavor") or MLFLOW_FLAVOR)
        card = cards.metadata(meta, run, None, version.tags, files, None, folder)
        try:
            signature = cards.signature_for(ctx.client, meta, None, None, None, run)
        except InvalidInput:  # MLflow recorded none: kept without one, as MLflow has it
            ctx.report.problems.append(f"{item} has no signature in MLflow (nor an input example)")
    card["mlflow"] = _mlflow_card(version)
    return ModelVersionCreate(
        name=name,
        digest=manifest_digest(files),
        flavor=flavor,
        files=files,
        signature=signature,
        metadata=card,
        run_id=run_id,
        description=version.description,
        created_by=version.user,
    )


def _run(ctx: ImportContext, run_id: str | None) -> Run | None:
    if run_id is None:
        return None
    try:
        return ctx.client.store.get_run(run_id)
    except NotFound:
        return None


def _logged_model_folder(
    ctx: ImportContext, run: Run, model_id: str, files: list[Artifact], item: str
) -> str | None:
    """The folder of logged model ``model_id`` in its run's artifacts, if Shipyard has the model;
    a version whose MLflow files are not that folder's (path and content) is reported."""
    store = ctx.client.store
    if not isinstance(store, KeepsLoggedModels):
        return None
    try:
        model = store.get_logged_model(model_id, allow_deleted=True)
    except NotFound:
        return None
    if model.run_id != run.id:
        return None
    prefix = f"{model.artifact_path}/"
    held = {
        (a.path[len(prefix) :], a.digest) for a in store.list_artifacts(run.id) if a.path.startswith(prefix)
    }
    if held != {(f.path, f.digest) for f in files if f.path != RECORD_FILE}:
        ctx.report.problems.append(
            f"{item}: its files differ from those of logged model {model_id} in run {run.id} ({prefix})"
        )
    return model.artifact_path


def _artifact_path(source: str) -> str | None:
    """Where in its run MLflow logged the folder (``runs:/<run id>/<path>``), if the source says."""
    match = re.match(r"^runs:/[^/]+/(.+)$", source)
    return match.group(1).strip("/") if match else None


def _mlflow_card(version: SourceVersion) -> dict[str, Any]:
    return {
        "source": version.source,
        "run_id": version.run_id,
        "stage": version.stage,
        "status": version.status,
        "model_id": version.model_id,
        "updated_at": version.updated_at,
    }
