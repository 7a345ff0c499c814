"""MLflow's tracking API (experiments, runs, metrics, artifact listings) over Shipyard's own store.

Each route is MLflow's endpoint of the same path under :data:`~shipyard.server.mlflow.PREFIXES`,
reads MLflow's request (:mod:`~shipyard.server.mlflow.messages`), checks MLflow's limits
(:mod:`~shipyard.server.mlflow.validation`) and calls the store functions Shipyard's own routers
call; what it answers is MLflow's message. The acting user is the token's (with auth on), a write
to an experiment with grants needs its owner or editor (:func:`~shipyard.server.access.require_grant`).

Where Shipyard and MLflow differ, the route says so precisely (``docs/mlflow.md`` lists each case):
a run's system tags ``mlflow.user``, ``mlflow.source.name`` and ``mlflow.parentRunId`` are set when it
is created, and the experiment id ``0`` (MLflow's Default) is Shipyard's ``default`` experiment.
"""

from __future__ import annotations

import math
import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from shipyard.bounds import INT32_MAX, INT64_MAX, INT64_MIN
from shipyard.entities import (
    Experiment,
    LogBatch,
    MetricHistory,
    Run,
    RunCreate,
    RunView,
    clean_artifact_path,
    now_ms,
)
from shipyard.errors import NotFound
from shipyard.server.access import actor_for, author_for, principal_of, require_grant
from shipyard.server.mlflow import DEFAULT_EXPERIMENT, logged_models
from shipyard.server.mlflow import messages as m
from shipyard.server.mlflow.artifacts import directory
from shipyard.server.mlflow.validation import (
    check_batch_limits,
    check_experiment_tag,
    check_metric,
    check_param,
    check_params_unique,
    check_tag,
)
from shipyard.server.mlflow.wire import (
    ERROR_RESPONSES,
    MlflowApiError,
    MlflowRoute,
    json_answer,
    offset_of,
    page_token,
)
from shipyard.server.state import StoreDep
from shipyard.store import EditsExperiments, EditsRuns, Store
from shipyard.store.base import AuthStore
from shipyard.store.mlflow_filter import (
    SYSTEM_TAGS,
    ExperimentRecord,
    artifact_uri,
    experiment_matches,
    experiment_order,
    parse_experiment_filter,
    run_filter,
    run_order_by,
    sort_experiments,
)
from shipyard.store.query import order_to_text, to_text
from shipyard.tracking.mlflow_inputs import dataset_input, record_inputs

__all__ = ["router"]

router = APIRouter(route_class=MlflowRoute, tags=["mlflow"], responses=ERROR_RESPONSES)

Int64Query = Annotated[int | None, Query(ge=INT64_MIN, le=INT64_MAX)]
MAX_RESULTS = 50_000
MAX_BULK_RUNS = 100
MAX_BULK_RESULTS = 2500
_ID = re.compile(r"\d{1,18}")
_RUN_VIEWS = {"ACTIVE_ONLY": RunView.ACTIVE, "DELETED_ONLY": RunView.DELETED, "ALL": RunView.ALL}


# -- helpers --------------------------------------------------------------------------------------
def _edits(store: Store) -> EditsExperiments:
    if not isinstance(store, EditsExperiments):  # every server store is SQL; a guard for the type
        raise MlflowApiError("This server's store cannot edit experiments", "INTERNAL_ERROR")
    return store


def _run_edits(store: Store) -> EditsRuns:
    if not isinstance(store, EditsRuns):
        raise MlflowApiError("This server's store cannot edit runs", "INTERNAL_ERROR")
    return store


def _missing_experiment(raw: str) -> MlflowApiError:
    return MlflowApiError(f"No Experiment with id={raw} exists", "RESOURCE_DOES_NOT_EXIST")


def _experiment_id(store: Store, raw: str) -> int | None:
    """An MLflow experiment id as Shipyard's (``0``: the ``default`` experiment; None when it does
    not exist yet)."""
    if not _ID.fullmatch(raw):
        raise MlflowApiError(f"Invalid experiment ID '{raw}'. Experiment ID must be a valid integer.")
    if int(raw) == 0:
        try:
            return store.get_experiment_by_name(DEFAULT_EXPERIMENT).id
        except NotFound:
            return None
    return int(raw) if int(raw) <= INT32_MAX else None


