"""Prediction requests in, answers out: JSON bodies become a pandas DataFrame; model outputs become JSON.

Three request shapes are accepted (the first two may add ``"proba": true``)::

    {"records": [{"dep_delay": 3.0, "carrier": "UA"}, ...]}      # one object per row
    {"columns": {"dep_delay": [3.0, ...], "carrier": ["UA", ...]}} # one list per column
    [{"dep_delay": 3.0, "carrier": "UA"}, ...]                     # bare records

Large batches can come as an Arrow IPC stream (``Content-Type: application/vnd.apache.arrow.stream``);
answers are JSON, or an Arrow stream when the request's ``Accept`` asks for one.

MLflow's scoring protocol (``/invocations``, ``shipyard.serving.mlflow_scoring``) reads its own shapes
into the same frames through :func:`read_json_request`, :func:`records_frame` and :func:`columns_frame`.

Anything else is refused with ``InvalidInput`` (400) naming what was wrong and the shape to send;
column names and types are the signature's business (``Signature.check``), not this module's. Also refused
here, before routing: values nested deeper than :data:`MAX_NESTING` lists or objects (JSON or Arrow),
duplicate column names (Arrow), an Arrow body that does not read. Messages quote values cut short
(:func:`shipyard.quoting.quoted`).

JSON integers are kept exact: orjson reads integers past 64 bits as floats, and pandas makes a column of
ints and floats a float column, so when a float column holds a value of 2**53 or more the body is read
again with the standard library and the columns holding integers past 2**53 are handed on as ``object``
columns of Python ints, for the signature check to convert exactly or refuse (``shipyard.registry.exact``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc

from shipyard.errors import InvalidInput
from shipyard.quoting import quoted, quoted_list
from shipyard.registry.signature import Signature
from shipyard.serving.http import loads

__all__ = [
    "ARROW_STREAM",
    "MAX_NESTING",
    "PredictRequest",
    "arrow_answer",
    "columns_frame",
    "json_type",
    "jsonable",
    "parse_arrow_request",
    "parse_json_datetimes",
    "parse_predict_request",
    "parse_proba_flag",
    "read_json_request",
    "records_frame",
    "rows_request",
    "wants_arrow",
]

ARROW_STREAM = "application/vnd.apache.arrow.stream"

_SHAPES = (
    'Send {"records": [{"column": value, ...}, ...]}, {"columns": {"column": [values, ...], ...}} '
    "or a bare list of records"
)
_KEYS = {"records", "columns", "proba"}
_SCALARS = {str, int, float, bool, type(None)}
MAX_NESTING = 32
"""How deep one value of a request (a cell) may nest lists and objects; deeper is refused with 400."""
_EXACT_FLOAT_INT = 2**53
_DETAIL_ITEMS = 20
_OBJECT = np.dtype("O")
_DETAIL_CHARS = 200
_ARROW_ERRORS = (pa.ArrowException, OSError, ValueError, TypeError, OverflowError, KeyError, IndexError)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class PredictRequest:
    """A parsed prediction request: its rows, whether probabilities were asked for, what to log.

    A JSON body of plain values keeps its rows as ``columns`` (one list per column, as sent) and builds
    the pandas ``frame`` only when something asks for it: the server checks such rows in plain Python
    (:mod:`shipyard.serving.columns`) and builds one frame per batch. Other bodies (nested values, Arrow,
    CSV) come with their frame built. ``inputs`` is the rows as sent (a records list or a columns dict) for
    the prediction log; ``key`` the value of the deployment's sticky-key field, when the body has one.

    Example:
        >>> request = parse_predict_request(b'{"records": [{"x": 1.5}, {"x": 2}]}')
        >>> request.columns, request.rows, request.frame.shape
        ({'x': [1.5, 2]}, 2, (2, 1))
    """

    __slots__ = ("_build", "_frame", "columns", "inputs", "key", "proba", "rows")

    def __init__(
        self,
        frame: pd.DataFrame | Callable[[], pd.DataFrame],
        proba: bool | None = None,
        inputs: Any = None,
        key: str | None = None,
        *,
        columns: dict[str, list[Any]] | None = None,
        rows: int | None = None,
    ) -> None:
        built = isinstance(frame, pd.DataFrame)
        self._frame: pd.DataFrame | None = frame if built else None
        self._build: Callable[[], pd.DataFrame] | None = None if built else frame
        self.proba = proba
        self.inputs = inputs
        self.key = key
        self.columns = columns
        self.rows = rows if rows is not None else len(self.frame)

    @property
    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame (built on first use when the request came as plain columns)."""
        if self._frame is None:
            assert self._build is not None
            self._frame, self._build = self._build(), None
        return self._frame


