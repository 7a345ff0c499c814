"""MLflow's registry API on Shipyard's server, on the wire: fields, enums, errors, pages, and the rules
of Shipyard's registry (aliases moved by the promotion policy, content-addressed versions, refusals).

The MLflow model folders here are written the way ``mlflow.sklearn.save_model`` writes them (an
``MLmodel`` file next to the model file); ``tests/integration/test_mlflow_registry_client.py`` drives
the same routes with the real MLflow client.
"""

from __future__ import annotations

import json
import pickle
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import sklearn
import skops.io
import yaml
from fastapi import FastAPI
from server_harness import Borrowed, SyncASGITransport, make_settings
from sklearn.linear_model import LogisticRegression

import shipyard as sy
from shipyard.errors import InvalidInput
from shipyard.registry import governance
from shipyard.server import create_app
from shipyard.server.app import app_state
from shipyard.store import AnnotatesModels
from shipyard.tracking import Client

API = "/api/2.0/mlflow"
X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
Y = [0, 0, 1, 1]


@pytest.fixture(scope="module")
def app(server_root: Path) -> FastAPI:
    roles = server_root / "roles.yaml"
    roles.write_text("approver: [bob]\nadmin: [dave]\n")
    return create_app(make_settings(server_root, roles_file=str(roles)))


@pytest.fixture(scope="module")
def alice(app: FastAPI) -> Client:
    """A client of the server's own stores (as the server's routes use them), acting as alice."""
    state = app_state(app)
    return Client.from_stores(state.settings.replace(user="alice"), state.store, state.blobs)


def as_user(alice: Client, user: str) -> Client:
    return Client.from_stores(alice.settings.replace(user=user), alice.store, alice.blobs)


