"""One incremental monitoring pass: the predictions logged since the last pass, measured and judged.

A pass reads the deployment's last stored ``kind="pass"`` report, whose body holds the high-water mark
(``high_water_ms``: the newest prediction time the pass read), and reads only predictions after it: the
log's ``date=/hour=`` partitions before the mark's hour are never opened. It stores a ``traffic`` report
(requests, latency quantiles, error rates from the log's ``latency_ms`` and ``status`` columns), a
``drift`` report, ``performance`` reports (labels that have arrived for the new predictions) and, when
reference scores and labels are given, an ``estimated`` report; then it evaluates the alert rules and
runs their actions (``alerts.py``), and stores the pass itself with its new high-water mark.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from shipyard.entities import MonitorReport, now_ms
from shipyard.errors import NotFound, ShipyardError
from shipyard.monitoring.alerts import Poster, RuleOutcome, evaluate_rules
from shipyard.monitoring.estimate import PerformanceEstimate, estimate_performance
from shipyard.monitoring.labels import join_labels, read_feedback, read_predictions
from shipyard.monitoring.performance import monitor_performance
from shipyard.monitoring.query import query_predictions
from shipyard.monitoring.report import monitor_drift
from shipyard.monitoring.rules import AlertRules, parse_rules
from shipyard.monitoring.webhook import post_alert
from shipyard.tracking import Client
from shipyard.tracking.fluent import get_client

__all__ = ["MonitorPass", "last_high_water_mark", "monitor_pass"]

KIND = "pass"
_ONE_WINDOW = 10**15  # a row count no pass reaches: one performance window per variant
REMEASURE_WINDOWS = 24  # how many earlier performance reports a pass may measure again as labels land
RECENT_SHARE = 0.9  # an earlier window this labelled calibrates the next estimate ("recent")


@dataclass
class MonitorPass:
    """What one pass read, stored and decided.

    ``since`` is the first prediction time read (the previous mark + 1 ms, or ``None`` on a first pass);
    ``high_water_ms`` the newest one read (``None`` when nothing was new); ``reports`` the stored report
    ids by kind; ``outcomes`` what each alert rule did.
    """

    deployment: str
    since: int | None
    high_water_ms: int | None
    requests: int = 0
    traffic: dict[str, float | None] = field(default_factory=dict)
    reports: dict[str, list[int]] = field(default_factory=dict)
    summaries: dict[str, dict[str, float | None]] = field(default_factory=dict)
    estimate: PerformanceEstimate | None = None
    outcomes: list[RuleOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)  # measured apart too (when more than one answered)
    id: int | None = None

    def rows(self) -> list[tuple[str, str, str]]:
        """``(what, value, verdict)`` lines for a summary table."""
        out = [("requests", str(self.requests), f"since {self.since}" if self.since else "first pass")]
        for kind, summary in self.summaries.items():
            shown = ", ".join(f"{k}={v:.3g}" for k, v in summary.items() if v is not None and "." not in k)
            out.append((kind, shown[:120], ""))
        out += [(f"rule {o.rule}", _fmt(o.value), f"{o.outcome}: {o.expression}") for o in self.outcomes]
        return out + [("note", n, "") for n in self.notes]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def last_high_water_mark(deployment: str, *, client: Client | None = None) -> int | None:
    """The newest prediction time (epoch ms) the deployment's last pass read, or ``None``.

    Example:
        >>> sy.last_high_water_mark("churn")  # doctest: +SKIP
        1764230399000
    """
    client = client or get_client()
    last = client.store.list_monitor_reports(deployment, kind=KIND, variant="", limit=1)
    mark = last[0].body.get("high_water_ms") if last else None
    return int(mark) if isinstance(mark, int | float) else None


def _traffic(
    deployment: str,
    since: int | None,
    root: str | os.PathLike[str] | None,
    client: Client,
    variant: str | None = None,
    until: int | None = None,
) -> dict[str, float | None]:
    """Requests, latency quantiles and error rates of non-shadow traffic (or one variant's, shadow too)."""
    lf = query_predictions(
        deployment,
        variant=variant,
        since=since,
        until=until,
        columns=["ts", "latency_ms", "status", "shadow"],
        root=root,
        client=client,
    )
    if variant is None:
        lf = lf.filter(~pl.col("shadow").fill_null(False))
    lat = pl.col("latency_ms")
    frame = lf.select(
        pl.len().alias("requests"),
        pl.col("ts").dt.epoch("ms").min().alias("first_ms"),
        pl.col("ts").dt.epoch("ms").max().alias("last_ms"),
        *(lat.quantile(q, "linear").alias(f"p{int(q * 100)}_ms") for q in (0.5, 0.9, 0.95, 0.99)),
        lat.mean().alias("mean_ms"),
        lat.max().alias("max_ms"),
        (pl.col("status") >= 400).mean().alias("error_rate"),
        (pl.col("status") >= 500).mean().alias("server_error_rate"),
    ).collect()
    row = frame.row(0, named=True)
    return {k: None if v is None or not np.isfinite(float(v)) else float(v) for k, v in row.items()}


def _variants(
    deployment: str, since: int | None, until: int, root: str | os.PathLike[str] | None, client: Client
) -> list[str]:
    """The variants (shadow ones too) that answered in the window."""
    lf = query_predictions(
        deployment, since=since, until=until, columns=["variant"], root=root, client=client
    )
    found = lf.select(pl.col("variant").unique()).collect().get_column("variant").to_list()
    return sorted(str(v) for v in found if v)


def _save(client: Client, report: MonitorReport, out: MonitorPass) -> None:
    saved = client.store.save_monitor_report(report)
    out.reports.setdefault(report.kind, []).append(saved.id)
    if report.variant is None or report.kind == "performance":  # the pass's summary: the whole deployment
        out.summaries[report.kind] = dict(saved.summary)


def _per_variant_traffic(out: MonitorPass, root: str | os.PathLike[str] | None, client: Client) -> None:
    assert out.high_water_ms is not None
    for variant in out.variants:
        traffic = _traffic(out.deployment, out.since, root, client, variant, out.high_water_ms + 1)
        requests = int(traffic.pop("requests") or 0)
        first = int(traffic.pop("first_ms") or 0)
        traffic.pop("last_ms")
        verdict = (
            f"{variant}: {requests} requests, p99 {_fmt(traffic['p99_ms'])} ms, "
            f"errors {_fmt(traffic['error_rate'])}"
        )
        report = _report(out, first, "traffic", verdict, traffic, {}, client, variant=variant)
        _save(client, dataclasses.replace(report, rows=requests), out)


def monitor_pass(
    deployment: str,
    *,
    rules: AlertRules | str | Path | Mapping[str, Any] | None = None,
    reference: Any = None,
    estimate_reference: tuple[Any, Any] | None = None,
    performance_window: str | int | None = None,
    multivariate: bool = True,
    root: str | os.PathLike[str] | None = None,
    client: Client | None = None,
    post: Poster = post_alert,
) -> MonitorPass:
    """One incremental monitoring pass over the predictions logged since the last pass.

    Args:
        deployment: The deployment whose prediction log is read.
        rules: Alert rules (YAML text, a ``.yaml`` path, a mapping or :class:`AlertRules`); none: no alerts.
        reference: The drift reference, as for :func:`monitor_drift` (default: the training data profile).
        estimate_reference: ``(scores, labels)`` of labelled reference data; estimates performance too.
        performance_window: Performance windows (``"1d"`` or a row count); default one for the new data.
        multivariate: Run drift's domain classifier.
        root: The prediction log's root. client: The client (default: the current one).
        post: The webhook sender (tests may count calls; the default POSTs with retries).

    Example:
        >>> result = sy.monitor_pass("churn", rules="alerts.yaml")  # doctest: +SKIP
        >>> [(o.rule, o.outcome) for o in result.outcomes]  # doctest: +SKIP
    """
    client = client or get_client()
    started = now_ms()
    spec = None if rules is None else parse_rules(rules)
    mark = last_high_water_mark(deployment, client=client)
    out = MonitorPass(deployment, None if mark is None else mark + 1, None)
    if out.since is not None:
        _remeasure(out, performance_window, root, client)
    traffic = _traffic(deployment, out.since, root, client)
    out.requests = int(traffic.pop("requests") or 0)
    if out.requests == 0:
        out.notes.append("no new predictions since the last pass")
        if spec is not None:
            out.outcomes = evaluate_rules(
                spec, deployment, list(out.reports), client=client, post=post, root=root
            )
        return out
    first, last = int(traffic.pop("first_ms") or 0), int(traffic.pop("last_ms") or 0)
    out.high_water_ms, out.traffic = last, traffic
    verdict = (
        f"{out.requests} requests, p99 {_fmt(traffic['p99_ms'])} ms, errors {_fmt(traffic['error_rate'])}"
    )
    _save(client, _report(out, first, "traffic", verdict, traffic, {}, client), out)
    variants = _variants(deployment, out.since, last + 1, root, client)
    out.variants = variants if len(variants) > 1 else []
    _per_variant_traffic(out, root, client)
    _measure(out, reference, estimate_reference, performance_window, multivariate, root, client)
    if spec is not None:
        out.outcomes = evaluate_rules(
            spec, deployment, list(out.reports), client=client, post=post, root=root
        )
    body = {
        "started_ms": started,
        "high_water_ms": last,
        "since": out.since,
        "reports": out.reports,
        "notes": out.notes,
        "outcomes": [
            {"rule": o.rule, "outcome": o.outcome, "alert": o.alert and o.alert.id} for o in out.outcomes
        ],
    }
    summary: dict[str, float | None] = {"requests": float(out.requests)}
    verdict = f"read {out.requests} new requests"
    out.id = client.store.save_monitor_report(_report(out, first, KIND, verdict, summary, body, client)).id
    return out


def _report(
    out: MonitorPass,
    first: int,
    kind: str,
    verdict: str,
    summary: dict[str, float | None],
    body: dict[str, Any],
    client: Client,
    variant: str | None = None,
) -> MonitorReport:
    """A report of the pass's window (first to last new prediction): the whole deployment, or a variant."""
    return MonitorReport(
        deployment=out.deployment,
        kind=kind,
        variant=variant,
        window_start=first,
        window_end=int(out.high_water_ms or first),
        rows=out.requests,
        verdict=verdict,
        summary=summary,
        body=body,
        created_by=client.settings.user,
    )


def _measure(
    out: MonitorPass,
    reference: Any,
    estimate_reference: tuple[Any, Any] | None,
    performance_window: str | int | None,
    multivariate: bool,
    root: str | os.PathLike[str] | None,
    client: Client,
) -> None:
    """Drift, performance and (given a labelled reference) estimated performance of the new data."""
    assert out.high_water_ms is not None
    span: dict[str, Any] = {
        "since": out.since,
        "until": out.high_water_ms + 1,
        "root": root,
        "client": client,
    }
    try:
        drift = monitor_drift(out.deployment, reference=reference, multivariate=multivariate, **span)
        out.reports.setdefault("drift", []).append(int(drift.id or 0))
        out.summaries["drift"] = drift.summary()
    except NotFound as exc:
        out.notes.append(f"drift: {exc}")
    except ShipyardError as exc:
        out.notes.append(f"drift not measured: {exc}")
    for variant in out.variants:  # each variant against its own model's training data
        try:
            per = monitor_drift(
                out.deployment, variant=variant, reference=reference, multivariate=multivariate, **span
            )
            out.reports.setdefault("drift", []).append(int(per.id or 0))
        except ShipyardError as exc:
            out.notes.append(f"drift of variant {variant!r} not measured: {exc}")
    try:
        perf = monitor_performance(out.deployment, window=performance_window or _ONE_WINDOW, **span)
        if perf.ids:
            out.reports.setdefault("performance", []).extend(perf.ids)
            out.summaries["performance"] = perf.to_monitor_reports()[-1].summary
    except ShipyardError as exc:
        out.notes.append(f"performance not measured: {exc}")
    if estimate_reference is not None:
        _estimate(out, estimate_reference, span, client)


def _remeasure(
    out: MonitorPass,
    performance_window: str | int | None,
    root: str | os.PathLike[str] | None,
    client: Client,
) -> None:
    """Realised performance of earlier windows measured before all their labels had landed, measured again.

    When labels have arrived since the last pass, the newest ``REMEASURE_WINDOWS`` performance reports
    before this pass that were not fully labelled are read again with the labels there are now (their
    partitions of the log are opened again: the one exception to reading only new partitions). A window
    with more labels gets a new report for the same span, which supersedes the older one in every series
    (``list_monitor_reports``), so rules and charts
    follow the realised value as labels arrive.
    """
    assert out.since is not None
    earlier = client.store.list_monitor_reports(out.deployment, kind="performance", limit=REMEASURE_WINDOWS)
    stale = [r for r in earlier if r.window_end < out.since and (r.summary.get("labelled_share") or 0) < 1]
    if not stale:
        return
    last = client.store.list_monitor_reports(out.deployment, kind=KIND, variant="", limit=1)
    arrived = read_feedback(out.deployment, root=root, client=client)["ts"]
    seen = int(last[0].body.get("started_ms") or last[0].created_at) if last else None
    if seen is not None and not (arrived >= seen).any():
        return  # no label since the last pass: the old windows' partitions stay closed
    spans = sorted({(r.window_start, r.window_end) for r in stale})
    had = {(r.variant, r.window_start, r.window_end): int(r.summary.get("labelled") or 0) for r in stale}
    for start, end in spans:
        try:
            perf = monitor_performance(
                out.deployment,
                window=performance_window or _ONE_WINDOW,
                since=start,
                until=end + 1,
                store=False,
                root=root,
                client=client,
            )
        except ShipyardError as exc:
            out.notes.append(f"performance of an earlier window not measured again: {exc}")
            continue
        for report in perf.to_monitor_reports(client.settings.user):
            before = had.get((report.variant, report.window_start, report.window_end))
            if before is not None and int(report.summary.get("labelled") or 0) > before:
                _save(client, report, out)
    if "performance" in out.reports:
        out.notes.append(
            f"measured {len(out.reports['performance'])} earlier window(s) again: more labels have arrived"
        )


class _NoEstimate(Exception):
    """Why a window's performance cannot be estimated (a note on the pass, not an error)."""


def _window_labels(
    deployment: str, span: dict[str, Any]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], int, int]:
    """Positive-class scores and the labels so far (NaN where none) of a binary classifier's window."""
    rows, features = read_predictions(deployment, **span)
    keep = ~rows["shadow"].to_numpy(dtype=bool)
    rows, features = rows[keep], features[keep]
    if rows.empty:
        raise _NoEstimate("the window has no answered predictions")
    widths = {len(p) if isinstance(p, list) else 0 for p in rows["proba"]}
    if widths != {2}:
        raise _NoEstimate(
            "estimates are for binary classifiers that return probabilities; this window's answers have "
            f"{'no probabilities' if widths == {0} else f'{sorted(widths)} probability columns'}"
        )
    join = join_labels(rows, features, read_feedback(deployment, root=span["root"], client=span["client"]))
    known = join.rows["prediction"].dropna().unique().tolist()
    classes = sorted({*known, *join.rows["label"].dropna().unique().tolist()}, key=str)
    if len(classes) > 2:
        raise _NoEstimate(
            f"estimates are for binary classifiers; predictions and labels hold {len(classes)} classes"
        )
    positive = classes[-1] if classes else 1
    scores = np.asarray([p[1] for p in rows["proba"]], dtype=float)
    labels = np.where(join.labelled, (join.rows["label"] == positive).to_numpy(dtype=float), np.nan)
    return scores, labels, int(rows["ts"].min()), int(rows["ts"].max())


