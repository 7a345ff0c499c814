"""Tables of the SQL metadata store (SQLAlchemy Core).

Metric storage avoids MLflow's one-row-per-point bloat: ``latest_metrics`` keeps
one row per (run, key) — what search filters and sorts on — and
``metric_chunks`` holds the history as compressed columnar blocks (see
``codec.py``; about 9 bytes per point on disk).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "HEAD_REVISION",
    "alerts",
    "api_tokens",
    "applied_batches",
    "artifacts",
    "audit_log",
    "contracts",
    "dataset_versions",
    "datasets",
    "deployments",
    "experiment_tags",
    "experiments",
    "grants",
    "latest_metrics",
    "logged_model_metrics",
    "logged_model_params",
    "logged_model_tags",
    "logged_models",
    "metadata",
    "metric_chunks",
    "model_alias_history",
    "model_aliases",
    "model_files",
    "model_records",
    "model_tags",
    "model_version_datasets",
    "model_version_tags",
    "model_versions",
    "monitor_reports",
    "params",
    "pipeline_schedules",
    "registered_models",
    "run_datasets",
    "runs",
    "schedule_fires",
    "tags",
    "users",
]

# Bump together with a new Alembic revision; a test checks they agree.
HEAD_REVISION = "0015"

metadata = MetaData()

experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", Text, nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, server_default="0"),  # (0013) with its runs
    Column("updated_at", BigInteger),  # (0013) last rename, deletion, restore or tag; NULL: never
)

# Tags of experiments (0013): MLflow's API sets them; the description stays in ``experiments``.
experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column("experiment_id", Integer, ForeignKey("experiments.id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.id"), nullable=False),
    Column("name", String(255), nullable=False, server_default=""),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger),
    Column("parent_run_id", String(32)),
    Column("user", String(255), nullable=False, server_default=""),
    Column("source", Text, nullable=False, server_default=""),
    Column("deleted", Boolean, nullable=False, server_default="0"),
    Column("heartbeat_ms", BigInteger),  # last sign of life of the run's process (0007)
    Index("ix_runs_experiment_start", "experiment_id", "start_time"),
    Index("ix_runs_start", "start_time"),
    Index("ix_runs_parent", "parent_run_id"),
    Index("ix_runs_status_heartbeat", "status", "heartbeat_ms"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
    Column("value_num", Float),
    Index("ix_params_key_value", "key", "value"),
    Index("ix_params_key_num", "key", "value_num"),
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
    Column("value_num", Float),
    Index("ix_tags_key_value", "key", "value"),
)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(255), primary_key=True),
    # NULL means NaN: SQLite cannot store NaN, and NULL keeps comparisons false on both backends.
    Column("value", Float),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

metric_chunks = Table(
    "metric_chunks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(255), nullable=False),
    Column("n", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Index("ix_metric_chunks_run_key", "run_id", "key", "id"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_artifacts_digest", "digest"),
)

# MLflow 3's logged models (0015): a model a run logged through MLflow's API. Its files are the run's
# artifacts under ``models/<id>``; these rows keep what MLflow's client reads about it.
logged_models = Table(
    "logged_models",
    metadata,
    Column("id", String(64), primary_key=True),  # m-<32 hex digits>, as MLflow names them
    Column("experiment_id", Integer, ForeignKey("experiments.id"), nullable=False),  # its run's
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("model_type", String(255), nullable=False, server_default=""),
    Column("status", String(16), nullable=False),  # pending | ready | failed
    Column("step", BigInteger),  # the run's step it was logged at; NULL: not recorded
    Column("deleted", Boolean, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_logged_models_experiment_name", "experiment_id", "name"),
    Index("ix_logged_models_run", "run_id"),
)

logged_model_params = Table(
    "logged_model_params",
    metadata,
    Column("model_id", String(64), ForeignKey("logged_models.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
)

logged_model_tags = Table(
    "logged_model_tags",
    metadata,
    Column("model_id", String(64), ForeignKey("logged_models.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
)

logged_model_metrics = Table(
    "logged_model_metrics",
    metadata,
    Column("model_id", String(64), ForeignKey("logged_models.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("step", BigInteger, primary_key=True),
    Column("timestamp", BigInteger, primary_key=True),
    Column("run_id", String(32), primary_key=True),  # the run that logged the point (any run)
    Column("value", Float),  # NULL means NaN, as in latest_metrics
    Column("dataset_name", String(255), nullable=False, server_default=""),
    Column("dataset_digest", String(255), nullable=False, server_default=""),
)

applied_batches = Table(
    "applied_batches",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("applied_at", BigInteger, nullable=False),
    Index("ix_applied_batches_run", "run_id"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("num_columns", Integer, nullable=False),
    Column("schema_json", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("source", Text, nullable=False, server_default=""),
    Column("profile_digest", String(64)),
    Column("contract_digest", String(64)),
    Column("created_by", String(255), nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_version"),
    UniqueConstraint("dataset_id", "digest", name="uq_dataset_versions_digest"),
    Index("ix_dataset_versions_digest", "digest"),
)

run_datasets = Table(
    "run_datasets",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("dataset_version_id", Integer, ForeignKey("dataset_versions.id"), primary_key=True),
    Column("role", String(64), primary_key=True),
    Index("ix_run_datasets_version", "dataset_version_id"),
)

contracts = Table(
    "contracts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("yaml", Text, nullable=False),
    Column("created_by", String(255), nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("name", "version", name="uq_contracts_version"),
    UniqueConstraint("name", "digest", name="uq_contracts_digest"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("ts", BigInteger, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("object_type", String(64), nullable=False),
    Column("object_id", String(512), nullable=False),
    Column("before_json", Text, nullable=False),
    Column("after_json", Text, nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_object", "object_type", "object_id"),
    Index("ix_audit_actor", "actor"),
)

registered_models = Table(
    "registered_models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", Text, nullable=False, server_default=""),
    Column("policy_yaml", Text),
    Column("created_by", String(255), nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("registered_models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("flavor", String(64), nullable=False),
    # No foreign key: lineage must survive a purged run (the id stays as the record of where it came from).
    Column("run_id", String(32)),
    Column("signature_json", Text, nullable=False),
    Column("metadata_json", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("created_by", String(255), nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("model_id", "version", name="uq_model_versions_version"),
    UniqueConstraint("model_id", "digest", name="uq_model_versions_digest"),
    Index("ix_model_versions_run", "run_id"),
)

model_files = Table(
    "model_files",
    metadata,
    Column("model_version_id", Integer, ForeignKey("model_versions.id"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Index("ix_model_files_digest", "digest"),
)

model_version_datasets = Table(
    "model_version_datasets",
    metadata,
    Column("model_version_id", Integer, ForeignKey("model_versions.id"), primary_key=True),
    Column("dataset_version_id", Integer, ForeignKey("dataset_versions.id"), primary_key=True),
    Column("role", String(64), primary_key=True),
    Index("ix_model_version_datasets_dataset", "dataset_version_id"),
)

# Tags of registered models and of versions (0013): annotations, changed in place and audited; a
# version's tags start as its card's (``metadata.tags``), which stays as registered.
model_tags = Table(
    "model_tags",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("model_version_id", Integer, ForeignKey("model_versions.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id"), primary_key=True),
    Column("alias", String(255), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_by", String(255), nullable=False, server_default=""),
    Column("updated_at", BigInteger, nullable=False),
)

# Every alias move, written by ``set_model_alias`` in the move's transaction (0008): rollback
# reads "which versions held the alias" (version, previous) from here, never from the audit log, and
# ``audit_seq`` names the chain entry of the same move (``shipyard audit verify`` cross-checks).
model_alias_history = Table(
    "model_alias_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("registered_models.id"), nullable=False),
    Column("alias", String(255), nullable=False),
    Column("version", Integer),  # NULL: the alias was removed
    Column("previous", Integer),
    Column("actor", String(255), nullable=False, server_default=""),
    Column("reason", Text, nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("audit_seq", Integer, nullable=False),
    Index("ix_model_alias_history_alias", "model_id", "alias", "id"),
)

model_records = Table(
    "model_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_version_id", Integer, ForeignKey("model_versions.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("body_json", Text, nullable=False),
    Column("files_json", Text, nullable=False, server_default="[]"),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_model_records_version_kind", "model_version_id", "kind", "id"),
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    Column("spec_yaml", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("created_by", String(255), nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("name", "version", name="uq_deployments_version"),
)

# Pipelines the server runs on a timetable (0009). A fire time is claimed by INSERTing its
# (schedule_id, fire_time) row: the primary key lets exactly one server worker win it.
pipeline_schedules = Table(
    "pipeline_schedules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("ref", String(1024), nullable=False),
    Column("cron", String(255)),
    Column("every_seconds", Float),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("params_json", Text, nullable=False, server_default="{}"),
    Column("created_by", String(255), nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("name", name="uq_pipeline_schedules_name"),
)

schedule_fires = Table(
    "schedule_fires",
    metadata,
    Column("schedule_id", Integer, ForeignKey("pipeline_schedules.id"), primary_key=True),
    Column("fire_time", BigInteger, primary_key=True),
    Column("claimed_by", String(255), nullable=False),
    Column("claimed_at", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # running | finished | failed
    Column("run_id", String(32)),
    Column("error", Text, nullable=False, server_default=""),
    Column("finished_at", BigInteger),
)

# Monitoring results (0010): one row per (deployment, kind, window), read back as a time series.
monitor_reports = Table(
    "monitor_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deployment", String(255), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("variant", String(255)),
    Column("window_start", BigInteger, nullable=False),
    Column("window_end", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("verdict", Text, nullable=False, server_default=""),
    Column("summary_json", Text, nullable=False, server_default="{}"),
    Column("body_json", Text, nullable=False, server_default="{}"),
    Column("created_by", String(255), nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_monitor_reports_series", "deployment", "kind", "window_end"),
)

# Alerts (0011): one row per alert; ``open_key`` is set only while it fires, so the unique index keeps at
# most one firing alert per (deployment, variant, rule) on SQLite and PostgreSQL alike (NULLs never clash).
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deployment", String(255), nullable=False),
    Column("variant", String(255)),
    Column("rule", String(255), nullable=False),
    Column("expression", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("open_key", String(800), unique=True),
    Column("evidence_json", Text, nullable=False, server_default="{}"),
    Column("actions_json", Text, nullable=False, server_default="{}"),
    Column("opened_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=False),
    Column("resolved_at", BigInteger),
    Column("windows", Integer, nullable=False, server_default="1"),
    Column("created_by", String(255), nullable=False, server_default=""),
    Index("ix_alerts_deployment_state", "deployment", "state"),
)

# Authentication (0012): users with their roles, API tokens stored only as SHA-256 digests, and
# per-experiment / per-model grants (owner, editor, reader).
users = Table(
    "users",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("roles_json", Text, nullable=False, server_default="[]"),
    Column("disabled", Boolean, nullable=False, server_default="0"),
    Column("password_hash", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("last_login_at", BigInteger),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user", String(255), ForeignKey("users.name"), nullable=False),
    Column("name", String(255), nullable=False, server_default=""),
    Column("digest", String(64), nullable=False, unique=True),
    Column("scopes_json", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger),
    Column("revoked_at", BigInteger),
    Column("last_used_at", BigInteger),
    Index("ix_api_tokens_user", "user"),
)

grants = Table(
    "grants",
    metadata,
    Column("user", String(255), ForeignKey("users.name"), primary_key=True),
    Column("object_type", String(16), primary_key=True),
    Column("object_id", String(512), primary_key=True),
    Column("role", String(16), nullable=False),
    Index("ix_grants_object", "object_type", "object_id"),
)