def mlflow_folder(path: Path, fmt: str = "skops", *, c: float = 1.0, signature: bool = True) -> Path:
    """A folder as ``mlflow.sklearn.save_model(model, path, serialization_format=fmt)`` writes it."""
    model = LogisticRegression(C=c).fit(X, Y)
    path.mkdir(parents=True)
    model_file = "model.skops" if fmt == "skops" else "model.pkl"
    if fmt == "skops":
        skops.io.dump(model, path / model_file)
    else:
        (path / model_file).write_bytes(pickle.dumps(model))
    mlmodel: dict[str, Any] = {
        "flavors": {
            "python_function": {
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "loader_module": "mlflow.sklearn",
                "model_path": model_file,
                "predict_fn": "predict",
                "python_version": "3.11.7",
            },
            "sklearn": {
                "code": None,
                "pickled_model": model_file,
                "serialization_format": fmt,
                "sklearn_version": sklearn.__version__,
                "skops_trusted_types": ["builtins.eval"],  # never trusted: Shipyard decides
            },
        },
        "mlflow_version": "3.17.2",
        "model_uuid": "0" * 32,
    }
    if signature:
        columns = [{"type": "double", "name": n, "required": True} for n in X.columns]
        mlmodel["signature"] = {
            "inputs": json.dumps(columns),
            "outputs": json.dumps([{"type": "long", "required": True}]),
            "params": None,
        }
    (path / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    (path / "requirements.txt").write_text(f"mlflow==3.17.2\nscikit-learn=={sklearn.__version__}\n")
    return path


def logged_run(client: Client, folder: Path, artifact: str = "model") -> str:
    """A run that logged ``folder`` as its artifacts under ``artifact``; its id."""
    with client.start_run(experiment="mlflow-registry", log_environment=False, system_metrics=False) as run:
        client.log_artifact(run.id, folder, artifact)
    return run.id


def ok(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def refused(answer: httpx.Response, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error_code", "message"} and body["error_code"] == code, body
    return str(body["message"])


def create_model(http: httpx.Client, name: str, **extra: Any) -> dict[str, Any]:
    return ok(http.post(f"{API}/registered-models/create", json={"name": name, **extra}))["registered_model"]


def create_version(http: httpx.Client, name: str, source: str, **extra: Any) -> dict[str, Any]:
    body = {"name": name, "source": source, **extra}
    return ok(http.post(f"{API}/model-versions/create", json=body))["model_version"]


@pytest.fixture
def registered(http: httpx.Client, alice: Client, tmp_path: Path) -> str:
    """A new model with one version from a skops MLflow folder; its name."""
    name = f"m-{uuid.uuid4().hex[:12]}"
    create_model(http, name)
    run_id = logged_run(alice, mlflow_folder(tmp_path / "folder"))
    create_version(http, name, f"runs:/{run_id}/model", run_id=run_id)
    return name


# -- registered models ---------------------------------------------------------------------------------
def test_a_created_model_answers_in_mlflows_shape_with_empty_fields_left_out(http: httpx.Client) -> None:
    model = create_model(http, "wire-shape", tags=[{"key": "owner", "value": "wire"}])
    assert model["name"] == "wire-shape" and model["tags"] == [{"key": "owner", "value": "wire"}]
    assert isinstance(model["creation_timestamp"], int) and isinstance(model["last_updated_timestamp"], int)
    assert "description" not in model and "latest_versions" not in model and "aliases" not in model
    got = ok(http.get(f"{API}/registered-models/get", params={"name": "wire-shape"}))["registered_model"]
    assert got == model


def test_creating_a_taken_name_is_resource_already_exists(http: httpx.Client, alice: Client) -> None:
    create_model(http, "taken", description="first")
    message = refused(
        http.post(f"{API}/registered-models/create", json={"name": "taken"}), 400, "RESOURCE_ALREADY_EXISTS"
    )
    assert "taken" in message
    assert sy.get_registered_model("taken", client=alice).description == "first"


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "registered-models/get", {"name": "nope"}),
        ("GET", "model-versions/get", {"name": "nope", "version": "1"}),
        ("GET", "registered-models/alias", {"name": "nope", "alias": "champion"}),
        ("GET", "model-versions/get-download-uri", {"name": "nope", "version": "1"}),
    ],
)
def test_unknown_models_are_resource_does_not_exist(
    http: httpx.Client, method: str, path: str, params: dict[str, str]
) -> None:
    assert "nope" in refused(
        http.request(method, f"{API}/{path}", params=params), 404, "RESOURCE_DOES_NOT_EXIST"
    )


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("registered-models/get", {}),
        ("model-versions/get", {"name": "x", "version": "seven"}),
        ("registered-models/search", {"max_results": "0"}),
        ("registered-models/search", {"max_results": "1001"}),
        ("registered-models/search", {"max_results": "many"}),
        ("registered-models/search", {"filter": "name LIKE"}),
        ("registered-models/search", {"filter": "description = 'x'"}),
        ("registered-models/search", {"filter": "name = 'a' OR name = 'b'"}),
        ("registered-models/search", {"filter": "tags.team > 'a'"}),
        ("registered-models/search", {"order_by": "owner ASC"}),
        ("registered-models/search", {"page_token": "not-a-token"}),
        ("model-versions/search", {"filter": "version_number = 'one'"}),
        ("model-versions/search", {"filter": "source_path IN ('a')"}),
    ],
)
def test_bad_input_is_invalid_parameter_value_never_a_500(
    http: httpx.Client, path: str, params: dict[str, str]
) -> None:
    refused(http.get(f"{API}/{path}", params=params), 400, "INVALID_PARAMETER_VALUE")


def test_descriptions_and_tags_change_in_place_and_are_shipyards(
    http: httpx.Client, registered: str, alice: Client
) -> None:
    name, server = registered, alice
    model = ok(
        http.patch(f"{API}/registered-models/update", json={"name": name, "description": "churn model"})
    )
    assert model["registered_model"]["description"] == "churn model"
    ok(http.post(f"{API}/registered-models/set-tag", json={"name": name, "key": "team", "value": "risk"}))
    version = ok(
        http.patch(f"{API}/model-versions/update", json={"name": name, "version": "1", "description": "v1"})
    )
    assert version["model_version"]["description"] == "v1"
    ok(
        http.post(
            f"{API}/model-versions/set-tag", json={"name": name, "version": "1", "key": "ok", "value": "yes"}
        )
    )
    mv = sy.get_model_version(f"models:/{name}/1", client=server)
    assert (mv.description, mv.tags) == ("v1", {"ok": "yes"})
    assert sy.get_registered_model(name, client=server).tags == {"team": "risk"}
    ok(
        http.request(
            "DELETE", f"{API}/model-versions/delete-tag", json={"name": name, "version": "1", "key": "ok"}
        )
    )
    ok(http.request("DELETE", f"{API}/registered-models/delete-tag", json={"name": name, "key": "team"}))
    ok(http.request("DELETE", f"{API}/registered-models/delete-tag", json={"name": name, "key": "never-set"}))
    assert sy.get_model_version(f"models:/{name}/1", client=server).tags == {}
    actions = [e.action for e in server.list_audit(object_id=name)] + [
        e.action for e in server.list_audit(object_id=f"{name}/1")
    ]
    for action in (
        "model.describe",
        "model.tag",
        "model.untag",
        "model_version.describe",
        "model_version.tag",
    ):
        assert action in actions


