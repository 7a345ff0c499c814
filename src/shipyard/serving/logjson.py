"""The prediction log's JSON text for ``inputs``, ``outputs`` and ``label``: every value gets logged.

A request that was answered is logged, whatever its values: JSON text cannot hold bytes, decimals, times
or integers past 64 bits, so they are written in a stated encoding (:data:`ENCODING`, also in the log's
Parquet schema as the metadata of those fields) instead of failing the row:

- bytes (an Arrow ``binary`` column) → ``{"$base64": "<standard base64>"}``;
- decimals, integers past 64 bits and other values JSON has no type for → their text (``"0.10"``);
- times and timestamps → ISO 8601 text; durations → ISO 8601 text (``"P0DT0H0M5S"``);
- NaN and infinities → ``null``;
- a value that still cannot be encoded (a model output nested past orjson's limit) →
  ``{"$unencodable": "<type>: <value cut short>"}``.

A request's ``inputs`` are logged as records (:func:`inputs_json`): a frame (an Arrow request) or a
``{"columns": {...}}`` body is turned into them, and repeated column names get ``#2``, ``#3`` suffixes.
Outputs may hold numpy arrays, pandas Series and frames (a frame as records).
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import math
from typing import Any

import numpy as np
import orjson
import pandas as pd

from shipyard.quoting import quoted

__all__ = ["ENCODING", "frame_records", "inputs_json", "safe_json"]

ENCODING = (
    'JSON text; bytes as {"$base64": "..."}; decimals, integers past 64 bits and other values JSON has '
    'no type for as their text; times as ISO 8601; NaN as null; anything else as {"$unencodable": "..."}'
)
"""How ``inputs``, ``outputs`` and ``label`` are encoded (stored as their Parquet field metadata)."""

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_MAY_HOLD_ODD = ("bytes", "mixed", "mixed-integer", "decimal", "time", "timedelta", "integer", "period")


def _default(value: Any) -> Any:
    """orjson's fallback for a value it does not know."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$base64": base64.b64encode(bytes(value)).decode("ascii")}
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timedelta | datetime.timedelta):
        return pd.Timedelta(value).isoformat()
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, np.ndarray | pd.Series):  # object arrays (Arrow lists): orjson takes numeric ones
        return value.tolist()
    if isinstance(value, pd.DataFrame):  # a model answering with a frame
        return value.to_dict(orient="records")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, float | np.floating) and not math.isfinite(value):
        return None
    if isinstance(value, decimal.Decimal | int | np.generic):
        return str(value)
    raise TypeError(f"no JSON encoding for {type(value).__name__}")


def _text_default(value: Any) -> Any:
    try:
        return _default(value)
    except TypeError:
        return str(value)


def safe_json(value: Any) -> str:
    """``value`` as JSON text in the log's encoding (:data:`ENCODING`); never raises.

    Example:
        >>> safe_json([{"b": b"\\x00\\xff", "n": 2**70}])
        '[{"b":{"$base64":"AP8="},"n":"1180591620717411303424"}]'
    """
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS).decode()
    except (TypeError, ValueError, RecursionError):  # past 64 bits, lone surrogates, nested past 254
        pass
    try:  # the standard library: integers of any size, escapes lone surrogates, nests as far as it can
        return json.dumps(_plain(value), default=_text_default, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        reason = f"{type(value).__name__} ({type(exc).__name__}): {quoted(value, 200)}"
        return json.dumps({"$unencodable": reason})


def inputs_json(inputs: Any) -> str | None:
    """A request's inputs as JSON records in the log's encoding (JSON text as given); never raises.

    A frame and a ``{"columns": {name: values}}`` body become records; anything that cannot be read as
    records is logged as ``{"$unencodable": ...}`` rather than losing the row.

    Example:
        >>> inputs_json({"columns": {"x": [1, 2]}})
        '[{"x":1},{"x":2}]'
        >>> inputs_json({"columns": {"x": [1, 2], "y": [3]}})
        '{"$unencodable":"ValueError: zip() argument 2 is shorter than argument 1"}'
    """
    if inputs is None or isinstance(inputs, str):
        return inputs
    try:
        if isinstance(inputs, pd.DataFrame):
            return frame_records(inputs)
        if isinstance(inputs, dict) and isinstance(inputs.get("columns"), dict):
            columns: dict[str, list[Any]] = inputs["columns"]
            names = list(columns)
            rows = zip(*columns.values(), strict=True)
            return safe_json([dict(zip(names, row, strict=True)) for row in rows])
        return safe_json(inputs)
    except Exception as exc:  # never lose the row: log what it was instead
        return safe_json({"$unencodable": f"{type(exc).__name__}: {exc}"[:500]})


def _plain(value: Any) -> Any:
    """NaN and infinities as None and integers past 64 bits as text, as the fast path writes them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def frame_records(frame: pd.DataFrame) -> str:
    """A frame as JSON records in the log's encoding (pandas' own writer when no column needs care).

    Example:
        >>> frame_records(pd.DataFrame({"x": [1.5], "b": [b"hi"]}))
        '[{"x":1.5,"b":{"$base64":"aGk="}}]'
    """
    if frame.columns.is_unique and not any(_needs_care(frame, i) for i in range(frame.shape[1])):
        try:
            return str(frame.to_json(orient="records", date_format="iso"))
        except (ValueError, TypeError, OverflowError, UnicodeError):
            pass
    names = _unique_names([str(c) for c in frame.columns])
    rows = [dict(zip(names, row, strict=True)) for row in frame.itertuples(index=False, name=None)]
    return safe_json(rows)


def _needs_care(frame: pd.DataFrame, position: int) -> bool:
    column = frame.iloc[:, position]
    if column.dtype != np.dtype("O"):
        return False
    return pd.api.types.infer_dtype(column, skipna=True) in _MAY_HOLD_ODD


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out
