"""MLflow 3's logged models (``/logged-models/...``, ``/runs/outputs``) over Shipyard's store.

MLflow's client logs a model (``mlflow.<flavor>.log_model``, ``autolog``) as a *logged model*: it
creates one, records it as an output of the run, uploads the model folder to the model's
``artifact_uri`` and finalizes it ``READY``. On Shipyard a logged model belongs to the run that logs
it (``KeepsLoggedModels``), and its ``artifact_uri`` is a folder of that run's artifacts,
``mlflow-artifacts:/<experiment_id>/<run_id>/artifacts/models/<model_id>``: the folder is uploaded
through the artifact proxy into the content-addressed blob store as the run's artifacts, visible in
``shipyard runs``, the web UI and the SDK, and registered from there (``models:/<model_id>`` and
``runs:/<run_id>/<name>`` are accepted sources of the registry API, which resolves them with
:func:`registrable_files`).

Differences from MLflow, each refused with its reason: a logged model needs a source run
(``mlflow.initialize_logged_model`` or ``mlflow.set_active_model`` without a run are refused); it is
an output of its own run only; params keep their first value. Metric points that name a logged
model (``log_batch`` with ``model_id``) are the model's and the run's; a point the run's history
already holds is not added to it again (MLflow logs the run's metrics again, with the model's id,
when it logs a model). See ``docs/mlflow.md``.
"""

from __future__ import annotations

import functools
import math
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from shipyard.bounds import INT64_MAX, INT64_MIN
from shipyard.entities import LoggedModel, LoggedModelMetric, LoggedModelStatus, Run, clean_artifact_path
from shipyard.errors import NotFound
from shipyard.server.access import actor_for, require_grant
from shipyard.server.mlflow import DEFAULT_EXPERIMENT
from shipyard.server.mlflow import messages as m
from shipyard.server.mlflow.artifacts import directory
from shipyard.server.mlflow.validation import check_param, check_tag
from shipyard.server.mlflow.wire import (
    ERROR_RESPONSES,
    MlflowApiError,
    MlflowRoute,
    json_answer,
    offset_of,
    page_token,
)
from shipyard.server.state import StoreDep
from shipyard.store import KeepsLoggedModels, Store
from shipyard.store.mlflow_filter import MlflowComparison, artifact_uri, parse_logged_model_filter

__all__ = [
    "MODEL_ID",
    "is_model_id",
    "logged_model_json",
    "model_id_in",
    "model_points",
    "record_model_points",
    "registrable_files",
    "router",
    "run_outputs",
]

router = APIRouter(route_class=MlflowRoute, tags=["mlflow"], responses=ERROR_RESPONSES)

MODEL_ID = re.compile(r"m-[0-9a-f]{32}")
"""A logged model's id, as MLflow makes them: ``m-`` and 32 hex digits."""
MAX_RESULTS = 50_000
_BAD_NAME_CHARS = ("/", ":", ".", "%", '"', "'")  # MLflow's rule for logged model names
_STATUS_NUMBERS = {
    0: "LOGGED_MODEL_STATUS_UNSPECIFIED",
    1: "LOGGED_MODEL_PENDING",
    2: "LOGGED_MODEL_READY",
    3: "LOGGED_MODEL_UPLOAD_FAILED",
}
_WIRE_STATUS = {
    LoggedModelStatus.PENDING: "LOGGED_MODEL_PENDING",
    LoggedModelStatus.READY: "LOGGED_MODEL_READY",
    LoggedModelStatus.FAILED: "LOGGED_MODEL_UPLOAD_FAILED",
}
_STATUS_OF_WIRE = {v: k for k, v in _WIRE_STATUS.items()}
_FILTER_STATUS = {
    LoggedModelStatus.PENDING: "PENDING",
    LoggedModelStatus.READY: "READY",
    LoggedModelStatus.FAILED: "FAILED",
}
_ORDER_ALIASES = {"creation_time": "creation_timestamp", "last_updated_time": "last_updated_timestamp"}
_ATTRIBUTES: dict[str, Callable[[LoggedModel], Any]] = {
    "name": lambda x: x.name,
    "model_id": lambda x: x.id,
    "model_type": lambda x: x.model_type,
    "status": lambda x: _FILTER_STATUS[x.status],
    "source_run_id": lambda x: x.run_id,
    "creation_timestamp": lambda x: x.created_at,
    "last_updated_timestamp": lambda x: x.updated_at,
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")  # fields MLflow's client may add later


class CreateLoggedModelIn(_Body):
    experiment_id: str | None = None
    name: str | None = None
    model_type: str | None = None
    source_run_id: str | None = None
    params: list[m.KeyValue] = []
    tags: list[m.KeyValue] = []


class FinalizeIn(_Body):
    status: str | Annotated[int, Field(ge=0, le=100)] | None = None


class TagsIn(_Body):
    tags: list[m.KeyValue] = []


class ParamsIn(_Body):
    params: list[m.KeyValue] = []


class DatasetIn(_Body):
    dataset_name: str | None = None
    dataset_digest: str | None = None


class OrderByIn(DatasetIn):
    field_name: str | None = None
    ascending: bool = True


class SearchIn(_Body):
    experiment_ids: list[str] = []
    filter: str | None = None
    datasets: list[DatasetIn] = []
    max_results: Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)] | None = None
    order_by: list[OrderByIn] = []
    page_token: str | None = None


