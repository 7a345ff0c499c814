"""The audit log's table logic behind ``SqlStore``: append under a lock, list in pages.

Only store methods that perform an action call :func:`append`, inside the action's own
transaction; no public API appends free-form entries. ``append`` notes the new head on the
connection so the store can write a checkpoint once the transaction has committed
(:func:`take_head`).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, func, insert, select, text

from shipyard.audit import GENESIS, Checkpoint, entry_hash
from shipyard.entities import AuditEntry, now_ms
from shipyard.errors import InvalidInput
from shipyard.store.sql import schema as t

__all__ = ["append", "count", "entries", "head", "take_head"]

_PG_AUDIT_LOCK = 0x5348_4155  # serialises appends so the chain has one order
_APPENDED = "shipyard_audit_appended"  # key in Connection.info: this transaction appended


def append(
    conn: Connection,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    before: Any,
    after: Any,
    reason: str,
) -> AuditEntry:
    """Append one entry linked to the last one (the caller's transaction holds the write lock)."""
    if not action or not object_type or not object_id:
        raise InvalidInput("An audit entry needs an action, an object type and an object id")
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
    c = t.audit_log.c
    last = conn.execute(select(c.seq, c.hash).order_by(c.seq.desc()).limit(1)).first()
    seq, prev = (1, GENESIS) if last is None else (last.seq + 1, last.hash)
    entry = AuditEntry(seq, now_ms(), actor, action, object_type, object_id, before, after, reason, prev)
    digest = entry_hash(entry, prev)
    conn.execute(
        insert(t.audit_log),
        {
            "seq": seq,
            "ts": entry.ts,
            "actor": actor,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "before_json": json.dumps(before, default=str),
            "after_json": json.dumps(after, default=str),
            "reason": reason,
            "prev_hash": prev,
            "hash": digest,
        },
    )
    conn.info[_APPENDED] = True
    return AuditEntry(**{**entry.__dict__, "hash": digest})


def take_head(conn: Connection) -> Checkpoint | None:
    """The chain's head if this transaction appended (read inside it, before commit), else None.

    Clears the mark, so call it once per transaction; call it at the start too, to drop a mark
    a failed transaction left on the pooled connection.
    """
    if not conn.info.pop(_APPENDED, False):
        return None
    return head(conn)


def head(conn: Connection) -> Checkpoint:
    """The last entry's ``seq`` and ``hash``, the number of entries, and the time (unsigned)."""
    c = t.audit_log.c
    last = conn.execute(select(c.seq, c.hash).order_by(c.seq.desc()).limit(1)).first()
    seq, digest = (0, GENESIS) if last is None else (int(last.seq), str(last.hash))
    return Checkpoint(seq=seq, hash=digest, count=count(conn), time=now_ms())


def entries(conn: Connection, after_seq: int, limit: int, filters: dict[str, str | None]) -> list[AuditEntry]:
    """Entries with ``seq > after_seq`` in order, optionally filtered by actor/action/object."""
    c = t.audit_log.c
    stmt = select(t.audit_log).where(c.seq > after_seq)
    for key, value in filters.items():
        if value is not None:
            stmt = stmt.where(getattr(c, key) == value)
    rows = conn.execute(stmt.order_by(c.seq).limit(limit)).all()
    return [
        AuditEntry(
            r.seq,
            r.ts,
            r.actor,
            r.action,
            r.object_type,
            r.object_id,
            json.loads(r.before_json),
            json.loads(r.after_json),
            r.reason,
            r.prev_hash,
            r.hash,
        )
        for r in rows
    ]


def count(conn: Connection) -> int:
    """How many entries the log holds."""
    return int(conn.execute(select(func.count()).select_from(t.audit_log)).scalar_one())
