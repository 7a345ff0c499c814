"""Garbage collection: purge deleted runs, then unreferenced blobs, in bounded memory."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from shipyard.artifacts import BlobStore
from shipyard.store import Store

__all__ = ["GcReport", "collect_garbage"]


@dataclass(frozen=True)
class GcReport:
    runs_purged: int
    blobs_deleted: int
    blobs_kept: int
    temp_files_removed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def collect_garbage(store: Store, blobs: BlobStore, grace_seconds: float, batch_size: int = 1000) -> GcReport:
    """Purge deleted runs and sweep blobs nobody refers to.

    Blobs younger than ``grace_seconds`` are kept: a writer may have stored the
    bytes and not yet recorded the artifact row. Digests are checked against the
    store one page of ``batch_size`` at a time.
    """
    purged = store.purge_deleted_runs(batch_size=min(batch_size, 500))
    deleted = kept = 0
    cutoff = time.time() - grace_seconds
    page: list[tuple[str, float]] = []

    def sweep() -> None:
        nonlocal deleted, kept
        referenced = store.referenced_digests([d for d, _ in page])
        for digest, mtime in page:
            if digest in referenced or mtime > cutoff:
                kept += 1
            else:
                blobs.delete(digest)
                deleted += 1
        page.clear()

    for item in blobs.iter_digests():
        page.append(item)
        if len(page) >= batch_size:
            sweep()
    sweep()
    clean_tmp = getattr(blobs, "clean_tmp", None)
    removed = clean_tmp(grace_seconds) if callable(clean_tmp) else 0
    return GcReport(purged, deleted, kept, removed)
