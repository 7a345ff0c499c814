"""Tampering that a hash chain alone cannot see, caught by checkpoints kept outside the database
and by checking the registry against the chain — on SQLite and the real PostgreSQL.

Each attack is what someone with write access to the database (but not to the audit key) can do:
delete the last entries, delete every entry, edit an entry and recompute every later hash, and
edit the registry's tables (aliases, alias history, policies) with SQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from shipyard import Client
from shipyard.audit import Checkpoint, CheckpointLog, entry_hash
from shipyard.config import load_settings
from shipyard.entities import Artifact, AuditEntry, ModelVersionCreate
from shipyard.registry import governance
from shipyard.store.sql.checkpoints import checkpoint_location

KEY = b"0123456789abcdef0123456789abcdef"


def _spec(tag: str) -> ModelVersionCreate:
    return ModelVersionCreate(
        name="churn",
        digest=tag * 64,
        flavor="sklearn",
        files=[Artifact("shipyard-model.yaml", tag * 64, 10)],
        signature={"inputs": []},
        created_by="alice",
    )


@pytest.fixture
def client(store_uri: str, tmp_path: Path) -> Iterator[Client]:
    """A store with history: a model, two promotions, a policy, and run deletions at the end."""
    (tmp_path / "audit.key").write_bytes(KEY)
    (tmp_path / "roles.yaml").write_text("admin: [dave]\n")
    settings = load_settings(
        tracking_uri=store_uri,
        artifact_uri=str(tmp_path / "artifacts"),
        audit_key_file=str(tmp_path / "audit.key"),
        roles_file=str(tmp_path / "roles.yaml"),
        user="alice",
    )
    c = Client(settings=settings)
    c.store.create_registered_model("churn", created_by="alice")
    v1 = c.store.create_model_version(_spec("a")).version
    v2 = c.store.create_model_version(_spec("b")).version
    assert governance.promote_model("churn", v1, client=c).promoted
    assert governance.promote_model("churn", v2, client=c).promoted
    governance.set_promotion_policy(
        "churn", {"approvals": {"required": 0}}, client=c.with_settings(user="dave")
    )
    with c.start_run(log_environment=False) as run:
        pass
    for i in range(4):
        (c.delete_runs if i % 2 == 0 else c.restore_runs)([run.id], reason=f"r{i}")
    yield c
    c.close()


def _sql(client: Client, *statements: str) -> None:
    engine = sa.create_engine(client.settings.tracking_uri)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
    engine.dispose()


def _rewrite_from(client: Client, seq: int, reason: str) -> None:
    """Edit entry ``seq`` and recompute its hash and every later hash and link: the chain links."""
    engine = sa.create_engine(client.settings.tracking_uri)
    with engine.begin() as conn:
        rows = conn.execute(sa.text("SELECT * FROM audit_log ORDER BY seq")).mappings().all()
        prev = None
        for r in rows:
            if r["seq"] < seq:
                prev = r["hash"]
                continue
            entry = AuditEntry(
                r["seq"],
                r["ts"],
                r["actor"],
                r["action"],
                r["object_type"],
                r["object_id"],
                json.loads(r["before_json"]),
                json.loads(r["after_json"]),
                reason if r["seq"] == seq else r["reason"],
                prev or r["prev_hash"],
            )
            digest = entry_hash(entry, entry.prev_hash)
            conn.execute(
                sa.text("UPDATE audit_log SET reason = :r, prev_hash = :p, hash = :h WHERE seq = :s"),
                {"r": entry.reason, "p": entry.prev_hash, "h": digest, "s": r["seq"]},
            )
            prev = digest
    engine.dispose()


def test_an_untampered_store_verifies_against_its_keyed_checkpoints(client: Client) -> None:
    report = client.verify_audit(page_size=3)
    assert report.ok, report.problems
    last = client.list_audit()[-1]
    assert report.anchored_seq == last.seq and report.checkpoints >= 1
    assert report.notes == []
    checkpoints = client.store.list_audit_checkpoints()
    assert checkpoints[-1].seq == last.seq and all(cp.authentic(KEY) for cp in checkpoints)


def test_deleting_the_last_entries_is_detected(client: Client) -> None:
    last = client.list_audit()[-1].seq
    _sql(client, f"DELETE FROM audit_log WHERE seq > {last - 2}")
    report = client.verify_audit()
    assert not report.ok
    assert any("the last entries were deleted" in p for p in report.problems), report.problems


def test_deleting_every_entry_is_detected(client: Client) -> None:
    _sql(client, "DELETE FROM audit_log")
    report = client.verify_audit()
    assert not report.ok and report.checked == 0
    assert any("entries were deleted" in p for p in report.problems), report.problems


def test_editing_an_entry_and_recomputing_every_later_hash_is_detected(client: Client) -> None:
    _rewrite_from(client, 2, "nothing to see")
    from shipyard.audit import verify_chain

    assert verify_chain(client.list_audit()).ok, "the rewritten chain links: only checkpoints see it"
    report = client.verify_audit()
    assert (
        not report.ok
        and report.first_bad_seq is not None
        and report.first_bad_seq <= client.list_audit()[-1].seq
    )
    assert any("rewritten" in p for p in report.problems), report.problems


def test_an_alias_moved_with_sql_is_detected(client: Client) -> None:
    _sql(client, "UPDATE model_aliases SET version = 1 WHERE alias = 'champion'")
    report = client.verify_audit()
    assert not report.ok
    assert any("churn@champion points at version 1 but the audit chain says 2" in p for p in report.problems)


def test_an_alias_history_row_forged_with_sql_is_detected(client: Client) -> None:
    """A forged history row would make a rollback target of a version that never passed the gates."""
    v3 = client.store.create_model_version(_spec("c")).version
    _sql(
        client,
        "INSERT INTO model_alias_history (model_id, alias, version, previous, actor, reason, created_at,"
        f" audit_seq) SELECT id, 'champion', {v3}, NULL, 'mallory', '', 0, 1 FROM registered_models",
    )
    report = client.verify_audit()
    assert not report.ok
    assert any("alias history of churn@champion" in p for p in report.problems), report.problems


def test_a_policy_removed_with_sql_is_detected(client: Client) -> None:
    _sql(client, "UPDATE registered_models SET policy_yaml = NULL")
    report = client.verify_audit()
    assert not report.ok
    assert any("promotion policy of model churn" in p for p in report.problems), report.problems


def test_a_forged_checkpoint_is_refused(client: Client) -> None:
    head = client.audit_head()
    bogus = Checkpoint(head.seq + 5, "f" * 64, head.count + 5, head.time).signed(b"not-the-key-at-all!!")
    CheckpointLog(checkpoint_location(client.settings)).write(bogus)
    report = client.verify_audit()
    assert not report.ok
    assert any("does not match the audit key" in p for p in report.problems), report.problems


def test_without_checkpoints_truncation_is_a_stated_limit_and_a_pinned_head_still_catches_it(
    client: Client, tmp_path: Path
) -> None:
    pinned = tmp_path / "pinned.json"
    pinned.write_text(json.dumps(client.audit_head().to_dict()))  # e.g. saved from GET /api/v1/audit/head
    location = Path(checkpoint_location(client.settings))
    for f in location.glob("*.json"):
        f.unlink()  # the attacker can also write the checkpoint folder
    last = client.list_audit()[-1].seq
    _sql(client, f"DELETE FROM audit_log WHERE seq > {last - 2}")
    alone = client.verify_audit()
    assert alone.ok and any("cannot be detected" in n for n in alone.notes)
    report = client.verify_audit(anchor=pinned)
    assert not report.ok and any("the last entries were deleted" in p for p in report.problems)


def test_anchor_writes_a_keyed_checkpoint_of_the_head(client: Client) -> None:
    checkpoint = client.audit_checkpoint()
    assert checkpoint.authentic(KEY)
    assert (checkpoint.seq, checkpoint.count) == (client.list_audit()[-1].seq, len(client.list_audit()))
