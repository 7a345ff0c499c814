"""``RestStore`` behaves like ``SqlStore``: same results, same errors, through an in-process server."""

from __future__ import annotations

import math
import uuid
from pathlib import Path
from typing import Any

import blake3
import httpx
import pytest
from fastapi import FastAPI
from server_harness import Borrowed, SyncASGITransport, make_settings

from shipyard import Client
from shipyard.entities import Artifact, LogBatch, RunCreate, RunStatus
from shipyard.errors import (
    AlreadyExists,
    DigestMismatch,
    ExperimentNotFound,
    FilterSyntaxError,
    InvalidInput,
    NotFound,
    RunNotFound,
    ServerUnreachable,
    ShipyardError,
    StoreUnavailable,
    UnsafePath,
)
from shipyard.server.app import app_state
from shipyard.store import Store
from shipyard.store.rest import RestStore
from shipyard.store.sql import SqlStore
from shipyard.wire import error_from_response


class Counting(Borrowed):
    def __init__(self, inner: httpx.BaseTransport) -> None:
        super().__init__(inner)
        self.calls: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.method, request.url.path))
        return super().handle_request(request)


def spec(run_id: str, experiment: str, **kw: Any) -> RunCreate:
    return RunCreate(run_id=run_id, experiment_name=experiment, name="r", start_time=1000, user="ann", **kw)


W_DIGEST = blake3.blake3(b"w!!").hexdigest()
R_DIGEST = blake3.blake3(b"r").hexdigest()


def scenario(store: Store, tag: str) -> dict[str, Any]:
    """The same calls against any store; returns what a user would observe (ids normalised)."""
    exp = f"parity-{tag}"
    a, b = f"a{tag}", f"b{tag}"
    store.create_experiment(f"{exp}-explicit", "desc")
    store.create_run(spec(a, exp, params={"lr": "0.1"}, tags={"t": "x"}))
    store.create_run(spec(b, exp, parent_run_id=a))
    store.log_batch(a, LogBatch([("auc", 0.9, 0, 5), ("auc", math.nan, 1, 6), ("loss", math.inf, 0, 5)]))
    store.log_batch(b, LogBatch([("auc", 0.7, 0, 5)], params={"lr": "0.2"}, batch_id=f"bid{tag}"))
    store.log_batch(b, LogBatch([("auc", 0.7, 0, 5)], params={"lr": "0.2"}, batch_id=f"bid{tag}"))
    store.update_run(a, status=RunStatus.FINISHED, end_time=9000)
    if isinstance(store, RestStore):  # a server records only blobs it holds
        store.blob_store().put_bytes(b"w!!")
        store.blob_store().put_bytes(b"r")
    store.record_artifacts(a, [Artifact("m/w.bin", W_DIGEST, 3, 11), Artifact("r.txt", R_DIGEST, 1, 12)])
    exp_id = store.get_experiment_by_name(exp).id
    page = store.search_runs([exp_id], "metrics.auc > 0.5", ["metrics.auc desc"], limit=1)
    page2 = store.search_runs([exp_id], "metrics.auc > 0.5", ["metrics.auc desc"], 1, page.next_page_token)
    history = store.get_metric_history(a, "auc")
    deleted = store.delete_runs([b])
    after_delete = [r.id for r in store.search_runs([exp_id]).runs]
    restored = store.restore_runs([b])
    run = store.get_run(a).to_dict()
    run["metrics"] = {k: repr(v) for k, v in run["metrics"].items()}
    return {
        "run": {k: v for k, v in run.items() if k not in ("experiment_id",)},
        "parent": store.get_run(b).parent_run_id,
        "page": [r.id for r in page.runs] + [r.id for r in page2.runs],
        "history": (history.steps, history.timestamps, [repr(v) for v in history.values]),
        "b_history_len": len(store.get_metric_history(b, "auc")),
        "deleted": (deleted, after_delete, restored),
        "artifacts": store.list_artifacts(a),
        "under_m": store.list_artifacts(a, "m"),
        "referenced": store.referenced_digests([W_DIGEST, "c" * 64]),
        "experiment": store.get_experiment(exp_id).name,
        "explicit": store.get_experiment_by_name(f"{exp}-explicit").description,
        "listed": exp in [e.name for e in store.list_experiments()],
        "schema": store.schema_version(),
        "has_ids": {a, b} <= {i for page_ in store.iter_run_ids(batch_size=1) for i in page_},
    }


