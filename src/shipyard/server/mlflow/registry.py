"""MLflow's model registry API over Shipyard's registry: registered models, versions, tags, aliases.

One registry, two doors: every route calls the SDK, store and governance functions Shipyard's own
model routes call, so every rule applies. A version registered here is a Shipyard version (its
files are the MLflow model folder the run logged, plus the ``shipyard-model.yaml`` that says how
Shipyard may load it: :mod:`shipyard.registry.flavors.mlflow_folder`); an alias is Shipyard's alias.
Moving one runs the model's promotion policy like ``shipyard models promote`` (gates, approvals;
the attempt is recorded), and a blocked move answers ``INVALID_STATE`` with the policy's reasons.

What Shipyard's registry does differently, refused with the reason (``BAD_REQUEST``) or answered
the MLflow way (see ``docs/mlflow-registry.md``):

- versions are content-addressed: registering the same files again returns the existing version;
- deleting models or versions and renaming models are refused (deployments, grants, lineage and
  the audit log name them); tags and descriptions change in place, audited;
- stages are MLflow's deprecated scheme: every version is in stage ``None`` (so
  ``get-latest-versions`` answers by MLflow's rules) and ``transition-stage`` is refused;
- a version's ``source`` is ``runs:/<run_id>/<path>``, the run and the folder's path in it; MLflow's
  client downloads it through the run's artifacts.

The acting user is the request's principal with auth, else the server's own user (as the web UI).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from shipyard.bounds import INT32_MAX, INT64_MAX, INT64_MIN
from shipyard.entities import ModelVersion, RegisteredModel
from shipyard.errors import InvalidInput, ModelNotFound
from shipyard.names import check_alias
from shipyard.registry import governance
from shipyard.registry.core import register_model
from shipyard.registry.references import parse_model_ref
from shipyard.server.access import principal_of, require_grant
from shipyard.server.mlflow import logged_models
from shipyard.server.mlflow import registry_search as search
from shipyard.server.mlflow.wire import ERROR_RESPONSES, MlflowApiError, MlflowRoute, json_answer
from shipyard.server.state import ServerState, StateDep, StoreDep
from shipyard.store import AnnotatesModels, AuthStore, Store
from shipyard.tracking import Client

__all__ = ["router"]

router = APIRouter(route_class=MlflowRoute, tags=["mlflow registry"], responses=ERROR_RESPONSES)

STAGES = ("None", "Staging", "Production", "Archived")
MAX_MODELS_PAGE = 1000
MAX_VERSIONS_PAGE = 200_000
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_VERSION_ALIAS = re.compile(r"^[vV]\d+$")


VersionField = str | Annotated[int, Field(ge=1, le=INT32_MAX)]  # MLflow sends "3"; a number is read too
PageSize = Annotated[int, Query(ge=INT64_MIN, le=INT64_MAX)]  # the range MLflow allows is checked below


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")  # MLflow's client sends fields Shipyard has no use for


class TagIn(_Body):
    key: str
    value: str = ""


class CreateModelIn(_Body):
    name: str
    tags: list[TagIn] = []
    description: str = ""


class NameIn(_Body):
    name: str


class UpdateModelIn(_Body):
    name: str
    description: str | None = None


class ModelTagIn(_Body):
    name: str
    key: str
    value: str = ""


class ModelKeyIn(_Body):
    name: str
    key: str


class LatestIn(_Body):
    name: str
    stages: list[str] = []


class CreateVersionIn(_Body):
    name: str
    source: str
    run_id: str = ""
    tags: list[TagIn] = []
    description: str = ""
    model_id: str = ""


class VersionIn(_Body):
    name: str
    version: VersionField


class UpdateVersionIn(VersionIn):
    description: str | None = None


class TransitionIn(VersionIn):
    stage: str = ""


class VersionTagIn(VersionIn):
    key: str
    value: str = ""


class VersionKeyIn(VersionIn):
    key: str


class AliasIn(_Body):
    name: str
    alias: str
    version: VersionField


class AliasKeyIn(_Body):
    name: str
    alias: str


# -- the MLflow view of Shipyard's records --------------------------------------------------------
def source_of(mv: ModelVersion) -> str:
    """Where the version's files are, as MLflow's client reads it: ``runs:/<run_id>/<path>`` (empty
    for a version registered from a model object, whose files are in no run)."""
    artifact = mv.metadata.get("artifact")
    return f"runs:/{mv.run_id}/{artifact}" if mv.run_id and artifact else ""


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in sorted(tags.items())]


def version_json(mv: ModelVersion) -> dict[str, Any]:
    """A version as MLflow's ``ModelVersion`` message (stage ``None``, status ``READY``; the
    ``model_id`` of the MLflow 3 logged model it was registered from, if it was)."""
    return {
        "name": mv.name,
        "version": str(mv.version),
        "creation_timestamp": mv.created_at,
        "last_updated_timestamp": mv.created_at,
        "user_id": mv.created_by,
        "current_stage": "None",
        "description": mv.description,
        "source": source_of(mv),
        "run_id": mv.run_id,
        "status": "READY",
        "tags": _tags(mv.tags),
        "aliases": list(mv.aliases),
        "model_id": logged_models.model_id_in(str(mv.metadata.get("artifact") or "")) if mv.run_id else None,
    }


def model_json(store: Store, model: RegisteredModel) -> dict[str, Any]:
    """A registered model as MLflow's ``RegisteredModel`` message (its latest version included)."""
    latest = [store.get_model_version(model.name, model.latest_version)] if model.latest_version else []
    return {
        "name": model.name,
        "creation_timestamp": model.created_at,
        "last_updated_timestamp": model.updated_at,
        "user_id": model.created_by,
        "description": model.description,
        "latest_versions": [version_json(v) for v in latest],
        "tags": _tags(model.tags),
        "aliases": [{"alias": a, "version": str(v)} for a, v in sorted(model.aliases.items())],
    }


