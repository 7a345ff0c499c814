"""A short run is one request: the SDK holds a run's start back and sends it with the end.

``POST /api/v1/runs/record`` writes a whole ended run in one transaction. Through a server the REST
store holds a run's create back (``defer_run_start``) when this client has started a run in that
experiment before: it goes out before any other request of the client, with the run's first
background flush, or with its end as one ``record``. These tests pin the request counts, that
nothing is lost on any of those paths (refusals, an unreachable server, nested runs, a child started
by another client), and the ``record`` route's own rules.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_harness import Borrowed, FlakyTransport, SyncASGITransport, make_settings

from polling_helpers import wait_until
from shipyard import Client
from shipyard.entities import RunStatus
from shipyard.errors import PermissionDenied, RunNotFound
from shipyard.store.rest import RestStore


class Counting(httpx.BaseTransport):
    """Counts requests by method and route shape (run ids replaced by ``{id}``); can refuse some."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.seen: Counter[str] = Counter()
        self.refuse: set[str] = set()  # route shapes answered 403
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.split("/")
        if len(parts) > 4 and parts[3] == "runs" and len(parts[4]) == 32:
            parts[4] = "{id}"
        shape = f"{request.method} {'/'.join(parts)}"
        with self.lock:
            self.seen[shape] += 1
        if shape in self.refuse:
            body = {"error": {"code": "permission_denied", "message": "sam may not write here"}}
            return httpx.Response(403, json=body, request=request)
        response = self.inner.handle_request(request)
        if response.status_code >= 400:
            with self.lock:
                self.seen[f"{response.status_code} {shape}"] += 1
        return response


@pytest.fixture
def counting(transport: SyncASGITransport) -> Counting:
    return Counting(Borrowed(transport))


def client_on(transport: httpx.BaseTransport, root: Path, **settings: Any) -> Client:
    values: dict[str, Any] = {"flush_interval": 60.0, "run_heartbeat_timeout": 0, **settings}
    config = make_settings(root, **values)
    store = RestStore("http://testserver", config, transport=transport, replay_interval=60)
    return Client.from_stores(config, store, store.blob_store())


@pytest.fixture
def client(counting: Counting, tmp_path: Path) -> Iterator[Client]:
    c = client_on(counting, tmp_path)
    yield c
    c.close()


def experiment() -> str:
    return "rec-" + uuid.uuid4().hex[:8]


def short_run(client: Client, exp: str, i: int, **kw: Any) -> str:
    with client.start_run(
        exp, params={"seed": i, "model": "rf"}, tags={"team": "fraud"}, log_environment=False, **kw
    ) as run:
        run.log_metrics({"auc": 0.5 + i / 100, "f1": 0.4})
        run.log_metric("loss", 0.5)
        run.log_metric("loss", 0.25)
    return run.id


def assert_whole(http: httpx.Client, run_id: str, i: int) -> dict[str, Any]:
    got = http.get(f"/api/v1/runs/{run_id}")
    assert got.status_code == 200, got.text
    run = got.json()
    assert run["status"] == "finished" and run["end_time"] >= run["start_time"]
    assert run["params"] == {"seed": str(i), "model": "rf"} and run["tags"]["team"] == "fraud"
    assert run["metrics"] == {"auc": 0.5 + i / 100, "f1": 0.4, "loss": 0.25}
    history = http.get(f"/api/v1/runs/{run_id}/metrics/history", params={"key": "loss"}).json()
    assert history["values"] == [0.5, 0.25] and history["steps"] == [0, 1]
    return dict(run)


