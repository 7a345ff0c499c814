"""The ``Store`` protocol: the only way higher layers touch metadata persistence.

``Store`` is the union of small capability protocols, one per concern, so a function can
ask for just what it uses (``collect_garbage`` takes a ``MaintenanceStore``)::

    Store
    ├── TrackingStore      experiments, runs, metrics, artifact records
    ├── DatasetStore       dataset versions, their use by runs, data contracts
    ├── ModelStore         the model registry (versions, aliases, records, policies)
    ├── DeploymentStore    versioned deployment specs
    ├── AuditStore         the hash-chained audit log
    ├── ScheduleStore      pipeline schedules the server runs (and their fire history)
    ├── MonitoringStore    monitoring results (drift, performance) per deployment, and alerts
    └── MaintenanceStore   purge, digest and run-id listings for garbage collection

``AuthStore`` (users, API tokens, grants of a team server) is a capability of its own: ``SqlStore``
keeps them, ``RestStore`` manages them through the server's admin routes. ``VerifiesCredentials``
(check a token or a password, record a security event) is ``SqlStore`` only: the server asks its
own database, never a client.

Optional capabilities are protocols of their own, checked with ``isinstance`` (never probed
with ``getattr``): ``ServesBlobs`` (the store hands out the blob store it talks to),
``RemoteGovernance`` (a server decides promotions, approvals, rollbacks and policies itself) and
``LocalGovernance`` (the store *is* the registry database: the governed operations write alias
moves, approval/promotion records and policies through it after their checks — ``SqlStore``
only; a server never exposes these raw writes), ``AnnotatesModels`` (descriptions and tags of
models and versions changed in place, audited — ``SqlStore``), ``ClaimsScheduleFires`` (the
scheduler of a server worker claims each due fire time in the database — ``SqlStore`` only) and
``EditsExperiments`` / ``EditsRuns`` (rename, delete and restore experiments, tag them, rename a
run, delete a run's tag: what MLflow's API on the server needs — ``SqlStore`` only for now), and
``KeepsLoggedModels`` (MLflow 3's logged models: a run's model, its files the run's artifacts —
``SqlStore`` only).
``ImportsRecords`` (records made by another tool written with their own numbers and times, for
``shipyard import`` — ``SqlStore`` only) is one too.

Audit entries are written only by the store methods that perform an action, in the action's
own transaction (``delete_runs``, ``create_dataset_version``, ``set_model_alias``, …, each taking
the acting user); there is no method that appends a free-form entry.

``SqlStore`` and ``RestStore`` are checked against these protocols statically (names and
signatures) in ``shipyard.store._conformance``: mypy fails when either drifts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from shipyard.entities import (
    Alert,
    AliasMove,
    Artifact,
    AuditEntry,
    ContractVersion,
    DatasetUse,
    DatasetVersion,
    DatasetVersionCreate,
    DeploymentRecord,
    Experiment,
    LogBatch,
    LoggedModel,
    LoggedModelMetric,
    LoggedModelStatus,
    MetricHistory,
    ModelRecord,
    ModelVersion,
    ModelVersionCreate,
    MonitorReport,
    PipelineSchedule,
    RegisteredModel,
    Run,
    RunCreate,
    RunPage,
    RunStatus,
    RunView,
    ScheduleFire,
)

if TYPE_CHECKING:
    from shipyard.artifacts import BlobStore
    from shipyard.audit import Checkpoint
    from shipyard.auth import ApiToken, Grant, Principal, User

__all__ = [
    "AuditStore",
    "AuthStore",
    "ChecksTokens",
    "ClaimsScheduleFires",
    "DatasetStore",
    "DeploymentStore",
    "EditsExperiments",
    "EditsRuns",
    "KeepsLoggedModels",
    "ImportsRecords",
    "LocalGovernance",
    "MaintenanceStore",
    "ModelStore",
    "MonitoringStore",
    "RemoteGovernance",
    "ScheduleStore",
    "ServesBlobs",
    "Store",
    "TrackingStore",
    "VerifiesCredentials",
]


class TrackingStore(Protocol):
    """Experiments, runs (params, tags, metrics) and the artifact records of runs.

    Writes are idempotent where a retry can happen: ``create_run`` with an existing run id
    returns the run, and ``log_batch`` with a ``batch_id`` that was applied before is a no-op.
    That is what lets the REST client replay its offline spool without duplicates.
    """

    # experiments
    def create_experiment(self, name: str, description: str = "") -> Experiment: ...

    def get_experiment(self, experiment_id: int) -> Experiment: ...

    def get_experiment_by_name(self, name: str) -> Experiment: ...

    def list_experiments(self) -> list[Experiment]: ...

    # runs
    def create_run(self, spec: RunCreate) -> Run: ...

    def get_run(self, run_id: str) -> Run: ...

    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus,
        end_time: int | None = None,
        final_batch: LogBatch | None = None,
        compact: bool = True,
        artifacts: Sequence[Artifact] = (),
    ) -> None:
        """Set a run's status. ``final_batch`` and ``artifacts`` are written first (in the same
        transaction where the backend can); ``compact=False`` says the run's metric history needs
        no merging."""

    def log_run(
        self,
        spec: RunCreate,
        *,
        status: RunStatus,
        end_time: int,
        batch: LogBatch | None = None,
        artifacts: Sequence[Artifact] = (),
    ) -> None:
        """Record a run that has already ended, whole: created from ``spec`` with ``batch`` and
        ``artifacts`` and its final ``status`` (a cached or skipped pipeline step). One transaction
        where the backend can, so no reader or crash ever sees it half written; idempotent on
        ``spec.run_id`` like ``create_run`` (a run that exists is left as it is)."""

    def log_batch(self, run_id: str, batch: LogBatch) -> None: ...

    def heartbeat(self, run_ids: Sequence[str]) -> None:
        """Record that the processes of these runs are alive (sent periodically by live runs;
        unknown or ended runs are skipped, a run marked ``killed`` by expiry is ``running`` again)."""

    def get_metric_history(self, run_id: str, key: str) -> MetricHistory: ...

    def search_runs(
        self,
        experiment_ids: Sequence[int] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        limit: int = 1000,
        page_token: str | None = None,
        columns: Sequence[str] | None = None,
        view: RunView | str = RunView.ACTIVE,
    ) -> RunPage:
        """A page of the runs matching ``filter`` in ``order_by``'s order (ties: newest first).
        ``view`` says which runs are listed (``RunView``: active ones, deleted ones not purged yet,
        or all); a bad value is ``InvalidInput``."""

    def delete_runs(self, run_ids: Iterable[str], actor: str = "", reason: str = "") -> int:
        """Mark runs deleted; each deletion is audited (by ``actor``, with ``reason``)."""

    def restore_runs(self, run_ids: Iterable[str], actor: str = "", reason: str = "") -> int: ...

    # artifacts (the logical path -> digest mapping; bytes live in a BlobStore)
    def record_artifacts(self, run_id: str, artifacts: Sequence[Artifact]) -> None: ...

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]: ...


class DatasetStore(Protocol):
    """Dataset versions (immutable; the bytes live in the blob store as Parquet), their use by
    runs, and data contracts versioned by name. A new dataset version or contract version is
    audited (by its ``created_by``) in the same transaction."""

    def create_dataset_version(self, spec: DatasetVersionCreate) -> DatasetVersion: ...

    def get_dataset_version(self, name: str, ref: str = "latest") -> DatasetVersion: ...

    def list_dataset_versions(self, name: str | None = None) -> list[DatasetVersion]: ...

    def record_dataset_use(self, run_id: str, name: str, version: int, role: str) -> None: ...

    def list_run_datasets(self, run_id: str) -> list[DatasetUse]: ...

    def save_contract(self, name: str, yaml: str, digest: str, created_by: str = "") -> ContractVersion: ...

    def get_contract(self, name: str, ref: str = "latest") -> ContractVersion: ...

    def list_contracts(self, name: str | None = None) -> list[ContractVersion]: ...


class ModelStore(Protocol):
    """The model registry (files live in the blob store; every change is audited in the same
    transaction). Governed changes (alias moves, approvals, promotions, policies) are not here:
    see ``RemoteGovernance`` and ``LocalGovernance``."""

    def create_registered_model(
        self, name: str, description: str = "", created_by: str = ""
    ) -> RegisteredModel: ...

    def get_registered_model(self, name: str) -> RegisteredModel: ...

    def list_registered_models(self) -> list[RegisteredModel]: ...

    def create_model_version(self, spec: ModelVersionCreate) -> ModelVersion: ...

    def get_model_version(self, name: str, ref: str | int = "latest") -> ModelVersion:
        """``ref``: ``latest``, a version number (``7`` or ``v7``) or an alias (``champion``)."""

    def list_model_versions(self, name: str) -> list[ModelVersion]: ...

    def models_for_run(self, run_id: str) -> list[ModelVersion]: ...

    def list_alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        """Every recorded move of the model's aliases (or of ``alias``), oldest first."""

    def add_model_evaluation(
        self,
        name: str,
        version: int,
        actor: str,
        body: dict[str, Any],
        *,
        files: Sequence[Artifact] = (),
    ) -> ModelRecord:
        """Store an evaluation report on a version (kind ``evaluation``, audited)."""

    def record_trusted_load(self, name: str, version: int, actor: str, reason: str = "") -> None:
        """Audit that ``actor`` loaded the version with ``trust=True``."""

    def list_model_records(
        self, name: str, version: int | None = None, kind: str | None = None
    ) -> list[ModelRecord]: ...


