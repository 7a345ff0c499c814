"""Evaluations stored on versions, approvals (four eyes), gated promotion and rollback.

Every decision leaves a record on the version (``evaluation``, ``approval``, ``promotion``)
and an audit entry; alias moves are audited and recorded in the alias history by the store in
the same transaction. These functions are the only way to change governed state: against a
server they ask it to decide (``RemoteGovernance``); against the database itself they make
their checks and then write through ``LocalGovernance``. Rollback trusts only the registry's
alias history, never audit entries; changing a policy needs the ``admin`` role.
"""

from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import blake3

from shipyard.data.contracts import Contract
from shipyard.data.validation import validate
from shipyard.data.versions import load_dataset, parse_dataset_ref
from shipyard.entities import Artifact, ModelRecord, ModelVersion, RegisteredModel
from shipyard.errors import InvalidInput, InvalidState, NotFound, PermissionDenied
from shipyard.registry.cards import contract_by_digest
from shipyard.registry.core import load_model, resolve
from shipyard.registry.policy import (
    ApprovalRule,
    ContractGate,
    FairnessGate,
    Gate,
    LatencyGate,
    MetricGate,
    PromotionPolicy,
    SizeGate,
    parse_policy,
    users_with_role,
)
from shipyard.store import AuthStore, LocalGovernance, RemoteGovernance, VerifiesCredentials
from shipyard.tracking import Client
from shipyard.tracking.fluent import get_client

if TYPE_CHECKING:
    from shipyard.registry.evaluation import EvaluationReport

__all__ = [
    "GateResult",
    "PendingApproval",
    "PromotionResult",
    "approve_model",
    "evaluate",
    "get_promotion_policy",
    "pending_approvals",
    "promote_model",
    "reject_model",
    "remove_model_alias",
    "rollback_model",
    "set_promotion_policy",
]

T = TypeVar("T")

ADMIN_ROLE = "admin"  # who may attach, change or remove a promotion policy (roles file)
CLIENT_EVALUATION = "client"  # ``computed_by`` of an evaluation a client sent over the API


def _renamed_keyword(func: str, old: str, new: str, old_value: T | None, new_value: T, default: T) -> T:
    """``new_value``, or the value passed under the keyword's old name (with a DeprecationWarning).

    Shipyard 0.2 settled on ``alias=`` for an alias and ``reason=`` for a human reason; the old
    spellings keep working until 0.3.
    """
    if old_value is None:
        return new_value
    warnings.warn(
        f"{func}({old}=...) is deprecated and will be removed in Shipyard 0.3: use {func}({new}=...)",
        DeprecationWarning,
        stacklevel=3,
    )
    if new_value != default and new_value != old_value:
        raise InvalidInput(
            f"{func} got both {new}={new_value!r} and {old}={old_value!r}; pass only {new}= "
            f"({old}= is its deprecated spelling)"
        )
    return old_value


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    evidence: dict[str, Any]


@dataclass(frozen=True)
class PromotionResult:
    """What ``promote`` decided: ``promoted`` or ``blocked``, with every gate's evidence."""

    name: str
    version: int
    alias: str
    status: str
    gates: list[GateResult]
    approvals: dict[str, Any]
    previous: int | None
    reasons: list[str] = field(default_factory=list)

    @property
    def promoted(self) -> bool:
        return self.status == "promoted"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PromotionResult:
        return cls(**{**d, "gates": [GateResult(**g) for g in d["gates"]]})

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["gates"] = [g.__dict__ for g in self.gates]
        return d


