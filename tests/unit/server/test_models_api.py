"""The model registry through the REST API: the SDK works unchanged over a server, the server decides
promotions and approvals, and bad input gets a JSON 4xx."""

from __future__ import annotations

from pathlib import Path

import httpx
import pandas as pd
import pytest
from fastapi import FastAPI
from server_harness import make_settings
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

from shipyard.data.versions import log_dataset
from shipyard.errors import NotFound, PermissionDenied
from shipyard.registry import core, governance
from shipyard.server import create_app
from shipyard.store.rest import RestStore
from shipyard.tracking import Client


@pytest.fixture(scope="module")
def app(server_root: Path) -> FastAPI:
    """This module's server knows who may approve (roles live on the server, not the client)."""
    roles = server_root / "roles.yaml"
    roles.write_text("approver: [bob]\nadmin: [alice]\n")
    return create_app(make_settings(server_root, roles_file=str(roles)))


def _client(rest_store: RestStore, tmp_path: Path, user: str) -> Client:
    settings = make_settings(tmp_path, tracking_uri="http://testserver", user=user)
    return Client.from_stores(settings, rest_store, rest_store.blob_store())


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :6]
    X.columns = [c.replace(" ", "_") for c in X.columns]
    return X.assign(target=y).iloc[:300], X.assign(target=y).iloc[300:]


def test_register_approve_promote_load_and_rollback_over_rest(
    rest_store: RestStore, tmp_path: Path, data: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    alice = _client(rest_store, tmp_path, "alice")
    bob = _client(rest_store, tmp_path, "bob")
    train, test = data
    log_dataset(test, name="bc-holdout", client=alice)
    X = train.drop(columns=["target"])
    v1 = core.register_model(
        RandomForestClassifier(n_estimators=10, random_state=0).fit(X, train["target"]),
        "bc-rest",
        input_example=X.head(),
        client=alice,
    )
    governance.set_policy(
        "bc-rest",
        "evaluation: {dataset: bc-holdout@latest, target: target}\n"
        "gates: [{metric: roc_auc, min: 0.8}]\napprovals: {required: 1, role: approver}\n",
        client=alice,
    )
    blocked = governance.promote("bc-rest", v1.version, client=alice)
    assert blocked.status == "blocked" and "needs 1 more approval" in blocked.reasons[0]
    assert blocked.gates[0].passed and blocked.gates[0].evidence["value"] > 0.8
    with pytest.raises(PermissionDenied, match="four eyes"):
        governance.approve("bc-rest", v1.version, client=alice)
    governance.approve_model("bc-rest", v1.version, reason="ok", client=bob)
    assert governance.promote("bc-rest", v1.version, client=alice).promoted

    v2 = core.register_model(
        DecisionTreeClassifier(max_depth=3).fit(X, train["target"]),
        "bc-rest",
        input_example=X.head(),
        client=alice,
    )
    governance.approve("bc-rest", v2.version, client=bob)
    assert governance.promote("bc-rest", v2.version, client=alice).promoted
    loaded = core.load_model("models:/bc-rest@champion", client=alice)
    assert len(loaded.predict(test.drop(columns=["target"]))) == len(test)
    assert governance.rollback("bc-rest", client=alice) == v1.version
    assert rest_store.get_model_version("bc-rest", "champion").version == v1.version
    evaluations = rest_store.list_model_records("bc-rest", v1.version, "evaluation")
    assert evaluations and evaluations[0].files, "plots are stored with the evaluation"
    assert alice.verify_audit().ok
    actors = {(e.actor, e.action) for e in alice.list_audit(object_type="model_alias")}
    assert ("alice", "alias.set") in actors


def test_evaluate_runs_on_the_server_and_is_stored(
    rest_store: RestStore, tmp_path: Path, data: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    alice = _client(rest_store, tmp_path, "alice")
    train, test = data
    log_dataset(test, name="bc-eval2", client=alice)
    X = train.drop(columns=["target"])
    mv = core.register_model(
        DecisionTreeClassifier(max_depth=2).fit(X, train["target"]),
        "bc-eval",
        input_example=X.head(),
        client=alice,
    )
    report = governance.evaluate(mv, "bc-eval2@v1", "target", client=alice)
    assert 0.5 < report.metrics["roc_auc"] <= 1.0
    (record,) = rest_store.list_model_records("bc-eval", mv.version, "evaluation")
    assert record.actor == "alice" and record.body["dataset"] == "bc-eval2@v1"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/api/v1/models", {"name": "bad name"}, 400),
        ("POST", "/api/v1/models", {"name": "x", "surprise": 1}, 422),
        ("GET", "/api/v1/models/ghost", None, 404),
        ("GET", "/api/v1/models/ghost/versions/champion", None, 404),
        ("PUT", "/api/v1/models/ghost/policy", {"policy_yaml": "gates: [{metric: x}]", "actor": "a"}, 400),
        ("POST", "/api/v1/models/ghost/versions/1/promote", {"actor": "a", "to": "7up"}, 422),
        ("POST", "/api/v1/models/ghost/versions/1/approve", {"actor": ""}, 400),  # no actor, no auth
    ],
)
def test_bad_registry_requests_get_a_json_4xx(
    http: httpx.Client, method: str, path: str, body: object, status: int
) -> None:
    response = http.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]


def test_not_found_maps_back_to_the_sdk_error(rest_store: RestStore) -> None:
    with pytest.raises(NotFound, match="ghost"):
        rest_store.get_registered_model("ghost")