class DeploymentStore(Protocol):
    """Versioned specs of which model versions serve traffic (every save audited)."""

    def save_deployment(
        self, name: str, spec_yaml: str, actor: str, reason: str = ""
    ) -> DeploymentRecord: ...

    def get_deployment(self, name: str, ref: str | int = "latest") -> DeploymentRecord: ...

    def list_deployments(self, name: str | None = None) -> list[DeploymentRecord]:
        """The latest version of every deployment, or every version of ``name``."""


class AuditStore(Protocol):
    """The hash-chained audit log: read it, and checkpoint its head outside the database.

    Entries are appended only by the methods that act (see the module docstring).
    """

    def list_audit(
        self,
        after_seq: int = 0,
        limit: int = 1000,
        actor: str | None = None,
        action: str | None = None,
        object_type: str | None = None,
        object_id: str | None = None,
    ) -> list[AuditEntry]: ...

    def audit_head(self) -> Checkpoint:
        """The chain's head now: last ``seq`` and ``hash``, entry ``count``, ``time`` (keyed if a
        key is configured where the database is)."""

    def list_audit_checkpoints(self) -> list[Checkpoint]:
        """The checkpoints written outside the database, in ``seq`` order."""

    def write_audit_checkpoint(self) -> Checkpoint:
        """Checkpoint the head now (outside the database) and return it."""