def parse_proba_flag(value: str | None) -> bool | None:
    """The ``?proba=`` query flag: ``None`` when absent, else a boolean (``InvalidInput`` when unclear).

    Example:
        >>> parse_proba_flag("true"), parse_proba_flag(None)
        (True, None)
    """
    if value is None:
        return None
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidInput(
        f"Query parameter proba={quoted(value)} is not a boolean; use proba=true or proba=false"
    )


def parse_predict_request(body: bytes, sticky_key: str | None = None) -> PredictRequest:
    """Decode and shape-check a prediction request body.

    ``sticky_key`` names a top-level field allowed beside ``records``/``columns`` that carries the
    request's routing key (``{"records": [...], "customer_id": "c-42"}``).

    Example:
        >>> parse_predict_request(b'{"records": [{"x": 1.5}], "proba": true}').frame.shape
        (1, 1)
    """
    return read_json_request(body, lambda payload, exact: _request(payload, sticky_key, exact))


def read_json_request(
    body: bytes,
    build: Callable[[Any, bool], PredictRequest],
    hint: str = _SHAPES,
    *,
    nan_literals: bool = False,
) -> PredictRequest:
    """A request built by ``build(payload, exact)`` from a JSON body, integers kept exact.

    ``build`` gets the decoded body and whether its integers are exact; when the frame it builds (on first
    use) has a float column holding a value of 2**53 or more, the body is decoded again by the standard
    library and built again with ``exact=True``. ``hint`` ends the messages of refused bodies (the shapes
    to send); ``nan_literals`` also takes the ``NaN`` and ``Infinity`` tokens Python's ``json.dumps``
    writes (what MLflow's clients send), which strict JSON has not.

    Example:
        >>> build = lambda payload, exact: PredictRequest(records_frame(payload, exact), None)
        >>> read_json_request(b'[{"x": 1}]', build).frame.shape
        (1, 1)
    """
    if not body.strip():
        raise InvalidInput(f"The request body is empty. {hint}.")
    payload, exact = _decode(body, exact=False, hint=hint, nan_literals=nan_literals)
    request = build(payload, exact)
    if exact:
        return request
    first, build_first = request._frame, request._build

    def unrounded() -> pd.DataFrame:  # rare: a float column past 2**53, where a JSON integer may be rounded
        frame = first if first is not None else build_first()  # type: ignore[misc]
        if not _may_have_rounded(frame):
            return frame
        again = build(_decode(body, exact=True, hint=hint, nan_literals=nan_literals)[0], True)
        request.inputs, request.columns = again.inputs, again.columns
        return again.frame

    request._frame, request._build = None, unrounded
    return request


def rows_request(
    shape: str,
    value: Any,
    exact: bool,
    *,
    proba: bool | None = None,
    inputs: Any = None,
    key: str | None = None,
    hint: str = _SHAPES,
) -> PredictRequest:
    """The request for a records list (``shape="records"``) or a columns object (``"columns"``).

    Both are shape-checked here, with the messages of :func:`records_frame` and :func:`columns_frame`.
    When every value is a plain JSON scalar the rows stay plain column lists and the frame is built on
    first use; otherwise (a list or object in a cell) the frame is built now, so a value nested too deep
    is refused before routing.

    Example:
        >>> rows_request("columns", {"x": [1, 2]}, False).columns
        {'x': [1, 2]}
    """
    if shape == "records":
        _check_records(value, hint)
        columns = {name: [record[name] for record in value] for name in value[0]}
        rows = len(value)

        def frame() -> pd.DataFrame:
            return records_frame(value, exact, hint=hint)
    else:
        rows = _check_columns(value, hint)
        columns = value

        def frame() -> pd.DataFrame:
            return columns_frame(value, exact, hint=hint)

    inputs = value if inputs is None else inputs
    if all(set(map(type, values)) <= _SCALARS for values in columns.values()):
        return PredictRequest(frame, proba, inputs, key, columns=dict(columns), rows=rows)
    return PredictRequest(frame(), proba, inputs, key)


