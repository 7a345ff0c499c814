"""``ImportsRecords.import_logged_model`` on SQLite and the real PostgreSQL: an MLflow 3 logged model
keeps its own id, times, status, step, params, tags and metric points, is written once (a second
import returns it unchanged) and audited once with its origin."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator

import pytest

from shipyard.audit import verify_chain
from shipyard.entities import LoggedModel, LoggedModelMetric, LoggedModelStatus, RunCreate
from shipyard.errors import RunNotFound
from shipyard.store.sql import SqlStore

T0 = 1_600_000_000_000  # long before any test runs: a kept time cannot be "now"
MODEL_ID = "m-" + "ab" * 16


@pytest.fixture
def store(store_uri: str) -> Iterator[SqlStore]:
    s = SqlStore(store_uri)
    yield s
    s.close()


def _model(run_id: str, **changes: object) -> LoggedModel:
    points = (
        LoggedModelMetric(MODEL_ID, "acc", 0.75, 3, T0 + 7, run_id, "train", "3028aa26"),
        LoggedModelMetric(MODEL_ID, "odd", math.nan, 0, T0 + 8, run_id),
    )
    fields: dict[str, object] = {
        "id": MODEL_ID,
        "experiment_id": 0,  # the run's, whatever is given
        "run_id": run_id,
        "name": "clf",
        "status": LoggedModelStatus.READY,
        "created_at": T0 + 5,
        "updated_at": T0 + 9,
        "model_type": "sklearn",
        "step": 3,
        "params": {"C": "1.0"},
        "tags": {"stage": "candidate"},
        "metrics": points,
    }
    fields.update(changes)
    return LoggedModel(**fields)  # type: ignore[arg-type]


def test_an_imported_logged_model_keeps_what_mlflow_said_and_is_written_once(store: SqlStore) -> None:
    exp, _ = store.import_experiment("churn", "", T0, "ann", {})
    run = store.create_run(
        RunCreate(experiment_name="churn", name="fit", user="ann", run_id=uuid.uuid4().hex, start_time=T0)
    )
    given = _model(run.id)
    model, created = store.import_logged_model(given, "ann", {"system": "mlflow", "model_id": MODEL_ID})
    assert created
    assert model == store.get_logged_model(MODEL_ID)
    assert (model.experiment_id, model.run_id, model.name, model.status) == (exp.id, run.id, "clf", "ready")
    assert (model.created_at, model.updated_at, model.step, model.model_type) == (
        T0 + 5,
        T0 + 9,
        3,
        "sklearn",
    )
    assert (model.params, model.tags) == ({"C": "1.0"}, {"stage": "candidate"})
    (acc, odd) = model.metrics
    assert acc == given.metrics[0] and math.isnan(odd.value)
    again, created_again = store.import_logged_model(_model(run.id, name="other"), "bob", {})
    assert not created_again and again == model
    entries = store.list_audit(action="logged_model.import")
    assert [(e.actor, e.object_id, e.after["origin"]["model_id"]) for e in entries] == [
        ("ann", MODEL_ID, MODEL_ID)
    ]
    assert verify_chain(store.list_audit()).ok


def test_a_logged_model_of_a_run_not_in_the_store_is_refused(store: SqlStore) -> None:
    with pytest.raises(RunNotFound):
        store.import_logged_model(_model(uuid.uuid4().hex), "ann", {})