class ScheduleStore(Protocol):
    """Pipelines the Shipyard server runs on a timetable (``shipyard pipelines schedule``), and
    the history of their fires. Saving and deleting are audited (by ``created_by`` / ``actor``)."""

    def save_schedule(self, schedule: PipelineSchedule) -> PipelineSchedule:
        """Create the schedule, or replace the one of the same name (its fire history stays)."""

    def get_schedule(self, name: str) -> PipelineSchedule: ...

    def list_schedules(self) -> list[PipelineSchedule]: ...

    def delete_schedule(self, name: str, actor: str = "") -> None: ...

    def list_schedule_fires(self, name: str, limit: int = 100) -> list[ScheduleFire]:
        """The schedule's fires, newest first."""


class MonitoringStore(Protocol):
    """Monitoring results, one per deployment, kind and window: read back as a time series.

    Reports are observations, not actions, so saving one is not audited (the pass that acts on one,
    an alert or a retraining, is).
    """

    def save_monitor_report(self, report: MonitorReport) -> MonitorReport:
        """Store a report (its ``id`` and ``created_at`` are assigned) and return it as stored."""

    def get_monitor_report(self, report_id: int) -> MonitorReport: ...

    def list_monitor_reports(
        self,
        deployment: str,
        kind: str | None = None,
        variant: str | None = None,
        since: int | None = None,
        limit: int = 1000,
    ) -> list[MonitorReport]:
        """Reports of ``deployment`` whose window ends at or after ``since`` (epoch ms), oldest
        first; the newest ``limit`` of them. ``variant=""`` selects whole-deployment reports."""

    # alerts: at most one firing per (deployment, variant, rule); opening and resolving are audited
    def fire_alert(
        self,
        deployment: str,
        variant: str | None,
        rule: str,
        expression: str,
        evidence: dict[str, Any],
        actor: str = "",
    ) -> Alert:
        """Open an alert (audited ``alert.open``; ``windows == 1``) or, when the rule's alert already
        fires, update its evidence, ``last_seen_at`` and ``windows``."""

    def resolve_alert(
        self, deployment: str, variant: str | None, rule: str, evidence: dict[str, Any], actor: str = ""
    ) -> Alert | None:
        """Resolve the rule's firing alert (audited ``alert.resolve``); ``None`` when none fires."""

    def record_alert_actions(self, alert_id: int, actions: dict[str, Any]) -> Alert:
        """Merge what an alert's actions did (a webhook's answer, a pipeline run id) into it."""

    def get_alert(self, alert_id: int) -> Alert: ...

    def list_alerts(
        self, deployment: str | None = None, state: str | None = None, limit: int = 1000
    ) -> list[Alert]:
        """Alerts, most recently seen first; only ``state`` (``firing``/``resolved``) when given."""


