"""The model server (layer 4): one loaded model behind ``POST /predict``, with ``/health``, ``/ready`` and
``/info``, built by :func:`create_model_app` and run under uvicorn by :func:`serve_model`. Requests are
JSON records or columns, checked against the model's signature; every answer carries an ``x-request-id``
and every error has the tracking server's shape ``{"error": {"code", "message", "details"}}``.
"""

from __future__ import annotations

from shipyard.serving.app import (
    MODEL_DIR_ENV,
    MODEL_REF_ENV,
    ModelService,
    app_from_env,
    create_model_app,
    serve_model,
)

__all__ = [
    "MODEL_DIR_ENV",
    "MODEL_REF_ENV",
    "ModelService",
    "app_from_env",
    "create_model_app",
    "serve_model",
]
