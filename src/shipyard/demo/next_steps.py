"""Demo stage 4: where everything was written, and what to run next."""

from __future__ import annotations

import shlex
from pathlib import Path

from rich.text import Text

from shipyard.config import load_settings
from shipyard.demo.context import DemoContext

__all__ = ["show_next_steps", "ui_command"]


def _where(uri: str) -> str:
    """A URI with its absolute location when it is a relative local path."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////") and ":memory:" not in uri:
        return f"{uri}  ({Path(uri.removeprefix('sqlite:///')).resolve()})"
    if "://" not in uri and not Path(uri).is_absolute():
        return f"{uri}  ({Path(uri).resolve()})"
    return uri


def show_next_steps(ctx: DemoContext) -> None:
    """Stage: print the stores and a short list of commands to explore the results."""
    best = ctx.require_best()
    settings = ctx.client.settings
    ctx.console.print(Text.assemble(("Runs and metrics: ", "bold"), _where(settings.tracking_uri)))
    ctx.console.print(Text.assemble(("Artifacts:        ", "bold"), _where(settings.artifact_uri)))
    others = [r for r in ctx.results if r.run_id != best.run_id]  # ranked best first by compare
    boosted = next((r for r in ctx.results if r.family == "hgb"), None)
    steps = [
        ("list the runs", f"shipyard runs ls -e {ctx.experiment}"),
        ("everything about the best run", f"shipyard runs show {best.run_id}"),
        (
            "search with the filter language",
            f'shipyard runs search -e {ctx.experiment} -f "metrics.val_auc > 0.7" -o "metrics.val_auc desc"',
        ),
    ]
    pipeline_run = ctx.extras.get("pipeline_run_id")
    if pipeline_run:
        steps += [
            ("the training pipeline: steps, cache hits, cost", f"shipyard pipelines show {pipeline_run}"),
            ("run the training again: every step from the cache", "shipyard demo --stop-after train"),
        ]
    if others:
        steps.append(
            ("best vs runner-up, side by side", f"shipyard runs compare {best.run_id} {others[0].run_id}")
        )
    if boosted is not None:
        steps.append(("a learning curve", f"shipyard runs history {boosted.run_id} curve_val_loss"))
    if "champion" in ctx.extras:
        steps += [
            (
                "the champion's model card, evaluations and decisions",
                "shipyard models show flights-delay@champion",
            ),
            ("who did what, hash-chained", "shipyard audit ls --type model_alias && shipyard audit verify"),
            ("serve it yourself", "shipyard serve models:/flights-delay@champion --port 8080"),
        ]
    steps += [
        ("download the best model", f"shipyard artifacts get {best.run_id} model -o ./best-model"),
        ("share runs with your team", "shipyard server   # then SHIPYARD_TRACKING_URI=http://127.0.0.1:5000"),
        ("check your setup", "shipyard doctor"),
    ]
    ctx.console.print(Text("\nTry next:", style="bold"))
    for what, command in steps:
        ctx.console.print(Text(f"  # {what}", style="dim"))
        ctx.console.print(Text(f"  {command}", style="cyan"), soft_wrap=True)  # keep commands copyable
    command, url = ui_command(settings.tracking_uri, settings.artifact_uri)
    experiment = ctx.client.get_experiment(ctx.experiment)
    ctx.console.print(Text("\nSee it all in your browser:", style="bold"))
    if command:
        ctx.console.print(Text(f"  {command}", style="cyan"), soft_wrap=True)
    ctx.console.print(Text(f"  {url}experiments/{experiment.id}", style="cyan"), soft_wrap=True)


def ui_command(tracking_uri: str, artifact_uri: str) -> tuple[str, str]:
    """The command that opens the web UI on this store ("" when a server already serves it) and
    the UI's address.

    Example:
        >>> ui_command("http://10.0.0.5:5000/", "s3://bucket")
        ('', 'http://10.0.0.5:5000/')
    """
    if tracking_uri.startswith(("http://", "https://")):
        return "", tracking_uri.rstrip("/") + "/"
    defaults = load_settings()
    command = "shipyard ui"
    if tracking_uri != defaults.tracking_uri or artifact_uri != defaults.artifact_uri:
        command += f" --store {shlex.quote(tracking_uri)} --artifacts {shlex.quote(artifact_uri)}"
    return command, "http://127.0.0.1:5005/"
