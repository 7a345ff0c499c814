"""MLflow's tracking API on the Shipyard server, on the wire: what MLflow's client sends and reads.

The server runs in-process over a real SQLite (and PostgreSQL) store; every answer is checked as
MLflow's protobuf JSON (snake_case, ids as strings, int64 as numbers, enum names, empty fields left
out) and errors as ``{"error_code", "message"}`` with MLflow's status. What the routes write is read
back through Shipyard's own store: one store, the same runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from server_harness import SyncASGITransport, make_settings

from shipyard.entities import DatasetVersionCreate, LogBatch, RunCreate
from shipyard.server import create_app
from shipyard.server.app import app_state
from shipyard.store import Store

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture
def app(store_uri: str, tmp_path: Path) -> FastAPI:
    """The server on each SQL backend (the PostgreSQL runs are in the integration tier)."""
    return create_app(make_settings(tmp_path, tracking_uri=store_uri))


@pytest.fixture
def http(app: FastAPI) -> Iterator[httpx.Client]:
    transport = SyncASGITransport(app)
    with httpx.Client(transport=transport, base_url="http://testserver") as client:
        yield client
    transport.close()


@pytest.fixture
def store(app: FastAPI) -> Store:
    return app_state(app).store


def ok(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def refused(answer: httpx.Response, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error_code", "message"} and body["error_code"] == code, body
    message: str = body["message"]
    return message


def experiment(http: httpx.Client, name: str = "churn", **extra: Any) -> str:
    exp_id: str = ok(http.post(f"{API}/experiments/create", json={"name": name, **extra}))["experiment_id"]
    return exp_id


def run(http: httpx.Client, exp_id: str, **extra: Any) -> dict[str, Any]:
    body = {"experiment_id": exp_id, "start_time": 1_700_000_000_000, **extra}
    created: dict[str, Any] = ok(http.post(f"{API}/runs/create", json=body))["run"]
    return created


# -- experiments ----------------------------------------------------------------------------------
def test_an_experiment_is_created_and_read_back_as_mlflow_describes_it(http: httpx.Client) -> None:
    tags = [{"key": "team", "value": "risk"}, {"key": "mlflow.note.content", "value": "the churn model"}]
    exp_id = experiment(http, tags=tags, artifact_location="s3://bucket/ignored")
    assert isinstance(exp_id, str) and exp_id.isdigit()
    got = ok(http.get(f"{API}/experiments/get-by-name", params={"experiment_name": "churn"}))["experiment"]
    assert got == ok(http.get(f"{API}/experiments/get", params={"experiment_id": exp_id}))["experiment"]
    assert got["experiment_id"] == exp_id and got["name"] == "churn"
    assert got["artifact_location"] == f"mlflow-artifacts:/{exp_id}" and got["lifecycle_stage"] == "active"
    assert isinstance(got["creation_time"], int) and got["last_update_time"] >= got["creation_time"]
    assert sorted(got["tags"], key=lambda t: t["key"]) == sorted(tags, key=lambda t: t["key"])
    bare = ok(http.get(f"{API}/experiments/get", params={"experiment_id": experiment(http, "bare")}))
    assert "tags" not in bare["experiment"]  # empty fields are left out, as protobuf's JSON does


def test_experiment_errors_answer_mlflows_codes_and_statuses(http: httpx.Client) -> None:
    experiment(http)
    refused(http.post(f"{API}/experiments/create", json={"name": "churn"}), 400, "RESOURCE_ALREADY_EXISTS")
    refused(http.post(f"{API}/experiments/create", json={}), 400, "INVALID_PARAMETER_VALUE")
    missing = refused(
        http.get(f"{API}/experiments/get-by-name", params={"experiment_name": "nope"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert "nope" in missing
    refused(
        http.get(f"{API}/experiments/get", params={"experiment_id": "abc"}), 400, "INVALID_PARAMETER_VALUE"
    )
    for absent in ("999", str(10**15), "0"):  # 0, MLflow's Default, is Shipyard's "default": none yet
        refused(
            http.get(f"{API}/experiments/get", params={"experiment_id": absent}),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        )
    refused(http.post(f"{API}/experiments/create", json={"name": "x" * 300}), 400, "INVALID_PARAMETER_VALUE")


def test_experiments_are_renamed_tagged_deleted_and_restored(http: httpx.Client, store: Store) -> None:
    exp_id = experiment(http)
    created = run(http, exp_id)
    ok(http.post(f"{API}/experiments/update", json={"experiment_id": exp_id, "new_name": "churn-v2"}))
    ok(
        http.post(
            f"{API}/experiments/set-experiment-tag", json={"experiment_id": exp_id, "key": "k", "value": "v"}
        )
    )
    note = {"experiment_id": exp_id, "key": "mlflow.note.content", "value": "about"}
    ok(http.post(f"{API}/experiments/set-experiment-tag", json=note))
    assert store.get_experiment(int(exp_id)).description == "about"  # the description, for Shipyard
    ok(http.post(f"{API}/experiments/delete-experiment-tag", json={"experiment_id": exp_id, "key": "k"}))
    refused(
        http.post(f"{API}/experiments/delete-experiment-tag", json={"experiment_id": exp_id, "key": "k"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    ok(http.post(f"{API}/experiments/delete", json={"experiment_id": exp_id}))
    got = ok(http.get(f"{API}/experiments/get", params={"experiment_id": exp_id}))["experiment"]
    assert (got["name"], got["lifecycle_stage"]) == ("churn-v2", "deleted")
    assert store.get_run(created["info"]["run_id"]).deleted
    refused(http.post(f"{API}/runs/create", json={"experiment_id": exp_id}), 400, "INVALID_PARAMETER_VALUE")
    refused(
        http.post(f"{API}/experiments/update", json={"experiment_id": exp_id, "new_name": "x"}),
        400,
        "INVALID_STATE",
    )
    ok(http.post(f"{API}/experiments/restore", json={"experiment_id": exp_id}))
    assert not store.get_run(created["info"]["run_id"]).deleted
    refused(http.post(f"{API}/experiments/restore", json={"experiment_id": exp_id}), 400, "INVALID_STATE")


def test_experiments_are_searched_with_mlflows_filter_order_and_pages(http: httpx.Client) -> None:
    for name in ("churn", "churn-v2", "fraud"):
        experiment(http, name)
    gone = experiment(http, "old")
    ok(http.post(f"{API}/experiments/delete", json={"experiment_id": gone}))
    search = f"{API}/experiments/search"
    names = [
        e["name"]
        for e in ok(http.post(search, json={"filter": "name LIKE 'churn%'", "order_by": ["name DESC"]}))[
            "experiments"
        ]
    ]
    assert names == ["churn-v2", "churn"]
    first = ok(http.post(search, json={"max_results": 2, "order_by": ["name"]}))
    assert [e["name"] for e in first["experiments"]] == ["churn", "churn-v2"]
    rest = ok(
        http.post(
            search, json={"max_results": 2, "order_by": ["name"], "page_token": first["next_page_token"]}
        )
    )
    assert [e["name"] for e in rest["experiments"]] == ["fraud"] and "next_page_token" not in rest
    deleted = ok(http.post(search, json={"view_type": "DELETED_ONLY"}))["experiments"]
    assert [e["name"] for e in deleted] == ["old"]
    assert len(ok(http.post(search, json={"view_type": 3}))["experiments"]) == 4  # ALL, by number
    refused(http.post(search, json={"filter": "name = 'a' OR name = 'b'"}), 400, "INVALID_PARAMETER_VALUE")
    refused(http.post(search, json={"page_token": "not-a-token"}), 400, "INVALID_PARAMETER_VALUE")


# -- runs -----------------------------------------------------------------------------------------
def test_a_run_is_mlflows_run_info_and_a_shipyard_run_with_the_system_tags_as_fields(
    http: httpx.Client, store: Store
) -> None:
    exp_id = experiment(http)
    parent = run(http, exp_id, run_name="parent")
    tags = {
        "mlflow.user": "ann",
        "mlflow.source.name": "train.py",
        "mlflow.source.type": "LOCAL",
        "mlflow.parentRunId": parent["info"]["run_id"],
        "mlflow.runName": "child",
    }
    created = run(http, exp_id, user_id="ann", tags=[{"key": k, "value": v} for k, v in tags.items()])
    info = created["info"]
    assert info["run_id"] == info["run_uuid"] and len(info["run_id"]) == 32
    assert info["status"] == "RUNNING" and info["lifecycle_stage"] == "active"
    assert info["experiment_id"] == exp_id and info["start_time"] == 1_700_000_000_000
    assert info["artifact_uri"] == f"mlflow-artifacts:/{exp_id}/{info['run_id']}/artifacts"
    assert (info["run_name"], info["user_id"]) == ("child", "ann")
    assert "end_time" not in info and "metrics" not in created["data"]  # unset and empty: left out
    assert {t["key"]: t["value"] for t in created["data"]["tags"]} == tags
    shipyard_run = store.get_run(info["run_id"])
    assert (shipyard_run.name, shipyard_run.user, shipyard_run.source) == ("child", "ann", "train.py")
    assert shipyard_run.parent_run_id == parent["info"]["run_id"]
    assert shipyard_run.tags == {"mlflow.source.type": "LOCAL"}  # the system tags are fields, not tags
    conflict = {"experiment_id": exp_id, "run_name": "a", "tags": [{"key": "mlflow.runName", "value": "b"}]}
    refused(http.post(f"{API}/runs/create", json=conflict), 400, "INVALID_PARAMETER_VALUE")


def test_a_shipyard_run_reads_as_an_mlflow_run(http: httpx.Client, store: Store) -> None:
    store.create_run(
        RunCreate("a" * 32, "sdk", "from-sdk", 5, "bob", source="nb.ipynb", params={"lr": "0.1"})
    )
    store.log_batch("a" * 32, LogBatch(metrics=[("auc", 0.9, 3, 7), ("loss", float("nan"), 0, 7)]))
    got = ok(http.get(f"{API}/runs/get", params={"run_id": "a" * 32}))["run"]
    assert got["info"]["run_name"] == "from-sdk" and got["info"]["user_id"] == "bob"
    tags = {t["key"]: t["value"] for t in got["data"]["tags"]}
    assert tags == {"mlflow.runName": "from-sdk", "mlflow.user": "bob", "mlflow.source.name": "nb.ipynb"}
    assert {m["key"]: m["value"] for m in got["data"]["metrics"]} == {"auc": 0.9, "loss": "NaN"}
    assert got["data"]["params"] == [{"key": "lr", "value": "0.1"}]


def test_a_run_is_updated_by_status_name_and_number(http: httpx.Client, store: Store) -> None:
    run_id = run(http, experiment(http))["info"]["run_id"]
    done = ok(http.post(f"{API}/runs/update", json={"run_id": run_id, "status": "FINISHED", "end_time": 42}))
    assert done["run_info"]["status"] == "FINISHED" and done["run_info"]["end_time"] == 42
    again = ok(http.post(f"{API}/runs/update", json={"run_uuid": run_id, "status": 1, "run_name": "renamed"}))
    assert again["run_info"]["status"] == "RUNNING" and again["run_info"]["run_name"] == "renamed"
    assert store.get_run(run_id).name == "renamed"
    refused(
        http.post(f"{API}/runs/update", json={"run_id": run_id, "status": "SCHEDULED"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    refused(
        http.post(f"{API}/runs/update", json={"run_id": run_id, "status": "DONE"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    refused(
        http.post(f"{API}/runs/update", json={"run_id": "nope", "status": "FAILED"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    refused(http.post(f"{API}/runs/update", json={}), 400, "INVALID_PARAMETER_VALUE")


def test_runs_are_deleted_and_restored(http: httpx.Client, store: Store) -> None:
    run_id = run(http, experiment(http))["info"]["run_id"]
    ok(http.post(f"{API}/runs/delete", json={"run_id": run_id}))
    got = ok(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]
    assert got["info"]["lifecycle_stage"] == "deleted"
    refused(
        http.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "a", "value": "1"}),
        400,
        "INVALID_STATE",
    )
    ok(http.post(f"{API}/runs/restore", json={"run_id": run_id}))
    assert not store.get_run(run_id).deleted
    refused(http.post(f"{API}/runs/delete", json={"run_id": "nope"}), 404, "RESOURCE_DOES_NOT_EXIST")
    refused(http.get(f"{API}/runs/get", params={"run_id": "nope"}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_metrics_params_and_tags_are_logged_one_by_one(http: httpx.Client, store: Store) -> None:
    run_id = run(http, experiment(http))["info"]["run_id"]
    for step, value in enumerate([0.5, "NaN", "Infinity", 0.25]):
        body = {"run_id": run_id, "key": "loss", "value": value, "timestamp": 10 + step, "step": step}
        ok(http.post(f"{API}/runs/log-metric", json=body))
    ok(http.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "0.1"}))
    ok(
        http.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "0.1"})
    )  # same: fine
    refused(
        http.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "0.2"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    ok(http.post(f"{API}/runs/set-tag", json={"run_id": run_id, "key": "team", "value": "risk"}))
    ok(http.post(f"{API}/runs/set-tag", json={"run_id": run_id, "key": "mlflow.runName", "value": "renamed"}))
    refused(
        http.post(f"{API}/runs/set-tag", json={"run_id": run_id, "key": "mlflow.user", "value": "mallory"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    ok(http.post(f"{API}/runs/delete-tag", json={"run_id": run_id, "key": "team"}))
    refused(
        http.post(f"{API}/runs/delete-tag", json={"run_id": run_id, "key": "team"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    refused(
        http.post(f"{API}/runs/delete-tag", json={"run_id": run_id, "key": "mlflow.runName"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    shipyard_run = store.get_run(run_id)
    assert shipyard_run.name == "renamed" and shipyard_run.params == {"lr": "0.1"} and shipyard_run.tags == {}
    history = ok(http.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"}))
    assert [(p["step"], p["value"]) for p in history["metrics"]] == [
        (0, 0.5),
        (1, "NaN"),
        (2, "Infinity"),
        (3, 0.25),
    ]
    assert history["metrics"][0] == {"key": "loss", "value": 0.5, "timestamp": 10, "step": 0}
    missing = {"run_id": run_id, "key": "loss", "value": 1}
    assert "timestamp" in refused(
        http.post(f"{API}/runs/log-metric", json=missing), 400, "INVALID_PARAMETER_VALUE"
    )


def test_metric_history_pages_with_max_results(http: httpx.Client) -> None:
    run_id = run(http, experiment(http))["info"]["run_id"]
    metrics = [{"key": "m", "value": float(i), "timestamp": i, "step": i} for i in range(5)]
    ok(http.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": metrics}))
    url, seen, token = f"{API}/metrics/get-history", [], None
    while True:
        params = {
            "run_id": run_id,
            "metric_key": "m",
            "max_results": 2,
            **({"page_token": token} if token else {}),
        }
        page = ok(http.get(url, params=params))
        seen.append([p["step"] for p in page["metrics"]])
        token = page.get("next_page_token")
        if not token:
            break
    assert seen == [[0, 1], [2, 3], [4]]
    refused(
        http.get(url, params={"run_id": run_id, "metric_key": "m", "max_results": 0}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    refused(
        http.get(url, params={"run_id": run_id, "metric_key": "m", "page_token": "%%"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    refused(http.get(url, params={"run_id": "nope", "metric_key": "m"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert ok(http.get(url, params={"run_id": run_id, "metric_key": "absent"})) == {}


def test_log_batch_keeps_mlflows_limits(http: httpx.Client, store: Store) -> None:
    run_id = run(http, experiment(http))["info"]["run_id"]
    url = f"{API}/runs/log-batch"

    def metrics(n: int) -> list[dict[str, Any]]:
        return [{"key": f"m{i}", "value": 1.0, "timestamp": 1, "step": 0} for i in range(n)]

    def pairs(n: int, prefix: str) -> list[dict[str, str]]:
        return [{"key": f"{prefix}{i}", "value": "v"} for i in range(n)]

    too_many = {
        "1000 metrics": {"metrics": metrics(1001)},
        "100 params": {"params": pairs(101, "p")},
        "100 tags": {"tags": pairs(101, "t")},
        "1000 metrics, params, and tags": {
            "metrics": metrics(850),
            "params": pairs(100, "p"),
            "tags": pairs(51, "t"),
        },
    }
    for limit, body in too_many.items():
        message = refused(http.post(url, json={"run_id": run_id, **body}), 400, "INVALID_PARAMETER_VALUE")
        assert f"at most {limit}" in message
    full = {"metrics": metrics(800), "params": pairs(100, "p"), "tags": pairs(100, "t")}
    ok(http.post(url, json={"run_id": run_id, **full}))
    stored = store.get_run(run_id)
    assert (len(stored.metrics), len(stored.params), len(stored.tags)) == (800, 100, 100)
    bad = {
        "a key with a bad character": {"params": [{"key": "a@b", "value": "1"}]},
        "a key that reads as another path": {"metrics": [{"key": "a/../b", "value": 1, "timestamp": 1}]},
        "a key past 250 characters": {"tags": [{"key": "k" * 251, "value": "v"}]},
        "a param value past 6000 characters": {"params": [{"key": "big", "value": "x" * 6001}]},
        "a tag value past 8000 characters": {"tags": [{"key": "big", "value": "x" * 8001}]},
        "a param given twice": {"params": [{"key": "d", "value": "1"}, {"key": "d", "value": "1"}]},
        "a negative timestamp": {"metrics": [{"key": "m", "value": 1, "timestamp": -1}]},
        "a step past 64 bits": {"metrics": [{"key": "m", "value": 1, "timestamp": 1, "step": 2**63}]},
        "a value that is no number": {"metrics": [{"key": "m", "value": "high", "timestamp": 1}]},
    }
    for why, body in bad.items():
        answer = http.post(url, json={"run_id": run_id, **body})
        assert answer.status_code == 400 and answer.json()["error_code"] == "INVALID_PARAMETER_VALUE", why
    assert len(store.get_run(run_id).params) == 100  # nothing of a refused batch was written


def test_runs_are_searched_with_mlflows_filter_order_and_pages(http: httpx.Client, store: Store) -> None:
    exp_id = experiment(http)
    ids = []
    for i, (model, acc) in enumerate([("rf", 0.9), ("xgb", 0.7), ("rf", 0.8)]):
        created = run(http, exp_id, run_name=f"r{i}", start_time=1000 + i)
        ids.append(created["info"]["run_id"])
        body = {
            "run_id": ids[-1],
            "params": [{"key": "model", "value": model}],
            "metrics": [{"key": "acc", "value": acc, "timestamp": 1}],
        }
        ok(http.post(f"{API}/runs/log-batch", json=body))
    search = f"{API}/runs/search"

    def names(**body: Any) -> list[str]:
        runs = ok(http.post(search, json={"experiment_ids": [exp_id], **body})).get("runs", [])
        return [r["info"]["run_name"] for r in runs]

    assert names() == ["r2", "r1", "r0"]  # MLflow's default: newest first
    assert names(filter="params.model = 'rf'", order_by=["metrics.acc ASC"]) == ["r2", "r0"]
    assert names(filter="metrics.acc > 0.75 and attributes.status = 'RUNNING'") == ["r2", "r0"]
    assert names(filter="tags.mlflow.runName LIKE 'r%' and attributes.run_name != 'r1'") == ["r2", "r0"]
    assert names(filter=f"attributes.run_id IN ('{ids[1]}')") == ["r1"]
    first = ok(http.post(search, json={"experiment_ids": [exp_id], "max_results": 2}))
    assert len(first["runs"]) == 2 and first["next_page_token"]
    rest = ok(
        http.post(
            search,
            json={"experiment_ids": [exp_id], "max_results": 2, "page_token": first["next_page_token"]},
        )
    )
    assert [r["info"]["run_name"] for r in rest["runs"]] == ["r0"] and "next_page_token" not in rest
    assert ok(http.post(search, json={"experiment_ids": ["999"]})) == {}
    for body in (
        {"filter": "metrics.acc > 0.5 OR params.model = 'rf'"},
        {"filter": "params.model = rf"},
        {"order_by": ["metrics.acc SIDEWAYS"]},
        {"run_view_type": "SOME"},
        {"max_results": 50_001},
        {"page_token": "bm90IGEgdG9rZW4="},
    ):
        refused(http.post(search, json={"experiment_ids": [exp_id], **body}), 400, "INVALID_PARAMETER_VALUE")


def test_run_view_types_search_active_deleted_or_all_runs_with_the_same_filter_order_and_pages(
    http: httpx.Client,
) -> None:
    exp_id = experiment(http)
    ids = {}
    for i in range(6):  # r1, r3 and r5 deleted; rf runs are r0, r2, r3, r5
        ids[f"r{i}"] = run(http, exp_id, run_name=f"r{i}", start_time=1000 + i)["info"]["run_id"]
        body = {
            "run_id": ids[f"r{i}"],
            "params": [{"key": "model", "value": "rf" if i in (0, 2, 3, 5) else "xgb"}],
            "metrics": [{"key": "acc", "value": i / 10, "timestamp": 1}],
        }
        ok(http.post(f"{API}/runs/log-batch", json=body))
    for name in ("r1", "r3", "r5"):
        ok(http.post(f"{API}/runs/delete", json={"run_id": ids[name]}))
    search = f"{API}/runs/search"

    def found(view: str | int | None, **body: Any) -> list[tuple[str, str]]:
        view_body = {} if view is None else {"run_view_type": view}
        answer = ok(http.post(search, json={"experiment_ids": [exp_id], **view_body, **body}))
        return [(r["info"]["run_name"], r["info"]["lifecycle_stage"]) for r in answer.get("runs", [])]

    active = [("r4", "active"), ("r2", "active"), ("r0", "active")]
    deleted = [("r5", "deleted"), ("r3", "deleted"), ("r1", "deleted")]
    everything = sorted(active + deleted, reverse=True)  # newest first
    assert found(None) == found("ACTIVE_ONLY") == found(1) == active
    assert found("DELETED_ONLY") == found(2) == deleted
    assert found("ALL") == found(3) == everything
    rf = "params.model = 'rf'"
    assert found("DELETED_ONLY", filter=rf) == [("r5", "deleted"), ("r3", "deleted")]
    assert found("ALL", filter=rf, order_by=["metrics.acc ASC"]) == [
        ("r0", "active"),
        ("r2", "active"),
        ("r3", "deleted"),
        ("r5", "deleted"),
    ]
    assert found("ALL", filter="metrics.acc >= 0.3", order_by=["metrics.acc DESC"]) == [
        ("r5", "deleted"),
        ("r4", "active"),
        ("r3", "deleted"),
    ]
    for view, whole in (("ALL", everything), ("DELETED_ONLY", deleted), ("ACTIVE_ONLY", active)):
        pages, token = [], None
        while True:  # two at a time: each page of ALL mixes deleted and active runs
            body = {"max_results": 2, **({"page_token": token} if token else {})}
            answer = ok(http.post(search, json={"experiment_ids": [exp_id], "run_view_type": view, **body}))
            pages.append([r["info"]["run_name"] for r in answer["runs"]])
            if not (token := answer.get("next_page_token")):
                break
        assert [n for page in pages for n in page] == [n for n, _ in whole], view
        assert [len(p) for p in pages] == ([2, 2, 2] if view == "ALL" else [2, 1]), view
    ok(http.post(f"{API}/runs/restore", json={"run_id": ids["r3"]}))
    assert ("r3", "active") in found("ACTIVE_ONLY") and ("r3", "deleted") not in found("ALL")
    assert [n for n, _ in found("DELETED_ONLY")] == ["r5", "r1"]


def test_runs_of_a_deleted_experiment_are_found_by_its_id_as_deleted_runs(http: httpx.Client) -> None:
    kept, dropped = experiment(http, "kept"), experiment(http, "dropped")
    run(http, kept, run_name="k0", start_time=1000)
    run(http, dropped, run_name="d0", start_time=1001)
    run(http, dropped, run_name="d1", start_time=1002)
    ok(http.post(f"{API}/experiments/delete", json={"experiment_id": dropped}))

    def names(view: str, *exp_ids: str) -> list[str]:
        body = {"experiment_ids": list(exp_ids), "run_view_type": view}
        return [r["info"]["run_name"] for r in ok(http.post(f"{API}/runs/search", json=body)).get("runs", [])]

    assert names("ACTIVE_ONLY", kept, dropped) == ["k0"]  # MLflow: the experiment's runs are deleted
    assert names("DELETED_ONLY", kept, dropped) == names("DELETED_ONLY", dropped) == ["d1", "d0"]
    assert names("ALL", kept, dropped) == ["d1", "d0", "k0"]
    ok(http.post(f"{API}/experiments/restore", json={"experiment_id": dropped}))
    assert names("ACTIVE_ONLY", kept, dropped) == ["d1", "d0", "k0"] and names("DELETED_ONLY", dropped) == []


def test_experiment_zero_is_the_default_experiment(http: httpx.Client, store: Store) -> None:
    created = run(http, "0", run_name="loose")
    default = store.get_experiment_by_name("default")
    assert created["info"]["experiment_id"] == str(default.id)
    runs = ok(http.post(f"{API}/runs/search", json={"experiment_ids": ["0"]}))["runs"]
    assert [r["info"]["run_name"] for r in runs] == ["loose"]
    assert (
        ok(http.get(f"{API}/experiments/get", params={"experiment_id": "0"}))["experiment"]["name"]
        == "default"
    )


def test_bulk_interval_history_samples_each_run_as_mlflow_does(http: httpx.Client) -> None:
    exp_id = experiment(http)
    run_ids = []
    for n in (10, 2):
        run_id = run(http, exp_id)["info"]["run_id"]
        run_ids.append(run_id)
        metrics = [{"key": "m", "value": float(i), "timestamp": i, "step": i} for i in range(n)]
        ok(http.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": metrics}))
    url = f"{API}/metrics/get-history-bulk-interval"
    got = ok(http.get(url, params={"run_ids": run_ids, "metric_key": "m", "max_results": 3}))["metrics"]
    assert [(p["run_id"] == run_ids[0], p["step"]) for p in got] == [
        (True, 0),
        (True, 4),
        (True, 9),
        (False, 0),
        (False, 1),
    ]
    window = ok(
        http.get(url, params={"run_ids": run_ids[:1], "metric_key": "m", "start_step": 2, "end_step": 4})
    )
    assert [p["step"] for p in window["metrics"]] == [2, 3, 4]
    for params in (
        {"metric_key": "m"},
        {"run_ids": run_ids, "metric_key": "m", "start_step": 1},
        {"run_ids": run_ids, "metric_key": "m", "start_step": 5, "end_step": 1},
        {"run_ids": run_ids, "metric_key": "m", "max_results": 2501},
        {"run_ids": [f"r{i}" for i in range(101)], "metric_key": "m"},
    ):
        refused(http.get(url, params=params), 400, "INVALID_PARAMETER_VALUE")


def test_dataset_inputs_are_lineage_when_shipyard_has_the_dataset(http: httpx.Client, store: Store) -> None:
    digest = "ab12cd34" + "0" * 56
    store.create_dataset_version(DatasetVersionCreate("iris", digest, 150, 5, [("x", "double")], 100))
    run_id = run(http, experiment(http))["info"]["run_id"]
    known = {"name": "iris", "digest": "ab12cd34", "source_type": "local", "source": "{}"}
    other = {"name": "cars", "digest": "ffee0011", "source_type": "local", "source": "{}", "schema": "{}"}
    context = [{"key": "mlflow.data.context", "value": "training"}]
    body = {
        "run_id": run_id,
        "datasets": [{"tags": context, "dataset": known}, {"tags": context, "dataset": other}],
    }
    ok(http.post(f"{API}/runs/log-inputs", json=body))
    ok(http.post(f"{API}/runs/log-inputs", json=body))  # again: nothing new
    ok(http.post(f"{API}/runs/log-inputs", json={"run_id": run_id, "models": [{"model_id": "m-1"}]}))
    uses = store.list_run_datasets(run_id)
    assert [(u.dataset.ref, u.role) for u in uses] == [("iris@v1", "training")]
    inputs = ok(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]["inputs"]
    by_name = {d["dataset"]["name"]: d for d in inputs["dataset_inputs"]}
    assert set(by_name) == {"iris", "cars"} and by_name["cars"]["dataset"] == other
    assert by_name["iris"]["dataset"]["digest"] == digest and by_name["iris"]["tags"] == context
    assert inputs["model_inputs"] == [{"model_id": "m-1"}]
    tags = ok(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]["data"].get("tags", [])
    assert all(t["key"] != "mlflow.inputs" for t in tags)  # kept inputs are not shown as a tag


# -- artifacts ------------------------------------------------------------------------------------
def test_artifacts_go_through_the_proxy_into_shipyards_blob_store(http: httpx.Client, store: Store) -> None:
    exp_id = experiment(http)
    run_id = run(http, exp_id)["info"]["run_id"]
    root = f"{ARTIFACTS}/{exp_id}/{run_id}/artifacts"
    assert http.put(f"{root}/model/model.pkl", content=b"weights").status_code == 200
    assert http.put(f"{root}/notes.txt", content=b"hello").json() == {}
    files = {a.path: a.size for a in store.list_artifacts(run_id)}
    assert files == {"model/model.pkl": 7, "notes.txt": 5}  # recorded as the run's artifacts
    got = http.get(f"{root}/model/model.pkl")
    assert got.status_code == 200 and got.content == b"weights"
    listed = ok(http.get(ARTIFACTS, params={"path": f"{exp_id}/{run_id}/artifacts"}))["files"]
    assert listed == [
        {"path": "model", "is_dir": True},
        {"path": "notes.txt", "is_dir": False, "file_size": 5},
    ]
    inner = ok(http.get(ARTIFACTS, params={"path": f"{exp_id}/{run_id}/artifacts/model"}))["files"]
    assert inner == [{"path": "model.pkl", "is_dir": False, "file_size": 7}]
    tracking = ok(http.get(f"{API}/artifacts/list", params={"run_id": run_id, "path": "model"}))
    assert tracking["root_uri"] == f"mlflow-artifacts:/{exp_id}/{run_id}/artifacts"
    assert tracking["files"] == [{"path": "model/model.pkl", "is_dir": False, "file_size": 7}]
    assert ok(http.get(f"{API}/artifacts/list", params={"run_id": run_id, "path": "notes.txt"})) == {
        "root_uri": tracking["root_uri"]
    }
    refused(http.get(f"{root}/absent.txt"), 404, "RESOURCE_DOES_NOT_EXIST")
    refused(
        http.put(f"{ARTIFACTS}/{exp_id}/models/m-1/artifacts/x", content=b"x"), 400, "INVALID_PARAMETER_VALUE"
    )
    refused(
        http.put(f"{ARTIFACTS}/{int(exp_id) + 1}/{run_id}/artifacts/x", content=b"x"),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    refused(http.put(f"{root}/a/%2E%2E/%2E%2E/x", content=b"x"), 400, "INVALID_PARAMETER_VALUE")
    ok(http.post(f"{API}/runs/delete", json={"run_id": run_id}))
    refused(http.put(f"{root}/late.txt", content=b"x"), 400, "INVALID_PARAMETER_VALUE")


# -- the rest of MLflow's API ---------------------------------------------------------------------
def test_an_endpoint_shipyard_does_not_serve_answers_mlflows_endpoint_not_found(http: httpx.Client) -> None:
    message = refused(http.post(f"{API}/traces", json={}), 404, "ENDPOINT_NOT_FOUND")
    assert "traces" in message
    refused(http.get("/ajax-api/2.0/mlflow/traces"), 404, "ENDPOINT_NOT_FOUND")


def test_the_ajax_prefix_serves_the_same_api(http: httpx.Client) -> None:
    exp_id = experiment(http)
    got = ok(http.get("/ajax-api/2.0/mlflow/experiments/get", params={"experiment_id": exp_id}))
    assert got["experiment"]["name"] == "churn"


def test_server_info_says_artifacts_go_through_the_proxy_whole(http: httpx.Client) -> None:
    info = ok(http.get("/api/3.0/mlflow/server-info"))
    assert info["multipart_uploads_enabled"] is False and info["multipart_downloads_enabled"] is False


def test_a_malformed_body_answers_invalid_parameter_value(http: httpx.Client) -> None:
    answer = http.post(
        f"{API}/runs/create", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    refused(answer, 400, "INVALID_PARAMETER_VALUE")
    refused(
        http.post(f"{API}/runs/log-batch", json={"run_id": "x", "metrics": "many"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


# -- with authentication ------------------------------------------------------------------------
@pytest.fixture
def auth_app(tmp_path: Path) -> FastAPI:
    return create_app(make_settings(tmp_path, auth=True))


@pytest.fixture
def auth_http(auth_app: FastAPI) -> Iterator[httpx.Client]:
    transport = SyncASGITransport(auth_app)
    with httpx.Client(transport=transport, base_url="http://testserver") as client:
        yield client
    transport.close()


def _token(app: FastAPI, user: str, role: str) -> dict[str, str]:
    store = app_state(app).store
    store.create_user(user, [role], "test")  # type: ignore[attr-defined]
    secret: str = store.create_token(user, "t", "test")[1]  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {secret}"}


def test_with_auth_the_token_decides_who_acts_and_refusals_are_mlflows(
    auth_app: FastAPI, auth_http: httpx.Client
) -> None:
    ann, bob, vic = (
        _token(auth_app, u, r) for u, r in (("ann", "scientist"), ("bob", "scientist"), ("vic", "viewer"))
    )
    refused(auth_http.post(f"{API}/experiments/create", json={"name": "x"}), 401, "UNAUTHENTICATED")
    refused(
        auth_http.post(f"{API}/experiments/create", json={"name": "x"}, headers=vic), 403, "PERMISSION_DENIED"
    )
    exp_id = ok(auth_http.post(f"{API}/experiments/create", json={"name": "anns"}, headers=ann))[
        "experiment_id"
    ]
    tags = [{"key": "mlflow.user", "value": "mallory"}]
    created = ok(
        auth_http.post(f"{API}/runs/create", json={"experiment_id": exp_id, "tags": tags}, headers=ann)
    )
    run_id = created["run"]["info"]["run_id"]
    assert created["run"]["info"]["user_id"] == "ann"  # the token's user, not the tag's
    # ann created the experiment, so she owns it (a grant): bob may read it, not write to it
    ok(auth_http.get(f"{API}/runs/get", params={"run_id": run_id}, headers=bob))
    body = {"run_id": run_id, "key": "m", "value": 1, "timestamp": 1}
    refused(auth_http.post(f"{API}/runs/log-metric", json=body, headers=bob), 403, "PERMISSION_DENIED")
    refused(
        auth_http.post(f"{API}/runs/create", json={"experiment_id": exp_id}, headers=bob),
        403,
        "PERMISSION_DENIED",
    )
    root = f"{ARTIFACTS}/{exp_id}/{run_id}/artifacts"
    refused(auth_http.put(f"{root}/x.txt", content=b"x", headers=bob), 403, "PERMISSION_DENIED")
    ok(auth_http.post(f"{API}/runs/log-metric", json=body, headers=ann))
    assert auth_http.put(f"{root}/x.txt", content=b"x", headers=ann).status_code == 200
    ok(auth_http.get("/api/3.0/mlflow/server-info"))  # public, as on MLflow's server
    entries = app_state(auth_app).store.list_audit(object_type="run")
    assert not entries  # no run was deleted; the security audit is its own object type
    ok(auth_http.post(f"{API}/runs/delete", json={"run_id": run_id}, headers=ann))
    deletion = app_state(auth_app).store.list_audit(action="run.delete")
    assert [(e.actor, e.object_id) for e in deletion] == [("ann", run_id)]
    assert json.loads(json.dumps(deletion[0].after)) == {"deleted": True}


# -- hostile values: a 4xx on both backends, never a 500 ------------------------------------------
def test_hostile_values_answer_a_4xx_on_both_backends(http: httpx.Client) -> None:
    exp_id = experiment(http)
    run_id = run(http, exp_id)["info"]["run_id"]
    big, nul = 2**64, "a\x00b"
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/experiments/get", {"params": {"experiment_id": str(2**31)}}),
        ("GET", "/experiments/get", {"params": {"experiment_id": "9" * 30}}),
        ("GET", "/runs/get", {"params": {"run_id": nul}}),
        ("GET", "/runs/get", {"params": {"run_id": "r" * 5000}}),
        ("POST", "/experiments/create", {"json": {"name": nul}}),
        (
            "POST",
            "/experiments/set-experiment-tag",
            {"json": {"experiment_id": exp_id, "key": "k", "value": nul}},
        ),
        ("POST", "/runs/create", {"json": {"experiment_id": exp_id, "start_time": big}}),
        ("POST", "/runs/create", {"json": {"experiment_id": exp_id, "run_name": nul}}),
        ("POST", "/runs/update", {"json": {"run_id": run_id, "run_name": "n" * 300}}),
        ("POST", "/runs/update", {"json": {"run_id": run_id, "end_time": big, "status": "FINISHED"}}),
        ("POST", "/runs/log-metric", {"json": {"run_id": run_id, "key": "m", "value": 1, "timestamp": big}}),
        ("POST", "/runs/log-parameter", {"json": {"run_id": run_id, "key": "p", "value": nul}}),
        ("POST", "/runs/set-tag", {"json": {"run_id": run_id, "key": nul, "value": "v"}}),
        ("POST", "/runs/search", {"json": {"experiment_ids": [exp_id], "filter": f"params.a = '{nul}'"}}),
        (
            "POST",
            "/runs/search",
            {"json": {"experiment_ids": [exp_id], "filter": f"attributes.start_time > {big}"}},
        ),
        ("POST", "/runs/search", {"json": {"experiment_ids": [exp_id], "max_results": big}}),
        ("POST", "/runs/search", {"json": {"experiment_ids": [str(big)], "page_token": "e30="}}),
        ("POST", "/experiments/search", {"json": {"max_results": big}}),
        (
            "GET",
            "/metrics/get-history-bulk-interval",
            {"params": {"run_ids": [run_id], "metric_key": "m", "start_step": big, "end_step": big}},
        ),
        (
            "GET",
            "/metrics/get-history",
            {"params": {"run_id": run_id, "metric_key": "m", "max_results": big}},
        ),
    ]
    wrong = []
    for method, path, kwargs in calls:
        answer = http.request(method, f"{API}{path}", **kwargs)
        if not (400 <= answer.status_code < 500 and "error_code" in answer.json()):
            wrong.append(f"{method} {path} {kwargs}: {answer.status_code} {answer.text[:200]}")
    for path in (f"{exp_id}/{run_id}/artifacts/a%00b", f"{exp_id}/{run_id}/artifacts/{'d/' * 600}x"):
        answer = http.put(f"{ARTIFACTS}/{path}", content=b"x")
        if not 400 <= answer.status_code < 500:
            wrong.append(f"PUT {path[:80]}: {answer.status_code} {answer.text[:200]}")
    assert not wrong, "\n".join(wrong)


def test_an_artifact_upload_is_streamed_past_the_request_size_limit(tmp_path: Path) -> None:
    transport = SyncASGITransport(create_app(make_settings(tmp_path, max_request_bytes=1024)))
    with httpx.Client(transport=transport, base_url="http://testserver") as http:
        exp_id = experiment(http)
        run_id = run(http, exp_id)["info"]["run_id"]
        big = bytes(range(256)) * 64  # 16 KiB, sixteen times the JSON body limit
        assert http.put(f"{ARTIFACTS}/{exp_id}/{run_id}/artifacts/big.bin", content=big).status_code == 200
        assert http.get(f"{ARTIFACTS}/{exp_id}/{run_id}/artifacts/big.bin").content == big
        too_big = {"experiment_id": exp_id, "tags": [{"key": "t", "value": "x" * 2000}]}
        assert http.post(f"{API}/runs/create", json=too_big).status_code == 413
    transport.close()
