"""Shared entity types: plain, typed dataclasses every layer can pass around.

Times are integer milliseconds since the Unix epoch (UTC), read with :func:`now_ms`. Keys, names and
users are at most :data:`MAX_KEY_LENGTH` characters (the stores' column width; the REST schemas and the
SDK check it). Entities are cheap to build (no validation cost on hot paths); validation happens at the
entry points (SDK calls, REST schemas).
"""

from __future__ import annotations

import enum
import posixpath
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from shipyard.errors import InvalidInput, UnsafePath

__all__ = [
    "MAX_KEY_LENGTH",
    "Alert",
    "AliasMove",
    "Artifact",
    "AuditEntry",
    "ContractVersion",
    "DatasetUse",
    "DatasetVersion",
    "DatasetVersionCreate",
    "DeploymentRecord",
    "Experiment",
    "LogBatch",
    "LoggedModel",
    "LoggedModelMetric",
    "LoggedModelStatus",
    "MetricHistory",
    "MetricPoint",
    "MetricSeries",
    "ModelRecord",
    "ModelVersion",
    "ModelVersionCreate",
    "MonitorReport",
    "PipelineSchedule",
    "RegisteredModel",
    "Run",
    "RunCreate",
    "RunPage",
    "RunStatus",
    "RunView",
    "ScheduleFire",
    "clean_artifact_path",
    "now_ms",
]

MAX_KEY_LENGTH = 255
"""Longest metric/param/tag key, experiment, dataset or model name, and user the stores keep."""


def now_ms() -> int:
    """The current time as integer milliseconds since the Unix epoch: how every entity stamps time.

    Example:
        >>> now_ms() > 1_700_000_000_000
        True
    """
    return int(time.time() * 1000)


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"

    @property
    def is_terminal(self) -> bool:
        return self is not RunStatus.RUNNING


@dataclass(frozen=True)
class Experiment:
    """A named group of runs. ``deleted`` experiments keep their runs (deleted with them) until
    restored; ``updated_at`` is the last rename, deletion, restore or tag change (None: none)."""

    id: int
    name: str
    created_at: int
    description: str = ""
    deleted: bool = False
    updated_at: int | None = None


@dataclass(frozen=True)
class MetricPoint:
    key: str
    value: float
    step: int
    timestamp: int


@dataclass
class Run:
    id: str
    experiment_id: int
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None = None
    parent_run_id: str | None = None
    user: str = ""
    source: str = ""
    deleted: bool = False
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    experiment_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "experiment_id": self.experiment_id,
            "experiment_name": self.experiment_name,
            "name": self.name,
            "status": str(self.status),
            "start_time": self.start_time,
            "end_time": self.end_time,
            "parent_run_id": self.parent_run_id,
            "user": self.user,
            "source": self.source,
            "deleted": self.deleted,
            "params": self.params,
            "metrics": self.metrics,
            "tags": self.tags,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Run:
        return cls(
            id=d["id"],
            experiment_id=int(d["experiment_id"]),
            experiment_name=d.get("experiment_name", ""),
            name=d.get("name", ""),
            status=RunStatus(d["status"]),
            start_time=int(d["start_time"]),
            end_time=d.get("end_time"),
            parent_run_id=d.get("parent_run_id"),
            user=d.get("user", ""),
            source=d.get("source", ""),
            deleted=bool(d.get("deleted", False)),
            params=dict(d.get("params") or {}),
            metrics={
                k: float(v) if v is not None else float("nan") for k, v in (d.get("metrics") or {}).items()
            },
            tags=dict(d.get("tags") or {}),
        )


@dataclass(frozen=True)
class RunCreate:
    """Everything needed to create a run in one store call (so it can be spooled offline)."""

    run_id: str
    experiment_name: str
    name: str
    start_time: int
    user: str
    source: str = ""
    parent_run_id: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class MetricSeries:
    """Points of one metric key in columns: lists or numpy arrays of one length."""

    key: str
    steps: Sequence[int] | Any  # or a numpy int64 array
    timestamps: Sequence[int] | Any
    values: Sequence[float] | Any  # or a numpy float64 array

    def __len__(self) -> int:
        return len(self.steps)


