"""``shipyard models …``: versions, lineage, evaluation, promotion, approvals, audit and packaging."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli import render
from shipyard.cli.options import JsonOption
from shipyard.cli.state import get_state
from shipyard.entities import ModelVersion
from shipyard.errors import ConfigError
from shipyard.registry import core, governance, supply
from shipyard.registry.references import parse_model_ref

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Register, inspect, evaluate, promote and package models.")
policy_app = typer.Typer(no_args_is_help=True, help="Show or set a model's promotion policy.")
app.add_typer(policy_app, name="policy")

_Name = Annotated[str, typer.Argument(help="Registered model name, e.g. churn.")]
_Version = Annotated[int, typer.Argument(min=1, help="Version number.")]
_Ref = Annotated[
    str, typer.Argument(help="Model reference: churn@champion, churn/7, models:/churn/7 or churn.")
]
_Comment = Annotated[str, typer.Option("--comment", "-m", help="Why: recorded with the decision.")]
_Reason = Annotated[str, typer.Option("--reason", help="Why: recorded in the audit log.")]


def _metrics(metrics: dict[str, Any], limit: int = 4, *, ordered: bool = False) -> str:
    """``k=v`` pairs: alphabetical, or in the given order when ``ordered`` (headline metrics first)."""
    items = list(metrics.items()) if ordered else sorted(metrics.items())
    return ", ".join(f"{k}={render.fmt_value(v)}" for k, v in items[:limit])


@app.command("ls")
def ls(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List registered models with their latest version and aliases.

    Examples:

      shipyard models ls
      shipyard models ls --json
    """
    models = core.list_models(client=get_state(ctx).client())
    if as_json:
        render.print_json([m.to_dict() for m in models])
        return
    table = render.make_table("name", "latest", "aliases", "policy", "updated")
    for m in models:
        aliases = ", ".join(f"{a}→v{v}" for a, v in m.aliases.items()) or "-"
        row = [
            m.name,
            m.latest_version,
            aliases,
            "yes" if m.policy_yaml else "no",
            render.fmt_time(m.updated_at),
        ]
        table.add_row(*render.cells(row))
    render.show(table)


@app.command("register")
def register(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run that logged the model folder.")],
    name: Annotated[str, typer.Option("--name", help="Registered model name.")],
    artifact: Annotated[str, typer.Option("--artifact", help="Artifact path of the model folder.")] = "model",
    training_data: Annotated[
        str | None, typer.Option("--training-data", help="Dataset the model was trained on, e.g. flights@v3.")
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="Label column (left out of the signature).")
    ] = None,
    description: Annotated[str, typer.Option("--description", help="What this version is.")] = "",
) -> None:
    """Register the model folder a run logged as the next version of NAME.

    Examples:

      shipyard models register 3f2a9c --name churn --training-data flights@v3 --target delayed
    """
    mv = core.register_model(
        run_id,
        name,
        artifact=artifact,
        training_data=training_data,
        target=target,
        description=description,
        client=get_state(ctx).client(),
    )
    render.say(f"Registered {mv.ref} ({mv.flavor}, {len(mv.signature.get('inputs', []))} inputs)")


@app.command("versions")
def versions(ctx: typer.Context, name: _Name, as_json: JsonOption = False) -> None:
    """List the versions of a model: flavor, source run, metrics, aliases.

    Examples:

      shipyard models versions churn
    """
    found = core.list_model_versions(name, client=get_state(ctx).client())
    if as_json:
        render.print_json([v.to_dict() for v in found])
        return
    table = render.make_table("version", "flavor", "run", "metrics", "aliases", "by", "created")
    for v in found:
        row = [
            v.version,
            v.flavor,
            v.run_id or "-",
            _metrics(v.metadata.get("metrics") or {}),
            ", ".join(v.aliases) or "-",
            v.created_by,
            render.fmt_time(v.created_at),
        ]
        table.add_row(*render.cells(row))
    render.show(table)


def _version(ctx: typer.Context, ref: str) -> ModelVersion:
    return core.resolve(parse_model_ref(ref), get_state(ctx).client())


