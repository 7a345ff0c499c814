"""Deployments as records: save (validated, audited), read, promote a canary, roll back.

A running ``shipyard serve --deployment NAME`` polls the store and follows new versions of its
deployment, so promoting a canary or rolling back changes live traffic without a restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.entities import DeploymentRecord
from shipyard.errors import InvalidInput
from shipyard.registry.core import resolve
from shipyard.serving.deployment import DeploymentSpec, parse_deployment
from shipyard.tracking import Client
from shipyard.tracking.fluent import get_client

__all__ = [
    "deploy",
    "deployment_history",
    "get_deployment",
    "get_deployment_record",
    "list_deployments",
    "promote_variant",
    "rollback_deployment",
]


def _check_models(spec: DeploymentSpec, client: Client) -> None:
    """Every registry reference must resolve now: a typo should fail here, not at serve time."""
    for variant in spec.variants:
        if variant.model.startswith("models:/"):
            resolve(variant.model, client)


def deploy(
    spec: DeploymentSpec | str | Path | dict[str, Any], *, reason: str = "", client: Client | None = None
) -> DeploymentRecord:
    """Save a deployment spec as the next version of its name (validated; audited).

    Example:
        >>> sy.deploy("deployments/churn.yaml", reason="10% canary for v8")  # doctest: +SKIP
        DeploymentRecord(name='churn', version=3, ...)
    """
    client = client or get_client()
    parsed = parse_deployment(spec)
    _check_models(parsed, client)
    return client.store.save_deployment(parsed.name, parsed.to_yaml(), client.settings.user, reason)


def get_deployment(name: str, ref: str | int = "latest", *, client: Client | None = None) -> DeploymentSpec:
    """The spec of a stored deployment version.

    Example:
        >>> sy.get_deployment("churn").shares()  # doctest: +SKIP
        {'champion': 0.9, 'candidate': 0.1}
    """
    return parse_deployment(get_deployment_record(name, ref, client=client).spec_yaml)


def get_deployment_record(
    name: str, ref: str | int = "latest", *, client: Client | None = None
) -> DeploymentRecord:
    """A stored deployment version as saved: spec YAML, digest, author, reason, time.

    Example:
        >>> sy.get_deployment_record("churn").version  # doctest: +SKIP
        3
    """
    return (client or get_client()).store.get_deployment(name, ref)


def list_deployments(*, client: Client | None = None) -> list[DeploymentRecord]:
    """The latest version of every deployment, by name.

    Example:
        >>> [d.name for d in sy.list_deployments()]  # doctest: +SKIP
        ['churn']
    """
    return (client or get_client()).store.list_deployments()


def deployment_history(name: str, *, client: Client | None = None) -> list[DeploymentRecord]:
    """Every version of a deployment, oldest first.

    Example:
        >>> [d.version for d in sy.deployment_history("churn")]  # doctest: +SKIP
        [1, 2, 3]
    """
    return (client or get_client()).store.list_deployments(name)


def promote_variant(
    name: str, variant: str, *, reason: str = "", client: Client | None = None
) -> DeploymentRecord:
    """Give ``variant`` (typically the canary) all traffic: a new deployment version, audited.

    Example:
        >>> sy.promote_variant("churn", "candidate", reason="canary healthy for 24 h")  # doctest: +SKIP
    """
    client = client or get_client()
    current = get_deployment(name, client=client)
    return deploy(current.promote(variant), reason=reason or f"promote variant {variant}", client=client)


def rollback_deployment(
    name: str, to: int, *, reason: str = "", client: Client | None = None
) -> DeploymentRecord:
    """Make version ``to``'s spec current again (as a new version, so history stays linear).

    The variants, shares and server settings come back; the model server's recorded ``url`` stays the
    current one (rolling back traffic does not move the server). When that leaves nothing to change,
    the current version is returned and no version is added.

    Example:
        >>> sy.rollback_deployment("churn", 2, reason="canary raised error rate")  # doctest: +SKIP
    """
    client = client or get_client()
    latest = get_deployment_record(name, client=client)
    if to == latest.version:
        raise InvalidInput(f"Deployment '{name}' is already at version {to}")
    old = get_deployment(name, to, client=client)
    current_url = parse_deployment(latest.spec_yaml).url
    old = old.model_copy(update={"url": current_url})
    return deploy(old, reason=reason or f"rollback to version {to}", client=client)
