"""deploy/compose.yaml, its .env.example, Dockerfile and README hold together and match what Shipyard reads.

Docker is not available in CI, so the compose file is checked as data: its services, healthchecks and
start order, every ``SHIPYARD_*`` variable a real setting (config.SETTINGS), every ``${VAR}`` it uses
documented in .env.example, and the services agreeing on the database, bucket and credentials.
``tests/integration/test_team_deployment.py`` runs the same shape with real processes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from shipyard.config import SETTINGS, load_settings
from shipyard.registry.policy import load_roles

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
_VAR = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}")
LONG_RUNNING = {"postgres", "minio", "shipyard", "model-server"}


def env_example() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: {line!r} is not KEY=value"
            values[key.strip()] = value.strip()
    return values


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """What Compose makes of ``value`` with ``env`` (``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if env.get(name):
            return env[name]
        if op == ":?":
            raise AssertionError(f"${{{name}}} is required: {arg}")
        return arg or ""

    return _VAR.sub(one, value.replace("$$", "\0")).replace("\0", "$")


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    text = (DEPLOY / "compose.yaml").read_text()
    data = yaml.safe_load(text)  # merge keys (<<) resolved: each service sees its full environment
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    resolved = interpolate(raw, env_example())
    assert isinstance(resolved, dict)
    return resolved


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def test_the_services_of_a_team_deployment(compose: dict[str, Any]) -> None:
    assert set(services(compose)) == LONG_RUNNING | {"create-bucket"}
    for name in LONG_RUNNING:
        service = services(compose)[name]
        assert service["restart"] == "unless-stopped", name
        check = service["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1, name
        assert check["retries"] >= 3, name


def test_the_server_runs_two_or_more_workers_and_the_model_server_follows_the_champion(
    compose: dict[str, Any],
) -> None:
    server = services(compose)["shipyard"]["command"]
    assert server[0] == "server" and int(server[server.index("--workers") + 1]) >= 2
    assert server[server.index("--host") + 1] == "0.0.0.0"  # inside its container; published on loopback
    serve = services(compose)["model-server"]["command"]
    assert serve[0] == "serve" and re.fullmatch(r"models:/[\w.-]+@champion", serve[1]), serve
    assert "/health" in " ".join(services(compose)["shipyard"]["healthcheck"]["test"])
    assert "/ready" in " ".join(services(compose)["model-server"]["healthcheck"]["test"])


def test_start_order_waits_for_health_and_the_bucket(compose: dict[str, Any]) -> None:
    s = services(compose)
    assert s["shipyard"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "create-bucket": {"condition": "service_completed_successfully"},
    }
    assert s["create-bucket"]["depends_on"] == {"minio": {"condition": "service_healthy"}}
    assert s["model-server"]["depends_on"]["shipyard"] == {"condition": "service_healthy"}


def test_every_shipyard_variable_is_a_setting_and_loads(compose: dict[str, Any]) -> None:
    known = {s.env_var for s in SETTINGS}
    for name, service in services(compose).items():
        env = {k: str(v) for k, v in service.get("environment", {}).items()}
        unknown = {k for k in env if k.startswith("SHIPYARD_")} - known
        assert not unknown, f"{name}: {sorted(unknown)} are not Shipyard settings (src/shipyard/config.py)"
        if name in ("shipyard", "model-server"):
            settings = load_settings(config_file="/nonexistent/shipyard.toml", env=env)
            assert settings.sources["tracking_uri"] == "$SHIPYARD_TRACKING_URI"
            assert settings.artifact_uri.startswith("s3://")
            assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"


def test_services_agree_on_database_bucket_and_credentials(compose: dict[str, Any]) -> None:
    s = services(compose)
    pg = s["postgres"]["environment"]
    for name in ("shipyard", "model-server", "create-bucket"):
        env = s[name]["environment"]
        url = make_url(env["SHIPYARD_TRACKING_URI"])
        assert (url.drivername, url.host, url.port) == ("postgresql+psycopg", "postgres", 5432)
        assert (url.username, url.password, url.database) == (
            pg["POSTGRES_USER"],
            pg["POSTGRES_PASSWORD"],
            pg["POSTGRES_DB"],
        )
        assert env["AWS_ACCESS_KEY_ID"] == s["minio"]["environment"]["MINIO_ROOT_USER"]
        assert env["AWS_SECRET_ACCESS_KEY"] == s["minio"]["environment"]["MINIO_ROOT_PASSWORD"]
        assert (
            env["SHIPYARD_ARTIFACT_URI"].removeprefix("s3://").split("/")[0]
            == (s["create-bucket"]["environment"]["BUCKET"])
        )
    server_only = {"SHIPYARD_ADMIN_TOKEN"}  # the first admin is bootstrapped by the tracking server
    server_env = {k: v for k, v in s["shipyard"]["environment"].items() if k not in server_only}
    same = server_env == s["model-server"]["environment"]
    assert same, "the model server reads the same stores as the server"


def test_every_variable_is_documented_and_secrets_are_required(raw: dict[str, Any]) -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    used = {m["name"] for m in _VAR.finditer(text)}
    documented = set(env_example())
    assert used == documented, (
        f"used but not in .env.example: {used - documented}; unused: {documented - used}"
    )
    required = {m["name"] for m in _VAR.finditer(text) if m["op"] == ":?"}
    assert {"POSTGRES_PASSWORD", "S3_SECRET_KEY"} <= required  # no default password ever
    with pytest.raises(AssertionError, match="POSTGRES_PASSWORD"):
        interpolate(raw, {k: v for k, v in env_example().items() if k != "POSTGRES_PASSWORD"})


def test_ports_are_published_on_loopback_by_default(raw: dict[str, Any]) -> None:
    secrets_only = {"POSTGRES_PASSWORD": "x", "S3_SECRET_KEY": "y"}  # nothing else set: the defaults
    published = 0
    for name, service in raw["services"].items():
        for port in service.get("ports", []):
            host = interpolate(port, secrets_only).split(":")[0]
            assert host == "127.0.0.1", f"{name} publishes {port} beyond loopback by default"
            published += 1
    assert published == 2  # the server and the model server; never PostgreSQL or MinIO


def test_volumes_are_declared_and_hold_the_data(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    used = set()
    for service in services(compose).values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                used.add(source)
    assert used == declared
    mounts = {name: service.get("volumes", []) for name, service in services(compose).items()}
    assert "postgres-data:/var/lib/postgresql/data" in mounts["postgres"]
    assert "minio-data:/data" in mounts["minio"]


def test_the_image_installs_shipyard_with_postgres_and_s3_from_the_checkout(compose: dict[str, Any]) -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for name in ("shipyard", "model-server", "create-bucket"):
        build = services(compose)[name]["build"]
        assert (build["context"], build["dockerfile"]) == ("..", "deploy/Dockerfile")
    assert re.search(r"ARG SHIPYARD_EXTRAS=\S*postgres", dockerfile)
    assert "s3fs" in dockerfile and 'ENTRYPOINT ["shipyard"]' in dockerfile
    assert re.search(r"^USER 10001$", dockerfile, re.M)  # not root
    instructions = "\n".join(line for line in dockerfile.splitlines() if not line.lstrip().startswith("#"))
    assert not re.search(r"\b(node|nodejs|npm|yarn)\b", instructions, re.I)
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    for needed in ("!pyproject.toml", "!README.md", "!src/"):
        assert needed in ignore


def test_the_roles_file_loads_and_the_readme_covers_operations(tmp_path: Path) -> None:
    settings = load_settings(
        config_file=tmp_path / "absent.toml", env={}, roles_file=str(DEPLOY / "roles.yaml")
    )
    assert load_roles(settings) == {"approver": set(), "admin": set()}
    readme = (DEPLOY / "README.md").read_text()
    for needed in ("docker compose -f deploy/compose.yaml up", "../docs/server.md", "pg_dump", "Upgrade"):
        assert needed in readme
    assert ".env" in (DEPLOY / ".gitignore").read_text().split()
