"""The audit log is hash-chained: any edited, deleted or reordered entry is found, and named."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

import shipyard as sy
from shipyard import Client
from shipyard.errors import InvalidInput


def _fill(client: Client, n: int = 5) -> None:
    """``n`` audited actions: a run deleted and restored in turn (each writes its own entry)."""
    with client.start_run(log_environment=False) as run:
        pass
    for i in range(n):
        (client.delete_runs if i % 2 == 0 else client.restore_runs)([run.id], reason=f"r{i}")


def _sql(client: Client, statement: str) -> None:
    engine = create_engine(client.settings.tracking_uri)
    with engine.begin() as conn:
        conn.execute(text(statement))
    engine.dispose()


def test_an_untouched_chain_verifies(client: Client) -> None:
    _fill(client, 25)
    report = client.verify_audit(page_size=7)  # several pages
    assert report.ok and report.checked == 25 and report.first_bad_seq is None
    entries = client.list_audit()
    assert [e.seq for e in entries] == list(range(1, 26))
    assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:], strict=False))


def test_an_edited_entry_is_found_at_its_row(client: Client) -> None:
    _fill(client)
    _sql(client, "UPDATE audit_log SET reason = 'nothing to see' WHERE seq = 3")
    report = client.verify_audit()
    assert not report.ok and report.first_bad_seq == 3
    assert "entry 3" in report.problems[0] and "edited" in report.problems[0]


def test_a_deleted_entry_is_found(client: Client) -> None:
    _fill(client)
    _sql(client, "DELETE FROM audit_log WHERE seq = 2")
    report = client.verify_audit()
    assert not report.ok and report.first_bad_seq == 3  # the entry after the gap no longer links


def test_reordered_entries_are_found(client: Client) -> None:
    _fill(client)
    _sql(client, "UPDATE audit_log SET seq = 100 WHERE seq = 2")
    _sql(client, "UPDATE audit_log SET seq = 2 WHERE seq = 4")
    _sql(client, "UPDATE audit_log SET seq = 4 WHERE seq = 100")
    report = client.verify_audit()
    assert not report.ok and report.first_bad_seq == 2


def test_changes_to_data_and_runs_are_audited_with_the_actor(client: Client) -> None:
    frame = pd.DataFrame({"a": [1, 2]})
    sy.log_dataset(frame, name="audited", client=client)
    sy.log_dataset(frame, name="audited", client=client)  # the same data: no new version, no entry
    sy.register_contract(sy.infer_contract(frame, name="audited"), client=client)
    with client.start_run(log_environment=False) as run:
        pass
    client.delete_runs([run.id], reason="mistake")
    actions = [(e.action, e.object_id, e.actor) for e in client.list_audit()]
    user = client.settings.user
    assert actions == [
        ("dataset.version.create", "audited@v1", user),
        ("contract.register", "audited@v1", user),
        ("run.delete", run.id, user),
    ]
    assert client.list_audit(action="run.delete")[0].reason == "mistake"
    assert client.verify_audit().ok


def test_no_public_api_appends_a_free_form_entry(client: Client) -> None:
    assert not hasattr(client, "audit")
    assert not hasattr(client.store, "append_audit")


def test_an_entry_without_an_object_is_refused(client: Client) -> None:
    from sqlalchemy import create_engine as engine_for

    from shipyard.store.sql import audit

    engine = engine_for(client.settings.tracking_uri)
    with engine.begin() as conn, pytest.raises(InvalidInput, match="object"):
        audit.append(conn, "ann", "alias.move", "model", "", None, None, "")
    engine.dispose()
