"""The monitoring pages: every monitored deployment with its drift status and firing alerts; one
deployment's drift over time, feature distributions and estimated against realised performance; an
alert with its evidence and the retraining chain it set off.

What they show is what monitoring stored (``kind="drift"``, ``"performance"`` and ``"estimated"``
monitor reports, alerts and the actions recorded on them, model versions and their records): the
statistics are the reports' own, read back with :meth:`DriftReport.from_monitor_report`; the pages
only place them (:mod:`shipyard.ui.monitor_plots`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from shipyard.bounds import INT32_MAX
from shipyard.entities import Alert, ModelRecord, MonitorReport
from shipyard.errors import InvalidInput, NotFound, ShipyardError
from shipyard.monitoring import Condition, DriftReport, FeatureDrift, parse_condition
from shipyard.monitoring.html_report import METRICS
from shipyard.ui.core import UI, number
from shipyard.ui.monitor_plots import Histogram, TimePlot, histogram, time_plot

__all__ = ["MAX_ALERTS", "MAX_FEATURES", "MAX_REPORTS", "routes"]

MAX_REPORTS = 200
"""Newest reports of each kind a deployment's page reads (the time series it draws)."""
MAX_FEATURES = 40
"""Features (and prediction columns) a page draws at most, in the latest report's order."""
MAX_ALERTS = 200
"""Alerts the overview lists (firing ones first, then the most recently seen)."""


@dataclass(frozen=True)
class Target:
    """One monitored deployment on the overview: its newest drift report and firing alerts."""

    name: str
    latest: MonitorReport | None
    firing: int


@dataclass(frozen=True)
class FeatureChart:
    """A feature's drift score (PSI) over time, with its PSI threshold."""

    feature: str
    plot: TimePlot
    reports: int
    drifted: int
    threshold: float  # the newest report's


@dataclass(frozen=True)
class Distribution:
    """A feature's reference and current bins in one report."""

    drift: FeatureDrift
    plot: Histogram


@dataclass
class Link:
    """One link of an alert's retraining chain: ``status`` is ``not yet`` where nothing happened."""

    step: str
    status: str
    href: str | None = None
    text: str = ""
    details: list[str] = field(default_factory=list)


def _whole(text: str) -> int | None:
    """A stored id from a path or query string (1 … 2³¹-1), None when it is not one."""
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if 1 <= value <= INT32_MAX else None


def _condition(alert: Alert) -> Condition | None:
    try:
        return parse_condition(alert.expression)
    except InvalidInput:  # stored by an older or another writer: shown as written
        return None


def _psi_limit(report: DriftReport, feature: str) -> float:
    try:
        return report.thresholds.for_feature(feature).psi
    except InvalidInput:
        return report.thresholds.psi


def _drifts(report: DriftReport) -> list[FeatureDrift]:
    return [*report.features, *report.predictions]


def _feature_charts(reports: Sequence[DriftReport]) -> tuple[list[FeatureChart], int]:
    """Each feature's PSI across ``reports`` (oldest first); and how many features were left out."""
    names: list[str] = []
    for report in reversed(reports):  # the newest report's order first, then features seen earlier
        names += [f.feature for f in _drifts(report) if f.feature not in names]
    charts = []
    for name in names[:MAX_FEATURES]:
        found = [(r, f) for r in reports for f in _drifts(r) if f.feature == name]
        plot = time_plot(
            {"PSI": [(r.window_end, f.psi, f.drifted) for r, f in found]},
            [(r.window_end, _psi_limit(r, name)) for r, _ in found],
            floor=0.0,
        )
        if plot is not None:
            drifted = sum(f.drifted for _, f in found)
            charts.append(FeatureChart(name, plot, len(found), drifted, _psi_limit(found[-1][0], name)))
    return charts, max(len(names) - MAX_FEATURES, 0)


def _distributions(report: DriftReport) -> list[Distribution]:
    out = []
    for f in _drifts(report)[:MAX_FEATURES]:
        labels = [str(i + 1) for i in range(len(f.reference_counts))]
        if f.kind == "categorical" and labels:
            labels[-1] = "other"  # the reference's top categories, then everything else
        plot = histogram(f.reference_counts, f.current_counts, labels)
        if plot is not None:
            out.append(Distribution(f, plot))
    return out


def _compared_metric(realised: Sequence[MonitorReport], estimated: Sequence[MonitorReport]) -> str | None:
    """The headline metric both series carry (else the estimate's, else the realised one's)."""

    def present(reports: Sequence[MonitorReport]) -> set[str]:
        return {k for r in reports for k, v in r.summary.items() if v is not None}

    both, est, real = present(realised) & present(estimated), present(estimated), present(realised)
    for pool in (both, est, real):
        found = next((m for m in METRICS if m in pool), None)
        if found:
            return found
    return None