def _request(payload: Any, sticky_key: str | None, exact: bool) -> PredictRequest:
    if isinstance(payload, list):
        return rows_request("records", payload, exact)
    if not isinstance(payload, dict):
        raise InvalidInput(f"The request body is a JSON {json_type(payload)}, not an object. {_SHAPES}.")
    key: str | None = None
    if sticky_key and sticky_key in payload:
        key = _sticky_value(sticky_key, payload.pop(sticky_key))
    unknown = sorted(set(payload) - _KEYS)
    if unknown:
        raise InvalidInput(
            f"Unknown key(s) {quoted_list(unknown)} in the request body; "
            f"expected 'records' or 'columns' (and optionally 'proba'). {_SHAPES}.",
            details={"unknown": _names_detail(unknown)},
        )
    proba = payload.get("proba")
    if proba is not None and not isinstance(proba, bool):
        raise InvalidInput(f'"proba" must be true or false, got {json_type(proba)} {quoted(proba)}')
    if ("records" in payload) == ("columns" in payload):
        raise InvalidInput(f"The request body needs exactly one of 'records' or 'columns'. {_SHAPES}.")
    if "records" in payload:
        return rows_request("records", payload["records"], exact, proba=proba, key=key)
    return rows_request("columns", payload["columns"], exact, proba=proba, inputs=payload, key=key)


def _may_have_rounded(frame: pd.DataFrame) -> bool:
    """Whether a float column holds a value of 2**53 or more: a JSON integer may have been rounded there
    (pandas makes ints beside floats or nulls a float column; orjson reads ints past 64 bits as floats)."""
    try:
        dtypes, column = tuple(frame._mgr.get_dtypes()), frame._mgr.iget_values
    except AttributeError:  # pragma: no cover - a pandas without the private accessors
        dtypes, column = tuple(frame.dtypes), lambda i: frame.iloc[:, i].to_numpy()
    for position, dtype in enumerate(dtypes):
        if dtype.kind == "f":
            values = np.asarray(column(position))
            with np.errstate(invalid="ignore"):
                if bool((np.abs(values) >= _EXACT_FLOAT_INT).any()):
                    return True
    return False


def _decode(body: bytes, exact: bool, hint: str, nan_literals: bool = False) -> tuple[Any, bool]:
    """The JSON of ``body`` and whether its integers are exact; with ``exact``, read again by the standard
    library (ints of any size)."""
    try:
        payload = loads(body)  # orjson's rules for every body: no NaN literal, no lone surrogate
        return (json.loads(body), True) if exact else (payload, False)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError; stdlib: too deep
        if nan_literals and isinstance(exc, ValueError):
            lenient = _with_nan_literals(body)
            if lenient is not None:
                return lenient, True
        position = getattr(exc, "pos", None)
        where = f" at position {position}" if position is not None else ""
        reason = quoted(str(exc), 200)[1:-1] if isinstance(exc, ValueError) else "nested too deep"
        raise InvalidInput(
            f"Malformed JSON in the request body{where}: {reason}. {hint}.",
            details={"position": position},
        ) from None


def _with_nan_literals(body: bytes) -> Any:
    """The body read by the standard library, which takes ``NaN``/``Infinity``; None when that fails too
    or when it holds a lone surrogate (which orjson refuses, and no later step could encode)."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return None
    stack = [payload]
    while stack:  # a walk with a stack: the body may nest deep
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return None
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return payload


def _sticky_value(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float) or value is None:
        return str(value)
    raise InvalidInput(
        f"The routing key {name!r} must be a string or a number, got a JSON {json_type(value)} "
        f"{quoted(value)}"
    )


def _names_detail(names: list[str]) -> list[str]:
    """At most 20 names, each cut to 200 characters, for an error's ``details``."""
    return [n if len(n) <= _DETAIL_CHARS else f"{n[:_DETAIL_CHARS]}…" for n in names[:_DETAIL_ITEMS]]