def test_a_tag_key_longer_than_mlflows_limit_is_refused(http: httpx.Client, registered: str) -> None:
    answer = http.post(
        f"{API}/registered-models/set-tag", json={"name": registered, "key": "k" * 251, "value": ""}
    )
    assert "250" in refused(answer, 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize(
    ("method", "path", "body", "reason"),
    [
        ("POST", "registered-models/rename", {"new_name": "other"}, "rename"),
        ("DELETE", "registered-models/delete", {}, "delete registered models"),
        ("DELETE", "model-versions/delete", {"version": "1"}, "delete model versions"),
        (
            "POST",
            "model-versions/transition-stage",
            {"version": "1", "stage": "Production"},
            "set_registered_model_alias",
        ),
    ],
)
def test_what_shipyard_does_not_do_is_refused_with_the_reason_and_the_way_out(
    http: httpx.Client,
    registered: str,
    alice: Client,
    method: str,
    path: str,
    body: dict[str, str],
    reason: str,
) -> None:
    message = refused(
        http.request(method, f"{API}/{path}", json={"name": registered, **body}), 400, "BAD_REQUEST"
    )
    assert message.startswith("Shipyard does not") and reason in message
    assert sy.get_model_version(f"models:/{registered}/1", client=alice).version == 1
    missing = http.request(method, f"{API}/{path}", json={"name": "nope", **body})
    refused(missing, 404, "RESOURCE_DOES_NOT_EXIST")  # an unknown model is named before the refusal


# -- versions ------------------------------------------------------------------------------------------
def test_a_version_from_a_runs_folder_is_a_shipyard_version_that_loads_safely(
    http: httpx.Client, alice: Client, tmp_path: Path
) -> None:
    create_model(http, "from-run")
    run_id = logged_run(alice, mlflow_folder(tmp_path / "m"))
    mv = create_version(http, "from-run", f"runs:/{run_id}/model", tags=[{"key": "stage", "value": "dev"}])
    assert mv["version"] == "1" and mv["status"] == "READY" and mv["current_stage"] == "None"
    assert mv["source"] == f"runs:/{run_id}/model" and mv["run_id"] == run_id
    assert mv["tags"] == [{"key": "stage", "value": "dev"}] and "aliases" not in mv
    shipyard_mv = sy.get_model_version("models:/from-run/1", client=alice)
    assert shipyard_mv.flavor == "sklearn" and shipyard_mv.run_id == run_id
    assert {"MLmodel", "model.skops", "requirements.txt", "shipyard-model.yaml"} == {
        f.path for f in shipyard_mv.files
    }
    assert [c["name"] for c in shipyard_mv.signature["inputs"]] == ["a", "b"]
    loaded = sy.load_model("models:/from-run/1", client=alice)
    expected = LogisticRegression().fit(X, Y).predict(X)
    assert list(loaded.predict(X)) == list(expected)
    assert "builtins.eval" not in loaded.trusted_unsafe  # the folder's skops_trusted_types are ignored


def test_the_run_artifact_uri_mlflow_register_model_sends_is_the_same_version(
    http: httpx.Client, alice: Client, tmp_path: Path
) -> None:
    create_model(http, "by-uri")
    run_id = logged_run(alice, mlflow_folder(tmp_path / "m"), artifact="nested/model")
    first = create_version(http, "by-uri", f"mlflow-artifacts:/7/{run_id}/artifacts/nested/model")
    again = create_version(
        http, "by-uri", f"runs:/{run_id}/nested/model", tags=[{"key": "again", "value": "1"}]
    )
    assert first["version"] == again["version"] == "1", "content-addressed: the same files are one version"
    assert {"key": "again", "value": "1"} in again["tags"]
    assert ok(
        http.get(f"{API}/model-versions/get-download-uri", params={"name": "by-uri", "version": "1"})
    ) == {"artifact_uri": f"runs:/{run_id}/nested/model"}


@pytest.mark.parametrize(
    ("source", "status", "code"),
    [
        ("s3://bucket/model", 400, "INVALID_PARAMETER_VALUE"),
        ("/tmp/local/model", 400, "INVALID_PARAMETER_VALUE"),
        ("runs:/{run}", 400, "INVALID_PARAMETER_VALUE"),
        ("runs:/{run}/elsewhere", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("runs:/" + "f" * 32 + "/model", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("models:/m-0123456789abcdef", 400, "INVALID_PARAMETER_VALUE"),
    ],
)
def test_a_source_that_is_not_a_runs_model_folder_is_refused(
    http: httpx.Client, alice: Client, tmp_path: Path, source: str, status: int, code: str
) -> None:
    create_model(http, f"bad-source-{status}-{code}-{len(source)}")
    run_id = logged_run(alice, mlflow_folder(tmp_path / "m"))
    answer = http.post(
        f"{API}/model-versions/create",
        json={"name": f"bad-source-{status}-{code}-{len(source)}", "source": source.format(run=run_id)},
    )
    refused(answer, status, code)


def test_a_version_needs_an_existing_model_and_a_matching_run_id(
    http: httpx.Client, alice: Client, tmp_path: Path
) -> None:
    run_id = logged_run(alice, mlflow_folder(tmp_path / "m"))
    absent = http.post(
        f"{API}/model-versions/create", json={"name": "absent", "source": f"runs:/{run_id}/model"}
    )
    refused(absent, 404, "RESOURCE_DOES_NOT_EXIST")
    create_model(http, "run-id-check")
    other = "e" * 32
    body = {"name": "run-id-check", "source": f"runs:/{run_id}/model", "run_id": other}
    assert other in refused(
        http.post(f"{API}/model-versions/create", json=body), 400, "INVALID_PARAMETER_VALUE"
    )


def test_a_version_of_another_model_is_a_source(http: httpx.Client, registered: str) -> None:
    create_model(http, "copy-of-registered")
    copy = create_version(http, "copy-of-registered", f"models:/{registered}/1")
    original = ok(http.get(f"{API}/model-versions/get", params={"name": registered, "version": "1"}))
    assert copy["source"] == original["model_version"]["source"] and copy["version"] == "1"


def test_a_folder_without_a_signature_is_refused_by_shipyards_rule(
    http: httpx.Client, alice: Client, tmp_path: Path
) -> None:
    create_model(http, "no-signature")
    run_id = logged_run(alice, mlflow_folder(tmp_path / "m", signature=False))
    answer = http.post(
        f"{API}/model-versions/create", json={"name": "no-signature", "source": f"runs:/{run_id}/model"}
    )
    assert "input_example" in refused(answer, 400, "INVALID_PARAMETER_VALUE")


def test_a_prompt_is_refused(http: httpx.Client) -> None:
    body = {"name": "a-prompt", "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}]}
    assert "prompt" in refused(http.post(f"{API}/registered-models/create", json=body), 400, "BAD_REQUEST")


def test_a_version_from_a_model_object_has_no_download_uri(http: httpx.Client, alice: Client) -> None:
    model = LogisticRegression().fit(X, Y)
    mv = sy.register_model(model, "object-only", input_example=X, client=alice)
    got = ok(
        http.get(f"{API}/model-versions/get", params={"name": "object-only", "version": str(mv.version)})
    )
    assert "source" not in got["model_version"]
    answer = http.get(
        f"{API}/model-versions/get-download-uri", params={"name": "object-only", "version": "1"}
    )
    assert "sy.load_model" in refused(answer, 404, "RESOURCE_DOES_NOT_EXIST")


# -- latest versions (MLflow's deprecated stages) ---------------------------------------------------------
@pytest.mark.parametrize(
    ("stages", "found"),
    [([], True), (["None"], True), (["none", "Production"], True), (["Production", "Staging"], False)],
)
def test_every_version_is_in_stage_none_for_get_latest_versions(
    http: httpx.Client, registered: str, stages: list[str], found: bool
) -> None:
    by_post = ok(
        http.post(f"{API}/registered-models/get-latest-versions", json={"name": registered, "stages": stages})
    )
    by_get = ok(
        http.get(
            f"{API}/registered-models/get-latest-versions", params={"name": registered, "stages": stages}
        )
    )
    assert by_post == by_get
    assert [v["version"] for v in by_post.get("model_versions", [])] == (["1"] if found else [])


def test_an_unknown_stage_is_refused(http: httpx.Client, registered: str) -> None:
    answer = http.post(
        f"{API}/registered-models/get-latest-versions", json={"name": registered, "stages": ["Prod"]}
    )
    assert "Archived" in refused(answer, 400, "INVALID_PARAMETER_VALUE")


# -- aliases -------------------------------------------------------------------------------------------
def test_an_alias_set_through_mlflow_is_shipyards_and_the_other_way_round(
    http: httpx.Client, registered: str, alice: Client
) -> None:
    name = registered
    ok(http.post(f"{API}/registered-models/alias", json={"name": name, "alias": "champion", "version": "1"}))
    assert sy.get_registered_model(name, client=alice).aliases == {"champion": 1}
    (record,) = sy.list_model_records(name, kind="promotion", client=alice)
    assert record.body["status"] == "promoted", "the move went through promote_model"
    ok(http.post(f"{API}/registered-models/alias", json={"name": name, "alias": "champion", "version": "1"}))
    assert len(sy.list_model_records(name, kind="promotion", client=alice)) == 1, (
        "setting it again is a no-op"
    )
    sy.promote_model(name, 1, alias="challenger", client=alice)
    by_alias = ok(http.get(f"{API}/registered-models/alias", params={"name": name, "alias": "challenger"}))
    assert by_alias["model_version"]["version"] == "1"
    assert by_alias["model_version"]["aliases"] == ["challenger", "champion"]
    model = ok(http.get(f"{API}/registered-models/get", params={"name": name}))["registered_model"]
    assert model["aliases"] == [
        {"alias": "challenger", "version": "1"},
        {"alias": "champion", "version": "1"},
    ]


def test_a_failing_gate_refuses_the_alias_with_the_gates_reason(
    http: httpx.Client, registered: str, alice: Client
) -> None:
    name = registered
    governance.set_promotion_policy(
        name, {"gates": [{"max_size_mb": 0.000001}]}, client=as_user(alice, "dave")
    )
    answer = http.post(
        f"{API}/registered-models/alias", json={"name": name, "alias": "champion", "version": 1}
    )
    message = refused(answer, 400, "INVALID_STATE")
    assert "gate failed: model size ≤ 1e-06 MB" in message and "champion" in message
    assert sy.get_registered_model(name, client=alice).aliases == {}
    (record,) = sy.list_model_records(name, kind="promotion", client=alice)
    assert record.body["status"] == "blocked"


def test_missing_approvals_refuse_the_alias_naming_them(
    http: httpx.Client, registered: str, alice: Client
) -> None:
    governance.set_promotion_policy(registered, {"approvals": {"required": 1}}, client=as_user(alice, "dave"))
    answer = http.post(
        f"{API}/registered-models/alias", json={"name": registered, "alias": "prod", "version": "1"}
    )
    assert "needs 1 more approval(s) from role 'approver'" in refused(answer, 400, "INVALID_STATE")
    governance.approve_model(registered, 1, reason="looked at it", client=as_user(alice, "bob"))
    ok(
        http.post(
            f"{API}/registered-models/alias", json={"name": registered, "alias": "prod", "version": "1"}
        )
    )
    assert sy.get_registered_model(registered, client=alice).aliases == {"prod": 1}


def test_deleting_an_alias_is_allowed_only_without_a_policy(
    http: httpx.Client, registered: str, alice: Client
) -> None:
    name = registered
    sy.promote_model(name, 1, alias="staging", client=alice)
    sy.promote_model(name, 1, alias="champion", client=alice)
    ok(http.request("DELETE", f"{API}/registered-models/alias", json={"name": name, "alias": "staging"}))
    ok(http.request("DELETE", f"{API}/registered-models/alias", json={"name": name, "alias": "staging"}))
    assert sy.get_registered_model(name, client=alice).aliases == {"champion": 1}
    history = alice.store.list_alias_history(name, "staging")
    assert [(m.previous, m.version) for m in history] == [(None, 1), (1, None)]
    governance.set_promotion_policy(name, {"gates": [{"max_size_mb": 100}]}, client=as_user(alice, "dave"))
    answer = http.request(
        "DELETE", f"{API}/registered-models/alias", json={"name": name, "alias": "champion"}
    )
    assert "promotion policy" in refused(answer, 400, "INVALID_STATE")
    assert sy.get_registered_model(name, client=alice).aliases == {"champion": 1}


@pytest.mark.parametrize("alias", ["v1", "V12", "latest", "7up", "has space", ""])
def test_aliases_that_read_as_versions_or_break_references_are_refused(
    http: httpx.Client, registered: str, alias: str
) -> None:
    answer = http.post(
        f"{API}/registered-models/alias", json={"name": registered, "alias": alias, "version": "1"}
    )
    refused(answer, 400, "INVALID_PARAMETER_VALUE")
    refused(
        http.get(f"{API}/registered-models/alias", params={"name": registered, "alias": alias}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_an_alias_to_a_missing_version_is_resource_does_not_exist(
    http: httpx.Client, registered: str
) -> None:
    answer = http.post(
        f"{API}/registered-models/alias", json={"name": registered, "alias": "champion", "version": "9"}
    )
    refused(answer, 404, "RESOURCE_DOES_NOT_EXIST")


# -- search --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def catalogue(app: FastAPI, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Models search-a, search-b (tag team=risk), Search-c; search-a has versions 1-3, one run each."""
    state = app_state(app)
    client = Client.from_stores(state.settings.replace(user="carol"), state.store, state.blobs)
    root = tmp_path_factory.mktemp("catalogue")
    runs: dict[str, str] = {}
    for name in ("search-b", "Search-c", "search-a"):
        client.store.create_registered_model(name, created_by="carol")
    for i in (1, 2, 3):
        run_id = logged_run(client, mlflow_folder(root / f"m{i}", c=float(i)))
        sy.register_model(run_id, "search-a", tags={"rank": str(i)}, client=client)
        runs[str(i)] = run_id
    assert isinstance(client.store, AnnotatesModels)
    client.store.set_model_tag("search-b", None, "team", "risk", "carol")
    return runs


def _names(answer: dict[str, Any], key: str = "registered_models") -> list[str]:
    return [m["name"] for m in answer.get(key, [])]


@pytest.mark.parametrize(
    ("flt", "names"),
    [
        ("name LIKE 'search-%'", ["search-a", "search-b"]),
        ("name ILIKE 'search-%'", ["Search-c", "search-a", "search-b"]),
        ("name = 'search-b'", ["search-b"]),
        ("name != 'search-b' AND name ILIKE 'search%'", ["Search-c", "search-a"]),
        ("name IN ('search-a', 'Search-c')", ["Search-c", "search-a"]),
        ("tags.team = 'risk'", ["search-b"]),
        ("tag.`team` LIKE 'r%' AND name LIKE 'search_b'", ["search-b"]),
        (
            "name ILIKE 'search%' AND tag.`mlflow.prompt.is_prompt` != 'true'",
            ["Search-c", "search-a", "search-b"],
        ),
    ],
)
def test_search_registered_models_filters_the_mlflow_way(
    http: httpx.Client, catalogue: dict[str, str], flt: str, names: list[str]
) -> None:
    assert _names(ok(http.get(f"{API}/registered-models/search", params={"filter": flt}))) == names


def test_search_registered_models_orders_and_pages(http: httpx.Client, catalogue: dict[str, str]) -> None:
    params: dict[str, Any] = {"filter": "name ILIKE 'search-%'", "order_by": ["name DESC"], "max_results": 2}
    first = ok(http.get(f"{API}/registered-models/search", params=params))
    assert _names(first) == ["search-b", "search-a"] and first["next_page_token"]
    second = ok(
        http.get(f"{API}/registered-models/search", params={**params, "page_token": first["next_page_token"]})
    )
    assert _names(second) == ["Search-c"] and "next_page_token" not in second
    latest = [m.get("latest_versions", []) for m in first["registered_models"]]
    assert [[v["version"] for v in vs] for vs in latest] == [[], ["3"]]


def test_search_model_versions_by_name_run_id_version_and_tags(
    http: httpx.Client, catalogue: dict[str, str]
) -> None:
    def versions(flt: str, **params: Any) -> list[str]:
        found = ok(http.get(f"{API}/model-versions/search", params={"filter": flt, **params}))
        return [v["version"] for v in found.get("model_versions", [])]

    assert versions("name = 'search-a'") == ["3", "2", "1"]  # MLflow's default: newest first
    assert versions("name='search-a'", order_by=["version_number ASC"]) == ["1", "2", "3"]
    assert versions(f"run_id = '{catalogue['2']}'") == ["2"]
    assert versions(f"run_id IN ('{catalogue['1']}', '{catalogue['3']}')", order_by="version_number") == [
        "1",
        "3",
    ]
    assert versions("name = 'search-a' AND version_number >= 2 AND tags.rank != '3'") == ["2"]
    assert versions(f"source_path = 'runs:/{catalogue['1']}/model'") == ["1"]
    assert versions("name = 'no-such-model'") == []
    page = ok(
        http.get(f"{API}/model-versions/search", params={"filter": "name='search-a'", "max_results": 1})
    )
    assert [v["version"] for v in page["model_versions"]] == ["3"] and page["next_page_token"]


# -- MLflow's web UI prefix and authentication -------------------------------------------------------------
def test_the_ajax_api_prefix_serves_the_same_routes(http: httpx.Client, registered: str) -> None:
    api = ok(http.get(f"{API}/registered-models/get", params={"name": registered}))
    assert ok(http.get("/ajax-api/2.0/mlflow/registered-models/get", params={"name": registered})) == api


@pytest.fixture
def auth_http(tmp_path: Path) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    app = create_app(make_settings(tmp_path, auth=True))
    store = app_state(app).store
    tokens = {}
    for user, roles in (("alice", ["scientist"]), ("mallory", ["scientist"]), ("vic", ["viewer"])):
        store.create_user(user, roles, "test")  # type: ignore[attr-defined]
        tokens[user] = store.create_token(user, "t", "test")[1]  # type: ignore[attr-defined]
    transport = SyncASGITransport(app)
    with httpx.Client(transport=Borrowed(transport), base_url="http://testserver") as client:
        yield client, tokens
    transport.close()


def test_with_auth_the_creator_owns_the_model_and_others_cannot_change_it(
    auth_http: tuple[httpx.Client, dict[str, str]],
) -> None:
    http, tokens = auth_http

    def as_(user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[user]}"}

    model = ok(http.post(f"{API}/registered-models/create", json={"name": "owned"}, headers=as_("alice")))
    assert model["registered_model"]["user_id"] == "alice"
    tag = {"name": "owned", "key": "k", "value": "v"}
    refused(
        http.post(f"{API}/registered-models/set-tag", json=tag, headers=as_("mallory")),
        403,
        "PERMISSION_DENIED",
    )
    refused(
        http.post(f"{API}/registered-models/set-tag", json=tag, headers=as_("vic")), 403, "PERMISSION_DENIED"
    )
    refused(http.post(f"{API}/registered-models/set-tag", json=tag), 401, "UNAUTHENTICATED")
    ok(http.post(f"{API}/registered-models/set-tag", json=tag, headers=as_("alice")))
    assert ok(http.get(f"{API}/registered-models/get", params={"name": "owned"}, headers=as_("vic")))


def test_refused_load_of_an_unsupported_mlflow_folder_says_why(
    http: httpx.Client, alice: Client, tmp_path: Path
) -> None:
    folder = tmp_path / "pyfunc"
    folder.mkdir()
    (folder / "python_model.pkl").write_bytes(pickle.dumps({"not": "a model"}))
    mlmodel = {
        "flavors": {
            "python_function": {"loader_module": "mlflow.pyfunc.model", "python_model": "python_model.pkl"}
        },
        "signature": {"inputs": json.dumps([{"type": "double", "name": "a"}]), "outputs": None},
    }
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    create_model(http, "custom-pyfunc")
    create_version(http, "custom-pyfunc", f"runs:/{logged_run(alice, folder)}/model")
    assert sy.get_model_version("models:/custom-pyfunc/1", client=alice).flavor == "mlflow"
    with pytest.raises(InvalidInput, match=r"flavors \[python_function\].*mlflow.pyfunc.load_model"):
        sy.load_model("models:/custom-pyfunc/1", client=alice)
