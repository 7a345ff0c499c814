"""Descriptions and tags of registered models and versions (``AnnotatesModels``) in ``SqlStore`` on
SQLite and the real PostgreSQL: changed in place, each change audited in its own transaction, the
version's files and card untouched; and migration 0014 backfilling version tags from the cards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from shipyard.audit import verify_chain
from shipyard.entities import Artifact, ModelVersionCreate
from shipyard.errors import InvalidInput, ModelNotFound, NotFound
from shipyard.store import AnnotatesModels
from shipyard.store.sql import SqlStore


def _spec(tags: dict[str, str] | None = None, tag: str = "a") -> ModelVersionCreate:
    return ModelVersionCreate(
        name="churn",
        digest=tag * 64,
        flavor="sklearn",
        files=[Artifact("shipyard-model.yaml", tag * 64, 10)],
        signature={"inputs": []},
        metadata={"tags": dict(tags or {})},
        created_by="alice",
    )


@pytest.fixture
def store(store_uri: str) -> Iterator[SqlStore]:
    s = SqlStore(store_uri)
    s.create_registered_model("churn", "first text", "alice")
    yield s
    s.close()


def test_the_sql_store_annotates_models(store: SqlStore) -> None:
    assert isinstance(store, AnnotatesModels)


def test_a_versions_tags_start_as_its_cards_and_change_apart_from_it(store: SqlStore) -> None:
    v = store.create_model_version(_spec({"team": "risk", "stage": "dev"})).version
    assert store.get_model_version("churn", v).tags == {"stage": "dev", "team": "risk"}
    store.set_model_tag("churn", v, "stage", "prod", "bob")
    store.delete_model_tag("churn", v, "team", "bob")
    mv = store.get_model_version("churn", v)
    assert mv.tags == {"stage": "prod"}
    assert mv.metadata["tags"] == {"team": "risk", "stage": "dev"}, "the card stays as registered"
    assert store.list_model_versions("churn")[0].tags == {"stage": "prod"}


def test_model_tags_and_descriptions_are_audited_with_before_and_after(store: SqlStore) -> None:
    v = store.create_model_version(_spec()).version
    store.set_model_tag("churn", None, "team", "risk", "bob")
    store.set_model_tag("churn", None, "team", "fraud", "bob")
    store.set_model_description("churn", None, "second text", "carol")
    store.set_model_description("churn", v, "the first version", "carol")
    model = store.get_registered_model("churn")
    assert (model.tags, model.description) == ({"team": "fraud"}, "second text")
    assert store.get_model_version("churn", v).description == "the first version"
    entries = [(e.actor, e.action, e.object_id, e.before, e.after) for e in store.list_audit()][-4:]
    assert entries == [
        ("bob", "model.tag", "churn", {"team": None}, {"team": "risk"}),
        ("bob", "model.tag", "churn", {"team": "risk"}, {"team": "fraud"}),
        ("carol", "model.describe", "churn", {"description": "first text"}, {"description": "second text"}),
        (
            "carol",
            "model_version.describe",
            f"churn/{v}",
            {"description": ""},
            {"description": "the first version"},
        ),
    ]
    assert verify_chain(store.list_audit()).ok


def test_deleting_a_tag_that_is_not_set_does_nothing(store: SqlStore) -> None:
    before = len(store.list_audit())
    store.delete_model_tag("churn", None, "absent", "bob")
    assert len(store.list_audit()) == before


def test_a_tag_change_moves_the_models_update_time(store: SqlStore) -> None:
    before = store.get_registered_model("churn").updated_at
    store.set_model_tag("churn", None, "k", "v", "bob")
    assert store.get_registered_model("churn").updated_at >= before


@pytest.mark.parametrize(("key", "value"), [("", "v"), (" ", "v"), ("k" * 251, "v"), ("k", "v" * 100_001)])
def test_tags_keep_mlflows_limits(store: SqlStore, key: str, value: str) -> None:
    with pytest.raises(InvalidInput):
        store.set_model_tag("churn", None, key, value, "bob")
    store.set_model_tag("churn", None, "k" * 250, "v" * 100_000, "bob")  # the limits themselves are fine


def test_annotating_what_does_not_exist_names_it(store: SqlStore) -> None:
    with pytest.raises(ModelNotFound, match="'ghost'"):
        store.set_model_tag("ghost", None, "k", "v", "bob")
    with pytest.raises(NotFound, match="churn/9"):
        store.set_model_description("churn", 9, "x", "bob")


def test_migration_0014_backfills_version_tags_from_the_cards(store_uri: str) -> None:
    store = SqlStore(store_uri)
    store.create_registered_model("legacy", created_by="alice")
    spec = _spec({"team": "risk"}, tag="b")
    store.create_model_version(ModelVersionCreate(**{**spec.__dict__, "name": "legacy"}))
    engine = sa.create_engine(store_uri)
    with engine.begin() as conn:  # the store as revision 0013 left it: no tag tables (nor later ones)
        for table in ("logged_model_metrics", "logged_model_tags", "logged_model_params", "logged_models"):
            conn.execute(sa.text(f"DROP TABLE {table}"))
        conn.execute(sa.text("DROP TABLE model_version_tags"))
        conn.execute(sa.text("DROP TABLE model_tags"))
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0013'"))
    engine.dispose()
    store.close()
    again = SqlStore(store_uri)
    try:
        assert again.get_model_version("legacy", 1).tags == {"team": "risk"}
        assert again.get_registered_model("legacy").tags == {}
    finally:
        again.close()