# -- policies ---------------------------------------------------------------------------------
def set_promotion_policy(
    name: str,
    policy: PromotionPolicy | str | Path | dict[str, Any] | None,
    *,
    reason: str = "",
    client: Client | None = None,
) -> RegisteredModel:
    """Attach (or with ``None`` remove) a promotion policy; the change is audited.

    Only holders of the ``admin`` role in the roles file (setting ``roles_file``) may do this; a
    server checks it against its own roles file.

    Example:
        >>> sy.set_promotion_policy("churn", "policies/churn.yaml")  # doctest: +SKIP
    """
    client = client or get_client()
    text = parse_policy(policy).to_yaml() if policy is not None else None
    if isinstance(client.store, RemoteGovernance):
        return client.store.remote_set_policy(name, client.settings.user, text, reason)
    doing = "remove the promotion policy of" if text is None else "set the promotion policy of"
    _require_role(client, ADMIN_ROLE, f"{doing} model '{name}'")
    return _writes(client).set_model_policy(name, text, client.settings.user, reason)


def role_holders(client: Client, role: str) -> set[str]:
    """Who holds ``role``: the store's users when the store keeps any (a team server's database;
    an ``admin`` holds every role), else the roles file (setting ``roles_file``, local use).

    Example:
        >>> "ann" in role_holders(client, "approver")  # doctest: +SKIP
        True
    """
    store = client.store
    if isinstance(store, AuthStore) and isinstance(store, VerifiesCredentials):
        users = store.list_users()
        if users:
            return {u.name for u in users if not u.disabled and (role in u.roles or ADMIN_ROLE in u.roles)}
    return users_with_role(client.settings, role)


def _require_role(client: Client, role: str, doing: str) -> None:
    actor = client.settings.user
    if actor not in role_holders(client, role):
        store = client.store
        if isinstance(store, AuthStore) and isinstance(store, VerifiesCredentials) and store.list_users():
            where, fix = (
                "the server's users",
                f"an admin adds it with: shipyard users add {actor} --role {role}",
            )
        else:
            where = client.settings.roles_file or "no roles file is configured (setting roles_file)"
            fix = f"add them under '{role}:' in the roles file"
        raise PermissionDenied(f"{actor} does not hold the role '{role}' needed to {doing} ({where}); {fix}")


def _writes(client: Client) -> LocalGovernance:
    """The store's governed writes; only a store that is the registry's database has them."""
    if isinstance(client.store, LocalGovernance):
        return client.store
    raise InvalidState(
        f"The store {client.store.uri} takes governed changes only as governed operations "
        "(promote, approve, reject, rollback, set policy) decided where the registry lives"
    )


def get_promotion_policy(name: str, *, client: Client | None = None) -> PromotionPolicy | None:
    """The promotion policy attached to model ``name``, or None when it has none.

    Example:
        >>> sy.get_promotion_policy("churn").approvals.required  # doctest: +SKIP
        1
    """
    model = (client or get_client()).store.get_registered_model(name)
    return parse_policy(model.policy_yaml) if model.policy_yaml else None


# -- evaluation -------------------------------------------------------------------------------
def _frame_digest(df: Any) -> str:
    import pandas as pd

    hashed = pd.util.hash_pandas_object(df, index=False).to_numpy()
    return blake3.blake3(hashed.tobytes() + ",".join(map(str, df.columns)).encode()).hexdigest()


def _data(data: Any, client: Client) -> tuple[Any, str, str]:
    """(pandas frame, reference or '', digest) for a dataset reference or a frame."""
    if isinstance(data, str):
        name, ref = parse_dataset_ref(data)
        version = client.store.get_dataset_version(name, ref)
        return load_dataset(version, client=client), version.ref, version.digest
    import pandas as pd

    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    return frame, "", _frame_digest(frame)


