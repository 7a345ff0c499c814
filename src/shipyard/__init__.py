"""Shipyard: track experiments, version data, register, serve and monitor models — one loop.

Example:
    >>> import shipyard as sy
    >>> with sy.start_run(experiment="churn", params={"C": 0.1}) as run:  # doctest: +SKIP
    ...     run.log_metric("auc", 0.93)
"""

import importlib
from typing import TYPE_CHECKING, Any

from shipyard.audit import ChainReport
from shipyard.config import Settings, load_settings
from shipyard.data.versions import diff_datasets, load_dataset, load_profile, log_dataset
from shipyard.entities import (
    Alert,
    Artifact,
    AuditEntry,
    ContractVersion,
    DatasetUse,
    DatasetVersion,
    DeploymentRecord,
    Experiment,
    ModelRecord,
    ModelVersion,
    PipelineSchedule,
    RegisteredModel,
    Run,
    RunStatus,
    ScheduleFire,
)
from shipyard.errors import (
    AlreadyExists,
    ArtifactNotFound,
    BlobNotFound,
    ConfigError,
    DigestMismatch,
    ExperimentNotFound,
    FilterSyntaxError,
    IntegrityError,
    InvalidInput,
    InvalidMetricValue,
    InvalidState,
    MissingExtra,
    ModelNotFound,
    NotFound,
    NotReady,
    PayloadTooLarge,
    PermissionDenied,
    PipelineFailed,
    RateLimited,
    RunNotFound,
    SchemaError,
    SchemaTooNew,
    ServerUnreachable,
    ShipyardError,
    SignatureMismatch,
    StepContractViolation,
    StorageFull,
    StorageReadOnly,
    StoreUnavailable,
    Unauthenticated,
    UnsafeModel,
    UnsafePath,
    ValidationFailed,
)
from shipyard.tracking import ActiveRun, Client, GcReport, autolog, disable_autolog
from shipyard.tracking.fluent import (
    active_run,
    compare_runs,
    end_run,
    get_client,
    get_metric_history,
    get_run,
    list_audit,
    list_datasets,
    log_artifact,
    log_dict,
    log_figure,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    search_runs,
    set_tag,
    set_tags,
    set_tracking_uri,
    start_run,
)
from shipyard.version import __version__

