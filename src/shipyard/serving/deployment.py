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
    url: http://churn-serving:8080        # optional: where its model server answers (the web UI
                                         # reads its /metrics there; the server does not use it)

Modes: ``ab`` (default; weighted split among all ``ab`` and ``canary`` variants), ``canary`` (an
``ab`` variant meant to stay small and be promoted), ``shadow`` (weight ignored).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import Field, field_validator, model_validator

from shipyard.errors import InvalidInput
from shipyard.registry.references import parse_model_ref
from shipyard.specs import StrictModel, parse_spec

__all__ = [
    "BatchingSpec",
    "DeploymentSpec",
    "PredictionLogSpec",
    "ReloadSpec",
    "SpecChange",
    "VariantSpec",
    "parse_deployment",
    "single_model_deployment",
    "spec_changes",
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
    url: str | None = Field(
        default=None,
        max_length=2048,
        description="where its model server answers: http(s)://host:port (the web UI reads its /metrics)",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.query:
            raise ValueError(
                f"{url!r} is not a model server address; use http(s)://host:port "
                "(no credentials, no query), e.g. http://churn-serving:8080"
            )
        return url.rstrip("/")

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
        data = self.model_dump(mode="json")
        if data["url"] is None:  # specs without an address keep the YAML (and digest) they always had
            del data["url"]
        return str(yaml.safe_dump(data, sort_keys=False))

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


@dataclass(frozen=True)
class SpecChange:
    """One difference between two versions of a deployment.

    ``variant`` names the variant it is about (``kind`` ``added``, ``removed`` or ``changed``), or is
    empty for a server setting; ``field`` is what changed (``model``, ``mode``, ``weight``, ``share``, or
    a setting's dotted path such as ``batching.max_batch_size``; empty for an added or removed variant);
    ``before`` and ``after`` are the values as text (empty where there is none).
    """

    variant: str
    kind: Literal["added", "removed", "changed"]
    field: str = ""
    before: str = ""
    after: str = ""


def _share_text(spec: DeploymentSpec, variant: VariantSpec) -> str:
    if variant.mode == "shadow":
        return "copy"  # a shadow gets a copy of every request, whatever its weight
    return f"{spec.shares().get(variant.name, 0.0):.1%}"


def _variant_text(spec: DeploymentSpec, variant: VariantSpec) -> str:
    if variant.mode == "shadow":
        return f"{variant.model} (shadow copy)"
    return f"{variant.model} ({variant.mode}, {_share_text(spec, variant)})"


def _settings(spec: DeploymentSpec) -> dict[str, str]:
    """The spec's settings (everything but its name and variants) as dotted path → value text."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else key, inner)
        else:
            flat[prefix] = "" if value is None else str(value)

    walk("", spec.model_dump(mode="json", exclude={"name", "variants"}))
    return flat


def _variant_changes(before: DeploymentSpec, after: DeploymentSpec) -> list[SpecChange]:
    old = {v.name: v for v in before.variants}
    changes: list[SpecChange] = []
    for variant in after.variants:
        was = old.get(variant.name)
        if was is None:
            changes.append(SpecChange(variant.name, "added", after=_variant_text(after, variant)))
            continue
        pairs = (
            ("model", was.model, variant.model),
            ("mode", was.mode, variant.mode),
            ("weight", f"{was.weight:g}", f"{variant.weight:g}"),
            ("share", _share_text(before, was), _share_text(after, variant)),
        )
        changes.extend(SpecChange(variant.name, "changed", f, a, b) for f, a, b in pairs if a != b)
    kept = {v.name for v in after.variants}
    changes.extend(
        SpecChange(v.name, "removed", before=_variant_text(before, v))
        for v in before.variants
        if v.name not in kept
    )
    return changes


def spec_changes(before: DeploymentSpec | None, after: DeploymentSpec) -> list[SpecChange]:
    """What changed from ``before`` to ``after`` (None: nothing before, so every variant is added):
    variants added and removed, each kept variant's model, mode, weight and share, then the settings.

    Example:
        >>> one = parse_deployment({"name": "churn", "variants": [{"name": "main", "model": "m1"}]})
        >>> two = parse_deployment({"name": "churn", "variants": [
        ...     {"name": "main", "model": "m1", "weight": 90},
        ...     {"name": "canary", "model": "m2", "weight": 10, "mode": "canary"}]})
        >>> for c in spec_changes(one, two):
        ...     print(c.variant, c.kind, c.field, c.before, "->", c.after)
        main changed weight 100 -> 90
        main changed share 100.0% -> 90.0%
        canary added   -> m2 (canary, 10.0%)
    """
    if before is None:
        return [SpecChange(v.name, "added", after=_variant_text(after, v)) for v in after.variants]
    changes = _variant_changes(before, after)
    old_settings, new_settings = _settings(before), _settings(after)
    for path in sorted(old_settings.keys() | new_settings.keys()):
        a, b = old_settings.get(path, ""), new_settings.get(path, "")
        if a != b:
            changes.append(SpecChange("", "changed", path, a, b))
    return changes


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
