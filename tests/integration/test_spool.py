"""A server that dies mid-training: the SDK keeps going, and every point arrives exactly once."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_process import LiveServer, child_env

from shipyard import Client
from shipyard.config import load_settings
from shipyard.entities import RunStatus
from shipyard.errors import StorageFull
from shipyard.store.rest import RestStore
from shipyard.store.spool import SyncReport, replay_spools

pytestmark = pytest.mark.integration


def wait_until(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_killed_server_loses_nothing_and_duplicates_nothing(make_server: Any, tmp_path: Path) -> None:
    server: LiveServer = make_server()
    settings = load_settings(tracking_uri=server.url, flush_interval=0.05, http_timeout=3)
    client = Client(settings=settings)
    store = client.store
    assert isinstance(store, RestStore)
    (tmp_path / "weights.bin").write_bytes(b"w" * 50_000)
    try:
        with client.start_run(experiment="outage", params={"lr": 0.01}, log_environment=False) as run:
            for step in range(300):
                run.log_metrics({"loss": 1 / (step + 1), "acc": step / 1000})
                if step % 50 == 0:
                    run.flush()
            run.flush()
            server.kill()
            for step in range(300, 600):  # server gone: none of these calls may raise
                run.log_metrics({"loss": 1 / (step + 1), "acc": step / 1000})
                if step % 50 == 0:
                    run.flush()
            run.log_params({"epochs": 6})
            run.log_artifact(tmp_path / "weights.bin", "model/weights.bin")
            run.flush()
            assert store.spooling
            server.start()  # same port, same store
            wait_until(lambda: not store.spooling)  # the background replay sends the journal
            for step in range(600, 650):
                run.log_metrics({"loss": 1 / (step + 1), "acc": step / 1000})
    finally:
        client.close()
    assert not list(settings.spool_dir.glob("*.jsonl"))
    check = Client(tracking_uri=server.url)
    try:
        for key in ("loss", "acc"):
            history = check.get_metric_history(run.id, key)
            assert history["step"].tolist() == list(range(650)), key  # exact: nothing lost, no duplicate
        got = check.get_run(run.id)
        assert got.status is RunStatus.FINISHED and got.params == {"lr": "0.01", "epochs": "6"}
        assert check.read_artifact(run.id, "model/weights.bin") == b"w" * 50_000
    finally:
        check.close()


_OFFLINE_TRAINER = """
import sys
from shipyard import Client
client = Client(tracking_uri=sys.argv[1])
with client.start_run(experiment="offline", params={"p": 1}, log_environment=False) as run:
    for step in range(int(sys.argv[2])):
        run.log_metric("m", step)
    run.log_text("made offline", "note.txt")
client.close()
print(run.id)
"""


def train_offline(server: LiveServer, home: Path, steps: int) -> str:
    """A whole training process that runs while the server is down; its writes stay spooled."""
    done = subprocess.run(
        [sys.executable, "-c", _OFFLINE_TRAINER, server.url, str(steps)],
        env=child_env(home) | {"SHIPYARD_HTTP_TIMEOUT": "2", "SHIPYARD_FLUSH_INTERVAL": "0.05"},
        capture_output=True,
        timeout=120,
        check=True,
    )
    return done.stdout.decode().strip().splitlines()[-1]


def test_shipyard_sync_replays_what_a_finished_process_left(make_server: Any, tmp_path: Path) -> None:
    server: LiveServer = make_server(start=False)
    home = tmp_path / "trainer"
    run_id = train_offline(server, home, steps=500)
    journals = list((home / "spool").glob("*.jsonl"))
    assert len(journals) == 1
    server.start()
    report = replay_spools(None, home / "spool")  # None: each journal to the server it names
    assert report.files == 1 and report.failed == 0 and report.pending == 0
    assert report.operations >= 4  # create_run, >= 1 batch, put_blob, record_artifacts, update_run
    assert not list((home / "spool").glob("*.jsonl")) and not list((home / "spool" / "blobs").iterdir())
    assert replay_spools(server.url, home / "spool") == SyncReport()
    check = Client(tracking_uri=server.url)
    try:
        assert check.get_metric_history(run_id, "m")["step"].tolist() == list(range(500))
        assert check.read_artifact(run_id, "note.txt") == b"made offline"
        assert check.get_run(run_id).status is RunStatus.FINISHED
    finally:
        check.close()


def test_two_syncs_at_once_never_replay_one_journal_twice(make_server: Any, tmp_path: Path) -> None:
    server: LiveServer = make_server(start=False)
    homes = [tmp_path / "a", tmp_path / "b"]
    run_ids = [train_offline(server, home, steps=300) for home in homes]
    spool = tmp_path / "spool"
    spool.mkdir()
    for home in homes:  # gather both journals (and their blobs) in one spool folder
        for path in (home / "spool").glob("*.jsonl"):
            path.rename(spool / path.name)
        for blob in (home / "spool" / "blobs").iterdir():
            (spool / "blobs").mkdir(exist_ok=True)
            blob.rename(spool / "blobs" / blob.name)
    server.start()
    reports: list[SyncReport] = []
    syncs = [
        threading.Thread(target=lambda: reports.append(replay_spools(server.url, spool))) for _ in range(3)
    ]
    for t in syncs:
        t.start()
    for t in syncs:
        t.join(timeout=60)
    assert sum(r.files for r in reports) == 2 and sum(r.failed for r in reports) == 0
    assert not list(spool.glob("*.jsonl"))
    check = Client(tracking_uri=server.url)
    try:
        for run_id in run_ids:
            assert check.get_metric_history(run_id, "m")["step"].tolist() == list(range(300))
    finally:
        check.close()


@contextlib.contextmanager
def tiny_disk(folder: Path, size: str = "256k") -> Iterator[None]:
    """A real, tiny file system at ``folder`` (tmpfs; needs root and mount rights, else skip)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        message = f"cannot mount a tmpfs here: {mounted.stderr.strip()}"
        if os.environ.get("CI"):  # CI runs as root on a machine that mounts tmpfs: never skip there
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_server_with_a_full_artifact_disk_refuses_and_the_sdk_raises(
    make_server: Any, tmp_path: Path
) -> None:
    server: LiveServer = make_server(start=False)
    with tiny_disk(Path(server.artifact_uri)):
        server.start()
        client = Client(settings=load_settings(tracking_uri=server.url, home=str(tmp_path / "home")))
        try:
            run = client.start_run("full-disk", log_environment=False, system_metrics=False)
            (tmp_path / "big.bin").write_bytes(os.urandom(600_000))
            with pytest.raises(StorageFull, match=server.artifact_uri):
                run.log_artifact(tmp_path / "big.bin")
            store = client.store
            assert isinstance(store, RestStore) and not store.spooling
            run.log_metric("loss", 0.5)
            run.end()
            assert client.get_run(run.id).status is RunStatus.FINISHED
            assert client.list_artifacts(run.id) == []
        finally:
            client.close()
        assert not list((tmp_path / "home" / "spool").glob("*.jsonl"))
