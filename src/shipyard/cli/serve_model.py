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

__all__ = ["MODEL_FILE", "resolve_model_source", "serve"]

MODEL_FILE = "shipyard-model.yaml"
REGISTRY_SCHEME = "models:/"


def resolve_model_source(source: str, settings: Settings) -> Path:
    """The model directory ``source`` names: a model directory, a packaged build context, or a registry ref.

    - ``DIR`` holding ``shipyard-model.yaml`` → ``DIR``;
    - ``DIR`` holding ``model/shipyard-model.yaml`` (made by ``package_model``) → ``DIR/model``;
    - ``models:/name@alias`` or ``models:/name/3`` → not wired to the registry yet (``InvalidInput``).

    Example:
        >>> resolve_model_source("churn-model", load_settings())  # doctest: +SKIP
        PosixPath('churn-model')
    """
    if source.startswith(REGISTRY_SCHEME):
        # Hook for the registry: download the version's blobs into a cache folder and return it.
        raise InvalidInput(
            f"Serving registry references like {source!r} is not yet supported; "
            f"serve a model directory (one with {MODEL_FILE}) or a packaged model instead"
        )
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
PortOption = Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="TCP port.")]
WorkersOption = Annotated[int, typer.Option("--workers", "-w", min=1, help="Worker processes.")]


def serve(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE",
            help="A model directory (with shipyard-model.yaml) or a packaged model folder.",
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
    add ?proba=true for class probabilities. SOURCE is a model directory or a packaged one.

    Examples:

      shipyard serve ./churn-model
      shipyard serve ./churn-package --host 0.0.0.0 --port 8080 --workers 4
      curl -s localhost:8080/predict -H 'Content-Type: application/json' \\
          -d '{"records": [{"dep_delay": 3.0, "distance": 719}]}'
    """
    from shipyard.serving import serve_model  # heavy (FastAPI, uvicorn, pandas): only this command needs it

    settings = get_state(ctx).settings()
    model_dir = resolve_model_source(source, settings)
    render.err_console().print(
        Text(f"Serving {model_dir} on http://{host}:{port} (workers={workers})"), soft_wrap=True
    )
    ref = source if source.startswith(REGISTRY_SCHEME) else ""  # a directory: the server names it
    serve_model(
        model_dir,
        model_ref=ref,
        host=host,
        port=port,
        workers=workers,
        trust=trust,
        log_level=log_level,
        settings=settings,
    )
