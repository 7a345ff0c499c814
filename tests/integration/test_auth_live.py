"""A real ``shipyard server`` with two workers on PostgreSQL and auth on: revocation and expiry take
effect at once in every worker, the SDK acts as its token's user, and no token reaches the log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from server_process import LiveServer

from polling_helpers import wait_until
from shipyard import Client
from shipyard.config import load_settings

ADMIN = "sy_" + "integration-admin-token-0123456789abcdef"
API = "/api/v1"
FRESH_REQUESTS = 8  # each on a new connection: the kernel spreads them over both workers


def _fresh_statuses(server: LiveServer, token: str) -> list[int]:
    """Status of GET /experiments on a new connection each time (no keep-alive: any worker may answer)."""
    out = []
    for _ in range(FRESH_REQUESTS):
        with httpx.Client(base_url=server.url, timeout=10) as http:
            out.append(
                http.get(f"{API}/experiments", headers={"Authorization": f"Bearer {token}"}).status_code
            )
    return out


def _refused_everywhere(statuses: list[int]) -> None:
    """No worker accepts the token: 401, or 429 once a worker has counted 10 failures from this client."""
    assert statuses[0] == 401 and set(statuses) <= {401, 429}, statuses


def test_revocation_and_expiry_apply_in_every_worker(
    make_server: Callable[..., LiveServer], pg_uri: str, tmp_path: Path
) -> None:
    server = make_server(
        tracking_uri=pg_uri, workers=2, env={"SHIPYARD_AUTH": "true", "SHIPYARD_ADMIN_TOKEN": ADMIN}
    )
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get(f"{API}/experiments").status_code == 401
        made = http.post(f"{API}/auth/users", json={"name": "sam", "roles": ["scientist"]}, headers=admin)
        assert made.status_code == 201, made.text
        answer = http.post(f"{API}/auth/tokens", json={"user": "sam", "name": "laptop"}, headers=admin).json()
        token, token_id = answer["token"], answer["record"]["id"]
        brief = http.post(
            f"{API}/auth/tokens",
            json={"user": "sam", "name": "brief", "expires_in_days": 3 / 86_400},
            headers=admin,
        ).json()["token"]

        settings = load_settings(
            tracking_uri=server.url,
            token=token,
            user="not-sam",
            home=str(tmp_path / "home"),
            system_metrics=False,
        )
        client = Client(settings=settings)
        try:
            with client.start_run(experiment="team") as run:
                run.log_param("lr", "0.1")
                run.log_metric("loss", 0.25)
            stored = client.get_run(run.id)
        finally:
            client.close()
        assert stored.user == "sam" and stored.params == {"lr": "0.1"}

        assert _fresh_statuses(server, token) == [200] * FRESH_REQUESTS
        # expiry first (failed checks count towards the per-client limit, which would then answer 429)
        wait_until(
            lambda: (
                http.get(f"{API}/experiments", headers={"Authorization": f"Bearer {brief}"}).status_code
                == 401
            ),
            "the 3-second token to expire",
            timeout=30,
        )
        _refused_everywhere(_fresh_statuses(server, brief))
        revoked = http.post(f"{API}/auth/tokens/{token_id}/revoke", json={}, headers=admin)
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        _refused_everywhere(_fresh_statuses(server, token))
    log = server.log_path.read_text()
    assert token not in log and brief not in log and ADMIN not in log


def test_login_keeps_a_private_token_that_clients_then_send(
    make_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from shipyard.cli.main import app
    from shipyard.store.rest import RestStore

    server = make_server(env={"SHIPYARD_AUTH": "true", "SHIPYARD_ADMIN_TOKEN": ADMIN})
    body = {"name": "vic", "roles": ["viewer"], "password": "open sesame 42"}
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert (
            http.post(
                f"{API}/auth/users", json=body, headers={"Authorization": f"Bearer {ADMIN}"}
            ).status_code
            == 201
        )
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "SHIPYARD_HOME": str(tmp_path / "home")}
    wrong = CliRunner().invoke(
        app, ["login", "--server", server.url, "--user", "vic"], input="nope\n", env=env
    )
    assert wrong.exit_code != 0
    result = CliRunner().invoke(
        app, ["login", "--server", server.url, "--user", "vic"], input="open sesame 42\n", env=env
    )
    assert result.exit_code == 0, result.output
    assert "open sesame" not in result.output
    credentials = tmp_path / "cfg" / "shipyard" / "credentials.toml"
    assert credentials.stat().st_mode & 0o777 == 0o600
    settings = load_settings(env={**env, "SHIPYARD_TRACKING_URI": server.url})
    assert settings.token.startswith("sy_") and settings.token in credentials.read_text()
    store = RestStore(server.url, settings)
    try:
        assert store.whoami()["name"] == "vic"
        assert isinstance(store.list_experiments(), list)
    finally:
        store.close()
