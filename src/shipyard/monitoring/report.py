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

import numpy as np
import pandas as pd
import polars as pl
from pydantic import BaseModel, Field

from shipyard.data.profiles import ColumnProfile, Profile, to_polars
from shipyard.entities import MonitorReport
from shipyard.errors import NotFound
from shipyard.monitoring.drift import (
    CurrentCounts,
    FeatureDrift,
    Thresholds,
    count_current,
    drift_from_counts,
    feature_drift,
    require_scipy,
    require_sklearn,
)
from shipyard.monitoring.multivariate import domain_auc
from shipyard.monitoring.query import When, iter_window, read_window, summarize_window, to_ms
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

__all__ = [
    "DriftReport",
    "compute_drift",
    "feature_schema",
    "list_drift_reports",
    "monitor_drift",
    "window_drift",
]

KIND = "drift"
MAX_WINDOW_ROWS = 1_000_000
"""With reference rows, windows up to this many predicted rows are read whole for exact KS and Wasserstein;
larger ones (and every window compared with a profile alone) are read partition by partition."""


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
    window_method: str | None = None
    skipped_requests: int = 0
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
        if self.window_method == "by partition":
            lines.append(
                f"read partition by partition ({self.rows:,} rows): KS and Wasserstein binned "
                "(from the reference's bins)"
            )
        if self.skipped_requests:
            lines.append(f"{self.skipped_requests} logged request(s) left out: their JSON could not be read")
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


def _prediction_pairs(
    reference: Reference, columns: list[str], target: str | None
) -> tuple[Reference, list[tuple[str, str]]]:
    """The reference to compare predictions with and (reference column, prediction column) pairs."""
    if reference.predictions is not None:
        ref = Reference.from_frame(reference.predictions, source="reference predictions")
        pairs = [(n, n) for n in columns if n in ref.profile.columns]
    elif target is not None and target in reference.profile.columns and "prediction" in columns:
        ref, pairs = reference, [(target, "prediction")]
    else:
        return reference, []
    return ref, [(r, c) for r, c in pairs if ref.profile.columns[r].kind != "other"]


def _as_prediction(drift: FeatureDrift, ref_name: str, cur_name: str) -> FeatureDrift:
    return drift.model_copy(
        update={
            "feature": f"prediction.{cur_name}",
            "verdict": drift.verdict.replace(ref_name, f"prediction.{cur_name}", 1),
        }
    )


def _prediction_drift(
    reference: Reference, predictions: pl.DataFrame | None, target: str | None, thresholds: Thresholds
) -> list[FeatureDrift]:
    if predictions is None or predictions.is_empty():
        return []
    ref, pairs = _prediction_pairs(reference, predictions.columns, target)
    out = []
    for ref_name, cur_name in pairs:
        col = ref.profile.columns[ref_name]
        values = _as_reference_type(predictions.get_column(cur_name), col)
        raw = ref.rows.get_column(ref_name) if ref.rows is not None else None
        out.append(
            _as_prediction(feature_drift(col, values, thresholds, reference_values=raw), ref_name, cur_name)
        )
    return out


def _library(data: Any) -> str:
    return type(data).__module__.split(".")[0]


class _Columns:
    """One column at a time of what the caller holds, never a converted copy of the whole frame.

    A polars frame gives its columns as they are; a LazyFrame (a Parquet scan) reads one column per call;
    pandas and pyarrow tables convert one column per call. Floats keep their NaN: the statistics count NaN
    as null themselves.
    """

    def __init__(self, data: Any) -> None:
        self.data = data
        self.names: list[str]
        if isinstance(data, pl.LazyFrame):
            self.names = data.collect_schema().names()
            self.height = int(data.select(pl.len()).collect().item())
        elif _library(data) == "pandas" and hasattr(data, "columns"):
            self.names, self.height = [str(n) for n in data.columns], len(data)
        elif _library(data) == "pyarrow" and hasattr(data, "column_names"):
            self.names, self.height = list(data.column_names), data.num_rows
        else:
            self.data = data if isinstance(data, pl.DataFrame) else to_polars(data)
            self.names, self.height = self.data.columns, self.data.height

    def get(self, name: str) -> pl.Series:
        data = self.data
        if isinstance(data, pl.DataFrame):
            return data.get_column(name)
        if isinstance(data, pl.LazyFrame):
            return data.select(name).collect().to_series()
        if _library(data) == "pandas":
            return to_polars(data[[name]]).to_series()
        return to_polars(data.select([name])).to_series()

    def frame(self, names: list[str]) -> pl.DataFrame:
        """The named columns as one polars frame (the multivariate check samples its rows)."""
        data = self.data
        if isinstance(data, pl.DataFrame):
            return data.select(names)
        if isinstance(data, pl.LazyFrame):
            return data.select(names).collect()
        return to_polars(data[names] if _library(data) == "pandas" else data.select(names))


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

    The current rows are read one column at a time (a polars ``LazyFrame``, e.g. ``pl.scan_parquet``,
    is read column by column), so the peak memory is the rows given plus about one column.

    Args:
        reference: What to compare with; raw rows (pandas, polars, pyarrow) give exact statistics.
        current: The current rows (features): pandas, polars (eager or lazy) or pyarrow.
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
    if multivariate:
        require_sklearn()
    limits = thresholds or Thresholds()
    reference = as_reference(reference)
    columns = _Columns(current)
    names = check_columns(reference, columns.names)
    features = []
    for name in names:
        col = reference.profile.columns[name]
        raw = (
            reference.rows.get_column(name) if reference.rows is not None and name in reference.rows else None
        )
        values = _as_reference_type(columns.get(name), col)
        features.append(feature_drift(col, values, limits, reference_values=raw))
        del values  # one column at a time: freed before the next is read
    preds = _prediction_drift(
        reference, None if predictions is None else to_polars(predictions), target, limits
    )
    report = DriftReport(
        reference=reference.source,
        rows=columns.height,
        features=features,
        predictions=preds,
        thresholds=limits,
    )
    if multivariate:
        report.domain_auc, report.domain_method = domain_auc(
            reference,
            columns.frame(names),
            names,
            sample=sample,
            seed=seed,
            prepare=lambda f: f.select(
                _as_reference_type(f.get_column(n), reference.profile.columns[n]) for n in names
            ),
        )
    _conclude(report)
    return report


