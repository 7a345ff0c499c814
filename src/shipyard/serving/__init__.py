"""The model server (layer 4): deployments of one or more model versions behind ``POST /predict`` (and
MLflow's scoring protocol, ``POST /invocations``, for clients of ``mlflow models serve``) — with
adaptive micro-batching, A/B, canary and shadow variants, zero-downtime swaps when an alias moves, a
Parquet prediction log and Prometheus metrics — built by :func:`create_deployment_app` and run under
uvicorn by :func:`serve_deployment` (``shipyard serve``), both configured by :class:`ServeOptions`. One
model is served as a one-variant deployment (:func:`single_model_deployment`). Deployments are versioned
records in the store (:mod:`shipyard.serving.manage`).

The app modules pull in FastAPI, uvicorn and pandas, so they load on first use: importing this package
(as the CLI does for ``shipyard deployments``) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ModelService",
    "ServeOptions",
    "create_deployment_app",
    "deployment_app_from_env",
    "open_prediction_log",
    "read_prediction_log",
    "serve_deployment",
    "single_model_deployment",
]

_HOME = {
    "ModelService": "shipyard.serving.service",
    "ServeOptions": "shipyard.serving.options",
    "create_deployment_app": "shipyard.serving.app",
    "deployment_app_from_env": "shipyard.serving.app",
    "open_prediction_log": "shipyard.serving.predlog",
    "read_prediction_log": "shipyard.serving.predlog",
    "serve_deployment": "shipyard.serving.app",
    "single_model_deployment": "shipyard.serving.deployment",
}

_REMOVED = {
    "create_model_app": "create_deployment_app(single_model_deployment(str(model_dir)), ServeOptions(...))",
    "serve_model": "serve_deployment(single_model_deployment(str(model_dir)), ServeOptions(...))",
    "app_from_env": "deployment_app_from_env (serve_deployment sets SHIPYARD_SERVE_DEPLOYMENT for it)",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        if name in _REMOVED:
            raise AttributeError(
                f"shipyard.serving.{name} was removed: one model is served as a one-variant deployment; "
                f"use {_REMOVED[name]}"
            )
        raise AttributeError(f"module 'shipyard.serving' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