class MaintenanceStore(Protocol):
    """What garbage collection needs: purge deleted runs, say which digests are still used."""

    def purge_deleted_runs(self, batch_size: int = 500) -> int: ...

    def referenced_digests(self, digests: Sequence[str]) -> set[str]:
        """The digests still used by run artifacts, dataset versions, profiles or model files."""

    def iter_run_ids(self, batch_size: int = 1000) -> Iterator[list[str]]: ...

    def expire_stale_runs(self) -> list[str]:
        """Mark ``killed`` the ``running`` runs whose heartbeat is older than the store's
        ``run_heartbeat_timeout`` (their process died); the ids marked."""


@runtime_checkable
class Store(
    TrackingStore,
    DatasetStore,
    ModelStore,
    DeploymentStore,
    AuditStore,
    ScheduleStore,
    MonitoringStore,
    MaintenanceStore,
    Protocol,
):
    """Metadata store: every capability. Implementations: ``SqlStore`` (SQLite, PostgreSQL) and
    ``RestStore`` (a Shipyard server).

    Example:
        >>> from shipyard.store import open_store
        >>> store: Store = open_store("sqlite:///:memory:")
        >>> store.create_experiment("churn").name
        'churn'
    """

    uri: str

    def close(self) -> None: ...

    def schema_version(self) -> str: ...


# -- optional capabilities (check with isinstance) ---------------------------------------------
@runtime_checkable
class ServesBlobs(Protocol):
    """A store that also hands out the blob store it talks to (``RestStore``: the server's blobs).

    A store without it keeps blobs wherever ``Settings.artifact_uri`` points.

    Example:
        >>> blobs = store.blob_store() if isinstance(store, ServesBlobs) else None  # doctest: +SKIP
    """

    def blob_store(self) -> BlobStore: ...


@runtime_checkable
class DefersRunStarts(Protocol):
    """A store that may hold a run's create back and send it later, with the run's end when the
    run is short (``RestStore``: one request for a whole short run).

    ``send_deferred`` sends the held-back creates of ``run_ids`` now (all of them when None); the
    SDK's flusher calls it every ``flush_interval``, so a run shows on the server within that time.

    Example:
        >>> if isinstance(store, DefersRunStarts):  # doctest: +SKIP
        ...     store.send_deferred([run.id])
    """

    def send_deferred(self, run_ids: Sequence[str] | None = None) -> None: ...


@runtime_checkable
class RemoteGovernance(Protocol):
    """A store whose server decides governed actions itself (gates, four eyes, roles live there).

    ``RestStore`` has it: a client never decides a promotion against a server's records on its own.
    Return values are the wire shapes (``remote_promote`` answers ``PromotionResult.to_dict()``).

    Example:
        >>> if isinstance(store, RemoteGovernance):  # doctest: +SKIP
        ...     store.remote_rollback("churn", "ann", None, "champion", "bad July data")
    """

    def remote_promote(self, name: str, version: int, actor: str, to: str, reason: str) -> dict[str, Any]: ...

    def remote_decide(
        self, name: str, version: int, actor: str, decision: str, comment: str
    ) -> ModelRecord: ...

    def remote_rollback(self, name: str, actor: str, to: int | None, alias: str, reason: str) -> int: ...

    def remote_set_policy(
        self, name: str, actor: str, policy_yaml: str | None, reason: str
    ) -> RegisteredModel: ...