def as_reference(reference: Reference | Profile | Any) -> Reference:
    """A :class:`Reference` from what ``compute_drift`` accepts (a reference, a stored profile or rows)."""
    if isinstance(reference, Reference):
        return reference
    if isinstance(reference, Profile):
        return Reference(reference, None, "a profile")
    return Reference.from_frame(reference)


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
    options: dict[str, Any] = {
        "target": target,
        "thresholds": limits,
        "multivariate": multivariate,
        "sample": sample,
        "seed": seed,
    }
    where = f"{deployment}{f' variant {variant!r}' if variant else ''}"
    if last is not None:  # a count-bounded window: read whole, as it is bounded by ``last``
        window = read_window(
            deployment, variant=variant, last=last, since=since, until=until, root=root, client=client
        )
        if window.features.is_empty():
            raise NotFound(
                f"No answered predictions of deployment '{where}' in the last {last} rows; check the log root"
            )
        resolved = _reference(reference, deployment, variant, window.model_versions, root, client)
        report = compute_drift(resolved, window.features, predictions=window.predictions, **options)
        report.window_start, report.window_end = window.start, window.end
        report.model_versions = window.model_versions
    else:
        summary = summarize_window(
            deployment, variant=variant, since=since, until=until, root=root, client=client
        )
        if summary.requests == 0:
            raise NotFound(
                f"No answered predictions of deployment '{where}' in the window asked "
                f"(since={since!r}, until={until!r}); widen it or check the log root"
            )
        resolved = _reference(reference, deployment, variant, summary.model_versions, root, client)
        report = window_drift(
            resolved,
            deployment,
            variant=variant,
            since=since,
            until=until,
            root=root,
            client=client,
            **options,
        )
    report.deployment, report.variant = deployment, variant
    _conclude(report)
    if store:
        saved = client.store.save_monitor_report(report.to_monitor_report(client.settings.user))
        report.id = saved.id
    return report


def feature_schema(reference: Reference) -> dict[str, pl.DataType]:
    """The logged features to decode for a reference, and how: numeric as Float64, the rest as text."""
    return {
        name: pl.Float64() if col.kind == "numeric" else pl.String()
        for name, col in reference.profile.columns.items()
        if col.kind != "other"
    }