# -- helpers --------------------------------------------------------------------------------------
def _acting(state: ServerState, request: Request) -> Client:
    """A client acting as the request's principal (with auth) or as the server's user (without)."""
    principal = principal_of(request)
    settings = state.settings.replace(user=principal.name) if principal is not None else state.settings
    return Client.from_stores(settings, state.store, state.blobs)


def _annotations(store: Store) -> AnnotatesModels:
    if not isinstance(store, AnnotatesModels):
        raise MlflowApiError("This server's store cannot change tags or descriptions", "INTERNAL_ERROR")
    return store


def _number(version: str | int) -> int:
    text = str(version).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or not 1 <= int(text) <= INT32_MAX:
        raise MlflowApiError(f"Invalid model version {version!r}: a version is a whole number from 1")
    return int(text)


def _alias(alias: str) -> str:
    if _VERSION_ALIAS.match(alias):
        raise MlflowApiError(f"Invalid alias {alias!r}: v<number> names a version, not an alias")
    return check_alias(alias)


def _page(max_results: int, limit: int) -> int:
    if max_results < 1 or max_results > limit:
        raise MlflowApiError(
            f"Invalid value {max_results} for parameter max_results: it must be from 1 to {limit}"
        )
    return max_results


def _refuse(what: str, why: str) -> MlflowApiError:
    return MlflowApiError(f"Shipyard does not {what}: {why}", "BAD_REQUEST")


# -- registered models ----------------------------------------------------------------------------
@router.post("/registered-models/create")
def create_registered_model(body: CreateModelIn, state: StateDep, request: Request) -> Response:
    """Create a model (``RESOURCE_ALREADY_EXISTS`` if the name is taken); with auth, the creator
    becomes its owner, as with Shipyard's own route."""
    store = state.store
    if any(t.key == search.IS_PROMPT_TAG and t.value.lower() == "true" for t in body.tags):
        raise _refuse("keep MLflow prompts", "its registry holds models; keep prompts in MLflow")
    try:
        store.get_registered_model(body.name)
    except ModelNotFound:
        pass
    else:
        raise MlflowApiError(
            f"Registered Model (name={body.name}) already exists.", "RESOURCE_ALREADY_EXISTS"
        )
    actor = _acting(state, request).settings.user
    model = store.create_registered_model(body.name, body.description, actor)
    principal = principal_of(request)
    if principal is not None and isinstance(store, AuthStore) and not store.list_grants("model", model.name):
        store.set_grant(principal.name, "model", model.name, "owner", principal.name)
    for tag in body.tags:
        _annotations(store).set_model_tag(model.name, None, tag.key, tag.value, actor)
    return json_answer({"registered_model": model_json(store, store.get_registered_model(model.name))})


