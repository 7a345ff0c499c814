"""Experiments renamed, deleted, restored and tagged; runs renamed and untagged (``EditsExperiments``,
``EditsRuns``): what MLflow's API on the server needs, on both SQL backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shipyard.entities import RunCreate
from shipyard.errors import AlreadyExists, InvalidState, NotFound
from shipyard.store import EditsExperiments, EditsRuns
from shipyard.store.sql import SqlStore


@pytest.fixture
def store(store_uri: str) -> Iterator[SqlStore]:
    s = SqlStore(store_uri)
    yield s
    s.close()


def _run(store: SqlStore, run_id: str, experiment: str = "churn") -> None:
    store.create_run(RunCreate(run_id, experiment, f"run-{run_id}", 1, "ann", tags={"team": "risk"}))


def test_the_sql_store_has_both_capabilities(store: SqlStore) -> None:
    assert isinstance(store, EditsExperiments) and isinstance(store, EditsRuns)


def test_deleting_an_experiment_deletes_its_runs_and_restoring_brings_both_back(store: SqlStore) -> None:
    _run(store, "r1")
    _run(store, "r2")
    _run(store, "r3", experiment="other")
    exp = store.get_experiment_by_name("churn")
    store.delete_runs(["r2"], "bob")

    gone = store.delete_experiment(exp.id, "ann", "superseded")
    assert gone.deleted and gone.updated_at is not None
    assert [e.name for e in store.list_experiments()] == ["other"]
    assert [e.name for e in store.list_deleted_experiments()] == ["churn"]
    assert store.get_experiment_by_name("churn").deleted  # still found by name and id
    assert store.get_run("r1").deleted and not store.get_run("r3").deleted
    assert [r.id for r in store.search_runs().runs] == ["r3"]

    back = store.restore_experiment(exp.id, "ann")
    assert not back.deleted
    assert {r.id for r in store.search_runs().runs} == {"r1", "r2", "r3"}  # MLflow restores every run
    actions = [(a.action, a.object_id, a.actor) for a in store.list_audit(object_type="experiment")]
    assert actions == [("experiment.delete", str(exp.id), "ann"), ("experiment.restore", str(exp.id), "ann")]
    run_entries = [(a.action, a.object_id) for a in store.list_audit(object_type="run")]
    assert ("run.delete", "r1") in run_entries and ("run.restore", "r2") in run_entries


def test_a_deleted_experiment_takes_no_new_runs_and_no_edits(store: SqlStore) -> None:
    _run(store, "r1")
    exp = store.get_experiment_by_name("churn")
    store.delete_experiment(exp.id, "ann")
    with pytest.raises(InvalidState, match="is deleted"):
        _run(store, "r2")
    with pytest.raises(InvalidState):
        store.update_experiment(exp.id, "ann", name="x")
    with pytest.raises(InvalidState):
        store.set_experiment_tag(exp.id, "k", "v")
    with pytest.raises(InvalidState, match="already deleted"):
        store.delete_experiment(exp.id, "ann")
    with pytest.raises(AlreadyExists):
        store.create_experiment("churn")  # the name stays taken, as in MLflow


def test_a_renamed_experiment_keeps_its_runs_and_frees_its_old_name(store: SqlStore) -> None:
    _run(store, "r1")
    exp = store.get_experiment_by_name("churn")
    renamed = store.update_experiment(exp.id, "ann", name="churn-v2", description="the churn model")
    assert (renamed.name, renamed.description) == ("churn-v2", "the churn model")
    assert store.get_run("r1").experiment_name == "churn-v2"
    _run(store, "r2")  # the old name is a new experiment now, not the renamed one
    assert store.get_run("r2").experiment_id != exp.id
    with pytest.raises(AlreadyExists):
        store.update_experiment(exp.id, "ann", name="churn")
    audit = store.list_audit(action="experiment.update")
    assert [(a.before, a.after) for a in audit] == [
        ({"name": "churn", "description": ""}, {"name": "churn-v2", "description": "the churn model"})
    ]


def test_experiment_tags_are_set_overwritten_read_and_deleted(store: SqlStore) -> None:
    a = store.create_experiment("a")
    b = store.create_experiment("b")
    store.set_experiment_tag(a.id, "team", "risk")
    store.set_experiment_tag(a.id, "team", "ops")
    store.set_experiment_tag(b.id, "owner", "ann")
    assert store.experiment_tags([a.id, b.id, 999]) == {a.id: {"team": "ops"}, b.id: {"owner": "ann"}}
    store.delete_experiment_tag(a.id, "team")
    assert store.experiment_tags([a.id]) == {}
    with pytest.raises(NotFound, match="no tag 'team'"):
        store.delete_experiment_tag(a.id, "team")


def test_a_run_is_renamed_and_loses_a_tag_but_not_once_deleted(store: SqlStore) -> None:
    _run(store, "r1")
    store.rename_run("r1", "baseline")
    store.delete_run_tag("r1", "team")
    run = store.get_run("r1")
    assert run.name == "baseline" and "team" not in run.tags
    with pytest.raises(NotFound):
        store.delete_run_tag("r1", "team")
    store.delete_runs(["r1"], "ann")
    with pytest.raises(InvalidState):
        store.rename_run("r1", "x")
