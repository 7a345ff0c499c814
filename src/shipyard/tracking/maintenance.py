"""Garbage collection: purge deleted runs, then unreferenced blobs, in bounded memory.

One implementation for every pair of stores: it needs only ``MaintenanceStore`` (purge, which
digests are referenced) and ``BlobStore`` (list, delete), so it runs the same on a local
folder, an object store or a Shipyard server (``RestBlobStore`` lists and deletes through it).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from shipyard.artifacts import BlobStore
from shipyard.errors import InvalidState
from shipyard.store import MaintenanceStore

__all__ = ["CleansTempFiles", "GcReport", "collect_garbage"]


@dataclass(frozen=True)
class GcReport:
    runs_purged: int
    blobs_deleted: int
    blobs_kept: int
    temp_files_removed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class CleansTempFiles(Protocol):
    """An optional blob-store capability: remove temp files that crashed writers left behind.

    ``FsspecBlobStore`` has it (its ``tmp/`` folder), and ``RestBlobStore`` (the server's).
    """

    def clean_tmp(self, older_than_s: float = 3600.0) -> int: ...


def collect_garbage(
    store: MaintenanceStore, blobs: BlobStore, grace_seconds: float, batch_size: int = 1000
) -> GcReport:
    """Purge deleted runs and sweep blobs nobody refers to.

    Blobs younger than ``grace_seconds`` are kept: a writer may have stored the
    bytes and not yet recorded the artifact row. Digests are checked against the
    store one page of ``batch_size`` at a time. A blob that some record starts to use between
    the check and the delete is kept (a server refuses to delete it with ``InvalidState``).

    Example:
        >>> from shipyard.artifacts import open_blob_store
        >>> from shipyard.store import open_store
        >>> collect_garbage(open_store("sqlite:///:memory:"), open_blob_store("memory://gc-doc"), 3600)
        GcReport(runs_purged=0, blobs_deleted=0, blobs_kept=0, temp_files_removed=0)
    """
    purged = store.purge_deleted_runs(batch_size=min(batch_size, 500))
    deleted = kept = 0
    cutoff = time.time() - grace_seconds
    page: list[tuple[str, float]] = []

    def sweep() -> None:
        nonlocal deleted, kept
        referenced = store.referenced_digests([d for d, _ in page])
        for digest, mtime in page:
            if digest in referenced or mtime > cutoff or not _deleted(blobs, digest):
                kept += 1
            else:
                deleted += 1
        page.clear()

    for item in blobs.iter_digests():
        page.append(item)
        if len(page) >= batch_size:
            sweep()
    sweep()
    removed = blobs.clean_tmp(grace_seconds) if isinstance(blobs, CleansTempFiles) else 0
    return GcReport(purged, deleted, kept, removed)


def _deleted(blobs: BlobStore, digest: str) -> bool:
    try:
        blobs.delete(digest)
    except InvalidState:  # referenced since the page was checked: it stays
        return False
    return True
