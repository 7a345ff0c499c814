"""``experiments ls``, ``gc``, ``doctor``, ``server`` and ``sync``."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from shipyard import Client

Invoke = Callable[..., Result]


def test_experiments_ls_table_and_json(cli: Invoke, seeded: Any) -> None:
    table = cli("experiments", "ls")
    assert table.exit_code == 0, table.output
    assert "churn" in table.stdout and "other" in table.stdout
    data = json.loads(cli("experiments", "ls", "--json").stdout)
    assert [e["name"] for e in data] == ["churn", "other"]


def test_experiments_ls_on_an_empty_store(cli: Invoke) -> None:
    result = cli("experiments", "ls", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_gc_purges_deleted_runs(cli: Invoke, seeded: Any) -> None:
    assert cli("runs", "delete", seeded.forest).exit_code == 0
    result = cli("gc", "--grace-seconds", "0", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["runs_purged"] == 1
    assert report["blobs_deleted"] == 2  # the forest's two artifacts, referenced by nothing else
    table = cli("gc")
    assert table.exit_code == 0 and "runs purged" in table.stdout


def test_gc_rejects_a_negative_grace_period(cli: Invoke) -> None:
    assert cli("gc", "--grace-seconds", "-1").exit_code == 2


def test_doctor_reports_stores_and_setting_sources(cli: Invoke, seeded: Any, sqlite_uri: str) -> None:
    data = json.loads(cli("doctor", "--json").stdout)
    assert data["ok"] is True
    tracking = {c["name"]: c for c in data["tracking"]}
    assert tracking["URI"]["detail"] == sqlite_uri
    assert tracking["backend"]["detail"] == "SQLite"
    assert tracking["schema version"]["detail"]
    assert tracking["reachable"]["ok"] is True
    artifacts = {c["name"]: c for c in data["artifacts"]}
    assert artifacts["writable"]["ok"] is True
    sources = {s["name"]: s["source"] for s in data["settings"]}
    assert sources["tracking_uri"] == "$SHIPYARD_TRACKING_URI"
    assert sources["buffer_size"] == "default"


def test_doctor_says_a_command_line_option_wins(cli: Invoke, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/fresh.db"
    result = cli("--tracking-uri", uri, "doctor")
    assert result.exit_code == 0, result.output
    assert "argument" in result.stdout and "not created yet" in result.stdout
    assert not (tmp_path / "fresh.db").exists()  # doctor has no side effects


def test_doctor_fails_when_the_store_is_unusable(cli: Invoke, tmp_path: Path) -> None:
    (tmp_path / "garbage.db").write_bytes(b"this is not a database" * 100)
    result = cli("--tracking-uri", f"sqlite:///{tmp_path}/garbage.db", "doctor")
    assert result.exit_code == 1
    assert "✗" in result.stdout and "Traceback" not in result.output


def _fake_module(monkeypatch: pytest.MonkeyPatch, name: str, **attrs: Any) -> None:
    module = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, name, module)


def test_server_passes_its_options_to_serve(
    cli: Invoke, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str
) -> None:
    calls: list[dict[str, Any]] = []
    _fake_module(monkeypatch, "shipyard.server", serve=lambda **kw: calls.append(kw))
    result = cli("server", "--port", "8123", "--workers", "3", "--artifacts", "memory://x")
    assert result.exit_code == 0, result.output
    assert calls == [
        {
            "host": "127.0.0.1",
            "port": 8123,
            "workers": 3,
            "tracking_uri": sqlite_uri,
            "artifact_uri": "memory://x",
            "log_level": "info",
            "allow_remote_admin": None,  # the setting decides (off unless SHIPYARD_ALLOW_REMOTE_ADMIN)
            "auth": None,  # serve decides: on for a non-loopback host
            "insecure": None,
        }
    ]
    assert "http://127.0.0.1:8123" in result.stderr
    assert cli("server", "--allow-remote-admin").exit_code == 0
    assert calls[-1]["allow_remote_admin"] is True
    assert cli("server", "--auth").exit_code == 0 and calls[-1]["auth"] is True
    assert cli("server", "--host", "0.0.0.0", "--insecure").exit_code == 0 and calls[-1]["insecure"] is True


def test_sync_with_nothing_spooled_succeeds(cli: Invoke) -> None:
    result = cli("sync", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "files": 0,
        "operations": 0,
        "failed": 0,
        "pending": 0,
        "problems": [],
    }


def test_sync_with_pending_spools_exits_1(cli: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    from shipyard.store.spool import SyncReport

    seen: list[Any] = []

    def replay(server_uri: str | None, spool_dir: Path, **kwargs: Any) -> SyncReport:
        seen.append(server_uri)
        return SyncReport(files=1, operations=5, failed=0, pending=2)

    monkeypatch.setattr("shipyard.store.spool.replay_spools", replay)
    result = cli("sync", "--server", "http://tracking:5000")
    assert result.exit_code == 1
    assert seen == ["http://tracking:5000"]
    assert "Replayed 5 operation(s)" in result.stdout
    assert result.stderr.startswith("error: 2 spool file(s) not sent yet")


def test_cli_reads_what_the_sdk_wrote_while_it_is_still_open(cli: Invoke, client: Client) -> None:
    with client.start_run("live", name="still-running", system_metrics=False, log_environment=False) as run:
        run.log_metric("x", 1.0)
        run.flush()
        data = json.loads(cli("runs", "show", run.id, "--json").stdout)
    assert data["status"] == "running" and data["metrics"] == {"x": 1.0}