class ModelOutputIn(_Body):
    model_id: str | None = None
    step: Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)] = 0


class LogOutputsIn(m.RunId):
    models: list[ModelOutputIn] = []


# -- the MLflow view of Shipyard's records --------------------------------------------------------
def is_model_id(text: str) -> bool:
    """Whether ``text`` is a logged model's id (what ``models:/<model_id>`` names).

    Example:
        >>> is_model_id("m-" + "0" * 32), is_model_id("churn")
        (True, False)
    """
    return MODEL_ID.fullmatch(text) is not None


def model_id_in(path: str) -> str | None:
    """The logged model whose folder ``path`` (in a run's artifacts) is, if it is one.

    Example:
        >>> model_id_in("models/m-" + "a" * 32)
        'm-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'
    """
    head, _, rest = path.strip("/").partition("/")
    return rest if head == "models" and is_model_id(rest) else None


def logged_model_json(model: LoggedModel) -> dict[str, Any]:
    """A logged model as MLflow's ``LoggedModel`` message (its files in its run's artifacts)."""
    metrics = [
        {
            "key": p.key,
            "value": p.value,
            "timestamp": p.timestamp,
            "step": p.step,
            "dataset_name": p.dataset_name,
            "dataset_digest": p.dataset_digest,
            "model_id": p.model_id,
            "run_id": p.run_id,
        }
        for p in model.metrics
    ]
    return {
        "info": {
            "model_id": model.id,
            "experiment_id": str(model.experiment_id),
            "name": model.name,
            "creation_timestamp_ms": model.created_at,
            "last_updated_timestamp_ms": model.updated_at,
            "artifact_uri": f"{artifact_uri(model.experiment_id, model.run_id)}/{model.artifact_path}",
            "status": _WIRE_STATUS[model.status],
            "model_type": model.model_type,
            "source_run_id": model.run_id,
            "tags": [{"key": k, "value": v} for k, v in model.tags.items()],
        },
        "data": {"params": [{"key": k, "value": v} for k, v in model.params.items()], "metrics": metrics},
    }


def _answer(model: LoggedModel) -> Response:
    return json_answer({"model": logged_model_json(model)})


# -- helpers --------------------------------------------------------------------------------------
def _kept(store: Store) -> KeepsLoggedModels:
    if not isinstance(store, KeepsLoggedModels):  # every server store is SQL; a guard for the type
        raise MlflowApiError("This server's store keeps no logged models", "INTERNAL_ERROR")
    return store


def _model(store: Store, model_id: str, allow_deleted: bool = False) -> LoggedModel:
    try:
        return _kept(store).get_logged_model(model_id, allow_deleted=allow_deleted)
    except NotFound:
        raise MlflowApiError(
            f"Logged model with ID '{model_id}' not found.", "RESOURCE_DOES_NOT_EXIST"
        ) from None