def _experiment(store: Store, raw: str | None) -> Experiment:
    raw = m.required(raw, "experiment_id")
    found = _experiment_id(store, raw)
    if found is None:
        raise _missing_experiment(raw)
    try:
        return store.get_experiment(found)
    except NotFound:
        raise _missing_experiment(raw) from None


def _active(experiment: Experiment) -> Experiment:
    if experiment.deleted:
        raise MlflowApiError(
            f"The experiment {experiment.id} must be in the 'active' state. Current state is deleted."
        )
    return experiment


def _experiment_answer(store: Store, experiment: Experiment) -> Response:
    tags = _edits(store).experiment_tags([experiment.id]).get(experiment.id, {})
    return json_answer({"experiment": m.experiment_json(experiment, tags)})


def _writable_run(request: Request, store: Store, run_id: str) -> Run | None:
    """The run a write goes to, after its grant check; None without auth (the store then says
    whether the run exists: one read fewer on every logging call)."""
    if principal_of(request) is None:
        return None
    run = store.get_run(run_id)
    require_grant(request, store, "experiment", str(run.experiment_id))
    return run


def _live_run(request: Request, store: Store, run_id: str) -> Run:
    run = _writable_run(request, store, run_id) or store.get_run(run_id)
    if run.deleted:
        raise MlflowApiError(f"The run {run_id} must be in the 'active' state. Current state is deleted.")
    return run


def _system_tags(store: Store, run: Run, tags: dict[str, str]) -> dict[str, str]:
    """Tags for an existing run without MLflow's system tags: ``mlflow.runName`` renames the run;
    the others must say what the run's fields say (they are fixed at creation)."""
    fields = m.system_tags(run)
    for tag in [t for t in tags if t in SYSTEM_TAGS]:
        value = tags.pop(tag)
        if tag == "mlflow.runName":
            if value != run.name:
                _run_edits(store).rename_run(run.id, value)
                run.name = value
        elif value != fields.get(tag, ""):
            raise MlflowApiError(
                f"Tag '{tag}' is the run's {SYSTEM_TAGS[tag].replace('_', ' ')} on Shipyard, set when the "
                f"run is created ({fields.get(tag, '')!r}); it cannot change to {value!r}"
            )
    return tags


def _page(items: list[Any], token: str | None, max_results: int) -> tuple[list[Any], str | None]:
    start = offset_of(token)
    end = start + max_results
    return items[start:end], (page_token(end) if end < len(items) else None)


def _max_results(value: int | None, default: int, limit: int, what: str = "max_results") -> int:
    if value is None:
        return default
    if not 1 <= value <= limit:
        raise MlflowApiError(
            f"Invalid value {value} for parameter '{what}' supplied: it must be from 1 to {limit}"
        )
    return value


# -- experiments ----------------------------------------------------------------------------------
@router.get("/experiments/get-by-name")
def get_experiment_by_name(store: StoreDep, experiment_name: str | None = None) -> Response:
    name = m.required(experiment_name, "experiment_name")
    try:
        experiment = store.get_experiment_by_name(name)
    except NotFound:
        raise MlflowApiError(
            f"Could not find experiment with name '{name}'", "RESOURCE_DOES_NOT_EXIST"
        ) from None
    return _experiment_answer(store, experiment)


@router.get("/experiments/get")
def get_experiment(store: StoreDep, experiment_id: str | None = None) -> Response:
    return _experiment_answer(store, _experiment(store, experiment_id))


@router.post("/experiments/create")
def create_experiment(body: m.CreateExperiment, store: StoreDep, request: Request) -> Response:
    """Create an experiment (its creator becomes its owner with auth on, as on Shipyard's own API).
    An ``artifact_location`` is accepted and not used: artifacts go to Shipyard's blob store."""
    name = m.required(body.name, "name")
    tags = dict(check_experiment_tag(t.key, t.value) for t in body.tags)
    description = tags.pop(m.DESCRIPTION_TAG, "")
    experiment = store.create_experiment(name, description)
    principal = principal_of(request)
    if principal is not None and isinstance(store, AuthStore):
        store.set_grant(principal.name, "experiment", str(experiment.id), "owner", principal.name)
    for key, value in tags.items():
        _edits(store).set_experiment_tag(experiment.id, key, value)
    return json_answer({"experiment_id": str(experiment.id)})