def test_every_store_method_matches_the_sql_store(rest_store: RestStore, tmp_path: Path) -> None:
    sql = SqlStore(f"sqlite:///{tmp_path / 'local.db'}")
    try:
        tag = uuid.uuid4().hex[:8]
        local = scenario(sql, tag)
    finally:
        sql.close()
    remote = scenario(rest_store, tag)
    assert remote == local
    assert remote["history"] == ([0, 1], [5, 6], ["0.9", "nan"])
    assert remote["run"]["metrics"] == {"auc": "nan", "loss": "inf"}


def test_errors_come_back_as_the_same_classes(rest_store: RestStore) -> None:
    with pytest.raises(RunNotFound, match="'nope' not found"):
        rest_store.get_run("nope")
    with pytest.raises(ExperimentNotFound):
        rest_store.get_experiment_by_name(f"missing-{uuid.uuid4().hex}")
    name = f"dup-{uuid.uuid4().hex[:6]}"
    rest_store.create_experiment(name)
    with pytest.raises(AlreadyExists):
        rest_store.create_experiment(name)
    with pytest.raises(FilterSyntaxError) as info:
        rest_store.search_runs(filter="metrics.auc >")
    assert info.value.position == 13 and info.value.text == "metrics.auc >"
    with pytest.raises(UnsafePath):
        rest_store.record_artifacts("nope", [Artifact("../x", "a" * 64, 1)])
    with pytest.raises(InvalidInput):
        rest_store.search_runs(limit=0)


def test_a_refused_write_raises_instead_of_spooling(rest_store: RestStore) -> None:
    run_id = uuid.uuid4().hex
    rest_store.create_run(spec(run_id, "refused", params={"p": "1"}))
    with pytest.raises(InvalidInput, match="immutable"):
        rest_store.log_batch(run_id, LogBatch(params={"p": "2"}))
    with pytest.raises(RunNotFound):
        rest_store.update_run("nope", status=RunStatus.FINISHED)
    assert not rest_store.spooling


def test_log_batch_gets_its_batch_id_before_the_first_send(rest_store: RestStore) -> None:
    run_id = uuid.uuid4().hex
    rest_store.create_run(spec(run_id, "batch-id"))
    batch = LogBatch([("m", 1.0, 0, 1)])
    rest_store.log_batch(run_id, batch)
    assert batch.batch_id is not None and len(batch.batch_id) == 32
    rest_store.log_batch(run_id, batch)  # a retry of the same batch is not a duplicate
    assert len(rest_store.get_metric_history(run_id, "m")) == 1


def test_update_run_sends_the_end_time_of_the_call(rest_store: RestStore) -> None:
    run_id = uuid.uuid4().hex
    rest_store.create_run(spec(run_id, "end-time"))
    rest_store.update_run(run_id, status=RunStatus.FAILED)
    run = rest_store.get_run(run_id)
    assert run.status is RunStatus.FAILED and run.end_time is not None and run.end_time > 1000


def test_blob_store_round_trip_and_skips_known_content(transport: SyncASGITransport, tmp_path: Path) -> None:
    counting = Counting(transport)
    store = RestStore("http://testserver", make_settings(tmp_path), transport=counting)
    try:
        blobs = store.blob_store()
        assert store.blob_store() is blobs
        data = uuid.uuid4().bytes * 5000
        digest, size = blobs.put_bytes(data)
        assert size == len(data) and blobs.exists(digest)
        assert blobs.get_bytes(digest) == data
        src = tmp_path / "same.bin"
        src.write_bytes(data)
        counting.calls.clear()
        assert blobs.put_file(src) == (digest, size)
        assert ("PUT", f"/api/v1/blobs/{digest}") not in counting.calls  # HEAD said it is there
        blobs.download(digest, tmp_path / "out" / "copy.bin")
        assert (tmp_path / "out" / "copy.bin").read_bytes() == data
        assert digest in dict(blobs.iter_digests())
        blobs.delete(digest)  # nothing refers to it (test_blob_maintenance: refused when something does)
        assert not blobs.exists(digest)
        assert not blobs.exists("e" * 64)
    finally:
        store.close()


def test_a_corrupt_blob_on_the_server_is_refused(rest_store: RestStore, app: FastAPI) -> None:
    blobs = rest_store.blob_store()
    digest, _ = blobs.put_bytes(b"precious " + uuid.uuid4().bytes)
    server_blobs = app_state(app).blobs
    with server_blobs.fs.open(server_blobs._path(digest), "wb") as fh:
        fh.write(b"tampered")
    with pytest.raises(DigestMismatch, match=digest):
        blobs.get_bytes(digest)


