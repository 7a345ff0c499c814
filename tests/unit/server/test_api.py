"""Every endpoint of the REST API on its happy path, in-process."""

from __future__ import annotations

import math
import uuid

import blake3
import httpx
import pytest

from shipyard.store.sql.schema import HEAD_REVISION
from shipyard.wire import encode_float

API = "/api/v1"


def new_run(http: httpx.Client, experiment: str = "api", **fields: object) -> str:
    run_id = uuid.uuid4().hex
    body = {"run_id": run_id, "experiment_name": experiment, "name": "r", "start_time": 1000, "user": "ann"}
    body.update(fields)
    response = http.post(f"{API}/runs", json=body)
    assert response.status_code == 200, response.text
    return run_id


def put_blob(http: httpx.Client, data: bytes) -> str:
    digest = blake3.blake3(data).hexdigest()
    assert http.put(f"{API}/blobs/{digest}", content=data).status_code == 201
    return digest


def test_health_and_info(http: httpx.Client) -> None:
    assert http.get("/health").json() == {"status": "ok"}
    info = http.get(f"{API}/info").json()
    assert info["schema_version"] == HEAD_REVISION
    assert info["shipyard_version"]
    assert info["tracking_uri"].startswith("sqlite:///")
    assert info["max_request_bytes"] == 256 * 1024


