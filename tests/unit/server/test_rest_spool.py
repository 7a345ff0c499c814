"""The offline spool: writes never fail while the server is away, and arrive once, in order, later."""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_harness import Borrowed, FlakyTransport, SyncASGITransport, make_settings

from shipyard import Client
from shipyard.entities import Artifact, LogBatch, RunCreate, RunStatus
from shipyard.errors import StoreUnavailable
from shipyard.store.rest import RestStore
from shipyard.store.spool import Journal, replay_journal, replay_spools


@pytest.fixture
def flaky(transport: SyncASGITransport) -> FlakyTransport:
    return FlakyTransport(Borrowed(transport))


@pytest.fixture
def store(flaky: FlakyTransport, tmp_path: Path) -> Iterator[RestStore]:
    s = RestStore("http://testserver", make_settings(tmp_path), transport=flaky, replay_interval=60)
    yield s
    s.close()


@pytest.fixture
def reader(rest_store: RestStore) -> RestStore:
    """A second client on the same server that is never cut off: it checks what arrived."""
    return rest_store


def spec(run_id: str, **kw: Any) -> RunCreate:
    return RunCreate(run_id=run_id, experiment_name="spool", name="r", start_time=1000, user="ann", **kw)


def journals(store: RestStore) -> list[Path]:
    return sorted(store.settings.spool_dir.glob("*.jsonl"))


def log_points(store: RestStore, run_id: str, start: int, count: int) -> None:
    store.log_batch(run_id, LogBatch([("m", float(i), i, 1000 + i) for i in range(start, start + count)]))


class Interrupting:
    """A replay target that loses the server after ``after`` entries (like a mid-replay outage)."""

    def __init__(self, inner: RestStore, after: int) -> None:
        self.inner, self.after, self.uri = inner, after, inner.uri

    def send_op(self, op: dict[str, Any]) -> None:
        if self.after <= 0:
            raise StoreUnavailable("gone again")
        self.after -= 1
        self.inner.send_op(op)

    def upload_blob(self, path: Path, digest: str) -> None:
        self.inner.upload_blob(path, digest)

    def blob_exists(self, digest: str) -> bool:
        return self.inner.blob_exists(digest)

    def close(self) -> None:
        pass


def test_writes_while_down_return_normally_and_reads_raise(
    store: RestStore, flaky: FlakyTransport, reader: RestStore
) -> None:
    flaky.down = True
    run_id = uuid.uuid4().hex
    run = store.create_run(spec(run_id, params={"lr": "0.1"}))
    assert (run.id, run.status, run.params) == (run_id, RunStatus.RUNNING, {"lr": "0.1"})
    log_points(store, run_id, 0, 10)
    store.log_batch(run_id, LogBatch([("m", math.nan, 10, 2000)], tags={"t": "1"}))
    digest, size = store.blob_store().put_bytes(b"offline bytes")
    store.record_artifacts(run_id, [Artifact("a.txt", digest, size)])
    store.update_run(run_id, status=RunStatus.FINISHED)
    assert store.spooling
    with pytest.raises(StoreUnavailable, match="unreachable.*writes are kept in"):
        store.get_run(run_id)
    (journal,) = journals(store)
    kinds = [json.loads(line)["op"] for line in journal.read_text().splitlines()]
    assert kinds == [
        "header",
        "create_run",
        "log_batch",
        "log_batch",
        "put_blob",
        "record_artifacts",
        "update_run",
    ]
    assert (store.settings.spool_dir / "blobs" / digest).read_bytes() == b"offline bytes"

    flaky.down = False
    assert store.flush_spool()
    assert not store.spooling and journals(store) == []
    assert not (store.settings.spool_dir / "blobs" / digest).exists()
    got = reader.get_run(run_id)
    assert got.status is RunStatus.FINISHED and got.tags == {"t": "1"} and got.params == {"lr": "0.1"}
    history = reader.get_metric_history(run_id, "m")
    assert history.steps == list(range(11)) and math.isnan(history.values[-1])
    assert reader.blob_store().get_bytes(reader.list_artifacts(run_id)[0].digest) == b"offline bytes"