# Heavier parts of the SDK (polars, pandas, pydantic models, flavors), imported on first use so
# `import shipyard` stays cheap. The TYPE_CHECKING block below mirrors this table for type checkers
# and IDEs; tests/unit/test_public_api.py checks that the two agree.
_LAZY = {
    # data contracts, validation and PII (layer 2)
    "Contract": "shipyard.data.contracts",
    "infer_contract": "shipyard.data.contracts",
    "DatasetDiff": "shipyard.data.diff",
    "PiiReport": "shipyard.data.pii",
    "anonymize": "shipyard.data.pii",
    "scan_pii": "shipyard.data.pii",
    "Profile": "shipyard.data.profiles",
    "get_contract": "shipyard.data.registry",
    "list_contracts": "shipyard.data.registry",
    "load_contract": "shipyard.data.registry",
    "register_contract": "shipyard.data.registry",
    "ValidationReport": "shipyard.data.validation",
    "validate": "shipyard.data.validation",
    # pipelines (layer 3): steps, DAGs, caching, executors
    "Executor": "shipyard.pipelines.executor",
    "LocalExecutor": "shipyard.pipelines.executor",
    "Materializer": "shipyard.pipelines.materializers",
    "register_materializer": "shipyard.pipelines.materializers",
    "clear_cache": "shipyard.pipelines.cache",
    "Pipeline": "shipyard.pipelines.pipeline",
    "PipelineResult": "shipyard.pipelines.pipeline",
    "pipeline": "shipyard.pipelines.pipeline",
    "trigger_pipeline": "shipyard.pipelines.pipeline",
    "PipelineRunInfo": "shipyard.pipelines.reads",
    "StepRunInfo": "shipyard.pipelines.reads",
    "get_pipeline_run": "shipyard.pipelines.reads",
    "list_pipeline_runs": "shipyard.pipelines.reads",
    "delete_schedule": "shipyard.pipelines.schedule",
    "list_schedule_fires": "shipyard.pipelines.schedule",
    "list_schedules": "shipyard.pipelines.schedule",
    "schedule_pipeline": "shipyard.pipelines.schedule",
    "Step": "shipyard.pipelines.steps",
    "step": "shipyard.pipelines.steps",
    "SweepResult": "shipyard.pipelines.sweep",
    "sweep": "shipyard.pipelines.sweep",
    # the model registry (layer 3)
    "download_model": "shipyard.registry.core",
    "get_model_version": "shipyard.registry.core",
    "get_registered_model": "shipyard.registry.core",
    "list_model_records": "shipyard.registry.core",
    "list_model_versions": "shipyard.registry.core",
    "list_models": "shipyard.registry.core",
    "load_model": "shipyard.registry.core",
    "log_model": "shipyard.registry.core",
    "register_model": "shipyard.registry.core",
    "EvaluationReport": "shipyard.registry.evaluation",
    "LoadedModel": "shipyard.registry.flavors",
    "OnnxExport": "shipyard.registry.flavors",
    "GateResult": "shipyard.registry.governance",
    "PromotionResult": "shipyard.registry.governance",
    "approve_model": "shipyard.registry.governance",
    "evaluate": "shipyard.registry.governance",
    "get_promotion_policy": "shipyard.registry.governance",
    "promote_model": "shipyard.registry.governance",
    "reject_model": "shipyard.registry.governance",
    "rollback_model": "shipyard.registry.governance",
    "set_promotion_policy": "shipyard.registry.governance",
    "export_onnx": "shipyard.registry.onnx_export",
    "PromotionPolicy": "shipyard.registry.policy",
    # deployments (layer 4): versioned specs that model servers follow
    "DeploymentSpec": "shipyard.serving.deployment",
    "deploy": "shipyard.serving.manage",
    "deployment_history": "shipyard.serving.manage",
    "get_deployment": "shipyard.serving.manage",
    "get_deployment_record": "shipyard.serving.manage",
    "list_deployments": "shipyard.serving.manage",
    "promote_variant": "shipyard.serving.manage",
    "rollback_deployment": "shipyard.serving.manage",
    "read_prediction_log": "shipyard.serving.predlog",
    # monitoring (layer 4): drift of a deployment's traffic, stored as a time series
    "query_predictions": "shipyard.monitoring.query",
    "DriftReport": "shipyard.monitoring.report",
    "list_drift_reports": "shipyard.monitoring.report",
    "monitor_drift": "shipyard.monitoring.report",
    # monitoring: performance with delayed labels, estimated performance before them
    "PerformanceEstimate": "shipyard.monitoring.estimate",
    "estimate_performance": "shipyard.monitoring.estimate",
    "log_feedback": "shipyard.monitoring.labels",
    "PerformanceReport": "shipyard.monitoring.performance",
    "monitor_performance": "shipyard.monitoring.performance",
    # monitoring: the stakeholder HTML report and the status dashboard's data
    "monitor_report": "shipyard.monitoring.html_report",
    "MonitorStatus": "shipyard.monitoring.status",
    "monitor_status": "shipyard.monitoring.status",
    # monitoring: alerts and incremental passes
    "get_alert": "shipyard.monitoring.alerts",
    "list_alerts": "shipyard.monitoring.alerts",
    "MonitorPass": "shipyard.monitoring.passes",
    "monitor_pass": "shipyard.monitoring.passes",
    "ClosedLoop": "shipyard.monitoring.loop",
    "complete_retrain": "shipyard.monitoring.loop",
    "schedule_monitoring": "shipyard.monitoring.scheduled",
}

if TYPE_CHECKING:
    from shipyard.data.contracts import Contract, infer_contract
    from shipyard.data.diff import DatasetDiff
    from shipyard.data.pii import PiiReport, anonymize, scan_pii
    from shipyard.data.profiles import Profile
    from shipyard.data.registry import get_contract, list_contracts, load_contract, register_contract
    from shipyard.data.validation import ValidationReport, validate
    from shipyard.monitoring.alerts import get_alert, list_alerts
    from shipyard.monitoring.estimate import PerformanceEstimate, estimate_performance
    from shipyard.monitoring.html_report import monitor_report
    from shipyard.monitoring.labels import log_feedback
    from shipyard.monitoring.loop import ClosedLoop, complete_retrain
    from shipyard.monitoring.passes import MonitorPass, monitor_pass
    from shipyard.monitoring.performance import PerformanceReport, monitor_performance
    from shipyard.monitoring.query import query_predictions
    from shipyard.monitoring.report import DriftReport, list_drift_reports, monitor_drift
    from shipyard.monitoring.scheduled import schedule_monitoring
    from shipyard.monitoring.status import MonitorStatus, monitor_status
    from shipyard.pipelines.cache import clear_cache
    from shipyard.pipelines.executor import Executor, LocalExecutor
    from shipyard.pipelines.materializers import Materializer, register_materializer
    from shipyard.pipelines.pipeline import Pipeline, PipelineResult, pipeline, trigger_pipeline
    from shipyard.pipelines.reads import PipelineRunInfo, StepRunInfo, get_pipeline_run, list_pipeline_runs
    from shipyard.pipelines.schedule import (
        delete_schedule,
        list_schedule_fires,
        list_schedules,
        schedule_pipeline,
    )
    from shipyard.pipelines.steps import Step, step
    from shipyard.pipelines.sweep import SweepResult, sweep
    from shipyard.registry.core import (
        download_model,
        get_model_version,
        get_registered_model,
        list_model_records,
        list_model_versions,
        list_models,
        load_model,
        log_model,
        register_model,
    )
    from shipyard.registry.evaluation import EvaluationReport
    from shipyard.registry.flavors import LoadedModel, OnnxExport
    from shipyard.registry.governance import (
        GateResult,
        PromotionResult,
        approve_model,
        evaluate,
        get_promotion_policy,
        promote_model,
        reject_model,
        rollback_model,
        set_promotion_policy,
    )
    from shipyard.registry.onnx_export import export_onnx
    from shipyard.registry.policy import PromotionPolicy
    from shipyard.serving.deployment import DeploymentSpec
    from shipyard.serving.manage import (
        deploy,
        deployment_history,
        get_deployment,
        get_deployment_record,
        list_deployments,
        promote_variant,
        rollback_deployment,
    )
    from shipyard.serving.predlog import read_prediction_log


