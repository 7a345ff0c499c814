"""The model server's OpenAPI document: the real request and answer bodies of every endpoint.

The routes read their bodies themselves (JSON records, columns or bare records, or an Arrow IPC stream),
so FastAPI cannot infer them; this module describes them. Once the served model is loaded, ``/predict``
and ``/explain`` describe its signature's columns (their JSON types, which may be null, that every one is
required and no other is taken) and show the model's own input example. Every error answer has the
shared shape (``shipyard.wire.handlers.ErrorOut``); ``/metrics`` is Prometheus text. ``/invocations``
(MLflow's scoring protocol) describes its four JSON shapes and CSV, typed by the same signature, and
refuses in MLflow's shape (``{"error_code", "message"}``).

Example:
    >>> predict_request(None)["requestBody"]["content"].keys()
    dict_keys(['application/json', 'application/vnd.apache.arrow.stream'])
"""

from __future__ import annotations

import json
from typing import Any

from shipyard.bounds import INT64_MAX, INT64_MIN
from shipyard.registry.flavors import LoadedModel, read_input_example
from shipyard.registry.signature import Signature, kind_of
from shipyard.serving.metrics import CONTENT_TYPE
from shipyard.serving.payload import ARROW_STREAM
from shipyard.wire.handlers import ErrorOut

__all__ = [
    "ADMIN_RESPONSES",
    "FEEDBACK_OPENAPI",
    "FEEDBACK_RESPONSES",
    "INVOCATIONS_RESPONSES",
    "METRICS_RESPONSES",
    "PING_RESPONSES",
    "STATUS_RESPONSES",
    "VERSION_RESPONSES",
    "explain_responses",
    "invocations_request",
    "predict_request",
    "predict_responses",
]


_ERROR_CODES = {
    400: "Malformed body: not JSON, the wrong shape, nested too deep, an unreadable Arrow stream",
    408: "The request body stopped arriving before it was complete",
    409: "The server cannot do this now (no prediction log for feedback)",
    413: "The body is over max_request_bytes (or too many rows for /explain)",
    415: "A content type other than JSON or Arrow",
    422: "The rows do not match the model's signature; details.problems lists each column",
    500: "An internal error (the server log has the traceback)",
    503: "The model is still loading (GET /ready is 503 too)",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorOut, "description": _ERROR_CODES[status]} for status in statuses}


_BODY_ERRORS = (400, 408, 413, 415, 500)
_ANY: dict[str, Any] = {}
_STATUS_OK = {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}
_READY = {
    "type": "object",
    "required": ["status", "deployment", "variants"],
    "properties": {
        "status": {"type": "string", "enum": ["ready", "loading"]},
        "deployment": {"type": "string"},
        "variants": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
        "waiting": {"type": "array", "items": {"type": "string"}},
        "model": {"type": ["string", "null"]},
        "version": {"type": ["string", "null"]},
    },
}
_ANSWER_FIELDS: dict[str, Any] = {
    "variant": {"type": "string"},
    "model": {"type": "string"},
    "version": {"type": "string"},
    "model_version": {"type": "string"},
    "request_id": {"type": "string"},
}
_PREDICT_ANSWER = {
    "type": "object",
    "required": ["predictions", *_ANSWER_FIELDS],
    "properties": {
        "predictions": {"type": "array", "description": "one per row: a label or a value"},
        "probabilities": {"type": "array", "items": {"type": "array", "items": {"type": ["number", "null"]}}},
        "classes": {"type": ["array", "null"]},
        **_ANSWER_FIELDS,
    },
}
_EXPLAIN_ANSWER = {
    "type": "object",
    "required": ["method", "attributions", "variant", "model", "version", "request_id"],
    "properties": {
        "method": {"type": "string", "enum": ["shap", "occlusion"]},
        "target": {"type": "string"},
        "base_values": {"type": "array", "items": {"type": ["number", "null"]}},
        "attributions": {"type": "array", "items": {"type": "object"}},
        "baseline": {"type": "object", "description": "occlusion: the value each feature is set to"},
        **{k: v for k, v in _ANSWER_FIELDS.items() if k != "model_version"},
    },
}