def _writable(request: Request, store: Store, model_id: str) -> LoggedModel:
    model = _model(store, model_id)
    require_grant(request, store, "experiment", str(model.experiment_id))
    return model


def _experiment_ids(store: Store, raw: Sequence[str]) -> list[int]:
    """MLflow experiment ids as Shipyard's (``0``: the ``default`` experiment); unknown ones drop."""
    ids: list[int] = []
    for text in raw:
        if not re.fullmatch(r"\d{1,18}", text):
            raise MlflowApiError(f"Invalid experiment ID '{text}'. Experiment ID must be a valid integer.")
        if int(text) != 0:
            ids.append(int(text))
            continue
        try:
            ids.append(store.get_experiment_by_name(DEFAULT_EXPERIMENT).id)
        except NotFound:
            continue
    return ids


def _name(name: str | None) -> str:
    if name is None or name == "":
        return f"model-{uuid.uuid4().hex[:8]}"
    if any(c in name for c in _BAD_NAME_CHARS):
        raise MlflowApiError(
            f"Invalid model name ({name!r}) provided. Model name must be a non-empty string and cannot "
            f"contain the following characters: {_BAD_NAME_CHARS}"
        )
    return name


def _pairs(items: Sequence[m.KeyValue], field: str) -> dict[str, str]:
    check = check_param if field == "params" else check_tag
    return dict(check(kv.key, kv.value, f"{field}[{i}]") for i, kv in enumerate(items))


# -- logged models --------------------------------------------------------------------------------
@router.post("/logged-models")
def create_logged_model(body: CreateLoggedModelIn, store: StoreDep, request: Request) -> Response:
    """A ``PENDING`` model of its source run (required on Shipyard: the run keeps its files), in the
    run's experiment; params and tags within MLflow's limits."""
    experiment_id = m.required(body.experiment_id, "experiment_id")
    if not body.source_run_id:
        raise MlflowApiError(
            "Shipyard keeps a logged model's files as artifacts of the run that logs it, so a logged "
            "model needs a source run: log it inside mlflow.start_run() (mlflow.initialize_logged_model, "
            "create_external_model and set_active_model without an active run are not supported)"
        )
    run = store.get_run(body.source_run_id)
    if experiment_id not in ("0", str(run.experiment_id)):
        raise MlflowApiError(
            f"Run '{run.id}' is in experiment {run.experiment_id}, not {experiment_id}: a logged model "
            "is in the experiment of its source run"
        )
    require_grant(request, store, "experiment", str(run.experiment_id))
    params, tags = _pairs(body.params, "params"), _pairs(body.tags, "tags")
    model = _kept(store).create_logged_model(
        run.id, _name(body.name), model_type=body.model_type or "", params=params, tags=tags
    )
    return _answer(model)


@router.get("/logged-models/{model_id}")
def get_logged_model(model_id: str, store: StoreDep, allow_deleted: str = "false") -> Response:
    return _answer(_model(store, model_id, allow_deleted.lower() == "true"))


@router.patch("/logged-models/{model_id}")
def finalize_logged_model(model_id: str, body: FinalizeIn, store: StoreDep, request: Request) -> Response:
    """Set the model's status: ``LOGGED_MODEL_READY`` once its files are uploaded (or
    ``LOGGED_MODEL_UPLOAD_FAILED``)."""
    raw = body.status
    name = _STATUS_NUMBERS.get(raw) if isinstance(raw, int) else raw
    status = _STATUS_OF_WIRE.get(name or "")
    if status is None:
        raise MlflowApiError(
            f"Invalid value {raw!r} for parameter 'status': one of {', '.join(_STATUS_OF_WIRE)}"
        )
    _writable(request, store, model_id)
    return _answer(_kept(store).update_logged_model(model_id, status=status))


