"""MLflow's scoring protocol (``POST /invocations``): the bodies ``mlflow models serve`` takes, read into the
rows ``/predict`` takes, and MLflow's answer and error shapes.

A JSON body (``Content-Type: application/json``) holds exactly one of four keys::

    {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}  # pandas' "split" orient
    {"dataframe_records": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}            # pandas' "records" orient
    {"instances": [{"a": 1, "b": 2}, ...]}                                  # TF serving: rows
    {"inputs": {"a": [1, 3], "b": [2, 4]}}                                  # TF serving: columns

and optionally ``"params"`` (an object; taken and ignored, as MLflow ignores it for a model whose
``predict`` takes none). ``instances`` and ``inputs`` each take records, a columns object, one row as an
object of single values, rows as lists of values, or (for a one-column model) a list of values. Rows
without names (``[[1, 2], ...]``, ``dataframe_split`` without ``columns``) take the signature's column
names in order. A record without a key has null there, as pandas reads it. ``NaN`` and ``Infinity``
(which Python's ``json.dumps``, and so MLflow's client, writes) are read as floats.

A CSV body (``Content-Type: text/csv``) has a header row naming the columns, then one line per row; each
value is typed by the signature (int, float, bool, text), a column the signature does not name by its
values. An empty field is null; in a numeric or boolean column so are pandas' markers ``NA``, ``NaN``,
``null``, ``None``. A first column with an empty name is the index ``DataFrame.to_csv()`` writes, and is
dropped.

Which signature: that of the deployment's first live variant (the model ``GET /info`` describes); each
variant's own signature then checks the rows, as on ``/predict``.

Refusals have MLflow's shape, ``{"error_code": "BAD_REQUEST", "message": "..."}``: 400 for any bad body
(malformed, the wrong shape, rows the signature refuses), 413, 415 and 408 keep their status, 503
(``TEMPORARILY_UNAVAILABLE``) while the model loads.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException

from shipyard.errors import InvalidInput, ShipyardError
from shipyard.quoting import quoted, quoted_list
from shipyard.registry.signature import Signature, kind_of
from shipyard.serving.http import MAX_ERROR_MESSAGE, JSONResponse
from shipyard.serving.payload import (
    PredictRequest,
    columns_frame,
    json_type,
    read_json_request,
    rows_request,
)

__all__ = [
    "CSV",
    "FORMATS",
    "HINT",
    "mlflow_error",
    "parse_csv_request",
    "parse_invocation",
    "parse_invocation_json",
]

CSV = "text/csv"
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
"""The keys of a JSON body, exactly one of which it holds."""
PARAMS = "params"
HINT = (
    'Send one of {"dataframe_split": {"columns": [...], "data": [[...], ...]}}, '
    '{"dataframe_records": [{"column": value, ...}, ...]}, {"instances": [...]} or {"inputs": ...} '
    "as application/json (MLflow's scoring protocol), or a CSV table with a header row as text/csv"
)
_SPLIT_KEYS = {"columns", "data", "index"}
_NA = frozenset({"", "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "NULL", "null", "None", "<NA>"})
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(
    r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(inf|infinity|nan)", re.IGNORECASE
)
_MAX_INT_DIGITS = 4_000  # int() refuses text past 4300 digits; longer is read as a float (and refused)
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})
_MLFLOW_CODES = {503: "TEMPORARILY_UNAVAILABLE", 404: "RESOURCE_DOES_NOT_EXIST"}

Rows = tuple[str, Any]
"""("records", [{...}, ...]) or ("columns", {name: [...]}): the two shapes ``/predict`` reads."""


def parse_invocation(body: bytes, media: str, signature: Signature | None) -> PredictRequest:
    """An ``/invocations`` body (JSON, or CSV when ``media`` is ``text/csv``) as a prediction request.

    Example:
        >>> parse_invocation(b'{"inputs": {"x": [1.5, 2.5]}}', "application/json", None).frame.shape
        (2, 1)
    """
    if media == CSV:
        return parse_csv_request(body, signature)
    return parse_invocation_json(body, signature)


def parse_invocation_json(body: bytes, signature: Signature | None) -> PredictRequest:
    """A JSON body of MLflow's scoring protocol as the rows ``/predict`` takes (``InvalidInput``: why not).

    Example:
        >>> body = b'{"dataframe_split": {"columns": ["x"], "data": [[1.5], [2.5]]}}'
        >>> parse_invocation_json(body, None).inputs
        {'columns': {'x': [1.5, 2.5]}}
    """

    def build(payload: Any, exact: bool) -> PredictRequest:
        return _request(_rows(payload, signature), exact)

    return read_json_request(body, build, HINT, nan_literals=True)


def _request(rows: Rows, exact: bool) -> PredictRequest:
    shape, value = rows
    if shape == "records":
        return rows_request("records", value, exact, hint=HINT)
    return rows_request("columns", value, exact, inputs={"columns": value}, hint=HINT)


def _rows(payload: Any, signature: Signature | None) -> Rows:
    if not isinstance(payload, dict):
        wrap = ' (wrap a list of rows as {"dataframe_records": [...]} or {"inputs": [...]})'
        raise InvalidInput(
            f"The request body is a JSON {json_type(payload)}, not an object"
            f"{wrap if isinstance(payload, list) else ''}. {HINT}."
        )
    unknown = sorted(set(payload) - {*FORMATS, PARAMS})
    if unknown:
        raise InvalidInput(
            f"Unknown key(s) {quoted_list(unknown)} in the request body; it takes exactly one of "
            f"{', '.join(FORMATS)}, and optionally {PARAMS}. {HINT}."
        )
    given = [key for key in FORMATS if key in payload]
    if len(given) != 1:
        found = f"{len(given)} ({', '.join(given)})" if given else "none"
        raise InvalidInput(
            f"The request body needs exactly one of {', '.join(FORMATS)}; it has {found}. {HINT}."
        )
    params = payload.get(PARAMS)
    if params is not None and not isinstance(params, dict):
        raise InvalidInput(
            f'"params" must be an object of parameter: value, got a JSON {json_type(params)} {quoted(params)}'
        )
    key = given[0]
    if key == "dataframe_split":
        return _split(payload[key], signature)
    if key == "dataframe_records":
        if not isinstance(payload[key], list):
            raise InvalidInput(
                f'"dataframe_records" must be a list of objects (one per row), got a JSON '
                f"{json_type(payload[key])}. {HINT}."
            )
        return _records(payload[key], key)
    return _tensor(payload[key], key, signature)


def _split(split: Any, signature: Signature | None) -> Rows:
    """pandas' split orient: ``columns`` (optional), ``data`` (rows as lists), ``index`` (ignored)."""
    shape = '{"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}'
    if not isinstance(split, dict):
        raise InvalidInput(f'"dataframe_split" must be an object like {shape}, got a JSON {json_type(split)}')
    unknown = sorted(set(split) - _SPLIT_KEYS)
    if unknown or "data" not in split:
        what = f"has unknown key(s) {quoted_list(unknown)}" if unknown else 'has no "data"'
        raise InvalidInput(
            f'"dataframe_split" {what}; it takes "data" and optionally "columns" and "index": {shape}'
        )
    data = split["data"]
    if not isinstance(data, list) or not data:
        got = f"a JSON {json_type(data)}" if not isinstance(data, list) else "an empty list"
        raise InvalidInput(f'"dataframe_split.data" must be a non-empty list of rows (lists), got {got}')
    columns = split.get("columns")
    where = "dataframe_split.data"
    if columns is None:
        names = _positional_names(signature, len(data[0]) if isinstance(data[0], list) else 1, where)
    else:
        names = _split_columns(columns)
    index = split.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != len(data)):
        got = f"{len(index)} labels" if isinstance(index, list) else f"a JSON {json_type(index)}"
        raise InvalidInput(
            f'"dataframe_split.index" must be a list with one label per row ({len(data)}), got {got}; '
            "or leave it out"
        )
    return "columns", _columns_of(data, names, where)