def evaluate(
    model: str | ModelVersion | Any,
    data: Any,
    target: str,
    *,
    sensitive: list[str] | tuple[str, ...] = (),
    explain: bool = True,
    plots: bool = True,
    client: Client | None = None,
) -> EvaluationReport:
    """Evaluate a model on data: metrics, per-group fairness, explanations and plots.

    When ``model`` is a registered version (``"models:/churn/7"``), the report and its plots
    are stored on that version (an audited record) and the promotion gates can use them.

    Example:
        >>> report = sy.evaluate("models:/churn/7", "flights@v5", target="delayed", sensitive=["origin"])
        >>> report.metrics["roc_auc"]  # doctest: +SKIP
        0.71
    """
    from shipyard.registry.evaluation import evaluate_model

    client = client or get_client()
    version = (
        resolve(model, client)
        if isinstance(model, str)
        else model
        if isinstance(model, ModelVersion)
        else None
    )
    loaded = load_model(version, client=client) if version is not None else model
    frame, ref, digest = _data(data, client)
    report = evaluate_model(loaded, frame, target, sensitive=list(sensitive), explain=explain, plots=plots)
    if version is not None:
        _store_evaluation(client, version, report, ref, digest, target, list(sensitive))
    return report


def _store_evaluation(
    client: Client,
    version: ModelVersion,
    report: Any,
    ref: str,
    digest: str,
    target: str,
    sensitive: list[str],
) -> ModelRecord:
    files = []
    for name, png in sorted(report.plots.items()):
        blob, size = client.blobs.put_bytes(png)
        files.append(Artifact(name, blob, size))
    body = {
        "dataset": ref,
        "dataset_digest": digest,
        "target": target,
        "sensitive": sensitive,
        "report": report.to_dict(),  # JSON-safe: NaN and infinities are left out
    }
    return client.store.add_model_evaluation(
        version.name, version.version, client.settings.user, body, files=files
    )


def _evaluation_on(
    client: Client, version: ModelVersion, data: str, target: str, sensitive: list[str]
) -> dict[str, Any]:
    """The version's stored evaluation on exactly this data and target, computing it if missing."""
    frame, ref, digest = _data(data, client)
    records = client.store.list_model_records(version.name, version.version, "evaluation")
    for record in reversed(records):
        b = record.body
        if b.get("computed_by") == CLIENT_EVALUATION:
            continue  # sent by a client: gates use only evaluations computed where the registry is
        if (
            b.get("dataset_digest") == digest
            and b.get("target") == target
            and set(sensitive) <= set(b.get("sensitive", []))
        ):
            return dict(b["report"])
    from shipyard.registry.evaluation import evaluate_model

    report = evaluate_model(
        load_model(version, client=client), frame, target, sensitive=sensitive, explain=False
    )
    _store_evaluation(client, version, report, ref, digest, target, sensitive)
    return dict(report.to_dict())


# -- approvals --------------------------------------------------------------------------------
def _decide(name: str, version: int, decision: str, comment: str, client: Client) -> ModelRecord:
    if isinstance(client.store, RemoteGovernance):
        return client.store.remote_decide(name, version, client.settings.user, decision, comment)
    mv = client.store.get_model_version(name, version)
    actor = client.settings.user
    if actor == mv.created_by:
        raise PermissionDenied(
            f"{actor} registered {mv.ref} and cannot {decision} it: four eyes means someone else "
            "must review it (set SHIPYARD_USER to the reviewer's name on their machine)"
        )
    policy = get_promotion_policy(name, client=client)
    role = policy.approvals.role if policy is not None else "approver"
    _require_role(client, role, f"{decision} {mv.ref}")
    return _writes(client).add_model_record(
        name,
        version,
        "approval",
        actor,
        {"decision": decision, "comment": comment, "role": role},
        audit_action=f"model_version.{decision}",
        reason=comment,
    )


def approve_model(
    name: str,
    version: int,
    *,
    reason: str = "",
    client: Client | None = None,
    comment: str | None = None,
) -> ModelRecord:
    """Approve a version for promotion (you must hold the policy's role and not be its author).

    ``comment=`` is the deprecated spelling of ``reason=`` (until Shipyard 0.3).

    Example:
        >>> sy.approve_model("churn", 7, reason="checked the fairness report")  # doctest: +SKIP
    """
    reason = _renamed_keyword("approve_model", "comment", "reason", comment, reason, "")
    return _decide(name, version, "approve", reason, client or get_client())


