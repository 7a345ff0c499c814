"""Number conversions that lose nothing, for the signature check.

A float64 holds every integer up to 2**53 exactly, a float32 up to 2**24; past that only some (2**63 is a
float, 2**53 + 1 is not). A decimal goes into a float column when the float reads back as the same
decimal (``Decimal("0.1")`` does; ``Decimal("0.12345678901234567890")`` does not): the same rounding a
JSON number with a fraction gets. Integers, decimals and floats in an ``object`` column (JSON integers
past 64 bits, Arrow integers with nulls, Arrow decimals) are converted here value by value, and anything a
conversion would change is named instead of passed on.
"""

from __future__ import annotations

import decimal
import math
from typing import Any

import numpy as np
import pandas as pd

from shipyard.quoting import quoted_list

__all__ = ["inexact_ints", "narrowed_to_inf", "object_numbers"]

_EXACT_BITS = {"float16": 11, "float32": 24, "float64": 53}


def _as_float(value: Any, float_type: str) -> float:
    """``value`` rounded to ``float_type`` (a Python float; inf when out of range)."""
    with np.errstate(over="ignore"):
        try:
            return float(np.dtype(float_type).type(float(value)))
        except OverflowError:  # an int past the float64 range
            return math.copysign(math.inf, value)


def _int_fits(value: int, float_type: str) -> bool:
    if abs(value) <= 2 ** _EXACT_BITS[float_type]:
        return True
    rounded = _as_float(value, float_type)
    return math.isfinite(rounded) and int(rounded) == value


def inexact_ints(values: np.ndarray[Any, Any], float_type: str) -> np.ndarray[Any, Any]:
    """The integers in ``values`` that ``float_type`` cannot hold exactly (empty when all fit).

    Example:
        >>> inexact_ints(np.array([1, 2**53, 2**53 + 1, 2**63 - 1]), "float64").tolist()
        [9007199254740993, 9223372036854775807]
    """
    if not values.size:
        return values
    limit = 2 ** _EXACT_BITS[float_type]
    if -limit <= int(values.min()) and int(values.max()) <= limit:  # the usual case: one pass in C
        return values[:0]
    large: np.ndarray[Any, Any] = values[(values > limit) | (values < -limit)]
    inexact: np.ndarray[Any, Any] = large[[not _int_fits(int(v), float_type) for v in large]]
    return inexact


def narrowed_to_inf(values: np.ndarray[Any, Any], converted: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The finite ``values`` that became infinite when narrowed to ``converted``'s float type.

    Example:
        >>> narrowed_to_inf(np.array([1e300, 1.0]), np.array([np.inf, 1.0], dtype="float32")).tolist()
        [1e+300]
    """
    with np.errstate(invalid="ignore"):
        overflowed: np.ndarray[Any, Any] = values[np.isinf(converted) & np.isfinite(values)]
    return overflowed


def _decimal_fits(value: decimal.Decimal, float_type: str) -> bool:
    if not value.is_finite():  # NaN and the infinities are floats too; a signalling NaN is not
        return not value.is_snan()
    return math.isfinite(_as_float(value, float_type)) and decimal.Decimal(repr(float(value))) == value


def _problem(spec_type: str, why: str, bad: list[Any]) -> str:
    return f"expected {spec_type}, got {why} like {quoted_list(bad, 3)}"


def object_numbers(s: pd.Series, spec_type: str, kind: str) -> tuple[pd.Series | None, str | None]:
    """An ``object`` column of numbers (int, float, Decimal, numpy; nulls) as an exact ``kind`` column.

    ``kind`` is ``"int"`` or ``"float"``. Returns ``(series, None)``, or ``(None, problem)`` naming the
    values a conversion would change. An int column with nulls goes to the model as float64 with NaN
    (as pandas does), so its integers must fit a float64 exactly too.

    Example:
        >>> s = pd.Series([1, 2**53 + 1, None], dtype=object)
        >>> object_numbers(s, "float64", "float")[1]  # doctest: +ELLIPSIS
        'expected float64, got integers that float64 cannot hold exactly (...) like 9007199254740993'
    """
    nulls = s.isna().to_numpy()
    present = [v.item() if isinstance(v, np.generic) else v for v in s.to_numpy(dtype=object)[~nulls]]
    if kind == "float":
        ints = [v for v in present if isinstance(v, int) and not _int_fits(v, spec_type)]
        if ints:
            why = (
                f"integers that {spec_type} cannot hold exactly (send floats if that rounding is acceptable)"
            )
            return None, _problem(spec_type, why, ints)
        decimals = [v for v in present if isinstance(v, decimal.Decimal) and not _decimal_fits(v, spec_type)]
        if decimals:
            return None, _problem(spec_type, f"decimals that {spec_type} cannot hold exactly", decimals)
        values = np.full(len(s), np.nan, dtype=spec_type)
        values[~nulls] = [float(v) for v in present]
        return pd.Series(values, index=s.index, name=s.name), None
    return _object_ints(s, spec_type, nulls, present)


def _object_ints(
    s: pd.Series, spec_type: str, nulls: np.ndarray[Any, Any], present: list[Any]
) -> tuple[pd.Series | None, str | None]:
    fractional = [v for v in present if isinstance(v, float | decimal.Decimal) and not _whole(v)]
    if fractional:
        return None, _problem(spec_type, "non-integer values", fractional)
    whole = [int(v) for v in present]
    info = np.iinfo(np.dtype(spec_type))
    outside = [v for v in whole if not info.min <= v <= info.max]
    if outside:
        return None, _problem(spec_type, "values out of range", outside)
    if not nulls.any():
        return pd.Series(np.array(whole, dtype=spec_type), index=s.index, name=s.name), None
    large = [v for v in whole if not _int_fits(v, "float64")]
    if large:
        why = "integers too large to pass with nulls (an int column with nulls goes to the model as float64)"
        return None, _problem(spec_type, why, large)
    values = np.full(len(s), np.nan)
    values[~nulls] = whole
    return pd.Series(values, index=s.index, name=s.name), None


def _whole(value: float | decimal.Decimal) -> bool:
    if isinstance(value, float):
        return math.isfinite(value) and value == int(value)
    return value.is_finite() and value == value.to_integral_value()
