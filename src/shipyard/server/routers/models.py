"""The model registry: registered models, versions, records, alias history, and the governed
actions (promote, approve, reject, rollback, set policy, evaluate) decided on the server.

Governed state changes exist here only as governed operations, which run the same checks as
the SDK: there is no route that moves an alias, writes an approval or promotion record, or
changes a policy directly. Evaluations a client computed have a narrow route that stores only
``kind=evaluation`` (marked ``computed_by: client``; gates on the server never reuse them).

The acting user is the request's authenticated principal when the server runs with auth
(``shipyard.server.access``): a body naming another ``actor`` is refused (403), ``created_by`` is
replaced. Without auth (a loopback server) the body's ``actor`` is taken as given.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import yaml
from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, Field

from shipyard.bounds import INT32_MAX
from shipyard.entities import Artifact, ModelVersionCreate
from shipyard.errors import InvalidInput
from shipyard.registry import governance
from shipyard.server.access import actor_for, author_for, principal_of
from shipyard.server.errors import ERROR_RESPONSES
from shipyard.server.routers.artifacts import stored_files
from shipyard.server.schemas import Count, Digest, Key, Millis, Version, VersionPath, _In
from shipyard.server.state import Blobs, ServerState, StateDep, StoreDep
from shipyard.store.base import AuthStore
from shipyard.tracking import Client

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["models"], responses=ERROR_RESPONSES)

Actor = Annotated[str, Field(max_length=255)]
Alias = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]


class FileIn(_In):
    path: Annotated[str, Field(min_length=1, max_length=1024)]
    digest: Digest
    size: Count
    created_at: Millis = 0


class RegisteredModelIn(_In):
    name: Key
    description: str = ""
    created_by: Annotated[str, Field(max_length=255)] = ""


class PolicyIn(_In):
    policy_yaml: str | None
    actor: Actor = ""
    reason: str = ""


class ModelVersionIn(_In):
    name: Key
    digest: Digest
    flavor: Annotated[str, Field(min_length=1, max_length=64)]
    files: Annotated[list[FileIn], Field(min_length=1, max_length=10_000)]
    signature: dict[str, Any]
    metadata: dict[str, Any] = Field(default_factory=dict)
    run_id: Annotated[str, Field(max_length=32)] | None = None
    datasets: list[tuple[Key, Version, Annotated[str, Field(min_length=1, max_length=64)]]] = []
    description: str = ""
    created_by: Annotated[str, Field(max_length=255)] = ""


class EvaluationIn(_In):
    """An evaluation report a client computed (``sy.evaluate`` against a server)."""

    actor: Actor = ""
    body: dict[str, Any]
    files: list[FileIn] = []


class TrustedLoadIn(_In):
    actor: Actor = ""
    reason: str = ""


class DecisionIn(_In):
    actor: Actor = ""
    comment: str = ""


class PromoteIn(_In):
    actor: Actor = ""
    to: Alias = "champion"
    reason: str = ""


class RollbackIn(_In):
    actor: Actor = ""
    to: Version | None = None
    alias: Alias = "champion"
    reason: str = ""


class EvaluateIn(_In):
    actor: Actor = ""
    dataset: Annotated[str, Field(min_length=1, max_length=300, examples=["flights@v5"])]
    target: Key
    sensitive: list[Key] = []
    explain: bool = True


class Listing(BaseModel):
    items: list[dict[str, Any]]


def _client(state: ServerState, request: Request, claimed: str) -> Client:
    actor = actor_for(request, claimed)
    return Client.from_stores(state.settings.replace(user=actor), state.store, state.blobs)


@router.post("/models", status_code=status.HTTP_201_CREATED)
def create_registered_model(body: RegisteredModelIn, store: StoreDep, request: Request) -> dict[str, Any]:
    """Create a registered model (or return the existing one of that name); with auth, a new
    model's creator becomes its owner (a grant)."""
    author = author_for(request, body.created_by)
    model = store.create_registered_model(body.name, body.description, author)
    principal = principal_of(request)
    if principal is not None and isinstance(store, AuthStore) and not store.list_grants("model", model.name):
        store.set_grant(principal.name, "model", model.name, "owner", principal.name)
    return model.to_dict()


@router.get("/models")
def list_registered_models(store: StoreDep) -> Listing:
    return Listing(items=[m.to_dict() for m in store.list_registered_models()])


@router.get("/models/{name}")
def get_registered_model(name: str, store: StoreDep) -> dict[str, Any]:
    return store.get_registered_model(name).to_dict()


@router.put("/models/{name}/policy")
def set_model_policy(name: str, body: PolicyIn, state: StateDep, request: Request) -> dict[str, Any]:
    """Attach a promotion policy (validated here) or remove it with ``policy_yaml: null``.

    The actor needs the ``admin`` role (403 otherwise).
    """
    policy = _yaml_mapping(body.policy_yaml) if body.policy_yaml is not None else None
    client = _client(state, request, body.actor)
    return governance.set_promotion_policy(name, policy, reason=body.reason, client=client).to_dict()