STATUS_RESPONSES: dict[str, dict[int | str, dict[str, Any]]] = {
    "health": {200: {"content": {"application/json": {"schema": _STATUS_OK}}}},
    "ready": {
        200: {"content": {"application/json": {"schema": _READY}}},
        503: {
            "description": "Some live variant is still loading",
            "content": {"application/json": {"schema": _READY}},
        },
    },
    "info": {200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
}
"""Answers of ``/health``, ``/ready`` and ``/info``."""

METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": f"Prometheus text exposition ({CONTENT_TYPE})",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}
"""``/metrics``: Prometheus text (``Content-Type`` :data:`~shipyard.serving.metrics.CONTENT_TYPE`)."""

ADMIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "What changed and what failed",
        "content": {"application/json": {"schema": {"type": "object", "required": ["changed", "errors"]}}},
    },
    **_errors(500),
}
"""``/admin/reload``."""

_FEEDBACK_ITEM = {
    "type": "object",
    "required": ["request_id", "label"],
    "additionalProperties": False,
    "properties": {
        "request_id": {"type": "string", "minLength": 1},
        "label": {"description": "the ground truth: any JSON value"},
        "row": {"type": ["integer", "null"], "minimum": 0, "maximum": INT64_MAX},
    },
}
_FEEDBACK_ITEMS = {"type": "array", "items": _FEEDBACK_ITEM, "minItems": 1, "maxItems": 10_000}
FEEDBACK_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        {
                            "type": "object",
                            "required": ["feedback"],
                            "additionalProperties": False,
                            "properties": {"feedback": _FEEDBACK_ITEMS},
                        },
                        _FEEDBACK_ITEMS,
                        _FEEDBACK_ITEM,
                    ]
                },
                "example": {"request_id": "4f1c…", "label": 1, "row": 0},
            }
        },
    },
}
"""``/feedback``'s request body (its answers are declared on the route)."""

FEEDBACK_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Accepted into the feedback log",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["accepted"],
                    "properties": {"accepted": {"type": "integer"}},
                }
            }
        },
    },
    **_errors(400, 408, 409, 413, 415, 500),
}