if not TYPE_CHECKING:  # hidden from type checkers, so `sy.typo` is an error for them, not Any

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'shipyard' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later look-ups skip __getattr__
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "ActiveRun",
    "Alert",
    "AlreadyExists",
    "Artifact",
    "ArtifactNotFound",
    "AuditEntry",
    "BlobNotFound",
    "ChainReport",
    "Client",
    "ClosedLoop",
    "ConfigError",
    "Contract",
    "ContractVersion",
    "DatasetDiff",
    "DatasetUse",
    "DatasetVersion",
    "DeploymentRecord",
    "DeploymentSpec",
    "DigestMismatch",
    "DriftReport",
    "EvaluationReport",
    "Executor",
    "Experiment",
    "ExperimentNotFound",
    "FilterSyntaxError",
    "GateResult",
    "GcReport",
    "IntegrityError",
    "InvalidInput",
    "InvalidMetricValue",
    "InvalidState",
    "LoadedModel",
    "LocalExecutor",
    "Materializer",
    "MissingExtra",
    "ModelNotFound",
    "ModelRecord",
    "ModelVersion",
    "MonitorPass",
    "MonitorStatus",
    "NotFound",
    "NotReady",
    "OnnxExport",
    "PayloadTooLarge",
    "PerformanceEstimate",
    "PerformanceReport",
    "PermissionDenied",
    "PiiReport",
    "Pipeline",
    "PipelineFailed",
    "PipelineResult",
    "PipelineRunInfo",
    "PipelineSchedule",
    "Profile",
    "PromotionPolicy",
    "PromotionResult",
    "RateLimited",
    "RegisteredModel",
    "Run",
    "RunNotFound",
    "RunStatus",
    "ScheduleFire",
    "SchemaError",
    "SchemaTooNew",
    "ServerUnreachable",
    "Settings",
    "ShipyardError",
    "SignatureMismatch",
    "Step",
    "StepContractViolation",
    "StepRunInfo",
    "StorageFull",
    "StorageReadOnly",
    "StoreUnavailable",
    "SweepResult",
    "Unauthenticated",
    "UnsafeModel",
    "UnsafePath",
    "ValidationFailed",
    "ValidationReport",
    "__version__",
    "active_run",
    "anonymize",
    "approve_model",
    "autolog",
    "clear_cache",
    "compare_runs",
    "complete_retrain",
    "delete_schedule",
    "deploy",
    "deployment_history",
    "diff_datasets",
    "disable_autolog",
    "download_model",
    "end_run",
    "estimate_performance",
    "evaluate",
    "export_onnx",
    "get_alert",
    "get_client",
    "get_contract",
    "get_deployment",
    "get_deployment_record",
    "get_metric_history",
    "get_model_version",
    "get_pipeline_run",
    "get_promotion_policy",
    "get_registered_model",
    "get_run",
    "infer_contract",
    "list_alerts",
    "list_audit",
    "list_contracts",
    "list_datasets",
    "list_deployments",
    "list_drift_reports",
    "list_model_records",
    "list_model_versions",
    "list_models",
    "list_pipeline_runs",
    "list_schedule_fires",
    "list_schedules",
    "load_contract",
    "load_dataset",
    "load_model",
    "load_profile",
    "load_settings",
    "log_artifact",
    "log_dataset",
    "log_dict",
    "log_feedback",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "monitor_drift",
    "monitor_pass",
    "monitor_performance",
    "monitor_report",
    "monitor_status",
    "pipeline",
    "promote_model",
    "promote_variant",
    "query_predictions",
    "read_prediction_log",
    "register_contract",
    "register_materializer",
    "register_model",
    "reject_model",
    "rollback_deployment",
    "rollback_model",
    "scan_pii",
    "schedule_monitoring",
    "schedule_pipeline",
    "search_runs",
    "set_promotion_policy",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
    "step",
    "sweep",
    "trigger_pipeline",
    "validate",
]
