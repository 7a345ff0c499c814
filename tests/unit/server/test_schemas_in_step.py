"""The REST schemas carry exactly the fields of the entities they mirror: adding a field to one side
and not the other fails here (or, for ``RunOut``, cannot happen: it is built from ``Run``)."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from pydantic import BaseModel, TypeAdapter

from shipyard import entities
from shipyard.server import schemas

PAIRS = [
    (entities.Experiment, schemas.ExperimentOut),
    (entities.Artifact, schemas.ArtifactOut),
    (entities.Artifact, schemas.ArtifactIn),
    (entities.MetricHistory, schemas.MetricHistoryOut),
    (entities.RunCreate, schemas.RunCreateIn),
    (entities.Run, schemas.RunOut),
    (entities.DatasetVersionCreate, schemas.DatasetVersionIn),
    (entities.DatasetVersion, schemas.DatasetVersionOut),
    (entities.DatasetUse, schemas.DatasetUseOut),
    (entities.ContractVersion, schemas.ContractOut),
]


def wire_fields(model: type) -> set[str]:
    """The JSON keys of a wire model (aliases where set, e.g. ``schema``)."""
    if isinstance(model, type) and issubclass(model, BaseModel):
        return {info.alias or name for name, info in model.model_fields.items()}
    return {f.name for f in dataclasses.fields(model)}


@pytest.mark.parametrize(("entity", "wire"), PAIRS, ids=[w.__name__ for _, w in PAIRS])
def test_wire_model_has_the_entitys_fields(entity: type, wire: type) -> None:
    assert wire_fields(wire) == {f.name for f in dataclasses.fields(entity)}


def test_run_out_is_the_run_entity_with_wire_floats() -> None:
    assert issubclass(schemas.RunOut, entities.Run)
    run = entities.Run("r1", 1, "n", entities.RunStatus.FINISHED, 5, metrics={"a": math.inf, "b": 0.5})
    dumped = TypeAdapter(schemas.RunOut).dump_python(schemas.RunOut.of(run), mode="json")
    assert dumped["metrics"] == {"a": "Infinity", "b": 0.5}
    assert entities.Run.from_dict(dumped) == run


def test_every_entity_with_to_dict_round_trips() -> None:
    files = [entities.Artifact("model.skops", "0" * 64, 10, 1)]
    version = entities.ModelVersion(
        "churn",
        1,
        "1" * 64,
        "sklearn",
        files,
        {},
        {"task": "binary"},
        "r1",
        [("flights", 2, "train")],
        "",
        "",
        3,
    )
    create = entities.ModelVersionCreate(
        "churn", "1" * 64, "sklearn", files, {}, datasets=[("f", 1, "train")]
    )
    record = entities.ModelRecord(7, "churn", 1, "evaluation", "ana", {"auc": 0.9}, 4, files)
    for item in (version, create, record):
        data = item.to_dict()
        assert data["files"] == [{"path": "model.skops", "digest": "0" * 64, "size": 10, "created_at": 1}]
        assert type(item).from_dict(data) == item
    assert version.to_dict()["datasets"] == [["flights", 2, "train"]]


def test_run_page_json_is_what_the_models_would_send() -> None:
    """The search route writes a page's JSON straight from the entities: the same JSON as the models."""
    runs = [
        entities.Run(
            "r1",
            1,
            "ünïcode <b>",
            entities.RunStatus.FINISHED,
            5,
            end_time=9,
            parent_run_id="p",
            user="sam",
            source="train.py",
            params={"lr": "0.1", "": "x"},
            metrics={"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "big": 1e308, "tiny": 5e-324},
            tags={"t": "v"},
            experiment_name="e",
        ),
        entities.Run("r2", 2, "", entities.RunStatus.RUNNING, 6, deleted=True),
    ]
    for token in (None, "abc"):
        by_models = schemas.RunPageOut(runs=[schemas.RunOut.of(r) for r in runs], next_page_token=token)
        expected = TypeAdapter(schemas.RunPageOut).dump_python(by_models, mode="json")
        got = json.loads(schemas.RunPageOut.json_of(runs, token))
        assert got == expected
        assert [entities.Run.from_dict(r) for r in got["runs"]][1] == runs[1]