def test_once_spooling_later_writes_keep_their_order(
    store: RestStore, flaky: FlakyTransport, reader: RestStore
) -> None:
    flaky.down = True
    run_id = uuid.uuid4().hex
    store.create_run(spec(run_id))
    flaky.down = False  # back, but the spool is not replayed yet: a direct write would be a 404
    log_points(store, run_id, 0, 5)
    store.update_run(run_id, status=RunStatus.FINISHED, end_time=4242)
    assert store.spooling
    assert store.flush_spool()
    assert len(reader.get_metric_history(run_id, "m")) == 5
    assert reader.get_run(run_id).end_time == 4242


def test_writes_go_straight_to_the_server_again_after_a_replay(
    store: RestStore, flaky: FlakyTransport, reader: RestStore
) -> None:
    flaky.down = True
    run_id = uuid.uuid4().hex
    store.create_run(spec(run_id))
    flaky.down = False
    assert store.flush_spool()
    log_points(store, run_id, 0, 3)
    assert journals(store) == [] and len(reader.get_metric_history(run_id, "m")) == 3


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("slow"),
        httpx.ConnectTimeout("slow"),
        httpx.RemoteProtocolError("reset"),
        httpx.Response(502, text="bad gateway"),
        httpx.Response(503, text="<html>upstream down</html>"),
        httpx.Response(504),
    ],
)
def test_timeouts_resets_and_gateway_errors_also_spool(
    transport: SyncASGITransport, tmp_path: Path, failure: Exception | httpx.Response
) -> None:
    class Failing(Borrowed):
        failing = True

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if not self.failing:
                return super().handle_request(request)
            if isinstance(failure, httpx.Response):
                return failure
            raise failure

    failing = Failing(transport)
    store = RestStore("http://testserver", make_settings(tmp_path), transport=failing, replay_interval=60)
    try:
        store.create_run(spec(uuid.uuid4().hex))
        assert store.spooling
    finally:
        failing.failing = False
        store.close()  # replays
    assert journals(store) == []


def test_background_replay_sends_the_spool_when_the_server_is_back(
    flaky: FlakyTransport, tmp_path: Path, reader: RestStore
) -> None:
    store = RestStore("http://testserver", make_settings(tmp_path), transport=flaky, replay_interval=0.05)
    try:
        flaky.down = True
        run_id = uuid.uuid4().hex
        store.create_run(spec(run_id))
        log_points(store, run_id, 0, 7)
        time.sleep(0.2)
        assert store.spooling  # retried in the background, still down
        flaky.down = False
        deadline = time.monotonic() + 10
        while store.spooling and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not store.spooling
        assert len(reader.get_metric_history(run_id, "m")) == 7
    finally:
        store.close()


def test_close_replays_or_keeps_the_journal(
    flaky: FlakyTransport, tmp_path: Path, reader: RestStore, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path)
    flaky.down = True
    first = RestStore("http://testserver", settings, transport=flaky, replay_interval=60)
    run_id = uuid.uuid4().hex
    first.create_run(spec(run_id))
    with caplog.at_level(logging.WARNING, logger="shipyard.rest"):
        first.close()
    assert "shipyard sync" in caplog.text
    assert len(list(settings.spool_dir.glob("*.jsonl"))) == 1  # kept for later
    flaky.down = False
    second = RestStore("http://testserver", settings, transport=flaky, replay_interval=60)
    second.create_run(spec(uuid.uuid4().hex))
    (journal,) = settings.spool_dir.glob("*.jsonl")
    assert replay_journal(journal, second).operations == 1
    second.close()
    assert reader.get_run(run_id).id == run_id


def test_a_replay_interrupted_midway_resumes_without_duplicates(
    store: RestStore, flaky: FlakyTransport, reader: RestStore
) -> None:
    flaky.down = True
    run_id = uuid.uuid4().hex
    store.create_run(spec(run_id))
    for i in range(6):
        log_points(store, run_id, i * 10, 10)
    flaky.down = False
    (journal,) = journals(store)
    partial = replay_journal(journal, Interrupting(store, after=3))
    assert (partial.done, partial.operations) == (False, 3) and partial.error is not None
    assert len(reader.get_metric_history(run_id, "m")) == 20
    offset = journal.with_name(journal.name + ".offset")
    offset.write_bytes(b"0" * 20)  # as if the process died before saving its progress
    result = replay_journal(journal, store)
    assert result.done and result.operations == 7
    assert reader.get_metric_history(run_id, "m").steps == list(range(60))
    assert not journal.exists() and not offset.exists()


