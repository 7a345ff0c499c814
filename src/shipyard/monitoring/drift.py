"""Per-feature drift statistics and verdicts: a current window against a reference.

Every feature is binned into the reference profile's fixed bins (numeric, datetime) or top categories plus
"other" (categorical) with ``shipyard.data.profiles.bin_counts``, so both sides are exact counts over the same
bins whether the reference is a stored profile or raw rows. From them:

- numeric: PSI, the KS statistic D (``exact`` from both sides' values when reference rows are at hand,
  else ``binned``: a lower bound, from ``shipyard.data.diff``), and the Wasserstein distance divided by the
  reference standard deviation (IQR/1.349 when the std is 0; ``binned`` from the CDFs without rows);
- categorical: PSI and the Jensen-Shannon distance (base 2, in [0, 1]); new and vanished categories;
- every kind: the null-rate change.

The current side is reduced first to :class:`CurrentCounts` (bin or category counts, nulls, the finite sum
for the mean), one column at a time: the counts of two batches add up (:meth:`CurrentCounts.merge`), so a
window read partition by partition gives the same statistics as the whole window at once, without holding
it. Only the exact KS and Wasserstein need the current values themselves (``current_values``).

The verdict uses effect sizes only (see :class:`Thresholds`). A two-sample test (KS with rows, else a
chi-square test of the 2 x k table of counts, ``scipy.stats.chi2_contingency``) is shown, and can only
*veto* a flag whose effect size passed its threshold in a small window (p >= ``veto_alpha``: the effect is
within sampling noise); it never raises one. At production sizes the veto never applies, so the verdict is
the effect size. See ``docs/monitoring.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, Field

from shipyard.data.diff import binned_ks, ks_statistic, psi
from shipyard.data.profiles import ColumnProfile
from shipyard.errors import InvalidInput, MissingExtra

__all__ = [
    "CurrentCounts",
    "FeatureDrift",
    "Thresholds",
    "count_current",
    "drift_from_counts",
    "feature_drift",
    "require_scipy",
    "require_sklearn",
]

Method = Literal["exact", "binned"]
_STATS = ("psi", "ks", "wasserstein", "js", "null_rate", "new_share")


def require_scipy() -> None:
    """Raise ``MissingExtra`` with the install hint when scipy is missing (the per-feature statistics).

    Only ``scipy`` itself is imported here: the statistics import the submodules they use when they run
    (``scipy.special`` for the chi-square and JS, ``scipy.stats`` only for exact KS and Wasserstein).
    """
    try:
        import scipy  # noqa: F401
    except ImportError:
        raise MissingExtra("Drift monitoring needs scipy: pip install 'shipyard[monitoring]'") from None


def require_sklearn() -> None:
    """Raise ``MissingExtra`` when scikit-learn (the multivariate domain classifier) is missing."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise MissingExtra(
            "The multivariate drift check needs scikit-learn: pip install 'shipyard[monitoring]' "
            "(or pass multivariate=False)"
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


@dataclass
class CurrentCounts:
    """What drift needs from one feature's current values, additive over batches of rows.

    ``counts`` aligns with the reference's bins (numeric, datetime) or its top categories then "other"
    (categorical); ``nulls`` counts nulls and NaN; ``total`` and ``finite`` give the mean of the finite
    values; ``categories`` (categorical only) holds every category seen with its count.

    Example:
        >>> import polars as pl
        >>> from shipyard.data.profiles import profile
        >>> col = profile(pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), bins=2).columns["x"]
        >>> a = count_current(col, pl.Series([1.0, None]))
        >>> merged = a.merge(count_current(col, pl.Series([4.0])))
        >>> merged.rows, merged.nulls, sum(merged.counts)
        (3, 1, 2.0)
    """

    rows: int = 0
    nulls: int = 0
    counts: list[float] = field(default_factory=list)
    total: float = 0.0
    finite: int = 0
    categories: dict[str, int] | None = None

    def merge(self, other: CurrentCounts) -> CurrentCounts:
        """The counts of both batches together (a new object)."""
        counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)] if self.counts else []
        categories = None
        if self.categories is not None or other.categories is not None:
            categories = dict(self.categories or {})
            for key, n in (other.categories or {}).items():
                categories[key] = categories.get(key, 0) + n
        return CurrentCounts(
            rows=self.rows + other.rows,
            nulls=self.nulls + other.nulls,
            counts=counts or list(other.counts),
            total=self.total + other.total,
            finite=self.finite + other.finite,
            categories=categories,
        )


