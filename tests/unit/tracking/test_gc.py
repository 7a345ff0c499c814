"""Garbage collection: purge deleted runs, then delete only blobs no remaining run refers to."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from shipyard import Client, GcReport
from shipyard.errors import BlobNotFound, RunNotFound


def _blob_count(tmp_path: Path) -> int:
    return sum(1 for p in (tmp_path / "artifacts" / "blobs").rglob("*") if p.is_file())


@pytest.fixture
def two_runs(client: Client) -> tuple[str, str, dict[str, str]]:
    with client.start_run(log_environment=False) as doomed:
        only_doomed = doomed.log_bytes(b"only in the doomed run", "a.bin").digest
        shared = doomed.log_bytes(b"in both runs", "shared.bin").digest
    with client.start_run(log_environment=False) as kept:
        only_kept = kept.log_bytes(b"only in the kept run", "b.bin").digest
        kept.log_bytes(b"in both runs", "copy-of-shared.bin")
    return doomed.id, kept.id, {"only_doomed": only_doomed, "shared": shared, "only_kept": only_kept}


def test_gc_purges_deleted_runs_and_deletes_only_unreferenced_blobs(
    client: Client, two_runs: tuple[str, str, dict[str, str]], tmp_path: Path
) -> None:
    doomed, kept, digests = two_runs
    assert _blob_count(tmp_path) == 3
    client.delete_runs([doomed])
    time.sleep(0.01)  # blobs must be strictly older than "now - grace"
    report = client.gc(grace_seconds=0)
    assert report == GcReport(runs_purged=1, blobs_deleted=1, blobs_kept=2, temp_files_removed=0)
    with pytest.raises(RunNotFound):
        client.get_run(doomed)
    assert not client.blobs.exists(digests["only_doomed"])
    assert client.read_artifact(kept, "copy-of-shared.bin") == b"in both runs"
    assert client.read_artifact(kept, "b.bin") == b"only in the kept run"
    assert _blob_count(tmp_path) == 2


def test_gc_keeps_young_unreferenced_blobs_within_the_grace_period(
    client: Client, two_runs: tuple[str, str, dict[str, str]]
) -> None:
    """A writer may have stored the bytes and not yet recorded the artifact row."""
    doomed, _, digests = two_runs
    client.delete_runs([doomed])
    report = client.gc(grace_seconds=3600)
    assert (report.runs_purged, report.blobs_deleted, report.blobs_kept) == (1, 0, 3)
    assert client.blobs.exists(digests["only_doomed"])


def test_gc_without_deleted_runs_deletes_nothing_referenced(
    client: Client, two_runs: tuple[str, str, dict[str, str]]
) -> None:
    report = client.gc(grace_seconds=0)
    assert (report.runs_purged, report.blobs_deleted, report.blobs_kept) == (0, 0, 3)


def test_gc_deletes_orphan_blobs_nobody_ever_recorded(client: Client, tmp_path: Path) -> None:
    orphan, _ = client.blobs.put_bytes(b"stored, then the writer crashed before recording it")
    old = time.time() - 7200
    path = tmp_path / "artifacts" / "blobs" / orphan[:2] / orphan[2:]
    os.utime(path, (old, old))
    report = client.gc()  # default grace: one hour
    assert report.blobs_deleted == 1
    with pytest.raises(BlobNotFound):
        client.blobs.get_bytes(orphan)


def test_gc_removes_stale_temp_files(client: Client, tmp_path: Path) -> None:
    client.blobs.put_bytes(b"creates the layout")
    stale = tmp_path / "artifacts" / "tmp" / "leftover"
    stale.write_bytes(b"partial")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    assert client.gc().temp_files_removed == 1
    assert not stale.exists()


def test_gc_pages_through_many_blobs_in_small_batches(client: Client) -> None:
    with client.start_run(log_environment=False) as keep:
        for i in range(25):
            keep.log_bytes(f"kept {i}".encode(), f"k/{i}")
    with client.start_run(log_environment=False) as drop:
        for i in range(25):
            drop.log_bytes(f"dropped {i}".encode(), f"d/{i}")
    client.delete_runs([drop.id])
    time.sleep(0.01)
    report = client.gc(grace_seconds=0, batch_size=7)
    assert (report.runs_purged, report.blobs_deleted, report.blobs_kept) == (1, 25, 25)
    assert len(client.list_artifacts(keep.id)) == 25


def test_gc_report_serialises_to_a_dict() -> None:
    assert GcReport(1, 2, 3, 4).to_dict() == {
        "runs_purged": 1,
        "blobs_deleted": 2,
        "blobs_kept": 3,
        "temp_files_removed": 4,
    }
