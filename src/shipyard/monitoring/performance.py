"""Realised performance per window once labels arrive: metrics, fairness, label drift, share labelled.

The metrics are ``sy.evaluate``'s: each window's labelled rows go through
``shipyard.registry.evaluation.evaluate_predictions`` (accuracy, precision, recall, F1, ROC AUC, log loss,
Brier score and ECE for classification; MAE, RMSE, R² and MAPE for regression; per-group metrics and the
fairlearn gaps of each sensitive column), so a monitored number and an evaluated one mean the same thing.
Label drift compares the window's labels with reference labels (``reference_labels=``, else the first
window with labels): the Jensen-Shannon distance of the class shares (threshold ``Thresholds.js``) or the
Wasserstein distance over the reference standard deviation (``Thresholds.wasserstein``) for regression.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shipyard.entities import MonitorReport
from shipyard.errors import InvalidInput
from shipyard.monitoring.drift import Thresholds
from shipyard.monitoring.labels import (
    LabelJoin,
    join_labels,
    read_feedback,
    read_label_file,
    read_predictions,
)
from shipyard.monitoring.query import When
from shipyard.registry.evaluation import evaluate_predictions
from shipyard.tracking.fluent import get_client

if TYPE_CHECKING:
    from shipyard.tracking import Client

__all__ = ["PerformanceReport", "PerformanceWindow", "compute_performance", "monitor_performance"]

KIND = "performance"
_DURATION = re.compile(r"(\d+)\s*(ms|s|min|h|d|w)")
_UNIT_MS = {"ms": 1, "s": 1_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


@dataclass
class PerformanceWindow:
    """One window of one variant: its size, how much is labelled, and the metrics on the labelled rows.

    ``metrics``/``groups``/``fairness`` are those of ``sy.evaluate`` (an ``EvaluationReport``'s);
    ``label_drift`` holds ``js`` or ``wasserstein``, ``drifted`` and a ``verdict`` in words.
    """

    variant: str
    start: int
    end: int
    predictions: int
    labelled: int
    labelled_share: float
    task: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    groups: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    fairness: dict[str, dict[str, float]] = field(default_factory=dict)
    label_shares: dict[str, float] = field(default_factory=dict)
    label_drift: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class PerformanceReport:
    """What :func:`monitor_performance` found: one :class:`PerformanceWindow` per window and variant."""

    deployment: str
    windows: list[PerformanceWindow]
    labels: dict[str, int] = field(default_factory=dict)
    on: str = "request_id"
    notes: list[str] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """One row per window: variant, bounds, counts, share labelled and every overall metric."""
        rows = [
            {
                "variant": w.variant,
                "start": pd.Timestamp(w.start, unit="ms", tz="UTC"),
                "end": pd.Timestamp(w.end, unit="ms", tz="UTC"),
                "predictions": w.predictions,
                "labelled": w.labelled,
                "labelled_share": w.labelled_share,
                **w.metrics,
                "label_drift": w.label_drift.get("drifted"),
            }
            for w in self.windows
        ]
        return pd.DataFrame(rows)

    def to_monitor_reports(self, created_by: str = "") -> list[MonitorReport]:
        """The stored form: one ``kind="performance"`` report per window (NaN as null)."""
        out = []
        for w in self.windows:
            summary: dict[str, float | None] = {
                "labelled_share": w.labelled_share,
                "labelled": float(w.labelled),
            }
            summary.update({k: _finite(v) for k, v in w.metrics.items()})
            if "drifted" in w.label_drift:
                summary["label_drift"] = float(bool(w.label_drift["drifted"]))
            body = _finite({**asdict(w), "deployment": self.deployment, "on": self.on, "labels": self.labels})
            verdict = _verdict(w)
            out.append(
                MonitorReport(
                    deployment=self.deployment,
                    kind=KIND,
                    variant=w.variant,
                    window_start=w.start,
                    window_end=w.end,
                    rows=w.predictions,
                    verdict=verdict,
                    summary=summary,
                    body=body,
                    created_by=created_by,
                )
            )
        return out


def _verdict(w: PerformanceWindow) -> str:
    head = f"{w.variant}: {w.labelled:,} of {w.predictions:,} predictions labelled ({w.labelled_share:.0%})"
    shown = [f"{k} {v:.3f}" for k, v in w.metrics.items() if k in ("accuracy", "roc_auc", "f1", "mae", "r2")]
    return (
        head
        + (": " + ", ".join(shown) if shown else "")
        + (f"; {w.label_drift['verdict']}" if w.label_drift else "")
    )


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _window_ids(rows: pd.DataFrame, window: str | int) -> np.ndarray[Any, Any]:
    """A window number per row: time buckets (``"1d"``, ``"6h"``; aligned to the epoch) or consecutive
    chunks of ``window`` rows per variant (in time order)."""
    if isinstance(window, int) and not isinstance(window, bool):
        if window < 1:
            raise InvalidInput(
                f"window must be a positive number of rows or a duration like '1d', not {window}"
            )
        return np.asarray(rows.groupby("variant").cumcount().to_numpy() // window)
    match = _DURATION.fullmatch(str(window).strip())
    if match is None:
        raise InvalidInput(f"window {window!r} is not a duration ('1d', '6h', '30min', '90s') or a row count")
    width = int(match.group(1)) * _UNIT_MS[match.group(2)]
    if width <= 0:
        raise InvalidInput(f"window {window!r} must be longer than 0")
    return np.asarray(rows["ts"].to_numpy(dtype=np.int64) // width)


def compute_performance(
    join: LabelJoin,
    *,
    window: str | int = "1d",
    sensitive: Sequence[str] = (),
    task: str | None = None,
    classes: Sequence[Any] | None = None,
    positive_label: Any = None,
    reference_labels: Any = None,
) -> list[PerformanceWindow]:
    """Per window and variant: counts, share labelled, ``sy.evaluate``'s metrics and label drift.

    Example:
        >>> windows = compute_performance(join, window=10_000, sensitive=["origin"])  # doctest: +SKIP
    """
    missing = [c for c in sensitive if c not in join.features.columns]
    if missing:
        raise InvalidInput(f"Sensitive column(s) {missing} are not among the logged inputs")
    rows = join.rows.assign(_window=_window_ids(join.rows, window), _labelled=join.labelled)
    out = []
    reference = None if reference_labels is None else np.asarray(reference_labels)
    for (variant, _), part in rows.groupby(["variant", "_window"], sort=True):
        w = PerformanceWindow(
            variant=str(variant),
            start=int(part["ts"].min()),
            end=int(part["ts"].max()),
            predictions=len(part),
            labelled=int(part["_labelled"].sum()),
            labelled_share=float(part["_labelled"].mean()),
        )
        labelled = part[part["_labelled"]]
        if len(labelled):
            _evaluate(
                w, labelled, join.features.loc[labelled.index], sensitive, task, classes, positive_label
            )
            if reference is None:
                reference = labelled["label"].to_numpy()
            w.label_drift = label_drift(reference, labelled["label"].to_numpy(), w.task or "classification")
        else:
            w.notes.append("No labels have arrived for this window yet.")
        out.append(w)
    return out


def _evaluate(
    w: PerformanceWindow,
    labelled: pd.DataFrame,
    features: pd.DataFrame,
    sensitive: Sequence[str],
    task: str | None,
    classes: Sequence[Any] | None,
    positive_label: Any,
) -> None:
    proba = None
    probs = labelled["proba"].tolist()
    if probs and all(isinstance(p, list) and p for p in probs) and len({len(p) for p in probs}) == 1:
        proba = np.asarray(probs, dtype=float)
    report = evaluate_predictions(
        labelled["label"].tolist(),
        labelled["prediction"].tolist(),
        proba=proba,
        classes=classes,
        task=task,
        sensitive={c: features[c].to_numpy() for c in sensitive},
        positive_label=positive_label,
        plots=False,
    )
    w.task, w.metrics, w.groups, w.fairness = report.task, report.metrics, report.groups, report.fairness
    w.notes.extend(report.notes)
    if report.task != "regression":
        shares = pd.Series(labelled["label"].astype(str)).value_counts(normalize=True).sort_index()
        w.label_shares = {str(k): float(v) for k, v in shares.items()}


def label_drift(reference: Any, current: Any, task: str, limits: Thresholds | None = None) -> dict[str, Any]:
    """How far the window's labels moved from the reference labels, with a verdict in words.

    Example:
        >>> label_drift([0, 0, 1, 1], [1, 1, 1, 1], "classification")["drifted"]
        True
    """
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import wasserstein_distance

    lim = limits or Thresholds()
    if task == "regression":
        ref, cur = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
        scale = float(np.std(ref)) or 1.0
        value = float(wasserstein_distance(ref, cur)) / scale
        drifted = value > lim.wasserstein
        words = f"label Wasserstein/std {value:.3f} {'>' if drifted else '<='} {lim.wasserstein}"
        return {
            "wasserstein": value,
            "mean_ref": float(ref.mean()),
            "mean_cur": float(cur.mean()),
            "drifted": drifted,
            "verdict": f"labels {'drifted' if drifted else 'stable'} ({words})",
        }
    ref_s, cur_s = pd.Series(reference).astype(str), pd.Series(current).astype(str)
    names = sorted(set(ref_s) | set(cur_s))
    a = ref_s.value_counts().reindex(names, fill_value=0).to_numpy(dtype=float)
    b = cur_s.value_counts().reindex(names, fill_value=0).to_numpy(dtype=float)
    value = float(jensenshannon(a, b, base=2))
    drifted = value > lim.js
    words = f"JS distance {value:.3f} {'>' if drifted else '<='} {lim.js}"
    return {
        "js": value,
        "drifted": drifted,
        "verdict": f"labels {'drifted' if drifted else 'stable'} ({words})",
    }


def monitor_performance(
    deployment: str,
    *,
    window: str | int = "1d",
    variant: str | None = None,
    since: When = None,
    until: When = None,
    labels: str | os.PathLike[str] | pd.DataFrame | None = None,
    label_column: str = "label",
    key: str | None = None,
    sensitive: Sequence[str] = (),
    task: str | None = None,
    classes: Sequence[Any] | None = None,
    positive_label: Any = None,
    reference_labels: Any = None,
    store: bool = True,
    root: str | os.PathLike[str] | None = None,
    client: Client | None = None,
) -> PerformanceReport:
    """Realised performance of a deployment per window, from the labels that have arrived so far.

    Args:
        deployment: The deployment whose prediction log and feedback are read.
        window: A duration (``"1d"``, ``"6h"``) or a number of predicted rows per window and variant.
        variant: One variant (shadow variants included when named); default every variant.
        since: Only predictions at or after this time. until: only before it.
        labels: Extra labels: a CSV/Parquet file or frame with a ``request_id`` (or ``key``) column and
            ``label_column``; the feedback log is always read.
        label_column: The label column of ``labels``.
        key: Join by this column of the logged inputs (a user key) instead of by request id.
        sensitive: Logged input columns to compute per-group metrics and fairness gaps for.
        task: ``"classification"`` or ``"regression"`` (inferred when None).
        classes: The class labels in the order of the logged probability columns (default: sorted).
        positive_label: The positive class for binary metrics and fairness.
        reference_labels: Labels to measure label drift against (default: the first labelled window).
        store: Save one ``kind="performance"`` report per window in the store.
        root: The prediction log's root. client: The client (default: the current one).

    Example:
        >>> report = sy.monitor_performance("flights", window="7d", sensitive=["origin"])  # doctest: +SKIP
        >>> report.to_frame()[["start", "labelled_share", "roc_auc"]]  # doctest: +SKIP
    """
    client = client or get_client()
    rows, features = read_predictions(
        deployment, variant=variant, since=since, until=until, root=root, client=client
    )
    if variant is None:
        keep = ~rows["shadow"].to_numpy(dtype=bool)
        rows, features = rows[keep], features[keep]
    given = read_feedback(deployment, root=root, client=client)
    if labels is not None:
        extra = read_label_file(labels, label=label_column, on=key or "request_id")
        given = pd.concat([given, extra], ignore_index=True)
    join = join_labels(rows, features, given, key=key)
    windows = compute_performance(
        join,
        window=window,
        sensitive=sensitive,
        task=task,
        classes=classes,
        positive_label=positive_label,
        reference_labels=reference_labels,
    )
    report = PerformanceReport(deployment, windows, labels=join.counts(), on=join.on, notes=join.notes)
    if store:
        for stored in report.to_monitor_reports(client.settings.user):
            report.ids.append(client.store.save_monitor_report(stored).id)
    return report