def _recent(out: MonitorPass, span: dict[str, Any], client: Client) -> tuple[Any, Any] | None:
    """Scores and labels of the newest earlier window that is (nearly) fully labelled, for the estimate."""
    if out.since is None:
        return None
    earlier = client.store.list_monitor_reports(out.deployment, kind="performance", limit=REMEASURE_WINDOWS)
    done = [
        r
        for r in earlier
        if r.window_end < out.since and (r.summary.get("labelled_share") or 0) >= RECENT_SHARE
    ]
    if not done:
        return None
    newest = done[-1]
    try:
        scored = _window_labels(
            out.deployment,
            {**span, "since": newest.window_start, "until": newest.window_end + 1},
        )
    except _NoEstimate:
        return None
    known = ~np.isnan(scored[1])
    return scored[0][known], scored[1][known]


def _estimate(out: MonitorPass, reference: tuple[Any, Any], span: dict[str, Any], client: Client) -> None:
    try:
        scores, labels, start, end = _window_labels(out.deployment, span)
    except _NoEstimate as exc:
        out.notes.append(f"estimated performance not measured: {exc}")
        return
    recent = _recent(out, span, client)
    try:
        est = estimate_performance(
            scores,
            reference_scores=reference[0],
            reference_labels=reference[1],
            labels=labels,
            recent_scores=None if recent is None else recent[0],
            recent_labels=None if recent is None else recent[1],
        )
    except ShipyardError as exc:
        out.notes.append(f"estimated performance not measured: {exc}")
        return
    out.estimate = est
    summary: dict[str, float | None] = {
        k: float(v) if np.isfinite(v) else None for k, v in est.metrics.items()
    }
    summary["trusted"] = float(est.trusted)
    verdict = "trusted" if est.trusted else "cannot be trusted: " + "; ".join(est.reasons)
    report = MonitorReport(
        deployment=out.deployment,
        kind="estimated",
        variant=None,
        window_start=start,
        window_end=end,
        rows=est.rows,
        verdict=verdict,
        summary=summary,
        body={"method": est.method, "reasons": est.reasons, "labelled": est.labelled},
        created_by=client.settings.user,
    )
    _save(client, report, out)
