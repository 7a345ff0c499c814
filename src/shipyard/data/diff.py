"""Compare two dataset profiles (or a profile and new raw data): schema, row counts and drift per column.

Numeric and datetime columns are compared with the population stability index (PSI) over the reference
profile's bins, the two-sample Kolmogorov-Smirnov statistic and the mean shift in reference standard
deviations; categorical columns with PSI over the reference's top categories plus "other" (no KS: it needs
an order). The KS statistic is exact (scipy's ``ks_2samp`` statistic) when the raw data of both sides is
given, and otherwise ``binned``: the largest gap between the binned CDFs, a lower bound of the exact value;
``ColumnDiff.ks_method`` says which. Verdicts follow the usual PSI thresholds (see ``docs/data-profiles.md``).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import polars as pl
from pydantic import BaseModel, Field

from shipyard.data.profiles import ColumnProfile, Profile, bin_counts, profile, to_polars

__all__ = [
    "MAJOR_PSI",
    "MODERATE_PSI",
    "PSI_EPSILON",
    "ColumnDiff",
    "DatasetDiff",
    "SchemaChange",
    "binned_ks",
    "diff_data",
    "diff_profiles",
    "ks_statistic",
    "psi",
    "rebin",
]

MODERATE_PSI = 0.1
MAJOR_PSI = 0.25
# Empty bins would make PSI infinite; a share of 1e-4 (one in ten thousand) is the usual floor.
PSI_EPSILON = 1e-4


class SchemaChange(BaseModel):
    """One column added, removed or retyped between the two profiles."""

    column: str
    change: Literal["added", "removed", "retyped"]
    dtype_a: str | None = None
    dtype_b: str | None = None


KsMethod = Literal["exact", "binned"]


class ColumnDiff(BaseModel):
    """How one column changed. Statistics are ``None`` when they cannot be computed.

    ``ks`` is the two-sample Kolmogorov-Smirnov statistic of numeric and datetime columns (``None`` for
    categoricals); ``ks_method`` is ``"exact"`` when it was computed from both sides' raw values (equal to
    ``scipy.stats.ks_2samp(a, b).statistic``) and ``"binned"`` when it comes from binned CDFs (a lower bound).
    """

    column: str
    kind: str
    verdict: str
    summary: str
    psi: float | None = None
    ks: float | None = None
    ks_method: KsMethod | None = None
    mean_shift_std: float | None = None
    null_rate_a: float | None = None
    null_rate_b: float | None = None
    new_categories: list[str] = Field(default_factory=list)
    vanished_categories: list[str] = Field(default_factory=list)


class DatasetDiff(BaseModel):
    """The difference between dataset ``a`` (the reference) and dataset ``b``."""

    rows_a: int
    rows_b: int
    schema_changes: list[SchemaChange]
    columns: dict[str, ColumnDiff]
    exact: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-compatible dict."""
        return self.model_dump(mode="json")

    def to_frame(self) -> pd.DataFrame:
        """Return one row per column (pandas), in column order of ``a`` then the columns added in ``b``."""
        rows = [c.model_dump() for c in self.columns.values()]
        return pd.DataFrame(rows, columns=list(ColumnDiff.model_fields))

    def __str__(self) -> str:
        change = self.rows_b - self.rows_a
        lines = [f"rows: {self.rows_a:,} -> {self.rows_b:,} ({change:+,})"]
        lines += [f"schema: {c.column} {_describe_change(c)}" for c in self.schema_changes]
        lines += [c.summary for c in self.columns.values()]
        return "\n".join(lines)


def _describe_change(change: SchemaChange) -> str:
    if change.change == "retyped":
        return f"retyped {change.dtype_a} -> {change.dtype_b}"
    return f"{change.change} ({change.dtype_a or change.dtype_b})"


