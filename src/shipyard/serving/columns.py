"""A request's rows checked in plain Python, and one frame per batch typed from the signature.

A JSON request arrives as plain column lists (:class:`~shipyard.serving.payload.PredictRequest`
``columns``). :func:`check_columns` accepts them against a model's :class:`Signature` on the event
loop without pandas — every value must be one the signature's own check would take as it is — and
:func:`batch_frame` builds, in the batcher's worker thread, one DataFrame for a whole batch with each
column's dtype taken from the signature (no per-request ``DataFrame.from_records``, no dtype inference).

The fast path only *accepts*. Anything it is not sure of — a missing or unexpected column, a null in a
column that does not take one, a string in a number column, an int past what a float64 holds exactly, a
type it does not cover (``float32``, ``object``, ``date``, time-zone-aware datetimes) — answers ``None``,
and the request takes the pandas path (``Signature.check``), which converts it or refuses it with the
same message as ever. So a bad request still fails alone, before batching, with the signature's 422.

What the fast path covers, and the dtype the batch frame gets (the one ``Signature.check`` hands the
model for the same JSON):

=========================  ====================================  ===================================
signature type             values accepted                       batch column
=========================  ====================================  ===================================
``float64``                ints and floats within ±2**53; null   ``float64`` (null: NaN)
                           if nullable
``int8`` … ``uint64``      ints within the type's range          that numpy dtype
``bool``                   true / false                          ``bool``
``string``                 strings; null if nullable             pandas' default string dtype
``category``               strings; null if nullable             ``category`` over the batch's values
``datetime64[unit]``       ISO-8601 date or date-time strings    ``datetime64[unit]``
                           without an offset
=========================  ====================================  ===================================

A category column's categories are the batch's values (sorted), not one request's: a model that reads
categorical *codes* rather than values (XGBoost's ``enable_categorical``) sees other codes than it
would for each request alone; the shipped flavors read values.

Example:
    >>> from shipyard.registry.signature import ColumnSpec, Signature
    >>> sig = Signature([ColumnSpec("x", "float64"), ColumnSpec("k", "string")])
    >>> a = check_columns({"x": [1, 2.5], "k": ["a", "b"]}, 2, sig)
    >>> b = check_columns({"k": ["c"], "x": [None]}, 1, sig)
    >>> batch_frame(sig, [a, b]).dtypes.astype(str).tolist(), len(batch_frame(sig, [a, b]))
    (['float64', 'str'], 3)
    >>> check_columns({"x": ["abc"], "k": ["a"]}, 1, sig) is None  # the pandas path names the problem
    True
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from shipyard.registry.signature import Signature

__all__ = ["TypedColumns", "batch_frame", "check_columns"]

_EXACT = 2**53  # float64 holds every integer up to here exactly
_NONE = type(None)
_INTS = {
    name: (int(np.iinfo(name).min), int(np.iinfo(name).max))
    for name in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
}
_STRING = pd.Series(["a"]).dtype  # pandas' default string dtype: what a JSON string column becomes
_NAIVE_DATETIME = re.compile(r"^datetime64\[(s|ms|us|ns)\]$")
# What pandas' ISO8601 parser reads the same whether it sees one value or a batch: no offset, no "Z".
_ISO_NAIVE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?")


@dataclass(frozen=True, eq=False)
class TypedColumns:
    """One request's rows, checked: the signature's columns (in its order) as plain lists.

    ``fallback`` builds the same rows the pandas way (``Signature.check``): the batcher uses it for a
    request whose batch frame could not be built, so that request fails (or succeeds) on its own.
    """

    values: dict[str, list[Any]]
    rows: int
    fallback: Callable[[], pd.DataFrame] | None = None


def check_columns(
    columns: dict[str, list[Any]],
    rows: int,
    signature: Signature,
    *,
    ignore: Sequence[str] | bool = (),
) -> TypedColumns | None:
    """The request's columns if every value is one the signature takes as is, else ``None``.

    ``ignore`` names columns the model does not take that may be left out (the sticky-key column);
    ``True`` leaves out every column the model does not take (MLflow's ``/invocations``).
    """
    names = signature.names
    if len(columns) != len(names) or any(name not in columns for name in names):
        extra = [name for name in columns if name not in names]
        if len(columns) - len(extra) != len(names):
            return None  # a column is missing
        allowed = () if isinstance(ignore, bool) else ignore
        if ignore is not True and any(name not in allowed for name in extra):
            return None  # an unexpected column: the pandas path refuses it by name
    for spec in signature.inputs:
        if not _accepts(spec.type, spec.nullable, columns[spec.name]):
            return None
    return TypedColumns({name: columns[name] for name in names}, rows)


def _accepts(type_name: str, nullable: bool, values: list[Any]) -> bool:
    """Whether ``values`` all fit ``type_name`` as they are (see the module's table)."""
    raw = set(map(type, values))
    types = raw - {_NONE} if nullable else raw
    if type_name == "float64":
        if not types <= {int, float}:
            return False
        present = [v for v in values if v is not None] if nullable else values
        return not present or (min(present) >= -_EXACT and max(present) <= _EXACT)
    if type_name in _INTS:
        if raw != {int}:  # an int column with nulls goes to the model as float64: the pandas path
            return False
        low, high = _INTS[type_name]
        return bool(low <= min(values) and max(values) <= high)
    if type_name == "bool":
        return raw == {bool}
    if type_name in ("string", "category"):
        return types == {str}  # an all-null column stays an object column on the pandas path
    if _NAIVE_DATETIME.match(type_name):
        return raw == {str} and all(_ISO_NAIVE.fullmatch(v) for v in values)
    return False


def batch_frame(signature: Signature, parts: Sequence[TypedColumns]) -> pd.DataFrame:
    """One frame of every part's rows (in order), each column typed from the signature.

    Example:
        >>> from shipyard.registry.signature import ColumnSpec, Signature
        >>> sig = Signature([ColumnSpec("n", "int32")])
        >>> batch_frame(sig, [TypedColumns({"n": [1, 2]}, 2)]).dtypes["n"]
        dtype('int32')
    """
    data: dict[str, Any] = {}
    for spec in signature.inputs:
        name = spec.name
        if len(parts) == 1:
            values = parts[0].values[name]
        else:
            values = list(chain.from_iterable(part.values[name] for part in parts))
        data[name] = _column(spec.type, values)
    return pd.DataFrame(data, copy=False)


def _column(type_name: str, values: list[Any]) -> Any:
    if type_name == "float64":
        return np.array(values, dtype=np.float64)  # None becomes NaN
    if type_name in _INTS or type_name == "bool":
        return np.array(values, dtype=type_name)
    if type_name == "string":
        return pd.array(values, dtype=_STRING)
    if type_name == "category":
        return pd.Categorical(pd.array(values, dtype=_STRING))
    return pd.to_datetime(values, format="ISO8601").astype(type_name)