def parse_arrow_request(body: bytes) -> PredictRequest:
    """An Arrow IPC stream body (one table, any number of record batches) as a DataFrame.

    Example:
        >>> import pyarrow as pa
        >>> sink = pa.BufferOutputStream()
        >>> table = pa.table({"x": [1.5, 2.5]})
        >>> with pa.ipc.new_stream(sink, table.schema) as writer:
        ...     writer.write_table(table)
        >>> parse_arrow_request(sink.getvalue().to_pybytes()).frame.shape
        (2, 1)
    """
    if not body:
        raise InvalidInput("The request body is empty: send an Arrow IPC stream with at least one row")
    try:
        table = pa.ipc.open_stream(pa.py_buffer(body)).read_all()
        table.validate(full=True)  # offsets and lengths inside their buffers before pandas reads them
    except _ARROW_ERRORS as exc:  # OSError: "Invalid IPC message", "Invalid flatbuffers message", ...
        raise InvalidInput(
            f"The request body is not a readable Arrow IPC stream ({quoted(str(exc), 200)[1:-1]}); write it "
            "with pyarrow.ipc.new_stream (the stream format, not the file format)"
        ) from None
    _check_arrow_schema(table.schema)
    try:  # ints with nulls stay Python ints (not float64, which would round past 2**53)
        frame = table.to_pandas(integer_object_nulls=True)
    except _ARROW_ERRORS as exc:
        raise InvalidInput(
            f"The Arrow stream's columns cannot be read as a table ({quoted(str(exc), 200)[1:-1]}); "
            "send numbers, strings, booleans, timestamps or lists of them"
        ) from None
    if not len(frame):
        raise InvalidInput("The Arrow stream holds no rows: there is nothing to predict")
    return PredictRequest(frame, None)


def _check_arrow_schema(schema: pa.Schema) -> None:
    names = schema.names
    if len(set(names)) != len(names):
        seen: set[str] = set()
        dupes = list(dict.fromkeys(n for n in names if n in seen or seen.add(n)))  # type: ignore[func-returns-value]
        raise InvalidInput(
            f"The Arrow stream has duplicate column names: {quoted_list(dupes)}; every column needs a "
            "name of its own",
            details={"duplicates": _names_detail(dupes)},
        )
    for field in schema:
        if _type_depth(field.type) > MAX_NESTING:
            raise InvalidInput(
                f"Column {quoted(field.name)} of the Arrow stream nests deeper than {MAX_NESTING} levels; "
                "send flatter values",
                details={"column": _names_detail([field.name])[0], "limit": MAX_NESTING},
            )


def _type_depth(data_type: pa.DataType) -> int:
    """How many list/struct/map levels an Arrow type nests (a scalar type: 0)."""
    children = [data_type.field(i).type for i in range(data_type.num_fields)]
    return 1 + max(map(_type_depth, children)) if children else 0


def wants_arrow(accept: str) -> bool:
    """Whether an ``Accept`` header asks for an Arrow stream answer.

    Example:
        >>> wants_arrow("application/vnd.apache.arrow.stream"), wants_arrow("application/json")
        (True, False)
    """
    return ARROW_STREAM in accept.lower()


def arrow_answer(answer: dict[str, Any]) -> bytes:
    """The answer's per-row fields as an Arrow stream: ``prediction`` and one ``proba_<class>`` per class.

    Example:
        >>> import pyarrow as pa
        >>> data = arrow_answer({"predictions": [0, 1]})
        >>> pa.ipc.open_stream(data).read_all().column_names
        ['prediction']
    """
    columns: dict[str, Any] = {"prediction": _column(answer["predictions"])}
    probabilities = answer.get("probabilities")
    if probabilities is not None:
        matrix = np.asarray(probabilities, dtype=float)
        classes = answer.get("classes") or list(range(matrix.shape[1]))
        for i, name in enumerate(classes):
            columns[f"proba_{name}"] = matrix[:, i]
    table = pa.table(columns)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _column(values: Any) -> Any:
    if isinstance(values, list) and values and isinstance(values[0], dict | list):
        return [str(v) for v in values]  # structured outputs travel as JSON-ish text
    return values


