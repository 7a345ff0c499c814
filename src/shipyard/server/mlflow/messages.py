"""MLflow's tracking messages on Shipyard: request bodies as MLflow's client sends them (named as
MLflow's protobuf messages are), and Shipyard's
experiments and runs as MLflow's protobuf JSON describes them (snake_case, int64 as numbers, enum
names, ids as strings; :func:`~shipyard.server.mlflow.wire.json_answer` leaves empty fields out).

A Shipyard run's ``name``, ``user``, ``source`` and ``parent_run_id`` are MLflow's system tags
``mlflow.runName``, ``mlflow.user``, ``mlflow.source.name`` and ``mlflow.parentRunId``: written
into those fields when MLflow's client sends the tags, and read back as tags (an empty field is an
absent tag). An experiment's description is its ``mlflow.note.content`` tag. MLflow dataset
inputs that match no Shipyard dataset version are kept, as sent, in the run tag
:data:`~shipyard.tracking.mlflow_inputs.INPUTS_TAG` (hidden from MLflow's tag list, shown as
``inputs``; :mod:`shipyard.tracking.mlflow_inputs` is their one home, shared with the importer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from shipyard.bounds import INT64_MAX, INT64_MIN
from shipyard.entities import DatasetUse, Experiment, MetricHistory, Run, RunStatus
from shipyard.server.mlflow.wire import MlflowApiError
from shipyard.store.mlflow_filter import SYSTEM_TAGS, artifact_uri
from shipyard.tracking.mlflow_inputs import INPUTS_TAG, run_inputs

__all__ = [
    "DESCRIPTION_TAG",
    "CreateExperiment",
    "CreateRun",
    "Dataset",
    "DatasetInput",
    "DeleteTag",
    "ExperimentId",
    "KeyValue",
    "LogBatch",
    "LogInputs",
    "LogMetric",
    "LogParam",
    "Metric",
    "ModelInput",
    "RunId",
    "SearchExperiments",
    "SearchRuns",
    "SetExperimentTag",
    "SetTag",
    "UpdateExperiment",
    "UpdateRun",
    "experiment_json",
    "metric_json",
    "required",
    "run_info_json",
    "run_json",
    "run_status",
    "system_tags",
    "view_type",
]

DESCRIPTION_TAG = "mlflow.note.content"
"""The experiment tag MLflow keeps its description in (Shipyard: ``Experiment.description``)."""

Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
EnumNumber = Annotated[int, Field(ge=0, le=100)]
"""A protobuf enum sent as its number (MLflow's client sends names)."""
_STATUS_NUMBERS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
_VIEW_NUMBERS = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}


class _Message(BaseModel):
    """A request body: fields MLflow's client may add later are ignored, as protobuf does."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class KeyValue(_Message):
    key: str | None = None
    value: str | None = None


class ExperimentId(_Message):
    experiment_id: str | None = None


class CreateExperiment(_Message):
    name: str | None = None
    artifact_location: str | None = None
    tags: list[KeyValue] = []


class UpdateExperiment(ExperimentId):
    new_name: str | None = None


class SetExperimentTag(ExperimentId):
    key: str | None = None
    value: str | None = None


class SearchExperiments(_Message):
    max_results: Int64 | None = None
    page_token: str | None = None
    filter: str | None = None
    order_by: list[str] = []
    view_type: str | EnumNumber | None = None


class RunId(_Message):
    run_id: str | None = None
    run_uuid: str | None = None  # MLflow's old name of run_id; its client sends both

    @property
    def id(self) -> str:
        return required(self.run_id or self.run_uuid, "run_id")


class CreateRun(_Message):
    experiment_id: str | None = None
    user_id: str | None = None
    run_name: str | None = None
    start_time: Int64 | None = None
    tags: list[KeyValue] = []


class UpdateRun(RunId):
    status: str | EnumNumber | None = None
    end_time: Int64 | None = None
    run_name: str | None = None


class Metric(_Message):
    key: str | None = None
    value: float | None = None  # protobuf JSON sends NaN and infinities as "NaN", "Infinity"
    timestamp: Int64 | None = None
    step: Int64 = 0
    model_id: str | None = None  # MLflow 3: the point is also the logged model's
    dataset_name: str | None = None
    dataset_digest: str | None = None


class LogMetric(RunId, Metric):
    pass


class LogParam(RunId):
    key: str | None = None
    value: str | None = None


class SetTag(RunId):
    key: str | None = None
    value: str | None = None


class DeleteTag(RunId):
    key: str | None = None


class LogBatch(RunId):
    metrics: list[Metric] = []
    params: list[KeyValue] = []
    tags: list[KeyValue] = []


class Dataset(_Message):
    name: str | None = None
    digest: str | None = None
    source_type: str | None = None
    source: str | None = None
    schema_: str | None = Field(None, alias="schema")
    profile: str | None = None


class DatasetInput(_Message):
    tags: list[KeyValue] = []
    dataset: Dataset | None = None


class ModelInput(_Message):
    model_id: str | None = None


class LogInputs(RunId):
    datasets: list[DatasetInput] = []
    models: list[ModelInput] = []


class SearchRuns(_Message):
    experiment_ids: list[str] = []
    filter: str | None = None
    run_view_type: str | EnumNumber | None = None
    max_results: Int64 | None = None
    order_by: list[str] = []
    page_token: str | None = None


def required(value: str | None, name: str) -> str:
    """``value`` unless MLflow's server would answer "Missing value for required parameter"."""
    if not value:
        raise MlflowApiError(f"Missing value for required parameter '{name}'.")
    return value


