"""Dataset profiles: per-column statistics computed in two polars passes.

A :class:`Profile` is stored with each dataset version and is the *reference* that later data is compared
against. Numeric and datetime columns keep a histogram over **fixed** bin edges (equal-width bins between
the 0.5% and 99.5% quantiles plus two open-ended tail bins), categorical columns keep their top categories
with an "other" count, so new data can be binned into the same buckets with :func:`bin_counts` and drift
statistics computed without the raw reference data. See ``docs/data-profiles.md``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, Field

from shipyard.errors import InvalidInput

__all__ = [
    "DEFAULT_BINS",
    "QUANTILES",
    "TOP_CATEGORIES",
    "ColumnProfile",
    "Histogram",
    "Profile",
    "TopCategories",
    "bin_counts",
    "bin_edges",
    "profile",
    "to_polars",
]

QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
DEFAULT_BINS = 20
TOP_CATEGORIES = 50
# Inner bins span these quantiles so one outlier cannot squash every other value into a single bin.
_EDGE_RANGE = (0.005, 0.995)
_FORMAT_VERSION = 1

Kind = Literal["numeric", "datetime", "categorical", "other"]


class Histogram(BaseModel):
    """Counts of non-null values over fixed bins.

    ``edges`` are the N+1 inner edges ``e0 < … < eN``; ``counts`` has N+2 entries for the bins
    ``(-inf, e0)``, ``[e0, e1)``, …, ``[e(N-1), eN)``, ``[eN, +inf)``. ``low``/``high`` are the observed
    minimum and maximum (in the same unit as the edges) and anchor the tail bins when interpolating.
    """

    edges: list[float]
    counts: list[int]
    low: float
    high: float


class TopCategories(BaseModel):
    """The most frequent categories (as strings) with their counts, and the count of all the others."""

    counts: dict[str, int]
    other: int


class ColumnProfile(BaseModel):
    """Statistics of one column. Numeric statistics of datetimes are in microseconds since the epoch.

    ``count`` is the number of non-null values; ``distinct`` is an estimate (HyperLogLog).
    """

    name: str
    dtype: str
    kind: Kind
    count: int
    nulls: int
    distinct: int | None = None
    min: float | str | None = None
    max: float | str | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float] = Field(default_factory=dict)
    histogram: Histogram | None = None
    top: TopCategories | None = None

    @property
    def null_rate(self) -> float:
        """Fraction of rows that are null (0.0 for an empty column)."""
        total = self.count + self.nulls
        return self.nulls / total if total else 0.0


class Profile(BaseModel):
    """A dataset profile: row count and one :class:`ColumnProfile` per column, in column order."""

    format_version: int = _FORMAT_VERSION
    rows: int
    bins: int = DEFAULT_BINS
    columns: dict[str, ColumnProfile]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-compatible dict."""
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        """Return the profile as a JSON string."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> Profile:
        """Load a profile written by :meth:`to_json`."""
        return cls.model_validate_json(text)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        """Load a profile written by :meth:`to_dict`."""
        return cls.model_validate(data)


def to_polars(data: Any) -> pl.DataFrame:
    """Convert a pandas, polars or pyarrow table to a polars DataFrame with float NaN turned into null.

    Example:
        >>> import pandas as pd
        >>> to_polars(pd.DataFrame({"x": [1.0, None]}))["x"].null_count()
        1
    """
    frame = _convert(data)
    floats = [name for name, dtype in frame.schema.items() if dtype.is_float()]
    return frame.with_columns(pl.col(floats).fill_nan(None)) if floats else frame


def _convert(data: Any) -> pl.DataFrame:
    if isinstance(data, pl.LazyFrame):
        data = data.collect()
    if isinstance(data, pl.DataFrame):
        return data
    try:
        converted = pl.from_pandas(data) if _is_pandas(data) else pl.from_arrow(data)
    except (TypeError, ValueError) as exc:
        message = f"Cannot profile {type(data).__name__}: pass a pandas, polars or pyarrow table"
        raise InvalidInput(message) from exc
    if not isinstance(converted, pl.DataFrame):
        raise InvalidInput(f"Cannot profile {type(data).__name__}: it is not a table (pass a DataFrame)")
    return converted


def _is_pandas(data: Any) -> bool:
    return type(data).__module__.split(".")[0] == "pandas"


def _kind(dtype: pl.DataType) -> Kind:
    if dtype.is_numeric():
        return "numeric"
    if dtype.is_temporal() and not isinstance(dtype, pl.Duration | pl.Time):
        return "datetime"
    if isinstance(dtype, pl.String | pl.Categorical | pl.Enum | pl.Boolean):
        return "categorical"
    return "other"


def _values(name: str, kind: Kind) -> pl.Expr:
    """The non-null values of a column as numbers (datetimes as epoch microseconds)."""
    col = pl.col(name).drop_nulls()
    return col.dt.epoch("us") if kind == "datetime" else col


def _scalar_exprs(i: int, name: str, dtype: pl.DataType) -> list[pl.Expr]:
    kind, col = _kind(dtype), pl.col(name)
    exprs = [col.count().alias(f"{i}.count"), col.null_count().alias(f"{i}.nulls")]
    if kind == "other":
        return exprs
    exprs.append(col.drop_nulls().approx_n_unique().alias(f"{i}.distinct"))
    if kind == "categorical":
        if isinstance(dtype, pl.Boolean):  # the mean of a boolean is its share of True
            exprs.append(col.cast(pl.Float64).mean().alias(f"{i}.mean"))
        return exprs
    values = _values(name, kind).cast(pl.Float64)
    levels = [*QUANTILES, *_EDGE_RANGE]
    return [
        *exprs,
        col.min().alias(f"{i}.min"),
        col.max().alias(f"{i}.max"),
        values.min().alias(f"{i}.low"),
        values.max().alias(f"{i}.high"),
        values.mean().alias(f"{i}.mean"),
        values.std().alias(f"{i}.std"),
        values.quantile(levels, interpolation="linear").alias(f"{i}.quantiles"),
    ]


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _scalar_text(value: Any) -> float | str | None:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return _finite(value)


def bin_edges(low: float, high: float, bins: int, *, integer: bool = False) -> list[float]:
    """Return strictly increasing inner edges: ``bins`` equal-width bins from ``low`` to ``high``.

    For integer columns every edge is moved to ``k + 0.5`` (merging bins that collapse) so that no value
    sits on an edge and profiles of the same integer range share their edges. A degenerate float range
    gets a single narrow bin ``[low, low + δ)`` so the value, smaller and larger values land apart.

    Example:
        >>> bin_edges(0.0, 1.0, 4)
        [0.0, 0.25, 0.5, 0.75, 1.0]
        >>> bin_edges(1.0, 3.0, 4, integer=True)
        [0.5, 1.5, 2.5, 3.5]
    """
    if bins < 1:
        raise InvalidInput(f"bins must be at least 1, got {bins}")
    points = np.unique(np.linspace(low, high, bins + 1))
    if integer:
        points = np.unique(np.concatenate([[math.floor(low) - 0.5], np.floor(points) + 0.5]))
    elif len(points) < 2:
        points = np.array([low, low + max(abs(low), 1.0) * 1e-9])
    return [float(e) for e in points]


def _hist_expr(i: int, name: str, kind: Kind, edges: Sequence[float]) -> pl.Expr:
    index = pl.lit(pl.Series(edges, dtype=pl.Float64)).search_sorted(
        _values(name, kind).cast(pl.Float64), side="right"
    )
    return index.value_counts().implode().alias(f"{i}.hist")


def _top_expr(i: int, name: str, top: int) -> pl.Expr:
    values = pl.col(name).drop_nulls().cast(pl.String)
    return values.value_counts(sort=True).head(top).implode().alias(f"{i}.top")


def _histogram(pairs: list[dict[str, Any]], edges: list[float], low: float, high: float) -> Histogram:
    counts = [0] * (len(edges) + 1)
    for pair in pairs:
        index = next(value for key, value in pair.items() if key != "count")
        counts[int(index)] += int(pair["count"])
    return Histogram(edges=edges, counts=counts, low=low, high=high)


def _top_categories(pairs: list[dict[str, Any]], name: str, count: int) -> TopCategories:
    ordered = sorted(((str(p[name]), int(p["count"])) for p in pairs), key=lambda kv: (-kv[1], kv[0]))
    counts = dict(ordered)
    return TopCategories(counts=counts, other=count - sum(counts.values()))


def _column_profile(i: int, name: str, dtype: pl.DataType, stats: dict[str, Any]) -> ColumnProfile:
    kind = _kind(dtype)
    get = stats.get
    quantiles: dict[str, float] = {}
    for level, value in zip(QUANTILES, get(f"{i}.quantiles") or [], strict=False):
        if _finite(value) is not None:
            quantiles[str(level)] = float(value)
    distinct = get(f"{i}.distinct")
    return ColumnProfile(
        name=name,
        dtype=str(dtype),
        kind=kind,
        count=int(stats[f"{i}.count"]),
        nulls=int(stats[f"{i}.nulls"]),
        distinct=None if distinct is None else int(distinct),
        min=_scalar_text(get(f"{i}.min")),
        max=_scalar_text(get(f"{i}.max")),
        mean=_finite(get(f"{i}.mean")),
        std=_finite(get(f"{i}.std")),
        quantiles=quantiles,
    )


def profile(data: Any, *, bins: int = DEFAULT_BINS, top: int = TOP_CATEGORIES) -> Profile:
    """Profile a pandas, polars or pyarrow table in two passes over the data.

    Pass one computes every scalar statistic of every column in a single ``select``; pass two computes
    every histogram and top-category list in a second ``select``.

    Args:
        data: A pandas/polars DataFrame or a pyarrow Table.
        bins: Number of equal-width inner histogram bins (two open-ended tail bins are added).
        top: Number of most frequent categories kept for categorical and boolean columns.

    Returns:
        The :class:`Profile`.

    Example:
        >>> import pandas as pd
        >>> p = profile(pd.DataFrame({"x": [1.0, 2.0, None], "c": ["a", "b", "a"]}), bins=4)
        >>> p.rows, p.columns["x"].nulls, p.columns["c"].top.counts
        (3, 1, {'a': 2, 'b': 1})
    """
    frame = to_polars(data)
    schema = list(frame.schema.items())
    scalar = [e for i, (name, dtype) in enumerate(schema) for e in _scalar_exprs(i, name, dtype)]
    stats = frame.select(scalar).row(0, named=True) if scalar else {}
    columns = {name: _column_profile(i, name, dtype, stats) for i, (name, dtype) in enumerate(schema)}
    edges = _all_edges(schema, stats, bins)
    second = [
        _hist_expr(i, name, _kind(dtype), edges[i]) for i, (name, dtype) in enumerate(schema) if i in edges
    ]
    second += [
        _top_expr(i, name, top) for i, (name, dtype) in enumerate(schema) if _kind(dtype) == "categorical"
    ]
    found = frame.select(second).row(0, named=True) if second else {}
    for i, (name, _) in enumerate(schema):
        column = columns[name]
        if i in edges:
            low, high = float(stats[f"{i}.low"]), float(stats[f"{i}.high"])
            column.histogram = _histogram(found[f"{i}.hist"], edges[i], low, high)
        elif f"{i}.top" in found:
            column.top = _top_categories(found[f"{i}.top"], name, column.count)
    return Profile(rows=frame.height, bins=bins, columns=columns)


def _all_edges(
    schema: list[tuple[str, pl.DataType]], stats: dict[str, Any], bins: int
) -> dict[int, list[float]]:
    """Inner edges per column index, for numeric and datetime columns that hold at least one value."""
    edges: dict[int, list[float]] = {}
    for i, (_, dtype) in enumerate(schema):
        cuts = (stats.get(f"{i}.quantiles") or [])[len(QUANTILES) :]
        if _kind(dtype) in ("numeric", "datetime") and cuts and cuts[0] is not None:
            integer = dtype.is_integer()
            edges[i] = bin_edges(float(cuts[0]), float(cuts[-1]), bins, integer=integer)
    return edges


def bin_counts(column: ColumnProfile, new_values: Any) -> list[int]:
    """Count new values into the reference column's bins or categories; nulls are not counted.

    For numeric and datetime columns the result aligns with ``column.histogram.counts``; for categorical
    columns it has one entry per reference category (in ``column.top.counts`` order) then one for "other".
    This is what monitoring uses to compare production data with a stored profile.

    Args:
        column: The reference column profile.
        new_values: A pandas/polars Series, pyarrow array, numpy array or sequence of new values.

    Example:
        >>> ref = profile(pl.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]}), bins=2).columns["x"]
        >>> bin_counts(ref, [-5.0, 1.0, 1.6, None, 99.0])
        [1, 1, 1, 1]
    """
    series = _to_series(new_values)
    frame = to_polars(pl.DataFrame({"v": series}))
    if column.histogram is not None:
        kind: Kind = "datetime" if frame.schema["v"].is_temporal() else "numeric"
        pairs = frame.select(_hist_expr(0, "v", kind, column.histogram.edges)).item().to_list()
        return _histogram(pairs, column.histogram.edges, 0.0, 0.0).counts
    if column.top is not None:
        pairs = frame.select(_top_expr(0, "v", frame.height or 1)).item().to_list()
        found = {str(p["v"]): int(p["count"]) for p in pairs}
        counts = [found.pop(category, 0) for category in column.top.counts]
        return [*counts, sum(found.values())]
    raise InvalidInput(f"Column {column.name!r} ({column.dtype}) has no histogram or categories to bin into")


def _to_series(values: Any) -> pl.Series:
    if isinstance(values, pl.Series):
        return values
    if _is_pandas(values) or type(values).__module__.split(".")[0] == "pyarrow":
        return pl.Series(values=values)
    return pl.Series(values=list(values) if not isinstance(values, np.ndarray) else values)
