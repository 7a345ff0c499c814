"""Estimated performance of a binary classifier before (all) its labels arrive.

Given a window's scores (the positive class's probability), the expected accuracy, F1 and ROC AUC follow
from calibrated probabilities ``q = P(y=1 | score)``: every row is a Bernoulli(q) label, so the expected
confusion counts are sums of ``q`` and ``1 - q`` and the expected ROC curve is the cumulative sums of ``q``
and ``1 - q`` down the sorted scores (ties count half, as in ``roc_auc_score``). NannyML's CBPE does this
with the *reference's* calibration, which is exactly what breaks when the world changes: on the flights
model the late share swung from 13% to 33% and CBPE kept estimating the reference AUC. Here the calibration
map is re-estimated from the labels that have arrived, in this order:

1. ``recalibrated``: at least ``min_labels`` rows of this window are labelled (both classes
   ``min_per_class`` times). A two-parameter Platt map ``q = sigmoid(a * logit(score) + b)`` is fitted to
   them with a Gaussian prior pulling ``(a, b)`` toward the previous calibration (strength
   ``prior_strength``, in log-likelihood units), labelled rows count with their real label and the rest with
   ``q``. A bootstrap over the labelled rows gives a 90% interval.
2. ``recent``: too few labels here, but an earlier window (``recent_scores``/``recent_labels``: the latest
   fully labelled traffic) has them: its calibration is carried forward.
3. ``reference``: no labels since the reference. Its calibration is used, importance-weighted when features
   are given: a domain classifier between reference and current inputs gives each reference row the weight
   ``p / (1 - p)`` (clipped at the 99th percentile), and the map is fitted on the reweighted reference.
   This corrects covariate shift only; a change of ``P(y | x)`` is invisible without labels.

Trust (``trusted=False`` with the reasons; limits in :class:`EstimateLimits`, documented in
``docs/monitoring.md``):

- every method: the score distribution moved beyond ``max_score_psi`` (PSI) from the scores the calibration
  was fitted on, so the map is extrapolated;
- ``recalibrated``: the 90% interval of ROC AUC is wider than ``max_interval`` (too few labels for the shift
  seen), or the fitted map does not describe the labelled rows (Hosmer-Lemeshow over 10 score deciles,
  p < ``misfit_alpha``: the calibration broke in a shape two parameters cannot follow);
- ``recent``: the calibration moved by more than ``max_calibration_shift`` (mean absolute change of ``q``
  over this window's scores) between the reference and the recent window: it is drifting, and carrying it
  forward one more window is a guess;
- ``reference`` with features: importance weighting moved the calibration by more than
  ``max_calibration_shift``, its effective sample size is below ``min_ess_share`` of the reference, or a
  feature lies outside the reference's range for most current rows (it cannot be reweighted and is left
  out of the domain classifier).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shipyard.data.diff import psi
from shipyard.errors import InvalidInput

__all__ = [
    "Calibration",
    "EstimateLimits",
    "PerformanceEstimate",
    "estimate_performance",
    "expected_metrics",
    "fit_calibration",
    "importance_weights",
]

ESTIMATED = ("accuracy", "f1", "roc_auc")
_EPS = 1e-6
_SCORE_BINS = 10


@dataclass(frozen=True)
class EstimateLimits:
    """When an estimate is flagged ``trusted=False`` (see the module docs for each rule)."""

    min_labels: int = 100
    min_per_class: int = 10
    prior_strength: float = 10.0
    max_interval: float = 0.10
    misfit_alpha: float = 0.001
    max_score_psi: float = 0.2
    max_calibration_shift: float = 0.05
    min_ess_share: float = 0.1
    max_outside_share: float = 0.5


@dataclass(frozen=True)
class Calibration:
    """A Platt map ``q = sigmoid(slope * logit(score) + intercept)`` and what it was fitted on.

    Example:
        >>> import numpy as np
        >>> Calibration(1.0, 0.0, "identity", 0).apply(np.array([0.2, 0.7])).round(3).tolist()
        [0.2, 0.7]
    """

    slope: float
    intercept: float
    source: str
    rows: int

    def apply(self, scores: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Calibrated probabilities of ``scores``."""
        return _sigmoid(self.slope * _logit(scores) + self.intercept)


