"""The model server (layer 4): deployments of one or more model versions behind ``POST /predict`` — with
adaptive micro-batching, A/B, canary and shadow variants, zero-downtime swaps when an alias moves, a
Parquet prediction log and Prometheus metrics — built by :func:`create_deployment_app` and run under
uvicorn by :func:`serve_deployment` (``shipyard serve``). Deployments are versioned records in the store
(:mod:`shipyard.serving.manage`).

The app modules pull in FastAPI, uvicorn and pandas, so they load on first use: importing this package
(as the CLI does for ``shipyard deployments``) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ModelService",
    "app_from_env",
    "create_deployment_app",
    "create_model_app",
    "deployment_app_from_env",
    "open_prediction_log",
    "read_prediction_log",
    "serve_deployment",
    "serve_model",
]

_HOME = {
    "ModelService": "shipyard.serving.app",
    "app_from_env": "shipyard.serving.app",
    "create_deployment_app": "shipyard.serving.app",
    "create_model_app": "shipyard.serving.app",
    "deployment_app_from_env": "shipyard.serving.app",
    "open_prediction_log": "shipyard.serving.predlog",
    "read_prediction_log": "shipyard.serving.predlog",
    "serve_deployment": "shipyard.serving.app",
    "serve_model": "shipyard.serving.app",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard.serving' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
