"""Build the model server's FastAPI application and run it under uvicorn.

:func:`create_deployment_app` serves a deployment (variants with weights and modes, see
``shipyard.serving.deployment``); :func:`create_model_app` serves one loaded model as a one-variant
deployment. The HTTP layer is thin: read the body (bounded), parse it, hand a :class:`PredictCall` to the
:class:`~shipyard.serving.engine.Engine` (routing, micro-batching, shadows, prediction log, reloads), and
encode the answer (orjson, or Arrow when asked).

Endpoints: ``POST /predict``, ``POST /explain``, ``POST /feedback``, ``GET /health`` (liveness),
``GET /ready`` (503 until every live variant is loaded), ``GET /info``, ``GET /metrics`` (Prometheus) and
``POST /admin/reload`` (re-resolve aliases and the stored deployment now). The admin endpoint has no
authentication of its own: bind the server to a private interface or put it behind a proxy that guards
``/admin``.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from shipyard.config import Settings, load_settings
from shipyard.errors import ConfigError
from shipyard.registry.flavors import LoadedModel, load_model_dir, read_input_example
from shipyard.serving.deployment import DeploymentSpec, parse_deployment, single_model_deployment
from shipyard.serving.engine import DeploymentReader, Engine
from shipyard.serving.http import JSONResponse, RequestIdMiddleware, install_error_handlers
from shipyard.serving.logfeed import LogFeed, PredictionSink
from shipyard.serving.metrics import ServingMetrics
from shipyard.serving.predlog import open_prediction_log
from shipyard.serving.routes import install_routes
from shipyard.serving.service import ModelService, digest_version
from shipyard.serving.slots import ModelSource, RegistrySource, StaticSource
from shipyard.tracking import Client
from shipyard.version import __version__

__all__ = [
    "DEFAULT_MAX_REQUEST_BYTES",
    "DEPLOYMENT_ENV",
    "MODEL_DIR_ENV",
    "MODEL_REF_ENV",
    "MODEL_VERSION_ENV",
    "TRUST_ENV",
    "ModelService",
    "app_from_env",
    "apply_overrides",
    "create_deployment_app",
    "create_model_app",
    "deployment_app_from_env",
    "digest_version",
    "serve_deployment",
    "serve_model",
    "stored_deployment_reader",
]

MODEL_DIR_ENV = "SHIPYARD_SERVE_MODEL_DIR"
"""Environment variable naming the model directory :func:`app_from_env` serves (set by ``serve_model``)."""
MODEL_REF_ENV = "SHIPYARD_SERVE_MODEL_REF"
"""Environment variable with the reference answers name the model by (default: the directory)."""
MODEL_VERSION_ENV = "SHIPYARD_SERVE_MODEL_VERSION"
"""Environment variable with the version answers report (default: a digest prefix of the model file)."""
TRUST_ENV = "SHIPYARD_SERVE_TRUST"
"""``1`` to load a model even if its pickles reference modules outside the unpickle allowlist."""
DEPLOYMENT_ENV = "SHIPYARD_SERVE_DEPLOYMENT"
"""JSON ``{"spec": {...}, "stored": name | null, "trust": bool}`` for :func:`deployment_app_from_env`."""
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024

_DESCRIPTION = """\
Shipyard model server. `POST /predict` with `{"records": [{...}, ...]}` or
`{"columns": {"name": [...], ...}}` (or an Arrow IPC stream); add `?proba=true` for class probabilities.
`GET /info` shows the variants and the signature. Errors always answer `{"error": {"code", "message",
"details"}}`.
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
            },
            "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def create_deployment_app(
    spec: DeploymentSpec | str | Path | dict[str, Any] | None,
    *,
    client: Client | None = None,
    sink: PredictionSink | None = None,
    source: ModelSource | None = None,
    stored: str | None = None,
    trust: bool = False,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    overrides: dict[str, Any] | None = None,
    settings: Settings | None = None,
    example_model: LoadedModel | None = None,
    owns_client: bool = False,
    labels: dict[str, str] | None = None,
    load_on_startup: bool = True,
) -> FastAPI:
    """The server application for a deployment.

    Models load when the app starts, before it takes traffic (unless ``app.state.engine.preload()``
    loaded them already); a variant that cannot load yet leaves ``GET /ready`` at 503 while the server
    retries in the background. The app owns ``sink``: it is closed (flushed) on graceful shutdown.

    Args:
        spec: The deployment (object, dict, YAML text or file); None with ``stored``: the stored one.
        client: Resolves ``models:/`` references and says where the prediction log goes.
        sink: The prediction log; default: opened from ``spec.prediction_log`` when it is enabled and a
            client is given.
        source: How variants' models resolve and load; default: the registry through ``client``.
        stored: The name of the stored deployment being served: the poller follows its new versions.
        trust: Load models whose pickles reference modules outside the allowlist.
        max_request_bytes: Larger request bodies are refused with 413 before they are parsed.
        overrides: Settings applied over every spec served, the stored ones included (the command
            line's ``--batch-size`` and the like; see :func:`apply_overrides`).
        settings: Where the prediction log goes when there is no client (its artifact URI).
        example_model: A model whose input example the API docs show.
        owns_client: Close ``client`` on shutdown.
        labels: How answers name folder variants (``{"/app/model": "models:/churn@prod"}``); default:
            the folder.
        load_on_startup: Load the models before taking traffic (default); False: in the background,
            with ``GET /ready`` at 503 meanwhile.

    Example:
        >>> spec = parse_deployment("deployment.yaml")  # doctest: +SKIP
        >>> app = create_deployment_app(spec, client=Client())  # doctest: +SKIP
    """
    metrics = ServingMetrics()
    read_deployment = stored_deployment_reader(client, stored) if stored else None
    record_version = None
    if read_deployment is not None:
        record_version, spec = read_deployment()
    if spec is None:
        raise ConfigError("create_deployment_app needs a spec, or the name of a stored deployment (stored=)")
    spec = parse_deployment(spec)
    engine = Engine(
        spec,
        source or RegistrySource(client, trust=trust, labels=labels),
        metrics=metrics,
        read_deployment=read_deployment,
        record_version=record_version,
        adjust=(lambda s: apply_overrides(s, overrides)) if overrides else None,
    )
    artifact_uri = (client.settings if client is not None else settings or load_settings()).artifact_uri

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        opened = sink if sink is not None else _open_sink(engine.plan.spec, artifact_uri)
        if opened is not None:
            log_spec = engine.plan.spec.prediction_log
            engine.feed = LogFeed(opened, max_pending=log_spec.max_buffered_rows, on_full=log_spec.on_full)
            metrics.use_sink_stats(engine.feed.stats)
        await engine.start(load=load_on_startup)
        try:
            yield
        finally:
            await engine.stop()
            if owns_client and client is not None:
                client.close()

    app = FastAPI(
        title="Shipyard model server",
        version=__version__,
        description=_DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        default_response_class=JSONResponse,
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.metrics = metrics
    install_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)
    predict_body = _predict_openapi(example_model)
    install_routes(app, engine, max_request_bytes=max_request_bytes, predict_openapi=predict_body)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        """The API document, its /predict example taken from the served model once one is loaded."""
        primary = engine.primary()
        if app.openapi_schema is None and example_model is None and primary is not None:
            predict_body.update(_predict_openapi(primary.service.model))
        return generate()

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _open_sink(spec: DeploymentSpec, artifact_uri: str) -> PredictionSink | None:
    if not spec.prediction_log.enabled:
        return None
    return open_prediction_log(spec.prediction_log, artifact_uri, spec.name)