_SLICE = 65_536  # rows binned at a time: a few hundred KB of temporaries whatever the window's size


def count_current(ref: ColumnProfile, current: pl.Series) -> CurrentCounts:
    """Reduce one feature's current values to :class:`CurrentCounts` over the reference's bins.

    Numeric values are binned a slice at a time (``np.searchsorted`` into the reference's edges, the same
    bins as ``shipyard.data.profiles.bin_counts``) so no temporary the size of the column is made.

    Example:
        >>> import polars as pl
        >>> from shipyard.data.profiles import profile
        >>> col = profile(pl.DataFrame({"c": ["a", "a", "b"]})).columns["c"]
        >>> count_current(col, pl.Series(["a", "z", None])).counts
        [1.0, 0.0, 1.0]
    """
    nulls = int(current.null_count()) + (int(current.is_nan().sum()) if current.dtype.is_float() else 0)
    out = CurrentCounts(rows=len(current), nulls=nulls)
    if ref.histogram is not None:
        _bin_numbers(ref.histogram.edges, current, out)
        return out
    if ref.top is None:
        raise InvalidInput(f"Feature {ref.name!r} ({ref.dtype}) has no histogram or categories to compare")
    values = current.fill_nan(None) if current.dtype.is_float() else current
    # unique + unique_counts (both in order of first appearance): 5 MB at the peak on a million strings,
    # where value_counts took 30 MB and group_by().len() more
    text = values.cast(pl.String, strict=False)
    keys, sizes = text.unique(maintain_order=True).to_list(), text.unique_counts().to_list()
    out.categories = {str(k): int(n) for k, n in zip(keys, sizes, strict=True) if k is not None}
    found = dict(out.categories)
    counts = [float(found.pop(category, 0)) for category in ref.top.counts]
    out.counts = [*counts, float(sum(found.values()))]
    return out


