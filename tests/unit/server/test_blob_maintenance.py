"""Garbage collection against a server: the one collector, fed by ``RestBlobStore``.

``RestBlobStore`` lists, deletes and cleans temp files through the server, so ``Client.gc``
runs ``collect_garbage`` unchanged; the server refuses to delete a blob anything refers to.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI
from server_harness import Borrowed, SyncASGITransport, make_settings

from shipyard import Client, GcReport
from shipyard.artifacts import FsspecBlobStore
from shipyard.entities import Artifact, RunCreate
from shipyard.errors import BlobNotFound, InvalidState, RunNotFound
from shipyard.server import create_app
from shipyard.server.app import app_state
from shipyard.store.rest import RestStore

API = "/api/v1"
OLD = time.time() - 7200  # older than the default one-hour grace period


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    """A server of this test's own: gc counts below are exact."""
    return create_app(make_settings(tmp_path / "server"))


@pytest.fixture
def server(app: FastAPI) -> Iterator[SyncASGITransport]:
    transport = SyncASGITransport(app)
    yield transport
    transport.close()


@pytest.fixture
def store(server: SyncASGITransport, tmp_path: Path) -> Iterator[RestStore]:
    rest = RestStore("http://testserver", make_settings(tmp_path / "client"), transport=Borrowed(server))
    yield rest
    rest.close()


@pytest.fixture
def client(store: RestStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Client:
    """A ``Client`` tracking to the server, built the normal way (its blobs come from the store)."""
    monkeypatch.setattr("shipyard.tracking.client.open_store", lambda uri, settings: store)
    return Client(tracking_uri="http://testserver", settings=make_settings(tmp_path / "client"))


@pytest.fixture
def on_server(app: FastAPI, server: SyncASGITransport) -> FsspecBlobStore:
    """The server's own blob store (open once the server has started)."""
    return app_state(app).blobs


def age_everything(blobs: FsspecBlobStore) -> None:
    for path in Path(blobs.root).rglob("*"):
        if path.is_file():
            os.utime(path, (OLD, OLD))


def test_client_gc_against_a_server_deletes_only_unreferenced_blobs(
    client: Client, store: RestStore, on_server: FsspecBlobStore
) -> None:
    assert client.blobs is store.blob_store()
    with client.start_run(log_environment=False) as doomed:
        only_doomed = doomed.log_bytes(b"only in the doomed run", "a.bin").digest
        doomed.log_bytes(b"in both runs", "shared.bin")
    with client.start_run(log_environment=False) as kept:
        kept.log_bytes(b"only in the kept run", "b.bin")
        kept.log_bytes(b"in both runs", "copy.bin")
    orphan, _ = client.blobs.put_bytes(b"stored, then the writer crashed before recording it")
    young, _ = client.blobs.put_bytes(b"stored a moment ago, not recorded yet")
    age_everything(on_server)
    os.utime(on_server._path(young))  # now: inside the grace period
    (Path(on_server.root) / "tmp" / "leftover").write_bytes(b"partial upload")
    os.utime(Path(on_server.root) / "tmp" / "leftover", (OLD, OLD))
    client.delete_runs([doomed.id])

    report = client.gc(batch_size=2)

    assert report == GcReport(runs_purged=1, blobs_deleted=2, blobs_kept=3, temp_files_removed=1)
    assert not on_server.exists(only_doomed) and not on_server.exists(orphan)
    assert on_server.exists(young)
    assert client.read_artifact(kept.id, "copy.bin") == b"in both runs"
    assert client.read_artifact(kept.id, "b.bin") == b"only in the kept run"
    with pytest.raises(RunNotFound):
        client.get_run(doomed.id)


def test_the_server_refuses_to_delete_a_referenced_blob(store: RestStore) -> None:
    blobs = store.blob_store()
    used, size = blobs.put_bytes(b"an artifact of a run " + uuid.uuid4().bytes)
    store.create_run(RunCreate(run_id="r1", experiment_name="gc", name="r", start_time=1, user="ann"))
    store.record_artifacts("r1", [Artifact("model.bin", used, size, 1)])
    with pytest.raises(InvalidState, match=used) as refused:
        blobs.delete(used)
    assert refused.value.details == {"digest": used}
    assert blobs.get_bytes(used).startswith(b"an artifact of a run")
    unused, _ = blobs.put_bytes(b"nobody refers to this")
    blobs.delete(unused)
    blobs.delete(unused)  # deleting what is not there is harmless
    with pytest.raises(BlobNotFound):
        blobs.get_bytes(unused)


def test_blob_listing_is_paged_and_times_move_onto_the_client_clock(
    store: RestStore, on_server: FsspecBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs = store.blob_store()
    digests = {blobs.put_bytes(f"blob {i}".encode())[0] for i in range(5)}
    server_times = dict(on_server.iter_digests())
    ahead = SimpleNamespace(time=lambda: time.time() + 3600.0)  # the server's clock runs an hour fast
    monkeypatch.setattr("shipyard.server.routers.blobs.time", ahead)

    listed = dict(blobs.iter_digests(batch_size=2))

    assert set(listed) == digests == set(server_times)
    for digest, mtime in listed.items():
        assert abs(mtime - (server_times[digest] - 3600.0)) < 60


def test_listing_and_temp_cleanup_over_plain_http(
    store: RestStore, server: SyncASGITransport, on_server: FsspecBlobStore
) -> None:
    digest, _ = store.blob_store().put_bytes(b"listed")
    stale = Path(on_server.root) / "tmp" / "stale"
    stale.write_bytes(b"partial")
    os.utime(stale, (OLD, OLD))
    with httpx.Client(transport=Borrowed(server), base_url="http://testserver") as http:
        listing = http.get(f"{API}/blobs", params={"batch_size": 1})
        assert listing.headers["content-type"].startswith("application/x-ndjson")
        pages = [json.loads(line) for line in listing.text.splitlines()]
        assert [p["blobs"][0][0] for p in pages] == [digest]
        assert abs(pages[0]["now"] - time.time()) < 60
        assert http.get(f"{API}/blobs", params={"batch_size": 0}).status_code == 422
        assert http.delete(f"{API}/blobs/tmp", params={"older_than_s": 3600}).json() == {"count": 1}
        assert http.delete(f"{API}/blobs/not-a-digest").status_code == 400
    assert not stale.exists()