def apply_overrides(spec: DeploymentSpec, overrides: dict[str, Any] | None) -> DeploymentSpec:
    """``spec`` with some of its settings replaced: ``{"batching": {"max_batch_size": 128}, ...}``.

    Example:
        >>> spec = single_model_deployment("models:/churn@champion")
        >>> apply_overrides(spec, {"batching": {"enabled": False}}).batching.enabled
        False
    """
    if not overrides:
        return spec
    data = spec.model_dump(mode="json")
    for section, values in overrides.items():
        if isinstance(values, dict) and isinstance(data.get(section), dict):
            data[section] = {**data[section], **values}
        else:
            data[section] = values
    return parse_deployment(data)


def stored_deployment_reader(client: Client | None, name: str) -> DeploymentReader:
    """Reads the latest version of the stored deployment ``name`` (blocking), as (version, spec).

    Example:
        >>> version, spec = stored_deployment_reader(client, "churn")()  # doctest: +SKIP
    """
    if client is None:
        raise ConfigError(f"Serving the stored deployment '{name}' needs a client (the store holding it)")
    get = client.store.get_deployment  # every Store holds deployments (DeploymentStore)

    def read() -> tuple[int, DeploymentSpec]:
        record = get(name)
        return int(record.version), parse_deployment(str(record.spec_yaml))

    return read