def _performance(
    realised: Sequence[MonitorReport], estimated: Sequence[MonitorReport]
) -> tuple[str | None, TimePlot | None]:
    metric = _compared_metric(realised, estimated)
    if metric is None:
        return None, None
    series: dict[str, list[tuple[int, float | None, bool]]] = {}
    for label, reports in (("estimated", estimated), ("realised", realised)):
        for r in reports:
            series.setdefault(f"{label} ({r.variant or 'all'})", []).append(
                (r.window_end, r.summary.get(metric), False)
            )
    return metric, time_plot(series)


def _known(ui: UI, deployment: str) -> bool:
    if ui.store.list_monitor_reports(deployment, limit=1):
        return True
    if any(d.name == deployment for d in ui.store.list_deployments()):
        return True
    return bool(ui.store.list_alerts(deployment, limit=1))


def _shown(value: Any) -> str:
    return number(value) if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


def _texts(values: Any) -> list[str]:
    return [str(v) for v in values] if isinstance(values, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _run_link(ui: UI, retrain: dict[str, Any]) -> Link:
    """The retrain pipeline's run, as the alert's ``retrain`` action recorded it."""
    link = Link("Retrain run", "not yet")
    if retrain.get("run_id"):
        run_id = str(retrain["run_id"])
        link.href, link.text = f"/runs/{quote(run_id, safe='')}", run_id
        try:
            link.status = ui.store.get_run(run_id).status.value
        except NotFound:
            link.status = "missing from the store"
        link.details.append(f"pipeline {retrain.get('pipeline')}")
    elif retrain.get("error"):
        link.status, link.details = "failed to start", [str(retrain["error"])]
    return link


def _version_link(ui: UI, loop: dict[str, Any]) -> tuple[Link, list[ModelRecord]]:
    """The model version the closed loop registered, and every record of that version."""
    link, records = Link("Model version", "not yet"), []
    model, version = loop.get("model"), loop.get("version")
    if isinstance(model, str) and model and isinstance(version, int):
        link.href, link.text = f"/models/{quote(model, safe='')}", f"models:/{model}/{version}"
        try:
            found = ui.store.get_model_version(model, version)
            link.status = "registered"
            link.details.append(f"aliases: {', '.join(found.aliases) or 'none'}")
            records = sorted(ui.store.list_model_records(model, version), key=lambda r: r.id)
        except NotFound:
            link.status = "missing from the registry"
        if loop.get("step_run"):
            link.details.append(f"source run {loop['step_run']}")
    return link, records


def _decision_links(loop: dict[str, Any]) -> list[Link]:
    """The closed loop's evaluations, then its challenger and champion promotions."""
    links = []
    for role, ev in sorted(_dict(loop.get("evaluations")).items()):
        ev = _dict(ev)
        metrics = ", ".join(f"{k} {_shown(v)}" for k, v in sorted(_dict(ev.get("metrics")).items()))
        where = f"v{ev.get('version')} on {ev.get('rows')} labelled rows"
        links.append(Link(f"Evaluation ({role})", where, details=[metrics] if metrics else []))
    for step, key in (("Challenger alias", "challenger"), ("Promotion to champion", "promotion")):
        decision = loop.get(key)
        if isinstance(decision, dict):
            links.append(Link(step, str(decision.get("status")), details=_texts(decision.get("reasons"))))
        else:
            links.append(Link(step, "not yet"))
    if loop:
        links.append(Link("Closed loop", str(loop.get("status")), details=_texts(loop.get("reasons"))))
    return links


def _chain(ui: UI, alert: Alert) -> tuple[list[Link], list[ModelRecord]]:
    """The alert's retraining chain, read from its recorded actions and the records they point at
    (``alerts.py`` records ``retrain``; ``loop.complete_retrain`` records ``closed_loop``)."""
    actions = alert.actions
    others = [f"{k}: {v}" for k, v in sorted(actions.items()) if k not in ("retrain", "closed_loop")]
    recorded = Link("Actions recorded", ", ".join(sorted(actions)) or "not yet", details=others)
    loop = _dict(actions.get("closed_loop"))
    produced, records = _version_link(ui, loop)
    return [recorded, _run_link(ui, _dict(actions.get("retrain"))), produced, *_decision_links(loop)], records


class _Refused(Exception):
    """A request the deployment page answers with an error page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _drift(stored: MonitorReport) -> DriftReport | None:
    """A stored drift report read back; None when its body is not one (written by another writer)."""
    try:
        return DriftReport.from_monitor_report(stored)
    except ValidationError:
        return None


def _chosen(ui: UI, deployment: str, report: str | None) -> DriftReport | None:
    """The drift report asked for with ``?report=ID`` (None when none was asked)."""
    if report is None:
        return None
    number = _whole(report)
    if number is None:
        raise _Refused(400, f"Report {report!r} is not a whole number from 1.")
    try:
        stored = ui.store.get_monitor_report(number)
    except NotFound as exc:
        raise _Refused(404, exc.message) from exc
    if stored.deployment != deployment or stored.kind != "drift":
        raise _Refused(404, f"Report {number} is not a drift report of deployment {deployment!r}.")
    chosen = _drift(stored)
    if chosen is None:
        raise _Refused(422, f"Report {number} does not hold a drift report that can be read.")
    return chosen


def _target(ui: UI, deployment: str, chosen: DriftReport | None, variant: str | None) -> dict[str, Any]:
    """What a deployment's page shows: drift of the ``variant`` ("" or None: the whole deployment)."""
    stored = ui.store.list_monitor_reports(deployment, kind="drift", limit=MAX_REPORTS)
    variants = sorted({r.variant or "" for r in stored})
    selected = variant or ""
    if variant is not None and selected not in variants and stored:
        shown = ", ".join(repr(v) if v else "the whole deployment" for v in variants)
        raise _Refused(
            404, f"Deployment {deployment!r} has no drift reports of variant {variant!r}; it has: {shown}."
        )
    mine = [r for r in stored if (r.variant or "") == selected]
    drift = [d for r in mine if (d := _drift(r)) is not None]
    chosen = chosen or (drift[-1] if drift else None)
    charts, left_out = _feature_charts(drift)
    realised = ui.store.list_monitor_reports(deployment, kind="performance", limit=MAX_REPORTS)
    estimated = ui.store.list_monitor_reports(deployment, kind="estimated", limit=MAX_REPORTS)
    metric, versus = _performance(realised, estimated)
    alerts = sorted(ui.store.list_alerts(deployment, limit=MAX_ALERTS), key=lambda a: a.state != "firing")
    return {
        "deployment": deployment,
        "variants": variants,
        "selected": selected,
        "drift": drift,
        "unread": len(mine) - len(drift),
        "chosen": chosen,
        "charts": charts,
        "left_out": left_out,
        "share": time_plot(
            {"share drifted": [(r.window_end, r.share_drifted, r.drifted) for r in drift]}, floor=0.0
        ),
        "distributions": _distributions(chosen) if chosen is not None else [],
        "metric": metric,
        "versus": versus,
        "realised": realised,
        "estimated": estimated,
        "alerts": alerts,
        "conditions": {a.id: _condition(a) for a in alerts},
    }


def routes(ui: UI) -> APIRouter:
    """``/monitoring``, ``/monitoring/alerts/{alert_id}`` and ``/monitoring/{deployment}``."""
    router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

    @router.get("/monitoring")
    def overview(request: Request) -> HTMLResponse:
        alerts = ui.store.list_alerts(limit=MAX_ALERTS)  # most recently seen first
        alerts = sorted(alerts, key=lambda a: a.state != "firing")  # stable: firing ones first
        firing = Counter(a.deployment for a in ui.store.list_alerts(state="firing", limit=MAX_ALERTS))
        names = sorted({d.name for d in ui.store.list_deployments()} | {a.deployment for a in alerts})
        targets = []
        for name in names:
            latest = ui.store.list_monitor_reports(name, kind="drift", variant="", limit=1)
            latest = latest or ui.store.list_monitor_reports(name, kind="drift", limit=1)
            targets.append(Target(name, latest[-1] if latest else None, firing[name]))
        conditions = {a.id: _condition(a) for a in alerts}
        return ui.page(request, "monitoring.html", targets=targets, alerts=alerts, conditions=conditions)

    @router.get("/monitoring/alerts/{alert_id}")
    def alert_page(request: Request, alert_id: str) -> HTMLResponse:
        number = _whole(alert_id)
        if number is None:
            return ui.error(
                request, 400, "Bad alert id", f"Alert id {alert_id!r} is not a whole number from 1."
            )
        try:
            alert = ui.store.get_alert(number)
        except NotFound as exc:
            return ui.error(request, 404, "Not found", exc.message)
        chain, records = _chain(ui, alert)
        condition = _condition(alert)
        listed = alert.evidence.get("reports")
        reports = [r for r in listed if isinstance(r, int)] if isinstance(listed, list) else []
        return ui.page(
            request,
            "monitoring_alert.html",
            alert=alert,
            condition=condition,
            evidence={k: v for k, v in alert.evidence.items() if k != "reports"},
            reports=reports,
            drift_reports=condition is not None and condition.kind == "drift",
            chain=chain,
            records=records,
        )

    @router.get("/monitoring/{deployment}")
    def target(
        request: Request, deployment: str, report: str | None = None, variant: str | None = None
    ) -> HTMLResponse:
        try:
            if not _known(ui, deployment):
                raise _Refused(404, f"No monitoring reports, alerts or deployment named {deployment!r}.")
            chosen = _chosen(ui, deployment, report)
            if chosen is not None:
                variant = chosen.variant or ""
            return ui.page(request, "monitoring_target.html", **_target(ui, deployment, chosen, variant))
        except _Refused as exc:
            return ui.error(request, exc.status, "Cannot show this", exc.message)
        except ShipyardError as exc:  # e.g. a name the store refuses to look up
            return ui.error(request, exc.http_status, "Cannot show this", exc.message)

    return router