@dataclass
class LogBatch:
    """A batch of writes for one run.

    Metric points come as rows (``metrics``: (key, value, step, timestamp)) and/or
    as columns (``series``: one :class:`MetricSeries` per key and call, the cheap
    form the SDK's logger produces).
    """

    metrics: list[tuple[str, float, int, int]] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    batch_id: str | None = None
    series: list[MetricSeries] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.metrics or self.params or self.tags or self.series)

    def metric_rows(self) -> Iterator[tuple[str, float, int, int]]:
        """Every metric point as a (key, value, step, timestamp) row."""
        yield from self.metrics
        for s in self.series:
            for value, step, ts in zip(s.values, s.steps, s.timestamps, strict=True):
                yield s.key, float(value), int(step), int(ts)


@dataclass(frozen=True)
class MetricHistory:
    """A metric series in columns, ordered by (step, timestamp)."""

    key: str
    steps: list[int]
    timestamps: list[int]
    values: list[float]

    def __len__(self) -> int:
        return len(self.steps)


@dataclass(frozen=True)
class Artifact:
    path: str
    digest: str
    size: int
    created_at: int = 0


class RunView(enum.StrEnum):
    """Which runs a search lists: the active ones (the default), the deleted ones (not purged yet)
    or all of them; the filter, order and paging are the same for each."""

    ACTIVE = "active"
    DELETED = "deleted"
    ALL = "all"

    @classmethod
    def parse(cls, value: object) -> RunView:
        """``value`` (a ``RunView`` or its name) as a ``RunView``; anything else is ``InvalidInput``."""
        if isinstance(value, str) and value in {v.value for v in cls}:
            return cls(value)
        choices = ", ".join(repr(v.value) for v in cls)
        raise InvalidInput(f"Invalid run view {value!r:.60}; pass one of {choices}")


@dataclass
class RunPage:
    runs: list[Run]
    next_page_token: str | None = None


@dataclass(frozen=True)
class DatasetVersionCreate:
    """What the store needs to record a dataset version (the bytes are already in the blob store)."""

    name: str
    digest: str
    rows: int
    num_columns: int
    schema: list[tuple[str, str]]
    size: int
    source: str = ""
    created_by: str = ""
    profile_digest: str | None = None
    contract_digest: str | None = None


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable version of a named dataset: Parquet content addressed by ``digest``."""

    name: str
    version: int
    digest: str
    rows: int
    num_columns: int
    schema: list[tuple[str, str]]
    size: int
    source: str
    created_by: str
    created_at: int
    profile_digest: str | None = None
    contract_digest: str | None = None

    @property
    def ref(self) -> str:
        """The reference that names this version: ``name@vN``."""
        return f"{self.name}@v{self.version}"

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["schema"] = [list(c) for c in self.schema]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetVersion:
        return cls(**{**d, "schema": [(str(a), str(b)) for a, b in d["schema"]]})


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the hash-chained audit log: who did what to which object, when and why."""

    seq: int
    ts: int
    actor: str
    action: str
    object_type: str
    object_id: str
    before: Any
    after: Any
    reason: str
    prev_hash: str = ""
    hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ContractVersion:
    """One version of a named data contract, as canonical YAML (``digest`` is BLAKE3 of it)."""

    name: str
    version: int
    digest: str
    yaml: str
    created_by: str = ""
    created_at: int = 0

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"


@dataclass(frozen=True)
class DatasetUse:
    """A run consumed a dataset version in a role (train, validation, test, …): lineage."""

    run_id: str
    dataset: DatasetVersion
    role: str


class LoggedModelStatus(enum.StrEnum):
    """Where a logged model's upload is: ``pending`` while its files arrive, then ``ready`` or
    ``failed`` (MLflow's ``LoggedModelStatus``)."""

    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class LoggedModelMetric:
    """A metric point of a logged model: logged by run ``run_id``, on a dataset when named."""

    model_id: str
    key: str
    value: float
    step: int
    timestamp: int
    run_id: str
    dataset_name: str = ""
    dataset_digest: str = ""