def records_frame(records: Any, exact: bool = False, *, hint: str = _SHAPES) -> pd.DataFrame:
    """The rows of a records list (objects with the same keys), shape-checked; ``hint`` ends messages.

    Example:
        >>> records_frame([{"x": 1.5, "s": "a"}]).shape
        (1, 2)
    """
    _check_records(records, hint)
    frame = _frame(lambda: pd.DataFrame.from_records(records, columns=list(records[0])), hint)
    _check_nesting(frame)
    if exact:
        frame = _exact_ints(frame, lambda name: [record[name] for record in records])
    return frame


def columns_frame(columns: Any, exact: bool = False, *, hint: str = _SHAPES) -> pd.DataFrame:
    """The rows of a columns object (one list per column, all as long), shape-checked.

    Example:
        >>> columns_frame({"x": [1.5, 2.5]}).shape
        (2, 1)
    """
    _check_columns(columns, hint)
    frame = _frame(lambda: pd.DataFrame(columns), hint)
    _check_nesting(frame)
    if exact:
        frame = _exact_ints(frame, lambda name: columns[name])
    return frame


def _check_records(records: Any, hint: str) -> None:
    """Refuse a records value that is not a non-empty list of objects with the same keys."""
    if not isinstance(records, list):
        raise InvalidInput(f'"records" must be a list of objects, got a JSON {json_type(records)}. {hint}.')
    if not records:
        raise InvalidInput(f'"records" is empty: there is nothing to predict. {hint}.')
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidInput(
                f"records[{i}] is a JSON {json_type(record)}, not an object of column: value. {hint}.",
                details={"index": i},
            )
    keys = records[0].keys()
    for i, record in enumerate(records):
        if record.keys() != keys:
            missing = sorted(set(keys) - set(record))
            extra = sorted(set(record) - set(keys))
            raise InvalidInput(
                f"records[{i}] has different columns from records[0] (missing [{quoted_list(missing)}], "
                f"extra [{quoted_list(extra)}]); every record needs the same columns "
                "(send null for a missing value)",
                details={"index": i, "missing": _names_detail(missing), "extra": _names_detail(extra)},
            )


def _check_columns(columns: Any, hint: str) -> int:
    """Refuse a columns object that is not one (same-length lists); its number of rows."""
    if not isinstance(columns, dict):
        raise InvalidInput(
            f'"columns" must be an object of column: [values], got a JSON {json_type(columns)}.'
        )
    if not columns:
        raise InvalidInput(f'"columns" is empty: there is nothing to predict. {hint}.')
    lengths: dict[str, int] = {}
    for name, values in columns.items():
        if not isinstance(values, list):
            raise InvalidInput(
                f"columns[{quoted(name)}] is a JSON {json_type(values)}, not a list of values (one per row)",
                details={"column": _names_detail([name])[0]},
            )
        lengths[name] = len(values)
    if len(set(lengths.values())) > 1:
        shown = list(lengths.items())[:_DETAIL_ITEMS]
        more = f", and {len(lengths) - len(shown)} more" if len(lengths) > len(shown) else ""
        raise InvalidInput(
            f"The columns have different lengths ({', '.join(f'{quoted(k)}: {v}' for k, v in shown)}{more}); "
            "every column needs one value per row",
            details={"lengths": {_names_detail([k])[0]: v for k, v in shown}},
        )
    rows = next(iter(lengths.values()))
    if not rows:
        raise InvalidInput(f'The columns in "columns" hold no rows: there is nothing to predict. {hint}.')
    return rows


def _frame(build: Callable[[], pd.DataFrame], hint: str) -> pd.DataFrame:
    try:
        return build()
    except (ValueError, TypeError, OverflowError) as exc:  # pandas refusing odd JSON values
        reason = quoted(str(exc), 200)[1:-1]
        raise InvalidInput(f"Cannot build a table from the request: {reason}. {hint}.") from None


