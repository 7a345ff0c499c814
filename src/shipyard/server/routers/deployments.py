"""Deployments: versioned specs (variants, weights, modes) that model servers follow."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, Field

from shipyard.errors import InvalidInput
from shipyard.server.access import actor_for
from shipyard.server.errors import ERROR_RESPONSES
from shipyard.server.schemas import _In
from shipyard.server.state import StateDep, StoreDep
from shipyard.serving.deployment import parse_deployment
from shipyard.serving.manage import deploy
from shipyard.tracking import Client

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/deployments", tags=["deployments"], responses=ERROR_RESPONSES)


class DeploymentIn(_In):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    spec_yaml: Annotated[str, Field(min_length=1, max_length=1_000_000)]
    actor: Annotated[str, Field(max_length=255)] = ""
    reason: str = ""


class DeploymentList(BaseModel):
    items: list[dict[str, Any]]


@router.post("", status_code=status.HTTP_201_CREATED)
def save_deployment(body: DeploymentIn, state: StateDep, request: Request) -> dict[str, Any]:
    """Save the next version of a deployment through ``sy.deploy`` (the same checks as the SDK:
    the spec is validated, 400 naming the field, and every ``models:/`` reference must resolve)."""
    actor = actor_for(request, body.actor)
    spec = parse_deployment(body.spec_yaml)
    if spec.name != body.name:
        raise InvalidInput(f"The spec names deployment '{spec.name}' but the request says '{body.name}'")
    client = Client.from_stores(state.settings.replace(user=actor), state.store, state.blobs)
    return deploy(spec, reason=body.reason, client=client).to_dict()


@router.get("")
def list_deployments(
    store: StoreDep, name: str | None = Query(default=None, min_length=1, max_length=64)
) -> DeploymentList:
    """The latest version of every deployment, or every version of ``name``."""
    return DeploymentList(items=[d.to_dict() for d in store.list_deployments(name)])


@router.get("/{name}/versions/{ref}")
def get_deployment(name: str, ref: str, store: StoreDep) -> dict[str, Any]:
    """``ref``: ``latest`` or a version number."""
    return store.get_deployment(name, ref).to_dict()