@dataclass(frozen=True)
class LoggedModel:
    """A model a run logged through MLflow 3's API (``mlflow.<flavor>.log_model``, autolog).

    Its files are the run's artifacts under :attr:`artifact_path` (``models/<id>``), in the same
    content-addressed store as every artifact; registering it makes a registry version of them.
    ``step`` is the run's step it was logged at (MLflow's model output; None until recorded)."""

    id: str
    experiment_id: int
    run_id: str
    name: str
    status: LoggedModelStatus
    created_at: int
    updated_at: int
    model_type: str = ""
    step: int | None = None
    deleted: bool = False
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: tuple[LoggedModelMetric, ...] = ()

    @property
    def artifact_path(self) -> str:
        """Where its files are in its run's artifacts."""
        return f"models/{self.id}"


@dataclass(frozen=True)
class RegisteredModel:
    """A named model: its versions, the aliases pointing at them, its promotion policy (YAML) and
    its tags (annotations, changed in place and audited)."""

    name: str
    description: str
    created_by: str
    created_at: int
    updated_at: int
    latest_version: int | None = None
    aliases: dict[str, int] = field(default_factory=dict)
    policy_yaml: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RegisteredModel:
        return cls(**{**d, "aliases": {str(k): int(v) for k, v in (d.get("aliases") or {}).items()}})


class _FilesRecord:
    """``to_dict``/``from_dict`` (JSON-ready) for the registry's records that carry ``files`` (a list of
    :class:`Artifact`) and, for model versions, ``datasets`` (``(name, version, role)`` lineage)."""

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["files"] = [dict(a.__dict__) for a in d["files"]]
        if "datasets" in d:
            d["datasets"] = [list(x) for x in d["datasets"]]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        data = {**d, "files": [Artifact(**a) for a in d.get("files") or []]}
        if "datasets" in d:
            data["datasets"] = [(str(n), int(v), str(r)) for n, v, r in d.get("datasets") or []]
        build: Callable[..., Self] = cls
        return build(**data)


@dataclass(frozen=True)
class ModelVersionCreate(_FilesRecord):
    """What the store needs to record a model version (its files are already blobs).

    ``files`` are the model folder's files (path relative to the folder); ``datasets`` are
    extra lineage links ``(dataset name, version, role)`` on top of the source run's own.
    """

    name: str
    digest: str
    flavor: str
    files: list[Artifact]
    signature: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    datasets: list[tuple[str, int, str]] = field(default_factory=list)
    description: str = ""
    created_by: str = ""


@dataclass(frozen=True)
class ModelVersion(_FilesRecord):
    """One immutable version of a registered model.

    ``metadata`` holds the model card: task, classes, requirements, metrics, tags, input
    example, size. ``datasets`` is the lineage: the dataset versions it was trained and
    validated on, as ``(name, version, role)``. The files, signature, lineage and card never
    change; ``description`` and ``tags`` are annotations, changed in place and audited (``tags``
    starts as the card's tags).
    """

    name: str
    version: int
    digest: str
    flavor: str
    files: list[Artifact]
    signature: dict[str, Any]
    metadata: dict[str, Any]
    run_id: str | None
    datasets: list[tuple[str, int, str]]
    description: str
    created_by: str
    created_at: int
    aliases: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """The reference that names this version: ``models:/name/N``."""
        return f"models:/{self.name}/{self.version}"

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class ModelRecord(_FilesRecord):
    """An append-only record about a model version: an evaluation, an approval or a promotion.

    ``body`` is the record's JSON content; ``files`` are blobs it refers to (evaluation plots).
    """

    id: int
    name: str
    version: int
    kind: str
    actor: str
    body: dict[str, Any]
    created_at: int
    files: list[Artifact] = field(default_factory=list)


@dataclass(frozen=True)
class AliasMove:
    """One move of a model alias, recorded by the registry in the move's transaction.

    ``version`` is the version the alias then pointed at (None: removed), ``previous`` the one
    it pointed at before; ``audit_seq`` is the audit entry written with the move.
    """

    name: str
    alias: str
    version: int | None
    previous: int | None
    actor: str
    reason: str
    created_at: int
    audit_seq: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class DeploymentRecord:
    """One version of a named deployment: its spec as YAML (variants, weights, modes, settings)."""

    name: str
    version: int
    spec_yaml: str
    digest: str
    created_by: str
    created_at: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class PipelineSchedule:
    """A pipeline the Shipyard server runs on a timetable: a cron expression (in ``timezone``) or
    a fixed interval of ``every_seconds``. ``last_*`` describe the latest fire (None before any)."""

    name: str
    ref: str
    cron: str | None
    every_seconds: float | None
    timezone: str
    params: dict[str, Any]
    created_by: str
    created_at: int
    last_fire_time: int | None = None
    last_status: str | None = None
    last_run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PipelineSchedule:
        fields: dict[str, Any] = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**fields)