def test_two_replayers_never_replay_one_journal_at_once(store: RestStore, flaky: FlakyTransport) -> None:
    flaky.down = True
    store.create_run(spec(uuid.uuid4().hex))
    flaky.down = False
    (journal,) = journals(store)
    with open(journal.with_name(journal.name + ".offset"), "a+b") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another process is replaying it
        busy = replay_journal(journal, store)
        assert (busy.done, busy.operations) == (False, 0)
    assert replay_journal(journal, store).done


def test_a_journal_replayed_elsewhere_rotates_for_new_writes(
    store: RestStore, flaky: FlakyTransport, reader: RestStore
) -> None:
    flaky.down = True
    run_id = uuid.uuid4().hex
    store.create_run(spec(run_id))
    (journal,) = journals(store)
    flaky.down = False
    assert replay_journal(journal, reader).done  # e.g. `shipyard sync` in another process
    log_points(store, run_id, 0, 4)  # still spooling: lands in a fresh journal
    (fresh,) = journals(store)
    assert fresh != journal
    assert store.flush_spool() and not store.spooling
    assert len(reader.get_metric_history(run_id, "m")) == 4


def test_refused_entries_are_set_aside_and_the_rest_goes_through(
    store: RestStore, flaky: FlakyTransport, reader: RestStore
) -> None:
    flaky.down = True
    run_id = uuid.uuid4().hex
    store.create_run(spec(run_id, params={"p": "1"}))
    store.log_batch(run_id, LogBatch(params={"p": "2"}))  # the server will refuse this one
    log_points(store, run_id, 0, 3)
    flaky.down = False
    (journal,) = journals(store)
    result = replay_journal(journal, store)
    assert (result.done, result.operations, result.failed) == (True, 2, 1)
    rejected = (store.settings.spool_dir / "rejected" / journal.name).read_text().splitlines()
    assert json.loads(rejected[0])["error"]["code"] == "invalid_input"
    assert len(reader.get_metric_history(run_id, "m")) == 3


def test_a_torn_last_line_from_a_crashed_writer_is_dropped(tmp_path: Path, reader: RestStore) -> None:
    journal = Journal(tmp_path / "spool", "http://testserver")
    run_id = uuid.uuid4().hex
    journal.append(
        {"op": "create_run", "body": {"run_id": run_id, "experiment_name": "torn", "start_time": 1}}
    )
    journal.close()
    with open(journal.path, "ab") as fh:
        fh.write(b'{"op": "log_batch", "run_id": "')
    result = replay_journal(journal.path, reader)
    assert (result.done, result.operations, result.failed) == (True, 1, 0)
    assert reader.get_run(run_id).experiment_name == "torn"


def test_sdk_training_survives_an_outage_and_loses_nothing(
    transport: SyncASGITransport, flaky: FlakyTransport, tmp_path: Path, reader: RestStore
) -> None:
    client = Client(settings=make_settings(tmp_path, tracking_uri="http://testserver"))
    client.store.close()
    client.store = RestStore("http://testserver", client.settings, transport=flaky, replay_interval=60)
    (tmp_path / "model.bin").write_bytes(os.urandom(3000))
    try:
        with client.start_run(experiment="sdk-outage", params={"lr": 0.1}, log_environment=False) as run:
            for step in range(50):
                run.log_metric("loss", 1 / (step + 1))
                if step == 20:
                    run.flush()
                    flaky.down = True
            run.log_artifact(tmp_path / "model.bin", "model/model.bin")
            run.set_tags({"after": "outage"})
        flaky.down = False
    finally:
        client.close()
    assert reader.get_metric_history(run.id, "loss").steps == list(range(50))
    got = reader.get_run(run.id)
    assert got.status is RunStatus.FINISHED and got.tags["after"] == "outage"
    (artifact,) = reader.list_artifacts(run.id)
    assert reader.blob_store().get_bytes(artifact.digest) == (tmp_path / "model.bin").read_bytes()


def test_replay_spools_keeps_journals_while_the_server_is_unreachable(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "spool", "http://127.0.0.1:9")  # discard port: nothing listens
    journal.append({"op": "update_run", "run_id": "r", "body": {"status": "finished", "end_time": 1}})
    journal.close()
    report = replay_spools(None, tmp_path / "spool", settings=make_settings(tmp_path, http_timeout=2))
    assert (report.files, report.operations, report.failed, report.pending) == (0, 0, 0, 1)
    assert journal.path.exists()
    assert replay_spools(None, tmp_path / "nothing-here").files == 0