# -- what the SDK sends ----------------------------------------------------------------------
def test_the_first_run_of_an_experiment_starts_at_once_and_later_short_runs_are_one_request(
    client: Client, counting: Counting, http: httpx.Client
) -> None:
    exp = experiment()
    with client.start_run(exp, log_environment=False) as first:
        # started at once: another client sees it while it runs (a wrong name or refusal shows here)
        assert http.get(f"/api/v1/runs/{first.id}").json()["status"] == "running"
    assert counting.seen["POST /api/v1/runs"] == 1
    counting.seen.clear()
    ids = [short_run(client, exp, i) for i in range(3)]
    assert dict(counting.seen) == {"POST /api/v1/runs/record": 3}
    for i, run_id in enumerate(ids):
        run = assert_whole(http, run_id, i)
        assert run["experiment_name"] == exp and run["user"] == client.settings.user


def test_a_held_back_run_knows_its_experiment_id_before_the_server_does(
    client: Client, http: httpx.Client
) -> None:
    exp = experiment()
    short_run(client, exp, 0)
    with client.start_run(exp, log_environment=False) as run:
        local_id = run.info.experiment_id
    assert local_id == http.get(f"/api/v1/runs/{run.id}").json()["experiment_id"] != 0


def test_with_defer_run_start_off_every_run_starts_at_once(
    counting: Counting, tmp_path: Path, http: httpx.Client
) -> None:
    client = client_on(counting, tmp_path, defer_run_start=False)
    try:
        exp = experiment()
        ids = [short_run(client, exp, i) for i in range(2)]
    finally:
        client.close()
    assert counting.seen["POST /api/v1/runs"] == 2 and counting.seen["POST /api/v1/runs/record"] == 0
    assert counting.seen["PATCH /api/v1/runs/{id}"] == 2
    for i, run_id in enumerate(ids):
        assert_whole(http, run_id, i)


def test_a_longer_run_shows_on_the_server_within_the_flush_interval(
    counting: Counting, tmp_path: Path, http: httpx.Client
) -> None:
    client = client_on(counting, tmp_path, flush_interval=0.05)
    try:
        exp = experiment()
        short_run(client, exp, 0)
        counting.seen.clear()
        with client.start_run(exp, params={"seed": 1, "model": "rf"}, log_environment=False) as run:
            wait_until(
                lambda: http.get(f"/api/v1/runs/{run.id}").status_code == 200,
                "the held-back run to be sent by the flusher",
            )
            run.set_tags({"team": "fraud"})
            run.log_metrics({"auc": 0.51, "f1": 0.4})
            run.log_metric("loss", 0.5)
            run.log_metric("loss", 0.25)
    finally:
        client.close()
    assert counting.seen["POST /api/v1/runs"] == 1 and counting.seen["POST /api/v1/runs/record"] == 0
    assert counting.seen["PATCH /api/v1/runs/{id}"] == 1
    assert_whole(http, run.id, 1)


def test_any_other_request_of_the_client_sends_held_back_starts_first(
    client: Client, counting: Counting
) -> None:
    exp = experiment()
    short_run(client, exp, 0)
    with client.start_run(exp, params={"seed": 1}, log_environment=False) as run:
        assert client.get_run(run.id).params == {"seed": "1"}  # the read found it: sent first
        assert counting.seen["POST /api/v1/runs"] == 2
    assert client.get_run(run.id).status == RunStatus.FINISHED


def test_a_nested_run_ending_first_brings_its_held_back_parent_along(
    client: Client, http: httpx.Client
) -> None:
    exp = experiment()
    short_run(client, exp, 0)
    with client.start_run(exp, log_environment=False) as parent:
        child_id = short_run(client, exp, 1, parent=parent)
        child = http.get(f"/api/v1/runs/{child_id}").json()
        assert child["parent_run_id"] == parent.id and child["status"] == "finished"
        assert http.get(f"/api/v1/runs/{parent.id}").json()["status"] == "running"
    assert http.get(f"/api/v1/runs/{parent.id}").json()["status"] == "finished"