@router.delete("/logged-models/{model_id}")
def delete_logged_model(model_id: str, store: StoreDep, request: Request) -> Response:
    """Mark the model deleted (audited); its files stay its run's artifacts, and versions
    registered from it stay."""
    _writable(request, store, model_id)
    _kept(store).delete_logged_model(model_id, actor_for(request, "", required=False), "MLflow API")
    return json_answer({})


@router.patch("/logged-models/{model_id}/tags")
def set_logged_model_tags(model_id: str, body: TagsIn, store: StoreDep, request: Request) -> Response:
    tags = _pairs(body.tags, "tags")
    _writable(request, store, model_id)
    _kept(store).set_logged_model_tags(model_id, tags)
    return json_answer({})


@router.delete("/logged-models/{model_id}/tags/{tag_key}")
def delete_logged_model_tag(model_id: str, tag_key: str, store: StoreDep, request: Request) -> Response:
    _writable(request, store, model_id)
    try:
        _kept(store).delete_logged_model_tag(model_id, tag_key)
    except NotFound:
        raise MlflowApiError(
            f"No tag with key {tag_key!r} found for model with ID {model_id!r}.", "RESOURCE_DOES_NOT_EXIST"
        ) from None
    return json_answer({})


@router.post("/logged-models/{model_id}/params")
def log_logged_model_params(model_id: str, body: ParamsIn, store: StoreDep, request: Request) -> Response:
    """Add params (MLflow's client sends them 100 at a time); a param keeps its first value."""
    params = _pairs(body.params, "params")
    _writable(request, store, model_id)
    _kept(store).log_logged_model_params(model_id, params)
    return json_answer({})


@router.get("/logged-models/{model_id}/artifacts/directories")
def list_logged_model_artifacts(
    model_id: str, store: StoreDep, artifact_directory_path: str | None = None
) -> Response:
    """The entries of one folder of the model's files (paths from the model's root), in one page."""
    model = _model(store, model_id)
    raw = (artifact_directory_path or "").strip("/")
    sub = clean_artifact_path(raw) if raw else ""
    folder = f"{model.artifact_path}/{sub}" if sub else model.artifact_path
    files = [
        {"path": f"{sub}/{name}" if sub else name, "is_dir": is_dir, "file_size": size}
        for name, is_dir, size in directory(store.list_artifacts(model.run_id, folder), folder)
    ]
    uri = f"{artifact_uri(model.experiment_id, model.run_id)}/{model.artifact_path}"
    return json_answer({"root_uri": uri, "files": files})


# -- search ---------------------------------------------------------------------------------------
def _on(point: LoggedModelMetric, datasets: Sequence[DatasetIn]) -> bool:
    return any(
        point.dataset_name == d.dataset_name
        and (not d.dataset_digest or point.dataset_digest == d.dataset_digest)
        for d in datasets
    )


def _metric(model: LoggedModel, key: str, datasets: Sequence[DatasetIn]) -> float | None:
    """The model's latest value of metric ``key`` (on one of ``datasets`` when given)."""
    points = [p for p in model.metrics if p.key == key and (not datasets or _on(p, datasets))]
    if not points:
        return None
    value = max(points, key=lambda p: (p.step, p.timestamp)).value
    return None if math.isnan(value) else value


def _like(value: str, pattern: str, ignore_case: bool) -> bool:
    regex = re.escape(pattern).replace("%", ".*").replace("_", ".")
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def _compare(lhs: Any, op: str, rhs: Any) -> bool:
    if op in ("IN", "NOT IN"):
        return (lhs in rhs) == (op == "IN")
    if op in ("LIKE", "ILIKE"):
        return _like(str(lhs), str(rhs), op == "ILIKE")
    return bool(
        {
            "=": lambda: lhs == rhs,
            "!=": lambda: lhs != rhs,
            "<": lambda: lhs < rhs,
            "<=": lambda: lhs <= rhs,
            ">": lambda: lhs > rhs,
            ">=": lambda: lhs >= rhs,
        }[op]()
    )


