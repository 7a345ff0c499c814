"""Deployments: which model versions answer traffic, in what share, and how the server behaves.

A deployment is YAML (or the same structure in Python), stored as versioned records in the store
(every change audited) and served by ``shipyard serve --deployment NAME`` or ``--config FILE``::

    name: churn
    variants:
      - name: main
        model: models:/churn@champion   # an alias: the server follows it (zero-downtime swaps)
        weight: 90
      - name: candidate
        model: models:/churn@challenger
        mode: canary                     # a small share, promotable with `shipyard deployments promote`
        weight: 10
      - name: next
        model: models:/churn/9
        mode: shadow                     # gets a copy of traffic; its answer is logged, never returned
    sticky_key: customer_id              # same key, same variant (header x-shipyard-key or this field)
    batching: {enabled: true, max_batch_size: 1024, max_wait_ms: 2.0}
    prediction_log: {enabled: true, flush_interval_s: 1.0, max_buffered_rows: 100000, on_full: block}
    reload: {poll_interval_s: 5.0}

Modes: ``ab`` (default; weighted split among all ``ab`` and ``canary`` variants), ``canary`` (an
``ab`` variant meant to stay small and be promoted), ``shadow`` (weight ignored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import Field, model_validator

from shipyard.errors import InvalidInput
from shipyard.registry.references import parse_model_ref
from shipyard.specs import StrictModel, parse_spec

__all__ = [
    "BatchingSpec",
    "DeploymentSpec",
    "PredictionLogSpec",
    "ReloadSpec",
    "VariantSpec",
    "parse_deployment",
    "single_model_deployment",
]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class VariantSpec(StrictModel):
    """One model answering (part of) the traffic."""

    item_noun: ClassVar[str] = "variant"

    name: str = Field(pattern=_NAME)
    model: str = Field(min_length=1, description="models:/name@alias, models:/name/N, or a model folder path")
    weight: float = Field(default=100.0, ge=0)
    mode: Literal["ab", "canary", "shadow"] = "ab"

    @model_validator(mode="after")
    def _model_reference(self) -> VariantSpec:
        if self.model.startswith("models:/"):
            parse_model_ref(self.model)  # raises InvalidInput with the accepted forms
        return self

    @property
    def serves_traffic(self) -> bool:
        return self.mode != "shadow" and self.weight > 0


class BatchingSpec(StrictModel):
    """Adaptive micro-batching: concurrent requests share one ``predict`` call.

    A lone request is not delayed: the batcher waits up to ``max_wait_ms`` only while other requests
    are already in flight.
    """

    enabled: bool = True
    max_batch_size: int = Field(default=1024, ge=1, le=100_000)
    max_wait_ms: float = Field(default=2.0, ge=0, le=1_000)


class PredictionLogSpec(StrictModel):
    """The asynchronous prediction log (partitioned Parquet in the artifact store)."""

    enabled: bool = True
    flush_interval_s: float = Field(default=1.0, gt=0, le=3_600)
    max_buffered_rows: int = Field(default=100_000, ge=100)
    on_full: Literal["block", "drop"] = "block"
    path: str = Field(default="", description="where to write; default <artifact_uri>/predictions-log")


class ReloadSpec(StrictModel):
    """How the server notices an alias move or a new deployment version: polling the store."""

    poll_interval_s: float = Field(default=5.0, ge=0, le=3_600, description="0 disables polling")


class DeploymentSpec(StrictModel):
    """Variants with weights and modes, plus the server's batching, logging and reload behaviour."""

    name: str = Field(pattern=_NAME)
    variants: list[VariantSpec] = Field(min_length=1)
    sticky_key: str | None = None
    batching: BatchingSpec = Field(default_factory=BatchingSpec)
    prediction_log: PredictionLogSpec = Field(default_factory=PredictionLogSpec)
    reload: ReloadSpec = Field(default_factory=ReloadSpec)

    @model_validator(mode="after")
    def _consistent(self) -> DeploymentSpec:
        names = [v.name for v in self.variants]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"variant names must be unique; repeated: {', '.join(duplicates)}")
        if not any(v.serves_traffic for v in self.variants):
            raise ValueError("at least one variant must serve traffic (mode ab or canary with weight > 0)")
        return self

    @property
    def live(self) -> list[VariantSpec]:
        """The variants that answer requests (ab and canary with weight > 0)."""
        return [v for v in self.variants if v.serves_traffic]

    @property
    def shadows(self) -> list[VariantSpec]:
        return [v for v in self.variants if v.mode == "shadow"]

    def shares(self) -> dict[str, float]:
        """Each live variant's share of traffic, summing to 1."""
        total = sum(v.weight for v in self.live)
        return {v.name: v.weight / total for v in self.live}

    def to_yaml(self) -> str:
        return str(yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False))

    def promote(self, variant: str) -> DeploymentSpec:
        """The deployment after promoting ``variant`` (a canary): it takes all traffic as ``ab``.

        The other live variants are removed; shadows stay.
        """
        target = next((v for v in self.variants if v.name == variant), None)
        if target is None:
            raise InvalidInput(
                f"Deployment '{self.name}' has no variant '{variant}' (variants: {self._names()})"
            )
        if target.mode == "shadow":
            raise InvalidInput(f"Variant '{variant}' is a shadow; give it a weight and mode canary first")
        kept = [target.model_copy(update={"mode": "ab", "weight": 100.0})] + self.shadows
        return self.model_copy(update={"variants": kept})

    def _names(self) -> str:
        return ", ".join(v.name for v in self.variants)


def parse_deployment(source: DeploymentSpec | str | Path | dict[str, Any]) -> DeploymentSpec:
    """A deployment from an object, a dict, YAML text or a YAML file, with errors that say where.

    Example:
        >>> spec = parse_deployment("name: churn\\nvariants: [{name: main, model: 'models:/churn@champion'}]")
        >>> spec.shares()
        {'main': 1.0}
    """
    return parse_spec(source, DeploymentSpec, noun="Deployment", shape="a mapping with name: and variants:")


def single_model_deployment(model: str, name: str = "default", **options: Any) -> DeploymentSpec:
    """The deployment ``shipyard serve models:/churn@champion`` runs: one variant, all traffic."""
    return DeploymentSpec(name=name, variants=[VariantSpec(name="main", model=model)], **options)
