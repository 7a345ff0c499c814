"""``shipyard deployments …``: versioned deployment specs that running model servers follow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli import render
from shipyard.cli.options import JsonOption
from shipyard.cli.state import get_state
from shipyard.serving import manage
from shipyard.serving.deployment import parse_deployment

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Create, inspect, promote and roll back deployments.")

_Name = Annotated[str, typer.Argument(help="Deployment name, e.g. churn.")]
_Reason = Annotated[str, typer.Option("--reason", help="Why: recorded in the audit log.")]


@app.command("create")
def create(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Deployment YAML.", exists=True, dir_okay=False)],
    reason: _Reason = "",
) -> None:
    """Save a deployment spec as the next version of its name (model references must resolve).

    Examples:

      shipyard deployments create deployments/churn.yaml --reason "10% canary for v8"
    """
    record = manage.deploy(file, reason=reason, client=get_state(ctx).client())
    render.say(f"Deployment {record.name} is at version {record.version}")


@app.command("ls")
def ls(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List deployments (latest versions) with their variants and shares.

    Examples:

      shipyard deployments ls
    """
    records = manage.list_deployments(client=get_state(ctx).client())
    if as_json:
        render.print_json([r.to_dict() for r in records])
        return
    table = render.make_table("name", "version", "variants", "by", "updated")
    for r in records:
        spec = parse_deployment(r.spec_yaml)
        shares = spec.shares()
        variants = ", ".join(
            f"{v.name} ({v.mode}{'' if v.mode == 'shadow' else f' {shares.get(v.name, 0):.0%}'})"
            for v in spec.variants
        )
        table.add_row(
            *render.cells([r.name, r.version, variants, r.created_by, render.fmt_time(r.created_at)])
        )
    render.show(table)


@app.command("show")
def show(
    ctx: typer.Context,
    name: _Name,
    version: Annotated[str, typer.Option("--version", help="A version number (default: latest).")] = "latest",
    as_json: JsonOption = False,
) -> None:
    """Print one deployment version: variants with model, mode and share, and the server settings.

    Examples:

      shipyard deployments show churn
      shipyard deployments show churn --version 2 --json
    """
    record = manage.get_deployment_record(name, version, client=get_state(ctx).client())
    spec = parse_deployment(record.spec_yaml)
    if as_json:
        render.print_json({**record.to_dict(), "spec": spec.model_dump(mode="json")})
        return
    when = render.fmt_time(record.created_at)
    render.say(f"{record.name} version {record.version} by {record.created_by} {when}")
    shares = spec.shares()
    table = render.make_table("variant", "model", "mode", "share")
    for v in spec.variants:
        share = "copy" if v.mode == "shadow" else f"{shares.get(v.name, 0):.1%}"
        table.add_row(*render.cells([v.name, v.model, v.mode, share]))
    render.show(table)
    b, p = spec.batching, spec.prediction_log
    render.say(
        f"batching: {'on' if b.enabled else 'off'} (max {b.max_batch_size} rows, {b.max_wait_ms:g} ms); "
        f"prediction log: {'on' if p.enabled else 'off'} "
        f"(flush {p.flush_interval_s:g} s, on full: {p.on_full}); "
        f"reload poll: {spec.reload.poll_interval_s:g} s; sticky key: {spec.sticky_key or '-'}"
    )


@app.command("history")
def history(ctx: typer.Context, name: _Name, as_json: JsonOption = False) -> None:
    """Every version of a deployment, oldest first.

    Examples:

      shipyard deployments history churn
    """
    records = manage.deployment_history(name, client=get_state(ctx).client())
    if as_json:
        render.print_json([r.to_dict() for r in records])
        return
    table = render.make_table("version", "variants", "by", "when", "digest")
    for r in records:
        spec = parse_deployment(r.spec_yaml)
        variants = ", ".join(f"{v.name}={v.model}" for v in spec.variants)
        table.add_row(
            *render.cells([r.version, variants, r.created_by, render.fmt_time(r.created_at), r.digest[:12]])
        )
    render.show(table)


@app.command("promote")
def promote(
    ctx: typer.Context,
    name: _Name,
    variant: Annotated[str, typer.Argument(help="The variant (usually the canary) to give all traffic.")],
    reason: _Reason = "",
) -> None:
    """Give a variant all traffic (a new deployment version; running servers follow it).

    Examples:

      shipyard deployments promote churn candidate --reason "canary healthy for 24 h"
    """
    record = manage.promote_variant(name, variant, reason=reason, client=get_state(ctx).client())
    render.say(f"{name}: variant {variant} now takes all traffic (deployment version {record.version})")


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: _Name,
    to: Annotated[int, typer.Option("--to", min=1, help="The version whose spec becomes current again.")],
    reason: _Reason = "",
) -> None:
    """Make an earlier version's spec current again (saved as a new version).

    Examples:

      shipyard deployments rollback churn --to 2 --reason "canary raised error rate"
    """
    record = manage.rollback_deployment(name, to, reason=reason, client=get_state(ctx).client())
    render.say(f"{name} now runs version {to}'s spec (as version {record.version})")