def _yaml_mapping(text: str) -> dict[str, Any]:
    """YAML text from a request as a mapping (never read as a file name on the server)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"The promotion policy is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput(
            "A promotion policy is a mapping with gates:, approvals: and evaluation:, "
            f"got {type(data).__name__}"
        )
    return data


@router.post("/models/{name}/versions", status_code=status.HTTP_201_CREATED)
def create_model_version(
    name: str, body: ModelVersionIn, store: StoreDep, blobs: Blobs, request: Request
) -> dict[str, Any]:
    """Record a version whose files were uploaded as blobs first (400 if one was not, or if a file
    path is not a safe relative path)."""
    data = body.model_dump()
    data["name"] = name
    data["created_by"] = author_for(request, body.created_by)
    data["files"] = stored_files([Artifact(**f) for f in data["files"]], blobs, f"model '{name}'")
    data["datasets"] = [tuple(d) for d in data["datasets"]]
    return store.create_model_version(ModelVersionCreate(**data)).to_dict()


@router.get("/models/{name}/versions")
def list_model_versions(name: str, store: StoreDep) -> Listing:
    return Listing(items=[v.to_dict() for v in store.list_model_versions(name)])


@router.get("/models/{name}/versions/{ref}")
def get_model_version(name: str, ref: str, store: StoreDep) -> dict[str, Any]:
    """``ref``: ``latest``, a version number or an alias."""
    return store.get_model_version(name, ref).to_dict()


@router.get("/runs/{run_id}/models")
def models_for_run(run_id: str, store: StoreDep) -> Listing:
    return Listing(items=[v.to_dict() for v in store.models_for_run(run_id)])


@router.get("/models/{name}/alias-history")
def list_alias_history(
    name: str, store: StoreDep, alias: Annotated[str | None, Query(min_length=1, max_length=64)] = None
) -> Listing:
    """Every recorded move of the model's aliases (or of ``alias``), oldest first: what rollback trusts."""
    return Listing(items=[m.to_dict() for m in store.list_alias_history(name, alias)])


@router.post("/models/{name}/versions/{version}/evaluations", status_code=status.HTTP_201_CREATED)
def add_model_evaluation(
    name: str, version: VersionPath, body: EvaluationIn, store: StoreDep, blobs: Blobs, request: Request
) -> dict[str, Any]:
    """Store an evaluation a client computed (kind ``evaluation`` only; audited).

    The body is marked ``computed_by: client``: promotion gates on this server use only
    evaluations the server computed itself, so a report sent here cannot pass a gate.
    """
    files = stored_files(
        [Artifact(**f.model_dump()) for f in body.files], blobs, f"model '{name}' v{version}"
    )
    report = {**body.body, "computed_by": governance.CLIENT_EVALUATION}
    actor = actor_for(request, body.actor)
    return store.add_model_evaluation(name, version, actor, report, files=files).to_dict()


@router.post("/models/{name}/versions/{version}/trusted-loads", status_code=status.HTTP_204_NO_CONTENT)
def record_trusted_load(
    name: str, version: VersionPath, body: TrustedLoadIn, store: StoreDep, request: Request
) -> None:
    """Audit that ``actor`` loaded this version with ``trust=True`` (the entry's content is fixed)."""
    store.record_trusted_load(name, version, actor_for(request, body.actor), body.reason)


@router.get("/models/{name}/records")
def list_model_records(
    name: str,
    store: StoreDep,
    version: int | None = Query(default=None, ge=1, le=INT32_MAX),
    kind: Literal["evaluation", "approval", "promotion"] | None = None,
) -> Listing:
    return Listing(items=[r.to_dict() for r in store.list_model_records(name, version, kind)])


@router.post("/models/{name}/versions/{version}/promote")
def promote_model_version(
    name: str, version: VersionPath, body: PromoteIn, state: StateDep, request: Request
) -> dict[str, Any]:
    """Evaluate the policy's gates and approvals on the server; move the alias when all pass."""
    result = governance.promote_model(
        name, version, alias=body.to, reason=body.reason, client=_client(state, request, body.actor)
    )
    return result.to_dict()


@router.post("/models/{name}/versions/{version}/approve", status_code=status.HTTP_201_CREATED)
def approve_model_version(
    name: str, version: VersionPath, body: DecisionIn, state: StateDep, request: Request
) -> dict[str, Any]:
    """Approve for promotion: the actor needs the policy's role and must not be the author."""
    client = _client(state, request, body.actor)
    return governance.approve_model(name, version, reason=body.comment, client=client).to_dict()


@router.post("/models/{name}/versions/{version}/reject", status_code=status.HTTP_201_CREATED)
def reject_model_version(
    name: str, version: VersionPath, body: DecisionIn, state: StateDep, request: Request
) -> dict[str, Any]:
    client = _client(state, request, body.actor)
    return governance.reject_model(name, version, reason=body.comment, client=client).to_dict()


@router.post("/models/{name}/rollback")
def rollback_model(name: str, body: RollbackIn, state: StateDep, request: Request) -> dict[str, Any]:
    """Point an alias back at a version that held it before (no gates; audited)."""
    client = _client(state, request, body.actor)
    now = governance.rollback_model(name, to=body.to, alias=body.alias, reason=body.reason, client=client)
    return {"version": now, "alias": body.alias}


@router.post("/models/{name}/versions/{version}/evaluate", status_code=status.HTTP_201_CREATED)
def evaluate_model_version(
    name: str, version: VersionPath, body: EvaluateIn, state: StateDep, request: Request
) -> dict[str, Any]:
    """Evaluate a version on a stored dataset; the report and plots are stored on the version."""
    client = _client(state, request, body.actor)
    mv = state.store.get_model_version(name, version)
    report = governance.evaluate(
        mv, body.dataset, body.target, sensitive=body.sensitive, explain=body.explain, client=client
    )
    return dict(report.to_dict())