@router.post("/experiments/search")
def search_experiments(body: m.SearchExperiments, store: StoreDep) -> Response:
    """Experiments matching MLflow's experiment filter, in its order, a page at a time."""
    view = m.view_type(body.view_type)
    clauses = parse_experiment_filter(body.filter)
    order = experiment_order(body.order_by)
    max_results = _max_results(body.max_results, 1000, MAX_RESULTS)
    experiments = store.list_experiments() if view != "DELETED_ONLY" else []
    if view != "ACTIVE_ONLY":
        experiments += _edits(store).list_deleted_experiments()
    tags = _edits(store).experiment_tags([e.id for e in experiments])
    by_id = {e.id: e for e in experiments}
    records = []
    for e in experiments:
        shown = {**tags.get(e.id, {}), **({m.DESCRIPTION_TAG: e.description} if e.description else {})}
        records.append(ExperimentRecord(e.id, e.name, e.created_at, e.updated_at or e.created_at, shown))
    matched = sort_experiments([r for r in records if experiment_matches(r, clauses)], order)
    page, token = _page(matched, body.page_token, max_results)
    found = [m.experiment_json(by_id[r.experiment_id], tags.get(r.experiment_id, {})) for r in page]
    return json_answer({"experiments": found, "next_page_token": token})


@router.post("/experiments/delete")
def delete_experiment(body: m.ExperimentId, store: StoreDep, request: Request) -> Response:
    """Mark the experiment and its runs deleted (audited); ``restore`` brings both back."""
    experiment = _active(_experiment(store, body.experiment_id))
    require_grant(request, store, "experiment", str(experiment.id))
    _edits(store).delete_experiment(experiment.id, actor_for(request, "", required=False))
    return json_answer({})


@router.post("/experiments/restore")
def restore_experiment(body: m.ExperimentId, store: StoreDep, request: Request) -> Response:
    experiment = _experiment(store, body.experiment_id)
    if not experiment.deleted:
        raise MlflowApiError(
            f"Cannot restore experiment {experiment.id}: it is active, not deleted", "INVALID_STATE"
        )
    require_grant(request, store, "experiment", str(experiment.id))
    _edits(store).restore_experiment(experiment.id, actor_for(request, "", required=False))
    return json_answer({})


@router.post("/experiments/update")
def update_experiment(body: m.UpdateExperiment, store: StoreDep, request: Request) -> Response:
    """Rename an active experiment (audited)."""
    experiment = _experiment(store, body.experiment_id)
    new_name = m.required(body.new_name, "new_name")
    if experiment.deleted:
        raise MlflowApiError("Cannot rename a non-active experiment.", "INVALID_STATE")
    require_grant(request, store, "experiment", str(experiment.id))
    _edits(store).update_experiment(experiment.id, actor_for(request, "", required=False), name=new_name)
    return json_answer({})


@router.post("/experiments/set-experiment-tag")
def set_experiment_tag(body: m.SetExperimentTag, store: StoreDep, request: Request) -> Response:
    """Tag an experiment; ``mlflow.note.content`` is its description."""
    experiment = _active(_experiment(store, body.experiment_id))
    key, value = check_experiment_tag(m.required(body.key, "key"), body.value)
    require_grant(request, store, "experiment", str(experiment.id))
    if key == m.DESCRIPTION_TAG:
        actor = actor_for(request, "", required=False)
        _edits(store).update_experiment(experiment.id, actor, description=value)
    else:
        _edits(store).set_experiment_tag(experiment.id, key, value)
    return json_answer({})


@router.post("/experiments/delete-experiment-tag")
def delete_experiment_tag(body: m.SetExperimentTag, store: StoreDep, request: Request) -> Response:
    experiment = _active(_experiment(store, body.experiment_id))
    key = m.required(body.key, "key")
    require_grant(request, store, "experiment", str(experiment.id))
    if key == m.DESCRIPTION_TAG and experiment.description:
        _edits(store).update_experiment(experiment.id, actor_for(request, "", required=False), description="")
    else:
        try:
            _edits(store).delete_experiment_tag(experiment.id, key)
        except NotFound:
            raise MlflowApiError(
                f"No tag with name: {key} in experiment with id {experiment.id}", "RESOURCE_DOES_NOT_EXIST"
            ) from None
    return json_answer({})