def reject_model(
    name: str,
    version: int,
    *,
    reason: str = "",
    client: Client | None = None,
    comment: str | None = None,
) -> ModelRecord:
    """Reject a version: it cannot be promoted while this rejection stands.

    ``comment=`` is the deprecated spelling of ``reason=`` (until Shipyard 0.3).

    Example:
        >>> sy.reject_model("churn", 7, reason="worse on JFK departures")  # doctest: +SKIP
    """
    reason = _renamed_keyword("reject_model", "comment", "reason", comment, reason, "")
    if not reason.strip():
        raise InvalidInput("A rejection needs a reason saying why (reason='...'; CLI: --comment '...')")
    return _decide(name, version, "reject", reason, client or get_client())


@dataclass(frozen=True)
class PendingApproval:
    """A version awaiting a reviewer: its latest promotion was blocked, its model's policy needs
    approvals it does not have yet, and no one has rejected it.

    ``since`` is when its first blocked promotion (after any successful one) was recorded, and
    ``record_id`` that record's id (ties in time are ordered by it); ``promotion`` the latest
    attempt, with every gate's evidence; ``approvals`` the tally now.
    """

    name: str
    version: int
    created_by: str
    since: int
    record_id: int
    promotion: PromotionResult
    approvals: dict[str, Any]


def pending_approvals(*, client: Client | None = None) -> list[PendingApproval]:
    """Every version, across all models, awaiting an approval decision; the longest waiting first.

    A version awaits one when its model's policy requires approvals, its latest promotion attempt
    was blocked, and the approvals that count (the policy's role, never the author) are short,
    with no standing rejection. Approving or rejecting it, or promoting it, takes it off.

    Example:
        >>> [(p.name, p.version) for p in pending_approvals(client=client)]  # doctest: +SKIP
        [('churn', 7)]
    """
    client = client or get_client()
    found: list[PendingApproval] = []
    holders: dict[str, set[str]] = {}
    for model in client.store.list_registered_models():
        policy = parse_policy(model.policy_yaml) if model.policy_yaml else None
        if policy is None or policy.approvals.required == 0:
            continue
        rule = policy.approvals
        by_version: dict[tuple[int, str], list[ModelRecord]] = {}
        for record in client.store.list_model_records(model.name):  # oldest first
            by_version.setdefault((record.version, record.kind), []).append(record)
        versions = {v.version: v for v in client.store.list_model_versions(model.name)}
        for number, mv in sorted(versions.items()):
            waiting = _since_last_promoted(by_version.get((number, "promotion"), []))
            if not waiting:
                continue
            if rule.role not in holders:
                holders[rule.role] = role_holders(client, rule.role)
            tally = _tally(by_version.get((number, "approval"), []), mv, rule, holders[rule.role])
            if tally["ok"] or tally["rejected_by"]:
                continue
            first, latest = waiting[0], PromotionResult.from_dict(waiting[-1].body)
            found.append(
                PendingApproval(model.name, number, mv.created_by, first.created_at, first.id, latest, tally)
            )
    return sorted(found, key=lambda p: (p.since, p.record_id))


def _since_last_promoted(promotions: list[ModelRecord]) -> list[ModelRecord]:
    """The blocked attempts after the last successful one (empty when the latest succeeded)."""
    tail: list[ModelRecord] = []
    for record in promotions:
        tail = [] if record.body.get("status") == "promoted" else [*tail, record]
    return tail


def _approvals(client: Client, mv: ModelVersion, policy: PromotionPolicy | None) -> dict[str, Any]:
    rule = policy.approvals if policy is not None else None
    holders = role_holders(client, rule.role) if rule is not None else set()
    return _tally(client.store.list_model_records(mv.name, mv.version, "approval"), mv, rule, holders)