@runtime_checkable
class LocalGovernance(Protocol):
    """A store that is the registry's database: the governed operations (promote, approve,
    reject, rollback, set policy) make their checks, then write through these methods.

    ``SqlStore`` has it; ``RestStore`` does not (a server runs the governed operations itself,
    so no client can move an alias, forge an approval or drop a policy with a raw write).

    Example:
        >>> if isinstance(store, LocalGovernance):  # doctest: +SKIP
        ...     store.set_model_alias("churn", "champion", 7, "ann", "promotion", expect=6)
    """

    def set_model_policy(
        self, name: str, policy_yaml: str | None, actor: str, reason: str = ""
    ) -> RegisteredModel: ...

    def set_model_alias(
        self,
        name: str,
        alias: str,
        version: int | None,
        actor: str,
        reason: str = "",
        *,
        expect: int | None | Literal["any"] = "any",
    ) -> int | None:
        """Point ``alias`` at ``version`` (None removes it); audited and recorded in the alias
        history in one transaction. ``expect`` fails the move if the alias moved meanwhile."""

    def add_model_record(
        self,
        name: str,
        version: int,
        kind: str,
        actor: str,
        body: dict[str, Any],
        *,
        files: Sequence[Artifact] = (),
        audit_action: str | None = None,
        reason: str = "",
    ) -> ModelRecord: ...


@runtime_checkable
class AnnotatesModels(Protocol):
    """A store that changes the registry's annotations in place: the description and tags of a
    registered model (``version=None``) or of one version. Each change is audited in its own
    transaction; a version's files, signature, lineage and card never change.

    ``SqlStore`` has it (the server's MLflow-compatible registry API writes through it).

    Example:
        >>> if isinstance(store, AnnotatesModels):  # doctest: +SKIP
        ...     store.set_model_tag("churn", 7, "validated", "yes", "ann")
    """

    def set_model_description(self, name: str, version: int | None, description: str, actor: str) -> None: ...

    def set_model_tag(self, name: str, version: int | None, key: str, value: str, actor: str) -> None:
        """Set (or replace) a tag; keys are 1-250 characters, values at most 100,000."""

    def delete_model_tag(self, name: str, version: int | None, key: str, actor: str) -> None:
        """Remove a tag (nothing happens, and nothing is audited, when it is not set)."""


@runtime_checkable
class ClaimsScheduleFires(Protocol):
    """A store that is the schedules' database: each server worker's scheduler claims a due fire
    time here, and exactly one claim of a ``(schedule, fire_time)`` wins (``SqlStore`` only; no
    client can claim or forge a fire over REST).

    Example:
        >>> if isinstance(store, ClaimsScheduleFires):  # doctest: +SKIP
        ...     won = store.claim_schedule_fire("nightly", fire_time_ms, "host:1234")
    """

    def claim_schedule_fire(self, name: str, fire_time: int, claimed_by: str) -> bool: ...

    def finish_schedule_fire(
        self, name: str, fire_time: int, status: str, run_id: str | None = None, error: str = ""
    ) -> None: ...


@runtime_checkable
class EditsExperiments(Protocol):
    """Experiments renamed, deleted and restored, and their tags (``SqlStore``; the server's
    MLflow-compatible API calls these).

    Deleting an experiment marks it and its runs deleted, restoring brings back it and its deleted
    runs (MLflow's semantics); each run's change is audited as ``delete_runs`` audits it, and the
    experiment's own change as ``experiment.delete`` / ``experiment.restore`` /
    ``experiment.update``. A deleted experiment takes no new runs (``InvalidState``), is left out of
    ``list_experiments`` and is still found by id or name (``Experiment.deleted``).

    Example:
        >>> if isinstance(store, EditsExperiments):  # doctest: +SKIP
        ...     store.delete_experiment(3, actor="ann", reason="superseded")
    """

    def update_experiment(
        self, experiment_id: int, actor: str, *, name: str | None = None, description: str | None = None
    ) -> Experiment:
        """Rename the experiment and/or set its description (an active experiment only)."""

    def delete_experiment(self, experiment_id: int, actor: str, reason: str = "") -> Experiment: ...

    def restore_experiment(self, experiment_id: int, actor: str, reason: str = "") -> Experiment: ...

    def list_deleted_experiments(self) -> list[Experiment]: ...

    def experiment_tags(self, experiment_ids: Sequence[int]) -> dict[int, dict[str, str]]:
        """The tags of each experiment asked for (experiments without tags are left out)."""

    def set_experiment_tag(self, experiment_id: int, key: str, value: str) -> None: ...

    def delete_experiment_tag(self, experiment_id: int, key: str) -> None:
        """Remove a tag; ``NotFound`` when the experiment has no tag ``key``."""