def test_openapi_lists_every_capability(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    tags = {tag for path in spec["paths"].values() for op in path.values() for tag in op.get("tags", [])}
    assert {"experiments", "runs", "artifacts", "blobs", "admin"} <= tags
    assert f"{API}/runs/{{run_id}}/batch" in spec["paths"]
    assert http.get("/docs").status_code == 200


def test_experiments_create_get_list(http: httpx.Client) -> None:
    created = http.post(f"{API}/experiments", json={"name": "exp/a b", "description": "d"})
    assert created.status_code == 201
    exp = created.json()
    assert http.get(f"{API}/experiments/{exp['id']}").json() == exp
    assert http.get(f"{API}/experiments/by-name", params={"name": "exp/a b"}).json() == exp
    assert exp in http.get(f"{API}/experiments").json()["experiments"]


def test_create_run_is_idempotent_by_run_id(http: httpx.Client) -> None:
    run_id = new_run(http, params={"lr": "0.1"}, tags={"team": "risk"})
    again = http.post(
        f"{API}/runs", json={"run_id": run_id, "experiment_name": "other", "start_time": 5}
    ).json()
    assert again["experiment_name"] == "api"
    assert again["params"] == {"lr": "0.1"}
    assert again["tags"] == {"team": "risk"}


def test_log_batch_then_get_run_and_history(http: httpx.Client) -> None:
    run_id = new_run(http)
    body = {
        "batch_id": uuid.uuid4().hex,
        "params": {"C": "1.0"},
        "tags": {"stage": "train"},
        "metrics": {
            "keys": ["loss", "loss", "loss", "auc"],
            "values": [0.5, "NaN", "-Infinity", "Infinity"],
            "steps": [0, 1, 2, 0],
            "timestamps": [10, 11, 12, 10],
        },
    }
    assert http.post(f"{API}/runs/{run_id}/batch", json=body).status_code == 204
    assert http.post(f"{API}/runs/{run_id}/batch", json=body).status_code == 204  # replay: no-op
    run = http.get(f"{API}/runs/{run_id}").json()
    assert run["params"] == {"C": "1.0"}
    assert run["tags"] == {"stage": "train"}
    assert run["metrics"] == {"loss": "-Infinity", "auc": "Infinity"}
    history = http.get(f"{API}/runs/{run_id}/metrics/history", params={"key": "loss"}).json()
    assert history == {
        "key": "loss",
        "steps": [0, 1, 2],
        "timestamps": [10, 11, 12],
        "values": [0.5, "NaN", "-Infinity"],
    }


def test_update_run_sets_status_and_end_time(http: httpx.Client) -> None:
    run_id = new_run(http)
    response = http.patch(f"{API}/runs/{run_id}", json={"status": "finished", "end_time": 5000})
    assert response.status_code == 204
    run = http.get(f"{API}/runs/{run_id}").json()
    assert (run["status"], run["end_time"]) == ("finished", 5000)


def test_search_with_filter_order_paging_and_columns(http: httpx.Client) -> None:
    exp = f"search-{uuid.uuid4().hex[:6]}"
    ids = []
    for i in range(3):
        run_id = new_run(http, experiment=exp, params={"i": str(i)})
        metrics = {"keys": ["auc"], "values": [0.5 + i / 10], "steps": [0], "timestamps": [1]}
        http.post(f"{API}/runs/{run_id}/batch", json={"metrics": metrics})
        ids.append(run_id)
    exp_id = http.get(f"{API}/experiments/by-name", params={"name": exp}).json()["id"]
    body = {"experiment_ids": [exp_id], "filter": "metrics.auc > 0.55", "order_by": ["metrics.auc desc"]}
    page = http.post(f"{API}/runs/search", json={**body, "limit": 1}).json()
    assert [r["id"] for r in page["runs"]] == [ids[2]]
    page2 = http.post(f"{API}/runs/search", json={**body, "limit": 1, "page_token": page["next_page_token"]})
    assert [r["id"] for r in page2.json()["runs"]] == [ids[1]]
    narrow = http.post(f"{API}/runs/search", json={**body, "columns": ["params.i"]}).json()
    assert narrow["runs"][0]["params"] == {"i": "2"} and narrow["runs"][0]["metrics"] == {}


def test_delete_and_restore_runs(http: httpx.Client) -> None:
    exp = f"del-{uuid.uuid4().hex[:6]}"
    run_id = new_run(http, experiment=exp)
    exp_id = http.get(f"{API}/experiments/by-name", params={"name": exp}).json()["id"]
    assert http.post(f"{API}/runs/delete", json={"run_ids": [run_id]}).json() == {"count": 1}
    assert http.post(f"{API}/runs/search", json={"experiment_ids": [exp_id]}).json()["runs"] == []
    assert http.get(f"{API}/runs/{run_id}").json()["deleted"] is True
    assert http.post(f"{API}/runs/restore", json={"run_ids": [run_id]}).json() == {"count": 1}
    assert len(http.post(f"{API}/runs/search", json={"experiment_ids": [exp_id]}).json()["runs"]) == 1


def test_blobs_head_get_put(http: httpx.Client) -> None:
    data = uuid.uuid4().bytes * 1000
    digest = blake3.blake3(data).hexdigest()
    assert http.head(f"{API}/blobs/{digest}").status_code == 404
    response = http.put(f"{API}/blobs/{digest}", content=data)
    assert response.status_code == 201
    assert response.json() == {"digest": digest, "size": len(data)}
    assert http.head(f"{API}/blobs/{digest}").status_code == 200
    got = http.get(f"{API}/blobs/{digest}")
    assert got.content == data
    assert got.headers["etag"] == f'"{digest}"'
    assert http.put(f"{API}/blobs/{digest}", content=data).status_code == 201  # re-upload is harmless


def test_blob_put_streams_a_chunked_body_larger_than_the_json_limit(http: httpx.Client) -> None:
    parts = [uuid.uuid4().bytes * 4096 for _ in range(8)]  # 512 KiB > the 256 KiB JSON limit
    digest = blake3.blake3(b"".join(parts)).hexdigest()
    response = http.put(f"{API}/blobs/{digest}", content=iter(parts))
    assert response.status_code == 201, response.text
    assert http.get(f"{API}/blobs/{digest}").content == b"".join(parts)


def test_artifacts_record_list_and_download_by_path(http: httpx.Client) -> None:
    run_id = new_run(http)
    model, readme = b"weights" * 100, "héllo wörld".encode()
    rows = [
        {"path": "model/weights.bin", "digest": put_blob(http, model), "size": len(model)},
        {"path": "README.md", "digest": put_blob(http, readme), "size": len(readme), "created_at": 7},
    ]
    assert http.post(f"{API}/runs/{run_id}/artifacts", json={"artifacts": rows}).status_code == 204
    listed = http.get(f"{API}/runs/{run_id}/artifacts").json()["artifacts"]
    assert [a["path"] for a in listed] == ["README.md", "model/weights.bin"]
    under = http.get(f"{API}/runs/{run_id}/artifacts", params={"prefix": "model"}).json()["artifacts"]
    assert [a["path"] for a in under] == ["model/weights.bin"]
    got = http.get(f"{API}/runs/{run_id}/artifacts/model/weights.bin")
    assert got.content == model
    assert got.headers["x-shipyard-digest"] == rows[0]["digest"]
    assert http.get(f"{API}/runs/{run_id}/artifacts/README.md").content == readme


def test_admin_purge_referenced_digests_and_run_ids(http: httpx.Client) -> None:
    run_id = new_run(http)
    data = uuid.uuid4().bytes
    digest = put_blob(http, data)
    row = {"path": "x.bin", "digest": digest, "size": len(data)}
    http.post(f"{API}/runs/{run_id}/artifacts", json={"artifacts": [row]})
    other = "f" * 64
    answer = http.post(f"{API}/admin/referenced-digests", json={"digests": [digest, other]}).json()
    assert answer == {"digests": [digest]}
    lines = http.get(f"{API}/admin/run-ids", params={"batch_size": 2}).text.splitlines()
    pages = [httpx.Response(200, content=line).json()["run_ids"] for line in lines]
    assert all(len(p) <= 2 for p in pages) and run_id in {i for p in pages for i in p}
    http.post(f"{API}/runs/delete", json={"run_ids": [run_id]})
    assert http.post(f"{API}/admin/purge", json={}).json()["runs_purged"] >= 1
    assert http.get(f"{API}/runs/{run_id}").status_code == 404


def test_admin_gc_reports_the_four_counts(http: httpx.Client) -> None:
    report = http.post(f"{API}/admin/gc", json={"grace_seconds": 3600}).json()
    assert set(report) == {"runs_purged", "blobs_deleted", "blobs_kept", "temp_files_removed"}
    assert report["blobs_deleted"] == 0


@pytest.mark.parametrize("value", [0.0, -1.5, 1e308, math.nan, math.inf, -math.inf])
def test_metric_values_round_trip_exactly(http: httpx.Client, value: float) -> None:
    run_id = new_run(http)
    metrics = {"keys": ["m"], "values": [encode_float(value)], "steps": [0], "timestamps": [1]}
    http.post(f"{API}/runs/{run_id}/batch", json={"metrics": metrics})
    got = http.get(f"{API}/runs/{run_id}/metrics/history", params={"key": "m"}).json()["values"][0]
    assert got == encode_float(value)