def _tally(
    decisions: list[ModelRecord], mv: ModelVersion, rule: ApprovalRule | None, holders: set[str]
) -> dict[str, Any]:
    """The approvals that count for ``mv``: each reviewer's latest decision, never the author's,
    only from holders of the rule's role."""
    latest: dict[str, dict[str, Any]] = {}
    for record in decisions:
        latest[record.actor] = {
            "decision": record.body.get("decision"),
            "comment": record.body.get("comment", ""),
        }
    valid = {a: d for a, d in latest.items() if a != mv.created_by and (rule is None or a in holders)}
    approvers = sorted(a for a, d in valid.items() if d["decision"] == "approve")
    rejecters = sorted(a for a, d in valid.items() if d["decision"] == "reject")
    required = rule.required if rule is not None else 0
    return {
        "required": required,
        "role": rule.role if rule is not None else None,
        "approved_by": approvers,
        "rejected_by": rejecters,
        "ok": len(approvers) >= required and not rejecters,
    }


# -- gates ------------------------------------------------------------------------------------
def _metric_gate(
    gate: MetricGate, cand: dict[str, Any], champ: dict[str, Any] | None, holder: int | None
) -> GateResult:
    value = cand.get("metrics", {}).get(gate.metric)
    if value is None:
        return GateResult(gate.describe(), False, {"error": f"the evaluation has no metric '{gate.metric}'"})
    if gate.relative_to is None:
        ok = (gate.min is None or value >= gate.min) and (gate.max is None or value <= gate.max)
        return GateResult(gate.describe(), ok, {"value": value, "min": gate.min, "max": gate.max})
    if champ is None:
        return GateResult(
            gate.describe(), True, {"value": value, "note": f"no {gate.relative_to} yet: nothing to compare"}
        )
    base = champ.get("metrics", {}).get(gate.metric)
    if base is None:
        return GateResult(
            gate.describe(), False, {"error": f"the {gate.relative_to} has no metric '{gate.metric}'"}
        )
    delta = value - base
    ok = (gate.min_delta is None or delta >= gate.min_delta) and (
        gate.max_delta is None or delta <= gate.max_delta
    )
    return GateResult(
        gate.describe(), ok, {"value": value, "baseline": base, "baseline_version": holder, "delta": delta}
    )


def _contract_gate(gate: ContractGate, client: Client, data_ref: str) -> GateResult:
    name, ref = parse_dataset_ref(data_ref)
    dv = client.store.get_dataset_version(name, ref)
    if isinstance(gate.contract, str):
        from shipyard.data.registry import load_contract

        contract: Contract | None = load_contract(gate.contract, client=client)
    else:
        contract = contract_by_digest(client, dv.contract_digest) if dv.contract_digest else None
    if contract is None:
        return GateResult(gate.describe(), False, {"error": f"{dv.ref} has no contract to check against"})
    report = validate(load_dataset(dv, output="polars", client=client), contract)
    return GateResult(
        gate.describe(),
        report.ok,
        {"dataset": dv.ref, "contract": contract.name, "errors": [str(v) for v in report.errors[:5]]},
    )


def _fairness_gate(gate: FairnessGate, cand: dict[str, Any]) -> GateResult:
    value = cand.get("fairness", {}).get(gate.column, {}).get(gate.fairness)
    if value is None:
        return GateResult(
            gate.describe(),
            False,
            {"error": f"no {gate.fairness} for column '{gate.column}' (add it to evaluation.sensitive)"},
        )
    return GateResult(gate.describe(), value <= gate.max, {"value": value, "max": gate.max})


def _latency_gate(gate: LatencyGate, client: Client, mv: ModelVersion, data_ref: str) -> GateResult:
    model = load_model(mv, client=client)
    frame = load_dataset(data_ref, client=client).head(gate.rows)
    frame = frame[[c["name"] for c in mv.signature.get("inputs", []) if c["name"] in frame.columns]]
    for _ in range(3):
        model.predict(frame)
    times = []
    for _ in range(21):
        start = time.perf_counter()
        model.predict(frame)
        times.append((time.perf_counter() - start) * 1000)
    median = statistics.median(times)
    return GateResult(
        gate.describe(), median <= gate.max_latency_ms, {"median_ms": round(median, 3), "rows": len(frame)}
    )