@router.get("/registered-models/get")
def get_registered_model(name: Annotated[str, Query()], store: StoreDep) -> Response:
    return json_answer({"registered_model": model_json(store, store.get_registered_model(name))})


@router.get("/registered-models/search")
def search_registered_models(
    store: StoreDep,
    filter_: Annotated[str, Query(alias="filter")] = "",
    max_results: PageSize = 100,
    order_by: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies query defaults
    page_token: str = "",
) -> Response:
    """MLflow's filter on ``name`` and tags, ``order_by`` and pages (see ``registry_search``)."""
    clauses = search.parse_filter(filter_, "registered_models")
    size, offset = _page(max_results, MAX_MODELS_PAGE), search.page_offset(page_token)
    rows = [
        (
            {"name": m.name, "creation_timestamp": m.created_at, "last_updated_timestamp": m.updated_at},
            m,
        )
        for m in store.list_registered_models()
    ]
    found = [(attrs, m) for attrs, m in rows if search.matches(clauses, attrs, m.tags)]
    key = search.order_key(order_by, "registered_models")
    found.sort(key=lambda row: key(row[0]))
    page = [model_json(store, m) for _, m in found[offset : offset + size]]
    token = search.next_page_token(offset, size, len(found))
    return json_answer({"registered_models": page, "next_page_token": token})


@router.patch("/registered-models/update")
def update_registered_model(body: UpdateModelIn, state: StateDep, request: Request) -> Response:
    store = state.store
    store.get_registered_model(body.name)
    require_grant(request, state.store, "model", body.name)
    if body.description is not None:
        actor = _acting(state, request).settings.user
        _annotations(store).set_model_description(body.name, None, body.description, actor)
    return json_answer({"registered_model": model_json(store, store.get_registered_model(body.name))})


@router.post("/registered-models/rename")
def rename_registered_model(body: NameIn, store: StoreDep) -> Response:
    store.get_registered_model(body.name)
    raise _refuse(
        "rename registered models",
        f"deployments, grants, lineage and the audit log name model '{body.name}', and a rename would "
        "leave them pointing at nothing. Register the versions under the new name instead "
        "(mlflow.register_model(source, NEW_NAME))",
    )


@router.delete("/registered-models/delete")
def delete_registered_model(body: NameIn, store: StoreDep) -> Response:
    store.get_registered_model(body.name)
    raise _refuse(
        "delete registered models",
        f"the registry keeps model '{body.name}' and its versions for the audit log, lineage and "
        "rollback. Remove its aliases (delete_registered_model_alias) so that nothing serves it",
    )


@router.post("/registered-models/set-tag")
def set_registered_model_tag(body: ModelTagIn, state: StateDep, request: Request) -> Response:
    state.store.get_registered_model(body.name)
    require_grant(request, state.store, "model", body.name)
    actor = _acting(state, request).settings.user
    _annotations(state.store).set_model_tag(body.name, None, body.key, body.value, actor)
    return json_answer({})


@router.delete("/registered-models/delete-tag")
def delete_registered_model_tag(body: ModelKeyIn, state: StateDep, request: Request) -> Response:
    state.store.get_registered_model(body.name)
    require_grant(request, state.store, "model", body.name)
    _annotations(state.store).delete_model_tag(
        body.name, None, body.key, _acting(state, request).settings.user
    )
    return json_answer({})


