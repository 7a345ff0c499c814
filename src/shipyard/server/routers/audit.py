"""The audit log: list in pages, the chain's head for external pinning, and checkpoints.

There is no route that appends an entry: entries are written by the store methods that act,
in the same transaction (a run deletion, an alias move, ...).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel

from shipyard.bounds import INT32_MAX
from shipyard.server.errors import ERROR_RESPONSES
from shipyard.server.guards import AdminOnly
from shipyard.server.schemas import AuditList
from shipyard.server.state import StoreDep

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], responses=ERROR_RESPONSES)

# One Annotated type, not one shared ``Query(...)`` default: FastAPI binds a shared FieldInfo to
# the first parameter's name, so every filter read ``actor`` and the others were ignored.
_Filter = Annotated[str | None, Query(min_length=1, max_length=512)]


class CheckpointOut(BaseModel):
    seq: int
    hash: str
    count: int
    time: int
    mac: str


class CheckpointList(BaseModel):
    items: list[CheckpointOut]


@router.get("")
def list_audit(
    store: StoreDep,
    after_seq: int = Query(default=0, ge=0, le=INT32_MAX),
    limit: int = Query(default=1000, ge=1, le=10_000),
    actor: _Filter = None,
    action: _Filter = None,
    object_type: _Filter = None,
    object_id: _Filter = None,
) -> AuditList:
    """Entries after ``after_seq``, in order (page by passing the last ``seq`` you saw)."""
    found = store.list_audit(after_seq, limit, actor, action, object_type, object_id)
    return AuditList(entries=[e.to_dict() for e in found])


@router.get("/head")
def audit_head(store: StoreDep) -> CheckpointOut:
    """The chain's head now: last ``seq`` and ``hash``, entry ``count``, ``time`` (epoch ms) and a
    ``mac`` when the server has an audit key. Save answers somewhere the server cannot write, and
    check later with ``shipyard audit verify --anchor FILE``."""
    return CheckpointOut(**store.audit_head().to_dict())


@router.get("/checkpoints")
def list_checkpoints(store: StoreDep) -> CheckpointList:
    """The checkpoints the server wrote outside its database, in ``seq`` order."""
    return CheckpointList(items=[CheckpointOut(**c.to_dict()) for c in store.list_audit_checkpoints()])


@router.post("/checkpoints", status_code=status.HTTP_201_CREATED, dependencies=[AdminOnly])
def write_checkpoint(store: StoreDep) -> CheckpointOut:
    """Checkpoint the head now (admin: loopback clients or ``--allow-remote-admin``)."""
    return CheckpointOut(**store.write_audit_checkpoint().to_dict())