@pytest.mark.parametrize(
    ("response", "cls"),
    [
        (httpx.Response(502, text="<html>bad gateway</html>"), ServerUnreachable),
        (httpx.Response(504), ServerUnreachable),
        (httpx.Response(404, text="nginx: not found"), NotFound),
        (httpx.Response(400, json={"error": {"code": "invalid_json", "message": "bad"}}), InvalidInput),
        (
            httpx.Response(503, json={"error": {"code": "store_unavailable", "message": "db"}}),
            StoreUnavailable,
        ),
        (httpx.Response(500, json={"error": {"code": "internal_error", "message": "x"}}), ShipyardError),
        (httpx.Response(418, text="teapot"), ShipyardError),
    ],
)
def test_error_from_response_maps_any_answer(response: httpx.Response, cls: type[ShipyardError]) -> None:
    assert type(error_from_response(response, "http://srv")) is cls


def test_sdk_client_gives_the_same_results_as_a_local_one(
    transport: SyncASGITransport, client: Client, tmp_path: Path
) -> None:
    remote = Client(settings=make_settings(tmp_path / "remote", tracking_uri="http://testserver"))
    remote.store.close()
    remote.store = RestStore("http://testserver", remote.settings, transport=Borrowed(transport))
    try:
        exp = f"sdk-{uuid.uuid4().hex[:6]}"
        results = [_use_sdk(c, exp, tmp_path / name) for c, name in ((client, "local"), (remote, "remote"))]
    finally:
        remote.close()
    assert results[0] == results[1]


def _use_sdk(client: Client, exp: str, root: Path) -> dict[str, Any]:
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "dir" / "a.txt").write_text("a")
    (root / "dir" / "sub" / "b.bin").write_bytes(b"\x00" * 100)
    ids = []
    for i in range(3):
        with client.start_run(experiment=exp, params={"i": i}, log_environment=False) as run:
            run.log_metrics({"loss": 1.0 / (i + 1), "acc": i / 10})
            for step in range(5):
                run.log_metric("curve", step * i, step=step)
            run.log_artifact(root / "dir", "data")
            run.log_text(f"note {i}", "note.txt")
            ids.append(run.id)
    frame = client.search_runs(exp, filter="params.i >= 1", order_by="metrics.loss asc")
    out = root / "download"
    client.download_artifacts(ids[0], "data", out)
    return {
        "order": [ids.index(r) for r in frame["run_id"]],
        "loss": list(frame["metrics.loss"]),
        "history": client.get_metric_history(ids[2], "curve")["value"].tolist(),
        "artifacts": [(a.path, a.digest, a.size) for a in client.list_artifacts(ids[1])],
        "files": sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()),
        "note": client.read_artifact(ids[1], "note.txt"),
        "status": client.get_run(ids[0]).status,
    }


def test_a_batch_of_metric_series_goes_through_the_server(rest_store: RestStore) -> None:
    from shipyard.entities import LogBatch, MetricSeries

    rest_store.create_run(spec("series1", "series"))
    batch = LogBatch(series=[MetricSeries("loss", [0, 1, 2], [5, 6, 7], [0.3, float("inf"), 0.1])])
    rest_store.log_batch("series1", batch)
    history = rest_store.get_metric_history("series1", "loss")
    assert (history.steps, history.timestamps, history.values) == (
        [0, 1, 2],
        [5, 6, 7],
        [0.3, float("inf"), 0.1],
    )


def test_log_run_records_an_ended_run_with_its_batch_and_artifacts(rest_store: RestStore) -> None:
    digest, size = rest_store.blob_store().put_bytes(b"output")
    run_id = uuid.uuid4().hex
    spec = RunCreate(run_id=run_id, experiment_name="log-run", name="s", start_time=5, user="u")
    batch = LogBatch([("cost.usd", 0.5, 0, 7)], tags={"sy.cache": "hit"})
    art = Artifact("outputs/0", digest, size, 6)
    rest_store.log_run(spec, status=RunStatus.FINISHED, end_time=9, batch=batch, artifacts=[art])
    run = rest_store.get_run(run_id)
    assert (run.status, run.end_time, run.tags, run.metrics) == (
        RunStatus.FINISHED,
        9,
        {"sy.cache": "hit"},
        {"cost.usd": 0.5},
    )
    assert [(a.path, a.digest) for a in rest_store.list_artifacts(run_id)] == [("outputs/0", digest)]
    with pytest.raises(InvalidInput, match="not an end status"):
        rest_store.log_run(spec, status=RunStatus.RUNNING, end_time=9)
