"""The audit log: append (append-only) and list in pages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, status

from shipyard.server.errors import ERROR_RESPONSES
from shipyard.server.schemas import AuditIn, AuditList
from shipyard.server.state import StoreDep

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], responses=ERROR_RESPONSES)

_Filter = Query(default=None, min_length=1, max_length=512)


@router.post("", status_code=status.HTTP_201_CREATED)
def append_audit(body: AuditIn, store: StoreDep) -> dict[str, Any]:
    """Append an entry linked to the last one (entries are never changed or removed)."""
    entry = store.append_audit(
        body.actor, body.action, body.object_type, body.object_id, body.before, body.after, body.reason
    )
    return entry.to_dict()


@router.get("")
def list_audit(
    store: StoreDep,
    after_seq: int = Query(default=0, ge=0),
    limit: int = Query(default=1000, ge=1, le=10_000),
    actor: str | None = _Filter,
    action: str | None = _Filter,
    object_type: str | None = _Filter,
    object_id: str | None = _Filter,
) -> AuditList:
    """Entries after ``after_seq``, in order (page by passing the last ``seq`` you saw)."""
    found = store.list_audit(after_seq, limit, actor, action, object_type, object_id)
    return AuditList(entries=[e.to_dict() for e in found])