def predict_responses() -> dict[int | str, dict[str, Any]]:
    """``/predict``'s answers: JSON (or an Arrow stream when ``Accept`` asks for one) and the errors."""
    return {
        200: {
            "description": "One prediction per row",
            "content": {
                "application/json": {"schema": _PREDICT_ANSWER},
                ARROW_STREAM: {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **_errors(*_BODY_ERRORS, 422, 503),
    }


def explain_responses() -> dict[int | str, dict[str, Any]]:
    """``/explain``'s answers."""
    return {
        200: {
            "description": "Attributions per row",
            "content": {"application/json": {"schema": _EXPLAIN_ANSWER}},
        },
        **_errors(*_BODY_ERRORS, 422, 503),
    }


def _column_schema(type_name: str, nullable: bool) -> dict[str, Any]:
    kind = kind_of(type_name)
    schema: dict[str, Any]
    if kind == "int":
        schema = {"type": "integer", "minimum": INT64_MIN if type_name.startswith("int") else 0}
        schema["maximum"] = INT64_MAX
    elif kind == "float":
        schema = {"type": "number"}
    elif kind == "bool":
        schema = {"type": "boolean"}
    elif kind in ("string", "category"):
        schema = {"type": "string"}
    elif kind in ("datetime", "date"):
        schema = {"type": "string", "format": "date-time" if kind == "datetime" else "date"}
    else:
        return {}
    if nullable:
        schema["type"] = [schema["type"], "null"]
    return schema


def _shapes(signature: Signature | None) -> dict[str, Any]:
    """The three JSON shapes, with the signature's columns when there is one."""
    if signature is None:
        record: dict[str, Any] = {"type": "object", "minProperties": 1}
        columns: dict[str, Any] = {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {"type": "array"},
        }
    else:
        cells = {c.name: _column_schema(c.type, c.nullable) for c in signature.inputs}
        record = {
            "type": "object",
            "required": list(cells),
            "additionalProperties": False,
            "properties": cells,
        }
        columns = {
            "type": "object",
            "required": list(cells),
            "additionalProperties": False,
            "properties": {
                name: {"type": "array", "items": cell, "minItems": 1} for name, cell in cells.items()
            },
        }
    records = {"type": "array", "items": record, "minItems": 1}
    proba = {"type": "boolean", "description": "also answer class probabilities"}
    return {
        "oneOf": [
            {
                "type": "object",
                "required": ["records"],
                "additionalProperties": False,
                "properties": {"records": records, "proba": proba},
            },
            {
                "type": "object",
                "required": ["columns"],
                "additionalProperties": False,
                "properties": {"columns": columns, "proba": proba},
            },
            records,
        ]
    }


def predict_request(model: LoadedModel | None) -> dict[str, Any]:
    """The ``requestBody`` and query parameters of ``/predict`` and ``/explain`` for ``model`` (None: not
    loaded yet), with the model's own input example when it has one.

    Example:
        >>> sorted(predict_request(None))
        ['parameters', 'requestBody']
    """
    example = read_input_example(model.path) if model is not None else None
    if example is not None:  # rows without nulls: the OpenAPI document drops null values
        example = example.dropna() if len(example.dropna()) else example
    rows = json.loads(example.head(2).to_json(orient="records")) if example is not None else []
    signature = model.signature if model is not None else None
    return {
        "parameters": [
            {
                "name": "proba",
                "in": "query",
                "required": False,
                "schema": {"type": "boolean"},
                "description": "also answer class probabilities",
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": _shapes(signature),
                    "example": {"records": rows or [{"feature": 1.0}]},
                },
                ARROW_STREAM: {
                    "schema": {"type": "string", "format": "binary", "description": "an Arrow IPC stream"}
                },
            },
        },
    }


# -- MLflow's scoring protocol (/invocations, /ping, /version) ---------------------------------------------
_MLFLOW_ERROR = {
    "type": "object",
    "required": ["error_code", "message"],
    "properties": {
        "error_code": {"type": "string", "examples": ["BAD_REQUEST"]},
        "message": {"type": "string"},
    },
}
_MLFLOW_ERROR_CODES = {
    400: "A bad body (MLflow's BAD_REQUEST): not JSON or CSV that reads, not one of the four shapes, or rows "
    "the model's signature refuses",
    408: "The request body stopped arriving before it was complete",
    413: "The body is over max_request_bytes",
    415: "A content type other than JSON or CSV, or a charset other than UTF-8",
    503: "The model is still loading (TEMPORARILY_UNAVAILABLE)",
}


def _mlflow_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {
            "description": _MLFLOW_ERROR_CODES[status],
            "content": {"application/json": {"schema": _MLFLOW_ERROR}},
        }
        for status in statuses
    }


INVOCATIONS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "One prediction per row, in MLflow's shape",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["predictions"],
                    "properties": {"predictions": {"type": "array", "description": "one per row"}},
                }
            }
        },
    },
    **_mlflow_errors(400, 408, 413, 415, 503),
    500: {
        "description": "An internal error (the server log has the traceback)",
        "content": {
            "application/json": {
                "schema": {"anyOf": [_MLFLOW_ERROR, {"$ref": "#/components/schemas/ErrorOut"}]}
            }
        },
    },
}
"""``/invocations``: ``{"predictions": [...]}``, and refusals in MLflow's shape."""

PING_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Every live variant is loaded (the body is a newline, as MLflow's)",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    **_mlflow_errors(503),
}
"""``/ping``: MLflow's health probe (``/health`` answers too, and is liveness only)."""

VERSION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The Shipyard version serving (MLflow's server answers its own version)",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
}
"""``/version``."""


