"""MLflow 3's logged models in the SQL store (``KeepsLoggedModels``), on both SQL backends: a run's
model with its status, step, params, tags and metric points; deletion audited; purge cascades."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from shipyard.entities import LoggedModelMetric, LoggedModelStatus, RunCreate
from shipyard.errors import InvalidInput, InvalidState, NotFound, RunNotFound
from shipyard.store import KeepsLoggedModels
from shipyard.store.sql import SqlStore


@pytest.fixture
def store(store_uri: str) -> Iterator[SqlStore]:
    s = SqlStore(store_uri)
    yield s
    s.close()


def _run(store: SqlStore, run_id: str, experiment: str = "churn") -> int:
    store.create_run(RunCreate(run_id, experiment, f"run-{run_id}", 1, "ann"))
    return store.get_run(run_id).experiment_id


def test_the_sql_store_keeps_logged_models(store: SqlStore) -> None:
    assert isinstance(store, KeepsLoggedModels)


def test_a_logged_model_belongs_to_its_run_and_reads_back_whole(store: SqlStore) -> None:
    exp_id = _run(store, "r1")
    created = store.create_logged_model(
        "r1", "model", model_type="classifier", params={"C": "1.0"}, tags={"mlflow.user": "ann"}
    )
    assert created.id.startswith("m-") and len(created.id) == 34
    assert (created.experiment_id, created.run_id, created.status) == (
        exp_id,
        "r1",
        LoggedModelStatus.PENDING,
    )
    assert created.artifact_path == f"models/{created.id}" and created.step is None

    store.update_logged_model(created.id, status=LoggedModelStatus.READY, step=3)
    store.log_logged_model_params(created.id, {"C": "1.0", "penalty": "l2"})  # the same value again is fine
    store.set_logged_model_tags(created.id, {"stage": "dev", "mlflow.user": "bob"})
    points = [
        LoggedModelMetric(created.id, "acc", 0.9, 0, 5, "r1", "train", "abc123"),
        LoggedModelMetric(created.id, "loss", math.nan, 0, 5, "r1"),
    ]
    store.log_logged_model_metrics(points)
    store.log_logged_model_metrics(
        [LoggedModelMetric(created.id, "acc", 0.95, 0, 5, "r1", "train", "abc123")]
    )

    got = store.get_logged_model(created.id)
    assert (got.status, got.step, got.model_type) == (LoggedModelStatus.READY, 3, "classifier")
    assert got.params == {"C": "1.0", "penalty": "l2"}
    assert got.tags == {"mlflow.user": "bob", "stage": "dev"}
    acc, loss = got.metrics
    assert (acc.key, acc.value, acc.dataset_name, acc.dataset_digest) == ("acc", 0.95, "train", "abc123")
    assert loss.key == "loss" and math.isnan(loss.value)
    assert got.updated_at >= created.created_at


def test_logged_models_are_listed_by_experiment_name_and_run_newest_first(store: SqlStore) -> None:
    churn = _run(store, "r1")
    _run(store, "r2")
    other = _run(store, "r3", experiment="other")
    first = store.create_logged_model("r1", "model")
    second = store.create_logged_model("r2", "model")
    store.create_logged_model("r2", "best_estimator")
    store.create_logged_model("r3", "model")
    named = store.list_logged_models([churn], name="model")
    assert {m.id for m in named} == {first.id, second.id}
    assert [m.created_at for m in named] == sorted((m.created_at for m in named), reverse=True)
    assert [m.name for m in store.list_logged_models([churn], run_id="r2")] in (
        ["model", "best_estimator"],
        ["best_estimator", "model"],
    )
    assert len(store.list_logged_models([churn, other])) == 4
    assert store.list_logged_models([]) == []


def test_a_deleted_model_is_found_only_when_asked_and_takes_no_changes(store: SqlStore) -> None:
    _run(store, "r1")
    model = store.create_logged_model("r1", "model")
    store.delete_logged_model(model.id, "ann", "superseded")
    with pytest.raises(NotFound, match="it is deleted"):
        store.get_logged_model(model.id)
    assert store.get_logged_model(model.id, allow_deleted=True).deleted
    assert store.list_logged_models([store.get_run("r1").experiment_id]) == []
    with pytest.raises(NotFound):
        store.set_logged_model_tags(model.id, {"k": "v"})
    (entry,) = store.list_audit(object_type="logged_model")
    assert (entry.action, entry.object_id, entry.actor, entry.reason) == (
        "logged_model.delete",
        model.id,
        "ann",
        "superseded",
    )


def test_what_the_store_refuses_names_the_thing(store: SqlStore) -> None:
    with pytest.raises(RunNotFound, match="'ghost'"):
        store.create_logged_model("ghost", "model")
    _run(store, "r1")
    model = store.create_logged_model("r1", "model", params={"C": "1.0"})
    with pytest.raises(InvalidInput, match=r"Param 'C' of logged model .* is already '1.0'"):
        store.log_logged_model_params(model.id, {"C": "2.0"})
    with pytest.raises(NotFound, match="has no tag 'absent'"):
        store.delete_logged_model_tag(model.id, "absent")
    with pytest.raises(NotFound, match="'m-nothing'"):
        store.log_logged_model_metrics([LoggedModelMetric("m-nothing", "acc", 1.0, 0, 1, "r1")])
    with pytest.raises(InvalidInput):
        store.create_logged_model("r1", "")
    store.delete_runs(["r1"], "ann")
    with pytest.raises(InvalidState, match="restore it"):
        store.create_logged_model("r1", "model")


def test_purging_a_run_removes_its_logged_models(store: SqlStore) -> None:
    _run(store, "r1")
    model = store.create_logged_model("r1", "model", params={"C": "1"}, tags={"k": "v"})
    store.log_logged_model_metrics([LoggedModelMetric(model.id, "acc", 1.0, 0, 1, "r1")])
    store.delete_runs(["r1"], "ann")
    assert store.purge_deleted_runs() == 1
    with pytest.raises(NotFound):
        store.get_logged_model(model.id, allow_deleted=True)
