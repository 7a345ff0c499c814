"""Governance decides from the registry's own records, never from audit entries or a name in a
request: on SQLite and the real PostgreSQL.

The attack rollback used to fall for: append an ``alias.set`` entry for a version that never
passed the gates (correctly chained, as anyone who could append entries could), then roll back
to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from shipyard.config import load_settings
from shipyard.entities import Artifact, ModelVersionCreate
from shipyard.errors import InvalidInput, PermissionDenied
from shipyard.registry import governance
from shipyard.store.sql import audit
from shipyard.tracking import Client


@pytest.fixture
def client(store_uri: str, tmp_path: Path) -> Iterator[Client]:
    (tmp_path / "roles.yaml").write_text("approver: [bob]\nadmin: [dave]\n")
    settings = load_settings(
        tracking_uri=store_uri,
        artifact_uri=str(tmp_path / "artifacts"),
        roles_file=str(tmp_path / "roles.yaml"),
        user="alice",
    )
    c = Client(settings=settings)
    c.store.create_registered_model("churn", created_by="alice")
    for tag in "abc":
        spec = ModelVersionCreate(
            name="churn",
            digest=tag * 64,
            flavor="sklearn",
            files=[Artifact("shipyard-model.yaml", tag * 64, 1)],
            signature={"inputs": []},
            created_by="alice",
        )
        c.store.create_model_version(spec)
    yield c
    c.close()


def test_a_forged_alias_entry_is_no_rollback_target(client: Client) -> None:
    assert governance.promote_model("churn", 1, client=client).promoted
    assert governance.promote_model("churn", 2, client=client).promoted
    engine = sa.create_engine(client.settings.tracking_uri)
    with engine.begin() as conn:  # a well-formed, correctly chained entry for a never-promoted version
        audit.append(
            conn, "mallory", "alias.set", "model_alias", "churn@champion", {"version": 2}, {"version": 3}, ""
        )
    engine.dispose()
    with pytest.raises(InvalidInput, match="never held alias 'champion'"):
        governance.rollback_model("churn", to=3, client=client)
    assert governance.rollback_model("churn", client=client) == 1, "the default is the holder before now"
    assert client.store.get_model_version("churn", "champion").version == 1
    moves = client.store.list_alias_history("churn", "champion")
    assert [(m.previous, m.version, m.actor) for m in moves] == [
        (None, 1, "alice"),
        (1, 2, "alice"),
        (2, 1, "alice"),
    ]
    entries = {e.seq: e for e in client.list_audit(object_type="model_alias")}
    assert all(entries[m.audit_seq].after == {"version": m.version} for m in moves)


def test_a_version_replaced_by_a_promotion_is_a_rollback_target(client: Client) -> None:
    """``previous`` counts: the holder a recorded move replaced held the alias (e.g. before 0008)."""
    client.store.set_model_alias("churn", "champion", 3, "alice", "set before history began")
    engine = sa.create_engine(client.settings.tracking_uri)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM model_alias_history"))  # as after the 0008 upgrade
    engine.dispose()
    assert governance.promote_model("churn", 1, client=client).promoted
    assert governance.rollback_model("churn", client=client) == 3


def test_changing_or_removing_a_policy_needs_the_admin_role(client: Client) -> None:
    dave = client.with_settings(user="dave")
    with pytest.raises(PermissionDenied, match="does not hold the role 'admin'"):
        governance.set_promotion_policy("churn", {"approvals": {"required": 1}}, client=client)
    governance.set_promotion_policy("churn", {"approvals": {"required": 1}}, client=dave)
    with pytest.raises(PermissionDenied, match="remove the promotion policy"):
        governance.set_promotion_policy("churn", None, client=client.with_settings(user="bob"))
    assert governance.get_promotion_policy("churn", client=client) is not None
    (entry,) = client.list_audit(action="model.policy")
    assert entry.actor == "dave"


def test_a_trusted_load_is_audited_by_the_store(client: Client) -> None:
    client.store.record_trusted_load("churn", 2, "alice")
    (entry,) = client.list_audit(action="model.load_trusted")
    assert (entry.actor, entry.object_id, entry.after) == ("alice", "churn/2", {"digest": "b" * 64})
