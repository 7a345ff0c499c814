"""A run ends in one request: ``PATCH /api/v1/runs/{id}`` carries the last batch and the artifacts.

The server writes them with the status in one transaction; the REST store sends them together (and
spools them as one entry), and falls back to separate requests for a server that predates this.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from server_harness import Borrowed, FlakyTransport, SyncASGITransport, make_settings

from shipyard import Client
from shipyard.entities import Artifact, LogBatch, RunCreate, RunStatus
from shipyard.errors import BlobNotFound, InvalidInput
from shipyard.server.schemas import _In
from shipyard.store.rest import RestStore
from shipyard.wire.handlers import validation_answer


class Counting(httpx.BaseTransport):
    """Counts requests by method and route shape (run ids replaced by ``{id}``)."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.seen: Counter[str] = Counter()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.split("/")
        if len(parts) > 4 and parts[3] == "runs" and len(parts[4]) == 32:
            parts[4] = "{id}"
        self.seen[f"{request.method} {'/'.join(parts)}"] += 1
        return self.inner.handle_request(request)


class _OldRunUpdateIn(_In):
    """``PATCH /runs/{id}`` as servers before one-request ends declared it."""

    status: RunStatus
    end_time: int | None = None


class OldServer(Counting):
    """The real server behind a front that refuses the new end-of-run fields as an old server did
    (and has no ``POST /runs/record``)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/runs/record":  # no such route then: GET/PATCH /runs/{id} only
            self.seen["405"] += 1
            body = {"error": {"code": "method_not_allowed", "message": "Method Not Allowed"}}
            return httpx.Response(405, json=body, request=request)
        if request.method == "PATCH":
            body = json.loads(request.read())
            try:
                _OldRunUpdateIn.model_validate(body)
            except ValidationError as exc:
                errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
                answer = validation_answer(RequestValidationError(errors))
                self.seen["422"] += 1
                return httpx.Response(answer.status_code, content=answer.body, request=request)
        return super().handle_request(request)


def spec(run_id: str, **kw: Any) -> RunCreate:
    return RunCreate(run_id=run_id, experiment_name="ends", name="r", start_time=1000, user="ann", **kw)


@pytest.fixture
def counting(transport: SyncASGITransport) -> Counting:
    return Counting(Borrowed(transport))


@pytest.fixture
def store(counting: Counting, tmp_path: Path) -> Iterator[RestStore]:
    s = RestStore("http://testserver", make_settings(tmp_path), transport=counting, replay_interval=60)
    yield s
    s.close()


def test_sdk_run_costs_one_request_to_start_and_one_to_end(
    store: RestStore, counting: Counting, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, flush_interval=60.0, run_heartbeat_timeout=0)
    client = Client.from_stores(settings, store, store.blob_store())
    with client.start_run(
        "ends", params={"C": 1.0, "model": "rf"}, tags={"team": "fraud"}, log_environment=False
    ) as run:
        run.log_metrics({"auc": 0.9, "f1": 0.8})
        run.log_metric("loss", 0.5)
        run.log_metric("loss", 0.25)
    assert dict(counting.seen) == {"POST /api/v1/runs": 1, "PATCH /api/v1/runs/{id}": 1}
    got = store.get_run(run.id)
    assert got.status == RunStatus.FINISHED and got.end_time is not None
    assert got.params == {"C": "1.0", "model": "rf"} and got.tags["team"] == "fraud"
    assert got.metrics == {"auc": 0.9, "f1": 0.8, "loss": 0.25}
    assert store.get_metric_history(run.id, "loss").values == [0.5, 0.25]


def test_end_with_batch_and_artifacts_is_one_request_and_lands_whole(
    store: RestStore, counting: Counting
) -> None:
    run_id = uuid.uuid4().hex
    store.create_run(spec(run_id))
    digest, size = store.blob_store().put_bytes(b"model bytes")
    counting.seen.clear()
    batch = LogBatch([("m", 1.0, 0, 1000), ("m", 2.0, 1, 1001)], params={"p": "x"}, tags={"t": "y"})
    store.update_run(
        run_id,
        status=RunStatus.FINISHED,
        end_time=5000,
        final_batch=batch,
        artifacts=[Artifact("out/model.bin", digest, size, 0)],
        compact=False,
    )
    assert dict(counting.seen) == {"PATCH /api/v1/runs/{id}": 1}
    run = store.get_run(run_id)
    assert (run.status, run.end_time, run.params, run.tags["t"]) == (
        RunStatus.FINISHED,
        5000,
        {"p": "x"},
        "y",
    )
    assert store.get_metric_history(run_id, "m").values == [1.0, 2.0]
    assert [a.path for a in store.list_artifacts(run_id)] == ["out/model.bin"]


def test_repeated_end_with_the_same_batch_id_writes_the_points_once(
    store: RestStore, http: httpx.Client
) -> None:
    run_id = uuid.uuid4().hex
    store.create_run(spec(run_id))
    body = {
        "status": "finished",
        "end_time": 5000,
        "batch": {
            "batch_id": "b-" + run_id,
            "metrics": {"keys": ["m"], "values": [1.5], "steps": [0], "timestamps": [1000]},
        },
    }
    for _ in range(2):  # a retry after a lost answer
        assert http.patch(f"/api/v1/runs/{run_id}", json=body).status_code == 204
    assert store.get_metric_history(run_id, "m").values == [1.5]


def test_end_with_a_blob_never_uploaded_is_refused_and_writes_nothing(
    store: RestStore, http: httpx.Client
) -> None:
    run_id = uuid.uuid4().hex
    store.create_run(spec(run_id))
    body = {
        "status": "finished",
        "batch": {"params": {"p": "x"}},
        "artifacts": [{"path": "model.bin", "digest": "0" * 64, "size": 3}],
    }
    answer = http.patch(f"/api/v1/runs/{run_id}", json=body)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == BlobNotFound.code
    run = store.get_run(run_id)
    assert run.status == RunStatus.RUNNING and run.params == {} and store.list_artifacts(run_id) == []


@pytest.mark.parametrize(
    ("batch", "field"),
    [
        ({"metrics": {"keys": ["m"], "values": [], "steps": [0], "timestamps": [1]}}, "batch.metrics"),
        ({"metrics": {"keys": ["m"], "values": [1.0], "steps": [1.5], "timestamps": [1]}}, "batch.metrics"),
        ({"params": {"": "x"}}, "batch.params"),
        ({"extra": 1}, "batch.extra"),
    ],
)
def test_a_bad_batch_in_an_end_is_named_precisely(
    store: RestStore, http: httpx.Client, batch: dict[str, Any], field: str
) -> None:
    run_id = uuid.uuid4().hex
    store.create_run(spec(run_id))
    answer = http.patch(f"/api/v1/runs/{run_id}", json={"status": "finished", "batch": batch})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "invalid_request"
    assert any(e["field"].startswith(field) for e in error["details"]["errors"]), error
    assert store.get_run(run_id).status == RunStatus.RUNNING


def test_an_older_server_gets_the_end_in_parts_and_the_client_remembers(
    transport: SyncASGITransport, tmp_path: Path
) -> None:
    old = OldServer(Borrowed(transport))
    store = RestStore("http://testserver", make_settings(tmp_path), transport=old, replay_interval=60)
    try:
        ids = [uuid.uuid4().hex, uuid.uuid4().hex]
        for run_id in ids:
            store.create_run(spec(run_id))
            store.update_run(
                run_id,
                status=RunStatus.FINISHED,
                final_batch=LogBatch([("m", 3.0, 0, 1000)], params={"p": "1"}),
                compact=False,
            )
            run = store.get_run(run_id)
            assert run.status == RunStatus.FINISHED and run.params == {"p": "1"} and run.metrics == {"m": 3.0}
        assert old.seen["422"] == 1  # found out once, then sent in parts directly
        assert old.seen["POST /api/v1/runs/{id}/batch"] == 2
        assert old.seen["PATCH /api/v1/runs/{id}"] == 2  # one per run reached the server
    finally:
        store.close()


def test_an_older_server_refusing_anything_else_still_raises(
    transport: SyncASGITransport, tmp_path: Path
) -> None:
    store = RestStore("http://testserver", make_settings(tmp_path), transport=Borrowed(transport))
    try:
        with pytest.raises(InvalidInput):
            store._send(
                {"op": "update_run", "run_id": uuid.uuid4().hex, "body": {"status": "nope", "batch": {}}}
            )
    finally:
        store.close()


def test_an_end_spooled_offline_is_one_entry_and_lands_whole_on_replay(
    transport: SyncASGITransport, rest_store: RestStore, tmp_path: Path
) -> None:
    flaky = FlakyTransport(Borrowed(transport))
    store = RestStore("http://testserver", make_settings(tmp_path), transport=flaky, replay_interval=60)
    try:
        run_id = uuid.uuid4().hex
        store.create_run(spec(run_id))
        digest, size = store.blob_store().put_bytes(b"offline model")
        flaky.down = True
        store.update_run(
            run_id,
            status=RunStatus.FAILED,
            end_time=7000,
            final_batch=LogBatch([("m", 4.0, 0, 1000)], tags={"t": "v"}),
            artifacts=[Artifact("model.bin", digest, size, 0)],
        )
        journal = sorted(store.settings.spool_dir.glob("*.jsonl"))
        entries = [json.loads(line) for line in journal[0].read_text().splitlines()[1:]]
        assert [e["op"] for e in entries] == ["update_run"]
        assert set(entries[0]["body"]) == {"status", "end_time", "batch", "artifacts"}
        flaky.down = False
        assert store.flush_spool()
        run = rest_store.get_run(run_id)
        assert (run.status, run.end_time, run.tags["t"], run.metrics) == (
            RunStatus.FAILED,
            7000,
            "v",
            {"m": 4.0},
        )
        assert [a.path for a in rest_store.list_artifacts(run_id)] == ["model.bin"]
    finally:
        store.close()
