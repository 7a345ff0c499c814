"""Build the FastAPI application and run it under uvicorn."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from shipyard import __version__, ui
from shipyard.bounds import INT64_MAX, INT64_MIN
from shipyard.config import Settings, load_settings
from shipyard.errors import ConfigError
from shipyard.pipelines.schedule import Scheduler
from shipyard.server.access import AccessMiddleware, FailureLimiter
from shipyard.server.bootstrap import bootstrap_auth
from shipyard.server.errors import install_error_handlers
from shipyard.server.lanes import RecordLane
from shipyard.server.mlflow import ARTIFACTS_PREFIX
from shipyard.server.mlflow.mount import include_mlflow
from shipyard.server.routers import (
    admin,
    artifacts,
    audit,
    auth,
    blobs,
    datasets,
    deployments,
    experiments,
    models,
    monitoring,
    runs,
    schedules,
)
from shipyard.server.state import ServerState, open_state
from shipyard.tracking import Client
from shipyard.wire.limits import BodyLimitMiddleware
from shipyard.wire.workers import run_workers

__all__ = ["app_from_env", "app_state", "create_app", "decide_auth", "serve"]

log = logging.getLogger("shipyard.server")

_DESCRIPTION = """\
Shipyard's tracking server: experiments, runs, metrics, artifacts and blobs over one versioned
REST API. Errors always answer `{"error": {"code", "message", "details"}}`. The Python SDK talks to
it when `SHIPYARD_TRACKING_URI=http://host:port`.
"""


def _exact_integer_bounds(node: Any) -> None:
    """Give integer schemas their exact bounds back: FastAPI's OpenAPI models hold them as floats, and
    ``float(2**63 - 1)`` is ``2**63``, one past what the store keeps (clients would send it)."""
    if isinstance(node, list):
        for item in node:
            _exact_integer_bounds(item)
    elif isinstance(node, dict):
        if node.get("type") == "integer":
            for key in ("minimum", "maximum"):
                if isinstance(node.get(key), float):
                    node[key] = min(max(int(node[key]), INT64_MIN), INT64_MAX)
        for value in node.values():
            _exact_integer_bounds(value)


def _with_exact_bounds(app: FastAPI) -> Callable[[], dict[str, Any]]:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _exact_integer_bounds(build())
        return app.openapi_schema or {}

    return openapi


_STREAMED_UPLOADS = ("/api/v1/blobs/", f"{ARTIFACTS_PREFIX}/artifacts/")  # stored as they stream


def _is_blob_upload(scope: Scope) -> bool:
    return bool(scope.get("method") == "PUT" and str(scope.get("path", "")).startswith(_STREAMED_UPLOADS))


def create_app(settings: Settings | None = None) -> FastAPI:
    """The Shipyard REST application over the stores named in ``settings``.

    Opens one SQL store (``settings.tracking_uri``: SQLite or PostgreSQL, migrated
    on open) and one blob store (``settings.artifact_uri``); both are closed when
    the application shuts down. While the application runs (its lifespan), the
    pipeline scheduler runs in it (``shipyard.pipelines.schedule.Scheduler``).

    Example:
        >>> from shipyard.config import load_settings
        >>> app = create_app(load_settings(tracking_uri="sqlite:///:memory:", artifact_uri="memory://doc"))
        >>> app.title
        'Shipyard'
    """
    settings = settings or load_settings()
    state = open_state(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Every worker runs the scheduler; each fire time is claimed once in the database.
        scheduler = Scheduler.for_server(state.store, settings)
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.stop()
            state.close()

    app = FastAPI(
        title="Shipyard",
        version=__version__,
        description=_DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.shipyard = state
    app.openapi = _with_exact_bounds(app)  # type: ignore[method-assign]
    # Innermost of our middlewares: inside the error middleware, the body limit and access control.
    app.add_middleware(RecordLane, state=state)
    install_error_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        exempt=_is_blob_upload,
        read_timeout=settings.body_read_timeout,
    )
    # Outside the body limit: a request is authenticated and authorised before its body is read,
    # and every answer (413s included) carries the security headers.
    app.state.access_limiter = FailureLimiter()
    app.add_middleware(
        AccessMiddleware, store=state.store, enabled=settings.auth, limiter=app.state.access_limiter
    )
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:  # CORS is off unless origins are configured
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.include_router(admin.health_router)
    app.include_router(auth.router)
    app.include_router(admin.router)
    app.include_router(experiments.router)
    app.include_router(runs.router)
    app.include_router(artifacts.router)
    app.include_router(blobs.router)
    app.include_router(datasets.router)
    app.include_router(audit.router)
    app.include_router(models.router)
    app.include_router(deployments.router)
    app.include_router(schedules.router)
    app.include_router(monitoring.router)
    include_mlflow(app)  # MLflow's tracking API and artifact proxy (shipyard.server.mlflow)

    def client_for(actor: str | None) -> Client:  # the web UI's actions act as the signed-in user
        settings_as = state.settings.replace(user=actor) if actor else state.settings
        return Client.from_stores(settings_as, state.store, state.blobs)

    reader = client_for(None)  # the pages read dataset profiles and rows from the blob store through it
    app.include_router(ui.build_router(state.store, app.state.access_limiter, client_for, reader))  # last
    app.mount("/static", StaticFiles(directory=ui.STATIC_DIR), name="static")
    return app


def app_state(app: FastAPI) -> ServerState:
    """The stores an application built by :func:`create_app` holds (for tests and embedding).

    Example:
        >>> from shipyard.config import load_settings
        >>> app = create_app(load_settings(tracking_uri="sqlite:///:memory:", artifact_uri="memory://doc"))
        >>> app_state(app).store.list_experiments()
        []
    """
    state: ServerState = app.state.shipyard
    return state


def app_from_env() -> FastAPI:
    """Application factory for uvicorn: settings from ``SHIPYARD_*`` variables and ``shipyard.toml``.

    uvicorn binds the address, so this factory cannot see it: the ``auth`` setting must be given
    explicitly (``SHIPYARD_AUTH=true``; ``false`` only behind loopback or with ``SHIPYARD_INSECURE``),
    else it refuses to build the application (``shipyard server`` sets it for its workers).

    Example:
        ``SHIPYARD_AUTH=true uvicorn shipyard.server.app:app_from_env --factory --workers 4``
    """
    settings = load_settings()
    if settings.sources.get("auth", "default") == "default":
        raise ConfigError(
            "Set SHIPYARD_AUTH=true (or auth = true in shipyard.toml) when running the server under "
            "uvicorn directly: it cannot tell which address uvicorn binds, so it will not guess that "
            "open is safe (SHIPYARD_AUTH=false only for a loopback-only server)"
        )
    if not settings.auth and not settings.insecure:
        log.warning("Shipyard server without authentication: bind it to loopback only (--host 127.0.0.1)")
    return create_app(settings)


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def decide_auth(host: str, auth: bool | None, settings: Settings) -> bool:
    """Whether a server bound to ``host`` authenticates: ``auth`` when given, else the ``auth``
    setting, else on for any non-loopback address. A non-loopback server without auth refuses
    to start (ConfigError) unless ``insecure`` is set, and then warns.

    Example:
        >>> decide_auth("127.0.0.1", None, load_settings(env={}))
        False
        >>> decide_auth("0.0.0.0", None, load_settings(env={}))
        True
    """
    on = auth if auth is not None else (settings.auth or not _is_loopback_host(host))
    if not on and not _is_loopback_host(host):
        if not settings.insecure:
            raise ConfigError(
                f"Refusing to serve on {host} without authentication: anyone who reaches it could "
                "write, approve and delete. Drop --no-auth (auth is on by default off loopback), bind "
                "127.0.0.1, or pass --insecure on a network you trust"
            )
        log.warning(
            "INSECURE: serving on %s WITHOUT authentication (--insecure); anyone who reaches this "
            "port can write, approve, promote and delete",
            host,
        )
    return on


def serve(
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
    tracking_uri: str | None = None,
    artifact_uri: str | None = None,
    log_level: str = "info",
    allow_remote_admin: bool | None = None,
    auth: bool | None = None,
    insecure: bool | None = None,
) -> None:
    """Run the server under uvicorn until interrupted; ``workers > 1`` starts that many processes.

    On Linux each worker listens on a socket of its own on ``port``, so the kernel spreads connections
    across them (:func:`shipyard.wire.workers.run_workers`).

    The stores are opened (and the schema migrated) once here before the workers
    start, so a bad URI fails fast with a clear message. Workers get their
    settings through ``SHIPYARD_TRACKING_URI`` / ``SHIPYARD_ARTIFACT_URI`` (and
    ``SHIPYARD_ALLOW_REMOTE_ADMIN`` when ``allow_remote_admin`` is given).

    Authentication (:func:`decide_auth`) is on for any non-loopback ``host`` unless ``insecure``;
    on its first start with auth the server creates the ``admin`` user and prints its token once
    (``shipyard.server.bootstrap``).

    Example:
        >>> serve(port=5000, workers=4, tracking_uri="postgresql+psycopg://db/shipyard")  # doctest: +SKIP
    """
    if tracking_uri:
        os.environ["SHIPYARD_TRACKING_URI"] = tracking_uri
    if artifact_uri:
        os.environ["SHIPYARD_ARTIFACT_URI"] = artifact_uri
    if allow_remote_admin is not None:
        os.environ["SHIPYARD_ALLOW_REMOTE_ADMIN"] = "true" if allow_remote_admin else "false"
    if insecure is not None:
        os.environ["SHIPYARD_INSECURE"] = "true" if insecure else "false"
    settings = load_settings()
    on = decide_auth(host, auth, settings)
    os.environ["SHIPYARD_AUTH"] = "true" if on else "false"
    state = open_state(settings.replace(auth=on))
    try:
        if on:
            bootstrap_auth(state.store, settings)
    finally:
        state.close()
    # A listening socket per worker, so connections spread across them (shipyard.wire.workers).
    run_workers(
        "shipyard.server.app:app_from_env",
        workers,
        factory=True,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=10,
    )
