"""``POST /api/v1/runs/search``'s ``view`` (active runs by default, deleted ones, or all), over the
wire and through ``RestStore``, in-process on SQLite; the OpenAPI document names its values."""

from __future__ import annotations

import uuid

import httpx
import pytest

from shipyard.errors import InvalidInput
from shipyard.store.rest import RestStore

API = "/api/v1"


@pytest.fixture
def experiment(http: httpx.Client) -> tuple[int, dict[str, str]]:
    """A fresh experiment with runs r0..r3 (r0 oldest; ``i`` is their number), r1 and r2 deleted."""
    name = f"views-{uuid.uuid4().hex[:8]}"
    ids = {}
    for i in range(4):
        run_id = uuid.uuid4().hex
        body = {"run_id": run_id, "experiment_name": name, "name": f"r{i}", "start_time": 1000 + i}
        assert http.post(f"{API}/runs", json={**body, "params": {"i": str(i)}}).status_code == 200
        ids[f"r{i}"] = run_id
    assert http.post(f"{API}/runs/delete", json={"run_ids": [ids["r1"], ids["r2"]]}).json() == {"count": 2}
    exp_id: int = http.get(f"{API}/experiments/by-name", params={"name": name}).json()["id"]
    return exp_id, ids


def test_search_lists_the_runs_of_its_view(
    http: httpx.Client, experiment: tuple[int, dict[str, str]]
) -> None:
    exp_id, _ = experiment

    def found(**body: object) -> list[tuple[str, bool]]:
        answer = http.post(f"{API}/runs/search", json={"experiment_ids": [exp_id], **body})
        assert answer.status_code == 200, answer.text
        return [(r["name"], r["deleted"]) for r in answer.json()["runs"]]

    assert found() == found(view="active") == [("r3", False), ("r0", False)]
    assert found(view="deleted") == [("r2", True), ("r1", True)]
    assert found(view="all", filter="params.i != '0'", order_by=["params.i asc"]) == [
        ("r1", True),
        ("r2", True),
        ("r3", False),
    ]
    first = http.post(
        f"{API}/runs/search", json={"experiment_ids": [exp_id], "view": "all", "limit": 3}
    ).json()
    rest = found(view="all", limit=3, page_token=first["next_page_token"])
    assert [r["name"] for r in first["runs"]] + [n for n, _ in rest] == ["r3", "r2", "r1", "r0"]


def test_a_bad_view_is_refused_naming_the_values(http: httpx.Client) -> None:
    answer = http.post(f"{API}/runs/search", json={"view": "DELETED_ONLY"})
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_request"
    assert "'active', 'deleted' or 'all'" in error["message"], error["message"]


def test_the_rest_store_searches_each_view(
    rest_store: RestStore, experiment: tuple[int, dict[str, str]]
) -> None:
    exp_id, ids = experiment
    by_id = {v: k for k, v in ids.items()}

    def names(view: str) -> list[str]:
        return [by_id[r.id] for r in rest_store.search_runs([exp_id], view=view).runs]

    assert [by_id[r.id] for r in rest_store.search_runs([exp_id]).runs] == names("active") == ["r3", "r0"]
    assert names("deleted") == ["r2", "r1"] and names("all") == ["r3", "r2", "r1", "r0"]
    with pytest.raises(InvalidInput, match="Invalid run view 'trash'"):
        rest_store.search_runs([exp_id], view="trash")


def test_openapi_documents_the_view_and_its_values(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    body = spec["paths"][f"{API}/runs/search"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = spec["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]["properties"]["view"]
    if "$ref" in schema:  # the enum is a component of its own, described where it is used
        enum = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]["enum"]
    else:
        enum = schema["enum"]
    assert enum == ["active", "deleted", "all"] and schema["default"] == "active"
    assert "deleted" in schema["description"]
