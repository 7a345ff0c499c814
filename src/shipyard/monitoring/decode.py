"""The prediction log's JSON ``inputs`` and ``outputs`` decoded into one row per predicted row.

Each logged request holds its rows as JSON text (``inputs``: a records list, or one record) and its answer
(``outputs``: ``{"predictions": [...], "probabilities": [[...], ...]}``, or the bare predictions). Decoding
is vectorised: polars' ``str.json_decode`` parses the batch in Rust, about 1 MB of JSON at a time. With a
``schema`` (the reference profile's features and their types, as drift monitoring passes) only those fields
are decoded, in one pass; without one the types are inferred (per slice, then brought to their common
supertype, as ``pl.from_dicts`` over every row does). A batch polars cannot decode
that way (a request that is not valid JSON, a value of the wrong type for the schema, rows that are not
records, the ``{"columns": {...}}`` request shape) is decoded row by row in Python instead, with the same
results; a request whose JSON is invalid is left out and counted in ``skipped``.

Types with a schema: numeric features are read as ``Float64`` (JSON ``true``/``false`` as 1/0, text that is
a number as that number), categorical and datetime features as text. Log categorical values as JSON
strings: a JSON number there is read as polars writes it (``1.0`` reads ``"1"`` when decoded vectorised,
``"1.0"`` row by row).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import polars as pl

__all__ = ["Decoded", "decode_requests"]

_SLICE_BYTES = 1 << 20
"""JSON decoded per slice: polars' ``json_decode`` holds several times its input while it parses (a
300,000-row window peaked 700 MB over its text decoded at once, 45 MB in 1 MB slices, and ran faster)."""


@dataclass
class Decoded:
    """Features and predictions of a batch of requests, one row per predicted row."""

    features: pl.DataFrame
    predictions: pl.DataFrame
    skipped: int = 0
    method: str = "vectorised"


class _Irregular(Exception):
    """The batch has a shape the vectorised decoder does not take: decode it row by row."""


def decode_requests(frame: pl.DataFrame, schema: Mapping[str, pl.DataType] | None = None) -> Decoded:
    """Decode the ``inputs`` and ``outputs`` of logged requests (a frame with those two text columns).

    Args:
        frame: Logged requests, in order.
        schema: The features to decode and their polars types; ``None`` decodes every field, inferring types.

    Example:
        >>> frame = pl.DataFrame({"inputs": ['[{"x": 1.5, "c": "a"}]'], "outputs": ['{"predictions": [1]}']})
        >>> decode_requests(frame).features.to_dicts()
        [{'x': 1.5, 'c': 'a'}]
    """
    if frame.is_empty():
        return Decoded(_empty(schema), pl.DataFrame({"prediction": pl.Series([], dtype=pl.Null)}))
    parts = [_slice(frame.slice(start, length), schema) for start, length in _slices(frame)]
    if len(parts) == 1:
        return parts[0]
    try:  # types inferred slice by slice meet in their common supertype, as inference over all rows does
        features = pl.concat([p.features for p in parts], how="diagonal_relaxed")
        predictions = pl.concat([p.predictions for p in parts], how="diagonal_relaxed")
    except pl.exceptions.PolarsError:  # e.g. a list in one slice and a number in another
        return _row_by_row(frame, schema)
    methods = {p.method for p in parts}
    method = methods.pop() if len(methods) == 1 else "vectorised, some slices row by row"
    return Decoded(features, predictions, sum(p.skipped for p in parts), method)


def _slices(frame: pl.DataFrame) -> list[tuple[int, int]]:
    """(start, length) of consecutive slices of about ``_SLICE_BYTES`` of JSON each (at least one row)."""
    sizes = frame.select(
        pl.col("inputs").str.len_bytes().fill_null(0).cast(pl.Int64)
        + pl.col("outputs").str.len_bytes().fill_null(0).cast(pl.Int64)
    ).to_series()
    total = sizes.cum_sum().to_numpy()
    cuts = np.arange(_SLICE_BYTES, int(total[-1]) + _SLICE_BYTES, _SLICE_BYTES, dtype=np.int64)
    ends = np.searchsorted(total, cuts, side="right")
    bounds = sorted({0, *(int(e) for e in ends if 0 < e < frame.height), frame.height})
    return [(a, b - a) for a, b in zip(bounds, bounds[1:], strict=False)]


def _slice(frame: pl.DataFrame, schema: Mapping[str, pl.DataType] | None) -> Decoded:
    try:
        return _vectorised(frame, schema)
    except (_Irregular, pl.exceptions.PolarsError):
        return _row_by_row(frame, schema)


def _empty(schema: Mapping[str, pl.DataType] | None) -> pl.DataFrame:
    return pl.DataFrame(schema=dict(schema)) if schema else pl.DataFrame()


def _texts(frame: pl.DataFrame) -> pl.DataFrame:
    """``inputs`` as a JSON list of records, ``outputs`` as a JSON object (empty when null)."""
    inputs = pl.col("inputs").str.strip_chars_start()
    outputs = pl.col("outputs").str.strip_chars_start()
    return frame.select(
        inputs=pl.when(inputs.is_null() | (inputs == ""))
        .then(pl.lit("[]"))
        .when(inputs.str.starts_with("{"))
        .then(pl.concat_str(pl.lit("["), inputs, pl.lit("]")))
        .otherwise(inputs),
        outputs=pl.when(outputs.is_null() | (outputs == ""))
        .then(pl.lit("{}"))
        .when(outputs.str.starts_with("{"))
        .then(outputs)
        .otherwise(pl.concat_str(pl.lit('{"predictions":'), outputs, pl.lit("}"))),
    )


def _vectorised(frame: pl.DataFrame, schema: Mapping[str, pl.DataType] | None) -> Decoded:
    if frame.get_column("inputs").str.starts_with('{"columns"').any():
        raise _Irregular("columns-shaped request")
    texts = _texts(frame)
    if schema:
        rows = texts.get_column("inputs").str.json_decode(pl.List(pl.Struct(dict(schema))))
    else:
        rows = texts.get_column("inputs").str.json_decode(infer_schema_length=None)
    inner = rows.dtype.inner if isinstance(rows.dtype, pl.List) else None
    if not isinstance(inner, pl.Struct) or not inner.fields:
        raise _Irregular("inputs are not records")
    if (
        not schema
        and any(f.dtype == pl.String for f in inner.fields)
        and frame.get_column("inputs").str.contains(r":\s*(?:true|false)\b").any()
    ):
        # polars infers text for a field holding floats and booleans where pl.from_dicts infers floats
        raise _Irregular("booleans beside numbers")
    answers = texts.get_column("outputs").str.json_decode(infer_schema_length=None)
    if not isinstance(answers.dtype, pl.Struct):
        raise _Irregular("outputs are not objects")
    fields = {f.name: f.dtype for f in answers.dtype.fields}
    n = rows.list.len()
    batch = pl.DataFrame({"rows": rows, "n": n, "answers": answers})
    if "predictions" in fields and isinstance(fields["predictions"], pl.List):
        values = pl.col("answers").struct.field("predictions")
        if batch.select((values.is_not_null() & (values.list.len() != pl.col("n"))).any()).item():
            raise _Irregular("as many predictions as rows")
    preds = _predictions(fields)
    score = _score(fields)
    batch = batch.select("rows", preds.alias("prediction"), score.alias("score"))
    exploded = batch.explode("rows", "prediction", "score")
    features = exploded.select(pl.col("rows").struct.unnest())
    predictions = exploded.select("prediction", "score")
    if predictions.get_column("score").null_count() == predictions.height:
        predictions = predictions.drop("score")
    return Decoded(features, predictions)


def _predictions(fields: Mapping[str, Any]) -> pl.Expr:
    """Per request, its predictions as a list as long as its rows (nulls when there are none)."""
    n = pl.col("n")
    dtype = fields.get("predictions")
    if dtype is None:
        return pl.lit(None, dtype=pl.Null).repeat_by(n)
    if not isinstance(dtype, pl.List):
        raise _Irregular("predictions are not a list")
    values = pl.col("answers").struct.field("predictions")
    return pl.when(values.is_null()).then(pl.lit(None, dtype=dtype.inner).repeat_by(n)).otherwise(values)


def _score(fields: Mapping[str, Any]) -> pl.Expr:
    """Per request, the positive class's probability (two classes) or the top one's, per row."""
    n = pl.col("n")
    nulls = pl.lit(None, dtype=pl.Float64).repeat_by(n)
    dtype = fields.get("probabilities")
    if dtype is None:
        return nulls
    inner = dtype.inner if isinstance(dtype, pl.List) else None
    if not isinstance(inner, pl.List) or not inner.inner.is_numeric():
        raise _Irregular("probabilities are not lists of numbers")
    probs = pl.col("answers").struct.field("probabilities")
    row = pl.element().cast(pl.List(pl.Float64))
    usable = (row.list.len() > 0) & (row.list.eval(pl.element().is_null()).list.any().not_())
    per_row = (
        pl.when(row.is_null() | ~usable)
        .then(pl.lit(None, dtype=pl.Float64))
        .when(row.list.len() == 2)
        .then(row.list.get(1, null_on_oob=True))
        .otherwise(row.list.max())
    )
    return (
        pl.when(probs.is_not_null() & (probs.list.len() == n)).then(probs.list.eval(per_row)).otherwise(nulls)
    )


def _row_by_row(frame: pl.DataFrame, schema: Mapping[str, pl.DataType] | None) -> Decoded:
    """The Python decoder: any shape the log may hold; a request that is not valid JSON is skipped."""
    records: list[dict[str, Any]] = []
    preds: list[Any] = []
    scores: list[float | None] = []
    skipped = 0
    for inputs, outputs in zip(frame.get_column("inputs"), frame.get_column("outputs"), strict=True):
        try:
            rows = _records(orjson.loads(inputs) if inputs else [])
            out = orjson.loads(outputs) if outputs else {}
        except orjson.JSONDecodeError:
            skipped += 1
            continue
        out = out if isinstance(out, dict) else {"predictions": out}
        values = out.get("predictions")
        values = values if isinstance(values, list) else [values] * len(rows)
        records.extend(rows)
        preds.extend(values[: len(rows)] + [None] * (len(rows) - len(values)))
        scores.extend(_scores(out.get("probabilities"), len(rows)))
    features = _records_frame(records, schema)
    predictions = pl.DataFrame({"prediction": pl.Series(preds, strict=False)})
    if any(s is not None for s in scores):
        predictions = predictions.with_columns(pl.Series("score", scores, dtype=pl.Float64))
    return Decoded(features, predictions, skipped, "row by row")


def _records(value: Any) -> list[dict[str, Any]]:
    """The rows of one request: a records list, one record, or the ``{"columns": {...}}`` shape."""
    if (
        isinstance(value, dict)
        and set(value) <= {"columns", "proba"}
        and isinstance(value.get("columns"), dict)
    ):
        columns = value["columns"]
        lists = {k: v if isinstance(v, list) else [v] for k, v in columns.items()}
        height = max((len(v) for v in lists.values()), default=0)
        return [{k: (v[i] if i < len(v) else None) for k, v in lists.items()} for i in range(height)]
    rows = value if isinstance(value, list) else [value]
    return [r if isinstance(r, dict) else {} for r in rows]


def _records_frame(records: list[dict[str, Any]], schema: Mapping[str, pl.DataType] | None) -> pl.DataFrame:
    if not schema and records:
        try:
            return pl.from_dicts(records, infer_schema_length=None)
        except (TypeError, ValueError, pl.exceptions.PolarsError):  # e.g. a list beside a number
            pass
    if not schema:
        names = list(dict.fromkeys(k for r in records for k in r))
        return pl.DataFrame([_column(n, [r.get(n) for r in records]) for n in names])
    columns = {}
    for name, dtype in schema.items():
        series = _column(name, [r.get(name) for r in records])
        if dtype == pl.Float64 and series.dtype == pl.Boolean:
            series = series.cast(pl.Float64)
        columns[name] = series.cast(dtype, strict=False)
    return pl.DataFrame(columns)


def _column(name: str, values: list[Any]) -> pl.Series:
    """One feature's values; when they have no common type, their JSON text."""
    try:
        return pl.Series(name, values, strict=False)
    except (TypeError, ValueError, pl.exceptions.PolarsError):
        text = [None if v is None else v if isinstance(v, str) else orjson.dumps(v).decode() for v in values]
        return pl.Series(name, text, dtype=pl.String)


def _scores(probs: Any, n: int) -> list[float | None]:
    if not isinstance(probs, list) or len(probs) != n:
        return [None] * n
    out: list[float | None] = []
    for row in probs:
        if isinstance(row, list) and row and all(isinstance(v, int | float) for v in row):
            out.append(float(row[1]) if len(row) == 2 else float(max(row)))
        elif isinstance(row, dict) and row:
            values = [float(v) for v in row.values() if isinstance(v, int | float)]
            out.append(values[1] if len(values) == 2 else (max(values) if values else None))
        else:
            out.append(None)
    return out