# -- runs -----------------------------------------------------------------------------------------
@router.post("/runs/create")
def create_run(body: m.CreateRun, store: StoreDep, request: Request) -> Response:
    """Create a running run. The system tags become the run's fields (``mlflow.runName`` its name,
    ``mlflow.user`` its user — the token's user with auth on —, ``mlflow.source.name`` its source,
    ``mlflow.parentRunId`` its parent); the experiment ``0`` is Shipyard's ``default``."""
    raw = body.experiment_id or "0"
    if raw == "0":
        experiment_name = DEFAULT_EXPERIMENT
        found = _experiment_id(store, raw)
        experiment = store.get_experiment(found) if found is not None else None
    else:
        experiment = _experiment(store, raw)
        experiment_name = experiment.name
    if experiment is not None:
        _active(experiment)
        require_grant(request, store, "experiment", str(experiment.id))
    tags = dict(check_tag(t.key, t.value, f"tags[{i}]") for i, t in enumerate(body.tags))
    name = body.run_name or ""
    tag_name = tags.pop("mlflow.runName", "")
    if name and tag_name and name != tag_name:
        raise MlflowApiError(
            "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values "
            f"(run_name='{name}', mlflow.runName='{tag_name}')."
        )
    run_id = uuid.uuid4().hex
    spec = RunCreate(
        run_id=run_id,
        experiment_name=experiment_name,
        name=name or tag_name or f"run-{run_id[:8]}",
        start_time=body.start_time if body.start_time is not None else now_ms(),
        user=author_for(request, tags.pop("mlflow.user", "") or body.user_id or ""),
        source=tags.pop("mlflow.source.name", ""),
        parent_run_id=tags.pop("mlflow.parentRunId", "") or None,
        tags=tags,
    )
    return json_answer({"run": m.run_json(store.create_run(spec))})


@router.post("/runs/update")
def update_run(body: m.UpdateRun, store: StoreDep, request: Request) -> Response:
    """Set a run's status, end time and/or name; answers its ``RunInfo``."""
    run = _live_run(request, store, body.id)
    status = m.run_status(body.status)
    if body.run_name and body.run_name != run.name:
        _run_edits(store).rename_run(run.id, body.run_name)
    if status is not None or body.end_time is not None:
        store.update_run(run.id, status=status or run.status, end_time=body.end_time)
    return json_answer({"run_info": m.run_info_json(store.get_run(run.id))})


@router.post("/runs/delete")
def delete_run(body: m.RunId, store: StoreDep, request: Request) -> Response:
    run = _writable_run(request, store, body.id)
    store.delete_runs([run.id if run else body.id], actor_for(request, "", required=False))
    return json_answer({})


@router.post("/runs/restore")
def restore_run(body: m.RunId, store: StoreDep, request: Request) -> Response:
    run = _writable_run(request, store, body.id)
    store.restore_runs([run.id if run else body.id], actor_for(request, "", required=False))
    return json_answer({})


@router.get("/runs/get")
def get_run(store: StoreDep, run_id: str | None = None, run_uuid: str | None = None) -> Response:
    """The run with its latest metrics, params, tags (and the system tags of its fields), inputs
    (MLflow dataset inputs, and the Shipyard dataset versions it used) and outputs (its logged
    models)."""
    run = store.get_run(m.required(run_id or run_uuid, "run_id"))
    answer = m.run_json(run, store.list_run_datasets(run.id))
    return json_answer({"run": {**answer, "outputs": logged_models.run_outputs(store, run)}})


@router.post("/runs/search")
def search_runs(body: m.SearchRuns, store: StoreDep) -> Response:
    """Runs of these experiments (deleted ones too, as MLflow) in ``run_view_type``'s lifecycle
    stages, matching MLflow's filter, in MLflow's order, a page at a time."""
    view = _RUN_VIEWS[m.view_type(body.run_view_type)]
    expr = run_filter(body.filter)
    order = order_to_text(run_order_by(body.order_by))
    limit = _max_results(body.max_results, 1000, MAX_RESULTS)
    ids = [i for raw in body.experiment_ids if (i := _experiment_id(store, raw)) is not None]
    if not ids:
        offset_of(body.page_token)  # a bad token is still refused
        return json_answer({})
    page = store.search_runs(
        experiment_ids=ids,
        filter=None if expr is None else to_text(expr),
        order_by=order or None,
        limit=limit,
        page_token=body.page_token or None,
        view=view,
    )
    return json_answer({"runs": [m.run_json(r) for r in page.runs], "next_page_token": page.next_page_token})