def _split_columns(columns: Any) -> list[str]:
    if not isinstance(columns, list) or not columns:
        got = f"a JSON {json_type(columns)}" if not isinstance(columns, list) else "an empty list"
        raise InvalidInput(f'"dataframe_split.columns" must be a non-empty list of column names, got {got}')
    names: list[str] = []
    for i, name in enumerate(columns):
        if isinstance(name, bool) or not isinstance(name, str | int):
            raise InvalidInput(
                f"dataframe_split.columns[{i}] is a JSON {json_type(name)} {quoted(name)}, not a column name "
                "(a string)"
            )
        names.append(str(name))
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidInput(
            f'"dataframe_split.columns" names {quoted_list(repeated)} more than once; each column once'
        )
    return names


def _records(records: list[Any], where: str) -> Rows:
    """Records, a missing key read as null (as pandas reads them)."""
    if not records:
        raise InvalidInput(f'"{where}" is empty: there is nothing to predict. {HINT}.')
    keys: dict[str, None] = {}
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidInput(
                f"{where}[{i}] is a JSON {json_type(record)}, not an object of column: value; every row "
                "of a list of records must be one"
            )
        keys.update(dict.fromkeys(record))
    if any(len(record) != len(keys) for record in records):
        records = [{key: record.get(key) for key in keys} for record in records]
    return "records", records