def _logit(p: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    clipped = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.asarray(np.log(clipped) - np.log1p(-clipped), dtype=float)


def _sigmoid(x: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float))), dtype=float)


def fit_calibration(
    scores: Any,
    labels: Any,
    *,
    weights: Any = None,
    prior: Calibration | None = None,
    strength: float = 0.0,
    source: str = "",
) -> Calibration:
    """Fit a Platt map by (weighted) maximum likelihood, with a Gaussian prior toward ``prior``.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> s = rng.uniform(0.05, 0.95, 5000)
        >>> y = rng.random(5000) < s
        >>> round(fit_calibration(s, y).slope, 1)
        1.0
    """
    from scipy.optimize import minimize

    x = _logit(np.asarray(scores, dtype=float))
    y = np.asarray(labels, dtype=float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    a0, b0 = (prior.slope, prior.intercept) if prior is not None else (1.0, 0.0)

    def loss(theta: np.ndarray[Any, Any]) -> tuple[float, np.ndarray[Any, Any]]:
        a, b = theta
        m = a * x + b
        value = np.sum(w * (np.logaddexp(0.0, m) - y * m)) + 0.5 * strength * ((a - a0) ** 2 + (b - b0) ** 2)
        r = w * (_sigmoid(m) - y)
        grad = np.array([np.sum(r * x) + strength * (a - a0), np.sum(r) + strength * (b - b0)])
        return float(value), grad

    result = minimize(loss, np.array([a0, b0]), jac=True, method="L-BFGS-B")
    return Calibration(float(result.x[0]), float(result.x[1]), source, len(x))


def expected_metrics(
    scores: Any, probs: Any, *, predicted: Any = None, threshold: float = 0.5, order: Any = None
) -> dict[str, float]:
    """Expected accuracy, F1 and ROC AUC when each row's label is Bernoulli(``probs``).

    ``predicted`` is the predicted positive (bool) per row (default: ``scores >= threshold``). A row whose
    label is known passes it as its probability (0 or 1). ``order`` (``argsort(-scores)``) saves the sort
    when the same scores are evaluated many times (a bootstrap).

    Example:
        >>> import numpy as np
        >>> m = expected_metrics(np.array([0.9, 0.1]), np.array([1.0, 0.0]))
        >>> m["accuracy"], m["roc_auc"], m["f1"]
        (1.0, 1.0, 1.0)
    """
    s = np.asarray(scores, dtype=float)
    q = np.asarray(probs, dtype=float)
    pred = s >= threshold if predicted is None else np.asarray(predicted, dtype=bool)
    tp, fp = float(np.sum(q[pred])), float(np.sum(1 - q[pred]))
    fn = float(np.sum(q[~pred]))
    out = {
        "accuracy": float(np.mean(np.where(pred, q, 1 - q))) if len(q) else math.nan,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else 0.0,
    }
    out["roc_auc"] = _expected_auc(s, q, np.argsort(-s, kind="stable") if order is None else order)
    return out


def _expected_auc(s: np.ndarray[Any, Any], q: np.ndarray[Any, Any], order: Any) -> float:
    s, q = s[order], q[order]
    tp, fp = np.cumsum(q), np.cumsum(1 - q)
    if len(s) == 0 or tp[-1] <= 0 or fp[-1] <= 0:
        return math.nan
    last = np.r_[s[1:] != s[:-1], True]  # a tie group is one step of the curve: counts half
    tpr, fpr = np.r_[0.0, tp[last]] / tp[-1], np.r_[0.0, fp[last]] / fp[-1]
    return float(np.trapezoid(tpr, fpr))


@dataclass
class PerformanceEstimate:
    """Estimated accuracy, F1 and ROC AUC of one window, how, and whether to trust it.

    Attributes:
        metrics: the estimates.
        interval: metric -> (low, high), a 90% bootstrap interval (``recalibrated`` only).
        method: ``recalibrated``, ``recent`` or ``reference``.
        rows: rows in the window; labelled: rows with a label so far.
        trusted: False when a rule of :class:`EstimateLimits` fired; ``reasons`` says which, in words.
        calibration: the map used.
        realised: the metrics on the labels, once :meth:`compare` is called; errors: estimate - realised.
    """

    metrics: dict[str, float]
    method: str
    rows: int
    labelled: int
    trusted: bool
    calibration: Calibration
    reasons: list[str] = field(default_factory=list)
    interval: dict[str, tuple[float, float]] = field(default_factory=dict)
    realised: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)

    def compare(self, scores: Any, labels: Any, *, predicted: Any = None, threshold: float = 0.5) -> None:
        """Fill ``realised`` and ``errors`` from the labels of the whole window once they have landed."""
        from sklearn import metrics as skm

        y = np.asarray(labels, dtype=int)
        s = np.asarray(scores, dtype=float)
        pred = s >= threshold if predicted is None else np.asarray(predicted, dtype=bool)
        self.realised = {
            "accuracy": float(skm.accuracy_score(y, pred.astype(int))),
            "f1": float(skm.f1_score(y, pred.astype(int), zero_division=0)),
        }
        if 0 < y.sum() < len(y):
            self.realised["roc_auc"] = float(skm.roc_auc_score(y, s))
        self.errors = {k: self.metrics[k] - v for k, v in self.realised.items() if k in self.metrics}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (NaN as None)."""
        out = asdict(self)
        out["interval"] = {k: list(v) for k, v in self.interval.items()}
        result: dict[str, Any] = _finite(out)
        return result


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def estimate_performance(
    scores: Any,
    *,
    reference_scores: Any,
    reference_labels: Any,
    labels: Any = None,
    recent_scores: Any = None,
    recent_labels: Any = None,
    reference_features: pd.DataFrame | None = None,
    current_features: pd.DataFrame | None = None,
    predicted: Any = None,
    threshold: float = 0.5,
    limits: EstimateLimits | None = None,
    n_boot: int = 200,
    seed: int = 0,
) -> PerformanceEstimate:
    """Estimate a window's accuracy, F1 and ROC AUC from its scores and whatever labels have arrived.

    Args:
        scores: the window's positive-class probabilities.
        reference_scores: scores on labelled reference data (the validation set, say).
        reference_labels: their labels (0/1).
        labels: the window's labels so far, NaN (or None) where not arrived.
        recent_scores: scores of the latest fully labelled earlier window, if any.
        recent_labels: its labels.
        reference_features: reference inputs, for importance weighting when no labels are at hand.
        current_features: the window's inputs (same columns).
        predicted: the predicted positive per row (default ``scores >= threshold``).
        threshold: the decision threshold.
        limits: the trust rules.
        n_boot: bootstrap resamples for the interval (``recalibrated``).
        seed: seed of the bootstrap and the domain classifier.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(1)
        >>> ref = rng.uniform(0.02, 0.98, 4000)
        >>> est = estimate_performance(ref, reference_scores=ref, reference_labels=rng.random(4000) < ref)
        >>> est.method, est.trusted, round(est.metrics["roc_auc"], 2)
        ('reference', True, 0.82)
    """
    lim = limits or EstimateLimits()
    s = np.asarray(scores, dtype=float)
    ref_s, ref_y = np.asarray(reference_scores, dtype=float), np.asarray(reference_labels, dtype=float)
    if len(s) == 0 or len(ref_s) != len(ref_y) or len(ref_s) == 0:
        raise InvalidInput(
            "estimate_performance needs window scores and reference scores with one label each"
        )
    y = (
        np.full(len(s), np.nan)
        if labels is None
        else np.asarray(pd.to_numeric(pd.Series(labels)), dtype=float)
    )
    pred = s >= threshold if predicted is None else np.asarray(predicted, dtype=bool)
    reference = fit_calibration(ref_s, ref_y, source="reference")
    prior, base_scores = reference, ref_s
    if recent_scores is not None and recent_labels is not None and len(recent_scores):
        rs, ry = np.asarray(recent_scores, dtype=float), np.asarray(recent_labels, dtype=float)
        prior = fit_calibration(rs, ry, prior=reference, strength=lim.prior_strength, source="recent")
        base_scores = rs
    known = ~np.isnan(y)
    if _enough(y[known], lim):
        return _recalibrated(s, y, pred, prior, lim, n_boot, seed)
    reasons = _score_shift(base_scores, s, lim)
    if prior is not reference:
        shift = _shift(prior, reference, s)
        if shift > lim.max_calibration_shift:
            reasons.append(
                f"calibration moved by {shift:.3f} (mean |change of P(late)|) between the reference and the "
                f"latest labelled window, above {lim.max_calibration_shift}: it is drifting, and carrying "
                "it forward is a guess"
            )
        return _finish(s, y, pred, prior, "recent", reasons)
    if reference_features is not None and current_features is not None:
        weights, notes = importance_weights(reference_features, current_features, seed=seed, limits=lim)
        reasons += notes
        weighted = fit_calibration(
            ref_s, ref_y, weights=weights, prior=reference, source="reference, weighted"
        )
        shift = _shift(weighted, reference, s)
        if shift > lim.max_calibration_shift:
            reasons.append(
                f"the inputs moved enough to change the calibration by {shift:.3f} (above "
                f"{lim.max_calibration_shift}) under importance weighting; "
                "without labels that is extrapolation"
            )
        return _finish(s, y, pred, weighted, "reference", reasons)
    return _finish(s, y, pred, reference, "reference", reasons)


def _enough(y: np.ndarray[Any, Any], lim: EstimateLimits) -> bool:
    positives = int(np.sum(y == 1))
    return len(y) >= lim.min_labels and min(positives, len(y) - positives) >= lim.min_per_class


def _shift(a: Calibration, b: Calibration, s: np.ndarray[Any, Any]) -> float:
    return float(np.mean(np.abs(a.apply(s) - b.apply(s))))


def _score_shift(base: np.ndarray[Any, Any], s: np.ndarray[Any, Any], lim: EstimateLimits) -> list[str]:
    edges = np.quantile(base, np.linspace(0, 1, _SCORE_BINS + 1)[1:-1])
    before = np.bincount(np.searchsorted(edges, base), minlength=_SCORE_BINS).astype(float)
    now = np.bincount(np.searchsorted(edges, s), minlength=_SCORE_BINS).astype(float)
    moved = psi(before.tolist(), now.tolist())
    if moved > lim.max_score_psi:
        return [
            f"the score distribution moved (PSI {moved:.2f} > {lim.max_score_psi}) from the scores the "
            "calibration was fitted on: the map is extrapolated"
        ]
    return []


def _finish(
    s: np.ndarray[Any, Any],
    y: np.ndarray[Any, Any],
    pred: np.ndarray[Any, Any],
    calibration: Calibration,
    method: str,
    reasons: list[str],
) -> PerformanceEstimate:
    known = ~np.isnan(y)
    q = np.where(known, np.nan_to_num(y), calibration.apply(s))
    return PerformanceEstimate(
        metrics=expected_metrics(s, q, predicted=pred),
        method=method,
        rows=len(s),
        labelled=int(known.sum()),
        trusted=not reasons,
        calibration=calibration,
        reasons=reasons,
    )


def _recalibrated(
    s: np.ndarray[Any, Any],
    y: np.ndarray[Any, Any],
    pred: np.ndarray[Any, Any],
    prior: Calibration,
    lim: EstimateLimits,
    n_boot: int,
    seed: int,
) -> PerformanceEstimate:
    known = ~np.isnan(y)
    ks, ky = s[known], y[known]
    fitted = fit_calibration(ks, ky, prior=prior, strength=lim.prior_strength, source="this window")
    out = _finish(
        s, y, pred, fitted, "recalibrated", _score_shift(ks, s[~known], lim) if (~known).any() else []
    )
    rng = np.random.default_rng(seed)
    order = np.argsort(-s, kind="stable")
    draws: dict[str, list[float]] = {name: [] for name in ESTIMATED}
    for _ in range(n_boot):
        pick = rng.integers(0, len(ks), len(ks))
        boot = fit_calibration(ks[pick], ky[pick], prior=prior, strength=lim.prior_strength)
        q = np.where(known, np.nan_to_num(y), boot.apply(s))
        for name, value in expected_metrics(s, q, predicted=pred, order=order).items():
            draws[name].append(value)
    if n_boot:
        out.interval = {
            k: (float(np.nanquantile(v, 0.05)), float(np.nanquantile(v, 0.95))) for k, v in draws.items()
        }
        low, high = out.interval["roc_auc"]
        if high - low > lim.max_interval:
            out.reasons.append(
                f"the 90% interval of ROC AUC is {high - low:.3f} wide (> {lim.max_interval}): too few "
                f"labels ({len(ks):,}) for the calibration shift seen"
            )
    p_fit = _hosmer_lemeshow(ks, ky, fitted.apply(ks))
    if p_fit < lim.misfit_alpha:
        out.reasons.append(
            f"the recalibrated map does not describe the labelled rows (Hosmer-Lemeshow p = {p_fit:.1e}): "
            "the calibration broke in a shape a two-parameter map cannot follow"
        )
    out.trusted = not out.reasons
    return out


def _hosmer_lemeshow(s: np.ndarray[Any, Any], y: np.ndarray[Any, Any], q: np.ndarray[Any, Any]) -> float:
    from scipy.stats import chi2

    groups = np.array_split(np.argsort(s, kind="stable"), _SCORE_BINS)
    stat = 0.0
    for idx in groups:
        if len(idx) == 0:
            continue
        expected, observed = float(q[idx].sum()), float(y[idx].sum())
        variance = float(np.sum(q[idx] * (1 - q[idx])))
        stat += (observed - expected) ** 2 / max(variance, _EPS)
    return float(chi2.sf(stat, _SCORE_BINS - 2))


def importance_weights(
    reference: pd.DataFrame, current: pd.DataFrame, *, seed: int = 0, limits: EstimateLimits | None = None
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], list[str]]:
    """Weights making the reference look like ``current`` (``p / (1 - p)`` of a cross-fitted domain
    classifier, clipped at the 99th percentile, mean 1) and the trust notes of the weighting.

    Numeric features outside the reference's range (0.1%-99.9% quantiles) for more than
    ``max_outside_share`` of current rows are left out and named: no reweighting can stand in for them.

    Example:
        >>> w, notes = importance_weights(ref_frame, window_frame)  # doctest: +SKIP
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    lim = limits or EstimateLimits()
    notes, columns = [], []
    for name in reference.columns:
        if name not in current.columns:
            continue
        if pd.api.types.is_numeric_dtype(reference[name]):
            low, high = reference[name].quantile([0.001, 0.999])
            outside = float(((current[name] < low) | (current[name] > high)).mean())
            if outside > lim.max_outside_share:
                notes.append(
                    f"{outside:.0%} of current rows have {name!r} outside the reference's range: it cannot "
                    "be reweighted (left out of the domain classifier)"
                )
                continue
        columns.append(name)
    both = pd.concat([reference[columns], current[columns]], ignore_index=True)
    for name in columns:
        if not pd.api.types.is_numeric_dtype(both[name]):
            both[name] = both[name].astype(str).astype("category")
    side = np.r_[np.zeros(len(reference)), np.ones(len(current))]
    model = HistGradientBoostingClassifier(
        max_iter=50, max_leaf_nodes=15, categorical_features="from_dtype", random_state=seed
    )
    with threadpool_limits(limits=1):  # OpenMP threads on shared cores are slower, not faster
        folds = StratifiedKFold(3, shuffle=True, random_state=seed)
        p = cross_val_predict(model, both, side, cv=folds, method="predict_proba")[: len(reference), 1]
    p = np.clip(p, 0.01, 0.99)
    w = p / (1 - p)
    w = np.minimum(w, np.quantile(w, 0.99))
    w = w / w.mean()
    ess = float(w.sum() ** 2 / (w**2).sum() / len(w))
    if ess < lim.min_ess_share:
        notes.append(
            f"importance weights leave an effective {ess:.0%} of the reference (< {lim.min_ess_share:.0%}): "
            "the current inputs are barely covered by it"
        )
    return np.asarray(w, dtype=float), notes
