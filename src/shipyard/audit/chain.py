"""Hashing and verification of the audit chain (pure functions over entries; no store access)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import blake3

from shipyard.audit.anchor import Checkpoint
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
    """The outcome of :func:`verify_chain`: ``ok``, how many entries were checked, problems
    (tampering found) and notes (what could not be checked, e.g. no checkpoints to compare with)."""

    checked: int = 0
    problems: list[str] = field(default_factory=list)
    first_bad_seq: int | None = None
    notes: list[str] = field(default_factory=list)
    anchored_seq: int | None = None  # the newest checkpoint the chain matched
    checkpoints: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def _bad(self, seq: int, message: str) -> None:
        if self.first_bad_seq is None or seq < self.first_bad_seq:
            self.first_bad_seq = seq
        self.problems.append(message)

    def add_problem(self, message: str, seq: int | None = None) -> None:
        """Record tampering found by a check outside the chain walk (e.g. registry state)."""
        if seq is not None:
            self._bad(seq, message)
        else:
            self.problems.append(message)

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_bad_seq": self.first_bad_seq,
            "anchored_seq": self.anchored_seq,
            "checkpoints": self.checkpoints,
            "problems": self.problems,
            "notes": self.notes,
        }


def _trusted(checkpoints: Sequence[Checkpoint], key: bytes | None, report: ChainReport) -> list[Checkpoint]:
    """The checkpoints that count: with a key, only those whose MAC checks out (others are problems)."""
    if key is None:
        if checkpoints:
            report.notes.append(
                "checkpoints were not authenticated (no audit_key_file configured): whoever can write "
                "the checkpoint location could have forged them"
            )
        return list(checkpoints)
    good = []
    for cp in checkpoints:
        if cp.authentic(key):
            good.append(cp)
        else:
            what = "carries no MAC" if not cp.mac else "has a MAC that does not match the audit key"
            report._bad(cp.seq, f"checkpoint at entry {cp.seq} {what}: forged, or written with another key")
    return good


def verify_chain(
    entries: Iterable[AuditEntry],
    checkpoints: Sequence[Checkpoint] = (),
    *,
    key: bytes | None = None,
    pinned: Sequence[Checkpoint] = (),
) -> ChainReport:
    """Check entries in ``seq`` order: each must hash right and point at its predecessor's hash,
    and the chain must agree with every checkpoint (anchor) given.

    An edited entry fails its own hash; a deleted one leaves a gap in ``seq`` and a broken link;
    reordered entries break the links. A chain rewritten consistently (edited, then every later
    hash recomputed) or cut short (last rows or every row deleted) still links, so it is caught
    only by checkpoints kept outside the database: entry ``seq`` must still have the checkpoint's
    hash, and the chain must still reach ``seq`` and hold at least ``count`` entries. With
    ``key``, checkpoints whose MAC does not verify are reported and ignored; ``pinned`` ones (an
    operator's own copies) are trusted as given. One pass over any iterable (a store's pages).

    Example:
        >>> verify_chain([]).ok
        True
    """
    report = ChainReport()
    trusted = _trusted(checkpoints, key, report) + list(pinned)
    report.checkpoints = len(trusted)
    by_seq: dict[int, list[Checkpoint]] = {}
    for cp in trusted:
        by_seq.setdefault(cp.seq, []).append(cp)
    prev_hash, prev_seq = GENESIS, 0
    for e in entries:
        report.checked += 1
        for cp in by_seq.get(e.seq, ()):
            if cp.hash != e.hash:
                report._bad(
                    e.seq,
                    f"entry {e.seq}: differs from the checkpoint taken at {cp.time} ms — the chain "
                    "was rewritten from here or earlier",
                )
            elif report.anchored_seq is None or e.seq > report.anchored_seq:
                report.anchored_seq = e.seq
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
    _after_walk(report, trusted, prev_seq)
    return report


def _after_walk(report: ChainReport, checkpoints: Sequence[Checkpoint], last_seq: int) -> None:
    """Checkpoints beyond the end of the chain, or counting more entries, mean rows were deleted."""
    beyond = [cp for cp in checkpoints if cp.seq > last_seq]
    if beyond:
        cp = max(beyond, key=lambda c: c.seq)
        report._bad(
            last_seq + 1,
            f"the chain ends at entry {last_seq} but a checkpoint recorded entry {cp.seq} "
            f"({cp.count} entries) at {cp.time} ms: the last entries were deleted",
        )
    most = max((cp.count for cp in checkpoints), default=0)
    if most > report.checked:
        report._bad(
            last_seq + 1,
            f"the chain holds {report.checked} entries but a checkpoint counted {most}: entries were deleted",
        )
    if not checkpoints and report.checked:
        report.notes.append(
            "no checkpoint to compare with: deleting the last entries, or rewriting the chain and "
            "every later hash, cannot be detected (write one with: shipyard audit anchor)"
        )