def test_a_child_started_by_another_client_waits_for_its_held_back_parent(
    counting: Counting, transport: SyncASGITransport, tmp_path: Path, http: httpx.Client
) -> None:
    exp = experiment()
    owner = client_on(counting, tmp_path / "a")
    seen_by_worker = Counting(Borrowed(transport))
    worker = client_on(seen_by_worker, tmp_path / "b", flush_interval=5.0)
    try:
        short_run(owner, exp, 0)
        with owner.start_run(exp, log_environment=False) as parent:
            result: dict[str, Any] = {}

            def start_child() -> None:
                try:
                    result["id"] = short_run(worker, exp, 1, parent=parent.id)
                except Exception as exc:  # reported below
                    result["error"] = exc

            thread = threading.Thread(target=start_child)
            thread.start()
            wait_until(
                lambda: seen_by_worker.seen["404 POST /api/v1/runs"] >= 1,
                "the child's start to be refused once for want of its parent",
            )
            assert thread.is_alive()  # still waiting for it
            parent.flush()  # the parent goes out: the waiting child's start gets through
            thread.join(timeout=30)
        assert "error" not in result, result
        child = http.get(f"/api/v1/runs/{result['id']}").json()
        assert child["parent_run_id"] == parent.id and child["status"] == "finished"
    finally:
        owner.close()
        worker.close()


def test_a_child_of_a_parent_that_never_comes_fails_with_run_not_found(
    transport: SyncASGITransport, tmp_path: Path
) -> None:
    worker = client_on(Borrowed(transport), tmp_path, flush_interval=0.05)
    try:
        with pytest.raises(RunNotFound):
            worker.start_run(experiment(), parent="f" * 32, log_environment=False)
    finally:
        worker.close()


def test_closing_the_client_sends_the_starts_it_holds(
    counting: Counting, tmp_path: Path, http: httpx.Client
) -> None:
    client = client_on(counting, tmp_path)
    exp = experiment()
    short_run(client, exp, 0)
    run = client.start_run(exp, params={"seed": 1}, log_environment=False)  # held back, never ended
    client.close()
    got = http.get(f"/api/v1/runs/{run.id}").json()
    assert got["status"] == "running" and got["params"] == {"seed": "1"}


# -- refusals and an unreachable server ------------------------------------------------------
def test_a_refused_short_run_raises_at_its_end(
    client: Client, counting: Counting, http: httpx.Client
) -> None:
    exp = experiment()
    short_run(client, exp, 0)
    counting.refuse = {"POST /api/v1/runs/record", "POST /api/v1/runs", "PATCH /api/v1/runs/{id}"}
    with pytest.raises(PermissionDenied, match="may not write"):
        short_run(client, exp, 1)


def test_a_start_the_server_refuses_in_the_background_raises_at_the_next_write(
    counting: Counting, tmp_path: Path, http: httpx.Client
) -> None:
    client = client_on(counting, tmp_path, flush_interval=0.05)
    try:
        exp = experiment()
        short_run(client, exp, 0)
        counting.refuse = {"POST /api/v1/runs", "PATCH /api/v1/runs/{id}"}
        run = client.start_run(exp, log_environment=False)
        wait_until(lambda: counting.seen["POST /api/v1/runs"] >= 2, "the flusher to send the start")
        run.log_metric("loss", 1.0)
        with pytest.raises(PermissionDenied, match="may not write"):
            run.flush()
        with pytest.raises(PermissionDenied):
            run.end()
        assert http.get(f"/api/v1/runs/{run.id}").status_code == 404
    finally:
        client.close()


def test_a_short_run_ending_while_the_server_is_away_is_spooled_whole_and_replayed(
    transport: SyncASGITransport, tmp_path: Path, http: httpx.Client
) -> None:
    flaky = FlakyTransport(Borrowed(transport))
    client = client_on(flaky, tmp_path)
    store = client.store
    assert isinstance(store, RestStore)
    try:
        exp = experiment()
        short_run(client, exp, 0)
        flaky.down = True
        run_id = short_run(client, exp, 7)
        assert store.spooling
        flaky.down = False
        assert store.flush_spool()
    finally:
        client.close()
    assert_whole(http, run_id, 7)


