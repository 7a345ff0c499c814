"""Build the model server's FastAPI application and run it under uvicorn.

:func:`create_deployment_app` serves a deployment (variants with weights and modes, see
``shipyard.serving.deployment``); one model is a one-variant deployment
(:func:`~shipyard.serving.deployment.single_model_deployment`), and how it is served is a
:class:`~shipyard.serving.options.ServeOptions`. :func:`serve_deployment` runs it under uvicorn (what
``shipyard serve`` and a packaged image do). The HTTP layer is thin: read the body (bounded), parse it,
hand a :class:`PredictCall` to the :class:`~shipyard.serving.engine.Engine` (routing, micro-batching,
shadows, prediction log, reloads), and encode the answer (orjson, or Arrow when asked). The traffic
routes take a direct lane past FastAPI's router (``shipyard.serving.lane``).

Endpoints: ``POST /predict``, ``POST /explain``, ``POST /feedback``, ``GET /health`` (liveness),
``GET /ready`` (503 until every live variant is loaded), ``GET /info``, ``GET /metrics`` (Prometheus) and
``POST /admin/reload`` (re-resolve aliases and the stored deployment now); and MLflow's scoring protocol,
``POST /invocations``, ``GET /ping`` and ``GET /version`` (``shipyard.serving.mlflow_scoring``). Admin
routes need a token with the ``serve`` scope (loopback callers of a server without ``auth`` excepted); with
``ServeOptions(auth=True)`` the traffic routes need a token too (``shipyard.serving.access``).
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from shipyard.config import Settings, load_settings
from shipyard.errors import ConfigError
from shipyard.serving.access import ServingAccess
from shipyard.serving.deployment import DeploymentSpec, parse_deployment
from shipyard.serving.engine import DeploymentReader, Engine
from shipyard.serving.http import JSONResponse, RequestIdMiddleware, install_error_handlers
from shipyard.serving.lane import Endpoint, TrafficLane
from shipyard.serving.logfeed import LogFeed, PredictionSink
from shipyard.serving.metrics import MULTIPROCESS_DIR_ENV, ServingMetrics
from shipyard.serving.openapi import invocations_request, predict_request
from shipyard.serving.options import ServeOptions, merge_legacy_options
from shipyard.serving.predlog import open_prediction_log
from shipyard.serving.routes import install_routes
from shipyard.serving.slots import ModelSource, RegistrySource
from shipyard.store import ChecksTokens
from shipyard.tracking import Client
from shipyard.version import __version__
from shipyard.wire.workers import run_workers

__all__ = [
    "DEPLOYMENT_ENV",
    "ServeOptions",
    "apply_overrides",
    "create_deployment_app",
    "deployment_app_from_env",
    "serve_deployment",
    "stored_deployment_reader",
]

DEPLOYMENT_ENV = "SHIPYARD_SERVE_DEPLOYMENT"
"""JSON ``{"spec": {...}, "options": {...}, "registry": bool}``: what :func:`serve_deployment` hands the
worker processes of a ``--workers N`` server (read by :func:`deployment_app_from_env`)."""

_DESCRIPTION = """\
Shipyard model server. `POST /predict` with `{"records": [{...}, ...]}` or
`{"columns": {"name": [...], ...}}` (or an Arrow IPC stream); add `?proba=true` for class probabilities.
`GET /info` shows the variants and the signature. Errors always answer `{"error": {"code", "message",
"details"}}`.

