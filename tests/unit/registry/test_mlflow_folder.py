"""MLflow model folders in Shipyard's registry: Shipyard decides how to load them (skops through the
``sklearn`` flavor, pickles through the scanned ``python_function`` flavor, anything else refused with
the reason), whatever the folder's ``MLmodel`` claims; the signature comes from ``MLmodel`` or the
folder's input example."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import skops.io
import yaml
from sklearn.ensemble import RandomForestClassifier

import shipyard as sy
from shipyard import Client
from shipyard.entities import Artifact
from shipyard.errors import NotFound, UnsafeModel
from shipyard.registry.flavors.mlflow_folder import mlflow_signature, shipyard_meta

X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1, 0, 1, 0]})
Y = [0, 0, 1, 1]


class Boom:
    """Unpickling this runs ``os.system``: what a hostile model file does."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("echo owned",))


def _folder(path: Path, fmt: str, payload: Any, *, example: bool = False, signature: bool = True) -> Path:
    path.mkdir(parents=True)
    model_file = "model.skops" if fmt == "skops" else "model.pkl"
    if fmt == "skops":
        skops.io.dump(payload, path / model_file)
    else:
        (path / model_file).write_bytes(pickle.dumps(payload))
    mlmodel: dict[str, Any] = {
        "flavors": {
            "python_function": {"loader_module": "mlflow.sklearn", "model_path": model_file},
            "sklearn": {"pickled_model": model_file, "serialization_format": fmt},
        }
    }
    if signature:
        mlmodel["signature"] = {
            "inputs": json.dumps([{"type": "double", "name": "a"}, {"type": "long", "name": "b"}]),
            "outputs": json.dumps([{"type": "long"}]),
        }
    if example:
        (path / "input_example.json").write_text(json.dumps({"columns": ["a", "b"], "data": [[0.5, 1]]}))
    (path / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    return path


def _run(client: Client, folder: Path) -> str:
    with client.start_run(experiment="mlflow-folders", log_environment=False, system_metrics=False) as run:
        client.log_artifact(run.id, folder, "model")
    return run.id


@pytest.fixture(scope="module")
def forest() -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=3, random_state=0).fit(X, Y)


@pytest.mark.parametrize(("fmt", "flavor"), [("skops", "sklearn"), ("cloudpickle", "python_function")])
def test_an_mlflow_sklearn_folder_registers_and_loads_through_shipyards_rules(
    client: Client, tmp_path: Path, forest: RandomForestClassifier, fmt: str, flavor: str
) -> None:
    run_id = _run(client, _folder(tmp_path / "m", fmt, forest))
    mv = sy.register_model(run_id, "forest", client=client)
    assert mv.flavor == flavor and mv.metadata["artifact"] == "model"
    loaded = sy.load_model(mv, client=client)
    assert list(loaded.predict(X)) == list(forest.predict(X))
    assert loaded.trusted_unsafe == []
    assert sy.register_model(run_id, "forest", client=client).version == mv.version, (
        "same files, same version"
    )


def test_a_hostile_pickle_in_an_mlflow_folder_is_refused_at_load(client: Client, tmp_path: Path) -> None:
    run_id = _run(client, _folder(tmp_path / "m", "pickle", Boom()))
    mv = sy.register_model(run_id, "hostile", client=client)
    with pytest.raises(UnsafeModel, match=r"system"):
        sy.load_model(mv, client=client)


def test_the_signature_falls_back_to_the_folders_input_example(
    client: Client, tmp_path: Path, forest: RandomForestClassifier
) -> None:
    run_id = _run(client, _folder(tmp_path / "m", "skops", forest, example=True, signature=False))
    mv = sy.register_model(run_id, "from-example", client=client)
    assert [(c["name"], c["type"]) for c in mv.signature["inputs"]] == [("a", "float64"), ("b", "int64")]


def test_a_run_folder_that_is_no_model_names_both_files_it_looked_for(client: Client, tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "notes.txt").write_text("no model here")
    with pytest.raises(NotFound, match=r"shipyard-model.yaml or model/MLmodel"):
        sy.register_model(_run(client, tmp_path / "m"), "nothing", client=client)


@pytest.mark.parametrize(
    ("mlflow_type", "shipyard_type"),
    [
        ("boolean", "bool"),
        ("integer", "int32"),
        ("long", "int64"),
        ("float", "float32"),
        ("double", "float64"),
        ("string", "string"),
        ("binary", "object"),
        ("datetime", "datetime64[ns]"),
        ("array", "object"),
    ],
)
def test_mlflow_column_types_map_onto_shipyards(mlflow_type: str, shipyard_type: str) -> None:
    sig = mlflow_signature({"inputs": json.dumps([{"type": mlflow_type, "name": "c", "required": True}])})
    assert sig is not None and sig.inputs[0].type == shipyard_type


def test_a_tensor_signature_has_no_columns_to_check() -> None:
    tensor = [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}]
    assert mlflow_signature({"inputs": json.dumps(tensor)}) is None


def test_an_unknown_serialization_or_flavor_is_kept_as_an_mlflow_folder() -> None:
    files = {p: Artifact(p, "0" * 64, 1) for p in ("MLmodel", "model.xgb")}
    xgb = shipyard_meta({"flavors": {"xgboost": {"data": "model.xgb"}}}, files)
    assert (xgb.flavor, xgb.model_file, xgb.flavor_options["mlflow_flavors"]) == (
        "mlflow",
        "MLmodel",
        ["xgboost"],
    )
    odd = shipyard_meta(
        {"flavors": {"sklearn": {"pickled_model": "model.xgb", "serialization_format": "joblib"}}}, files
    )
    assert odd.flavor == "mlflow"