def _latest(store: Store, name: str, stages: list[str]) -> Response:
    """MLflow's rule: the latest version in each asked stage (every stage when none is asked).
    Every Shipyard version is in stage ``None``."""
    canonical = {s.lower(): s for s in STAGES}
    unknown = [s for s in stages if s.lower() not in canonical]
    if unknown:
        raise MlflowApiError(
            f"Invalid Model Version stage: {unknown[0]}. Value must be one of {', '.join(STAGES)}."
        )
    model = store.get_registered_model(name)
    wanted = not stages or any(s.lower() == "none" for s in stages)
    latest = [store.get_model_version(name, model.latest_version)] if wanted and model.latest_version else []
    return json_answer({"model_versions": [version_json(v) for v in latest]})


@router.post("/registered-models/get-latest-versions")
def get_latest_versions(body: LatestIn, store: StoreDep) -> Response:
    return _latest(store, body.name, body.stages)


@router.get("/registered-models/get-latest-versions", name="get_latest_versions_by_get")
def get_latest_versions_by_get(
    name: Annotated[str, Query()],
    store: StoreDep,
    stages: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies query defaults
) -> Response:
    return _latest(store, name, stages)


# -- aliases ----------------------------------------------------------------------------------------
@router.post("/registered-models/alias")
def set_registered_model_alias(body: AliasIn, state: StateDep, request: Request) -> Response:
    """Move an alias by Shipyard's promotion: the model's policy (gates, approvals) decides, and a
    blocked move answers ``INVALID_STATE`` whose message is the policy's reasons."""
    store = state.store
    version, alias = _number(body.version), _alias(body.alias)
    model = store.get_registered_model(body.name)
    require_grant(request, state.store, "model", body.name)
    store.get_model_version(body.name, version)
    if model.aliases.get(alias) == version:
        return json_answer({})  # already there: setting an alias is idempotent in MLflow
    result = governance.promote_model(
        body.name,
        version,
        alias=alias,
        reason="set_registered_model_alias through the MLflow API",
        client=_acting(state, request),
    )
    if not result.promoted:
        raise MlflowApiError(
            f"Alias '{alias}' of model '{body.name}' was not moved to version {version}: the model's "
            f"promotion policy blocked it: {'; '.join(result.reasons)}. The attempt is recorded "
            f"(shipyard models audit {body.name})",
            "INVALID_STATE",
        )
    return json_answer({})


@router.delete("/registered-models/alias")
def delete_registered_model_alias(body: AliasKeyIn, state: StateDep, request: Request) -> Response:
    """Remove an alias of a model without a promotion policy (one with a policy keeps its aliases:
    ``INVALID_STATE``, saying how to move it); a missing alias is nothing to do, as in MLflow."""
    model = state.store.get_registered_model(body.name)
    require_grant(request, state.store, "model", body.name)
    if body.alias in model.aliases:
        governance.remove_model_alias(
            body.name,
            body.alias,
            reason="delete_registered_model_alias through the MLflow API",
            client=_acting(state, request),
        )
    return json_answer({})


@router.get("/registered-models/alias")
def get_model_version_by_alias(
    name: Annotated[str, Query()], alias: Annotated[str, Query()], store: StoreDep
) -> Response:
    return json_answer({"model_version": version_json(store.get_model_version(name, _alias(alias)))})


# -- model versions ---------------------------------------------------------------------------------
def _source_in_run(source: str, store: Store) -> tuple[str, str]:
    """(run id, the model folder's path in its artifacts) that a version's ``source`` names.

    Accepted: ``runs:/<run_id>/<path>``; a run artifact URI such as
    ``mlflow-artifacts:/<experiment>/<run_id>/artifacts/<path>`` (the form ``mlflow.register_model``
    sends); ``models:/<name>/<version>`` (the files of that version); ``models:/<model_id>`` (an
    MLflow 3 logged model: its folder in its run's artifacts).
    """
    text = source.strip()
    if text.startswith("models:/") and logged_models.is_model_id(text[len("models:/") :].strip("/")):
        return logged_models.registrable_files(store, text[len("models:/") :].strip("/"))
    if text.startswith("models:/"):
        return _source_version(text, store)
    if text.startswith("runs:/"):
        run_id, _, path = text[len("runs:/") :].strip("/").partition("/")
        return run_id, _folder(path, source)
    if text.startswith("mlflow-artifacts:"):
        parts = [p for p in text.split(":", 1)[1].split("/") if p]
        for i, part in enumerate(parts):
            if _RUN_ID.match(part):
                rest = parts[i + 2 :] if parts[i + 1 : i + 2] == ["artifacts"] else parts[i + 1 :]
                return part, _folder("/".join(rest), source)
    raise MlflowApiError(
        f"Invalid model version source {source!r}: Shipyard registers model folders it stores as a run's "
        "artifacts. Log the folder to a run (mlflow.<flavor>.log_model or mlflow.log_artifacts), then "
        "register runs:/<run_id>/<path> (or the run's artifact URI, as mlflow.register_model sends)"
    )


