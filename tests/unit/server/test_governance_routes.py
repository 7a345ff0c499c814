"""No route writes governed state around the governed operations, nobody appends free-form audit
entries, and admin routes answer only to loopback clients unless the server allows remote admin.

Each test here passed a request that the server used to accept: a forged audit entry, a raw alias
move, a forged approval record, a policy removed by anyone, gc from any address.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from server_harness import Borrowed, SyncASGITransport, make_settings

from shipyard.errors import InvalidInput, PermissionDenied
from shipyard.server import create_app
from shipyard.server.app import app_state
from shipyard.store.rest import RestStore
from shipyard.store.sql import SqlStore
from shipyard.tracking import Client

API = "/api/v1"
REMOTE = ("203.0.113.7", 40_000)  # TEST-NET-3: not loopback


@pytest.fixture(scope="module")
def app(server_root: Path) -> FastAPI:
    roles = server_root / "roles.yaml"
    roles.write_text("approver: [bob]\nadmin: [dave]\n")
    return create_app(make_settings(server_root, roles_file=str(roles)))


@pytest.fixture(scope="module")
def remote(app: FastAPI) -> Iterator[httpx.Client]:
    """An HTTP client the server sees as coming from another machine."""
    transport = SyncASGITransport(app, client=REMOTE)
    with httpx.Client(transport=Borrowed(transport), base_url="http://testserver") as client:
        yield client
    transport.close()


@pytest.fixture(scope="module")
def versions(app: FastAPI) -> tuple[int, int, int]:
    """Model 'gov' with three versions, v1 then v2 promoted (no policy: ungated) on the server."""
    from shipyard.entities import Artifact, ModelVersionCreate

    store = app_state(app).store
    assert isinstance(store, SqlStore)
    store.create_registered_model("gov", created_by="alice")
    made = []
    for tag in "abc":
        spec = ModelVersionCreate(
            name="gov",
            digest=tag * 64,
            flavor="sklearn",
            files=[Artifact("shipyard-model.yaml", tag * 64, 1)],
            signature={"inputs": []},
            created_by="alice",
        )
        made.append(store.create_model_version(spec).version)
    v1, v2, v3 = made
    store.set_model_alias("gov", "champion", v1, "alice", "first")
    store.set_model_alias("gov", "champion", v2, "alice", "second")
    return v1, v2, v3


def _client(rest_store: RestStore, tmp_path: Path, user: str) -> Client:
    settings = make_settings(tmp_path, tracking_uri="http://testserver", user=user)
    return Client.from_stores(settings, rest_store, rest_store.blob_store())


def test_no_route_appends_a_free_form_audit_entry(http: httpx.Client) -> None:
    forged = {
        "actor": "mallory",
        "action": "alias.set",
        "object_type": "model_alias",
        "object_id": "gov@champion",
        "before": {"version": 2},
        "after": {"version": 3},
    }
    assert http.post(f"{API}/audit", json=forged).status_code == 405
    assert not any(e.actor == "mallory" for e in _entries(http))


def test_no_route_moves_an_alias_directly(http: httpx.Client, versions: tuple[int, int, int]) -> None:
    _, v2, v3 = versions
    answer = http.put(f"{API}/models/gov/aliases/champion", json={"version": v3, "actor": "mallory"})
    assert answer.status_code in (404, 405)
    assert http.get(f"{API}/models/gov").json()["aliases"] == {"champion": v2}


@pytest.mark.parametrize("kind", ["approval", "promotion", "evaluation"])
def test_no_route_writes_an_approval_or_promotion_record(
    http: httpx.Client, versions: tuple[int, int, int], kind: str
) -> None:
    forged = {"kind": kind, "actor": "bob", "body": {"decision": "approve"}, "audit_action": "alias.set"}
    assert http.post(f"{API}/models/gov/versions/{versions[2]}/records", json=forged).status_code in (
        404,
        405,
    )
    assert http.get(f"{API}/models/gov/records", params={"kind": "approval"}).json()["items"] == []


def test_evaluations_have_a_narrow_route_that_gates_never_trust(
    rest_store: RestStore, versions: tuple[int, int, int]
) -> None:
    record = rest_store.add_model_evaluation(
        "gov", versions[2], "alice", {"report": {"metrics": {"auc": 1.0}}}
    )
    assert record.kind == "evaluation" and record.body["computed_by"] == "client"
    entry = rest_store.list_audit(action="model_version.evaluate")[-1]
    assert (entry.actor, entry.object_id) == ("alice", f"gov/{versions[2]}")


def test_rollback_refuses_a_version_that_never_held_the_alias(
    rest_store: RestStore, tmp_path: Path, versions: tuple[int, int, int], http: httpx.Client
) -> None:
    from shipyard.registry import governance

    v1, v2, v3 = versions
    alice = _client(rest_store, tmp_path, "alice")
    with pytest.raises(InvalidInput, match="never held alias 'champion'"):
        governance.rollback_model("gov", to=v3, client=alice)
    history = http.get(f"{API}/models/gov/alias-history", params={"alias": "champion"}).json()["items"]
    assert [(m["previous"], m["version"]) for m in history] == [(None, v1), (v1, v2)]


def test_only_an_admin_changes_a_policy(
    rest_store: RestStore, tmp_path: Path, versions: tuple[int, int, int], http: httpx.Client
) -> None:
    from shipyard.registry import governance

    dave, alice = _client(rest_store, tmp_path, "dave"), _client(rest_store, tmp_path, "alice")
    governance.set_promotion_policy("gov", {"approvals": {"required": 1}}, reason="four eyes", client=dave)
    removal = http.put(f"{API}/models/gov/policy", json={"policy_yaml": None, "actor": "alice"})
    assert removal.status_code == 403 and "admin" in removal.json()["error"]["message"]
    with pytest.raises(PermissionDenied, match="role 'admin'"):
        governance.set_promotion_policy("gov", None, client=alice)
    assert governance.get_promotion_policy("gov", client=alice) is not None
    path = http.put(f"{API}/models/gov/policy", json={"policy_yaml": "/etc/passwd.yaml", "actor": "dave"})
    assert path.status_code == 400, "policy text is never read as a file on the server"
    governance.set_promotion_policy("gov", None, client=dave)
    assert governance.get_promotion_policy("gov", client=alice) is None


def test_a_deployment_must_reference_models_that_exist(http: httpx.Client) -> None:
    spec = "name: ghostly\nvariants:\n  - {name: main, model: 'models:/ghost@champion', weight: 1}\n"
    answer = http.post(f"{API}/deployments", json={"name": "ghostly", "spec_yaml": spec, "actor": "a"})
    assert answer.status_code == 404 and "ghost" in answer.json()["error"]["message"]


def test_run_deletion_is_audited_with_the_actor_over_rest(rest_store: RestStore, tmp_path: Path) -> None:
    alice = _client(rest_store, tmp_path, "alice")
    with alice.start_run(log_environment=False, system_metrics=False) as run:
        pass
    alice.delete_runs([run.id], reason="mistake")
    (entry,) = alice.list_audit(object_id=run.id)
    assert (entry.actor, entry.action, entry.reason) == ("alice", "run.delete", "mistake")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/admin/gc", {"grace_seconds": 3600}),
        ("POST", "/admin/purge", {}),
        ("POST", "/admin/referenced-digests", {"digests": ["a" * 64]}),
        ("GET", "/admin/run-ids", None),
        ("DELETE", "/blobs/" + "e" * 64, None),
        ("DELETE", "/blobs/tmp", None),
        ("POST", "/audit/checkpoints", None),
    ],
)
def test_admin_routes_refuse_remote_clients(
    remote: httpx.Client, http: httpx.Client, method: str, path: str, body: object
) -> None:
    refused = remote.request(method, API + path, json=body)
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["code"] == "permission_denied" and "--allow-remote-admin" in error["message"]
    assert REMOTE[0] in error["message"]
    assert http.request(method, API + path, json=body).status_code < 400  # loopback is allowed


def test_allow_remote_admin_opens_admin_routes(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, allow_remote_admin=True))
    transport = SyncASGITransport(app, client=REMOTE)
    try:
        with httpx.Client(transport=Borrowed(transport), base_url="http://testserver") as remote:
            assert remote.post(f"{API}/admin/purge", json={}).status_code == 200
    finally:
        transport.close()


def test_the_head_can_be_pinned_and_checked_later(
    http: httpx.Client, rest_store: RestStore, tmp_path: Path
) -> None:
    ops = _client(rest_store, tmp_path, "ops")
    with ops.start_run(log_environment=False, system_metrics=False) as run:
        pass
    ops.delete_runs([run.id], reason="an entry to pin")  # this test may be the module's first
    head = http.get(f"{API}/audit/head").json()
    assert set(head) == {"seq", "hash", "count", "time", "mac"} and head["seq"] >= 1
    pinned = tmp_path / "pinned.json"
    pinned.write_text(json.dumps(head))
    report = ops.verify_audit(anchor=pinned)
    assert report.ok, report.problems
    assert report.anchored_seq is not None and report.anchored_seq >= head["seq"]


def _entries(http: httpx.Client) -> list[httpx.Response]:
    from shipyard.entities import AuditEntry

    return [AuditEntry(**e) for e in http.get(f"{API}/audit").json()["entries"]]  # type: ignore[misc]
