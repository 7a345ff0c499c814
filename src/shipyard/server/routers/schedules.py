"""Pipeline schedules: timetables the server's workers run (each fire claimed once in the database).

Saving and deleting a schedule makes the server run code, so they are admin routes (loopback
clients, or anyone with ``allow_remote_admin``); listing is open. Fire claims have no route: only
the server's own scheduler claims fire times, in its database.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from shipyard.errors import InvalidInput
from shipyard.pipelines.schedule import schedule_pipeline
from shipyard.server.access import actor_for, author_for
from shipyard.server.errors import ERROR_RESPONSES
from shipyard.server.guards import AdminOnly
from shipyard.server.schemas import _In
from shipyard.server.state import StateDep, StoreDep
from shipyard.tracking import Client

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"], responses=ERROR_RESPONSES)


class ScheduleIn(_In):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    ref: Annotated[str, Field(min_length=3, max_length=1024)]
    cron: Annotated[str | None, Field(max_length=255)] = None
    every_seconds: float | None = None
    timezone: Annotated[str, Field(min_length=1, max_length=64)] = "UTC"
    params: dict[str, Any] = Field(default_factory=dict)
    created_by: Annotated[str, Field(max_length=255)] = ""


class ItemList(BaseModel):
    items: list[dict[str, Any]]


@router.put("/{name}", dependencies=[AdminOnly])
def save_schedule(name: str, body: ScheduleIn, state: StateDep, request: Request) -> dict[str, Any]:
    """Create or replace a schedule through ``sy.schedule_pipeline`` (the same checks as the SDK)."""
    if body.name != name:
        raise InvalidInput(f"The body names schedule '{body.name}' but the path says '{name}'")
    client = Client.from_stores(
        state.settings.replace(user=author_for(request, body.created_by)), state.store, state.blobs
    )
    saved = schedule_pipeline(
        body.ref,
        cron=body.cron,
        every=body.every_seconds,
        params=body.params,
        name=body.name,
        timezone=body.timezone,
        client=client,
    )
    return saved.to_dict()


@router.get("")
def list_schedules(store: StoreDep) -> ItemList:
    """Every schedule with its latest fire."""
    return ItemList(items=[s.to_dict() for s in store.list_schedules()])


@router.get("/{name}")
def get_schedule(name: str, store: StoreDep) -> dict[str, Any]:
    return store.get_schedule(name).to_dict()


@router.delete("/{name}", dependencies=[AdminOnly])
def delete_schedule(
    name: str, store: StoreDep, request: Request, actor: str = Query(default="", max_length=255)
) -> dict[str, Any]:
    """Delete a schedule and its fire history (audited; the pipeline runs stay)."""
    store.delete_schedule(name, actor=actor_for(request, actor, required=False))
    return {"deleted": name}


@router.get("/{name}/fires")
def list_fires(name: str, store: StoreDep, limit: int = Query(default=100, ge=1, le=10_000)) -> ItemList:
    """The schedule's fires, newest first."""
    return ItemList(items=[f.to_dict() for f in store.list_schedule_fires(name, limit)])
