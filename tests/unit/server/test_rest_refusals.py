"""A server that answers with an error refused the write: the SDK raises it and never spools it.

Only "no answer" (connection refused or reset, timeouts, a gateway's 502-504) spools. A full
artifact disk is ``storage_full`` naming the artifact root; a spool that cannot replay says why
in ``shipyard sync`` and ``shipyard doctor``.
"""

from __future__ import annotations

import errno
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from fastapi import FastAPI
from server_harness import Borrowed, FlakyTransport, SyncASGITransport, make_settings
from typer.testing import CliRunner

from shipyard import Client
from shipyard.cli import app as cli_app
from shipyard.entities import LogBatch, RunCreate, RunStatus
from shipyard.errors import StorageFull, StorageReadOnly, StoreUnavailable
from shipyard.server import create_app
from shipyard.server.app import app_state
from shipyard.store.rest import RestStore
from shipyard.store.spool import replay_spools, spool_status


@pytest.fixture
def full_app(tmp_path: Path) -> FastAPI:
    """A server whose artifact disk fails writes while ``app.state.disk_full`` is set."""
    app = create_app(make_settings(tmp_path / "server"))
    return app


@pytest.fixture
def full_transport(full_app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> Iterator[SyncASGITransport]:
    t = SyncASGITransport(full_app)
    blobs = app_state(full_app).blobs
    real = blobs._do_put_stream

    def put(stream: IO[bytes]) -> tuple[str, int]:
        if getattr(full_app.state, "disk_full", True):
            stream.read()
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(stream)

    monkeypatch.setattr(blobs, "_do_put_stream", put)
    yield t
    t.close()


def remote_client(root: Path, transport: httpx.BaseTransport) -> Client:
    client = Client(settings=make_settings(root, tracking_uri="http://testserver"))
    client.store.close()
    client.store = RestStore("http://testserver", client.settings, transport=transport, replay_interval=60)
    return client


def spec(run_id: str) -> RunCreate:
    return RunCreate(run_id=run_id, experiment_name="refusals", name="r", start_time=1000, user="ann")


def test_a_full_artifact_disk_raises_storage_full_naming_the_root_and_spools_nothing(
    full_app: FastAPI, full_transport: SyncASGITransport, tmp_path: Path
) -> None:
    client = remote_client(tmp_path / "sdk", Borrowed(full_transport))
    root = app_state(full_app).settings.artifact_uri
    try:
        run = client.start_run("refusals", system_metrics=False, log_environment=False)
        with pytest.raises(StorageFull, match="is full") as caught:
            run.log_bytes(b"weights", "model.bin")
        assert root in caught.value.message and caught.value.details["root"] == root
        assert isinstance(client.store, RestStore) and not client.store.spooling
        run.log_metric("loss", 0.5)
        run.end()  # metadata still lands: only the blob write was refused
        stored = client.get_run(run.id)
        assert stored.status is RunStatus.FINISHED and stored.metrics == {"loss": 0.5}
        assert client.list_artifacts(run.id) == []
    finally:
        client.close()
    assert not list((tmp_path / "sdk" / "home" / "spool").glob("*.jsonl"))


@pytest.mark.parametrize(
    ("answer", "cls"),
    [
        (httpx.Response(503, json={"error": {"code": "store_unavailable", "message": "db locked"}}), None),
        (httpx.Response(503, json={"error": {"code": "storage_full", "message": "disk full"}}), StorageFull),
        (httpx.Response(500, json={"error": {"code": "internal_error", "message": "boom"}}), None),
        (httpx.Response(400, json={"error": {"code": "invalid_input", "message": "bad"}}), None),
    ],
)
def test_an_error_answer_is_raised_with_the_servers_message_not_spooled(
    transport: SyncASGITransport, tmp_path: Path, answer: httpx.Response, cls: type[Exception] | None
) -> None:
    class Refusing(Borrowed):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            return (
                answer
                if request.method == "POST" and request.url.path.endswith("/batch")
                else (super().handle_request(request))
            )

    store = RestStore("http://testserver", make_settings(tmp_path), transport=Refusing(transport))
    try:
        run_id = uuid.uuid4().hex
        store.create_run(spec(run_id))
        message = answer.json()["error"]["message"]
        with pytest.raises(cls or Exception, match=message) as caught:
            store.log_batch(run_id, LogBatch([("m", 1.0, 0, 1000)]))
        assert caught.value.__class__.__name__ != "ServerUnreachable"
        assert not store.spooling and not list(store.settings.spool_dir.glob("*.jsonl"))
    finally:
        store.close()


def test_the_logger_keeps_a_refused_batch_and_end_raises_instead_of_reporting_success(
    full_app: FastAPI, full_transport: SyncASGITransport, tmp_path: Path
) -> None:
    class DbDown(Borrowed):
        down = False

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if self.down and request.method in ("POST", "PATCH") and "/runs/" in request.url.path:
                return httpx.Response(
                    503, json={"error": {"code": "store_unavailable", "message": "db gone"}}
                )
            return super().handle_request(request)

    transport = DbDown(full_transport)
    client = remote_client(tmp_path / "sdk", transport)
    try:
        run = client.start_run("refusals", system_metrics=False, log_environment=False)
        run.log_metric("loss", 0.5)
        transport.down = True
        with pytest.raises(StoreUnavailable, match="db gone"):
            run.end()
        transport.down = False
        assert client.get_run(run.id).status is RunStatus.RUNNING  # not claimed finished
        assert isinstance(client.store, RestStore) and not client.store.spooling
    finally:
        client.close()


def test_a_replay_blocked_by_a_full_disk_keeps_the_journal_and_says_why(
    full_app: FastAPI, full_transport: SyncASGITransport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full_app.state.disk_full = False
    flaky = FlakyTransport(Borrowed(full_transport))
    settings = make_settings(tmp_path / "sdk", tracking_uri="http://testserver")
    store = RestStore("http://testserver", settings, transport=flaky, replay_interval=60)
    flaky.down = True
    run_id = uuid.uuid4().hex
    store.create_run(spec(run_id))
    store.blob_store().put_bytes(b"offline weights")
    flaky.down = False
    full_app.state.disk_full = True
    assert not store.flush_spool()  # the server answered storage_full: kept, in order, for later
    store.close()

    status = spool_status(settings.spool_dir)
    ((journal, why),) = status.journals
    assert why is not None and why.startswith("storage_full:") and "is full" in why

    monkeypatch.setattr("shipyard.store.spool.open_store", lambda uri, s: _store_on(flaky, uri, s))
    report = replay_spools("http://testserver", settings.spool_dir, settings=settings)
    assert report.pending == 1 and any("storage_full" in p and journal in p for p in report.problems)

    monkeypatch.setenv("SHIPYARD_HOME", settings.home)
    monkeypatch.setenv("SHIPYARD_TRACKING_URI", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SHIPYARD_ARTIFACT_URI", str(tmp_path / "cli-artifacts"))
    monkeypatch.setenv("NO_COLOR", "1")
    result = CliRunner().invoke(cli_app, ["doctor", "--json"], prog_name="shipyard")
    assert result.exit_code == 1
    spool = json.loads(result.stdout)["spool"]
    assert any(c["ok"] is False and "storage_full" in c["detail"] for c in spool)
    result = CliRunner().invoke(cli_app, ["sync", "--server", "http://testserver"], prog_name="shipyard")
    assert result.exit_code == 1 and "storage_full" in result.stdout

    full_app.state.disk_full = False
    report = replay_spools("http://testserver", settings.spool_dir, settings=settings)
    assert (report.pending, report.files, report.problems) == (0, 1, ())
    assert spool_status(settings.spool_dir).ok
    assert not list(settings.spool_dir.glob("*.blocked"))


def _store_on(transport: httpx.BaseTransport, uri: str, settings: Any) -> RestStore:
    return RestStore(uri, settings, transport=transport, replay_interval=60)


def test_storage_error_maps_full_and_read_only_disks() -> None:
    from shipyard.artifacts.blobs import storage_error

    full = storage_error(OSError(errno.ENOSPC, "No space left on device"), "/srv/art")
    assert isinstance(full, StorageFull) and "/srv/art" in full.message
    assert isinstance(storage_error(OSError(errno.EROFS, "Read-only file system"), "/a"), StorageReadOnly)
    other = storage_error(OSError(errno.EIO, "I/O error"), "/a")
    assert type(other) is StoreUnavailable and "/a" in other.message


def _run(http: httpx.Client) -> str:
    run_id = uuid.uuid4().hex
    body = {"run_id": run_id, "experiment_name": "refusals", "name": "r", "start_time": 1, "user": "ann"}
    assert http.post("/api/v1/runs", json=body).status_code == 200
    return run_id


def _upload(http: httpx.Client, data: bytes) -> str:
    import blake3

    digest = blake3.blake3(data).hexdigest()
    assert http.put(f"/api/v1/blobs/{digest}", content=data).status_code == 201
    return digest


def test_artifact_records_of_blobs_never_uploaded_are_refused(http: httpx.Client) -> None:
    run_id = _run(http)
    ghost = "e" * 64
    rows = [{"path": "model.bin", "digest": ghost, "size": 5}]
    answer = http.post(f"/api/v1/runs/{run_id}/artifacts", json={"artifacts": rows})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "blob_not_found"
    assert ghost in answer.json()["error"]["message"]
    assert http.get(f"/api/v1/runs/{run_id}/artifacts").json()["artifacts"] == []
    real = _upload(http, b"bytes")
    rows = [{"path": "model.bin", "digest": real, "size": 5}]
    assert http.post(f"/api/v1/runs/{run_id}/artifacts", json={"artifacts": rows}).status_code == 204


@pytest.mark.parametrize(
    ("path", "uploaded", "code"),
    [
        ("model.pkl", False, "blob_not_found"),
        ("../../etc/cron.d/x", True, "unsafe_path"),
        ("/abs/model.pkl", True, "unsafe_path"),
        ("a" * 300, True, "unsafe_path"),
    ],
)
def test_model_versions_need_uploaded_blobs_and_safe_relative_paths(
    http: httpx.Client, path: str, uploaded: bool, code: str
) -> None:
    name = f"m{uuid.uuid4().hex[:8]}"
    assert http.post("/api/v1/models", json={"name": name}).status_code in (200, 201)
    digest = _upload(http, b"model bytes") if uploaded else "f" * 64
    body = {
        "name": name,
        "digest": "0" * 64,
        "flavor": "pyfunc",
        "files": [{"path": path, "digest": digest, "size": 11}],
        "signature": {},
    }
    answer = http.post(f"/api/v1/models/{name}/versions", json=body)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == code
    assert http.get(f"/api/v1/models/{name}/versions").json()["items"] == []
