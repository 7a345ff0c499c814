"""Monitoring reports of ``RestStore`` (mixed in): each call maps onto a route of
``server/routers/monitoring.py``; the server's own store checks and keeps them."""

from __future__ import annotations

from typing import Any

import httpx

from shipyard.entities import MonitorReport
from shipyard.store.reports import check_monitor_report

__all__ = ["RestMonitoringMixin"]

API = "/api/v1/monitoring/reports"


class RestMonitoringMixin:
    """Monitoring-report calls over HTTP."""

    def _request(
        self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        raise NotImplementedError

    def _get(self, path: str, **params: Any) -> Any:
        raise NotImplementedError

    def save_monitor_report(self, report: MonitorReport) -> MonitorReport:
        check_monitor_report(report)  # the same answer as a local store, before anything is sent
        body = {k: v for k, v in report.to_dict().items() if k not in ("id", "created_at")}
        return MonitorReport.from_dict(self._request("POST", API, body=body).json())

    def get_monitor_report(self, report_id: int) -> MonitorReport:
        return MonitorReport.from_dict(self._get(f"{API}/{int(report_id)}"))

    def list_monitor_reports(
        self,
        deployment: str,
        kind: str | None = None,
        variant: str | None = None,
        since: int | None = None,
        limit: int = 1000,
    ) -> list[MonitorReport]:
        params: dict[str, Any] = {"deployment": deployment, "limit": limit}
        params.update(
            {k: v for k, v in (("kind", kind), ("variant", variant), ("since", since)) if v is not None}
        )
        return [MonitorReport.from_dict(r) for r in self._get(API, **params)["items"]]