@router.post("/runs/log-metric")
def log_metric(body: m.LogMetric, store: StoreDep, request: Request) -> Response:
    key = check_metric(body.key, body.value, body.timestamp)
    run_id = body.id
    _writable_run(request, store, run_id)
    assert body.value is not None and body.timestamp is not None
    rows, points = logged_models.model_points(
        request, store, run_id, [body], [(key, body.value, body.step, body.timestamp)]
    )
    store.log_batch(run_id, LogBatch(metrics=rows))
    logged_models.record_model_points(store, points)
    return json_answer({})


@router.post("/runs/log-parameter")
def log_param(body: m.LogParam, store: StoreDep, request: Request) -> Response:
    """Log a param; logging another value for the same key is refused (params are immutable)."""
    key, value = check_param(body.key, body.value)
    run_id = body.id
    _writable_run(request, store, run_id)
    store.log_batch(run_id, LogBatch(params={key: value}))
    return json_answer({})


@router.post("/runs/set-tag")
def set_tag(body: m.SetTag, store: StoreDep, request: Request) -> Response:
    key, value = check_tag(body.key, body.value)
    if key in SYSTEM_TAGS:
        tags = _system_tags(store, _live_run(request, store, body.id), {key: value})
    else:
        _writable_run(request, store, body.id)
        tags = {key: value}
    if tags:
        store.log_batch(body.id, LogBatch(tags=tags))
    return json_answer({})


@router.post("/runs/delete-tag")
def delete_tag(body: m.DeleteTag, store: StoreDep, request: Request) -> Response:
    key = m.required(body.key, "key")
    run = _live_run(request, store, body.id)
    if key in SYSTEM_TAGS:
        raise MlflowApiError(
            f"Tag '{key}' is the run's {SYSTEM_TAGS[key].replace('_', ' ')} on Shipyard; it cannot be deleted"
        )
    try:
        _run_edits(store).delete_run_tag(run.id, key)
    except NotFound:
        raise MlflowApiError(
            f"No tag with name: {key} in run with id {run.id}", "RESOURCE_DOES_NOT_EXIST"
        ) from None
    return json_answer({})


@router.post("/runs/log-batch")
def log_batch(body: m.LogBatch, store: StoreDep, request: Request) -> Response:
    """Metrics, params and tags in one transaction, within MLflow's limits (1000 metrics, 100 params,
    100 tags, 1000 in all)."""
    check_batch_limits(len(body.metrics), len(body.params), len(body.tags))
    rows = []
    for i, metric in enumerate(body.metrics):
        key = check_metric(metric.key, metric.value, metric.timestamp, f"metrics[{i}]")
        assert metric.value is not None and metric.timestamp is not None
        rows.append((key, metric.value, metric.step, metric.timestamp))
    params = [check_param(p.key, p.value, f"params[{i}]") for i, p in enumerate(body.params)]
    check_params_unique([k for k, _ in params])
    tags = dict(check_tag(t.key, t.value, f"tags[{i}]") for i, t in enumerate(body.tags))
    run_id = body.id
    if any(t in SYSTEM_TAGS for t in tags):
        tags = _system_tags(store, _live_run(request, store, run_id), tags)
    else:
        _writable_run(request, store, run_id)
    rows, points = logged_models.model_points(request, store, run_id, body.metrics, rows)
    store.log_batch(run_id, LogBatch(metrics=rows, params=dict(params), tags=tags))
    logged_models.record_model_points(store, points)  # metrics of MLflow 3's logged models
    return json_answer({})


@router.post("/runs/log-inputs")
def log_inputs(body: m.LogInputs, store: StoreDep, request: Request) -> Response:
    """Record a run's inputs (:func:`~shipyard.tracking.mlflow_inputs.record_inputs`): a dataset
    that names a Shipyard dataset version is the run's use of it (its lineage); any other dataset,
    and MLflow's model inputs, are kept as sent (read back as the run's ``inputs``)."""
    run = _live_run(request, store, body.id)
    datasets = []
    for i, given in enumerate(body.datasets):
        dataset = given.dataset
        if dataset is None or not dataset.name or not dataset.digest:
            raise MlflowApiError(
                f"Missing value for required parameter 'datasets[{i}].dataset' (name and digest)."
            )
        tags = [(t.key or "", t.value or "") for t in given.tags]
        datasets.append(dataset_input(dataset.model_dump(by_alias=True), tags))
    models = [m.required(model.model_id, "models.model_id") for model in body.models]
    record_inputs(store, run, datasets, models)
    return json_answer({})