@runtime_checkable
class EditsRuns(Protocol):
    """A run renamed, and one of its tags deleted (``SqlStore``; MLflow's API calls these).
    Both refuse a deleted run (``InvalidState``), as logging to it does.

    Example:
        >>> if isinstance(store, EditsRuns):  # doctest: +SKIP
        ...     store.rename_run(run.id, "baseline")
    """

    def rename_run(self, run_id: str, name: str) -> None: ...

    def delete_run_tag(self, run_id: str, key: str) -> None:
        """Remove a tag; ``NotFound`` when the run has no tag ``key``."""


@runtime_checkable
class KeepsLoggedModels(Protocol):
    """MLflow 3's logged models (``SqlStore``; the server's MLflow-compatible API calls these).

    A logged model belongs to the live run that logs it (its experiment is the run's); its files
    are that run's artifacts under ``LoggedModel.artifact_path``, recorded like any artifact. The
    rows here keep what MLflow's client reads about it: name, type, status, the run's step it
    was logged at, params, tags and metric points. Deleting one marks it deleted (audited
    ``logged_model.delete``); a deleted model is found only with ``allow_deleted`` and takes no
    changes (``NotFound``). Params keep their first value, as a run's do (``InvalidInput``).

    Example:
        >>> if isinstance(store, KeepsLoggedModels):  # doctest: +SKIP
        ...     model = store.create_logged_model(run.id, "model", params={"C": "1.0"})
        ...     store.update_logged_model(model.id, status=LoggedModelStatus.READY)
    """

    def create_logged_model(
        self,
        run_id: str,
        name: str,
        *,
        model_type: str = "",
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> LoggedModel:
        """A new ``pending`` model of the run, with a new id (``m-`` and 32 hex digits)."""

    def get_logged_model(self, model_id: str, *, allow_deleted: bool = False) -> LoggedModel: ...

    def list_logged_models(
        self, experiment_ids: Sequence[int], *, name: str | None = None, run_id: str | None = None
    ) -> list[LoggedModel]:
        """The models (not deleted) of these experiments, of one name and/or run when given,
        newest first."""

    def update_logged_model(
        self, model_id: str, *, status: LoggedModelStatus | None = None, step: int | None = None
    ) -> LoggedModel:
        """Set its status (finalize) and/or the run's step it was logged at."""

    def delete_logged_model(self, model_id: str, actor: str, reason: str = "") -> None: ...

    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, str]) -> None: ...

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        """Remove a tag; ``NotFound`` when the model has no tag ``key``."""

    def log_logged_model_params(self, model_id: str, params: Mapping[str, str]) -> None: ...

    def log_logged_model_metrics(self, metrics: Sequence[LoggedModelMetric]) -> None:
        """Record points on their models (a point logged again with the same model, key, step,
        timestamp and run replaces the earlier one)."""


@runtime_checkable
class ImportsRecords(Protocol):
    """A store that takes records made by another tool (MLflow) with their own times and version
    numbers: what ``shipyard import`` writes through (``SqlStore`` only; an import is an operator's
    bulk write into the database, not a client request).

    Each method creates what is missing and otherwise returns what exists, unchanged, with
    ``created=False`` (so an interrupted import can be run again). A creation is audited as
    ``experiment.import`` / ``model.import`` / ``model_version.import`` by ``actor``, with ``origin``
    (the source's own id, e.g. ``{"system": "mlflow", "id": "17"}``) in the entry: the mapping
    from the source's ids to Shipyard's is in the hash chain. Runs need no method here: a
    ``RunCreate`` carries the run's own id and start time and ``log_run`` its end.

    Example:
        >>> if isinstance(store, ImportsRecords):  # doctest: +SKIP
        ...     exp, created = store.import_experiment("churn", "", 1700000000000, "ann", {"id": "3"})
    """

    def import_experiment(
        self,
        name: str,
        description: str,
        created_at: int,
        actor: str,
        origin: dict[str, Any],
        *,
        tags: Mapping[str, str] | None = None,
    ) -> tuple[Experiment, bool]:
        """The experiment with its tags; one of that name, deleted or not, is returned as it is."""

    def import_registered_model(
        self,
        name: str,
        description: str,
        created_by: str,
        created_at: int,
        updated_at: int,
        actor: str,
        origin: dict[str, Any],
        *,
        tags: Mapping[str, str] | None = None,
    ) -> tuple[RegisteredModel, bool]: ...

    def import_model_version(
        self, spec: ModelVersionCreate, version: int, created_at: int, actor: str, origin: dict[str, Any]
    ) -> tuple[ModelVersion, bool]:
        """Version ``version`` of ``spec.name`` (the model must exist), as given, its tags the card's
        (``spec.metadata["tags"]``); a version of that number that exists is returned as it is,
        whatever its content (the caller compares)."""

    def import_logged_model(
        self, model: LoggedModel, actor: str, origin: dict[str, Any]
    ) -> tuple[LoggedModel, bool]:
        """MLflow 3's logged model ``model`` of its run ``model.run_id`` (which must exist), with its
        own id, times, status, step, params, tags and metric points; its experiment is the run's
        (``model.experiment_id`` is ignored). Its files are the run's artifacts under
        ``model.artifact_path``, recorded by the caller first. One of that id that exists is
        returned as it is (the caller compares)."""