def _matches(model: LoggedModel, clause: MlflowComparison, datasets: Sequence[DatasetIn]) -> bool:
    """MLflow's rule for one clause: a missing metric, param or tag matches nothing (but IS NULL)."""
    if clause.type == "metric":
        lhs: Any = _metric(model, clause.key, datasets)
    elif clause.type in ("parameter", "tag"):
        lhs = (model.params if clause.type == "parameter" else model.tags).get(clause.key)
        if clause.comparator in ("IS NULL", "IS NOT NULL"):
            return (lhs is None) == (clause.comparator == "IS NULL")
    else:
        lhs = _ATTRIBUTES[_ORDER_ALIASES.get(clause.key, clause.key)](model)
    return lhs is not None and _compare(lhs, clause.comparator, clause.value)


def _sort(models: list[LoggedModel], order_by: Sequence[OrderByIn]) -> list[LoggedModel]:
    """MLflow's order: the ``order_by`` entries (attributes, ``metrics.<key>`` on a dataset), then
    ``creation_timestamp DESC`` and ``model_id`` unless named; missing values last."""
    keys: list[tuple[Callable[[LoggedModel], Any], bool]] = []
    named: set[str] = set()
    for entry in order_by:
        field = m.required(entry.field_name, "order_by.field_name")
        entity, dot, key = field.partition(".")
        if dot and entity == "metrics":
            on = [DatasetIn(dataset_name=entry.dataset_name, dataset_digest=entry.dataset_digest)]
            sets = on if entry.dataset_name else []
            keys.append((functools.partial(_metric, key=key, datasets=sets), entry.ascending))
            continue
        attribute = _ORDER_ALIASES.get(field, field)
        if dot or attribute not in _ATTRIBUTES:
            raise MlflowApiError(
                f"Invalid order by field name: {field}. Use one of {', '.join(sorted(_ATTRIBUTES))} or "
                "metrics.<key>"
            )
        named.add(attribute)
        keys.append((_ATTRIBUTES[attribute], entry.ascending))
    if "creation_timestamp" not in named:
        keys.append((_ATTRIBUTES["creation_timestamp"], False))
    if "model_id" not in named:
        keys.append((_ATTRIBUTES["model_id"], True))
    out = list(models)
    for key, ascending in reversed(keys):  # stable sorts, last key first
        present = [x for x in out if key(x) is not None]
        present.sort(key=key, reverse=not ascending)
        out = present + [x for x in out if key(x) is None]
    return out


@router.post("/logged-models/search")
def search_logged_models(body: SearchIn, store: StoreDep) -> Response:
    """The models of the experiments matching MLflow's logged-model filter (metrics on the
    ``datasets`` when given), in MLflow's order, a page at a time (100 by default)."""
    if not body.experiment_ids:
        raise MlflowApiError("Missing value for required parameter 'experiment_ids'.")
    clauses = parse_logged_model_filter(body.filter)
    size = body.max_results if body.max_results is not None else 100
    if not 1 <= size <= MAX_RESULTS:
        raise MlflowApiError(
            f"Invalid value {size} for parameter 'max_results': it must be from 1 to {MAX_RESULTS}"
        )
    start = offset_of(body.page_token)
    pinned = {
        c.key: str(c.value)
        for c in clauses
        if c.type == "attribute" and c.comparator == "=" and c.key in ("name", "source_run_id")
    }
    found = _kept(store).list_logged_models(
        _experiment_ids(store, body.experiment_ids),
        name=pinned.get("name"),
        run_id=pinned.get("source_run_id"),
    )
    datasets = [d for d in body.datasets if d.dataset_name]
    has_metric = any(c.type == "metric" for c in clauses)
    matched = [
        x
        for x in found
        if all(_matches(x, c, datasets) for c in clauses)
        and (not datasets or has_metric or any(_on(p, datasets) for p in x.metrics))
    ]
    ordered = _sort(matched, body.order_by)
    end = start + size
    token = page_token(end) if end < len(ordered) else None
    return json_answer(
        {"models": [logged_model_json(x) for x in ordered[start:end]], "next_page_token": token}
    )


