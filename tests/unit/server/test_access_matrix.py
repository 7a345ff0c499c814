"""Every route × every role: the server's whole OpenAPI route table is walked with a token of each role
(and with none), and each answer is checked against the permission the access table declares.

A route added without a rule in ``shipyard.server.access.RULES`` fails here (and is refused by the
server). The expected matrix comes from the rules, so the pinned examples at the end make sure
the rules themselves say what the issue asks (viewers cannot write, only approvers approve …).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from server_harness import Borrowed, SyncASGITransport, make_settings
from starlette.routing import Mount

from shipyard import ui
from shipyard.auth import ROLE_PERMISSIONS, ROLES
from shipyard.server import create_app
from shipyard.server.access import AUTHENTICATED, PUBLIC, RULES, rule_for
from shipyard.server.app import app_state
from shipyard.server.mlflow import PREFIXES as MLFLOW_PREFIXES
from shipyard.store import AuthStore

CALLERS = [*ROLES, None]  # None: no token at all


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return create_app(make_settings(tmp_path_factory.mktemp("matrix"), auth=True))


@pytest.fixture(scope="module")
def tokens(app: FastAPI) -> dict[str, str]:
    store = app_state(app).store
    assert isinstance(store, AuthStore)
    out = {}
    for role in ROLES:
        store.create_user(f"{role}-user", [role], "test")
        out[role] = store.create_token(f"{role}-user", "matrix", "test")[1]
    return out


@pytest.fixture(scope="module")
def http(app: FastAPI) -> Iterator[httpx.Client]:
    transport = SyncASGITransport(app, raise_app_exceptions=False)
    with httpx.Client(transport=Borrowed(transport), base_url="http://testserver") as client:
        yield client
    transport.close()


def _operations(app: FastAPI) -> list[tuple[str, str]]:
    """The OpenAPI route table, the docs, and the routes outside the schema (the web UI's pages and
    its static files)."""
    ops = {(m.upper(), p) for p, item in app.openapi()["paths"].items() for m in item}
    for route in ui.build_router(app_state(app).store).routes:  # the app serves these pages
        assert isinstance(route, APIRoute) and not route.include_in_schema
        ops |= {(m, route.path) for m in route.methods or () if m != "HEAD"}
    for mount in app.routes:
        if isinstance(mount, Mount):
            ops.add(("GET", f"{mount.path}/{{path}}"))
    return sorted(ops | {("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect")})


_FILL = {
    "path": "shipyard.css",
    "digest": "0" * 64,
    "experiment_id": "999999",
    "report_id": "999999",
    "alert_id": "999999",
}


def _concrete(template: str) -> str:
    return re.sub(
        r"\{([^}]+)\}", lambda m: _FILL.get(m.group(1), "1" if "version" in m.group(1) else "nope"), template
    )


def test_every_route_has_a_rule_and_every_rule_a_route(app: FastAPI) -> None:
    ops = set(_operations(app))
    missing = sorted(op for op in ops if op not in RULES)
    stale = sorted(op for op in RULES if op not in ops)
    assert not missing, f"routes without an access rule (add them to shipyard.server.access.RULES): {missing}"
    assert not stale, f"rules for routes that do not exist: {stale}"


def test_a_route_without_a_rule_is_refused(app: FastAPI, http: httpx.Client, tokens: dict[str, str]) -> None:
    answer = http.post(
        "/api/v1/models/x/aliases/champion", headers={"Authorization": f"Bearer {tokens['admin']}"}
    )
    assert answer.status_code == 403 and "no access rule" in answer.json()["error"]["message"]


def _allowed(role: str | None, permission: str) -> bool:
    if permission == PUBLIC:
        return True
    if role is None:
        return False
    return permission == AUTHENTICATED or permission in ROLE_PERMISSIONS[role]


@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c or "no-token")
def test_route_by_role_matrix(
    app: FastAPI, http: httpx.Client, tokens: dict[str, str], caller: str | None
) -> None:
    headers = {"Authorization": f"Bearer {tokens[caller]}"} if caller else {}
    wrong: list[str] = []
    for method, template in _operations(app):
        path = _concrete(template)
        found = rule_for(method, path)
        assert found is not None and found[0] == template, f"{method} {path} matched {found}"
        permission = RULES[(method, template)].permission
        body: dict[str, object] | None = {} if method in ("POST", "PUT", "PATCH") else None
        status = http.request(method, path, json=body, headers=headers).status_code
        rule = RULES[(method, template)]
        if _allowed(caller, permission):
            ok = status not in (401, 403, 429) and status < 500
        elif caller is None and rule.page and method == "GET":
            ok = status == 303  # a web UI page sends a browser without a session to /login
        else:
            ok = status == (401 if caller is None else 403)
        if not ok:
            wrong.append(f"{method} {template} needs {permission}: answered {status}")
    assert not wrong, f"{caller or 'no token'}: " + "; ".join(wrong)


def test_the_rules_say_what_the_roles_mean() -> None:
    def need(method: str, path: str) -> str:
        found = rule_for(method, path)
        assert found is not None
        return found[1].permission

    assert need("POST", "/api/v1/runs") == "write" and "write" not in ROLE_PERMISSIONS["viewer"]
    assert need("POST", "/api/v1/models/m/versions/1/approve") == "approve"
    assert {r for r in ROLES if "approve" in ROLE_PERMISSIONS[r]} == {"approver", "admin"}
    assert need("POST", "/api/v1/deployments") == "deploy"
    assert {r for r in ROLES if "deploy" in ROLE_PERMISSIONS[r]} == {"engineer", "admin"}
    for admin_only in [
        ("POST", "/api/v1/auth/users"),
        ("PUT", "/api/v1/models/m/policy"),
        ("POST", "/api/v1/admin/gc"),
    ]:
        assert need(*admin_only) == "admin"
    assert {r for r in ROLES if "admin" in ROLE_PERMISSIONS[r]} == {"admin"}
    assert need("GET", "/health") == PUBLIC and need("POST", "/api/v1/auth/login") == PUBLIC


def test_no_rule_grants_a_path_that_moves_an_alias_directly() -> None:
    """Aliases move only through promote and rollback, which run the gates (and are audited). MLflow's
    alias route moves them by promote_model too (tests/unit/server/test_mlflow_registry.py)."""
    mlflow_alias = {f"{prefix}/registered-models/alias" for prefix in MLFLOW_PREFIXES}
    alias_routes = {tpl for (_m, tpl) in RULES if "alias" in tpl}
    assert alias_routes == {"/api/v1/models/{name}/alias-history", *mlflow_alias}
    assert RULES[("GET", "/api/v1/models/{name}/alias-history")].permission == "read"
    for tpl in mlflow_alias:
        assert RULES[("GET", tpl)].permission == "read"
        assert RULES[("POST", tpl)].permission == RULES[("DELETE", tpl)].permission == "write"
