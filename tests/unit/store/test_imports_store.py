"""``ImportsRecords`` on SQLite and the real PostgreSQL: records made by another tool keep their own
times and version numbers, an import run twice writes nothing the second time, and each creation is
audited once with the source's id (the mapping)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from shipyard.audit import verify_chain
from shipyard.entities import Artifact, LogBatch, ModelVersionCreate, RunCreate, RunStatus
from shipyard.errors import InvalidInput, NotFound
from shipyard.store import ImportsRecords, open_store
from shipyard.store.sql import SqlStore

T0 = 1_600_000_000_000  # long before any test runs: a kept time cannot be "now"


@pytest.fixture
def store(store_uri: str) -> Iterator[SqlStore]:
    s = SqlStore(store_uri)
    yield s
    s.close()


def _spec(tag: str, run_id: str | None = None) -> ModelVersionCreate:
    return ModelVersionCreate(
        name="churn",
        digest=tag * 64,
        flavor="mlflow",
        files=[Artifact("MLmodel", tag * 64, 10), Artifact("model.pkl", "f" * 64, 99)],
        signature={},
        metadata={"tags": {"stage": "prod"}},
        run_id=run_id,
        description=f"version {tag}",
        created_by="ann",
    )


def test_the_sql_store_has_the_capability(store: SqlStore) -> None:
    opened = open_store(store.uri)
    try:
        assert isinstance(opened, ImportsRecords)
    finally:
        opened.close()


def test_an_imported_experiment_keeps_its_time_and_is_audited_once_with_its_origin(store: SqlStore) -> None:
    origin = {"system": "mlflow", "id": "17"}
    exp, created = store.import_experiment("churn", "from MLflow", T0, "ann", origin)
    again, created_again = store.import_experiment("churn", "changed", T0 + 5, "bob", {"id": "99"})
    assert created and not created_again
    assert again == exp == store.get_experiment_by_name("churn")
    assert (exp.created_at, exp.description) == (T0, "from MLflow")
    entries = store.list_audit(action="experiment.import")
    assert [(e.actor, e.object_id, e.after["origin"], e.after["id"]) for e in entries] == [
        ("ann", "churn", {"system": "mlflow", "id": "17"}, exp.id)
    ]
    assert verify_chain(store.list_audit()).ok


def test_an_imported_experiment_keeps_its_tags_and_is_found_when_deleted(store: SqlStore) -> None:
    exp, _ = store.import_experiment("churn", "", T0, "ann", {}, tags={"team": "core", "mlflow.x": "1"})
    assert store.experiment_tags([exp.id]) == {exp.id: {"team": "core", "mlflow.x": "1"}}
    store.delete_experiment(exp.id, actor="ann")
    again, created = store.import_experiment("churn", "", T0, "ann", {}, tags={"other": "2"})
    assert not created and again.deleted and again.id == exp.id
    assert store.experiment_tags([exp.id]) == {exp.id: {"team": "core", "mlflow.x": "1"}}


def test_an_imported_experiment_name_follows_the_naming_rule(store: SqlStore) -> None:
    with pytest.raises(InvalidInput):
        store.import_experiment(" churn", "", T0, "ann", {})


def test_runs_keep_their_own_id_and_times(store: SqlStore) -> None:
    store.import_experiment("churn", "", T0, "ann", {})
    parent, child = uuid.uuid4().hex, uuid.uuid4().hex
    for rid, up in ((parent, None), (child, parent)):
        spec = RunCreate(rid, "churn", "r", T0 + 10, "carl", source="train.py", parent_run_id=up)
        batch = LogBatch(metrics=[("loss", float("nan"), 3, T0 + 11)], params={"lr": "0.1"})
        store.log_run(spec, status=RunStatus.FAILED, end_time=T0 + 20, batch=batch)
    run = store.get_run(child)
    assert (run.id, run.start_time, run.end_time, run.status) == (child, T0 + 10, T0 + 20, RunStatus.FAILED)
    assert (run.parent_run_id, run.user, run.source) == (parent, "carl", "train.py")
    history = store.get_metric_history(child, "loss")
    assert (history.steps, history.timestamps) == ([3], [T0 + 11])
    assert history.values[0] != history.values[0]  # NaN kept


def test_an_imported_model_keeps_its_times_and_tags(store: SqlStore) -> None:
    model, created = store.import_registered_model(
        "churn", "predicts", "ann", T0, T0 + 7, "bob", {"id": "c"}, tags={"team": "ml"}
    )
    again, created_again = store.import_registered_model("churn", "x", "zed", 1, 2, "bob", {})
    assert created and not created_again
    assert (model.created_at, model.updated_at, model.created_by, model.description) == (
        T0,
        T0 + 7,
        "ann",
        "predicts",
    )
    assert again == model and model.tags == {"team": "ml"}
    assert [e.after["origin"] for e in store.list_audit(action="model.import")] == [{"id": "c"}]


def test_an_imported_version_keeps_its_number_and_time_and_is_written_once(store: SqlStore) -> None:
    store.import_registered_model("churn", "", "ann", T0, T0, "bob", {})
    v3, created = store.import_model_version(_spec("a"), 3, T0 + 3, "bob", {"version": "3"})
    again, created_again = store.import_model_version(_spec("a"), 3, T0 + 9, "bob", {"version": "3"})
    assert created and not created_again and again == v3
    assert (v3.version, v3.created_at, v3.created_by, v3.description) == (3, T0 + 3, "ann", "version a")
    assert v3.tags == {"stage": "prod"}  # a version's tags start as its card's
    assert store.get_model_version("churn", "latest").version == 3
    with pytest.raises(NotFound):
        store.get_model_version("churn", 1)  # the numbers are the source's: no renumbering
    assert store.get_registered_model("churn").updated_at == T0  # an import does not touch it
    assert [e.object_id for e in store.list_audit(action="model_version.import")] == ["churn/3"]


def test_a_taken_number_returns_the_version_there_whatever_its_content(store: SqlStore) -> None:
    store.import_registered_model("churn", "", "ann", T0, T0, "bob", {})
    first, _ = store.import_model_version(_spec("a"), 1, T0, "bob", {})
    other, created = store.import_model_version(_spec("b"), 1, T0, "bob", {})
    assert not created and other.digest == first.digest == "a" * 64


def test_the_same_files_under_another_number_are_refused(store: SqlStore) -> None:
    store.import_registered_model("churn", "", "ann", T0, T0, "bob", {})
    store.import_model_version(_spec("a"), 1, T0, "bob", {})
    with pytest.raises(InvalidInput, match="same files"):
        store.import_model_version(_spec("a"), 2, T0, "bob", {})
    assert [v.version for v in store.list_model_versions("churn")] == [1]


@pytest.mark.parametrize("bad", [0, -1, True])
def test_a_version_number_must_be_a_positive_integer(store: SqlStore, bad: int) -> None:
    store.import_registered_model("churn", "", "ann", T0, T0, "bob", {})
    with pytest.raises(InvalidInput):
        store.import_model_version(_spec("a"), bad, T0, "bob", {})


def test_a_version_of_an_unknown_model_is_refused(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.import_model_version(_spec("a"), 1, T0, "bob", {})