# -- runs: outputs and metric points --------------------------------------------------------------
@router.post("/runs/outputs")
def log_outputs(body: LogOutputsIn, store: StoreDep, request: Request) -> Response:
    """Record that the run logged these models, at these steps. On Shipyard a logged model is an
    output of its own source run only."""
    run = store.get_run(body.id)
    require_grant(request, store, "experiment", str(run.experiment_id))
    for i, given in enumerate(body.models):
        model = _model(store, m.required(given.model_id, f"models[{i}].model_id"))
        if model.run_id != run.id:
            raise MlflowApiError(
                f"Logged model '{model.id}' was logged by run '{model.run_id}', not '{run.id}': on "
                "Shipyard a logged model is an output of the run that logged it (its files are that "
                "run's artifacts). Log the model again in this run"
            )
        _kept(store).update_logged_model(model.id, step=given.step)
    return json_answer({})


def run_outputs(store: Store, run: Run) -> dict[str, Any]:
    """The run's ``outputs`` (MLflow's ``RunOutputs``): the models it logged, with their steps."""
    if not isinstance(store, KeepsLoggedModels):
        return {}
    models = store.list_logged_models([run.experiment_id], run_id=run.id)
    outputs = [{"model_id": x.id, "step": x.step} for x in reversed(models) if x.step is not None]
    return {"model_outputs": outputs}


Row = tuple[str, float, int, int]  # key, value, step, timestamp: a run's metric point


def _point_key(step: int, timestamp: int, value: float) -> tuple[int, int, float | None]:
    return step, timestamp, None if math.isnan(value) else value


def model_points(
    request: Request, store: Store, run_id: str, metrics: Sequence[m.Metric], rows: Sequence[Row]
) -> tuple[list[Row], list[LoggedModelMetric]]:
    """Split a run's metric points (``rows``, checked, one per ``metrics`` entry): the rows to log
    to the run, and the points of logged models (those with a ``model_id``, after their grant
    check) for :func:`record_model_points`. A point with a model that the run's history already
    holds is the model's only: MLflow logs a run's metrics again, with the model's id, when it
    logs a model."""
    named = [(metric, row) for metric, row in zip(metrics, rows, strict=True) if metric.model_id]
    if not named:
        return list(rows), []
    for model_id in dict.fromkeys(str(metric.model_id) for metric, _ in named):
        require_grant(request, store, "experiment", str(_model(store, model_id).experiment_id))
    held: dict[str, set[tuple[int, int, float | None]]] = {}
    for key in dict.fromkeys(row[0] for _, row in named):
        history = store.get_metric_history(run_id, key)
        held[key] = {
            _point_key(*p) for p in zip(history.steps, history.timestamps, history.values, strict=True)
        }
    points = [
        LoggedModelMetric(
            str(metric.model_id),
            key,
            value,
            step,
            stamp,
            run_id,
            metric.dataset_name or "",
            metric.dataset_digest or "",
        )
        for metric, (key, value, step, stamp) in named
    ]
    kept = [
        row
        for metric, row in zip(metrics, rows, strict=True)
        if not metric.model_id or _point_key(row[2], row[3], row[1]) not in held[row[0]]
    ]
    return kept, points


def record_model_points(store: Store, points: Sequence[LoggedModelMetric]) -> None:
    """Record :func:`model_points`' points on their models (after the run's batch is in)."""
    if points:
        _kept(store).log_logged_model_metrics(points)


# -- the registry's sources -----------------------------------------------------------------------
def registrable_files(store: Store, model_id: str) -> tuple[str, str]:
    """(run id, folder in its artifacts) of a ``READY`` logged model: what a registry version of
    ``models:/<model_id>`` is made of."""
    model = _model(store, model_id)
    if model.status is not LoggedModelStatus.READY:
        raise MlflowApiError(
            f"Logged model '{model_id}' is {_WIRE_STATUS[model.status]}, not LOGGED_MODEL_READY: its files "
            "may be incomplete. Log the model again (or finalize it READY once its files are uploaded)",
            "INVALID_STATE",
        )
    return model.run_id, model.artifact_path
