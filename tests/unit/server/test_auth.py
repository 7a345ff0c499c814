"""Authentication on the tracking server: the principal is the actor, tokens expire and are revoked
at once, failed sign-ins are rate-limited, answers carry security headers, secrets never leak, and
security events are audited."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_harness import Borrowed, SyncASGITransport, make_settings

from polling_helpers import wait_until
from shipyard.auth import MAX_FAILURES, FailureLimiter
from shipyard.entities import Artifact, ModelVersionCreate, now_ms
from shipyard.errors import ConfigError, PermissionDenied, Unauthenticated
from shipyard.registry import governance
from shipyard.server import create_app
from shipyard.server.access import SECURITY_HEADERS
from shipyard.server.app import app_state, decide_auth
from shipyard.server.bootstrap import bootstrap_auth
from shipyard.store.rest import RestStore
from shipyard.store.sql import SqlStore
from shipyard.tracking import Client

API = "/api/v1"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return create_app(make_settings(tmp_path_factory.mktemp("auth"), auth=True))


@pytest.fixture(scope="module")
def store(app: FastAPI) -> SqlStore:
    s = app_state(app).store
    assert isinstance(s, SqlStore)
    return s


@pytest.fixture(scope="module")
def tokens(store: SqlStore) -> dict[str, str]:
    """ann: scientist and approver; bob: approver; sam: scientist; vic: viewer; root: admin; eve: engineer."""
    people = {
        "ann": ["scientist", "approver"],
        "bob": ["approver"],
        "sam": ["scientist"],
        "vic": ["viewer"],
        "root": ["admin"],
        "eve": ["engineer"],
    }
    out = {}
    for name, roles in people.items():
        store.create_user(name, roles, "test", password=PASSWORD if name == "vic" else None)
        out[name] = store.create_token(name, "unit", "test")[1]
    return out


@pytest.fixture
def transport(app: FastAPI) -> Iterator[SyncASGITransport]:
    t = SyncASGITransport(app, raise_app_exceptions=False, client=("198.51.100.9", 1234))
    yield t
    t.close()


@pytest.fixture
def http(transport: SyncASGITransport) -> Iterator[httpx.Client]:
    with httpx.Client(transport=Borrowed(transport), base_url="http://testserver") as client:
        yield client


@pytest.fixture(autouse=True)
def _fresh_limiter(app: FastAPI) -> None:
    """Each test starts with no failed sign-ins counted (the limiter is per process)."""
    app.state.access_limiter.__init__()


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _client(app: FastAPI, tmp_path: Path, token: str, user: str = "") -> Client:
    settings = make_settings(tmp_path, token=token, tracking_uri="http://testserver", user=user or "os-user")
    store = RestStore("http://testserver", settings, transport=Borrowed(SyncASGITransport(app)))
    return Client.from_stores(settings, store, store.blob_store())


def _version(store: SqlStore, name: str, author: str) -> int:
    store.create_registered_model(name, created_by=author)
    spec = ModelVersionCreate(
        name=name,
        digest="a" * 64,
        flavor="sklearn",
        files=[Artifact("shipyard-model.yaml", "a" * 64, 1)],
        signature={"inputs": [], "outputs": []},
        created_by=author,
    )
    return store.create_model_version(spec).version


# -- identity is the principal ------------------------------------------------------------------------
def test_an_author_approving_by_naming_someone_else_is_refused(
    app: FastAPI, store: SqlStore, http: httpx.Client, tokens: dict[str, str]
) -> None:
    v = _version(store, "four-eyes", "ann")
    path = f"{API}/models/four-eyes/versions/{v}/approve"
    forged = http.post(path, json={"actor": "bob", "comment": "lgtm"}, headers=_h(tokens["ann"]))
    assert forged.status_code == 403, forged.text
    assert "belongs to 'ann'" in forged.json()["error"]["message"]
    own = http.post(path, json={"comment": "lgtm"}, headers=_h(tokens["ann"]))  # as herself: the author
    assert own.status_code in (403, 409), own.text
    assert not store.list_model_records("four-eyes", v, "approval")
    real = http.post(path, json={"comment": "checked"}, headers=_h(tokens["bob"]))
    assert real.status_code == 201, real.text
    (record,) = store.list_model_records("four-eyes", v, "approval")
    assert record.actor == "bob"


def test_names_in_bodies_never_become_the_author(
    store: SqlStore, http: httpx.Client, tokens: dict[str, str]
) -> None:
    body = {"run_id": "f" * 32, "experiment_name": "who", "start_time": now_ms(), "user": "mallory"}
    made = http.post(f"{API}/runs", json=body, headers=_h(tokens["sam"]))
    assert made.status_code == 200, made.text
    assert store.get_run("f" * 32).user == "sam"
    model = http.post(
        f"{API}/models", json={"name": "mine", "created_by": "mallory"}, headers=_h(tokens["sam"])
    )
    assert model.json()["created_by"] == "sam"
    assert [(g.user, g.role) for g in store.list_grants("model", "mine")] == [("sam", "owner")]


def test_the_sdk_with_a_token_acts_as_the_tokens_user(
    app: FastAPI, store: SqlStore, tokens: dict[str, str], tmp_path: Path
) -> None:
    v = _version(store, "sdk-gov", "sam")
    bob = _client(app, tmp_path / "bob", tokens["bob"], user="someone-else")
    try:
        record = governance.approve_model("sdk-gov", v, reason="fine", client=bob)
    finally:
        bob.close()
    assert record.actor == "bob"
    entries = store.list_audit(0, 10_000, action="model_version.approve")
    assert entries and entries[-1].actor == "bob"


def test_roles_for_approvals_come_from_the_store(
    app: FastAPI, store: SqlStore, tokens: dict[str, str], tmp_path: Path
) -> None:
    """The policy's approval role is checked against the server's users, not a roles file."""
    v = _version(store, "store-roles", "sam")
    root = _client(app, tmp_path / "root", tokens["root"])
    eve = _client(app, tmp_path / "eve", tokens["eve"])
    try:
        governance.set_promotion_policy(
            "store-roles", {"approvals": {"required": 1}}, reason="4 eyes", client=root
        )
        with pytest.raises(PermissionDenied):  # an engineer: no approve permission at the door
            governance.approve_model("store-roles", v, reason="x", client=eve)
        with pytest.raises(PermissionDenied):  # the policy cannot be changed by a non-admin either
            governance.set_promotion_policy("store-roles", None, client=eve)
    finally:
        root.close()
        eve.close()


def test_grants_restrict_writes_to_owners_and_editors(
    store: SqlStore, http: httpx.Client, tokens: dict[str, str]
) -> None:
    made = http.post(f"{API}/experiments", json={"name": "sams-exp"}, headers=_h(tokens["sam"]))
    exp_id = made.json()["id"]
    assert [(g.user, g.role) for g in store.list_grants("experiment", str(exp_id))] == [("sam", "owner")]
    run = {"run_id": "e" * 32, "experiment_name": "sams-exp", "start_time": now_ms()}
    assert http.post(f"{API}/runs", json=run, headers=_h(tokens["sam"])).status_code == 200
    batch = {"params": {"lr": "0.1"}}
    refused = http.post(f"{API}/runs/{'e' * 32}/batch", json=batch, headers=_h(tokens["ann"]))
    assert refused.status_code == 403 and "owner or editor" in refused.json()["error"]["message"]
    grant = {"user": "ann", "object_type": "experiment", "object_id": str(exp_id), "role": "editor"}
    assert http.put(f"{API}/auth/grants", json=grant, headers=_h(tokens["root"])).status_code == 200
    assert http.post(f"{API}/runs/{'e' * 32}/batch", json=batch, headers=_h(tokens["ann"])).status_code == 204


# -- tokens ---------------------------------------------------------------------------------------------
def test_revocation_takes_effect_at_once(http: httpx.Client, tokens: dict[str, str]) -> None:
    made = http.post(f"{API}/auth/tokens", json={"name": "short"}, headers=_h(tokens["sam"]))
    secret, token_id = made.json()["token"], made.json()["record"]["id"]
    assert http.get(f"{API}/experiments", headers=_h(secret)).status_code == 200
    assert (
        http.post(f"{API}/auth/tokens/{token_id}/revoke", json={}, headers=_h(tokens["sam"])).status_code
        == 200
    )
    after = http.get(f"{API}/experiments", headers=_h(secret))
    assert after.status_code == 401 and after.headers["www-authenticate"].startswith("Bearer")


def test_a_token_stops_working_when_it_expires(
    store: SqlStore, http: httpx.Client, tokens: dict[str, str]
) -> None:  # tokens: the users exist
    _record, secret = store.create_token("vic", "brief", "test", expires_at=now_ms() + 1500)
    assert http.get(f"{API}/experiments", headers=_h(secret)).status_code == 200
    wait_until(
        lambda: http.get(f"{API}/experiments", headers=_h(secret)).status_code == 401,
        "the expired token to be refused",
        timeout=10,
    )


def test_a_disabled_user_s_tokens_stop_working(store: SqlStore, http: httpx.Client) -> None:
    store.create_user("temp", ["viewer"], "test")
    _record, secret = store.create_token("temp", "t", "test")
    assert http.get(f"{API}/experiments", headers=_h(secret)).status_code == 200
    store.update_user("temp", "test", disabled=True)
    assert http.get(f"{API}/experiments", headers=_h(secret)).status_code == 401


def test_scopes_narrow_a_token(
    store: SqlStore, http: httpx.Client, tokens: dict[str, str]
) -> None:  # tokens: the users exist
    _record, read_only = store.create_token("sam", "ro", "test", scopes=["read"])
    assert http.get(f"{API}/experiments", headers=_h(read_only)).status_code == 200
    body = {"name": "nope-exp"}
    assert http.post(f"{API}/experiments", json=body, headers=_h(read_only)).status_code == 403
    wider = http.post(f"{API}/auth/tokens", json={"scopes": ["write"]}, headers=_h(read_only))
    assert wider.status_code == 403


def test_tokens_are_stored_only_as_digests(store: SqlStore, tokens: dict[str, str]) -> None:
    from sqlalchemy import select

    from shipyard.store.sql import schema as t

    with store._read() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(t.api_tokens))]
    dumped = json.dumps(rows, default=str)
    assert rows and not any(secret in dumped for secret in tokens.values())


# -- brute force --------------------------------------------------------------------------------------
def test_failed_token_checks_are_rate_limited_per_client(
    app: FastAPI, http: httpx.Client, tokens: dict[str, str]
) -> None:
    for i in range(MAX_FAILURES):
        assert http.get(f"{API}/experiments", headers=_h(f"sy_guess{i:030d}")).status_code == 401
    blocked = http.get(f"{API}/experiments", headers=_h(tokens["vic"]))
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    other = SyncASGITransport(app, client=("198.51.100.77", 1))
    with httpx.Client(transport=other, base_url="http://testserver") as elsewhere:
        assert elsewhere.get(f"{API}/experiments", headers=_h(tokens["vic"])).status_code == 200


def test_password_login_is_rate_limited_and_gives_a_token(
    http: httpx.Client, tokens: dict[str, str]
) -> None:  # tokens: vic exists
    good = http.post(f"{API}/auth/login", json={"user": "vic", "password": PASSWORD})
    assert good.status_code == 201, good.text
    assert http.get(f"{API}/auth/whoami", headers=_h(good.json()["token"])).json()["name"] == "vic"
    for _ in range(MAX_FAILURES):
        assert (
            http.post(f"{API}/auth/login", json={"user": "vic", "password": "wrong-guess"}).status_code == 401
        )
    assert http.post(f"{API}/auth/login", json={"user": "vic", "password": PASSWORD}).status_code == 429


def test_the_limiter_forgets_after_its_window() -> None:
    limiter = FailureLimiter(max_failures=2, window_s=0.2)
    limiter.fail("a")
    limiter.fail("a")
    assert limiter.retry_after("a") > 0 and limiter.retry_after("b") == 0
    wait_until(lambda: limiter.retry_after("a") == 0, "the window to pass", timeout=5)


# -- malformed credentials ----------------------------------------------------------------------------
_HEADER_TEXT = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    st.text(max_size=40).map(lambda s: "Bearer " + s),
    st.text(alphabet=st.characters(codec="latin-1"), max_size=20).map(lambda s: "Bearer sy_" + s),
    st.integers(0, 20_000).map(lambda n: "Bearer sy_" + "A" * n),
    st.sampled_from(
        ["", "Bearer", "Bearer ", "bearer  sy_", "Basic dXNlcjpwYXNz", "Bearer sy_\x00", "Token x"]
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_HEADER_TEXT)
def test_any_authorization_header_answers_401_never_500(app: FastAPI, http: httpx.Client, value: str) -> None:
    app.state.access_limiter.__init__(max_failures=10**9)
    raw = value.replace("\r", "").replace("\n", "").encode("utf-8", "surrogatepass")
    answer = http.get(f"{API}/experiments", headers=[(b"Authorization", raw)])
    assert answer.status_code == 401, (value[:80], answer.text)
    assert answer.json()["error"]["code"] == "unauthenticated"


def test_two_authorization_headers_are_refused(http: httpx.Client, tokens: dict[str, str]) -> None:
    both = [(b"Authorization", f"Bearer {tokens['root']}".encode()), (b"Authorization", b"Bearer sy_x")]
    assert http.get(f"{API}/experiments", headers=both).status_code == 401


# -- headers, CORS --------------------------------------------------------------------------------------
def test_every_answer_carries_security_headers_and_no_cors(
    http: httpx.Client, tokens: dict[str, str]
) -> None:
    answers = [
        http.get("/health"),
        http.get(f"{API}/experiments"),  # 401
        http.get(f"{API}/experiments", headers=_h(tokens["vic"])),
        http.get("/nope", headers={"Origin": "https://evil.example"}),
        http.options(
            f"{API}/experiments",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        ),
    ]
    for answer in answers:
        for name, value in SECURITY_HEADERS:
            if name != b"content-security-policy":
                assert answer.headers.get(name.decode()) == value.decode(), (answer.request.url, name)
        assert "content-security-policy" in answer.headers
        assert "access-control-allow-origin" not in answer.headers


def test_cors_is_opt_in(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, cors_origins="https://ui.example"))
    with httpx.Client(transport=SyncASGITransport(app), base_url="http://testserver") as http:
        answer = http.get("/health", headers={"Origin": "https://ui.example"})
        assert answer.headers["access-control-allow-origin"] == "https://ui.example"
        assert (
            "access-control-allow-origin"
            not in http.get("/health", headers={"Origin": "https://x.example"}).headers
        )


# -- secrets never leak; security events are audited --------------------------------------------------
def test_secrets_never_reach_logs_errors_or_the_audit_log(
    store: SqlStore, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store.create_user("leaky", ["scientist"], "test", password="hunter2-hunter2")
    answers = []
    made = http.post(f"{API}/auth/login", json={"user": "leaky", "password": "hunter2-hunter2"})
    secret = made.json()["token"]
    answers.append(http.post(f"{API}/auth/login", json={"user": "leaky", "password": "hunter2-wrong"}))
    answers.append(http.get(f"{API}/experiments", headers=_h(secret + "x")))
    answers.append(http.post(f"{API}/runs", json={"bad": 1}, headers=_h(secret)))
    answers.append(http.get(f"{API}/auth/users", headers=_h(secret)))  # 403
    answers.append(
        http.post(f"{API}/auth/tokens/{made.json()['record']['id']}/revoke", json={}, headers=_h(secret))
    )
    answers.append(http.get(f"{API}/experiments", headers=_h(secret)))  # revoked
    audit = json.dumps([e.to_dict() for e in store.list_audit(0, 10_000)], default=str)
    texts = [caplog.text, audit, *(a.text for a in answers)]
    for text in texts:
        for secret_text in (secret, "hunter2-hunter2", "hunter2-wrong", secret[3:20]):
            assert secret_text not in text


def test_security_events_are_audited(store: SqlStore, http: httpx.Client, tokens: dict[str, str]) -> None:
    store.create_user("audited", ["viewer"], "root", password=PASSWORD)
    http.post(f"{API}/auth/login", json={"user": "audited", "password": PASSWORD})
    http.post(f"{API}/auth/login", json={"user": "audited", "password": "not-it-at-all"})
    http.post(f"{API}/experiments", json={"name": "refused-exp"}, headers=_h(tokens["vic"]))
    http.get(f"{API}/experiments", headers=_h("sy_" + "n" * 40))
    grant = {"user": "audited", "object_type": "model", "object_id": "mine", "role": "reader"}
    http.put(f"{API}/auth/grants", json=grant, headers=_h(tokens["root"]))
    entries = store.list_audit(0, 10_000, object_type="security")
    actions = {e.action for e in entries}
    assert {
        "security.user_add",
        "security.token_create",
        "security.login",
        "security.login_failed",
        "security.refused",
        "security.auth_failed",
        "security.grant",
    } <= actions
    refused = [e for e in entries if e.action == "security.refused" and e.actor == "vic"]
    assert refused and refused[-1].object_id == "route/POST /api/v1/experiments"


def test_refusals_are_audited_at_most_once_a_minute_per_caller_and_route(
    store: SqlStore, http: httpx.Client, tokens: dict[str, str]
) -> None:
    before = len(store.list_audit(0, 10_000, action="security.refused", actor="vic"))
    for _ in range(5):
        http.post(f"{API}/deployments", json={}, headers=_h(tokens["vic"]))
    after = len(store.list_audit(0, 10_000, action="security.refused", actor="vic"))
    assert after - before == 1


# -- secure by default ----------------------------------------------------------------------------------
def test_auth_is_on_off_loopback_and_refused_off_without_insecure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plain = make_settings(tmp_path)
    assert decide_auth("127.0.0.1", None, plain) is False
    assert decide_auth("::1", None, plain) is False
    assert decide_auth("0.0.0.0", None, plain) is True
    assert decide_auth("127.0.0.1", True, plain) is True
    with pytest.raises(ConfigError, match="without authentication"):
        decide_auth("0.0.0.0", False, plain)
    with caplog.at_level(logging.WARNING):
        assert decide_auth("10.1.2.3", False, make_settings(tmp_path, insecure=True)) is False
    assert "INSECURE" in caplog.text


def test_shipyard_server_on_all_interfaces_refuses_to_start_open(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from shipyard.cli.main import app

    result = CliRunner().invoke(
        app,
        ["--tracking-uri", f"sqlite:///{tmp_path / 'x.db'}", "server", "--host", "0.0.0.0", "--no-auth"],
        env={"SHIPYARD_HOME": str(tmp_path), "SHIPYARD_CONFIG": str(tmp_path / "none.toml")},
    )
    assert result.exit_code != 0
    assert "without authentication" in (result.output + str(result.exception))


def test_bootstrap_imports_roles_and_prints_the_admin_token_once(tmp_path: Path) -> None:
    roles = tmp_path / "roles.yaml"
    roles.write_text("approver: [bob]\nscientist: [ann, bob]\nauditor: [zed]\n")
    settings = make_settings(tmp_path, roles_file=str(roles))
    store = SqlStore(f"sqlite:///{tmp_path / 'b.db'}")
    try:
        out = io.StringIO()
        assert bootstrap_auth(store, settings, out) is True
        printed = out.getvalue()
        secret = next(w for w in printed.split() if w.startswith("sy_"))
        assert "skipping role 'auditor'" in printed
        found = store.verify_token(secret)
        assert found is not None and found[0].name == "admin" and "admin" in found[0].roles
        assert {u.name: u.roles for u in store.list_users()} == {
            "admin": ("admin",),
            "ann": ("scientist",),
            "bob": ("approver", "scientist"),
        }
        again = io.StringIO()
        assert bootstrap_auth(store, settings, again) is False and "sy_" not in again.getvalue()
    finally:
        store.close()


def test_bootstrap_takes_the_admin_token_from_settings_or_writes_a_file(tmp_path: Path) -> None:
    chosen = "sy_" + "k" * 40
    store = SqlStore(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        out = io.StringIO()
        bootstrap_auth(store, make_settings(tmp_path, admin_token=chosen), out)
        assert chosen not in out.getvalue() and store.verify_token(chosen) is not None
    finally:
        store.close()
    token_file = tmp_path / "secrets" / "admin-token"
    store = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    try:
        out = io.StringIO()
        bootstrap_auth(store, make_settings(tmp_path, admin_token_file=str(token_file)), out)
        written = token_file.read_text().strip()
        assert token_file.stat().st_mode & 0o777 == 0o600 and written not in out.getvalue()
        assert store.verify_token(written) is not None
    finally:
        store.close()


def test_without_auth_the_server_is_open_and_says_so(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path))
    with httpx.Client(transport=SyncASGITransport(app), base_url="http://testserver") as http:
        assert "x-frame-options" in http.get("/health").headers
        assert http.get(f"{API}/experiments").status_code == 200
        assert http.get(f"{API}/auth/whoami").json() == {"name": None, "auth": False}


def test_the_offline_spool_replays_with_the_token(
    app: FastAPI, store: SqlStore, tokens: dict[str, str], tmp_path: Path
) -> None:
    """Writes kept while the server was unreachable are sent later with the client's token (and
    recorded as its user), artifacts' blobs included."""
    from server_harness import FlakyTransport

    from shipyard.entities import LogBatch, RunCreate, RunStatus

    flaky = FlakyTransport(Borrowed(SyncASGITransport(app)))
    settings = make_settings(
        tmp_path, token=tokens["sam"], tracking_uri="http://testserver", user="laptop-user"
    )
    rest = RestStore("http://testserver", settings, transport=flaky, replay_interval=60)
    try:
        flaky.down = True
        run_id = "d" * 32
        rest.create_run(
            RunCreate(
                run_id=run_id, experiment_name="offline", name="r", start_time=now_ms(), user="laptop-user"
            )
        )
        rest.log_batch(run_id, LogBatch([("loss", 0.5, 0, now_ms())], batch_id="b1"))
        digest, size = rest.blob_store().put_bytes(b"offline artifact")
        rest.record_artifacts(run_id, [Artifact("a.txt", digest, size)])
        rest.update_run(run_id, status=RunStatus.FINISHED)
        assert rest.spooling
        flaky.down = False
        assert rest.flush_spool()
    finally:
        rest.close()
    run = store.get_run(run_id)
    assert (run.user, run.status, run.metrics["loss"]) == ("sam", RunStatus.FINISHED, 0.5)
    assert [a.path for a in store.list_artifacts(run_id)] == ["a.txt"]


