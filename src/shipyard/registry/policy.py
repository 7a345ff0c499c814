"""Promotion policies: the gates a version must pass and the approvals it needs to take an alias.

A policy is YAML (or the same structure built in Python) stored on the registered model::

    evaluation:                # the data every candidate (and the champion) is judged on
      dataset: flights@v5      # a dataset reference; its contract is checked by `contract: true`
      target: delayed
      sensitive: [origin]
    gates:
      - metric: roc_auc        # absolute threshold
        min: 0.65
      - metric: roc_auc        # relative to the version holding the alias, on the same data
        relative_to: champion
        min_delta: -0.005
      - contract: true         # the evaluation data validates against its contract
      - fairness: demographic_parity_difference
        column: origin
        max: 0.10
      - max_size_mb: 50
      - max_latency_ms: 25     # median predict() time for `rows` rows
        rows: 1
    approvals:
      required: 1              # approvals from users holding `role`, never the author (four eyes)
      role: approver

Roles come from the YAML file named by the ``roles_file`` setting (``approver: [alice, bob]``)
until authentication lands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, model_validator

from shipyard.config import Settings
from shipyard.errors import ConfigError
from shipyard.specs import StrictModel, parse_spec

__all__ = [
    "ApprovalRule",
    "ContractGate",
    "EvaluationSpec",
    "FairnessGate",
    "Gate",
    "LatencyGate",
    "MetricGate",
    "PromotionPolicy",
    "SizeGate",
    "load_roles",
    "parse_policy",
    "users_with_role",
]


class MetricGate(StrictModel):
    """A metric threshold: absolute (``min``/``max``) or relative to the alias holder (``*_delta``)."""

    metric: str
    min: float | None = None
    max: float | None = None
    relative_to: str | None = None
    min_delta: float | None = None
    max_delta: float | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> MetricGate:
        absolute = self.min is not None or self.max is not None
        relative = self.min_delta is not None or self.max_delta is not None
        if absolute == relative:
            raise ValueError(
                f"metric gate '{self.metric}' needs either min/max (absolute) or min_delta/max_delta "
                "with relative_to (relative to the alias holder), not both or neither"
            )
        if relative and not self.relative_to:
            raise ValueError(f"metric gate '{self.metric}' with a delta needs relative_to: champion")
        return self

    def describe(self) -> str:
        if self.relative_to:
            parts = [f"≥ {self.relative_to} {self.min_delta:+g}" if self.min_delta is not None else ""]
            parts.append(f"≤ {self.relative_to} {self.max_delta:+g}" if self.max_delta is not None else "")
            return f"{self.metric} " + " and ".join(p for p in parts if p)
        bounds = [
            f"≥ {self.min:g}" if self.min is not None else "",
            f"≤ {self.max:g}" if self.max is not None else "",
        ]
        return f"{self.metric} " + " and ".join(b for b in bounds if b)


class ContractGate(StrictModel):
    """The evaluation data validates against its dataset's contract (or the named one)."""

    contract: bool | str = True

    def describe(self) -> str:
        return (
            "evaluation data meets its contract" if self.contract is True else f"data meets {self.contract}"
        )


class FairnessGate(StrictModel):
    """A fairness gap (from the evaluation's sensitive columns) stays under ``max``."""

    fairness: Literal["demographic_parity_difference", "equalized_odds_difference", "mae_gap"]
    column: str
    max: float

    def describe(self) -> str:
        return f"{self.fairness} by {self.column} ≤ {self.max:g}"


class SizeGate(StrictModel):
    max_size_mb: float = Field(gt=0)

    def describe(self) -> str:
        return f"model size ≤ {self.max_size_mb:g} MB"


class LatencyGate(StrictModel):
    max_latency_ms: float = Field(gt=0)
    rows: int = Field(default=1, ge=1, le=100_000)

    def describe(self) -> str:
        return f"median predict latency for {self.rows} row(s) ≤ {self.max_latency_ms:g} ms"


Gate = Annotated[
    MetricGate | ContractGate | FairnessGate | SizeGate | LatencyGate, Field(union_mode="left_to_right")
]


class EvaluationSpec(StrictModel):
    dataset: str
    target: str
    sensitive: list[str] = Field(default_factory=list)


class ApprovalRule(StrictModel):
    required: int = Field(default=0, ge=0, le=10)
    role: str = "approver"


class PromotionPolicy(StrictModel):
    """Gates and approvals for moving any alias of the model (``promote ... --to ALIAS``) to a version."""

    evaluation: EvaluationSpec | None = None
    gates: list[Gate] = Field(default_factory=list)
    approvals: ApprovalRule = Field(default_factory=ApprovalRule)

    @model_validator(mode="after")
    def _needs_data(self) -> PromotionPolicy:
        needs = [
            g for g in self.gates if isinstance(g, MetricGate | ContractGate | FairnessGate | LatencyGate)
        ]
        if needs and self.evaluation is None:
            raise ValueError(
                "gates on metrics, contracts, fairness or latency need an `evaluation:` section "
                "naming the dataset and target to judge on"
            )
        return self

    def to_yaml(self) -> str:
        return str(yaml.safe_dump(self.model_dump(mode="json", exclude_none=True), sort_keys=False))


def parse_policy(source: PromotionPolicy | str | Path | dict[str, Any]) -> PromotionPolicy:
    """A policy from an object, a dict, YAML text or a YAML file, with errors that say where.

    Example:
        >>> parse_policy("gates: [{max_size_mb: 50}]").gates[0].describe()
        'model size ≤ 50 MB'
    """
    return parse_spec(
        source,
        PromotionPolicy,
        noun="Promotion policy",
        shape="a mapping with gates:, approvals: and evaluation:",
    )


def load_roles(settings: Settings) -> dict[str, set[str]]:
    """Role -> users, from the ``roles_file`` setting (``{approver: [alice, bob]}``)."""
    if not settings.roles_file:
        return {}
    path = Path(settings.roles_file)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"Cannot read the roles file {path} (setting roles_file): {exc}") from exc
    data = data.get("roles", data) if isinstance(data, dict) else data
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise ConfigError(
            f"Roles file {path} must map each role to a list of users, e.g. approver: [alice, bob]"
        )
    return {str(role): {str(u) for u in users} for role, users in data.items()}


def users_with_role(settings: Settings, role: str) -> set[str]:
    return load_roles(settings).get(role, set())
