"""What the audit chain says the registry should look like, and where the registry disagrees.

The registry's tables (aliases, alias history, policies) can be edited with SQL without touching
the chain. Replaying the chain's alias and policy entries gives the state they imply;
``compare_registry`` lists each difference from the state the registry holds (pure functions:
the caller reads both from a store).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from shipyard.entities import AliasMove, AuditEntry, RegisteredModel

__all__ = ["RegistryState", "compare_registry", "implied_registry_state"]

_ALIAS_ACTIONS = ("alias.set", "alias.delete")


@dataclass
class RegistryState:
    """Aliases (``(model, alias) -> version``), alias moves by entry seq, and policies by model."""

    aliases: dict[tuple[str, str], int | None] = field(default_factory=dict)
    moves: dict[int, tuple[str, str, int | None, int | None]] = field(default_factory=dict)
    policies: dict[str, str | None] = field(default_factory=dict)

    def observe(self, e: AuditEntry) -> None:
        """Apply one entry (entries must come in ``seq`` order)."""
        if e.object_type == "model_alias" and e.action in _ALIAS_ACTIONS and "@" in e.object_id:
            name, alias = e.object_id.rsplit("@", 1)
            version = _version(e.after)
            self.aliases[(name, alias)] = version
            self.moves[e.seq] = (name, alias, _version(e.before), version)
        elif e.object_type == "model" and e.action == "model.policy":
            self.policies[e.object_id] = e.after if isinstance(e.after, str) else None


def _version(value: Any) -> int | None:
    v = value.get("version") if isinstance(value, dict) else None
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def implied_registry_state(entries: Iterable[AuditEntry]) -> RegistryState:
    """Replay alias and policy entries in order.

    Example:
        >>> e = AuditEntry(1, 0, "ann", "alias.set", "model_alias", "churn@champion", {"version": None},
        ...                {"version": 2}, "")
        >>> implied_registry_state([e]).aliases
        {('churn', 'champion'): 2}
    """
    state = RegistryState()
    for e in entries:
        state.observe(e)
    return state


def compare_registry(
    state: RegistryState, models: Iterable[RegisteredModel], history: Iterable[AliasMove]
) -> list[tuple[int | None, str]]:
    """Each difference between the chain's implied state and the registry, as ``(seq, message)``.

    Checks that every alias points where the chain last moved it, that no alias exists the chain
    never set, that each policy is the one the chain last recorded, and that every alias-history
    row (what rollback trusts) matches the audit entry written with it.

    Example:
        >>> compare_registry(RegistryState(), [], [])
        []
    """
    problems: list[tuple[int | None, str]] = []
    seen: set[tuple[str, str]] = set()
    for model in models:
        for alias, actual in model.aliases.items():
            seen.add((model.name, alias))
            expected = state.aliases.get((model.name, alias))
            if expected != actual:
                problems.append(
                    (
                        None,
                        f"alias {model.name}@{alias} points at version {actual} but the audit chain "
                        f"says {expected}: the alias table was changed outside Shipyard",
                    )
                )
        want = state.policies.get(model.name)
        if (want or None) != (model.policy_yaml or None):
            problems.append(
                (
                    None,
                    f"the promotion policy of model {model.name} is not the one the audit chain last "
                    "recorded: it was changed outside Shipyard",
                )
            )
    for (name, alias), expected in sorted(state.aliases.items()):
        if expected is not None and (name, alias) not in seen:
            problems.append(
                (
                    None,
                    f"alias {name}@{alias} is missing but the audit chain says it points at version "
                    f"{expected}: it was removed outside Shipyard",
                )
            )
    problems.extend(_check_history(state, history))
    return problems


def _check_history(state: RegistryState, history: Iterable[AliasMove]) -> list[tuple[int | None, str]]:
    problems: list[tuple[int | None, str]] = []
    used: set[int] = set()
    for move in history:
        entry = state.moves.get(move.audit_seq)
        row = (move.name, move.alias, move.previous, move.version)
        where = f"alias history of {move.name}@{move.alias}"
        if move.audit_seq in used:
            problems.append((move.audit_seq, f"{where}: two rows claim audit entry {move.audit_seq}"))
        elif entry is None:
            problems.append(
                (
                    move.audit_seq,
                    f"{where}: a row (version {move.version}) names audit entry {move.audit_seq}, which "
                    "is no alias move: the history table was changed outside Shipyard",
                )
            )
        elif entry != row:
            problems.append(
                (
                    move.audit_seq,
                    f"{where}: the row for audit entry {move.audit_seq} says {move.previous} -> "
                    f"{move.version} but the entry says {entry[2]} -> {entry[3]}",
                )
            )
        used.add(move.audit_seq)
    return problems