def _folder(path: str, source: str) -> str:
    path = path.strip("/")
    if not path:
        raise MlflowApiError(
            f"Invalid model version source {source!r}: name the model folder in the run "
            "(e.g. runs:/<run_id>/model)"
        )
    return path


def _source_version(source: str, store: Store) -> tuple[str, str]:
    """(run id, path) of the files of the version ``models:/<name>/<version>`` names."""
    try:
        number = parse_model_ref(source).version
    except InvalidInput:
        number = None
    if number is None:
        raise MlflowApiError(
            f"Invalid model version source {source!r}: use models:/<name>/<version> of a registered "
            "version, or models:/<model_id> of an MLflow 3 logged model (m- and 32 hex digits)"
        )
    mv = store.get_model_version(parse_model_ref(source).name, number)
    artifact = mv.metadata.get("artifact")
    if not mv.run_id or not artifact:
        raise MlflowApiError(
            f"Version {mv.ref} was registered from a model object, not from a run's artifacts"
        )
    return mv.run_id, str(artifact)


@router.post("/model-versions/create")
def create_model_version(body: CreateVersionIn, state: StateDep, request: Request) -> Response:
    """Register the MLflow model folder at ``source`` as the next version of ``name`` (an existing
    model), by ``sy.register_model``: the same checks, the same content-addressed files."""
    store = state.store
    store.get_registered_model(body.name)
    require_grant(request, state.store, "model", body.name)
    if any(t.key == search.IS_PROMPT_TAG for t in body.tags):
        raise _refuse("keep MLflow prompts", "its registry holds models; keep prompts in MLflow")
    run_id, artifact = _source_in_run(body.source, store)
    if body.run_id and body.run_id != run_id:
        raise MlflowApiError(
            f"Invalid model version source {body.source!r}: it is in run {run_id}, "
            f"not in run_id {body.run_id}"
        )
    if body.model_id and (run_id, artifact) != logged_models.registrable_files(store, body.model_id):
        raise MlflowApiError(
            f"Invalid model version source {body.source!r}: it is not the folder of logged model "
            f"{body.model_id} (register models:/{body.model_id})"
        )
    client = _acting(state, request)
    tags = {t.key: t.value for t in body.tags}
    mv = register_model(
        run_id, body.name, artifact=artifact, description=body.description, tags=tags, client=client
    )
    changed = {k: v for k, v in tags.items() if mv.tags.get(k) != v}  # the same files registered before
    for key, value in changed.items():
        _annotations(store).set_model_tag(body.name, mv.version, key, value, client.settings.user)
    return json_answer({"model_version": version_json(store.get_model_version(body.name, mv.version))})


@router.get("/model-versions/get")
def get_model_version(
    name: Annotated[str, Query()], version: Annotated[str, Query()], store: StoreDep
) -> Response:
    return json_answer({"model_version": version_json(store.get_model_version(name, _number(version)))})