@dataclass(frozen=True)
class ScheduleFire:
    """One fire time of a schedule, claimed by exactly one server worker (``claimed_by``), with its
    outcome: ``status`` is ``running``, ``finished`` or ``failed``; ``run_id`` the pipeline run."""

    schedule: str
    fire_time: int
    claimed_by: str
    claimed_at: int
    status: str
    run_id: str | None = None
    error: str = ""
    finished_at: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Alert:
    """One alert of a rule on a deployment (or one variant of it): opened when the rule's condition
    first holds, updated on each pass where it still holds, resolved when it clears.

    At most one alert per ``(deployment, variant, rule)`` is ``firing``; ``windows`` counts the passes it
    has been seen firing, ``evidence`` holds the latest values that fired it and ``actions`` what its
    actions did (``{"webhook": {...}, "retrain": {"run_id": ...}}``). Times are epoch ms.
    """

    deployment: str
    variant: str | None
    rule: str
    expression: str
    state: str
    evidence: dict[str, Any]
    actions: dict[str, Any]
    opened_at: int
    last_seen_at: int
    resolved_at: int | None = None
    windows: int = 1
    created_by: str = ""
    id: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Alert:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True)
class MonitorReport:
    """One monitoring result for a window of a deployment's traffic: a point of its time series.

    ``kind`` says what was measured (``drift``, ``performance``, ``estimated``, ...); ``variant`` is
    ``None`` for the whole deployment. ``window_start``/``window_end`` are epoch ms of the first and
    last prediction in the window. ``summary`` holds the headline numbers (what alerts and time-series
    charts read, e.g. ``share_drifted``); ``body`` the whole report as JSON. ``id`` is given by the store.
    """

    deployment: str
    kind: str
    variant: str | None
    window_start: int
    window_end: int
    rows: int
    verdict: str
    summary: dict[str, float | None]
    body: dict[str, Any]
    created_by: str = ""
    created_at: int = 0
    id: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MonitorReport:
        fields: dict[str, Any] = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**fields)


def clean_artifact_path(path: str) -> str:
    """Normalise a logical artifact path; refuse absolute paths, ``..`` escapes and names that no
    file system could hold on download (a component over 255 bytes, a path over 1,024 characters).

    Example:
        >>> clean_artifact_path("model/./weights.bin")
        'model/weights.bin'
    """
    if not isinstance(path, str) or not path.strip():
        raise UnsafePath("Artifact path must be a non-empty string")
    if "\x00" in path or "\\" in path:
        raise UnsafePath(f"Artifact path {path!r} contains a NUL byte or a backslash")
    if path.startswith("/"):
        raise UnsafePath(f"Artifact path {path!r} is absolute; use a relative path such as 'model/file.bin'")
    norm = posixpath.normpath(path)
    if norm == ".." or norm.startswith("../") or norm == ".":
        raise UnsafePath(f"Artifact path {path!r} escapes the run's artifact root")
    if len(norm) > MAX_ARTIFACT_PATH:
        raise UnsafePath(
            f"Artifact path {norm[:60]!r}… is {len(norm)} characters long; the limit is {MAX_ARTIFACT_PATH}"
        )
    for part in norm.split("/"):
        if len(part.encode()) > MAX_PATH_COMPONENT_BYTES:  # no file system could download it
            raise UnsafePath(
                f"Artifact path {norm[:60]!r}… has a component of {len(part.encode())} bytes "
                f"({part[:40]!r}…); file systems allow {MAX_PATH_COMPONENT_BYTES}: use a shorter name"
            )
    return norm


MAX_ARTIFACT_PATH = 1024
"""Longest logical artifact path, in characters (the stores' column width)."""
MAX_PATH_COMPONENT_BYTES = 255
"""Longest file or folder name of an artifact path, in UTF-8 bytes (ext4, APFS, NTFS: 255)."""