def _mlflow_shapes(signature: Signature | None) -> dict[str, Any]:
    """The four JSON shapes of MLflow's scoring protocol, typed by the signature when there is one.

    Columns the model does not take are allowed (``/invocations`` drops them, as MLflow ignores them); a
    record may leave out a nullable column (read as null) when another record has it.
    """
    names = [c.name for c in signature.inputs] if signature is not None else []
    cells = {c.name: _column_schema(c.type, c.nullable) for c in signature.inputs} if signature else {}
    required = [c.name for c in signature.inputs if not c.nullable] if signature else []
    record: dict[str, Any] = {"type": "object", "minProperties": 1, "properties": cells, "required": required}
    one_row: dict[str, Any] = {"type": "object", "minProperties": 1, "properties": cells, "required": names}
    columns: dict[str, Any] = {
        "type": "object",
        "minProperties": 1,
        "properties": {n: {"type": "array", "items": cell, "minItems": 1} for n, cell in cells.items()},
        "required": names,
        "additionalProperties": {"type": "array", "minItems": 1},
    }
    records = {"type": "array", "items": record, "minItems": 1}
    tensors: list[dict[str, Any]] = [records, columns, one_row]
    if names:  # unnamed rows take the signature's names, in order
        width = len(names)
        rows = {"type": "array", "items": {"type": "array", "minItems": width, "maxItems": width}}
        tensors.append({**rows, "minItems": 1})
    if len(names) == 1:  # a one-column model takes a list of its values
        tensors.append({"type": "array", "items": cells[names[0]], "minItems": 1})
    split = {
        "type": "object",
        "required": ["data"],
        "additionalProperties": False,
        "properties": {
            "columns": {
                "type": ["array", "null"],
                "description": "column names; left out: the signature's, in order",
                "minItems": 1,
                "uniqueItems": True,
                "items": {"type": ["string", "integer"]},
            },
            "data": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "array"} if len(names) > 1 else {},
                "description": "rows, one value per column",
            },
            "index": {"type": ["array", "null"], "description": "row labels, one per row (ignored)"},
        },
    }
    bodies = {
        "dataframe_split": split,
        "dataframe_records": records,
        "instances": {"anyOf": tensors},
        "inputs": {"anyOf": tensors},
    }
    params = {"type": ["object", "null"], "description": "inference parameters (taken and ignored)"}
    return {
        "oneOf": [
            {
                "type": "object",
                "required": [key],
                "additionalProperties": False,
                "properties": {key: body, "params": params},
            }
            for key, body in bodies.items()
        ]
    }


def invocations_request(model: LoadedModel | None) -> dict[str, Any]:
    """The ``requestBody`` of ``/invocations`` for ``model`` (None: not loaded yet): MLflow's JSON shapes
    and CSV, with the model's own input example in each.

    Example:
        >>> sorted(invocations_request(None)["requestBody"]["content"])
        ['application/json', 'text/csv']
    """
    example = read_input_example(model.path) if model is not None else None
    if example is not None:
        example = example.dropna() if len(example.dropna()) else example
        example = example.head(2)
    frame = json.loads(example.to_json(orient="split", index=False)) if example is not None else None
    columns, data = (frame["columns"], frame["data"]) if frame else (["feature"], [[1.0]])
    records = [dict(zip(columns, row, strict=True)) for row in data]
    csv = ",".join(columns) + "\n" + "".join(",".join(_csv_cell(v) for v in row) + "\n" for row in data)
    examples = {
        "dataframe_split": {"dataframe_split": {"columns": columns, "data": data}},
        "dataframe_records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs": {"inputs": {c: [row[i] for row in data] for i, c in enumerate(columns)}},
    }
    signature = model.signature if model is not None else None
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": _mlflow_shapes(signature),
                    "examples": {name: {"value": value} for name, value in examples.items()},
                },
                "text/csv": {
                    "schema": {"type": "string", "description": "a header row, then one line per row"},
                    "example": csv,
                },
            },
        },
    }


def _csv_cell(value: Any) -> str:
    text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ',"\n') else text