def _run_gates(
    client: Client, policy: PromotionPolicy, mv: ModelVersion, holder: ModelVersion | None
) -> list[GateResult]:
    spec = policy.evaluation
    cand = champ = None
    if spec is not None:
        cand = _evaluation_on(client, mv, spec.dataset, spec.target, spec.sensitive)
        if holder is not None and any(isinstance(g, MetricGate) and g.relative_to for g in policy.gates):
            champ = _evaluation_on(client, holder, spec.dataset, spec.target, spec.sensitive)
    results: list[GateResult] = []
    for gate in policy.gates:
        results.append(_one_gate(gate, client, mv, holder, spec.dataset if spec else "", cand, champ))
    return results


def _one_gate(
    gate: Gate,
    client: Client,
    mv: ModelVersion,
    holder: ModelVersion | None,
    data: str,
    cand: Any,
    champ: Any,
) -> GateResult:
    if isinstance(gate, MetricGate):
        return _metric_gate(gate, cand, champ, holder.version if holder else None)
    if isinstance(gate, ContractGate):
        return _contract_gate(gate, client, data)
    if isinstance(gate, FairnessGate):
        return _fairness_gate(gate, cand)
    if isinstance(gate, SizeGate):
        mb = mv.size / 1e6
        return GateResult(gate.describe(), mb <= gate.max_size_mb, {"size_mb": round(mb, 3)})
    return _latency_gate(gate, client, mv, data)


# -- promotion --------------------------------------------------------------------------------
def promote_model(
    name: str,
    version: int,
    *,
    alias: str = "champion",
    reason: str = "",
    client: Client | None = None,
    to: str | None = None,
) -> PromotionResult:
    """Move ``alias`` onto ``version`` if every gate passes and the approvals are in.

    Each gate's result is recorded with its evidence whatever the outcome; the alias moves
    only on success, and only if no one moved it while the gates ran. ``to=`` is the
    deprecated spelling of ``alias=`` (until Shipyard 0.3).

    Example:
        >>> result = sy.promote_model("churn", 7, alias="champion")  # doctest: +SKIP
        >>> result.status, [g.passed for g in result.gates]  # doctest: +SKIP
        ('promoted', [True, True, True])
    """
    to = _renamed_keyword("promote_model", "to", "alias", to, alias, "champion")  # the alias to move
    client = client or get_client()
    if isinstance(client.store, RemoteGovernance):  # a server decides: gates run where policy and data live
        answer = client.store.remote_promote(name, version, client.settings.user, to, reason)
        return PromotionResult.from_dict(answer)
    mv = client.store.get_model_version(name, version)
    model = client.store.get_registered_model(name)
    holder_version = model.aliases.get(to)
    if holder_version == mv.version:
        raise InvalidState(f"{mv.ref} already holds alias '{to}'")
    holder = client.store.get_model_version(name, holder_version) if holder_version is not None else None
    policy = get_promotion_policy(name, client=client)
    gates = _run_gates(client, policy, mv, holder) if policy is not None else []
    approvals = _approvals(client, mv, policy)
    reasons = [f"gate failed: {g.gate} ({_evidence(g)})" for g in gates if not g.passed]
    if not approvals["ok"]:
        if approvals["rejected_by"]:
            reasons.append(f"rejected by {', '.join(approvals['rejected_by'])}")
        else:
            missing = approvals["required"] - len(approvals["approved_by"])
            reasons.append(
                f"needs {missing} more approval(s) from role '{approvals['role']}' "
                f"(not the author {mv.created_by}): shipyard models approve {name} {mv.version}"
            )
    status = "blocked" if reasons else "promoted"
    result = PromotionResult(name, mv.version, to, status, gates, approvals, holder_version, reasons)
    writes = _writes(client)
    writes.add_model_record(
        name,
        mv.version,
        "promotion",
        client.settings.user,
        result.to_dict(),
        audit_action="model_version.promotion",
        reason=reason,
    )
    if status == "promoted":
        writes.set_model_alias(
            name,
            to,
            mv.version,
            client.settings.user,
            reason or "promotion: all gates passed",
            expect=holder_version,
        )
    return result


