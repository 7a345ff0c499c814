"""Per-feature drift statistics and verdicts: a current window against a reference.

Every feature is binned into the reference profile's fixed bins (numeric, datetime) or top categories plus
"other" (categorical) with ``shipyard.data.profiles.bin_counts``, so both sides are exact counts over the same
bins whether the reference is a stored profile or raw rows. From them:

- numeric: PSI, the KS statistic D (``exact`` from both sides' values when reference rows are at hand,
  else ``binned``: a lower bound, from ``shipyard.data.diff``), and the Wasserstein distance divided by the
  reference standard deviation (IQR/1.349 when the std is 0; ``binned`` from the CDFs without rows);
- categorical: PSI and the Jensen-Shannon distance (base 2, in [0, 1]); new and vanished categories;
- every kind: the null-rate change.

The verdict uses effect sizes only (see :class:`Thresholds`). A two-sample test (KS with rows, else a
chi-square test of the 2 x k table of counts, ``scipy.stats.chi2_contingency``) is shown, and can only
*veto* a flag whose effect size passed its threshold in a small window (p >= ``veto_alpha``: the effect is
within sampling noise); it never raises one. At production sizes the veto never applies, so the verdict is
the effect size. See ``docs/monitoring.md``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, Field

from shipyard.data.diff import binned_ks, ks_statistic, psi
from shipyard.data.profiles import ColumnProfile, bin_counts
from shipyard.errors import InvalidInput, MissingExtra

__all__ = ["FeatureDrift", "Thresholds", "feature_drift", "require_scipy"]

Method = Literal["exact", "binned"]
_STATS = ("psi", "ks", "wasserstein", "js", "null_rate", "new_share")


def require_scipy() -> None:
    """Raise ``MissingExtra`` with the install hint when scipy or scikit-learn is missing."""
    try:
        import scipy  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError:
        raise MissingExtra(
            "Drift monitoring needs scipy and scikit-learn: pip install 'shipyard[monitoring]'"
        ) from None


class Thresholds(BaseModel):
    """Effect-size thresholds: a statistic above its threshold flags the feature (defaults documented in
    ``docs/monitoring.md``). ``per_feature`` overrides any of them for one feature, e.g.
    ``{"dep_delay": {"psi": 0.3}}``.

    Example:
        >>> Thresholds(per_feature={"dep_delay": {"psi": 0.3}}).for_feature("dep_delay").psi
        0.3
    """

    psi: float = 0.2
    ks: float = 0.1
    wasserstein: float = 0.1
    js: float = 0.1
    null_rate: float = 0.1
    new_share: float = 0.05
    domain_auc: float = 0.6
    share: float = 0.3
    veto_alpha: float = 0.001
    per_feature: dict[str, dict[str, float]] = Field(default_factory=dict)

    def for_feature(self, name: str) -> Thresholds:
        """The thresholds for one feature, its overrides applied."""
        override = self.per_feature.get(name) or {}
        unknown = sorted(set(override) - set(_STATS))
        if unknown:
            raise InvalidInput(
                f"Unknown threshold(s) {unknown} for feature {name!r}; use some of {list(_STATS)}"
            )
        return self.model_copy(update=override)


class FeatureDrift(BaseModel):
    """Drift of one feature (or of the predictions). Statistics are ``None`` when they do not apply."""

    feature: str
    kind: str
    drifted: bool
    verdict: str
    reasons: list[str] = Field(default_factory=list)
    psi: float | None = None
    ks: float | None = None
    ks_method: Method | None = None
    wasserstein: float | None = None
    wasserstein_method: Method | None = None
    js: float | None = None
    test: str | None = None
    p_value: float | None = None
    null_rate_ref: float = 0.0
    null_rate_cur: float = 0.0
    mean_ref: float | None = None
    mean_cur: float | None = None
    new_categories: list[str] = Field(default_factory=list)
    vanished_categories: list[str] = Field(default_factory=list)
    new_share: float | None = None
    rows_ref: int = 0
    rows_cur: int = 0
    reference_counts: list[float] = Field(default_factory=list)
    current_counts: list[float] = Field(default_factory=list)


def _numbers(series: pl.Series) -> np.ndarray[Any, np.dtype[np.float64]]:
    values = series.drop_nulls()
    if values.dtype.is_temporal():
        values = values.dt.epoch("us")
    out: np.ndarray[Any, np.dtype[np.float64]] = values.cast(pl.Float64, strict=False).drop_nulls().to_numpy()
    finite: np.ndarray[Any, np.dtype[np.float64]] = out[np.isfinite(out)]
    return finite


def _scale(ref: ColumnProfile, values: np.ndarray[Any, np.dtype[np.float64]] | None) -> float | None:
    """The reference's spread for a scale-free Wasserstein distance: std, else IQR / 1.349."""
    if values is not None and len(values) > 1:
        std = float(np.std(values, ddof=1))
        iqr = float(np.subtract(*np.percentile(values, [75, 25])))
    else:
        std = ref.std or 0.0
        iqr = ref.quantiles.get("0.75", 0.0) - ref.quantiles.get("0.25", 0.0)
    if std > 0:
        return std
    return iqr / 1.349 if iqr > 0 else None