def _tensor(value: Any, where: str, signature: Signature | None) -> Rows:
    """TF serving's ``instances`` / ``inputs``: records, rows, one column's values, columns or one row."""
    if isinstance(value, dict):
        return _tensor_object(value, where)
    if not isinstance(value, list) or not value:
        got = f"a JSON {json_type(value)}" if not isinstance(value, list) else "an empty list"
        raise InvalidInput(
            f'"{where}" must be a non-empty list of rows or an object of columns, got {got}. {HINT}.'
        )
    if isinstance(value[0], dict):
        return _records(value, where)
    if isinstance(value[0], list):
        names = _positional_names(signature, len(value[0]), where)
        return "columns", _columns_of(value, names, where)
    for i, item in enumerate(value):
        if isinstance(item, dict | list):
            raise InvalidInput(
                f"{where}[{i}] is a JSON {json_type(item)} but {where}[0] is a single value; send a list of "
                "single values (a one-column model), of rows (lists) or of records (objects), not a mix"
            )
    if signature is None or len(signature.inputs) != 1:
        takes = f"takes {len(signature.inputs)} columns" if signature is not None else "has no signature"
        raise InvalidInput(
            f'"{where}" is a list of single values, which only a one-column model takes; this model {takes}. '
            f'Send rows: {{"{where}": [[...], ...]}} or records: {{"{where}": [{{"column": value}}, ...]}}'
        )
    return "columns", {signature.inputs[0].name: value}


