"""The stakeholder report: one self-contained HTML file (inline CSS, inline SVG charts, no script, no
network) with what monitoring stored for a deployment — feature distributions, drift and performance over
time, estimated against realised performance, alerts, and the model's retraining and promotion history.

``collect_report`` reads the stored records through the SDK's read functions; ``render_report`` turns them
into HTML with the Jinja2 templates shipped in ``shipyard/monitoring/templates`` (autoescaping on: feature
names and values come from users); ``monitor_report`` does both and writes the file.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.entities import Alert, ModelRecord, ModelVersion, MonitorReport
from shipyard.errors import MissingExtra, NotFound
from shipyard.monitoring import charts
from shipyard.monitoring.alerts import list_alerts
from shipyard.monitoring.query import When, to_ms
from shipyard.monitoring.report import DriftReport, list_drift_reports
from shipyard.registry.core import list_model_records, list_model_versions
from shipyard.serving.manage import get_deployment
from shipyard.tracking.fluent import get_client

if TYPE_CHECKING:
    from shipyard.tracking import Client

__all__ = [
    "ModelHistory",
    "ReportData",
    "collect_report",
    "list_monitor_series",
    "monitor_report",
    "render_report",
]

# Headline metrics, best first: the first one a window has is the one charted over time.
METRICS = ("roc_auc", "accuracy", "f1", "r2", "mae", "rmse")
MAX_FEATURES = 40


@dataclass
class ModelHistory:
    """Retraining (registered versions) and promotion decisions of one model."""

    name: str
    versions: list[ModelVersion] = field(default_factory=list)
    promotions: list[ModelRecord] = field(default_factory=list)


@dataclass
class ReportData:
    """Everything a report shows, read from the store."""

    deployment: str
    generated_at: int
    drift: list[DriftReport]
    performance: list[MonitorReport]
    estimated: list[MonitorReport]
    alerts: list[Alert]
    models: list[ModelHistory]


def list_monitor_series(
    deployment: str,
    kind: str,
    variant: str | None = None,
    since: When = None,
    *,
    limit: int = 1000,
    client: Client | None = None,
) -> list[MonitorReport]:
    """A deployment's stored monitor reports of one ``kind`` (``performance``, ``estimated``...), oldest
    first.

    Example:
        >>> [r.summary["roc_auc"] for r in list_monitor_series("churn", "performance")]  # doctest: +SKIP
    """
    client = client or get_client()
    return client.store.list_monitor_reports(
        deployment, kind=kind, variant=variant, since=to_ms(since), limit=limit
    )


def _model_names(deployment: str, client: Client) -> list[str]:
    try:
        spec = get_deployment(deployment, client=client)
    except NotFound:
        return []
    names = []
    for v in spec.variants:
        if v.model.startswith("models:/"):
            name = v.model.removeprefix("models:/").split("@")[0].split("/")[0]
            if name not in names:
                names.append(name)
    return names


def collect_report(
    deployment: str,
    *,
    variant: str | None = None,
    since: When = None,
    limit: int = 200,
    models: Sequence[str] | None = None,
    client: Client | None = None,
) -> ReportData:
    """Read what the report shows: stored drift, performance and estimated reports, alerts (most
    recently seen first) and the history of the deployment's models (from its spec, or ``models``).

    Example:
        >>> len(collect_report("churn").drift)  # doctest: +SKIP
        12
    """
    client = client or get_client()
    names = list(models) if models is not None else _model_names(deployment, client)
    histories = []
    for name in names:
        try:
            versions = list_model_versions(name, client=client)
            promotions = list_model_records(name, kind="promotion", client=client)
        except NotFound:
            continue
        histories.append(ModelHistory(name, versions, promotions))
    series = {
        kind: list_monitor_series(deployment, kind, variant, since, limit=limit, client=client)
        for kind in ("performance", "estimated")
    }
    return ReportData(
        deployment=deployment,
        generated_at=int(datetime.now(UTC).timestamp() * 1000),
        drift=list_drift_reports(deployment, variant, since, limit=limit, client=client),
        performance=series["performance"],
        estimated=series["estimated"],
        alerts=list_alerts(deployment, limit=limit, client=client),
        models=histories,
    )


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _metric(reports: Sequence[MonitorReport]) -> str | None:
    present = {k for r in reports for k, v in r.summary.items() if v is not None}
    return next((m for m in METRICS if m in present), None)


def _by_variant(reports: Sequence[MonitorReport], key: str, label: str = "") -> dict[str, list[Any]]:
    out: dict[str, list[tuple[int, float | None]]] = defaultdict(list)
    for r in reports:
        out[f"{label}{r.variant or 'all'}"].append((r.window_end, r.summary.get(key)))
    return dict(out)


def _charts(data: ReportData) -> dict[str, Any]:
    drift_series: dict[str, list[tuple[int, float | None]]] = defaultdict(list)
    for d in data.drift:
        drift_series[f"share drifted ({d.variant or 'all'})"].append((d.window_end, d.share_drifted))
        if d.domain_auc is not None:
            drift_series[f"domain AUC ({d.variant or 'all'})"].append((d.window_end, d.domain_auc))
    latest = data.drift[-1] if data.drift else None
    features = [
        {"drift": f, "svg": charts.bars(f.reference_counts, f.current_counts, f.feature)}
        for f in ([*latest.features, *latest.predictions] if latest else [])[:MAX_FEATURES]
        if f.reference_counts or f.current_counts
    ]
    metric = _metric(data.performance)
    estimated_metric = _metric(data.estimated)
    compare = metric if metric and estimated_metric and metric == estimated_metric else estimated_metric
    versus: dict[str, list[tuple[int, float | None]]] = {}
    if compare:
        versus.update(_by_variant(data.estimated, compare, "estimated "))
        versus.update(_by_variant(data.performance, compare, "realised "))
    return {
        "latest": latest,
        "features": features,
        "drift_svg": charts.lines(drift_series, "drift over time") if data.drift else "",
        "metric": metric,
        "performance_svg": charts.lines(_by_variant(data.performance, metric), f"{metric} over time")
        if metric
        else "",
        "labelled_svg": charts.lines(
            _by_variant(data.performance, "labelled_share"), "share of predictions labelled"
        )
        if data.performance
        else "",
        "compare_metric": compare,
        "versus_svg": charts.lines(versus, f"estimated vs realised {compare}") if compare else "",
    }


def render_report(data: ReportData) -> str:
    """The report as one HTML document (inline CSS and SVG, no script, no external reference).

    Example:
        >>> html = render_report(collect_report("churn"))  # doctest: +SKIP
    """
    try:
        import jinja2
    except ImportError:
        raise MissingExtra("HTML reports need Jinja2: pip install 'shipyard[monitoring]'") from None
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("shipyard.monitoring", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = _when
    template = env.get_template("report.html.j2")
    return template.render(data=data, **_charts(data))


def monitor_report(
    deployment: str,
    output: str | os.PathLike[str] = "report.html",
    *,
    variant: str | None = None,
    since: When = None,
    limit: int = 200,
    models: Sequence[str] | None = None,
    client: Client | None = None,
) -> Path:
    """Write a deployment's monitoring report: one self-contained HTML file to open offline.

    Args:
        deployment: the deployment's name.
        output: the file to write.
        variant: only this variant's reports (``""``: the whole-deployment ones; ``None``: all).
        since: only windows ending at or after this time.
        limit: the newest N reports of each kind.
        models: models whose retraining and promotion history to show (default: the deployment's).
        client: the client (default: the current one).

    Returns:
        The path written.

    Example:
        >>> sy.monitor_report("churn", "churn.html")  # doctest: +SKIP
        PosixPath('churn.html')
    """
    data = collect_report(deployment, variant=variant, since=since, limit=limit, models=models, client=client)
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(data), encoding="utf-8")
    return path
