"""The verification report of an import: per kind of record, what the source held, what this import
wrote, what was there already, what failed, what Shipyard holds afterwards (read back), and a
checksum of each side.

``ok`` holds when nothing failed and, for every kind, both sides agree: the same count and, where a
checksum is kept, the same checksum. The report is JSON-ready (``to_dict``) and carries the mapping
from the source's ids and names to Shipyard's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shipyard.importers.checksums import combined

__all__ = ["EntityReport", "ImportReport"]

_SHOWN_MISMATCHES = 20


@dataclass
class EntityReport:
    """One kind of record (``runs``, ``metric points``, ``model versions`` ...).

    Checksummed kinds add one digest per item to each side (``add_source`` / ``add_target``);
    counted kinds (params, tags, metric points, artifact bytes) add numbers only, and are covered
    by the checksum of the records that hold them.
    """

    entity: str
    checksummed: bool = True
    source: int = 0
    imported: int = 0
    existing: int = 0
    failed: int = 0
    target: int = 0
    mismatched: list[str] = field(default_factory=list)
    _source_digests: list[str] = field(default_factory=list, repr=False)
    _target_digests: list[str] = field(default_factory=list, repr=False)

    def add_source(self, digest: str | None = None, count: int = 1) -> None:
        self.source += count
        if digest is not None:
            self._source_digests.append(digest)

    def add_target(self, digest: str | None = None, count: int = 1) -> None:
        self.target += count
        if digest is not None:
            self._target_digests.append(digest)

    def compare(self, item: str, source_digest: str, target_digest: str | None) -> bool:
        """Record both sides of one item; a difference is remembered by ``item``."""
        self.add_source(source_digest)
        if target_digest is not None:
            self.add_target(target_digest)
        if target_digest != source_digest:
            self.mismatched.append(item)
            return False
        return True

    @property
    def source_checksum(self) -> str | None:
        return combined(self._source_digests) if self.checksummed else None

    @property
    def target_checksum(self) -> str | None:
        return combined(self._target_digests) if self.checksummed else None

    @property
    def matches(self) -> bool:
        return (
            self.failed == 0
            and not self.mismatched
            and self.source == self.target
            and self.source_checksum == self.target_checksum
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "source": self.source,
            "imported": self.imported,
            "existing": self.existing,
            "failed": self.failed,
            "target": self.target,
            "source_checksum": self.source_checksum,
            "target_checksum": self.target_checksum,
            "matches": self.matches,
            "mismatched": self.mismatched[:_SHOWN_MISMATCHES],
        }


@dataclass
class ImportReport:
    """What an import did and found (see the module docstring).

    ``not_imported`` counts what the source holds that Shipyard has no place for yet (none today:
    kept for what a later MLflow adds); ``problems`` explains every failure, mismatch
    and change made on the way (a renamed model, a parent run that was not there).
    """

    source: str
    target: str
    dry_run: bool = False
    entities: dict[str, EntityReport] = field(default_factory=dict)
    mapping: dict[str, Any] = field(default_factory=dict)
    not_imported: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)

    def entity(self, name: str, checksummed: bool = True) -> EntityReport:
        """The row of ``name`` (created on first use, in order)."""
        if name not in self.entities:
            self.entities[name] = EntityReport(name, checksummed)
        return self.entities[name]

    def skipped(self, what: str, count: int = 1) -> None:
        if count:
            self.not_imported[what] = self.not_imported.get(what, 0) + count

    @property
    def ok(self) -> bool:
        """Nothing failed and both sides agree on every kind (a dry run is never ``ok``)."""
        return not self.dry_run and all(e.matches for e in self.entities.values())

    @property
    def runs_per_second(self) -> float:
        """Runs read, written and checked per second of the runs phase."""
        runs, seconds = self.entities.get("runs"), self.phases.get("runs", 0.0)
        return runs.source / seconds if runs is not None and seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "dry_run": self.dry_run,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "phases": {k: round(v, 3) for k, v in self.phases.items()},
            "runs_per_second": round(self.runs_per_second, 1),
            "entities": [e.to_dict() for e in self.entities.values()],
            "not_imported": dict(self.not_imported),
            "problems": list(self.problems),
            "mapping": self.mapping,
        }