def _binned_wasserstein(ref: ColumnProfile, a: list[float], b: list[float]) -> float:
    """Wasserstein-1 between two binned distributions: the area between their CDFs, each taken as linear
    inside a bin (tail bins anchored at the reference's observed min and max)."""
    hist = ref.histogram
    assert hist is not None
    xs = np.array([min(hist.low, hist.edges[0]), *hist.edges, max(hist.high, hist.edges[-1])])
    fa = np.concatenate([[0.0], np.cumsum(a) / max(sum(a), 1e-12)])
    fb = np.concatenate([[0.0], np.cumsum(b) / max(sum(b), 1e-12)])
    gap = np.abs(fa - fb)
    return float(np.sum((gap[1:] + gap[:-1]) / 2 * np.diff(xs)))


def _two_sample_p(a: list[float], b: list[float]) -> float | None:
    """p-value of the chi-square test of homogeneity on the 2 x k table of counts (bins empty on both
    sides dropped); ``None`` when fewer than two bins hold values."""
    from scipy.stats import chi2_contingency

    table = np.array([a, b], dtype=np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return None
    return float(chi2_contingency(table, correction=False).pvalue)


def _null_p(ref: ColumnProfile, cur_nulls: int, cur_count: int) -> float | None:
    return _two_sample_p([float(ref.nulls), float(cur_nulls)], [float(ref.count), float(cur_count)])


def feature_drift(
    ref: ColumnProfile,
    current: pl.Series,
    thresholds: Thresholds,
    *,
    reference_values: pl.Series | None = None,
) -> FeatureDrift:
    """Compare one feature's current values with its reference profile (and raw values when given).

    Example:
        >>> import polars as pl
        >>> from shipyard.data.profiles import profile
        >>> ref = pl.Series("x", [float(i % 10) for i in range(1000)])
        >>> col = profile(ref.to_frame()).columns["x"]
        >>> feature_drift(col, ref + 5.0, Thresholds(), reference_values=ref).drifted
        True
    """
    limits = thresholds.for_feature(ref.name)
    a = _reference_counts(ref)
    b = [float(c) for c in bin_counts(ref, current)]
    cur_nulls = int(current.null_count()) + (int(current.is_nan().sum()) if current.dtype.is_float() else 0)
    out = FeatureDrift(
        feature=ref.name,
        kind=ref.kind,
        drifted=False,
        verdict="",
        rows_ref=ref.count + ref.nulls,
        rows_cur=len(current),
        null_rate_ref=ref.null_rate,
        null_rate_cur=cur_nulls / len(current) if len(current) else 0.0,
        reference_counts=a,
        current_counts=b,
    )
    if sum(a) > 0 and sum(b) > 0:
        out.psi = psi(a, b)
        out.test, out.p_value = "chi-square (2 x k)", _two_sample_p(a, b)
        if ref.histogram is not None:
            _numeric(out, ref, current, reference_values, a, b)
        else:
            _categorical(out, ref, current, reference_values, a, b)
    _decide(out, ref, limits, len(current) - int(cur_nulls))
    return out


def _reference_counts(ref: ColumnProfile) -> list[float]:
    if ref.histogram is not None:
        return [float(c) for c in ref.histogram.counts]
    if ref.top is not None:
        return [*(float(c) for c in ref.top.counts.values()), float(ref.top.other)]
    raise InvalidInput(f"Feature {ref.name!r} ({ref.dtype}) has no histogram or categories to compare")


def _numeric(
    out: FeatureDrift,
    ref: ColumnProfile,
    current: pl.Series,
    reference_values: pl.Series | None,
    a: list[float],
    b: list[float],
) -> None:
    from scipy.stats import ks_2samp, wasserstein_distance

    cur = _numbers(current)
    raw = _numbers(reference_values) if reference_values is not None else None
    out.mean_ref = float(np.mean(raw)) if raw is not None and len(raw) else ref.mean
    out.mean_cur = float(np.mean(cur)) if len(cur) else None
    scale = _scale(ref, raw)
    if raw is not None and len(raw) and len(cur):
        out.ks, out.ks_method = ks_statistic(raw, cur), "exact"
        out.test, out.p_value = "Kolmogorov-Smirnov (two-sample)", float(ks_2samp(raw, cur).pvalue)
        distance, out.wasserstein_method = float(wasserstein_distance(raw, cur)), "exact"
    else:
        out.ks, out.ks_method = binned_ks(a, b), "binned"
        distance, out.wasserstein_method = _binned_wasserstein(ref, a, b), "binned"
    out.wasserstein = distance / scale if scale else None


def _categorical(
    out: FeatureDrift,
    ref: ColumnProfile,
    current: pl.Series,
    reference_values: pl.Series | None,
    a: list[float],
    b: list[float],
) -> None:
    from scipy.spatial.distance import jensenshannon

    assert ref.top is not None
    out.js = float(jensenshannon(np.asarray(a), np.asarray(b), base=2))
    values = current.drop_nulls().cast(pl.String)
    seen = values.unique().to_list()
    if reference_values is not None:
        known = set(reference_values.drop_nulls().cast(pl.String).unique().to_list())
    elif ref.top.other == 0:  # the profile lists every category: absence is meaningful
        known = set(ref.top.counts)
    else:
        known = None
    if known is not None:
        out.new_categories = sorted(c for c in seen if c not in known)
        out.vanished_categories = sorted(c for c in known if c not in set(seen))
        new = values.is_in(out.new_categories).sum() if out.new_categories else 0
        out.new_share = float(new) / len(values) if len(values) else 0.0


def _decide(out: FeatureDrift, ref: ColumnProfile, limits: Thresholds, cur_count: int) -> None:
    vetoed = out.p_value is not None and out.p_value >= limits.veto_alpha
    checks = [
        ("PSI", out.psi, limits.psi),
        (f"KS D{' (binned)' if out.ks_method == 'binned' else ''}", out.ks, limits.ks),
        ("Wasserstein/std", out.wasserstein, limits.wasserstein),
        ("JS distance", out.js, limits.js),
        ("new-category share", out.new_share, limits.new_share),
    ]
    reasons = [
        f"{label} {value:.3g} > {limit:g}"
        for label, value, limit in checks
        if value is not None and math.isfinite(value) and value > limit
    ]
    if reasons and vetoed:
        out.reasons = [f"{r} but within sampling noise (p = {out.p_value:.2g})" for r in reasons]
        reasons = []
    change = out.null_rate_cur - out.null_rate_ref
    null_p = _null_p(ref, round(out.null_rate_cur * out.rows_cur), cur_count)
    if abs(change) > limits.null_rate and (null_p is None or null_p < limits.veto_alpha):
        reasons.append(f"null rate {out.null_rate_ref:.1%} -> {out.null_rate_cur:.1%}")
    if out.rows_cur and cur_count == 0 and ref.count > 0:
        reasons = ["all values are null now"]
    out.drifted = bool(reasons)
    out.reasons = reasons or out.reasons
    out.verdict = _words(out)


def _words(out: FeatureDrift) -> str:
    detail = []
    if out.mean_ref is not None and out.mean_cur is not None and out.kind == "numeric":
        detail.append(f"mean {out.mean_ref:.4g} -> {out.mean_cur:.4g}")
    if out.new_categories:
        shown = ", ".join(repr(c) for c in out.new_categories[:3])
        more = f" and {len(out.new_categories) - 3} more" if len(out.new_categories) > 3 else ""
        detail.append(f"new categories {shown}{more}")
    tail = f" ({'; '.join(detail)})" if detail else ""
    if out.drifted:
        return f"{out.feature} drifted: {'; '.join(out.reasons)}{tail}"
    if out.psi is None and not out.drifted:
        return f"{out.feature}: not compared (no values on one side){tail}"
    return f"{out.feature}: no drift (PSI {out.psi:.3g}){tail}"
