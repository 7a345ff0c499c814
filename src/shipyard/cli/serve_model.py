"""``shipyard serve``: serve one model over HTTP (``POST /predict``) from a directory or a packaged context.

The model server is imported when the command runs, not when the CLI starts: it pulls in FastAPI,
uvicorn and pandas, which every other command can do without.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.state import get_state
from shipyard.config import Settings
from shipyard.errors import InvalidInput
from shipyard.registry import core
from shipyard.tracking import Client

__all__ = ["MODEL_FILE", "resolve_model_source", "serve"]

MODEL_FILE = "shipyard-model.yaml"
REGISTRY_SCHEME = "models:/"


def resolve_model_source(source: str, settings: Settings) -> Path:
    """The model directory ``source`` names: a model directory, a packaged build context, or a registry ref.

    - ``DIR`` holding ``shipyard-model.yaml`` → ``DIR``;
    - ``DIR`` holding ``model/shipyard-model.yaml`` (made by ``package_model``) → ``DIR/model``;
    - ``models:/name@alias`` or ``models:/name/3`` → handled by :func:`registry_source` instead.

    Example:
        >>> resolve_model_source("churn-model", load_settings())  # doctest: +SKIP
        PosixPath('churn-model')
    """
    if source.startswith(REGISTRY_SCHEME):
        raise InvalidInput(f"{source!r} is a registry reference: resolve it with registry_source()")
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


def registry_source(source: str, client: Client, trust: bool) -> tuple[Path, str, str]:
    """Download (verified) the version ``source`` names; returns (folder, its ref, its version)."""
    version = core.resolve(source, client)
    folder = core.download_model(version, client=client)
    core.verify_model_file(folder, version)
    if trust:
        client.audit(
            "model.load_trusted",
            "model_version",
            f"{version.name}/{version.version}",
            after={"digest": version.digest},
            reason="served with --trust: the allowlist check was skipped",
        )
    return folder, version.ref, str(version.version)


HostOption = Annotated[str, typer.Option("--host", help="Interface to bind (0.0.0.0 for all).")]
PortOption = Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="TCP port.")]
WorkersOption = Annotated[int, typer.Option("--workers", "-w", min=1, help="Worker processes.")]


def serve(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE",
            help="A registry reference (models:/churn@champion), a model directory or a packaged folder.",
            show_default=False,
        ),
    ],
    host: HostOption = "127.0.0.1",
    port: PortOption = 8080,
    workers: WorkersOption = 1,
    trust: Annotated[
        bool,
        typer.Option(
            "--trust", help="Load the model even if its pickles reference modules outside the allowlist."
        ),
    ] = False,
    log_level: Annotated[
        str, typer.Option("--log-level", help="critical, error, warning, info, debug or trace.")
    ] = "info",
) -> None:
    """Serve a model over HTTP: POST /predict, GET /health, /ready and /info (docs at /docs).

    Requests are JSON records or columns, checked against the model's signature;
    add ?proba=true for class probabilities. SOURCE is a registry reference (downloaded and
    verified), a model directory or a packaged one.

    Examples:

      shipyard serve models:/churn@champion
      shipyard serve ./churn-model
      shipyard serve ./churn-package --host 0.0.0.0 --port 8080 --workers 4
      curl -s localhost:8080/predict -H 'Content-Type: application/json' \\
          -d '{"records": [{"dep_delay": 3.0, "distance": 719}]}'
    """
    from shipyard.serving import serve_model  # heavy (FastAPI, uvicorn, pandas): only this command needs it

    state = get_state(ctx)
    settings = state.settings()
    ref, version = "", ""  # a directory: the server names it
    if source.startswith(REGISTRY_SCHEME):
        model_dir, ref, version = registry_source(source, state.client(), trust)
    else:
        model_dir = resolve_model_source(source, settings)
    render.err_console().print(
        Text(f"Serving {model_dir} on http://{host}:{port} (workers={workers})"), soft_wrap=True
    )
    serve_model(
        model_dir,
        model_ref=ref,
        model_version=version,
        host=host,
        port=port,
        workers=workers,
        trust=trust,
        log_level=log_level,
        settings=settings,
    )
