"""Shipyard: track experiments, version data, register, serve and monitor models — one loop.

Example:
    >>> import shipyard as sy
    >>> with sy.start_run(experiment="churn", params={"C": 0.1}) as run:  # doctest: +SKIP
    ...     run.log_metric("auc", 0.93)
"""

import importlib
from typing import Any

from shipyard.config import Settings, load_settings
from shipyard.data.versions import diff_datasets, load_dataset, load_profile, log_dataset
from shipyard.entities import Artifact, DatasetVersion, Experiment, Run, RunStatus
from shipyard.errors import ShipyardError
from shipyard.tracking import ActiveRun, Client, GcReport, autolog, disable_autolog
from shipyard.tracking.fluent import (
    active_run,
    compare_runs,
    end_run,
    get_client,
    get_metric_history,
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

# Heavier parts of the SDK (polars-backed), imported on first use so `import shipyard` stays cheap.
_LAZY = {
    "Contract": "shipyard.data.contracts",
    "infer_contract": "shipyard.data.contracts",
    "load_contract": "shipyard.data.registry",
    "register_contract": "shipyard.data.registry",
    "validate": "shipyard.data.validation",
    "ValidationFailed": "shipyard.data.validation",
    # the model registry (layer 3); "module:attribute" where the SDK name differs
    "register_model": "shipyard.registry.core",
    "log_model": "shipyard.registry.core",
    "load_model": "shipyard.registry.core",
    "download_model": "shipyard.registry.core",
    "get_model_version": "shipyard.registry.core",
    "list_models": "shipyard.registry.core",
    "evaluate": "shipyard.registry.governance",
    "promote_model": "shipyard.registry.governance:promote",
    "approve_model": "shipyard.registry.governance:approve",
    "reject_model": "shipyard.registry.governance:reject",
    "rollback_model": "shipyard.registry.governance:rollback",
    "set_promotion_policy": "shipyard.registry.governance:set_policy",
    "PromotionPolicy": "shipyard.registry.policy",
    "export_onnx": "shipyard.registry.onnx_export",
    # deployments (layer 4): versioned specs that model servers follow
    "deploy": "shipyard.serving.manage",
    "get_deployment": "shipyard.serving.manage",
    "promote_variant": "shipyard.serving.manage",
    "rollback_deployment": "shipyard.serving.manage",
    "read_prediction_log": "shipyard.serving.predlog",
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'shipyard' has no attribute {name!r}")
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute or name)


__all__ = [
    "ActiveRun",
    "Artifact",
    "Client",
    "Contract",
    "DatasetVersion",
    "Experiment",
    "GcReport",
    "PromotionPolicy",
    "Run",
    "RunStatus",
    "Settings",
    "ShipyardError",
    "ValidationFailed",
    "__version__",
    "active_run",
    "approve_model",
    "autolog",
    "compare_runs",
    "deploy",
    "diff_datasets",
    "disable_autolog",
    "download_model",
    "end_run",
    "evaluate",
    "export_onnx",
    "get_client",
    "get_deployment",
    "get_metric_history",
    "get_model_version",
    "infer_contract",
    "list_models",
    "load_contract",
    "load_dataset",
    "load_model",
    "load_profile",
    "load_settings",
    "log_artifact",
    "log_dataset",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "promote_model",
    "promote_variant",
    "read_prediction_log",
    "register_contract",
    "register_model",
    "reject_model",
    "rollback_deployment",
    "rollback_model",
    "search_runs",
    "set_promotion_policy",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
    "validate",
]
