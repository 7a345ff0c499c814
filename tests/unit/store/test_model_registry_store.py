"""The registry tables of ``SqlStore`` on SQLite and the real PostgreSQL: versions, lineage, aliases,
records, and the audit entries each change writes in the same transaction."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from shipyard.audit import verify_chain
from shipyard.entities import Artifact, DatasetVersionCreate, ModelVersionCreate, RunCreate
from shipyard.errors import InvalidInput, InvalidState, ModelNotFound, NotFound
from shipyard.store.sql import SqlStore
from shipyard.store.sql import schema as t

T0 = 1_767_225_600_000


def _files(tag: str) -> list[Artifact]:
    return [
        Artifact("shipyard-model.yaml", tag[0] * 64, 120),
        Artifact("model.skops", tag[-1] * 63 + "f", 4_000),
    ]


def _spec(name: str = "churn", tag: str = "ab", **kw: object) -> ModelVersionCreate:
    return ModelVersionCreate(
        name=name,
        digest=(tag * 64)[:64],
        flavor="sklearn",
        files=_files(tag),
        signature={"inputs": [{"name": "x", "type": "float64", "nullable": True}]},
        metadata={"task": "classification", "metrics": {"auc": 0.8}},
        created_by="alice",
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def store(store_uri: str) -> Iterator[SqlStore]:
    s = SqlStore(store_uri)
    yield s
    s.close()


def _dataset(store: SqlStore, name: str, digest_char: str) -> None:
    store.create_dataset_version(
        DatasetVersionCreate(name, digest_char * 64, 10, 1, [("x", "double")], 100, profile_digest="9" * 64)
    )


def test_registered_model_is_created_once_and_audited_once(store: SqlStore) -> None:
    first = store.create_registered_model("churn", "predicts churn", "alice")
    again = store.create_registered_model("churn", "other text", "bob")
    assert first.name == again.name == "churn"
    assert again.description == "predicts churn"
    creates = store.list_audit(action="model.create")
    assert [(e.actor, e.object_id) for e in creates] == [("alice", "churn")]


@pytest.mark.parametrize("bad", ["", "-churn", "a b", "x" * 300, "churn/7"])
def test_model_names_are_checked(store: SqlStore, bad: str) -> None:
    with pytest.raises(InvalidInput, match="Model name"):
        store.create_registered_model(bad)


def test_versions_are_numbered_and_the_same_content_is_one_version(store: SqlStore) -> None:
    store.create_registered_model("churn", created_by="alice")
    v1 = store.create_model_version(_spec(tag="ab"))
    v2 = store.create_model_version(_spec(tag="cd"))
    again = store.create_model_version(_spec(tag="ab"))
    assert (v1.version, v2.version, again.version) == (1, 2, 1)
    assert [f.path for f in v2.files] == ["model.skops", "shipyard-model.yaml"]
    assert v2.size == 4_120
    assert store.get_model_version("churn").version == 2
    assert store.get_model_version("churn", "v1").digest == v1.digest
    assert store.get_registered_model("churn").latest_version == 2
    assert [e.object_id for e in store.list_audit(action="model_version.create")] == ["churn/1", "churn/2"]


def test_lineage_links_the_runs_datasets_and_explicit_ones(store: SqlStore) -> None:
    _dataset(store, "flights", "1")
    _dataset(store, "flights", "2")
    store.create_run(RunCreate("run1", "exp", "r", T0, "alice"))
    store.record_dataset_use("run1", "flights", 1, "train")
    store.create_registered_model("churn")
    mv = store.create_model_version(_spec(run_id="run1", datasets=[("flights", 2, "validation")]))
    assert mv.datasets == [("flights", 1, "train"), ("flights", 2, "validation")]
    assert [v.version for v in store.models_for_run("run1")] == [1]


def test_a_version_needs_a_registered_model_and_files(store: SqlStore) -> None:
    with pytest.raises(ModelNotFound, match="shipyard models ls"):
        store.create_model_version(_spec(name="ghost"))
    store.create_registered_model("churn")
    with pytest.raises(InvalidInput, match="at least one file"):
        store.create_model_version(ModelVersionCreate("churn", "e" * 64, "sklearn", [], {}))


def test_aliases_move_with_before_and_after_in_the_audit_log(store: SqlStore) -> None:
    store.create_registered_model("churn")
    store.create_model_version(_spec(tag="ab"))
    store.create_model_version(_spec(tag="cd"))
    assert store.set_model_alias("churn", "champion", 1, "alice", "first") is None
    assert store.set_model_alias("churn", "champion", 2, "bob", "better") == 1
    assert store.get_model_version("churn", "champion").version == 2
    assert store.get_model_version("churn", "champion").aliases == ["champion"]
    assert store.get_registered_model("churn").aliases == {"champion": 2}
    moves = store.list_audit(object_type="model_alias")
    assert [(e.actor, e.before, e.after, e.reason) for e in moves] == [
        ("alice", {"version": None}, {"version": 1}, "first"),
        ("bob", {"version": 1}, {"version": 2}, "better"),
    ]
    assert store.set_model_alias("churn", "champion", None, "bob") == 2
    with pytest.raises(NotFound, match="no alias 'champion'"):
        store.get_model_version("churn", "champion")
    assert verify_chain(store.list_audit()).ok


def test_an_alias_move_conditioned_on_the_holder_fails_when_it_changed(store: SqlStore) -> None:
    store.create_registered_model("churn")
    store.create_model_version(_spec(tag="ab"))
    store.create_model_version(_spec(tag="cd"))
    store.set_model_alias("churn", "champion", 1, "alice")
    with pytest.raises(InvalidState, match="now points at version 1, not 2"):
        store.set_model_alias("churn", "champion", 2, "bob", expect=2)
    assert store.get_model_version("churn", "champion").version == 1


@pytest.mark.parametrize("alias", ["7", "latest", "with space", "-x", ""])
def test_aliases_are_checked(store: SqlStore, alias: str) -> None:
    store.create_registered_model("churn")
    store.create_model_version(_spec())
    with pytest.raises(InvalidInput, match="Alias"):
        store.set_model_alias("churn", alias, 1, "alice")


def test_an_alias_cannot_point_at_a_missing_version(store: SqlStore) -> None:
    store.create_registered_model("churn")
    store.create_model_version(_spec())
    with pytest.raises(NotFound, match="churn/9"):
        store.set_model_alias("churn", "champion", 9, "alice")


def test_records_keep_their_plots_safe_from_garbage_collection(store: SqlStore) -> None:
    store.create_registered_model("churn")
    store.create_model_version(_spec())
    plot = Artifact("roc.png", "7" * 64, 900)
    rec = store.add_model_record(
        "churn",
        1,
        "evaluation",
        "alice",
        {"metrics": {"auc": 0.9}},
        files=[plot],
        audit_action="model_version.evaluate",
    )
    assert rec.files == [plot] and rec.body == {"metrics": {"auc": 0.9}}
    store.add_model_record(
        "churn", 1, "approval", "bob", {"decision": "approve"}, audit_action="model_version.approve"
    )
    assert [r.kind for r in store.list_model_records("churn", 1)] == ["evaluation", "approval"]
    assert [r.actor for r in store.list_model_records("churn", kind="approval")] == ["bob"]
    assert store.referenced_digests(["7" * 64, "8" * 64]) == {"7" * 64}
    assert [e.action for e in store.list_audit(object_type="model_version")][-2:] == [
        "model_version.evaluate",
        "model_version.approve",
    ]
    with pytest.raises(InvalidInput, match="Record kind"):
        store.add_model_record("churn", 1, "gossip", "bob", {})


def test_dataset_blobs_and_profiles_count_as_referenced(store: SqlStore) -> None:
    """Regression: gc used to see only run artifacts and would have swept dataset Parquet files."""
    _dataset(store, "flights", "1")
    assert store.referenced_digests(["1" * 64, "9" * 64, "5" * 64]) == {"1" * 64, "9" * 64}


def test_policy_changes_are_audited_with_the_old_and_new_text(store: SqlStore) -> None:
    store.create_registered_model("churn")
    store.set_model_policy("churn", "gates: []\n", "alice", "start strict")
    model = store.set_model_policy("churn", None, "bob", "relax")
    assert model.policy_yaml is None
    entries = store.list_audit(action="model.policy")
    assert [(e.before, e.after) for e in entries] == [(None, "gates: []\n"), ("gates: []\n", None)]


def test_editing_an_alias_move_in_the_database_is_caught_at_that_entry(store: SqlStore) -> None:
    store.create_registered_model("churn")
    store.create_model_version(_spec(tag="ab"))
    store.create_model_version(_spec(tag="cd"))
    store.set_model_alias("churn", "champion", 1, "alice")
    store.set_model_alias("churn", "champion", 2, "bob")
    target = store.list_audit(object_type="model_alias")[0]
    with store._engine.begin() as conn:
        conn.execute(
            sa.update(t.audit_log).where(t.audit_log.c.seq == target.seq).values(after_json='{"version": 2}')
        )
    report = verify_chain(store.list_audit())
    assert not report.ok and report.first_bad_seq == target.seq