@app.command("show")
def show(ctx: typer.Context, ref: _Ref, as_json: JsonOption = False) -> None:
    """Show one version: the model card, signature, lineage, evaluations and decisions.

    Examples:

      shipyard models show churn@champion
      shipyard models show churn/3 --json
    """
    client = get_state(ctx).client()
    v = _version(ctx, ref)
    records = core.list_model_records(v.name, v.version, client=client)
    if as_json:
        render.print_json({**v.to_dict(), "records": [r.to_dict() for r in records]})
        return
    meta = v.metadata
    render.say(f"{v.ref}  flavor {v.flavor}  {render.fmt_bytes(v.size)}  digest {v.digest[:12]}")
    render.say(f"registered by {v.created_by} {render.fmt_time(v.created_at)}; source run {v.run_id or '-'}")
    render.say(f"aliases: {', '.join(v.aliases) or '-'}; task: {meta.get('task') or '-'}")
    if v.description:
        render.say(v.description)
    sig = render.make_table("input", "type", "nullable", title="Signature")
    for col in v.signature.get("inputs", []):
        sig.add_row(*render.cells([col["name"], col["type"], col.get("nullable", True)]))
    render.show(sig)
    if meta.get("metrics"):
        render.say("metrics: " + _metrics(meta["metrics"], limit=20))
    if v.datasets:
        render.say("trained on: " + ", ".join(f"{n}@v{n_} ({r})" for n, n_, r in v.datasets))
    render.say("requirements: " + (", ".join(meta.get("requirements") or []) or "-"))
    table = render.make_table("#", "record", "by", "when", "summary", title="Evaluations and decisions")
    for r in records:
        table.add_row(
            *render.cells([r.id, r.kind, r.actor, render.fmt_time(r.created_at), _summary(r.kind, r.body)])
        )
    render.show(table)


def _summary(kind: str, body: dict[str, Any]) -> str:
    if kind == "evaluation":
        metrics = body.get("report", {}).get("metrics") or {}
        headline = ("roc_auc", "log_loss", "accuracy", "f1", "rmse", "mae", "r2")
        shown = {k: metrics[k] for k in headline if k in metrics} or metrics
        return f"on {body.get('dataset') or 'a frame'}: {_metrics(shown, ordered=True)}"
    if kind == "approval":
        return f"{body.get('decision')}: {body.get('comment', '')}"
    return f"{body.get('status')} to {body.get('alias')}" + (
        f": {'; '.join(body.get('reasons') or [])}" if body.get("reasons") else ""
    )


@app.command("lineage")
def lineage(ctx: typer.Context, ref: _Ref, as_json: JsonOption = False) -> None:
    """Where a version came from: dataset versions → run → model version → aliases.

    Examples:

      shipyard models lineage churn@champion
    """
    client = get_state(ctx).client()
    v = _version(ctx, ref)
    run = client.get_run(v.run_id) if v.run_id else None
    data = {
        "model": v.ref,
        "datasets": [{"dataset": f"{n}@v{num}", "role": role} for n, num, role in v.datasets],
        "run": run.to_dict() if run else None,
        "aliases": v.aliases,
    }
    if as_json:
        render.print_json(data)
        return
    for n, num, role in v.datasets:
        render.say(f"dataset {n}@v{num} ({role})")
    if run is not None:
        render.say(f"  └─► run {run.id} '{run.name}' in {run.experiment_name} by {run.user}")
    render.say(f"        └─► {v.ref}" + (f"  [{', '.join(v.aliases)}]" if v.aliases else ""))