def _enum_name(value: str | int | None, numbers: Mapping[int, str], what: str) -> str | None:
    if value is None:
        return None
    name = numbers.get(value) if isinstance(value, int) else value
    if name not in numbers.values():
        raise MlflowApiError(
            f"Invalid value {value!r} for parameter '{what}': one of {', '.join(numbers.values())}"
        )
    return name


def run_status(value: str | int | None) -> RunStatus | None:
    """MLflow's ``RunStatus`` (name or number) as Shipyard's; ``SCHEDULED`` is refused (Shipyard
    runs are created running)."""
    name = _enum_name(value, _STATUS_NUMBERS, "status")
    if name is None:
        return None
    if name == "SCHEDULED":
        raise MlflowApiError(
            "Shipyard has no SCHEDULED run status: a run is RUNNING from its creation until it ends "
            "FINISHED, FAILED or KILLED"
        )
    return RunStatus(name.lower())


def view_type(value: str | int | None) -> str:
    """MLflow's ``ViewType`` (name or number), ``ACTIVE_ONLY`` when not given."""
    return _enum_name(value, _VIEW_NUMBERS, "view_type") or "ACTIVE_ONLY"


# -- Shipyard → MLflow ------------------------------------------------------------------------------
def experiment_json(experiment: Experiment, tags: Mapping[str, str] = {}) -> dict[str, Any]:  # noqa: B006
    """An experiment as MLflow's ``Experiment`` message (its artifacts through the server's proxy)."""
    all_tags = dict(tags)
    if experiment.description:
        all_tags[DESCRIPTION_TAG] = experiment.description
    return {
        "experiment_id": str(experiment.id),
        "name": experiment.name,
        "artifact_location": f"mlflow-artifacts:/{experiment.id}",
        "lifecycle_stage": "deleted" if experiment.deleted else "active",
        "last_update_time": experiment.updated_at or experiment.created_at,
        "creation_time": experiment.created_at,
        "tags": [{"key": k, "value": v} for k, v in all_tags.items()],
    }


def run_info_json(run: Run) -> dict[str, Any]:
    """A run's ``RunInfo``: ``run_id`` and the older ``run_uuid`` both, the status as its name."""
    return {
        "run_id": run.id,
        "run_uuid": run.id,
        "run_name": run.name,
        "experiment_id": str(run.experiment_id),
        "user_id": run.user,
        "status": run.status.value.upper(),
        "start_time": run.start_time,
        "end_time": run.end_time,
        "artifact_uri": artifact_uri(run.experiment_id, run.id),
        "lifecycle_stage": "deleted" if run.deleted else "active",
    }


def system_tags(run: Run) -> dict[str, str]:
    """The run's fields as MLflow's system tags (empty fields are absent tags)."""
    fields = {
        "run_name": run.name,
        "user": run.user,
        "source": run.source,
        "parent_run_id": run.parent_run_id,
    }
    return {tag: value for tag, name in SYSTEM_TAGS.items() if (value := fields[name])}


def run_json(run: Run, uses: Sequence[DatasetUse] = ()) -> dict[str, Any]:
    """A run as MLflow's ``Run`` message: info, data (latest metrics, params, tags with the system
    tags of its fields) and inputs (kept MLflow inputs and ``uses``, its Shipyard dataset versions).

    Latest metrics carry their value only: a Shipyard run keeps no step and time beside them
    (``metrics/get-history`` has both)."""
    tags = {k: v for k, v in run.tags.items() if k != INPUTS_TAG}
    tags.update(system_tags(run))
    return {
        "info": run_info_json(run),
        "data": {
            "metrics": [{"key": k, "value": v} for k, v in run.metrics.items()],
            "params": [{"key": k, "value": v} for k, v in run.params.items()],
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        },
        "inputs": run_inputs(run.tags, uses),
    }


def metric_json(history: MetricHistory, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
    """Points ``start:stop`` of a history as MLflow's ``Metric`` messages."""
    stop = len(history) if stop is None else min(stop, len(history))
    return [
        {
            "key": history.key,
            "value": history.values[i],
            "timestamp": history.timestamps[i],
            "step": history.steps[i],
        }
        for i in range(start, stop)
    ]
