"""``shipyard audit anchor`` and ``shipyard audit verify --anchor``: pin the head, catch truncation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from shipyard import Client
from shipyard.cli import app


def test_anchor_pins_the_head_and_verify_checks_against_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str
) -> None:
    key = tmp_path / "audit.key"
    key.write_text("a-long-enough-secret-for-hmac\n")
    for name, value in {
        "SHIPYARD_TRACKING_URI": sqlite_uri,
        "SHIPYARD_ARTIFACT_URI": str(tmp_path / "artifacts"),
        "SHIPYARD_AUDIT_KEY_FILE": str(key),
        "NO_COLOR": "1",
    }.items():
        monkeypatch.setenv(name, value)
    client = Client()  # the same settings as the CLI: its checkpoints are keyed
    with client.start_run(log_environment=False) as run:
        pass
    client.delete_runs([run.id], reason="one")
    client.restore_runs([run.id], reason="two")
    client.close()
    runner = CliRunner()
    pinned = tmp_path / "pinned.jsonl"
    anchored = runner.invoke(app, ["audit", "anchor", "--out", str(pinned), "--json"], prog_name="shipyard")
    assert anchored.exit_code == 0, anchored.output
    head = json.loads(anchored.output)
    assert head["seq"] == 2 and head["count"] == 2 and len(head["mac"]) == 64
    assert json.loads(pinned.read_text().splitlines()[-1]) == head
    ok = runner.invoke(app, ["audit", "verify", "--anchor", str(pinned)], prog_name="shipyard")
    assert ok.exit_code == 0 and "matching the checkpoint at entry 2" in ok.output
    engine = sa.create_engine(sqlite_uri)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_log WHERE seq = 2"))
    engine.dispose()
    bad = runner.invoke(app, ["audit", "verify", "--anchor", str(pinned), "--json"], prog_name="shipyard")
    assert bad.exit_code == 1
    report = json.loads(bad.output)
    assert not report["ok"] and any("last entries were deleted" in p for p in report["problems"])
