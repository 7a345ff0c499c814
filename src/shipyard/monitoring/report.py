"""Drift reports: every feature, the predictions and the multivariate check for one window; stored per
deployment as a time series (``kind="drift"`` monitor reports).

``compute_drift`` compares frames already in memory; ``monitor_drift`` reads a window of a deployment's
prediction log, resolves the reference (the training data's stored profile by default), computes the report
and stores it; ``list_drift_reports`` reads the stored series back.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

import pandas as pd
import polars as pl
from pydantic import BaseModel, Field

from shipyard.data.profiles import ColumnProfile, Profile, to_polars
from shipyard.entities import MonitorReport
from shipyard.monitoring.drift import FeatureDrift, Thresholds, feature_drift, require_scipy
from shipyard.monitoring.multivariate import domain_auc
from shipyard.monitoring.query import When, read_window, to_ms
from shipyard.monitoring.reference import (
    EarlierWindow,
    Reference,
    check_columns,
    dataset_reference,
    model_reference,
)
from shipyard.tracking.fluent import get_client

if TYPE_CHECKING:
    from shipyard.tracking import Client

__all__ = ["DriftReport", "compute_drift", "list_drift_reports", "monitor_drift"]

KIND = "drift"


class DriftReport(BaseModel):
    """The drift of one window against a reference. ``str()`` gives the verdicts in plain words."""

    reference: str
    rows: int
    features: list[FeatureDrift]
    predictions: list[FeatureDrift] = Field(default_factory=list)
    drifted_features: list[str] = Field(default_factory=list)
    share_drifted: float = 0.0
    domain_auc: float | None = None
    domain_method: str | None = None
    drifted: bool = False
    verdict: str = ""
    deployment: str | None = None
    variant: str | None = None
    window_start: int = 0
    window_end: int = 0
    model_versions: dict[str, int] = Field(default_factory=dict)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    id: int | None = None

    def to_frame(self) -> pd.DataFrame:
        """One row per feature (then the prediction columns) with its statistics (pandas)."""
        keep = [
            "feature",
            "kind",
            "drifted",
            "psi",
            "ks",
            "ks_method",
            "wasserstein",
            "js",
            "p_value",
            "null_rate_ref",
            "null_rate_cur",
            "new_share",
            "verdict",
        ]
        return pd.DataFrame([f.model_dump(include=set(keep)) for f in self.features + self.predictions])[keep]

    def summary(self) -> dict[str, float | None]:
        """Headline numbers stored with the report (what alerts and time-series charts read)."""
        out: dict[str, float | None] = {
            "share_drifted": self.share_drifted,
            "drifted_features": float(len(self.drifted_features)),
            "domain_auc": self.domain_auc,
            "drifted": float(self.drifted),
        }
        for f in self.features + self.predictions:
            out[f"feature.{f.feature}.psi"] = f.psi
        return {k: (v if v is None or math.isfinite(v) else None) for k, v in out.items()}

    def to_monitor_report(self, created_by: str = "") -> MonitorReport:
        """The stored form (``kind="drift"``): NaN and infinities become null."""
        return MonitorReport(
            deployment=self.deployment or "",
            kind=KIND,
            variant=self.variant,
            window_start=self.window_start,
            window_end=self.window_end,
            rows=self.rows,
            verdict=self.verdict,
            summary=self.summary(),
            body=_finite(self.model_dump(mode="json")),
            created_by=created_by,
        )

    @classmethod
    def from_monitor_report(cls, report: MonitorReport) -> DriftReport:
        """Read a stored drift report back."""
        return cls.model_validate({**report.body, "id": report.id})

    def __str__(self) -> str:
        lines = [self.verdict, f"reference: {self.reference}"]
        lines += [f.verdict for f in self.features + self.predictions]
        if self.domain_auc is not None:
            lines.append(f"domain classifier AUC {self.domain_auc:.3f} ({self.domain_method})")
        return "\n".join(lines)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _as_reference_type(series: pl.Series, col: ColumnProfile) -> pl.Series:
    """Logged JSON loses types (datetimes are text, ints may be floats): read values as the reference did."""
    if col.kind == "numeric":
        return (
            series.cast(pl.Float64, strict=False) if series.dtype != pl.Boolean else series.cast(pl.Float64)
        )
    if col.kind == "datetime" and series.dtype == pl.String:
        return series.str.to_datetime(strict=False, time_zone="UTC").dt.replace_time_zone(None)
    if col.kind == "categorical":
        return series.cast(pl.String, strict=False)
    return series


def _prediction_drift(
    reference: Reference, predictions: pl.DataFrame | None, target: str | None, thresholds: Thresholds
) -> list[FeatureDrift]:
    if predictions is None or predictions.is_empty():
        return []
    if reference.predictions is not None:
        ref = Reference.from_frame(reference.predictions, source="reference predictions")
        pairs = [(n, n) for n in predictions.columns if n in ref.profile.columns]
    elif target is not None and target in reference.profile.columns and "prediction" in predictions.columns:
        ref, pairs = reference, [(target, "prediction")]
    else:
        return []
    out = []
    for ref_name, cur_name in pairs:
        col = ref.profile.columns[ref_name]
        if col.kind == "other":
            continue
        values = _as_reference_type(predictions.get_column(cur_name), col)
        raw = ref.rows.get_column(ref_name) if ref.rows is not None else None
        drift = feature_drift(col, values, thresholds, reference_values=raw)
        out.append(
            drift.model_copy(
                update={
                    "feature": f"prediction.{cur_name}",
                    "verdict": drift.verdict.replace(ref_name, f"prediction.{cur_name}", 1),
                }
            )
        )
    return out


def compute_drift(
    reference: Reference | Profile | Any,
    current: Any,
    *,
    predictions: Any = None,
    target: str | None = None,
    thresholds: Thresholds | None = None,
    multivariate: bool = True,
    sample: int = 5_000,
    seed: int = 0,
) -> DriftReport:
    """Compare current rows with a reference (a :class:`Reference`, a stored ``Profile``, or raw rows).

    Args:
        reference: What to compare with; raw rows (pandas, polars, pyarrow) give exact statistics.
        current: The current rows (features).
        predictions: The current predictions (``prediction``, ``score``) for prediction drift.
        target: The reference column to compare predicted labels with when the reference has no predictions.
        thresholds: Effect-size thresholds (defaults in ``docs/monitoring.md``).
        multivariate: Run the domain classifier.
        sample: Rows per side for the domain classifier.
        seed: Seed for every sample drawn.

    Example:
        >>> import polars as pl
        >>> ref = pl.DataFrame({"x": [float(i % 50) for i in range(2000)]})
        >>> compute_drift(ref, ref.with_columns(pl.col("x") + 30), multivariate=False).drifted_features
        ['x']
    """
    require_scipy()
    limits = thresholds or Thresholds()
    if isinstance(reference, Profile):
        reference = Reference(reference, None, "a profile")
    elif not isinstance(reference, Reference):
        reference = Reference.from_frame(reference)
    frame = to_polars(current)
    names = check_columns(reference, frame)
    features = []
    for name in names:
        col = reference.profile.columns[name]
        raw = (
            reference.rows.get_column(name) if reference.rows is not None and name in reference.rows else None
        )
        features.append(
            feature_drift(col, _as_reference_type(frame.get_column(name), col), limits, reference_values=raw)
        )
    preds = _prediction_drift(
        reference, None if predictions is None else to_polars(predictions), target, limits
    )
    report = DriftReport(
        reference=reference.source, rows=frame.height, features=features, predictions=preds, thresholds=limits
    )
    if multivariate:
        cast = frame.select(
            _as_reference_type(frame.get_column(n), reference.profile.columns[n]) for n in names
        )
        report.domain_auc, report.domain_method = domain_auc(reference, cast, names, sample=sample, seed=seed)
    _conclude(report)
    return report


def _conclude(report: DriftReport) -> None:
    limits = report.thresholds
    report.drifted_features = [f.feature for f in report.features if f.drifted]
    report.share_drifted = len(report.drifted_features) / len(report.features) if report.features else 0.0
    reasons = []
    if report.drifted_features:
        reasons.append(
            f"{len(report.drifted_features)} of {len(report.features)} features drifted "
            f"({', '.join(report.drifted_features[:5])}{', ...' if len(report.drifted_features) > 5 else ''})"
        )
    reasons += [f"{p.feature} drifted" for p in report.predictions if p.drifted]
    if report.domain_auc is not None and report.domain_auc > limits.domain_auc:
        reasons.append(
            f"a classifier tells current from reference rows (AUC {report.domain_auc:.2f} > "
            f"{limits.domain_auc:g})"
        )
    report.drifted = bool(reasons)
    where = (
        f"{report.deployment}{'/' + report.variant if report.variant else ''}: " if report.deployment else ""
    )
    report.verdict = where + (
        "drift: " + "; ".join(reasons)
        if reasons
        else f"no drift in {len(report.features)} features over {report.rows:,} rows"
    )


def monitor_drift(
    deployment: str,
    *,
    variant: str | None = None,
    since: When = None,
    until: When = None,
    last: int | None = None,
    reference: str | EarlierWindow | Reference | Any = None,
    target: str | None = None,
    thresholds: Thresholds | dict[str, Any] | None = None,
    multivariate: bool = True,
    sample: int = 5_000,
    seed: int = 0,
    store: bool = True,
    root: str | os.PathLike[str] | None = None,
    client: Client | None = None,
) -> DriftReport:
    """Compute the drift of a window of a deployment's traffic and store it in the deployment's series.

    Args:
        deployment: The deployment whose prediction log is read.
        variant: One variant (default: all non-shadow traffic).
        since: Window start (datetime, ISO 8601 or epoch ms).
        until: Window end.
        last: Instead of a time window, the last N predicted rows.
        reference: ``None`` (the served model's training data profile, via lineage), a dataset version
            (``"flights@v3"``: exact statistics from its rows), an :class:`EarlierWindow`, or rows.
        target: The reference column holding labels, for predicted-label drift against a dataset.
        thresholds: :class:`Thresholds` or a dict of them (``{"psi": 0.25, "per_feature": {...}}``).
        multivariate: Run the domain classifier.
        sample: Rows per side for the domain classifier.
        seed: Seed for the samples.
        store: Save the report (``kind="drift"``) in the store.
        root: The prediction log's root (default: where the deployment writes it).
        client: The client (default: the current one).

    Example:
        >>> report = sy.monitor_drift("churn", since="2025-11-27")  # doctest: +SKIP
        >>> print(report)  # doctest: +SKIP
    """
    client = client or get_client()
    limits = thresholds if isinstance(thresholds, Thresholds) else Thresholds.model_validate(thresholds or {})
    window = read_window(
        deployment, variant=variant, since=since, until=until, last=last, root=root, client=client
    )
    if window.features.is_empty():
        from shipyard.errors import NotFound

        raise NotFound(
            f"No answered predictions of deployment '{deployment}'"
            f"{f' variant {variant!r}' if variant else ''} in the window asked "
            f"(since={since!r}, until={until!r}, last={last!r}); widen it or check the log root"
        )
    resolved = _reference(reference, deployment, variant, window.model_versions, root, client)
    report = compute_drift(
        resolved,
        window.features,
        predictions=window.predictions,
        target=target,
        thresholds=limits,
        multivariate=multivariate,
        sample=sample,
        seed=seed,
    )
    report.deployment, report.variant = deployment, variant
    report.window_start, report.window_end, report.model_versions = (
        window.start,
        window.end,
        window.model_versions,
    )
    _conclude(report)
    if store:
        saved = client.store.save_monitor_report(report.to_monitor_report(client.settings.user))
        report.id = saved.id
    return report


def _reference(
    reference: Any, deployment: str, variant: str | None, served: dict[str, int], root: Any, client: Client
) -> Reference:
    if isinstance(reference, Reference):
        return reference
    if reference is None:
        model = max(served, key=lambda k: served[k])  # the version that served most rows of the window
        return model_reference(model, client)[1]
    if isinstance(reference, str):
        return dataset_reference(reference, client)
    if isinstance(reference, EarlierWindow):
        earlier = read_window(
            deployment,
            variant=variant,
            since=reference.since,
            until=reference.until,
            last=reference.last,
            root=root,
            client=client,
        )
        source = f"window {to_ms(reference.since)}..{to_ms(reference.until)} of {deployment}"
        return Reference.from_frame(earlier.features, source=source, predictions=earlier.predictions)
    return Reference.from_frame(reference)


def list_drift_reports(
    deployment: str,
    variant: str | None = None,
    since: When = None,
    *,
    limit: int = 1000,
    client: Client | None = None,
) -> list[DriftReport]:
    """A deployment's stored drift reports, oldest first (the newest ``limit``).

    ``variant=None`` lists every report; ``variant=""`` only the whole-deployment ones.

    Example:
        >>> [r.share_drifted for r in sy.list_drift_reports("churn", since="2025-11-01")]  # doctest: +SKIP
    """
    client = client or get_client()
    stored = client.store.list_monitor_reports(
        deployment, kind=KIND, variant=variant, since=to_ms(since), limit=limit
    )
    return [DriftReport.from_monitor_report(r) for r in stored]