# -- the route -------------------------------------------------------------------------------
def record_body(run_id: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "run_id": run_id,
        "experiment_name": "rec-route",
        "name": "r",
        "start_time": 1000,
        "user": "ann",
        "params": {"p": "1"},
        "tags": {"t": "x"},
        "status": "finished",
        "end_time": 5000,
        "batch": {
            "batch_id": "b-" + run_id,
            "params": {"q": "2"},
            "metrics": {"keys": ["m", "m"], "values": [1.0, 2.0], "steps": [0, 1], "timestamps": [1, 2]},
        },
    }
    body.update(over)
    return body


def test_record_writes_the_whole_run_and_a_retry_changes_nothing(http: httpx.Client) -> None:
    run_id = uuid.uuid4().hex
    for _ in range(2):  # the second is a retry after a lost answer
        assert http.post("/api/v1/runs/record", json=record_body(run_id)).status_code == 204
    run = http.get(f"/api/v1/runs/{run_id}").json()
    assert (run["status"], run["start_time"], run["end_time"]) == ("finished", 1000, 5000)
    assert run["params"] == {"p": "1", "q": "2"} and run["tags"]["t"] == "x"
    history = http.get(f"/api/v1/runs/{run_id}/metrics/history", params={"key": "m"}).json()
    assert history["values"] == [1.0, 2.0]


def test_record_with_artifacts_lands_them_and_refuses_a_blob_never_uploaded(
    http: httpx.Client, rest_store: RestStore
) -> None:
    digest, size = rest_store.blob_store().put_bytes(b"model bytes")
    run_id = uuid.uuid4().hex
    ok = record_body(run_id, artifacts=[{"path": "out/model.bin", "digest": digest, "size": size}])
    assert http.post("/api/v1/runs/record", json=ok).status_code == 204
    assert [a.path for a in rest_store.list_artifacts(run_id)] == ["out/model.bin"]
    missing = uuid.uuid4().hex
    bad = record_body(missing, artifacts=[{"path": "model.bin", "digest": "0" * 64, "size": 3}])
    answer = http.post("/api/v1/runs/record", json=bad)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "blob_not_found"
    assert http.get(f"/api/v1/runs/{missing}").status_code == 404  # nothing written


@pytest.mark.parametrize(
    ("over", "status", "needle"),
    [
        ({"status": "running"}, 400, "end status"),
        ({"status": "done"}, 422, "status"),
        ({"end_time": None}, 422, "end_time"),
        ({"parent_run_id": "a" * 32}, 404, "not found"),
        ({"params": {"p": "x" * 6001}}, 400, "limit"),
        ({"batch": {"params": {"p": "2"}}}, 400, "given twice"),
    ],
)
def test_record_refuses_bad_input_precisely_and_writes_nothing(
    http: httpx.Client, over: dict[str, Any], status: int, needle: str
) -> None:
    run_id = uuid.uuid4().hex
    answer = http.post("/api/v1/runs/record", json=record_body(run_id, **over))
    assert answer.status_code == status, answer.text
    assert needle in answer.text
    assert http.get(f"/api/v1/runs/{run_id}").status_code == 404


def test_record_merges_the_batch_into_the_start_as_a_later_write_would(http: httpx.Client) -> None:
    run_id = uuid.uuid4().hex
    batch = {
        "params": {"p": "1", "q": "2"},
        "tags": {"t": "later"},
        "metrics": {"keys": ["m"], "values": [3.0], "steps": [0], "timestamps": [1]},
    }
    assert http.post("/api/v1/runs/record", json=record_body(run_id, batch=batch)).status_code == 204
    run = http.get(f"/api/v1/runs/{run_id}").json()
    assert run["params"] == {"p": "1", "q": "2"}  # the same value twice is one param
    assert run["tags"]["t"] == "later" and run["metrics"] == {"m": 3.0}
