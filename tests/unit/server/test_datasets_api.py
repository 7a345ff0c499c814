"""Dataset versions and lineage through the REST API: the same answers as the SQL store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.entities import DatasetVersionCreate, RunCreate
from shipyard.errors import InvalidInput, NotFound
from shipyard.store.rest import RestStore


def _spec(digest: str, name: str = "flights") -> DatasetVersionCreate:
    return DatasetVersionCreate(
        name=name, digest=digest, rows=10, num_columns=2, schema=[("a", "int64"), ("b", "string")], size=123
    )


def test_versions_and_lineage_round_trip_through_the_server(rest_store: RestStore) -> None:
    blobs = rest_store.blob_store()
    d1, _ = blobs.put_bytes(b"version one")
    d2, _ = blobs.put_bytes(b"version two")
    v1 = rest_store.create_dataset_version(_spec(d1))
    assert rest_store.create_dataset_version(_spec(d1)) == v1  # same content, same version
    v2 = rest_store.create_dataset_version(_spec(d2))
    assert (v1.version, v2.version, v2.schema) == (1, 2, [("a", "int64"), ("b", "string")])
    assert rest_store.get_dataset_version("flights", "latest") == v2
    assert rest_store.get_dataset_version("flights", d1[:10]) == v1
    assert [v.version for v in rest_store.list_dataset_versions("flights")] == [1, 2]
    rest_store.create_run(RunCreate(run_id="dsrun1", experiment_name="e", name="r", start_time=1, user="u"))
    rest_store.record_dataset_use("dsrun1", "flights", 2, "validation")
    uses = rest_store.list_run_datasets("dsrun1")
    assert [(u.role, u.dataset) for u in uses] == [("validation", v2)]


def test_dataset_errors_are_json_4xx(rest_store: RestStore, http: httpx.Client) -> None:
    with pytest.raises(NotFound):
        rest_store.get_dataset_version("nope", "v1")
    with pytest.raises(InvalidInput):
        rest_store.get_dataset_version("nope", "not-a-ref")
    response = http.post("/api/v1/datasets/versions", json={"name": "x", "digest": "short"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_contracts_are_versioned_through_the_server(rest_store: RestStore, http: httpx.Client) -> None:
    from shipyard.data.contracts import Contract

    contract = Contract.from_yaml("name: rest-c\ncolumns:\n  - {name: a, type: int}\n")
    v1 = rest_store.save_contract(contract.name, contract.to_yaml(), contract.digest)
    assert rest_store.save_contract(contract.name, contract.to_yaml(), contract.digest) == v1
    assert rest_store.get_contract("rest-c", "v1") == v1
    assert [c.version for c in rest_store.list_contracts("rest-c")] == [1]
    forged = http.post(
        "/api/v1/contracts", json={"name": "rest-c", "yaml": contract.to_yaml(), "digest": "0" * 64}
    )
    assert forged.status_code == 400 and "does not match" in forged.json()["error"]["message"]
    broken = http.post("/api/v1/contracts", json={"name": "x", "yaml": "columns: 3", "digest": "0" * 64})
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid_input"


def test_profile_diff_and_validate_are_served_over_rest(app: Any, http: httpx.Client, tmp_path: Path) -> None:
    import pandas as pd

    import shipyard as sy
    from shipyard.server.routers.datasets import _client

    client = _client(app.state.shipyard)  # the server's own stores, as the SDK would fill them over REST
    base = pd.DataFrame({"x": [float(i % 20) for i in range(1_000)]})
    sy.log_dataset(base, name="served", client=client)
    sy.log_dataset(base.assign(x=base["x"] + 100), name="served", client=client)
    sy.register_contract(
        sy.Contract.from_yaml("name: xs\ncolumns:\n  - {name: x, type: float, max: 50}\n"), client=client
    )
    profile = http.get("/api/v1/datasets/profile", params={"name": "served", "ref": "v1"})
    assert profile.status_code == 200 and profile.json()["rows"] == 1_000
    diff = http.get("/api/v1/datasets/diff", params={"a": "served@v1", "b": "served@v2"})
    assert diff.status_code == 200
    assert diff.json()["columns"]["x"]["verdict"] == "major shift"
    ok = http.post("/api/v1/datasets/validate", json={"dataset": "served@v1", "contract": "xs@latest"})
    bad = http.post("/api/v1/datasets/validate", json={"dataset": "served@v2", "contract": "xs@v1"})
    assert ok.json()["ok"] is True and bad.json()["ok"] is False
    sy.log_dataset(pd.DataFrame({"mail": ["ann@example.com", "bob@corp.org"]}), name="mails", client=client)
    pii = http.get("/api/v1/datasets/pii", params={"name": "mails"})
    assert [f["column"] for f in pii.json()["findings"]] == ["mail"] and "ann@example.com" not in pii.text
    both = http.post("/api/v1/datasets/validate", json={"dataset": "served@v1"})
    assert both.status_code == 422 and "exactly one" in both.json()["error"]["message"]


def test_the_audit_log_through_the_server(rest_store: RestStore, http: httpx.Client) -> None:
    """The server appends entries as it acts (here: deleting a run); the API only reads them."""
    from shipyard.audit import verify_chain
    from shipyard.entities import RunCreate, now_ms

    spec = RunCreate(run_id="a" * 32, experiment_name="audited", name="r", start_time=now_ms(), user="ann")
    run = rest_store.create_run(spec)
    assert rest_store.delete_runs([run.id], "ann", "mistake") == 1
    assert rest_store.restore_runs([run.id], "bob", "not a mistake") == 1
    entries = rest_store.list_audit(object_id=run.id)
    assert [(e.actor, e.action, e.reason) for e in entries] == [
        ("ann", "run.delete", "mistake"),
        ("bob", "run.restore", "not a mistake"),
    ]
    assert entries[1].prev_hash == entries[0].hash
    assert verify_chain(rest_store.list_audit()).ok
    forged = {"actor": "x", "action": "alias.set", "object_type": "model_alias", "object_id": "m@champion"}
    assert http.post("/api/v1/audit", json=forged).status_code == 405