def window_drift(
    reference: Reference | Profile | Any,
    deployment: str,
    *,
    variant: str | None = None,
    since: When = None,
    until: When = None,
    target: str | None = None,
    thresholds: Thresholds | None = None,
    multivariate: bool = True,
    sample: int = 5_000,
    seed: int = 0,
    max_rows: int = MAX_WINDOW_ROWS,
    root: str | os.PathLike[str] | None = None,
    client: Client | None = None,
) -> DriftReport:
    """The drift of a time window of a deployment's log against a reference, in bounded memory.

    The window is read one hour partition at a time: each partition's features are counted into the
    reference's bins and the counts summed, so memory follows one partition, not the window, and the
    statistics are those of the whole window at once (the counts add up). The multivariate check uses a
    uniform sample of ``sample`` rows of the window. Only when the reference has rows (exact KS and
    Wasserstein need both sides' values) and the window holds at most ``max_rows`` predicted rows is it
    read whole; otherwise KS and Wasserstein are the binned ones (``ks_method="binned"``). The report's
    ``window_method`` says which. Nothing is stored (``monitor_drift`` stores).

    Example:
        >>> report = window_drift(profile, "churn", since="2025-11-01", root="log/")  # doctest: +SKIP
    """
    require_scipy()
    if multivariate:
        require_sklearn()
    limits = thresholds or Thresholds()
    reference = as_reference(reference)
    span: dict[str, Any] = {
        "variant": variant,
        "since": since,
        "until": until,
        "root": root,
        "client": client,
    }
    summary = summarize_window(deployment, **span)
    schema = feature_schema(reference)
    if reference.rows is not None and summary.rows <= max_rows:
        window = read_window(deployment, schema=schema, **span)
        if window.features.is_empty():
            raise NotFound(f"No answered predictions of deployment '{deployment}' in the window asked")
        report = compute_drift(
            reference,
            window.features,
            predictions=window.predictions,
            target=target,
            thresholds=limits,
            multivariate=multivariate,
            sample=sample,
            seed=seed,
        )
        report.window_method = "whole window"
        report.skipped_requests = window.skipped
    else:
        report = _partition_drift(
            reference, deployment, span, schema, target, limits, multivariate, sample, seed
        )
    report.deployment, report.variant = deployment, variant
    report.window_start, report.window_end = summary.start, summary.end
    report.model_versions = summary.model_versions
    _conclude(report)
    return report


def _partition_drift(
    reference: Reference,
    deployment: str,
    span: dict[str, Any],
    schema: dict[str, pl.DataType],
    target: str | None,
    limits: Thresholds,
    multivariate: bool,
    sample: int,
    seed: int,
) -> DriftReport:
    """Drift from counts summed partition by partition (see :func:`window_drift`)."""
    cols = reference.profile.columns
    counts: dict[str, CurrentCounts] = {}
    pred_ref, pairs = _prediction_pairs(reference, ["prediction", "score"], target)
    pred_counts: dict[tuple[str, str], CurrentCounts] = {}
    seen_preds: set[str] = set()
    kept: pl.DataFrame | None = None
    rows = skipped = 0
    names: list[str] = []
    for i, part in enumerate(iter_window(deployment, schema=schema, **span)):
        skipped += part.skipped
        if part.features.is_empty():
            continue
        names = names or check_columns(reference, part.features.columns)
        rows += part.features.height
        for name in names:
            values = _as_reference_type(part.features.get_column(name), cols[name])
            add = count_current(cols[name], values)
            counts[name] = counts[name].merge(add) if name in counts else add
        for ref_name, cur_name in pairs:
            col = pred_ref.profile.columns[ref_name]
            if cur_name in part.predictions.columns:
                seen_preds.add(cur_name)
                values = _as_reference_type(part.predictions.get_column(cur_name), col)
            else:
                values = pl.Series(cur_name, [None] * part.predictions.height, dtype=pl.Float64)
            add = count_current(col, values)
            key = (ref_name, cur_name)
            pred_counts[key] = pred_counts[key].merge(add) if key in pred_counts else add
        if multivariate:
            kept = _keep_sample(kept, part.features.select(names), sample, seed, i)
    if not names:
        raise NotFound(f"No answered predictions of deployment '{deployment}' in the window asked")
    features = [
        drift_from_counts(
            cols[n],
            counts[n],
            limits,
            reference_values=(
                reference.rows.get_column(n) if reference.rows is not None and n in reference.rows else None
            ),
        )
        for n in names
    ]
    preds = [
        _as_prediction(
            drift_from_counts(
                pred_ref.profile.columns[r],
                pred_counts[(r, c)],
                limits,
                reference_values=pred_ref.rows.get_column(r) if pred_ref.rows is not None else None,
            ),
            r,
            c,
        )
        for r, c in pairs
        if c in seen_preds
    ]
    report = DriftReport(
        reference=reference.source, rows=rows, features=features, predictions=preds, thresholds=limits
    )
    report.window_method = "by partition"
    report.skipped_requests = skipped
    if multivariate and kept is not None:
        sampled = kept.drop("_key").select(_as_reference_type(kept.get_column(n), cols[n]) for n in names)
        report.domain_auc, report.domain_method = domain_auc(
            reference, sampled, names, sample=sample, seed=seed
        )
    return report


def _keep_sample(
    kept: pl.DataFrame | None, part: pl.DataFrame, size: int, seed: int, index: int
) -> pl.DataFrame:
    """A uniform sample of ``size`` rows of everything seen so far: the rows with the smallest random keys
    (bottom-k), so it needs only ``size`` rows in memory however long the window."""
    keys = np.random.default_rng([seed, index]).random(part.height)
    part = part.with_columns(pl.Series("_key", keys))
    both = part if kept is None else pl.concat([kept, part], how="vertical_relaxed")
    return both.sort("_key").head(size)


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