@app.command("evaluate")
def evaluate(
    ctx: typer.Context,
    name: _Name,
    version: _Version,
    data: Annotated[str, typer.Option("--data", help="Dataset reference to evaluate on, e.g. flights@v5.")],
    target: Annotated[str, typer.Option("--target", help="The label column.")],
    sensitive: Annotated[
        list[str] | None, typer.Option("--sensitive", help="Column to check fairness by.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Evaluate a version on a stored dataset; the report and plots are stored on the version.

    Examples:

      shipyard models evaluate churn 7 --data flights@v5 --target delayed --sensitive origin
    """
    client = get_state(ctx).client()
    mv = core.get_model_version(f"{name}/{version}", client=client)
    report = governance.evaluate(mv, data, target, sensitive=sensitive or [], client=client)
    if as_json:
        render.print_json(report.to_dict())
        return
    table = render.make_table("metric", "value", title=f"{mv.ref} on {data}")
    for k, val in report.metrics.items():
        table.add_row(*render.cells([k, val]))
    render.show(table)
    for column, gaps in report.fairness.items():
        render.say(f"fairness by {column}: " + _metrics(gaps))


@app.command("promote")
def promote(
    ctx: typer.Context,
    name: _Name,
    version: _Version,
    to: Annotated[str, typer.Option("--to", help="Alias to move onto the version.")] = "champion",
    reason: _Reason = "",
    as_json: JsonOption = False,
) -> None:
    """Run the promotion policy's gates and approvals; move the alias only if all pass (exit 1 if not).

    Examples:

      shipyard models promote churn 7 --to champion
    """
    result = governance.promote_model(name, version, alias=to, reason=reason, client=get_state(ctx).client())
    if as_json:
        render.print_json(result.to_dict())
    else:
        table = render.make_table(
            "gate", "result", "evidence", title=f"Promotion of {name}/{version} to {to}"
        )
        for g in result.gates:
            evidence = ", ".join(f"{k}={render.fmt_value(v)}" for k, v in g.evidence.items() if v is not None)
            table.add_row(*render.cells([g.gate, "pass" if g.passed else "FAIL", evidence]))
        a = result.approvals
        table.add_row(
            *render.cells(
                [
                    f"{a['required']} approval(s)",
                    "pass" if a["ok"] else "FAIL",
                    ", ".join(a["approved_by"]) or "-",
                ]
            )
        )
        render.show(table)
        if result.promoted:
            render.say(f"{name}@{to} → v{version} (was {result.previous or 'unset'})")
        for reason_line in result.reasons:
            render.error(reason_line)
    if not result.promoted:
        raise typer.Exit(1)


@app.command("approve")
def approve(ctx: typer.Context, name: _Name, version: _Version, comment: _Comment = "") -> None:
    """Approve a version for promotion (you need the policy's role and must not be its author).

    Examples:

      SHIPYARD_USER=bob shipyard models approve churn 7 -m "fairness report reviewed"
    """
    record = governance.approve_model(name, version, reason=comment, client=get_state(ctx).client())
    render.say(f"{record.actor} approved {name}/{version}")


@app.command("reject")
def reject(ctx: typer.Context, name: _Name, version: _Version, comment: _Comment = "") -> None:
    """Reject a version: it cannot be promoted while the rejection stands.

    Examples:

      shipyard models reject churn 7 -m "worse on JFK departures"
    """
    record = governance.reject_model(name, version, reason=comment, client=get_state(ctx).client())
    render.say(f"{record.actor} rejected {name}/{version}")


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: _Name,
    to: Annotated[
        int | None, typer.Option("--to", help="Version to restore (default: the previous holder).")
    ] = None,
    alias: Annotated[str, typer.Option("--alias", help="Alias to move back.")] = "champion",
    reason: _Reason = "",
) -> None:
    """Point an alias back at a version that held it before (no gates; audited).

    Examples:

      shipyard models rollback churn --to 6 --reason "v7 misbehaves on July data"
    """
    now = governance.rollback_model(name, to=to, alias=alias, reason=reason, client=get_state(ctx).client())
    render.say(f"{name}@{alias} → v{now}")


@app.command("audit")
def audit(
    ctx: typer.Context,
    ref: _Ref,
    allowlist: Annotated[
        Path | None,
        typer.Option("--allowlist", help="Allowlist file (default: setting package_allowlist_file)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check a version's packages against the organisation allowlist (exit 1 if any is not allowed).

    Examples:

      shipyard models audit churn@champion --allowlist allowed-packages.txt
    """
    state = get_state(ctx)
    client = state.client()
    path = allowlist or (
        Path(client.settings.package_allowlist_file) if client.settings.package_allowlist_file else None
    )
    if path is None:
        raise ConfigError("No allowlist: pass --allowlist FILE or set SHIPYARD_PACKAGE_ALLOWLIST_FILE")
    checks = supply.check_packages(_version(ctx, ref), path)
    if as_json:
        render.print_json([c.__dict__ for c in checks])
    else:
        table = render.make_table("package", "version", "status", "allowlist rule")
        for c in checks:
            table.add_row(
                *render.cells([c.package, c.version, c.status if c.ok else c.status.upper(), c.rule or "-"])
            )
        render.show(table)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


@app.command("package")
def package(
    ctx: typer.Context,
    ref: _Ref,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the build context into.")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a non-empty folder.")] = False,
) -> None:
    """Write a self-contained Docker build context: model, pinned requirements, Dockerfile, README.

    Examples:

      shipyard models package churn@champion -o build/churn
      docker build -t churn build/churn
    """
    from shipyard.registry.packaging import package_model

    client = get_state(ctx).client()
    v = _version(ctx, ref)
    folder = core.download_model(v, client=client)
    result = package_model(folder, out, model_ref=v.ref, overwrite=overwrite)
    render.say(f"Build context for {v.ref} written to {result.out if hasattr(result, 'out') else out}")


@policy_app.command("set")
def policy_set(
    ctx: typer.Context,
    name: _Name,
    file: Annotated[Path, typer.Argument(help="Policy YAML file.", exists=True, dir_okay=False)],
    reason: _Reason = "",
) -> None:
    """Attach a promotion policy (gates, approvals, evaluation data) to a model; audited.

    Examples:

      shipyard models policy set churn policies/churn.yaml
    """
    governance.set_promotion_policy(name, file, reason=reason, client=get_state(ctx).client())
    render.say(f"Policy of {name} set from {file}")


@policy_app.command("show")
def policy_show(ctx: typer.Context, name: _Name) -> None:
    """Print a model's promotion policy as YAML.

    Examples:

      shipyard models policy show churn
    """
    policy = governance.get_promotion_policy(name, client=get_state(ctx).client())
    render.say(
        policy.to_yaml() if policy else f"{name} has no promotion policy (anyone may move its aliases)"
    )