def test_a_client_without_a_token_is_refused_by_an_auth_server(app: FastAPI, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, tracking_uri="http://testserver")
    rest = RestStore("http://testserver", settings, transport=Borrowed(SyncASGITransport(app)))
    try:
        with pytest.raises(Unauthenticated, match="needs a token"):
            rest.list_experiments()
    finally:
        rest.close()


def test_the_uvicorn_factory_needs_auth_set_explicitly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipyard.server.app import app_from_env

    monkeypatch.setenv("SHIPYARD_TRACKING_URI", f"sqlite:///{tmp_path / 'f.db'}")
    monkeypatch.setenv("SHIPYARD_ARTIFACT_URI", str(tmp_path / "art"))
    monkeypatch.setenv("SHIPYARD_CONFIG", str(tmp_path / "none.toml"))
    with pytest.raises(ConfigError, match="SHIPYARD_AUTH=true"):
        app_from_env()
    monkeypatch.setenv("SHIPYARD_AUTH", "true")
    app = app_from_env()
    try:
        with httpx.Client(transport=SyncASGITransport(app), base_url="http://testserver") as http:
            assert http.get(f"{API}/experiments").status_code == 401
    finally:
        app_state(app).close()


def test_head_follows_the_get_rule() -> None:
    from shipyard.server.access import rule_for

    found = rule_for("HEAD", "/api/v1/runs/abc")
    assert found is not None and found[0] == "/api/v1/runs/{run_id}" and found[1].permission == "read"
    assert rule_for("HEAD", "/api/v1/blobs/" + "0" * 64) is not None
    assert rule_for("DELETE", "/api/v1/runs/abc") is None


def test_a_token_client_keeps_actor_filters_of_reads(
    app: FastAPI, store: SqlStore, tokens: dict[str, str], tmp_path: Path
) -> None:
    """The REST store leaves out ``actor`` names it would act under, never an ``actor`` filter."""
    settings = make_settings(tmp_path, token=tokens["root"], tracking_uri="http://testserver", user="os-user")
    rest = RestStore("http://testserver", settings, transport=Borrowed(SyncASGITransport(app)))
    try:
        entries = rest.list_audit(0, 10_000, actor="test")
        assert entries and {e.actor for e in entries} == {"test"}
    finally:
        rest.close()
