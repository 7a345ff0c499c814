"""MLflow 3's logged models on the Shipyard server, on the wire: what MLflow's client sends to
``/logged-models/...`` and ``/runs/outputs``, what it reads back, and how a logged model's folder
(the run's artifacts under ``models/<id>``) registers through the registry API.

``tests/integration/test_mlflow_models_client.py`` drives the same routes with the real client.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import sklearn
import skops.io
import yaml
from fastapi import FastAPI
from sklearn.linear_model import LogisticRegression

from shipyard.server.app import app_state
from shipyard.store import KeepsLoggedModels

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
Y = [0, 0, 1, 1]


def ok(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def refused(answer: httpx.Response, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error_code", "message"} and body["error_code"] == code, body
    return str(body["message"])


def new_run(http: httpx.Client, experiment: str | None = None) -> tuple[str, str]:
    """A new run in a new experiment (or ``experiment``): (experiment id, run id)."""
    exp_id = (
        experiment
        or ok(http.post(f"{API}/experiments/create", json={"name": f"lm-{uuid.uuid4().hex[:10]}"}))[
            "experiment_id"
        ]
    )
    run = ok(http.post(f"{API}/runs/create", json={"experiment_id": exp_id}))["run"]
    return exp_id, run["info"]["run_id"]


def create(http: httpx.Client, exp_id: str, run_id: str, **extra: Any) -> dict[str, Any]:
    body = {"experiment_id": exp_id, "source_run_id": run_id, "name": "model", **extra}
    model: dict[str, Any] = ok(http.post(f"{API}/logged-models", json=body))["model"]
    return model


def finalize(http: httpx.Client, model_id: str, status: str | int = "LOGGED_MODEL_READY") -> dict[str, Any]:
    answer = http.patch(f"{API}/logged-models/{model_id}", json={"model_id": model_id, "status": status})
    model: dict[str, Any] = ok(answer)["model"]
    return model


def upload_folder(http: httpx.Client, artifact_uri: str, tmp_path: Path) -> None:
    """PUT a folder as ``mlflow.sklearn.save_model(..., serialization_format="skops")`` writes it to
    the model's ``artifact_uri``, file by file, as MLflow's client does."""
    folder = tmp_path / "model"
    folder.mkdir()
    skops.io.dump(LogisticRegression().fit(X, Y), folder / "model.skops")
    columns = [{"type": "double", "name": n, "required": True} for n in X.columns]
    mlmodel = {
        "flavors": {
            "python_function": {"loader_module": "mlflow.sklearn", "model_path": "model.skops"},
            "sklearn": {
                "pickled_model": "model.skops",
                "serialization_format": "skops",
                "sklearn_version": sklearn.__version__,
            },
        },
        "signature": {"inputs": json.dumps(columns), "outputs": json.dumps([{"type": "long"}])},
    }
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    base = artifact_uri.removeprefix("mlflow-artifacts:/")
    for file in folder.iterdir():
        ok(http.put(f"{ARTIFACTS}/{base}/{file.name}", content=file.read_bytes()))


# -- create, get, finalize ------------------------------------------------------------------------
def test_a_logged_model_is_its_runs_and_answers_in_mlflows_shape(http: httpx.Client) -> None:
    exp_id, run_id = new_run(http)
    model = create(
        http,
        exp_id,
        run_id,
        model_type="classifier",
        params=[{"key": "C", "value": "1.0"}],
        tags=[{"key": "mlflow.user", "value": "ann"}],
    )
    info = model["info"]
    model_id = info["model_id"]
    assert model_id.startswith("m-") and len(model_id) == 34
    assert info["experiment_id"] == exp_id and info["source_run_id"] == run_id
    assert info["artifact_uri"] == f"mlflow-artifacts:/{exp_id}/{run_id}/artifacts/models/{model_id}"
    assert (info["status"], info["name"], info["model_type"]) == (
        "LOGGED_MODEL_PENDING",
        "model",
        "classifier",
    )
    assert isinstance(info["creation_timestamp_ms"], int)
    assert info["tags"] == [{"key": "mlflow.user", "value": "ann"}]
    assert model["data"] == {"params": [{"key": "C", "value": "1.0"}]}  # no metrics: left out
    assert finalize(http, model_id)["info"]["status"] == "LOGGED_MODEL_READY"
    assert finalize(http, model_id, 3)["info"]["status"] == "LOGGED_MODEL_UPLOAD_FAILED"  # by number too
    got = ok(http.get(f"{API}/logged-models/{model_id}"))["model"]
    assert got["info"]["status"] == "LOGGED_MODEL_UPLOAD_FAILED"
    assert got["info"]["last_updated_timestamp_ms"] >= info["creation_timestamp_ms"]


def test_a_model_without_a_name_gets_one(http: httpx.Client) -> None:
    exp_id, run_id = new_run(http)
    body = {"experiment_id": exp_id, "source_run_id": run_id}
    assert ok(http.post(f"{API}/logged-models", json=body))["model"]["info"]["name"].startswith("model-")


@pytest.mark.parametrize(
    ("body", "status", "code", "reason"),
    [
        ({"source_run_id": "RUN"}, 400, "INVALID_PARAMETER_VALUE", "required parameter 'experiment_id'"),
        ({"experiment_id": "EXP"}, 400, "INVALID_PARAMETER_VALUE", "needs a source run"),
        ({"experiment_id": "EXP", "source_run_id": "f" * 32}, 404, "RESOURCE_DOES_NOT_EXIST", "not found"),
        ({"experiment_id": "999", "source_run_id": "RUN"}, 400, "INVALID_PARAMETER_VALUE", "not 999"),
        (
            {"experiment_id": "EXP", "source_run_id": "RUN", "name": "a/b"},
            400,
            "INVALID_PARAMETER_VALUE",
            "a/b",
        ),
        (
            {"experiment_id": "EXP", "source_run_id": "RUN", "params": [{"key": "k", "value": "v" * 6001}]},
            400,
            "INVALID_PARAMETER_VALUE",
            "Param value.* 6000",
        ),
    ],
)
def test_what_create_refuses_says_why(
    http: httpx.Client, body: dict[str, Any], status: int, code: str, reason: str
) -> None:
    exp_id, run_id = new_run(http)
    sent = {
        k: v.replace("EXP", exp_id).replace("RUN", run_id) if isinstance(v, str) else v
        for k, v in body.items()
    }
    message = refused(http.post(f"{API}/logged-models", json=sent), status, code)
    assert re.search(reason, message), message


def test_a_deleted_run_takes_no_model_and_unknown_models_are_not_found(http: httpx.Client) -> None:
    exp_id, run_id = new_run(http)
    ok(http.post(f"{API}/runs/delete", json={"run_id": run_id}))
    body = {"experiment_id": exp_id, "source_run_id": run_id}
    refused(http.post(f"{API}/logged-models", json=body), 400, "INVALID_STATE")
    ghost = "m-" + "0" * 32
    assert ghost in refused(http.get(f"{API}/logged-models/{ghost}"), 404, "RESOURCE_DOES_NOT_EXIST")
    refused(http.patch(f"{API}/logged-models/{ghost}", json={"status": 2}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_finalize_takes_mlflows_statuses_only(http: httpx.Client) -> None:
    exp_id, run_id = new_run(http)
    model_id = create(http, exp_id, run_id)["info"]["model_id"]
    for bad in ("READY", 7, "LOGGED_MODEL_STATUS_UNSPECIFIED", None):
        answer = http.patch(f"{API}/logged-models/{model_id}", json={"status": bad})
        assert "LOGGED_MODEL_READY" in refused(answer, 400, "INVALID_PARAMETER_VALUE")


# -- tags, params, delete -------------------------------------------------------------------------
def test_tags_params_and_deletion(http: httpx.Client, app: FastAPI) -> None:
    exp_id, run_id = new_run(http)
    model_id = create(http, exp_id, run_id, params=[{"key": "C", "value": "1"}])["info"]["model_id"]
    tags = {"tags": [{"key": "stage", "value": "dev"}, {"key": "team", "value": "risk"}]}
    ok(http.patch(f"{API}/logged-models/{model_id}/tags", json=tags))
    ok(http.delete(f"{API}/logged-models/{model_id}/tags/team"))
    refused(http.delete(f"{API}/logged-models/{model_id}/tags/team"), 404, "RESOURCE_DOES_NOT_EXIST")
    params = {"model_id": model_id, "params": [{"key": "C", "value": "1"}, {"key": "penalty", "value": "l2"}]}
    ok(http.post(f"{API}/logged-models/{model_id}/params", json=params))
    changed = {"params": [{"key": "C", "value": "2"}]}
    message = refused(
        http.post(f"{API}/logged-models/{model_id}/params", json=changed), 400, "INVALID_PARAMETER_VALUE"
    )
    assert "immutable" in message
    got = ok(http.get(f"{API}/logged-models/{model_id}"))["model"]
    assert got["info"]["tags"] == [{"key": "stage", "value": "dev"}]
    assert got["data"]["params"] == [{"key": "C", "value": "1"}, {"key": "penalty", "value": "l2"}]

    ok(http.request("DELETE", f"{API}/logged-models/{model_id}", json={"model_id": model_id}))
    refused(http.get(f"{API}/logged-models/{model_id}"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert ok(http.get(f"{API}/logged-models/{model_id}", params={"allow_deleted": "true"}))["model"]
    entries = app_state(app).store.list_audit(object_type="logged_model", object_id=model_id)
    assert [e.action for e in entries] == ["logged_model.delete"]


# -- search ---------------------------------------------------------------------------------------
def _search(http: httpx.Client, exp_id: str, **body: Any) -> dict[str, Any]:
    return ok(http.post(f"{API}/logged-models/search", json={"experiment_ids": [exp_id], **body}))


def _names(answer: dict[str, Any]) -> list[str]:
    return [m["info"]["name"] for m in answer.get("models", [])]


@pytest.fixture
def three(http: httpx.Client) -> str:
    """An experiment with models ``a`` (ready, acc 0.7), ``b`` (ready, acc 0.9 on dataset ``val``)
    and ``c`` (pending, no metric); its id."""
    exp_id, run_id = new_run(http)
    for name, acc, dataset in (("a", 0.7, ""), ("b", 0.9, "val"), ("c", None, "")):
        params = [{"key": "depth", "value": {"a": "2", "b": "3", "c": "1"}[name]}]
        model_id = create(
            http, exp_id, run_id, name=name, params=params, tags=[{"key": "kind", "value": name * 2}]
        )["info"]["model_id"]
        if name != "c":
            finalize(http, model_id)
        if acc is not None:
            metric = {"key": "acc", "value": acc, "timestamp": 5, "step": 1, "model_id": model_id}
            if dataset:
                metric |= {"dataset_name": dataset, "dataset_digest": "d1"}
            ok(http.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": [metric]}))
    return exp_id


@pytest.mark.parametrize(
    ("filter_", "names"),
    [
        ("", ["c", "b", "a"]),  # newest first
        ("name = 'a'", ["a"]),
        ("name IN ('a', 'c')", ["c", "a"]),
        ("name LIKE 'b%' OR name = 'a'", None),
        ("status = 'READY'", ["b", "a"]),
        ("metrics.acc > 0.8", ["b"]),
        ("metrics.acc >= 0.1", ["b", "a"]),
        ("tags.kind ILIKE 'A%'", ["a"]),
        ("params.depth = '2'", ["a"]),
        ("tags.kind IS NULL", []),
        ("creation_timestamp > 0 AND model_type = ''", ["c", "b", "a"]),
    ],
)
def test_search_filters_as_mlflow_does(
    http: httpx.Client, three: str, filter_: str, names: list[str] | None
) -> None:
    answer = http.post(f"{API}/logged-models/search", json={"experiment_ids": [three], "filter": filter_})
    if names is None:
        assert "OR" in refused(answer, 400, "INVALID_PARAMETER_VALUE")
    else:
        assert _names(ok(answer)) == names


def test_search_orders_pages_and_reads_datasets(http: httpx.Client, three: str) -> None:
    by_acc = _search(http, three, order_by=[{"field_name": "metrics.acc", "ascending": False}])
    assert _names(by_acc) == ["b", "a", "c"]  # a model without the metric comes last
    assert _names(_search(http, three, order_by=[{"field_name": "name"}])) == ["a", "b", "c"]
    assert _names(_search(http, three, datasets=[{"dataset_name": "val"}])) == ["b"]
    on_val = _search(
        http, three, filter="metrics.acc > 0.1", datasets=[{"dataset_name": "val", "dataset_digest": "x"}]
    )
    assert _names(on_val) == []  # the digest does not match
    pages, token = [], None
    while True:
        answer = _search(http, three, max_results=2, **({"page_token": token} if token else {}))
        pages.append(_names(answer))
        token = answer.get("next_page_token")
        if not token:
            break
    assert pages == [["c", "b"], ["a"]]
    bad = http.post(
        f"{API}/logged-models/search",
        json={"experiment_ids": [three], "order_by": [{"field_name": "params.x"}]},
    )
    assert "Invalid order by field name" in refused(bad, 400, "INVALID_PARAMETER_VALUE")
    refused(http.post(f"{API}/logged-models/search", json={}), 400, "INVALID_PARAMETER_VALUE")
    refused(
        http.post(f"{API}/logged-models/search", json={"experiment_ids": [three], "max_results": 0}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_search_reads_experiment_0_as_the_default_experiment(http: httpx.Client) -> None:
    run = ok(http.post(f"{API}/runs/create", json={"experiment_id": "0"}))["run"]["info"]
    model_id = create(http, "0", run["run_id"], name="in-default")["info"]["model_id"]
    found = _search(http, "0", filter="name = 'in-default'")
    assert [m["info"]["model_id"] for m in found["models"]] == [model_id]


# -- runs: outputs and metrics --------------------------------------------------------------------
def test_a_run_lists_the_models_it_logged_as_outputs(http: httpx.Client) -> None:
    exp_id, run_id = new_run(http)
    model_id = create(http, exp_id, run_id)["info"]["model_id"]
    assert "outputs" not in ok(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]
    ok(
        http.post(
            f"{API}/runs/outputs", json={"run_id": run_id, "models": [{"model_id": model_id, "step": 4}]}
        )
    )
    got = ok(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]
    assert got["outputs"] == {"model_outputs": [{"model_id": model_id, "step": 4}]}
    _, other = new_run(http, exp_id)
    answer = http.post(f"{API}/runs/outputs", json={"run_id": other, "models": [{"model_id": model_id}]})
    assert "output of the run that logged it" in refused(answer, 400, "INVALID_PARAMETER_VALUE")


def test_metrics_with_a_model_id_are_the_models_and_not_logged_twice_to_the_run(http: httpx.Client) -> None:
    exp_id, run_id = new_run(http)
    model_id = create(http, exp_id, run_id)["info"]["model_id"]
    point = {"key": "acc", "value": 0.8, "timestamp": 10, "step": 0}
    ok(http.post(f"{API}/runs/log-metric", json={"run_id": run_id, **point}))
    # MLflow's log_model logs the run's metrics again, with the model's id
    again = {
        "run_id": run_id,
        "metrics": [
            {**point, "model_id": model_id},
            {**point, "key": "loss", "value": 0.1, "model_id": model_id},
        ],
    }
    ok(http.post(f"{API}/runs/log-batch", json=again))
    ok(
        http.post(
            f"{API}/runs/log-metric",
            json={"run_id": run_id, **point, "step": 1, "value": 0.9, "model_id": model_id},
        )
    )
    history = ok(http.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "acc"}))[
        "metrics"
    ]
    assert [(p["step"], p["value"]) for p in history] == [(0, 0.8), (1, 0.9)]
    loss = ok(http.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"}))[
        "metrics"
    ]
    assert [p["value"] for p in loss] == [0.1]  # new to the run: logged to it too
    metrics = ok(http.get(f"{API}/logged-models/{model_id}"))["model"]["data"]["metrics"]
    assert [(p["key"], p["step"], p["value"], p["run_id"], p["model_id"]) for p in metrics] == [
        ("acc", 0, 0.8, run_id, model_id),
        ("acc", 1, 0.9, run_id, model_id),
        ("loss", 0, 0.1, run_id, model_id),
    ]
    ghost = {"run_id": run_id, "metrics": [{**point, "model_id": "m-" + "0" * 32}]}
    refused(http.post(f"{API}/runs/log-batch", json=ghost), 404, "RESOURCE_DOES_NOT_EXIST")


# -- files and registration -----------------------------------------------------------------------
def test_a_logged_models_files_are_its_runs_artifacts_and_register_from_models_uri(
    http: httpx.Client, app: FastAPI, tmp_path: Path
) -> None:
    exp_id, run_id = new_run(http)
    info = create(http, exp_id, run_id)["info"]
    model_id = info["model_id"]
    upload_folder(http, info["artifact_uri"], tmp_path)
    listed = ok(http.get(f"{API}/logged-models/{model_id}/artifacts/directories"))
    assert listed["root_uri"] == info["artifact_uri"]
    assert sorted(f["path"] for f in listed["files"]) == ["MLmodel", "model.skops"]
    in_run = ok(http.get(f"{API}/artifacts/list", params={"run_id": run_id, "path": f"models/{model_id}"}))
    assert sorted(f["path"] for f in in_run["files"]) == [
        f"models/{model_id}/MLmodel",
        f"models/{model_id}/model.skops",
    ]

    name = f"lm-{uuid.uuid4().hex[:8]}"
    ok(http.post(f"{API}/registered-models/create", json={"name": name}))
    body = {"name": name, "source": f"models:/{model_id}", "model_id": model_id}
    pending = refused(http.post(f"{API}/model-versions/create", json=body), 400, "INVALID_STATE")
    assert "LOGGED_MODEL_PENDING" in pending
    finalize(http, model_id)
    version = ok(http.post(f"{API}/model-versions/create", json=body))["model_version"]
    assert (version["version"], version["run_id"], version["model_id"]) == ("1", run_id, model_id)
    assert version["source"] == f"runs:/{run_id}/models/{model_id}"
    mv = app_state(app).store.get_model_version(name, 1)
    assert (mv.flavor, mv.metadata["artifact"]) == ("sklearn", f"models/{model_id}")

    by_path = {"name": name, "source": f"{info['artifact_uri']}", "run_id": run_id}
    assert ok(http.post(f"{API}/model-versions/create", json=by_path))["model_version"]["version"] == "1"
    other = create(http, exp_id, run_id, name="other")["info"]["model_id"]
    finalize(http, other)
    mismatch = {**body, "model_id": other}
    assert "not the folder of logged model" in refused(
        http.post(f"{API}/model-versions/create", json=mismatch), 400, "INVALID_PARAMETER_VALUE"
    )
    ghost = {"name": name, "source": "models:/m-" + "0" * 32}
    refused(http.post(f"{API}/model-versions/create", json=ghost), 404, "RESOURCE_DOES_NOT_EXIST")


def test_the_servers_store_keeps_logged_models(app: FastAPI) -> None:
    assert isinstance(app_state(app).store, KeepsLoggedModels)
