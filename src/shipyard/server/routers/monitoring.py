"""Monitoring results: each deployment's drift (and later performance) reports, as a time series.

``POST /api/v1/monitoring/reports`` stores a report computed by a client (``sy.monitor_drift`` over a
``http(s)://`` tracking URI); the server's store checks it as it would locally. Reads are open.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import BaseModel, Field

from shipyard.bounds import INT64_MAX
from shipyard.entities import MonitorReport
from shipyard.server.access import actor_for, author_for
from shipyard.server.errors import ERROR_RESPONSES
from shipyard.server.schemas import _In
from shipyard.server.state import StoreDep

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/monitoring", tags=["monitoring"], responses=ERROR_RESPONSES)

Millis = Annotated[int, Field(ge=0, le=INT64_MAX)]


class MonitorReportIn(_In):
    deployment: Annotated[str, Field(min_length=1, max_length=64)]
    kind: Annotated[str, Field(min_length=1, max_length=32)]
    variant: Annotated[str | None, Field(max_length=255)] = None
    window_start: Millis
    window_end: Millis
    rows: Millis
    verdict: Annotated[str, Field(max_length=100_000)] = ""
    summary: dict[str, float | None] = Field(default_factory=dict)
    body: dict[str, Any] = Field(default_factory=dict)
    created_by: Annotated[str, Field(max_length=255)] = ""


class ReportList(BaseModel):
    items: list[dict[str, Any]]


@router.post("/reports", status_code=status.HTTP_201_CREATED)
def save_report(body: MonitorReportIn, store: StoreDep, request: Request) -> dict[str, Any]:
    """Store one report (its id and creation time are the server's); 400 names a bad field."""
    data = {**body.model_dump(), "created_by": author_for(request, body.created_by)}
    return store.save_monitor_report(MonitorReport(**data)).to_dict()


@router.get("/reports")
def list_reports(
    store: StoreDep,
    deployment: str = Query(min_length=1, max_length=64),
    kind: str | None = Query(default=None, max_length=32),
    variant: str | None = Query(default=None, max_length=255),
    since: int | None = Query(default=None, ge=0, le=INT64_MAX),
    limit: int = Query(default=1000, ge=1, le=100_000),
) -> ReportList:
    """Reports of a deployment whose window ends at or after ``since``, oldest first (the newest
    ``limit``); ``variant=`` (empty) selects whole-deployment reports."""
    reports = store.list_monitor_reports(deployment, kind=kind, variant=variant, since=since, limit=limit)
    return ReportList(items=[r.to_dict() for r in reports])


@router.get("/reports/{report_id}")
def get_report(report_id: Annotated[int, Path(ge=1, le=INT64_MAX)], store: StoreDep) -> dict[str, Any]:
    return store.get_monitor_report(report_id).to_dict()


# -- alerts: opened, updated and resolved by monitoring passes; the store audits opening and resolving
class AlertFireIn(_In):
    deployment: Annotated[str, Field(min_length=1, max_length=64)]
    variant: Annotated[str | None, Field(min_length=1, max_length=255)] = None
    rule: Annotated[str, Field(min_length=1, max_length=128)]
    expression: Annotated[str, Field(min_length=1, max_length=1000)]
    evidence: dict[str, Any] = Field(default_factory=dict)
    actor: Annotated[str, Field(max_length=255)] = ""


class AlertResolveIn(_In):
    deployment: Annotated[str, Field(min_length=1, max_length=64)]
    variant: Annotated[str | None, Field(min_length=1, max_length=255)] = None
    rule: Annotated[str, Field(min_length=1, max_length=128)]
    evidence: dict[str, Any] = Field(default_factory=dict)
    actor: Annotated[str, Field(max_length=255)] = ""


class AlertActionsIn(_In):
    actions: dict[str, Any]


class AlertList(BaseModel):
    items: list[dict[str, Any]]


AlertId = Annotated[int, Path(ge=1, le=INT64_MAX)]


@router.post("/alerts/fire")
def fire_alert(body: AlertFireIn, store: StoreDep, request: Request) -> dict[str, Any]:
    """Open the rule's alert, or update the one that already fires (one per deployment, variant, rule)."""
    return store.fire_alert(
        body.deployment,
        body.variant,
        body.rule,
        body.expression,
        body.evidence,
        actor_for(request, body.actor, required=False),
    ).to_dict()


@router.post("/alerts/resolve")
def resolve_alert(body: AlertResolveIn, store: StoreDep, request: Request) -> dict[str, Any]:
    """Resolve the rule's firing alert; ``{"alert": null}`` when none fires."""
    actor = actor_for(request, body.actor, required=False)
    alert = store.resolve_alert(body.deployment, body.variant, body.rule, body.evidence, actor)
    return {"alert": None if alert is None else alert.to_dict()}


@router.post("/alerts/{alert_id}/actions")
def record_alert_actions(alert_id: AlertId, body: AlertActionsIn, store: StoreDep) -> dict[str, Any]:
    return store.record_alert_actions(alert_id, body.actions).to_dict()


@router.get("/alerts")
def list_alerts(
    store: StoreDep,
    deployment: str | None = Query(default=None, min_length=1, max_length=64),
    state: str | None = Query(default=None, max_length=16),
    limit: int = Query(default=1000, ge=1, le=100_000),
) -> AlertList:
    """Alerts, most recently seen first; ``state=firing`` or ``resolved`` to filter."""
    return AlertList(items=[a.to_dict() for a in store.list_alerts(deployment, state=state, limit=limit)])


@router.get("/alerts/{alert_id}")
def get_alert(alert_id: AlertId, store: StoreDep) -> dict[str, Any]:
    return store.get_alert(alert_id).to_dict()
