"""``shipyard serve``: serve a model or a deployment over HTTP (``POST /predict`` and friends).

The model server is imported when the command runs, not when the CLI starts: it pulls in FastAPI,
uvicorn and pandas, which every other command can do without.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.state import get_state
from shipyard.config import Settings
from shipyard.errors import InvalidInput
from shipyard.registry import core
from shipyard.registry.packaging import MODEL_REF_ENV
from shipyard.registry.references import parse_model_ref
from shipyard.serving.deployment import DeploymentSpec, parse_deployment, single_model_deployment
from shipyard.serving.manage import get_deployment
from shipyard.serving.options import HTTP_PARSERS, LOG_LEVELS, LOOPS, ServeOptions

__all__ = ["MODEL_FILE", "deployment_for", "folder_labels", "resolve_model_source", "serve"]

MODEL_FILE = "shipyard-model.yaml"
REGISTRY_SCHEME = "models:/"
DEFAULTS = ServeOptions()  # the SDK's defaults are the command's: one place for both


def resolve_model_source(source: str, settings: Settings) -> Path:
    """The model directory ``source`` names: a model directory, a packaged build context, or a registry ref.

    - ``DIR`` holding ``shipyard-model.yaml`` → ``DIR``;
    - ``DIR`` holding ``model/shipyard-model.yaml`` (made by ``package_model``) → ``DIR/model``;
    - ``models:/name@alias`` or ``models:/name/3`` → not a folder: the server resolves it in the registry.

    Example:
        >>> resolve_model_source("churn-model", load_settings())  # doctest: +SKIP
        PosixPath('churn-model')
    """
    if source.startswith(REGISTRY_SCHEME):
        raise InvalidInput(f"{source!r} is a registry reference, not a folder: the registry resolves it")
    path = Path(source).expanduser()
    if not path.is_dir():
        raise InvalidInput(
            f"Model source {source!r} is not a directory; pass a model directory ({MODEL_FILE})."
        )
    for candidate in (path, path / "model"):
        if (candidate / MODEL_FILE).is_file():
            return candidate
    raise InvalidInput(
        f"{source!r} holds neither {MODEL_FILE} nor model/{MODEL_FILE}; pass a model directory "
        "written by save_model_dir, or a folder made by package_model"
    )


HostOption = Annotated[str, typer.Option("--host", help="Interface to bind (0.0.0.0 for all).")]
LogLevelOption = Annotated[str, typer.Option("--log-level", help=f"One of {', '.join(LOG_LEVELS)}.")]
PortOption = Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="TCP port.")]
WorkersOption = Annotated[int, typer.Option("--workers", "-w", min=1, help="Worker processes.")]


def deployment_for(
    source: str | None, config: Path | None, deployment: str | None, settings: Settings
) -> DeploymentSpec | None:
    """The deployment to serve: from ``--config FILE``, or one variant for SOURCE; None for ``--deployment``.

    Example:
        >>> deployment_for("models:/churn@champion", None, None, load_settings()).variants[0].model
        'models:/churn@champion'
    """
    given = [
        name
        for name, value in (("SOURCE", source), ("--config", config), ("--deployment", deployment))
        if value
    ]
    if len(given) != 1:
        raise InvalidInput(
            "Give exactly one of SOURCE (models:/name@alias or a model folder), --config FILE or "
            f"--deployment NAME (got {', '.join(given) or 'none'}); "
            "e.g. shipyard serve models:/churn@champion"
        )
    if config is not None:
        return parse_deployment(config)
    if source is None:
        return None
    if source.startswith(REGISTRY_SCHEME):
        name = parse_model_ref(source).name
        return single_model_deployment(source, name=_deployment_name(name))
    folder = resolve_model_source(source, settings)
    label = os.environ.get(MODEL_REF_ENV, "")  # a packaged image names its model (Dockerfile ENV)
    named = parse_model_ref(label).name if label.startswith(REGISTRY_SCHEME) else folder.name
    return single_model_deployment(str(folder), name=_deployment_name(named))


def folder_labels(spec: DeploymentSpec) -> dict[str, str]:
    """How answers name folder variants: ``SHIPYARD_SERVE_MODEL_REF`` (set in a packaged image) for a
    deployment of one folder; otherwise each folder names itself.

    Example:
        >>> folder_labels(single_model_deployment("churn-model"))  # doctest: +SKIP
        {'churn-model': 'models:/churn@prod'}
    """
    label = os.environ.get(MODEL_REF_ENV, "")
    folders = [v.model for v in spec.variants if not v.model.startswith(REGISTRY_SCHEME)]
    return {folders[0]: label} if label and len(spec.variants) == 1 and folders else {}


def _deployment_name(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", text).strip("-._")[:64]
    return cleaned or "default"


def _overrides(
    batch_size: int | None, batch_wait_ms: float | None, no_batching: bool, no_log: bool, poll: float | None
) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    batching: dict[str, Any] = {}
    if batch_size is not None:
        batching["max_batch_size"] = batch_size
    if batch_wait_ms is not None:
        batching["max_wait_ms"] = batch_wait_ms
    if no_batching:
        batching["enabled"] = False
    if batching:
        overrides["batching"] = batching
    if no_log:
        overrides["prediction_log"] = {"enabled": False}
    if poll is not None:
        overrides["reload"] = {"poll_interval_s": poll}
    return overrides


def serve(
    ctx: typer.Context,
    source: Annotated[
        str | None,
        typer.Argument(
            metavar="[SOURCE]",
            help="A registry reference (models:/churn@champion), a model directory or a packaged folder.",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="A deployment YAML file (variants, weights, modes, settings)."),
    ] = None,
    deployment: Annotated[
        str | None,
        typer.Option(
            "--deployment", "-d", help="A deployment stored with `shipyard deployments`; followed live."
        ),
    ] = None,
    host: HostOption = DEFAULTS.host,
    port: PortOption = DEFAULTS.port,
    workers: WorkersOption = DEFAULTS.workers,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="Most rows per micro-batched model call.")
    ] = None,
    batch_wait_ms: Annotated[
        float | None,
        typer.Option("--batch-wait-ms", min=0, help="Longest wait for requests still arriving (ms)."),
    ] = None,
    no_batching: Annotated[
        bool, typer.Option("--no-batching", help="One model call per request (no micro-batching).")
    ] = False,
    no_prediction_log: Annotated[
        bool, typer.Option("--no-prediction-log", help="Do not log requests and answers.")
    ] = False,
    poll_interval: Annotated[
        float | None,
        typer.Option("--poll-interval", min=0, help="Seconds between checks for alias moves (0: off)."),
    ] = None,
    trust: Annotated[
        bool,
        typer.Option(
            "--trust", help="Load the model even if its pickles reference modules outside the allowlist."
        ),
    ] = False,
    log_level: LogLevelOption = DEFAULTS.log_level,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log",
            help="Log one line per HTTP request (uvicorn's access log; off by default: it costs throughput).",
        ),
    ] = DEFAULTS.access_log,
    auth: Annotated[
        bool,
        typer.Option(
            "--auth",
            help="Require a token (scope read or serve) on /predict, /explain and /feedback, checked "
            "against the tracking store. Admin routes always need a serve token (loopback "
            "excepted without --auth).",
        ),
    ] = DEFAULTS.auth,
    loop: Annotated[
        str, typer.Option("--loop", help=f"Event loop: {', '.join(LOOPS)} (auto: uvloop).")
    ] = DEFAULTS.loop,
    http: Annotated[
        str, typer.Option("--http", help=f"HTTP parser: {', '.join(HTTP_PARSERS)} (auto: httptools).")
    ] = DEFAULTS.http,
) -> None:
    """Serve models over HTTP: POST /predict, /explain, /feedback; GET /health, /ready, /info, /metrics.

    SOURCE is a registry reference (followed: when its alias moves, the new version is loaded in
    the background and swapped in), a model directory or a packaged one. --config serves a
    deployment file with several variants (A/B, canary, shadow); --deployment a stored one, whose
    new versions are followed too. Requests are JSON records or columns (or an Arrow stream),
    checked against the model's signature; add ?proba=true for class probabilities.

    Examples:

      shipyard serve models:/churn@champion
      shipyard serve ./churn-model --no-prediction-log
      shipyard serve --config deployment.yaml --workers 4
      shipyard serve --deployment churn --host 0.0.0.0 --port 8080
      shipyard serve models:/churn@champion --auth   # callers send Authorization: Bearer <token>
      curl -s localhost:8080/predict -H 'Content-Type: application/json' \\
          -d '{"records": [{"dep_delay": 3.0, "distance": 719}]}'
    """
    from shipyard.serving.app import serve_deployment  # heavy (FastAPI, uvicorn, pandas): only this command

    state = get_state(ctx)
    settings = state.settings()
    spec = deployment_for(source, config, deployment, settings)
    options = ServeOptions(
        stored=deployment,
        trust=trust,
        overrides=_overrides(batch_size, batch_wait_ms, no_batching, no_prediction_log, poll_interval),
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=access_log,
        auth=auth,
        loop=loop,
        http=http,
    )  # a bad --log-level, --loop or --http fails here, before anything loads
    client = state.client() if _needs_registry(spec) or auth else None  # tokens are checked in the store
    if spec is None:
        assert deployment is not None and client is not None
        spec = get_deployment(deployment, client=client)
    for variant in spec.variants:  # a typo in a reference fails here, before anything starts
        if client is not None and variant.model.startswith(REGISTRY_SCHEME):
            core.resolve(variant.model, client)
    what = f"deployment {deployment}" if deployment else (str(config) if config else source)
    render.err_console().print(
        Text(f"Serving {what} on http://{host}:{port} (workers={workers})"), soft_wrap=True
    )
    options = dataclasses.replace(options, labels=folder_labels(spec))
    serve_deployment(spec, options, client=client, settings=settings)


def _needs_registry(spec: DeploymentSpec | None) -> bool:
    """A stored deployment (spec None) or any ``models:/`` variant needs the store; folders alone do not."""
    return spec is None or any(v.model.startswith(REGISTRY_SCHEME) for v in spec.variants)