Clients of `mlflow models serve` post to `POST /invocations` (MLflow's scoring protocol: `dataframe_split`,
`dataframe_records`, `instances`, `inputs` or CSV) and get `{"predictions": [...]}`, or errors as
`{"error_code", "message"}`; `GET /ping` is its readiness probe.
"""


def create_deployment_app(
    spec: DeploymentSpec | str | Path | dict[str, Any] | None,
    options: ServeOptions | None = None,
    *,
    client: Client | None = None,
    source: ModelSource | None = None,
    sink: PredictionSink | None = None,
    settings: Settings | None = None,
    owns_client: bool = False,
    **legacy: Any,
) -> FastAPI:
    """The server application for a deployment.

    Models load when the app starts, before it takes traffic (unless ``app.state.engine.preload()``
    loaded them already); a variant that cannot load yet leaves ``GET /ready`` at 503 while the server
    retries in the background. The app owns ``sink``: it is closed (flushed) on graceful shutdown.

    Args:
        spec: The deployment (object, dict, YAML text or file); None with ``options.stored``: the stored
            one. One model: ``single_model_deployment("models:/churn@champion")``.
        options: How to serve it (stored name, trust, overrides, labels, body limit, when to load);
            default: ``ServeOptions()``.
        client: Resolves ``models:/`` references, holds stored deployments and says where the
            prediction log goes.
        source: How variants' models resolve and load; default: the registry through ``client``
            (folders need no client).
        sink: The prediction log; default: opened from ``spec.prediction_log`` when it is enabled.
        settings: The artifact URI and body limit when there is no client; default: loaded.
        owns_client: Close ``client`` on shutdown.
        **legacy: The keywords of the old signature (``stored=``, ``trust=``, ``overrides=``, ``labels=``,
            ``max_request_bytes=``, ``load_on_startup=``): deprecated, use ``options``.

    Raises:
        ConfigError: neither a spec nor a stored deployment to serve.

    Example:
        >>> spec = parse_deployment("deployment.yaml")  # doctest: +SKIP
        >>> app = create_deployment_app(spec, ServeOptions(trust=True), client=Client())  # doctest: +SKIP
    """
    options = merge_legacy_options(options, legacy, caller="create_deployment_app")
    settings = settings or (client.settings if client is not None else load_settings())
    engine = _engine(spec, options, client=client, source=source)
    metrics = engine.metrics

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        opened = sink if sink is not None else _open_sink(engine.plan.spec, settings.artifact_uri)
        if opened is not None:
            log_spec = engine.plan.spec.prediction_log
            engine.feed = LogFeed(opened, max_pending=log_spec.max_buffered_rows, on_full=log_spec.on_full)
            metrics.use_sink_stats(engine.feed.stats)
        await engine.start(load=options.load_on_startup)
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
    max_bytes = options.max_request_bytes or settings.max_request_bytes
    traffic = _install_api(app, engine, max_bytes)
    # The middlewares, innermost first (each one added wraps those before it): the traffic routes
    # answered directly (not through FastAPI's router), who may call, crashes as JSON 500s (with the
    # error handlers), and outermost a request id on every answer.
    app.add_middleware(TrafficLane, endpoints=traffic, handlers=app.exception_handlers)
    checker = client.store if client is not None and isinstance(client.store, ChecksTokens) else None
    app.add_middleware(ServingAccess, store=checker, auth=options.auth)
    install_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)
    return app


def _engine(
    spec: DeploymentSpec | str | Path | dict[str, Any] | None,
    options: ServeOptions,
    *,
    client: Client | None,
    source: ModelSource | None,
) -> Engine:
    """The engine for ``spec`` (or the stored deployment ``options.stored``), its models not loaded yet."""
    read_deployment = stored_deployment_reader(client, options.stored) if options.stored else None
    record_version = None
    if read_deployment is not None:
        record_version, spec = read_deployment()
    if spec is None:
        raise ConfigError(
            "create_deployment_app needs a spec, or the name of a stored deployment "
            "(ServeOptions(stored=NAME)); e.g. single_model_deployment('models:/churn@champion')"
        )
    overrides = dict(options.overrides)
    return Engine(
        parse_deployment(spec),
        source or RegistrySource(client, trust=options.trust, labels=options.labels),
        metrics=ServingMetrics(),
        read_deployment=read_deployment,
        record_version=record_version,
        adjust=(lambda s: apply_overrides(s, overrides)) if overrides else None,
    )


def _install_api(app: FastAPI, engine: Engine, max_request_bytes: int) -> dict[str, Endpoint]:
    """The routes, and an API document whose /predict and /invocations bodies are the served model's once
    it is loaded; returns the traffic endpoints by path."""
    predict_body = predict_request(None)
    invocations_body = invocations_request(None)
    traffic = install_routes(
        app,
        engine,
        max_request_bytes=max_request_bytes,
        predict_openapi=predict_body,
        invocations_openapi=invocations_body,
    )
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        primary = engine.primary()
        if app.openapi_schema is None and primary is not None:
            predict_body.update(predict_request(primary.service.model))
            invocations_body.update(invocations_request(primary.service.model))
        return generate()

    app.openapi = openapi  # type: ignore[method-assign]
    return traffic


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


# -- running under uvicorn -------------------------------------------------------------------------------
_UVICORN = {"timeout_graceful_shutdown": 10}
_OPENMP_THREADS = "OMP_NUM_THREADS"


def serve_deployment(
    spec: DeploymentSpec | str | Path | dict[str, Any] | None,
    options: ServeOptions | None = None,
    *,
    client: Client | None = None,
    settings: Settings | None = None,
    **legacy: Any,
) -> None:
    """Serve a deployment under uvicorn until interrupted; ``options.workers > 1`` starts that many processes.

    Every variant is resolved and loaded here first, so a bad reference or an unsafe model fails before
    the server starts; with one worker those loaded models are the ones served. Each worker of a
    multi-worker server loads its own copies (from the JSON in ``SHIPYARD_SERVE_DEPLOYMENT``), polls on its
    own and writes its own prediction log parts; their metrics meet in a directory made for this server
    (prometheus_client's multiprocess mode, removed at exit), so any worker's ``/metrics`` shows the
    totals. uvicorn's per-request access log is off unless ``options.access_log`` (the same default as
    ``shipyard serve`` without ``--access-log``).

    Args:
        spec: The deployment; None with ``options.stored``: the stored one. One model:
            ``single_model_deployment("models:/churn@champion")``.
        options: How to serve it, uvicorn's host, port, workers, log level and access log included.
        client: Resolves ``models:/`` references and holds stored deployments (None: folders only).
        settings: Default: the client's, else loaded.
        **legacy: The keywords of the old signature (``host=``, ``port=``, ``workers=``, ``trust=``,
            ``stored=``, ``overrides=``, ``labels=``, ``log_level=``, ``access_log=``): deprecated, use
            ``options``.

    Example:
        >>> spec = parse_deployment("deployment.yaml")  # doctest: +SKIP
        >>> serve_deployment(spec, ServeOptions(workers=2), client=Client())  # doctest: +SKIP
    """
    options = merge_legacy_options(options, legacy, caller="serve_deployment")
    settings = settings or (client.settings if client is not None else load_settings())
    app = create_deployment_app(spec, options, client=client, settings=settings)
    engine: Engine = app.state.engine
    engine.preload()
    run: dict[str, Any] = {
        "host": options.host,
        "port": options.port,
        "log_level": options.log_level,
        "access_log": options.access_log,
        "loop": options.loop,
        "http": options.http,
        **_UVICORN,
    }
    if options.workers == 1:
        _freeze_heap()
        uvicorn.run(app, **run)
        return
    payload = {
        "spec": engine.plan.spec.model_dump(mode="json"),
        "options": options.to_json(),
        "registry": client is not None,
    }
    del app, engine  # each worker loads its own copy
    os.environ[DEPLOYMENT_ENV] = json.dumps(payload)
    shared = tempfile.mkdtemp(prefix="shipyard-serve-metrics-")
    try:
        with _environ(_worker_environ(options.workers, shared)):
            run_workers("shipyard.serving.app:deployment_app_from_env", options.workers, factory=True, **run)
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def _freeze_heap() -> None:
    """Move what is loaded by now (the models, the libraries) out of the garbage collector's sight.

    A full collection walks every tracked object; with a scikit-learn pipeline and pandas loaded that
    is hundreds of thousands, and under load it stalled requests (1 row at C=64: p99 208 ms against a
    p50 of 36 ms). Objects made later (requests, batches) are collected as usual; a model loaded by a
    later swap is not frozen, which costs only its own share of a walk.
    """
    gc.collect()
    gc.freeze()


def _worker_environ(workers: int, metrics_dir: str) -> dict[str, str]:
    """What the (spawned) worker processes of a multi-worker server need in their environment.

    prometheus_client picks multiprocess mode when first imported, so the metrics directory goes in
    before the workers start. OpenMP (scikit-learn's tree ensembles, for one) starts a thread per core in
    every worker, and idle OpenMP threads spin: with 2 workers on 2 cores, server CPU per 1-row request
    measured 6.5 ms with the default against 1.9 ms with one thread each. Unless the user set it, each
    worker gets its share of the cores.
    """
    found = {MULTIPROCESS_DIR_ENV: metrics_dir}
    if _OPENMP_THREADS not in os.environ:
        found[_OPENMP_THREADS] = str(max(1, (os.cpu_count() or 1) // workers))
    return found


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """These environment variables set (inherited by the processes started meanwhile), then as they were."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def deployment_app_from_env() -> FastAPI:
    """Application factory for uvicorn workers: the deployment from ``SHIPYARD_SERVE_DEPLOYMENT``.

    Raises:
        ConfigError: the variable is unset or does not hold what :func:`serve_deployment` writes.

    Example:
        ``SHIPYARD_SERVE_DEPLOYMENT='{"spec": {...}, "options": {...}}'
        uvicorn shipyard.serving.app:deployment_app_from_env --factory``
    """
    text = os.environ.get(DEPLOYMENT_ENV, "")
    if not text:
        raise ConfigError(
            f"{DEPLOYMENT_ENV} is not set; it holds the deployment as JSON. Run: shipyard serve --config FILE"
        )
    try:
        payload = json.loads(text)
        spec, options, registry = payload["spec"], payload.get("options", {}), payload.get("registry", True)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"{DEPLOYMENT_ENV} does not hold a deployment as JSON ({type(exc).__name__}: {exc}); "
            "serve_deployment sets it for its workers: run shipyard serve --workers N instead"
        ) from exc
    settings = load_settings()
    client = Client(settings=settings) if registry else None
    app = create_deployment_app(
        spec, ServeOptions.from_json(options), client=client, settings=settings, owns_client=True
    )
    app.state.engine.preload()  # as serve_deployment does for one worker; the parent loaded them already
    _freeze_heap()
    return app
