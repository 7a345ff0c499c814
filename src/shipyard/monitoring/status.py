"""The monitoring status of deployments at a glance: the latest drift verdict, realised and estimated
performance and open alerts, each with the recent series behind it (what ``shipyard monitor status`` draws
as sparklines)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.monitoring.alerts import list_alerts
from shipyard.monitoring.html_report import METRICS, list_monitor_series
from shipyard.monitoring.report import list_drift_reports
from shipyard.serving.manage import list_deployments
from shipyard.tracking.fluent import get_client

if TYPE_CHECKING:
    from shipyard.entities import Alert, MonitorReport
    from shipyard.tracking import Client

__all__ = ["MonitorStatus", "monitor_status"]


@dataclass
class MonitorStatus:
    """One deployment's latest monitoring results and their recent series (oldest first)."""

    deployment: str
    drift_verdict: str | None = None
    drifted: bool | None = None
    share_drifted: float | None = None
    share_drifted_series: list[float] = field(default_factory=list)
    metric: str | None = None
    performance: dict[str, float | None] = field(default_factory=dict)
    performance_series: list[float] = field(default_factory=list)
    estimated_metric: str | None = None
    estimated: dict[str, float | None] = field(default_factory=dict)
    estimated_series: list[float] = field(default_factory=list)
    open_alerts: list[Alert] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data."""
        return asdict(self)


def _headline(reports: Sequence[MonitorReport]) -> tuple[str | None, dict[str, float | None], list[float]]:
    if not reports:
        return None, {}, []
    latest = reports[-1].summary
    metric = next((m for m in METRICS if latest.get(m) is not None), None)
    series = [v for r in reports if (v := r.summary.get(metric or "")) is not None]
    return metric, dict(latest), series


def deployment_status(deployment: str, *, points: int = 20, client: Client | None = None) -> MonitorStatus:
    """One deployment's status from its newest ``points`` stored reports of each kind.

    Example:
        >>> deployment_status("churn").share_drifted  # doctest: +SKIP
        0.25
    """
    client = client or get_client()
    out = MonitorStatus(deployment)
    drift = list_drift_reports(deployment, limit=points, client=client)
    if drift:
        last = drift[-1]
        out.drift_verdict, out.drifted, out.share_drifted = last.verdict, last.drifted, last.share_drifted
        out.share_drifted_series = [d.share_drifted for d in drift]
    performance = list_monitor_series(deployment, "performance", limit=points, client=client)
    out.metric, out.performance, out.performance_series = _headline(performance)
    estimated = list_monitor_series(deployment, "estimated", limit=points, client=client)
    out.estimated_metric, out.estimated, out.estimated_series = _headline(estimated)
    out.open_alerts = list_alerts(deployment, state="firing", client=client)
    return out


def monitor_status(
    deployment: str | None = None,
    *,
    points: int = 20,
    client: Client | None = None,
) -> list[MonitorStatus]:
    """The monitoring status of one deployment, or of every stored deployment.

    Args:
        deployment: the deployment's name (default: every deployment in the store).
        points: how many recent windows of each kind to read for the series.
        client: the client (default: the current one).

    Example:
        >>> [(s.deployment, s.drift_verdict) for s in sy.monitor_status()]  # doctest: +SKIP
    """
    client = client or get_client()
    names = [deployment] if deployment else [d.name for d in list_deployments(client=client)]
    return [deployment_status(n, points=points, client=client) for n in names]