def _check_nesting(frame: pd.DataFrame) -> None:
    """Refuse a cell nesting lists or objects deeper than ``MAX_NESTING`` (only object columns can)."""
    try:  # the block manager's dtypes and arrays: ~1 µs where frame.dtypes and iloc take ~100 µs
        dtypes, column = tuple(frame._mgr.get_dtypes()), frame._mgr.iget_values
    except AttributeError:  # pragma: no cover - a pandas without the private accessors
        dtypes, column = tuple(frame.dtypes), lambda i: frame.iloc[:, i].to_numpy()
    for position, dtype in enumerate(dtypes):
        if dtype != _OBJECT:
            continue
        values = column(position)
        if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty", "integer", "boolean"):
            continue
        for row, value in enumerate(values):
            if isinstance(value, list | dict) and _nests_deeper(value, MAX_NESTING):
                name = frame.columns[position]
                raise InvalidInput(
                    f"Row {row}, column {quoted(name)}: the value nests lists or objects deeper than "
                    f"{MAX_NESTING} levels; send flatter values",
                    details={"row": row, "column": _names_detail([str(name)])[0], "limit": MAX_NESTING},
                )


def _nests_deeper(value: list[Any] | dict[str, Any], limit: int) -> bool:
    """Whether ``value`` nests more than ``limit`` levels (walked with a stack: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, list | dict))
    return False


def _exact_ints(frame: pd.DataFrame, raw: Callable[[str], list[Any]]) -> pd.DataFrame:
    """Columns holding an integer past 2**53 as ``object`` columns of the values as sent (not floats)."""
    exact: dict[str, pd.Series] = {}
    for name in frame.columns:
        values = raw(name)
        if any(type(v) is int and not -_EXACT_FLOAT_INT <= v <= _EXACT_FLOAT_INT for v in values):
            exact[name] = pd.Series(values, index=frame.index, dtype=object, name=name)
    return frame.assign(**exact) if exact else frame


def parse_json_datetimes(frame: pd.DataFrame, signature: Signature | None) -> pd.DataFrame:
    """Parse ISO-8601 strings in the signature's datetime columns: JSON has no datetime type.

    Columns that do not parse are left as they are, for the signature check to name them.

    Example:
        >>> from shipyard.registry.signature import ColumnSpec
        >>> sig = Signature([ColumnSpec("at", "datetime64[ns]")])
        >>> parse_json_datetimes(pd.DataFrame({"at": ["2026-11-27T08:00:00"]}), sig).dtypes["at"]
        dtype('<M8[ns]')
    """
    if signature is None:
        return frame
    parsed: dict[str, pd.Series] = {}
    for spec in signature.inputs:
        if not spec.type.startswith("datetime64") or spec.name not in frame.columns:
            continue
        column = frame[spec.name]
        if pd.api.types.is_datetime64_any_dtype(column.dtype) or pd.api.types.is_numeric_dtype(column.dtype):
            continue
        if pd.api.types.infer_dtype(column, skipna=True) not in ("string", "empty"):
            continue  # numbers beside strings: left for the signature check to refuse by name
        try:
            parsed[spec.name] = pd.to_datetime(column, utc="," in spec.type, format="ISO8601").astype(
                spec.type
            )
        except (ValueError, TypeError, OverflowError):
            continue
    return frame.assign(**parsed) if parsed else frame


def json_type(value: Any) -> str:
    """How JSON names the type of a decoded value: null, boolean, number, string, array or object.

    Example:
        >>> json_type([1]), json_type(None)
        ('array', 'null')
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def jsonable(output: Any) -> Any:
    """A model output (numpy array, pandas Series or DataFrame, list) as plain JSON-able Python values.

    Example:
        >>> import numpy as np
        >>> jsonable(np.array([0, 1]))
        [0, 1]
    """
    if isinstance(output, pd.DataFrame):
        return output.to_dict(orient="records")
    if isinstance(output, pd.Series):
        return output.tolist()
    tolist = getattr(output, "tolist", None)
    if callable(tolist):  # numpy arrays and scalars: native Python values, nested as deep as needed
        return tolist()
    if isinstance(output, list | tuple):
        return [jsonable(v) for v in output]
    return output
