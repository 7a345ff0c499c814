"""Hashing and verification of the audit chain (pure functions over entries; no store access)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import blake3

from shipyard.entities import AuditEntry

__all__ = ["ChainReport", "GENESIS", "entry_hash", "verify_chain"]

GENESIS = "0" * 64  # the "previous hash" of the first entry


def entry_hash(entry: AuditEntry, prev_hash: str) -> str:
    """BLAKE3 of the entry's canonical JSON (every field but its own hash) and the previous hash.

    Example:
        >>> e = AuditEntry(1, 0, "ann", "run.delete", "run", "r1", None, {"deleted": True}, "")
        >>> len(entry_hash(e, GENESIS))
        64
    """
    body = {
        "seq": entry.seq,
        "ts": entry.ts,
        "actor": entry.actor,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "before": entry.before,
        "after": entry.after,
        "reason": entry.reason,
        "prev": prev_hash,
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return blake3.blake3(text.encode()).hexdigest()


@dataclass
class ChainReport:
    """The outcome of :func:`verify_chain`: ``ok``, how many entries were checked, and problems."""

    checked: int = 0
    problems: list[str] = field(default_factory=list)
    first_bad_seq: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def _bad(self, seq: int, message: str) -> None:
        if self.first_bad_seq is None:
            self.first_bad_seq = seq
        self.problems.append(message)


def verify_chain(entries: Iterable[AuditEntry]) -> ChainReport:
    """Check entries in ``seq`` order: each must hash right and point at its predecessor's hash.

    An edited entry fails its own hash; a deleted one leaves a gap in ``seq`` and a broken link;
    reordered entries break the links. Works on any iterable (a store's pages), in one pass.
    """
    report = ChainReport()
    prev_hash, prev_seq = GENESIS, 0
    for e in entries:
        report.checked += 1
        if e.seq != prev_seq + 1:
            report._bad(
                e.seq,
                f"entry {e.seq}: expected entry {prev_seq + 1} next — entries were deleted or reordered",
            )
        if e.prev_hash != prev_hash:
            report._bad(
                e.seq, f"entry {e.seq}: does not link to the entry before it (deleted, reordered or edited)"
            )
        if entry_hash(e, e.prev_hash) != e.hash:
            report._bad(e.seq, f"entry {e.seq}: its content does not match its hash — it was edited")
        prev_hash, prev_seq = e.hash, e.seq
    return report