@router.get("/model-versions/search")
def search_model_versions(
    store: StoreDep,
    filter_: Annotated[str, Query(alias="filter")] = "",
    max_results: PageSize = MAX_VERSIONS_PAGE,
    order_by: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies query defaults
    page_token: str = "",
) -> Response:
    """MLflow's filter on ``name``, ``run_id``, ``source_path``, ``version_number`` and tags."""
    clauses = search.parse_filter(filter_, "model_versions")
    size, offset = _page(max_results, MAX_VERSIONS_PAGE), search.page_offset(page_token)
    rows = []
    for mv in _candidates(store, clauses):
        attrs = {
            "name": mv.name,
            "run_id": mv.run_id,
            "source_path": source_of(mv),
            "version_number": mv.version,
            "creation_timestamp": mv.created_at,
            "last_updated_timestamp": mv.created_at,
        }
        if search.matches(clauses, attrs, mv.tags):
            rows.append((attrs, mv))
    key = search.order_key(order_by or ["last_updated_timestamp DESC"], "model_versions")
    rows.sort(key=lambda row: key(row[0]))
    page = [version_json(mv) for _, mv in rows[offset : offset + size]]
    token = search.next_page_token(offset, size, len(rows))
    return json_answer({"model_versions": page, "next_page_token": token})


def _candidates(store: Store, clauses: list[search.Clause]) -> list[ModelVersion]:
    """The versions a filter can match: one model's or one run's when it pins them, else all."""
    for c in clauses:
        if c.kind == "attribute" and c.op == "=" and c.key == "name":
            try:
                return store.list_model_versions(str(c.value))
            except ModelNotFound:
                return []
        if c.kind == "attribute" and c.op == "=" and c.key == "run_id":
            return store.models_for_run(str(c.value))
    return [v for m in store.list_registered_models() for v in store.list_model_versions(m.name)]


@router.patch("/model-versions/update")
def update_model_version(body: UpdateVersionIn, state: StateDep, request: Request) -> Response:
    version = _number(body.version)
    state.store.get_model_version(body.name, version)
    require_grant(request, state.store, "model", body.name)
    if body.description is not None:
        actor = _acting(state, request).settings.user
        _annotations(state.store).set_model_description(body.name, version, body.description, actor)
    return json_answer({"model_version": version_json(state.store.get_model_version(body.name, version))})


@router.delete("/model-versions/delete")
def delete_model_version(body: VersionIn, store: StoreDep) -> Response:
    mv = store.get_model_version(body.name, _number(body.version))
    raise _refuse(
        "delete model versions",
        f"versions never change and stay for the audit log, lineage and rollback ({mv.ref}). "
        "Remove its aliases (delete_registered_model_alias) so that nothing serves it",
    )


@router.post("/model-versions/set-tag")
def set_model_version_tag(body: VersionTagIn, state: StateDep, request: Request) -> Response:
    version = _number(body.version)
    state.store.get_model_version(body.name, version)
    require_grant(request, state.store, "model", body.name)
    actor = _acting(state, request).settings.user
    _annotations(state.store).set_model_tag(body.name, version, body.key, body.value, actor)
    return json_answer({})


@router.delete("/model-versions/delete-tag")
def delete_model_version_tag(body: VersionKeyIn, state: StateDep, request: Request) -> Response:
    version = _number(body.version)
    state.store.get_model_version(body.name, version)
    require_grant(request, state.store, "model", body.name)
    actor = _acting(state, request).settings.user
    _annotations(state.store).delete_model_tag(body.name, version, body.key, actor)
    return json_answer({})


@router.get("/model-versions/get-download-uri")
def get_model_version_download_uri(
    name: Annotated[str, Query()], version: Annotated[str, Query()], store: StoreDep
) -> Response:
    mv = store.get_model_version(name, _number(version))
    uri = source_of(mv)
    if not uri:
        raise MlflowApiError(
            f"Version {mv.ref} was registered from a model object, so its files are in no run's "
            f"artifacts to download through MLflow; load it with sy.load_model('{mv.ref}')",
            "RESOURCE_DOES_NOT_EXIST",
        )
    return json_answer({"artifact_uri": uri})


@router.post("/model-versions/transition-stage")
def transition_model_version_stage(body: TransitionIn, store: StoreDep) -> Response:
    mv = store.get_model_version(body.name, _number(body.version))
    raise _refuse(
        "move versions between stages",
        f"stages are deprecated in MLflow and Shipyard uses aliases instead, moved through the model's "
        f"promotion policy: MlflowClient().set_registered_model_alias('{mv.name}', 'champion', "
        f"'{mv.version}') (or shipyard models promote {mv.name} {mv.version} --to champion)",
    )
