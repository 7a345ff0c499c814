"""Demo stage: register the best model, evaluate it, and promote it through a policy with a reviewer.

The policy asks for an AUC floor, no regression against the current champion, data that meets its
contract, a fairness bound across departure airports, a size and latency budget, and one approval
from someone other than the author (four eyes). The demo plays the reviewer as a second user.
"""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.table import Table
from rich.text import Text
from threadpoolctl import threadpool_limits

from shipyard.demo.context import DemoContext
from shipyard.errors import InvalidState
from shipyard.registry import core, governance
from shipyard.registry.governance import PromotionResult
from shipyard.tracking import Client

__all__ = ["MODEL_NAME", "REVIEWER", "gates_table", "register_and_promote"]

MODEL_NAME = "flights-delay"
REVIEWER = "demo-reviewer"


def _policy(validation_ref: str) -> str:
    return f"""
evaluation:
  dataset: {validation_ref}
  target: late
  sensitive: [origin]
gates:
  - {{metric: roc_auc, min: 0.60}}
  - {{metric: roc_auc, relative_to: champion, min_delta: -0.005}}
  - {{contract: true}}
  - {{fairness: demographic_parity_difference, column: origin, max: 0.25}}
  - {{max_size_mb: 200}}
  - {{max_latency_ms: 100, rows: 1}}
approvals:
  required: 1
  role: approver
"""


def gates_table(result: PromotionResult) -> Table:
    table = Table("gate", "result", "evidence", box=box.SIMPLE_HEAD)
    for gate in result.gates:
        evidence = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in gate.evidence.items()
            if v is not None and k != "errors"
        )
        table.add_row(gate.gate, Text("pass", "green") if gate.passed else Text("FAIL", "red"), evidence)
    a = result.approvals
    table.add_row(
        f"{a['required']} approval from role '{a['role']}'",
        Text("pass", "green") if a["ok"] else Text("waiting", "yellow"),
        ", ".join(a["approved_by"]) or "none yet",
    )
    return table


def _reviewer(ctx: DemoContext, roles: Path) -> Client:
    return ctx.client.with_settings(user=REVIEWER, roles_file=str(roles))


def register_and_promote(ctx: DemoContext) -> None:
    """Stage: register → evaluate → promote (blocked until approved) → approve → promote → verify audit."""
    # One OpenMP thread, as in training: on a busy 2-core machine spinning workers made the
    # evaluation's many small predict calls 5-10x slower (measured: 33 s against 4.4 s).
    with threadpool_limits(limits=1):
        _register_and_promote(ctx)


def _register_and_promote(ctx: DemoContext) -> None:
    best = ctx.require_best()
    datasets = ctx.extras.get("datasets", {})
    train_ref, val_ref = datasets["flights-train"].ref, datasets["flights-validation"].ref
    roles = Path(ctx.client.settings.home) / "roles.yaml"
    roles.parent.mkdir(parents=True, exist_ok=True)
    roles.write_text(f"approver: [{REVIEWER}]\nadmin: [{ctx.client.settings.user}]\n")  # admin: sets policy
    author = ctx.client.with_settings(roles_file=str(roles))
    mv = core.register_model(
        best.run_id, MODEL_NAME, training_data=train_ref, target="late", description=best.name, client=author
    )
    inputs = mv.signature.get("inputs", [])
    ctx.console.print(
        f"Registered [bold]{mv.ref}[/] from run {best.run_id[:8]} ({best.name}): trained on {train_ref}, "
        f"signature of {len(inputs)} columns taken from the data contract, "
        f"{len(mv.metadata.get('requirements', []))} pinned requirements."
    )
    report = governance.evaluate(mv, val_ref, "late", sensitive=["origin"], client=author)
    m, gaps = report.metrics, report.fairness.get("origin", {})
    top = list(report.importance)[:3]
    ctx.console.print(
        f"Evaluated on {val_ref}: AUC {m.get('roc_auc', float('nan')):.3f}, "
        f"log loss {m.get('log_loss', 0):.3f}, "
        f"ECE {m.get('ece', 0):.3f}; parity gap by origin "
        f"{gaps.get('demographic_parity_difference', float('nan')):.3f}; "
        f"most important: {', '.join(top)} "
        f"({len(report.plots)} plots stored with the version)."
    )
    governance.set_promotion_policy(MODEL_NAME, _policy(val_ref), reason="demo policy", client=author)
    champion = core.get_registered_model(MODEL_NAME, client=author).aliases.get("champion")
    if champion == mv.version:
        ctx.console.print(f"{mv.ref} is already the champion (an earlier demo promoted the same model).")
        ctx.extras["champion"] = mv
        _verify(ctx)
        return
    first = governance.promote_model(MODEL_NAME, mv.version, client=author)
    ctx.console.print(Text(f"shipyard models promote {MODEL_NAME} {mv.version} --to champion", style="dim"))
    ctx.console.print(gates_table(first))
    if first.promoted:  # approved when an earlier demo in this home registered the same model
        ctx.console.print(f"{mv.ref} was approved in an earlier demo here: promoted back to champion.")
        ctx.extras["champion"] = mv
        _verify(ctx)
        return
    failed = [g for g in first.gates if not g.passed]
    if failed:
        ctx.console.print(f"Blocked by {len(failed)} gate(s); the champion stays v{champion}.")
        _verify(ctx)
        return
    ctx.console.print(f"Waiting for a reviewer. As {REVIEWER} (role approver, not the author):")
    governance.approve_model(
        MODEL_NAME, mv.version, reason="gates and fairness report reviewed", client=_reviewer(ctx, roles)
    )
    second = governance.promote_model(
        MODEL_NAME, mv.version, reason="demo: best validation AUC", client=author
    )
    ctx.console.print(gates_table(second))
    ctx.console.print(
        Text.assemble(
            ("Promoted: ", "bold green"),
            f"{MODEL_NAME}@champion → v{mv.version}",
            f" (was {champion or 'unset'})",
        )
    )
    ctx.extras["champion"] = mv
    _verify(ctx)


def _verify(ctx: DemoContext) -> None:
    chain = ctx.client.verify_audit()
    if not chain.ok:
        raise InvalidState(f"The audit chain does not verify: {chain.problems[:1]}")
    ctx.console.print(
        f"Audit chain verified: {chain.checked:,} entries (datasets, contracts, model versions, evaluations, "
        "approvals, alias moves), every hash and link intact."
    )