def _evidence(g: GateResult) -> str:
    return ", ".join(f"{k}={v}" for k, v in g.evidence.items() if v is not None and k != "errors")


def rollback_model(
    name: str,
    *,
    to: int | None = None,
    alias: str = "champion",
    reason: str = "",
    client: Client | None = None,
) -> int:
    """Point ``alias`` back at a version that held it before (default: the one before now).

    Rollback skips the gates (it restores a state that already passed them) but only to a
    version that held the alias before, as the registry's own alias history records it (never
    the audit log, whose entries are not evidence of a passed gate); the move is audited.
    Returns the version now serving.

    Example:
        >>> sy.rollback_model("churn", to=6, reason="v7 misbehaves on July data")  # doctest: +SKIP
    """
    client = client or get_client()
    if isinstance(client.store, RemoteGovernance):
        return client.store.remote_rollback(name, client.settings.user, to, alias, reason)
    current = client.store.get_registered_model(name).aliases.get(alias)
    held = _former_holders(client, name, alias, current)
    if to is None:
        if not held:
            raise InvalidState(f"Alias '{name}@{alias}' has no earlier version to roll back to")
        to = held[0]
    elif to not in held:
        raise InvalidInput(
            f"Version {to} of '{name}' never held alias '{alias}' (held: {sorted(held) or 'none'}); "
            f"use shipyard models promote {name} {to} --to {alias} to promote it through the gates"
        )
    _writes(client).set_model_alias(
        name, alias, to, client.settings.user, f"rollback: {reason}".strip(), expect=current
    )
    return to


def remove_model_alias(name: str, alias: str, *, reason: str = "", client: Client | None = None) -> int:
    """Remove ``alias`` from model ``name``; returns the version it pointed at (the move is audited
    and recorded in the alias history).

    Only a model without a promotion policy lets an alias go this way: such a model's aliases move
    freely. A model with a policy keeps its aliases (whatever serves ``@alias`` keeps a model);
    they move only by :func:`promote_model` (gates) or :func:`rollback_model`.

    Example:
        >>> governance.remove_model_alias("churn", "staging", reason="trial over")  # doctest: +SKIP
        3
    """
    client = client or get_client()
    model = client.store.get_registered_model(name)
    current = model.aliases.get(alias)
    if current is None:
        held = ", ".join(sorted(model.aliases)) or "none"
        raise NotFound(f"Model '{name}' has no alias '{alias}' (aliases: {held})")
    if model.policy_yaml:
        raise InvalidState(
            f"Model '{name}' has a promotion policy, so its alias '{alias}' (version {current}) is not "
            f"removed: move it with shipyard models promote {name} VERSION --to {alias} (gates) or "
            f"shipyard models rollback {name} --alias {alias}"
        )
    _writes(client).set_model_alias(
        name, alias, None, client.settings.user, reason or "alias removed", expect=current
    )
    return current


def _former_holders(client: Client, name: str, alias: str, current: int | None) -> list[int]:
    """Versions that held ``alias`` other than ``current``, the most recent holder first."""
    found: list[int] = []
    for move in reversed(client.store.list_alias_history(name, alias)):
        for v in (move.previous, move.version):
            if v is not None and v != current and v not in found:
                found.append(v)
    return found


# The pre-0.2 names, kept for internal callers (tests); the SDK exports the names above.
promote = promote_model
approve = approve_model
reject = reject_model
rollback = rollback_model
set_policy = set_promotion_policy
get_policy = get_promotion_policy
