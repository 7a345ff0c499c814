"""SQL statements per request on the SDK's hot path: create a run, end it with its last batch, search.

A regression to one statement per param, per metric key or per run found (N+1) fails here: the counts
must not grow with the size of the request or of the result, and stay under small fixed bounds. Both
backends: PostgreSQL is what a team server runs on.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_harness import SyncASGITransport, make_settings
from sqlalchemy import event

from shipyard.server import create_app
from shipyard.server.app import app_state

SEARCH = {"filter": "metrics.auc > 0.5 and params.model = 'rf'", "order_by": ["metrics.auc desc"]}


class Server:
    def __init__(self, http: httpx.Client, statements: list[str], dialect: str) -> None:
        self.http = http
        self.statements = statements
        self.dialect = dialect

    def count(self, method: str, url: str, body: dict[str, Any], status: int) -> int:
        self.statements.clear()
        answer = self.http.request(method, url, json=body)
        assert answer.status_code == status, answer.text
        return len(self.statements)

    def create(self, run_id: str, n_params: int) -> int:
        params = {"model": "rf", **{f"p{i}": str(i) for i in range(n_params - 1)}}
        body = {
            "run_id": run_id,
            "experiment_name": "counts",
            "start_time": 1_000,
            "params": params,
            "tags": {"team": "fraud", "stage": "dev"},
        }
        return self.count("POST", "/api/v1/runs", body, 200)

    def end(self, run_id: str, n_metrics: int) -> int:
        keys = ["auc", *(f"m{i}" for i in range(n_metrics - 1))]
        metrics = {"keys": keys, "values": [0.9] * len(keys), "steps": [0] * len(keys)}
        metrics["timestamps"] = [2_000] * len(keys)
        batch = {"batch_id": uuid.uuid4().hex, "metrics": metrics}
        return self.count("PATCH", f"/api/v1/runs/{run_id}", {"status": "finished", "batch": batch}, 204)

    def record(self, run_id: str, n: int) -> int:
        """A whole short run in one request: ``n`` params, ``n`` tags and ``n`` metric keys."""
        keys = [f"m{i}" for i in range(n)]
        body = {
            "run_id": run_id,
            "experiment_name": "counts",
            "start_time": 1_000,
            "params": {f"p{i}": str(i) for i in range(n)},
            "tags": {f"t{i}": str(i) for i in range(n)},
            "status": "finished",
            "end_time": 2_000,
            "batch": {
                "batch_id": uuid.uuid4().hex,
                "metrics": {"keys": keys, "values": [0.5] * n, "steps": [0] * n, "timestamps": [1_500] * n},
            },
        }
        return self.count("POST", "/api/v1/runs/record", body, 204)

    def search(self, experiment_id: int) -> tuple[int, int]:
        self.statements.clear()
        answer = self.http.post("/api/v1/runs/search", json={**SEARCH, "experiment_ids": [experiment_id]})
        assert answer.status_code == 200, answer.text
        return len(self.statements), len(answer.json()["runs"])


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    # No lazy marking of dead runs: it runs on the first read, whichever request that is.
    overrides: dict[str, Any] = {"run_heartbeat_timeout": 0.0}
    if request.param == "postgresql":
        overrides["tracking_uri"] = request.getfixturevalue("pg_uri")
    app = create_app(make_settings(tmp_path, **overrides))
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.current_thread().name.startswith("shipyard-"):
            return  # the server's own background threads (its pipeline scheduler), not the request
        if not statement.lstrip().upper().startswith("PRAGMA"):  # SQLite's per-connection setup
            statements.append(statement)

    engine = app_state(app).store._engine  # noqa: SLF001 - the statements the server sends
    event.listen(engine, "before_cursor_execute", record)
    transport = SyncASGITransport(app)
    try:
        with httpx.Client(transport=transport, base_url="http://testserver") as http:
            yield Server(http, statements, request.param)
    finally:
        event.remove(engine, "before_cursor_execute", record)
        transport.close()


def test_create_and_end_take_a_fixed_number_of_statements(server: Server) -> None:
    warm = uuid.uuid4().hex
    server.create(warm, 5)  # the first run creates the experiment
    server.end(warm, 5)

    small, large = uuid.uuid4().hex, uuid.uuid4().hex
    create_small, create_large = server.create(small, 5), server.create(large, 40)
    end_small, end_large = server.end(small, 5), server.end(large, 40)

    assert create_small == create_large, "create: statements grow with the number of params"
    assert end_small == end_large, "end: statements grow with the number of metric keys"
    assert create_small <= 4, server.statements
    assert end_small <= 7, server.statements  # with the merge of the run's metric chunks


def test_a_recorded_run_takes_a_fixed_number_of_statements_and_keeps_every_row(server: Server) -> None:
    server.record(uuid.uuid4().hex, 3)  # the first run creates the experiment
    small, large, huge = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    few, many = server.record(small, 5), server.record(large, 400)
    assert few == many, f"record: statements grow with the number of rows: {server.statements}"
    assert few <= 6, server.statements  # the run, then its params, tags, chunks and latest values
    if server.dialect == "postgresql":  # all of it one statement, outside a transaction
        assert few == 1, server.statements
        assert server.statements[0].startswith("WITH run AS (INSERT INTO runs"), server.statements
    server.record(huge, 1_234)  # many rows: every one of them lands
    run = server.http.get(f"/api/v1/runs/{huge}").json()
    assert len(run["params"]) == len(run["metrics"]) == 1_234
    assert sum(k.startswith("t") for k in run["tags"]) == 1_234
    assert run["params"]["p1233"] == "1233" and run["metrics"]["m617"] == 0.5


def test_search_takes_a_fixed_number_of_statements(server: Server) -> None:
    for n_params in (5, 5, 5):
        run_id = uuid.uuid4().hex
        server.create(run_id, n_params)
        server.end(run_id, 5)
    experiment_id = server.http.get("/api/v1/experiments/by-name", params={"name": "counts"}).json()["id"]
    few, found_few = server.search(experiment_id)

    for _ in range(27):
        run_id = uuid.uuid4().hex
        server.create(run_id, 5)
        server.end(run_id, 5)
    many, found_many = server.search(experiment_id)

    assert (found_few, found_many) == (3, 30)
    assert few == many, "search: statements grow with the number of runs found"
    assert many <= 7, server.statements  # the page's ids, the runs, params, metrics, tags (+ BEGIN / SET)
