"""``shipyard server`` and ``shipyard sync``: run the REST server; replay offline spools to one.

The server and the spool replayer are imported when these commands run, not when
the CLI starts: they pull in FastAPI and uvicorn, which every other command can do
without.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict
from typing import Annotated

import typer
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.options import JsonOption
from shipyard.cli.state import get_state
from shipyard.errors import ShipyardError

__all__ = ["server", "sync"]

HostOption = Annotated[str, typer.Option("--host", help="Interface to bind (0.0.0.0 for all).")]
PortOption = Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="TCP port.")]
StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store", metavar="URL", help="Metadata store URL. Default: the tracking URI.", show_default=False
    ),
]
ArtifactsOption = Annotated[
    str | None,
    typer.Option(
        "--artifacts",
        metavar="URL",
        help="Artifact store folder or URL. Default: the artifact URI.",
        show_default=False,
    ),
]
WorkersOption = Annotated[int, typer.Option("--workers", "-w", min=1, help="Worker processes.")]
LogLevelOption = Annotated[
    str, typer.Option("--log-level", help="critical, error, warning, info, debug or trace.")
]
RemoteAdminOption = Annotated[
    bool,
    typer.Option(
        "--allow-remote-admin",
        help="Without auth: answer admin routes (gc, purge, blob deletion, checkpoints) from any "
        "client, not only loopback. With auth, admin routes need an admin token instead.",
    ),
]
AuthOption = Annotated[
    bool | None,
    typer.Option(
        "--auth/--no-auth",
        help="Authenticate every request (tokens, roles). Default: on for any non-loopback --host.",
        show_default=False,
    ),
]
InsecureOption = Annotated[
    bool,
    typer.Option(
        "--insecure",
        help="Allow a non-loopback --host without auth (warns on every start). Never on an open network.",
    ),
]


def server(
    ctx: typer.Context,
    host: HostOption = "127.0.0.1",
    port: PortOption = 5000,
    store: StoreOption = None,
    artifacts: ArtifactsOption = None,
    workers: WorkersOption = 1,
    log_level: LogLevelOption = "info",
    allow_remote_admin: RemoteAdminOption = False,
    auth: AuthOption = None,
    insecure: InsecureOption = False,
) -> None:
    """Run the Shipyard REST server (SDK clients point at it with SHIPYARD_TRACKING_URI=http://host:port).

    Serves the REST API under /api/v1 (interactive docs at /docs) over one metadata store
    and one artifact store; the store's schema is migrated before the workers start.

    Off loopback the server authenticates every request: on its first start it creates the
    user admin and prints its token once (or takes SHIPYARD_ADMIN_TOKEN); a non-loopback
    server without auth refuses to start unless --insecure.

    Examples:

      shipyard server
      shipyard server --auth
      shipyard server --host 0.0.0.0 --port 8080 --workers 4 \\
          --store postgresql+psycopg://shipyard@db/shipyard --artifacts s3://bucket/shipyard
    """
    from shipyard.server import serve  # heavy (FastAPI, uvicorn): only this command needs it

    settings = get_state(ctx).settings()
    tracking_uri = store or settings.tracking_uri
    artifact_uri = artifacts or settings.artifact_uri
    render.err_console().print(
        Text(f"Shipyard server on http://{host}:{port}  store={tracking_uri}  artifacts={artifact_uri}"),
        soft_wrap=True,
    )
    serve(
        host=host,
        port=port,
        workers=workers,
        tracking_uri=tracking_uri,
        artifact_uri=artifact_uri,
        log_level=log_level,
        allow_remote_admin=allow_remote_admin or None,
        auth=auth,
        insecure=insecure or None,
    )


def ui(
    ctx: typer.Context,
    port: PortOption = 5005,
    store: StoreOption = None,
    artifacts: ArtifactsOption = None,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the UI in the default browser once it is up.")
    ] = True,
) -> None:
    """Open the web UI on this machine's store: no set-up, nothing to sign in to.

    Starts a server on 127.0.0.1 only (auth off: nothing off this machine can reach it) over the
    local store, prints its address and opens it in the browser. A team's server serves the same UI
    at its own address (shipyard server).

    Examples:

      shipyard ui
      shipyard ui --port 8080 --no-open
    """
    from shipyard.server import serve  # heavy (FastAPI, uvicorn): only this command needs it

    settings = get_state(ctx).settings()
    tracking_uri = store or settings.tracking_uri
    artifact_uri = artifacts or settings.artifact_uri
    url = f"http://127.0.0.1:{port}/"
    banner = f"Shipyard UI on {url}  store={tracking_uri}  (Ctrl+C stops it)"
    render.err_console().print(Text(banner), soft_wrap=True)
    if open_browser:
        threading.Thread(target=_open_when_up, args=(url,), name="shipyard-ui-open", daemon=True).start()
    serve(host="127.0.0.1", port=port, tracking_uri=tracking_uri, artifact_uri=artifact_uri, auth=False)


def _open_when_up(url: str, timeout_s: float = 30.0) -> None:
    """Open ``url`` in the browser as soon as the server answers its health check."""
    import urllib.request
    import webbrowser

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "health", timeout=1) as answer:
                if answer.status == 200:
                    webbrowser.open(url)
                    return
        except OSError:
            time.sleep(0.2)


def sync(
    ctx: typer.Context,
    server_uri: Annotated[
        str | None,
        typer.Option(
            "--server",
            metavar="URL",
            help="Send everything here. Default: the tracking URI if it is a server, "
            "else the server each spool was written for.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Replay runs spooled while the server was unreachable (from <home>/spool) to the server.

    Exits 1 when something is left: spools whose server is still unreachable stay for the
    next sync; operations the server refused are moved to <home>/spool/rejected.

    Examples:

      shipyard sync
      shipyard sync --server http://tracking:5000 --json
    """
    from shipyard.store.spool import replay_spools  # only the REST client stack needs it

    settings = get_state(ctx).settings()
    target = server_uri or (settings.tracking_uri if settings.is_remote else None)
    with render.err_console().status(Text(f"Replaying spools from {settings.spool_dir}")):
        report = replay_spools(target, settings.spool_dir, settings=settings)
    if as_json:
        render.print_json(asdict(report))
    else:
        render.say(
            f"Replayed {report.operations} operation(s) from {report.files} spool file(s); "
            f"{report.failed} refused, {report.pending} spool file(s) pending."
        )
    if not as_json:
        for line in report.problems:  # which journal or entry, and the server's reason
            render.say(f"  {line}")
    problems = []
    if report.pending:
        problems.append(
            f"{report.pending} spool file(s) not sent yet (reasons above; run `shipyard sync` again)"
        )
    if report.failed:
        problems.append(
            f"{report.failed} operation(s) refused by the server (kept in {settings.spool_dir}/rejected)"
        )
    if problems:
        raise ShipyardError("; ".join(problems))
