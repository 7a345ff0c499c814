"""The ``shipyard`` command: the root Typer app, global options and error handling.

Every command is thin: parse arguments, call the SDK, render. A ``ShipyardError``
from any command becomes one red ``error: <message>`` line on stderr and exit
code 1; bad usage exits 2 (Typer's default).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from shipyard import __version__
from shipyard.cli import (
    artifacts,
    audit,
    data,
    demo,
    deployments,
    doctor,
    experiments,
    importing,
    init,
    maintenance,
    models,
    monitor,
    pipelines,
    render,
    runs,
    serve,
    users,
)
from shipyard.cli.serve_model import serve as serve_model
from shipyard.cli.state import CliState
from shipyard.errors import ShipyardError

__all__ = ["app", "main"]


class _ShipyardGroup(TyperGroup):
    """The root group: turns a ``ShipyardError`` anywhere below it into a clean exit 1."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click.Context; typer.Context is a subclass
        try:
            return super().invoke(ctx)
        except ShipyardError as exc:
            render.error(exc.message)
            raise typer.Exit(1) from None


app = typer.Typer(
    name="shipyard",
    cls=_ShipyardGroup,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,  # locals may hold credentials (store URIs)
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"shipyard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            metavar="URI",
            help="Metadata store: sqlite:///path.db, postgresql+psycopg://… or http://host:port. "
            "\\[env: SHIPYARD_TRACKING_URI; default: sqlite:///.shipyard/shipyard.db]",
            show_default=False,
        ),
    ] = None,
    artifact_uri: Annotated[
        str | None,
        typer.Option(
            "--artifact-uri",
            metavar="URI",
            help="Artifact store: a folder or an fsspec URL. "
            "\\[env: SHIPYARD_ARTIFACT_URI; default: .shipyard/artifacts]",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_version, is_eager=True),
    ] = False,
) -> None:
    """Shipyard: track experiments, version data, register, govern and serve models.

    Start with [bold]shipyard demo[/bold], then look around:

      shipyard runs ls
      shipyard runs search -f "metrics.val_auc > 0.75" -o "metrics.val_auc desc"
      shipyard models show flights-delay@champion
      shipyard serve models:/flights-delay@champion
      shipyard doctor

    Every listing takes [bold]--json[/bold] for scripts.
    """
    state = CliState(tracking_uri=tracking_uri, artifact_uri=artifact_uri)
    ctx.obj = state
    ctx.call_on_close(state.close)


app.command("demo", rich_help_panel="Start here")(demo.demo)
app.command("init", rich_help_panel="Start here")(init.init)
app.add_typer(experiments.app, name="experiments", rich_help_panel="Explore")
app.add_typer(runs.app, name="runs", rich_help_panel="Explore")
app.add_typer(artifacts.app, name="artifacts", rich_help_panel="Explore")
app.add_typer(data.app, name="data", rich_help_panel="Explore")
app.add_typer(audit.app, name="audit", rich_help_panel="Explore")
app.add_typer(models.app, name="models", rich_help_panel="Explore")
app.add_typer(pipelines.app, name="pipelines", rich_help_panel="Build")
app.add_typer(deployments.app, name="deployments", rich_help_panel="Operate")
app.add_typer(monitor.app, name="monitor", rich_help_panel="Operate")
app.command("server", rich_help_panel="Operate")(serve.server)
app.command("ui", rich_help_panel="Explore")(serve.ui)
app.command("serve", rich_help_panel="Operate")(serve_model)
app.command("sync", rich_help_panel="Operate")(serve.sync)
app.add_typer(users.users_app, name="users", rich_help_panel="Operate")
app.add_typer(users.tokens_app, name="tokens", rich_help_panel="Operate")
app.command("login", rich_help_panel="Operate")(users.login)
app.add_typer(importing.app, name="import", rich_help_panel="Operate")
app.command("gc", rich_help_panel="Operate")(maintenance.gc)
app.command("doctor", rich_help_panel="Operate")(doctor.doctor)


def main() -> None:
    """Console-script entry point (``shipyard = shipyard.cli.main:main``)."""
    app()