@runtime_checkable
class AuthStore(Protocol):
    """Users, API tokens and grants of a team server (``SqlStore`` keeps them; ``RestStore`` asks
    the server's admin routes, which only an ``admin`` may call). Every change is audited with
    ``object_type`` ``security`` under ``actor``; token secrets are returned once, by
    :meth:`create_token`, and stored only as digests.

    Example:
        >>> if isinstance(store, AuthStore):  # doctest: +SKIP
        ...     store.create_user("ann", ["scientist"], actor="admin")
    """

    def create_user(
        self, name: str, roles: Sequence[str], actor: str, password: str | None = None
    ) -> User: ...

    def get_user(self, name: str) -> User: ...

    def list_users(self) -> list[User]: ...

    def update_user(
        self,
        name: str,
        actor: str,
        *,
        roles: Sequence[str] | None = None,
        disabled: bool | None = None,
        password: str | None = None,
    ) -> User:
        """Change a user's roles, disable or enable them, or set their password (audited)."""

    def create_token(
        self,
        user: str,
        name: str,
        actor: str,
        scopes: Sequence[str] | None = None,
        expires_at: int | None = None,
    ) -> tuple[ApiToken, str]:
        """A new token for ``user`` and its secret (shown once; only its digest is kept)."""

    def list_tokens(self, user: str | None = None) -> list[ApiToken]: ...

    def revoke_token(self, token_id: str, actor: str) -> ApiToken: ...

    def set_grant(self, user: str, object_type: str, object_id: str, role: str | None, actor: str) -> None:
        """Give ``user`` ``role`` on one experiment or model; ``role=None`` removes the grant."""

    def list_grants(
        self, object_type: str | None = None, object_id: str | None = None, user: str | None = None
    ) -> list[Grant]: ...


@runtime_checkable
class VerifiesCredentials(Protocol):
    """A store that checks credentials itself (``SqlStore`` only: the server's own database).

    ``verify_token`` reads the database on every call, so a revoked or expired token stops
    working at once in every server worker.
    """

    def verify_token(self, secret: str) -> tuple[User, ApiToken] | None:
        """The active token's user and record, or None (unknown, revoked, expired, user disabled)."""

    def check_password(self, name: str, password: str) -> User | None:
        """The enabled user whose password this is (last login noted), or None."""

    def add_token_secret(self, user: str, name: str, secret: str, actor: str) -> ApiToken:
        """Register a token whose secret the operator chose (the bootstrap admin token)."""

    def record_security_event(self, actor: str, event: str, subject: str, details: dict[str, Any]) -> None:
        """Audit a security event that changes nothing else: ``login``, ``login_failed``,
        ``auth_failed`` or ``refused`` (``object_type`` ``security``)."""


@runtime_checkable
class ChecksTokens(Protocol):
    """A store that can say whose a bearer token is (the model server checks its callers with it):
    ``SqlStore`` reads its own tables; ``RestStore`` asks the server (``GET /api/v1/auth/whoami``).
    """

    def check_token(self, secret: str) -> Principal | None:
        """The token's principal (user, roles, scopes), or None if the token is not valid."""