def _tensor_object(value: dict[str, Any], where: str) -> Rows:
    if not value:
        raise InvalidInput(f'"{where}" is an empty object: there is nothing to predict. {HINT}.')
    lists = [name for name, v in value.items() if isinstance(v, list)]
    if not lists:  # one row: {"a": 1, "b": "x"}
        return "records", [value]
    if len(lists) != len(value):
        single = next(name for name in value if name not in lists)
        raise InvalidInput(
            f"{where}[{quoted(single)}] is a single value but {where}[{quoted(lists[0])}] is a list; "
            "send every column as a list of values (one per row), or every column as one value (one row)"
        )
    lengths = {name: len(v) for name, v in value.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{quoted(k)}: {n}" for k, n in list(lengths.items())[:10])
        raise InvalidInput(
            f'The columns of "{where}" have different lengths ({shown}); every column needs one value per row'
        )
    if not lengths[lists[0]]:
        raise InvalidInput(f'The columns of "{where}" hold no rows: there is nothing to predict. {HINT}.')
    return "columns", value


def _positional_names(signature: Signature | None, width: int, where: str) -> list[str]:
    """The names of unnamed rows of ``width`` values: the signature's columns, in order."""
    if signature is None:
        raise InvalidInput(
            f'The rows of "{where}" have no column names, and this model has no signature to name them by; '
            'send records ({"dataframe_records": [{"column": value}, ...]}) or dataframe_split with "columns"'
        )
    names = signature.names
    if width != len(names):
        raise InvalidInput(
            f"{where}[0] has {width} value(s) but the model takes {len(names)} column(s) "
            f"({quoted_list(names, limit=10)}, in that order); send one value per column, or name them"
        )
    return names


def _columns_of(rows: list[Any], names: list[str], where: str) -> dict[str, list[Any]]:
    """Rows (lists, one value per name) as columns; a one-column table may give bare values."""
    if len(names) == 1 and not any(isinstance(row, list) for row in rows):
        return {names[0]: list(rows)}
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise InvalidInput(
                f"{where}[{i}] is a JSON {json_type(row)}, not a row (a list of {len(names)} values)"
            )
        if len(row) != len(names):
            raise InvalidInput(
                f"{where}[{i}] has {len(row)} value(s) but there are {len(names)} columns "
                f"({quoted_list(names, limit=10)}); every row needs one value per column"
            )
    return {name: [row[j] for row in rows] for j, name in enumerate(names)}


# -- CSV ---------------------------------------------------------------------------------------------------
def parse_csv_request(body: bytes, signature: Signature | None) -> PredictRequest:
    """A CSV body (header row, then rows) as a prediction request, values typed by ``signature``.

    Example:
        >>> from shipyard.registry.signature import ColumnSpec
        >>> sig = Signature([ColumnSpec("n", "int64"), ColumnSpec("s", "string")])
        >>> parse_csv_request(b"n,s\\n1,a\\n2,b\\n", sig).inputs
        {'columns': {'n': [1, 2], 's': ['a', 'b']}}
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"The CSV body is not UTF-8 text (byte {exc.start} cannot be read); save it as UTF-8"
        ) from None
    if not text.strip():
        raise InvalidInput(
            "The CSV body is empty: send a header row naming the columns, then one line per row "
            "(pandas: df.to_csv(index=False))"
        )
    header, lines = _csv_lines(text)
    drop_index = header[0] == "" and len(header) > 1  # DataFrame.to_csv() writes the index first, unnamed
    names = header[1:] if drop_index else header
    _check_header(names)
    if not lines:
        raise InvalidInput(
            f"The CSV body has a header ({quoted_list(names, limit=10)}) but no rows: "
            "there is nothing to predict"
        )
    specs = {spec.name: spec.type for spec in signature.inputs} if signature is not None else {}
    columns: dict[str, list[Any]] = {}
    for j, name in enumerate(names, start=1 if drop_index else 0):
        texts = [(line, fields[j]) for line, fields in lines]
        type_name = specs.get(name)
        columns[name] = _typed(name, type_name, texts) if type_name else _inferred(texts)
    return PredictRequest(columns_frame(columns, exact=True, hint=HINT), None, {"columns": columns})


def _csv_lines(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the rows with their line numbers (blank lines skipped), each as long as the header."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    try:
        for fields in reader:
            if not fields or fields == [""]:
                continue
            if header is None:
                header = fields
                continue
            if len(fields) != len(header):
                raise InvalidInput(
                    f"CSV line {reader.line_num} has {len(fields)} field(s) but the header names "
                    f"{len(header)}; every line needs one value per column (an empty field for a missing one)"
                )
            rows.append((reader.line_num, fields))
    except csv.Error as exc:
        raise InvalidInput(f"The CSV body does not read on line {reader.line_num}: {exc}") from None
    assert header is not None  # the body is not blank
    return header, rows


def _check_header(names: list[str]) -> None:
    blank = [i + 1 for i, name in enumerate(names) if not name.strip()]
    if blank:
        raise InvalidInput(
            f"The CSV header has no name for column(s) {blank}; name every column in the first line"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidInput(f"The CSV header names {quoted_list(repeated)} more than once; each column once")


def _typed(name: str, type_name: str, texts: list[tuple[int, str]]) -> list[Any]:
    """The values of a column the signature types: ints, floats, booleans, or text (as written)."""
    kind = kind_of(type_name)
    read = _READERS.get(kind)
    if read is None:  # text, categories, dates, objects: as written; empty is null
        return [text if text != "" else None for _line, text in texts]
    values: list[Any] = []
    for line, text in texts:
        raw = text.strip()
        if raw in _NA:
            values.append(None)
            continue
        value = read(raw)
        if value is None:
            raise InvalidInput(
                f"CSV line {line}, column {quoted(name)}: {quoted(text)} is not {_EXPECTED[kind]} "
                f"(the model's signature types {quoted(name)} as {type_name}); fix the value, or leave "
                "the field empty for a missing one"
            )
        values.append(value)
    return values


def _int(text: str) -> int | float:
    return int(text) if len(text) <= _MAX_INT_DIGITS else float(text)


def _read_int(text: str) -> int | float | None:
    if _INT.fullmatch(text):
        return _int(text)
    return float(text) if _FLOAT.fullmatch(text) else None  # 3.0: the signature takes whole floats


def _read_float(text: str) -> float | None:
    return float(text) if _FLOAT.fullmatch(text) else None


def _read_bool(text: str) -> bool | None:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    return False if lowered in _FALSE else None


_READERS: dict[str, Callable[[str], Any]] = {"int": _read_int, "float": _read_float, "bool": _read_bool}
_EXPECTED = {"int": "an integer", "float": "a number", "bool": "true or false"}


def _inferred(texts: list[tuple[int, str]]) -> list[Any]:
    """A column the signature does not type: integers, else numbers, else booleans, else text."""
    stripped = [text.strip() for _line, text in texts]
    present = [text for text in stripped if text not in _NA]
    read: Callable[[str], Any] | None = None
    if all(_INT.fullmatch(text) for text in present):
        read = _int
    elif all(_FLOAT.fullmatch(text) for text in present):
        read = float
    elif all(text.lower() in ("true", "false") for text in present):
        read = _read_bool
    if read is None:
        return [text if text != "" else None for _line, text in texts]
    return [read(text) if text not in _NA else None for text in stripped]


# -- answers -----------------------------------------------------------------------------------------------
def mlflow_error(exc: ShipyardError | StarletteHTTPException) -> JSONResponse:
    """The refusal in MLflow's shape: ``{"error_code", "message"}``, 400 ``BAD_REQUEST`` for a bad body.

    Example:
        >>> mlflow_error(InvalidInput("no rows")).body
        b'{"error_code":"BAD_REQUEST","message":"no rows"}'
    """
    if isinstance(exc, ShipyardError):
        status, message = exc.http_status, exc.message
    else:
        status, message = exc.status_code, str(exc.detail)
    if status == 422:  # the signature refused the rows: MLflow answers a schema failure as a bad request
        status = 400
    code = _MLFLOW_CODES.get(status, "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR")
    if len(message) > MAX_ERROR_MESSAGE:
        message = f"{message[:MAX_ERROR_MESSAGE]}… ({len(message)} characters)"
    return JSONResponse({"error_code": code, "message": message}, status_code=status)
