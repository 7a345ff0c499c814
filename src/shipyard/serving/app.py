"""Build the model server's FastAPI application and run it under uvicorn.

``POST /predict`` is the fast path: read the body (bounded), parse JSON, build one DataFrame, check it
against the signature, predict in a worker thread (the event loop stays free for health checks),
encode with orjson. ``ModelService`` holds what a prediction needs, so later features (micro-batching,
A/B routing, shadow models) can wrap or swap it without touching the HTTP layer.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import uvicorn
from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from shipyard.config import Settings, load_settings
from shipyard.errors import ConfigError, InvalidInput, ShipyardError
from shipyard.registry.flavors import LoadedModel, load_model_dir, read_input_example
from shipyard.serving.http import (
    JSONResponse,
    RequestIdMiddleware,
    install_error_handlers,
    read_body,
    request_id,
)
from shipyard.serving.payload import jsonable, parse_json_datetimes, parse_predict_request, parse_proba_flag
from shipyard.version import __version__

__all__ = [
    "DEFAULT_MAX_REQUEST_BYTES",
    "MODEL_DIR_ENV",
    "MODEL_REF_ENV",
    "MODEL_VERSION_ENV",
    "TRUST_ENV",
    "ModelService",
    "app_from_env",
    "create_model_app",
    "digest_version",
    "serve_model",
]

MODEL_DIR_ENV = "SHIPYARD_SERVE_MODEL_DIR"
"""Environment variable naming the model directory :func:`app_from_env` serves (set by ``serve_model``)."""
MODEL_REF_ENV = "SHIPYARD_SERVE_MODEL_REF"
"""Environment variable with the reference answers name the model by (default: the directory)."""
MODEL_VERSION_ENV = "SHIPYARD_SERVE_MODEL_VERSION"
"""Environment variable with the version answers report (default: a digest prefix of the model file)."""
TRUST_ENV = "SHIPYARD_SERVE_TRUST"
"""``1`` to load a model even if its pickles reference modules outside the unpickle allowlist."""
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024

_DESCRIPTION = """\
Shipyard model server: one model behind `POST /predict`. Send `{"records": [{...}, ...]}` or
`{"columns": {"name": [...], ...}}`; add `?proba=true` for class probabilities. `GET /info` shows the
model's signature. Errors always answer `{"error": {"code", "message", "details"}}`.
"""
_PREDICT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {
                            "type": "object",
                            "properties": {
                                "records": {"type": "array", "items": {"type": "object"}},
                                "columns": {"type": "object", "additionalProperties": {"type": "array"}},
                                "proba": {"type": "boolean"},
                            },
                        },
                        {"type": "array", "items": {"type": "object"}},
                    ]
                },
            }
        },
    }
}


@dataclass
class ModelService:
    """One loaded model and the names answers give it; ``predict`` is called from a worker thread.

    Example:
        >>> service = ModelService(model, ref="models:/churn@prod", version="3")  # doctest: +SKIP
        >>> service.predict(frame, proba=False)["predictions"]  # doctest: +SKIP
        [0, 1]
    """

    model: LoadedModel
    ref: str
    version: str

    def predict(self, frame: pd.DataFrame, *, proba: bool) -> dict[str, Any]:
        """Predict on ``frame`` (the model checks it against its signature); ``proba`` adds probabilities."""
        answer: dict[str, Any] = {}
        if proba and not self.model.has_proba:
            raise InvalidInput(
                f"Model {self.ref or self.model.flavor} (task {self.model.metadata.task}) has no class "
                'probabilities; drop ?proba=true / "proba": true from the request'
            )
        frame = parse_json_datetimes(frame, self.model.signature)
        try:
            if proba:
                answer["probabilities"] = jsonable(self.model.predict_proba(frame))
                answer["classes"] = self.model.classes
            answer["predictions"] = jsonable(self.model.predict(frame))
        except ShipyardError:
            raise
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            # The signature passed, so this is data the model cannot handle (e.g. an unseen category).
            raise InvalidInput(
                f"Model {self.ref or self.model.flavor} could not predict on this input "
                f"({type(exc).__name__}: {exc}); check the values against GET /info",
                details={"exception": type(exc).__name__},
            ) from exc
        return {
            "predictions": answer.pop("predictions"),
            **answer,
            "model": self.ref,
            "version": self.version,
        }

    def info(self) -> dict[str, Any]:
        """What ``GET /info`` answers: the model's names, flavor, task, signature and requirements."""
        meta = self.model.metadata
        signature = self.model.signature
        return {
            "model": self.ref,
            "version": self.version,
            "flavor": self.model.flavor,
            "task": meta.task,
            "classes": meta.classes,
            "signature": signature.to_dict() if signature is not None else None,
            "requirements": list(meta.requirements),
            "python": meta.python,
            "shipyard": {"model": meta.shipyard, "server": __version__},
        }


def digest_version(model: LoadedModel) -> str:
    """A short stable name for what is served when no version is given: the model file's digest (12 hex).

    Example:
        >>> digest_version(model)  # doctest: +SKIP
        '3f9a0c21b7d4'
    """
    meta = model.metadata
    entry = meta.files.get(meta.model_file)
    return str(entry["digest"])[:12] if entry else ""