def create_model_app(
    model: LoadedModel,
    *,
    model_ref: str = "",
    model_version: str = "",
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    sink: PredictionSink | None = None,
    batching: bool = True,
) -> FastAPI:
    """The model server application for one loaded model (a one-variant deployment, no store).

    Args:
        model: What ``shipyard.registry.flavors.load_model_dir`` returned.
        model_ref: How answers name the model (``models:/churn@prod``, ...); default: its directory.
        model_version: The version answers report (a registry version number); default: the first 12
            hex digits of the model file's digest.
        max_request_bytes: Larger request bodies are refused with 413 before they are parsed.
        sink: A prediction log to append to (default: none).
        batching: Micro-batch concurrent requests (default on).

    Example:
        >>> from shipyard.registry.flavors import load_model_dir
        >>> app = create_model_app(load_model_dir("churn-model"), model_ref="churn")  # doctest: +SKIP
    """
    ref = model_ref or str(model.path)
    spec = single_model_deployment(
        ref,
        prediction_log={"enabled": sink is not None},
        reload={"poll_interval_s": 0},
        batching={"enabled": batching},
    )
    source = StaticSource(model, ref=ref, version=model_version)
    app = create_deployment_app(
        spec, sink=sink, source=source, max_request_bytes=max_request_bytes, example_model=model
    )
    app.state.engine.preload()
    return app


def _predict_openapi(model: LoadedModel | None) -> dict[str, Any]:
    """The ``/predict`` request body for the docs, with the model's own input example when it has one."""
    example = read_input_example(model.path) if model is not None else None
    if example is not None:  # rows without nulls: the OpenAPI document drops null values
        example = example.dropna() if len(example.dropna()) else example
    rows = json.loads(example.head(2).to_json(orient="records")) if example is not None else []
    body = copy.deepcopy(_PREDICT_BODY)
    body["requestBody"]["content"]["application/json"]["example"] = {"records": rows or [{"feature": 1.0}]}
    return body


# -- running under uvicorn -------------------------------------------------------------------------------
_UVICORN = {"timeout_graceful_shutdown": 10}


def serve_deployment(
    spec: DeploymentSpec,
    *,
    client: Client | None,
    stored: str | None = None,
    overrides: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    trust: bool = False,
    log_level: str = "info",
    settings: Settings | None = None,
    access_log: bool = True,
) -> None:
    """Serve a deployment under uvicorn until interrupted; ``workers > 1`` starts that many processes.

    Every variant is resolved and loaded here first, so a bad reference or an unsafe model fails before
    the server starts; with one worker those loaded models are the ones served. Each worker of a
    multi-worker server loads its own copies (from the JSON spec in ``SHIPYARD_SERVE_DEPLOYMENT``),
    polls on its own, writes its own prediction log parts and reports its own metrics.
    ``access_log=False`` turns off uvicorn's per-request access log line (``shipyard serve`` does, unless
    given ``--access-log``).

    Example:
        >>> spec = parse_deployment("deployment.yaml")  # doctest: +SKIP
        >>> serve_deployment(spec, client=Client(), workers=2)  # doctest: +SKIP
    """
    settings = settings or (client.settings if client is not None else load_settings())
    app = create_deployment_app(
        spec,
        client=client,
        stored=stored,
        trust=trust,
        overrides=overrides,
        labels=labels,
        settings=settings,
        max_request_bytes=settings.max_request_bytes,
    )
    engine: Engine = app.state.engine
    engine.preload()
    options: dict[str, Any] = {"host": host, "port": port, "log_level": log_level, **_UVICORN}
    if not access_log:
        options["access_log"] = False
    if workers == 1:
        uvicorn.run(app, **options)
        return
    served = engine.plan.spec
    del app, engine  # each worker loads its own copy
    payload = {
        "spec": served.model_dump(mode="json"),
        "stored": stored,
        "trust": trust,
        "overrides": overrides,
        "labels": labels,
        "registry": client is not None,
    }
    os.environ[DEPLOYMENT_ENV] = json.dumps(payload)
    uvicorn.run("shipyard.serving.app:deployment_app_from_env", factory=True, workers=workers, **options)


def deployment_app_from_env() -> FastAPI:
    """Application factory for uvicorn workers: the deployment from ``SHIPYARD_SERVE_DEPLOYMENT``.

    Example:
        ``SHIPYARD_SERVE_DEPLOYMENT='{"spec": {...}}'
        uvicorn shipyard.serving.app:deployment_app_from_env --factory``
    """
    text = os.environ.get(DEPLOYMENT_ENV, "")
    if not text:
        raise ConfigError(
            f"{DEPLOYMENT_ENV} is not set; it holds the deployment as JSON. Run: shipyard serve --config FILE"
        )
    payload = json.loads(text)
    settings = load_settings()
    client = Client(settings=settings) if payload.get("registry", True) else None
    return create_deployment_app(
        payload["spec"],
        client=client,
        stored=payload.get("stored"),
        trust=bool(payload.get("trust")),
        overrides=payload.get("overrides"),
        labels=payload.get("labels"),
        settings=settings,
        max_request_bytes=settings.max_request_bytes,
        owns_client=True,
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
    """Serve one model directory under uvicorn until interrupted (no store, no prediction log).

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
    options: dict[str, Any] = {"host": host, "port": port, "log_level": log_level, **_UVICORN}
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