def psi(expected: Any, actual: Any, *, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index between two count vectors over the same bins.

    Shares are floored at ``epsilon`` so that empty bins stay finite:
    ``PSI = sum((q - p) * ln(q / p))`` with ``p = max(a_i / sum(a), eps)``, ``q = max(b_i / sum(b), eps)``.

    Example:
        >>> round(psi([50, 50], [50, 50]), 6)
        0.0
        >>> round(psi([90, 10], [50, 50]), 3)
        0.879
    """
    p, q = _shares(expected), _shares(actual)
    p, q = np.maximum(p, epsilon), np.maximum(q, epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def _shares(counts: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    values = np.asarray(counts, dtype=np.float64)
    total = values.sum()
    return values / total if total > 0 else np.zeros_like(values)


def _binned_ks(expected: Any, actual: Any) -> float:
    """Largest gap between the two binned CDFs: a lower bound of the KS statistic on the raw data."""
    return float(np.max(np.abs(np.cumsum(_shares(expected)) - np.cumsum(_shares(actual)))))


def binned_ks(expected: Any, actual: Any) -> float:
    """The KS statistic from two count vectors over the same ordered bins (a lower bound of the exact one).

    Example:
        >>> binned_ks([5, 5, 0], [0, 5, 5])
        0.5
    """
    return _binned_ks(expected, actual)


def ks_statistic(a: Any, b: Any) -> float:
    """The exact two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs.

    Equal to ``scipy.stats.ks_2samp(a, b).statistic`` (computed with numpy, so scipy is not needed). NaN
    values are ignored; both samples must keep at least one value.

    Example:
        >>> ks_statistic([1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 5.0, 6.0])
        0.5
    """
    x, y = _sorted_finite(a), _sorted_finite(b)
    if len(x) == 0 or len(y) == 0:
        raise ValueError("ks_statistic needs at least one non-NaN value on each side")
    points = np.concatenate([x, y])
    cdf_x = np.searchsorted(x, points, side="right") / len(x)
    cdf_y = np.searchsorted(y, points, side="right") / len(y)
    return float(np.max(np.abs(cdf_x - cdf_y)))


def _sorted_finite(values: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    array = np.asarray(values, dtype=np.float64)
    return np.sort(array[~np.isnan(array)])


def _raw_numbers(frame: pl.DataFrame, name: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    """A numeric or datetime column's non-null values as floats (datetimes as epoch microseconds)."""
    column = frame.get_column(name).drop_nulls()
    if column.dtype.is_temporal():
        column = column.dt.epoch("us")
    return column.cast(pl.Float64).to_numpy()


def _verdict(value: float) -> str:
    if value >= MAJOR_PSI:
        return "major shift"
    if value >= MODERATE_PSI:
        return "moderate shift"
    return "no meaningful change"


def rebin(column: ColumnProfile, edges: list[float]) -> list[float]:
    """Approximate a profiled column's counts over other edges by interpolating its CDF linearly.

    The CDF is known at the column's own edges; the tail bins are anchored at the observed min and max.
    The returned (fractional) counts align with bins ``(-inf, e0)``, ``[e0, e1)``, … , ``[eN, +inf)``.

    Example:
        >>> import polars as pl
        >>> from shipyard.data.profiles import profile
        >>> col = profile(pl.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]}), bins=3).columns["x"]
        >>> round(sum(rebin(col, [0.0, 1.5, 3.0])), 6)
        4.0
    """
    hist = column.histogram
    if hist is None:
        raise ValueError(f"column {column.name!r} has no histogram")
    counts = np.asarray(hist.counts, dtype=np.float64)
    xs = np.array([min(hist.low, hist.edges[0]), *hist.edges, max(hist.high, hist.edges[-1])])
    cdf = np.concatenate([[0.0], np.cumsum(counts)])
    # Ties (a tail anchor equal to an edge) would confuse np.interp: keep the highest CDF at each x.
    unique_x, first = np.unique(xs[::-1], return_index=True)
    unique_cdf = cdf[::-1][first]
    at = np.interp(np.asarray(edges, dtype=np.float64), unique_x, unique_cdf, left=0.0, right=cdf[-1])
    return [float(v) for v in np.diff(np.concatenate([[0.0], at, [cdf[-1]]]))]


def _category_counts(ref: ColumnProfile, new: ColumnProfile) -> list[float]:
    """New column's counts over the reference's categories plus "other" (unlisted categories count 0)."""
    if ref.top is None or new.top is None:
        return []
    counts: list[float] = [float(new.top.counts.get(c, 0)) for c in ref.top.counts]
    return [*counts, float(new.count - sum(counts))]


def _reference_counts(ref: ColumnProfile) -> list[float] | None:
    if ref.histogram is not None:
        return [float(c) for c in ref.histogram.counts]
    if ref.top is not None:
        return [*(float(c) for c in ref.top.counts.values()), float(ref.top.other)]
    return None


def _shared_counts(ref: ColumnProfile, new: ColumnProfile) -> list[float] | None:
    """The new column's counts over the reference bins, approximated from its profile."""
    if ref.histogram is not None and new.histogram is not None:
        return rebin(new, ref.histogram.edges)
    if ref.top is not None and new.top is not None:
        return _category_counts(ref, new)
    return None


def _null_words(rate_a: float, rate_b: float) -> str | None:
    change = (rate_b - rate_a) * 100
    if abs(change) < 0.05:
        return None
    size = f"{abs(change):.0f}" if abs(change) >= 1 else f"{abs(change):.1f}"
    return f"{size}% {'more' if change > 0 else 'fewer'} nulls"


def _compare(
    ref: ColumnProfile, new: ColumnProfile, shared: list[float] | None, exact_ks: float | None
) -> ColumnDiff:
    """Compare one column present in both profiles, given the new counts over the reference bins and the
    exact KS statistic when both sides' raw values were at hand."""
    base = _reference_counts(ref)
    diff = ColumnDiff(
        column=ref.name, kind=ref.kind, verdict="not compared", summary="",
        null_rate_a=ref.null_rate, null_rate_b=new.null_rate,
    )  # fmt: skip
    details: list[str] = []
    if base is not None and shared is not None and sum(base) > 0 and sum(shared) > 0:
        diff.psi = psi(base, shared)
        diff.verdict = _verdict(diff.psi)
        head = f"{ref.name}: {diff.verdict} (PSI {diff.psi:.2f}"
        if ref.histogram is not None:
            diff.ks_method = "exact" if exact_ks is not None else "binned"
            diff.ks = exact_ks if exact_ks is not None else _binned_ks(base, shared)
            head += f", KS {diff.ks:.2f}" + (" binned" if exact_ks is None else "")
        head += ")"
    else:
        head = f"{ref.name}: not compared (no values to compare)"
    if ref.std and new.mean is not None and ref.mean is not None and ref.histogram is not None:
        diff.mean_shift_std = (new.mean - ref.mean) / ref.std
        details.append(f"mean moved {diff.mean_shift_std:+.1f} std")
    if ref.top is not None and new.top is not None:
        diff.new_categories = [c for c in new.top.counts if c not in ref.top.counts]
        diff.vanished_categories = [c for c in ref.top.counts if c not in new.top.counts]
        details += _category_words(diff.new_categories, "new")
        details += _category_words(diff.vanished_categories, "vanished")
    nulls = _null_words(ref.null_rate, new.null_rate)
    details += [nulls] if nulls else []
    diff.summary = head + (": " + "; ".join(details) if details else "")
    return diff


def _category_words(categories: list[str], label: str) -> list[str]:
    if not categories:
        return []
    shown = ", ".join(repr(c) for c in categories[:3])
    more = f" and {len(categories) - 3} more" if len(categories) > 3 else ""
    return [f"{len(categories)} {label} categories ({shown}{more})"]


def _schema_changes(a: Profile, b: Profile) -> list[SchemaChange]:
    changes = [SchemaChange(column=n, change="removed", dtype_a=c.dtype) for n, c in a.columns.items()
               if n not in b.columns]  # fmt: skip
    changes += [SchemaChange(column=n, change="added", dtype_b=c.dtype) for n, c in b.columns.items()
                if n not in a.columns]  # fmt: skip
    changes += [
        SchemaChange(column=n, change="retyped", dtype_a=c.dtype, dtype_b=b.columns[n].dtype)
        for n, c in a.columns.items()
        if n in b.columns and b.columns[n].dtype != c.dtype
    ]
    return changes


def _build(
    a: Profile,
    b: Profile,
    shared: dict[str, list[float] | None],
    exact: bool,
    exact_ks: dict[str, float] | None = None,
) -> DatasetDiff:
    columns: dict[str, ColumnDiff] = {}
    for name, ref in a.columns.items():
        new = b.columns.get(name)
        if new is None:
            columns[name] = ColumnDiff(column=name, kind=ref.kind, verdict="removed",
                                       summary=f"{name}: removed", null_rate_a=ref.null_rate)  # fmt: skip
        elif new.kind != ref.kind:
            summary = f"{name}: retyped {ref.dtype} -> {new.dtype}, not compared"
            columns[name] = ColumnDiff(column=name, kind=ref.kind, verdict="retyped", summary=summary)
        else:
            columns[name] = _compare(ref, new, shared.get(name), (exact_ks or {}).get(name))
    for name, new in b.columns.items():
        if name not in a.columns:
            columns[name] = ColumnDiff(column=name, kind=new.kind, verdict="added",
                                       summary=f"{name}: added", null_rate_b=new.null_rate)  # fmt: skip
    return DatasetDiff(
        rows_a=a.rows, rows_b=b.rows, schema_changes=_schema_changes(a, b), columns=columns, exact=exact
    )


def diff_profiles(a: Profile, b: Profile) -> DatasetDiff:
    """Compare profile ``b`` with reference profile ``a`` without any raw data.

    ``b`` was binned over its own edges, so its histogram is re-binned onto ``a``'s edges by interpolating
    its CDF (:func:`rebin`); use :func:`diff_data` when the raw new data is at hand for exact bin counts.
    Without raw data the KS statistic is ``binned`` (a lower bound).

    Example:
        >>> import polars as pl
        >>> from shipyard.data.profiles import profile
        >>> p = profile(pl.DataFrame({"x": [1.0, 2.0, 3.0]}))
        >>> diff_profiles(p, p).columns["x"].verdict
        'no meaningful change'
    """
    shared = {
        name: _shared_counts(ref, b.columns[name]) for name, ref in a.columns.items() if name in b.columns
    }
    return _build(a, b, shared, exact=False)


def diff_data(reference: Profile, new_data: Any, *, reference_data: Any = None) -> DatasetDiff:
    """Compare new raw data (pandas, polars or pyarrow) with a reference profile, binning it exactly.

    PSI uses exact counts of the new data in the reference bins. The KS statistic of numeric and datetime
    columns is exact (scipy's ``ks_2samp`` statistic) when ``reference_data``, the raw data the reference
    profile was made from, is given too; otherwise it is binned (``ks_method="binned"``, a lower bound).

    Args:
        reference: The reference profile (``a``).
        new_data: The new raw data (``b``).
        reference_data: The reference's raw data, for the exact KS statistic.

    Example:
        >>> import polars as pl
        >>> from shipyard.data.profiles import profile
        >>> old, new = pl.DataFrame({"x": [1.0, 2.0, 3.0]}), pl.DataFrame({"x": [2.0, 3.0, 4.0]})
        >>> column = diff_data(profile(old), new, reference_data=old).columns["x"]
        >>> round(column.ks, 4), column.ks_method
        (0.3333, 'exact')
    """
    frame = to_polars(new_data)
    new = profile(frame, bins=reference.bins)
    shared: dict[str, list[float] | None] = {}
    for name, ref in reference.columns.items():
        if name in new.columns and new.columns[name].kind == ref.kind and _reference_counts(ref) is not None:
            shared[name] = [float(c) for c in bin_counts(ref, frame[name])]
    exact_ks = None if reference_data is None else _exact_ks(reference, to_polars(reference_data), new, frame)
    return _build(reference, new, shared, exact=True, exact_ks=exact_ks)


def _exact_ks(
    reference: Profile, ref_frame: pl.DataFrame, new: Profile, frame: pl.DataFrame
) -> dict[str, float]:
    """Exact KS per numeric/datetime column of the same kind on both sides with values on both sides."""
    out: dict[str, float] = {}
    for name, ref in reference.columns.items():
        other = new.columns.get(name)
        if ref.histogram is None or other is None or other.kind != ref.kind or name not in ref_frame.columns:
            continue
        a, b = _raw_numbers(ref_frame, name), _raw_numbers(frame, name)
        if len(a) and len(b):
            out[name] = ks_statistic(a, b)
    return out