def create_model_app(
    model: LoadedModel,
    *,
    model_ref: str = "",
    model_version: str = "",
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
) -> FastAPI:
    """The model server application for one loaded model.

    Args:
        model: What ``shipyard.registry.flavors.load_model_dir`` returned.
        model_ref: How answers name the model (``models:/churn@prod``, ...); default: its directory.
        model_version: The version answers report (a registry version number); default: the first 12
            hex digits of the model file's digest.
        max_request_bytes: Larger request bodies are refused with 413 before they are parsed.

    Example:
        >>> from shipyard.registry.flavors import load_model_dir
        >>> app = create_model_app(load_model_dir("churn-model"), model_ref="churn")  # doctest: +SKIP
    """
    service = ModelService(model, model_ref or str(model.path), model_version or digest_version(model))
    app = FastAPI(
        title="Shipyard model server",
        version=__version__,
        description=_DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        default_response_class=JSONResponse,
    )
    app.state.service = service
    install_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)

    @app.get("/health", summary="Liveness: the process answers")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/ready", summary="Readiness: a model is loaded and can take traffic")
    async def ready() -> JSONResponse:
        return JSONResponse({"status": "ready", "model": service.ref, "version": service.version})

    @app.get("/info", summary="The served model: reference, flavor, signature, requirements")
    async def info() -> JSONResponse:
        return JSONResponse(service.info())

    @app.post("/predict", summary="Predict on records or columns", openapi_extra=_predict_openapi(model))
    async def predict(request: Request) -> Response:
        wanted = parse_proba_flag(request.query_params.get("proba"))
        _require_json(request)
        parsed = parse_predict_request(await read_body(request, max_request_bytes))
        proba = bool(wanted) or bool(parsed.proba)
        answer = await to_thread.run_sync(lambda: service.predict(parsed.frame, proba=proba))
        answer["request_id"] = request_id(request)
        return JSONResponse(answer)

    return app


def _predict_openapi(model: LoadedModel) -> dict[str, Any]:
    """The ``/predict`` request body for the docs, with the model's own input example when it has one."""
    example = read_input_example(model.path)
    if example is not None:  # rows without nulls: the OpenAPI document drops null values
        example = example.dropna() if len(example.dropna()) else example
    rows = json.loads(example.head(2).to_json(orient="records")) if example is not None else []
    body = copy.deepcopy(_PREDICT_BODY)
    body["requestBody"]["content"]["application/json"]["example"] = {"records": rows or [{"feature": 1.0}]}
    return body


def _require_json(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise StarletteHTTPException(
            415,
            f"Content-Type {media!r} is not JSON; send the body as JSON with "
            "'Content-Type: application/json' (curl: -H 'Content-Type: application/json')",
        )


def app_from_env() -> FastAPI:
    """Application factory for uvicorn workers: the model directory from ``SHIPYARD_SERVE_MODEL_DIR``.

    Example:
        ``SHIPYARD_SERVE_MODEL_DIR=churn-model uvicorn shipyard.serving:app_from_env --factory --workers 4``
    """
    path = os.environ.get(MODEL_DIR_ENV, "")
    if not path:
        raise ConfigError(
            f"{MODEL_DIR_ENV} is not set; point it at a model directory (one with shipyard-model.yaml), "
            "or run: shipyard serve DIR"
        )
    settings = load_settings()
    model = load_model_dir(Path(path), trust=os.environ.get(TRUST_ENV) == "1", settings=settings)
    return create_model_app(
        model,
        model_ref=os.environ.get(MODEL_REF_ENV, "") or path,
        model_version=os.environ.get(MODEL_VERSION_ENV, ""),
        max_request_bytes=settings.max_request_bytes,
    )


def serve_model(
    model_dir: Path,
    *,
    model_ref: str = "",
    model_version: str = "",
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    trust: bool = False,
    log_level: str = "info",
    settings: Settings | None = None,
) -> None:
    """Serve ``model_dir`` under uvicorn until interrupted; ``workers > 1`` starts that many processes.

    The model is loaded (digests verified, pickles scanned) here first, so a bad model fails fast
    with a clear message; with one worker that loaded model is the one served. ``model_ref`` and
    ``model_version`` default to ``SHIPYARD_SERVE_MODEL_REF`` / ``_VERSION`` (a packaged image sets the
    reference), then to the directory and the model file's digest.

    Example:
        >>> serve_model(Path("churn-model"), port=8080, workers=2)  # doctest: +SKIP
    """
    settings = settings or load_settings()
    model = load_model_dir(model_dir, trust=trust, settings=settings)
    ref = model_ref or os.environ.get(MODEL_REF_ENV, "") or str(model_dir)
    version = model_version or os.environ.get(MODEL_VERSION_ENV, "")
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "timeout_graceful_shutdown": 10,
    }
    if workers == 1:
        app = create_model_app(
            model, model_ref=ref, model_version=version, max_request_bytes=settings.max_request_bytes
        )
        uvicorn.run(app, **options)
        return
    del model  # each worker loads its own copy
    os.environ[MODEL_DIR_ENV] = str(model_dir.resolve())
    os.environ[MODEL_REF_ENV] = ref
    os.environ[MODEL_VERSION_ENV] = version
    os.environ[TRUST_ENV] = "1" if trust else "0"
    uvicorn.run("shipyard.serving.app:app_from_env", factory=True, workers=workers, **options)
