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
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "ActiveRun",
    "Artifact",
    "Client",
    "Contract",
    "DatasetVersion",
    "Experiment",
    "GcReport",
    "Run",
    "RunStatus",
    "Settings",
    "ShipyardError",
    "ValidationFailed",
    "__version__",
    "active_run",
    "autolog",
    "compare_runs",
    "diff_datasets",
    "disable_autolog",
    "end_run",
    "get_client",
    "get_metric_history",
    "infer_contract",
    "load_contract",
    "load_dataset",
    "load_profile",
    "load_settings",
    "log_artifact",
    "log_dataset",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "register_contract",
    "search_runs",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
    "validate",
]