# -- metrics and artifact listings --------------------------------------------------------------
@router.get("/metrics/get-history")
def get_metric_history(
    store: StoreDep,
    run_id: str | None = None,
    run_uuid: str | None = None,
    metric_key: str | None = None,
    page_token: str | None = None,
    max_results: Int64Query = None,
) -> Response:
    """Every point of one metric in (step, timestamp) order; ``max_results`` pages it."""
    run = m.required(run_id or run_uuid, "run_id")
    history = store.get_metric_history(run, m.required(metric_key, "metric_key"))
    if max_results is not None and max_results <= 0:
        raise MlflowApiError(
            f"Invalid value {max_results} for parameter 'max_results' supplied. "
            "It must be a positive integer."
        )
    points = m.metric_json(history)
    if max_results is None and not page_token:
        return json_answer({"metrics": points})
    page, token = _page(points, page_token, max_results or max(len(points), 1))
    return json_answer({"metrics": page, "next_page_token": token})


def _nan_last(value: float) -> tuple[bool, float]:
    return (True, 0.0) if math.isnan(value) else (False, value)


def _sample(
    history: MetricHistory, max_results: int, start_step: int | None, end_step: int | None
) -> list[int]:
    """The indices MLflow's store keeps of one run's history: one point per ``max_results`` evenly
    sized slice of the points in the step range (its first), and always the last point."""
    rows = [
        i
        for i in range(len(history))
        if start_step is None or end_step is None or start_step <= history.steps[i] <= end_step
    ]
    rows.sort(key=lambda i: (history.steps[i], history.timestamps[i], _nan_last(history.values[i])))
    if len(rows) <= max_results:
        return rows
    size, extra = divmod(len(rows), max_results)
    picked = [rows[b * size + min(b, extra)] for b in range(max_results)]
    if picked[-1] != rows[-1]:
        picked[-1] = rows[-1]
    return picked


@router.get("/metrics/get-history-bulk-interval")
def get_metric_history_bulk_interval(
    store: StoreDep,
    run_ids: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies query defaults
    metric_key: str | None = None,
    start_step: Int64Query = None,
    end_step: Int64Query = None,
    max_results: Int64Query = None,
) -> Response:
    """One metric of up to 100 runs, each sampled to at most ``max_results`` points (2500)."""
    if not run_ids:
        raise MlflowApiError("Missing value for required parameter 'run_ids'.")
    if len(run_ids) > MAX_BULK_RUNS:
        raise MlflowApiError(
            f"GetMetricHistoryBulkInterval request must specify at most {MAX_BULK_RUNS} run_ids. "
            f"Received {len(run_ids)} run_ids."
        )
    key = m.required(metric_key, "metric_key")
    size = _max_results(max_results, MAX_BULK_RESULTS, MAX_BULK_RESULTS)
    if (start_step is None) != (end_step is None):
        raise MlflowApiError("If either start step or end step are specified, both must be specified.")
    if start_step is not None and end_step is not None and start_step > end_step:
        raise MlflowApiError(
            "end_step must be greater than start_step. "
            f"Found start_step={start_step} and end_step={end_step}."
        )
    points = []
    for run_id in run_ids:
        history = store.get_metric_history(run_id, key)
        for i in _sample(history, size, start_step, end_step):
            point = {"key": key, "value": history.values[i], "timestamp": history.timestamps[i]}
            points.append({**point, "step": history.steps[i], "run_id": run_id})
    return json_answer({"metrics": points})


@router.get("/artifacts/list")
def list_artifacts(
    store: StoreDep,
    run_id: str | None = None,
    run_uuid: str | None = None,
    path: str | None = None,
    page_token: str | None = None,
) -> Response:
    """The entries of one folder of a run's artifacts (paths from the run's root), in one page."""
    run = store.get_run(m.required(run_id or run_uuid, "run_id"))
    folder = clean_artifact_path(path) if path and path.strip("/") else ""
    files = [
        {"path": f"{folder}/{name}" if folder else name, "is_dir": is_dir, "file_size": size}
        for name, is_dir, size in directory(store.list_artifacts(run.id, folder), folder)
    ]
    return json_answer({"root_uri": artifact_uri(run.experiment_id, run.id), "files": files})
