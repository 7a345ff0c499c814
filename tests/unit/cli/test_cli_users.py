"""``shipyard users``, ``shipyard tokens`` on the database itself (the server's host), and the
credentials file ``shipyard login`` writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.config import load_settings, store_token
from shipyard.store.sql import SqlStore


def test_users_and_tokens_on_the_database(
    cli: object, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str
) -> None:
    monkeypatch.setenv("SHIPYARD_USER", "ops")
    run = CliRunner()

    def shipyard(*args: str, stdin: str = "") -> str:
        result = run.invoke(app, list(args), input=stdin, prog_name="shipyard")
        assert result.exit_code == 0, result.output
        return result.stdout

    shipyard(
        "users", "add", "ann@example.com", "--role", "scientist", "--password-stdin", stdin="s3cret-pass\n"
    )
    shipyard("users", "add", "bob", "--role", "approver", "--role", "viewer")
    users = {u["name"]: u for u in json.loads(shipyard("users", "ls", "--json"))}
    assert users["bob"]["roles"] == ["approver", "viewer"] and not users["ann@example.com"]["disabled"]
    made = json.loads(
        shipyard("tokens", "create", "--user", "bob", "--name", "ci", "--scope", "read", "--json")
    )
    secret, token_id = made["token"], made["record"]["id"]
    listed = shipyard("tokens", "ls", "--json")
    assert secret not in listed and json.loads(listed)[0]["scopes"] == ["read"]
    store = SqlStore(sqlite_uri)
    try:
        assert store.verify_token(secret) is not None
        assert store.check_password("ann@example.com", "s3cret-pass") is not None
        shipyard("tokens", "revoke", token_id)
        assert store.verify_token(secret) is None
        shipyard("users", "disable", "ann@example.com")
        assert store.check_password("ann@example.com", "s3cret-pass") is None
        shipyard("users", "grant", "bob", "--model", "churn", "--role", "editor")
        assert [(g.user, g.role) for g in store.list_grants("model", "churn")] == [("bob", "editor")]
        actors = {e.actor for e in store.list_audit(0, 1000, object_type="security")}
        assert actors == {"ops"}
    finally:
        store.close()
    bad = run.invoke(app, ["users", "add", "eve", "--role", "superuser"])
    assert bad.exit_code != 0 and "Unknown role" in bad.output


def test_the_credentials_file_is_private_and_feeds_the_token_setting(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "shipyard" / "credentials.toml"
    store_token("http://tracking:5000/", "sy_first", path)
    store_token("http://other:5000", "sy_other", path)
    store_token("http://tracking:5000", "sy_second", path)
    assert path.stat().st_mode & 0o777 == 0o600
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "SHIPYARD_TRACKING_URI": "http://tracking:5000"}
    assert load_settings(env=env).token == "sy_second"
    assert load_settings(env={**env, "SHIPYARD_TOKEN": "sy_env"}).token == "sy_env"
    assert load_settings(env={**env, "SHIPYARD_TRACKING_URI": "http://unknown:1"}).token == ""
    assert "sy_second" not in repr(load_settings(env=env))


def test_doctor_never_prints_a_token(cli: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_TOKEN", "sy_doctor-must-not-print-this-0123456789")
    monkeypatch.setenv("SHIPYARD_ADMIN_TOKEN", "sy_nor-this-admin-token-0123456789abcdef")
    result = CliRunner().invoke(app, ["doctor", "--json"])
    assert "must-not-print" not in result.output and "nor-this-admin" not in result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)["settings"]}
    assert rows["token"]["value"] == "***" and rows["token"]["source"] == "$SHIPYARD_TOKEN"
