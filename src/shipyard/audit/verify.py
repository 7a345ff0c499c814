"""``verify_store``: everything ``shipyard audit verify`` checks, over any store that can be read.

1. The chain itself: every entry hashes right and links to the one before (``verify_chain``).
2. The chain against checkpoints kept outside the database (the store's own, keyed, plus any
   an operator pinned): no checkpointed entry changed, the chain still reaches the newest
   checkpoint, and it never holds fewer entries than a checkpoint counted.
3. The registry against the chain: aliases and policies are what the chain last recorded, and
   every alias-history row (what rollback trusts) matches the entry written with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from shipyard.audit.anchor import Checkpoint
from shipyard.audit.chain import ChainReport, verify_chain
from shipyard.audit.state import RegistryState, compare_registry
from shipyard.entities import AliasMove, AuditEntry, RegisteredModel
from shipyard.errors import ShipyardError

__all__ = ["AuditSource", "verify_store"]


class AuditSource(Protocol):
    """The reads verification needs (every ``Store`` has them)."""

    def list_audit(self, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]: ...

    def list_audit_checkpoints(self) -> list[Checkpoint]: ...

    def list_registered_models(self) -> list[RegisteredModel]: ...

    def list_alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]: ...


def verify_store(
    source: AuditSource,
    *,
    key: bytes | None = None,
    pinned: Sequence[Checkpoint] = (),
    page_size: int = 1000,
) -> ChainReport:
    """Verify the chain, its checkpoints and the registry state it implies; one pass over the log.

    Example:
        >>> report = verify_store(client.store, key=None)  # doctest: +SKIP
        >>> report.ok, report.problems  # doctest: +SKIP
        (True, [])
    """
    broken: str | None = None
    try:
        checkpoints = source.list_audit_checkpoints()
    except ShipyardError as exc:  # a damaged checkpoint file is evidence too
        checkpoints, broken = [], str(exc)
    state = RegistryState()

    def pages() -> Iterator[AuditEntry]:
        after = 0
        while batch := source.list_audit(after, page_size):
            for entry in batch:
                state.observe(entry)
                yield entry
            after = batch[-1].seq

    report = verify_chain(pages(), checkpoints, key=key, pinned=pinned)
    if broken is not None:
        report.add_problem(broken)
    models = source.list_registered_models()
    history = [move for m in models for move in source.list_alias_history(m.name)]
    for seq, message in compare_registry(state, models, history):
        report.add_problem(message, seq)
    return report