def _bin_numbers(edges: list[float], current: pl.Series, out: CurrentCounts) -> None:
    """Bin counts (bin i holds edges[i-1] <= x < edges[i]), the finite sum and count, slice by slice."""
    cuts = np.asarray(edges, dtype=np.float64)
    counts = np.zeros(len(cuts) + 1, dtype=np.int64)
    values = current.dt.epoch("us") if current.dtype.is_temporal() else current
    values = values.cast(pl.Float64, strict=False)
    for start in range(0, len(values), _SLICE):
        chunk = values.slice(start, _SLICE).to_numpy()  # nulls become NaN
        chunk = chunk[~np.isnan(chunk)]
        counts += np.bincount(np.searchsorted(cuts, chunk, side="right"), minlength=len(counts))
        finite = chunk[np.isfinite(chunk)]
        out.total += float(np.sum(finite))
        out.finite += len(finite)
    out.counts = [float(c) for c in counts]


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
    sides dropped); ``None`` when fewer than two bins hold values.

    The same arithmetic as ``scipy.stats.chi2_contingency(table, correction=False)`` (expected counts from
    the margins, Pearson's statistic, ``chdtrc``) with ``scipy.special`` alone: ``scipy.stats`` costs 64 MB
    of memory to import, which a profile-only report never needs otherwise.
    """
    from scipy.special import chdtrc

    table = np.array([a, b], dtype=np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return None
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    dof = expected.size - sum(expected.shape) + expected.ndim - 1
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return float(chdtrc(dof, statistic))


def _jensen_shannon(a: list[float], b: list[float]) -> float:
    """``scipy.spatial.distance.jensenshannon(a, b, base=2)``, computed the same way with ``rel_entr``."""
    from scipy.special import rel_entr

    p, q = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    p, q = p / np.sum(p), q / np.sum(q)
    m = (p + q) / 2.0
    js = (np.sum(rel_entr(p, m)) + np.sum(rel_entr(q, m))) / np.log(2)
    return float(np.sqrt(js / 2.0))


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
    exact = reference_values is not None and ref.histogram is not None
    return drift_from_counts(
        ref,
        count_current(ref, current),
        thresholds,
        reference_values=reference_values,
        current_values=current if exact else None,
    )


def drift_from_counts(
    ref: ColumnProfile,
    counts: CurrentCounts,
    thresholds: Thresholds,
    *,
    reference_values: pl.Series | None = None,
    current_values: pl.Series | None = None,
) -> FeatureDrift:
    """The drift of one feature from its current :class:`CurrentCounts` (summed over any batches).

    KS and Wasserstein are ``exact`` when both ``reference_values`` and ``current_values`` are given and
    ``binned`` otherwise (the method is in ``ks_method`` and ``wasserstein_method``).

    Example:
        >>> import polars as pl
        >>> from shipyard.data.profiles import profile
        >>> col = profile(pl.DataFrame({"x": [float(i % 10) for i in range(1000)]})).columns["x"]
        >>> drift_from_counts(col, count_current(col, pl.Series([9.0] * 500)), Thresholds()).ks_method
        'binned'
    """
    limits = thresholds.for_feature(ref.name)
    a = _reference_counts(ref)
    b = list(counts.counts)
    out = FeatureDrift(
        feature=ref.name,
        kind=ref.kind,
        drifted=False,
        verdict="",
        rows_ref=ref.count + ref.nulls,
        rows_cur=counts.rows,
        null_rate_ref=ref.null_rate,
        null_rate_cur=counts.nulls / counts.rows if counts.rows else 0.0,
        reference_counts=a,
        current_counts=b,
    )
    if sum(a) > 0 and sum(b) > 0:
        out.psi = psi(a, b)
        out.test, out.p_value = "chi-square (2 x k)", _two_sample_p(a, b)
        if ref.histogram is not None:
            _numeric(out, ref, counts, reference_values, current_values, a, b)
        else:
            _categorical(out, ref, counts, reference_values, a, b)
    _decide(out, ref, limits, counts.rows - counts.nulls)
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
    counts: CurrentCounts,
    reference_values: pl.Series | None,
    current_values: pl.Series | None,
    a: list[float],
    b: list[float],
) -> None:
    raw = _numbers(reference_values) if reference_values is not None else None
    cur = _numbers(current_values) if current_values is not None else None
    out.mean_ref = float(np.mean(raw)) if raw is not None and len(raw) else ref.mean
    if cur is not None:
        out.mean_cur = float(np.mean(cur)) if len(cur) else None
    else:
        out.mean_cur = counts.total / counts.finite if counts.finite else None
    scale = _scale(ref, raw)
    if raw is not None and cur is not None and len(raw) and len(cur):
        from scipy.stats import ks_2samp, wasserstein_distance

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
    counts: CurrentCounts,
    reference_values: pl.Series | None,
    a: list[float],
    b: list[float],
) -> None:
    assert ref.top is not None
    out.js = _jensen_shannon(a, b)
    seen = counts.categories or {}
    if reference_values is not None:
        known = set(reference_values.drop_nulls().cast(pl.String).unique().to_list())
    elif ref.top.other == 0:  # the profile lists every category: absence is meaningful
        known = set(ref.top.counts)
    else:
        known = None
    if known is not None:
        out.new_categories = sorted(c for c in seen if c not in known)
        out.vanished_categories = sorted(c for c in known if c not in seen)
        total = sum(seen.values())
        new = sum(seen[c] for c in out.new_categories)
        out.new_share = float(new) / total if total else 0.0


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
