"""Experiments: create, get (by id or by name), list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status

from shipyard.bounds import INT32_MAX
from shipyard.server.access import principal_of
from shipyard.server.errors import ERROR_RESPONSES
from shipyard.server.schemas import ExperimentIn, ExperimentList, ExperimentOut
from shipyard.server.state import StoreDep
from shipyard.store.base import AuthStore

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/experiments", tags=["experiments"], responses=ERROR_RESPONSES)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_experiment(body: ExperimentIn, store: StoreDep, request: Request) -> ExperimentOut:
    """Create an experiment; 409 ``already_exists`` when the name is taken. With auth, its creator
    becomes its owner (a grant)."""
    experiment = store.create_experiment(body.name, body.description)
    principal = principal_of(request)
    if principal is not None and isinstance(store, AuthStore):
        store.set_grant(principal.name, "experiment", str(experiment.id), "owner", principal.name)
    return ExperimentOut.of(experiment)


@router.get("")
def list_experiments(store: StoreDep) -> ExperimentList:
    """All experiments, oldest first."""
    return ExperimentList(experiments=[ExperimentOut.of(e) for e in store.list_experiments()])


@router.get("/by-name")
def get_experiment_by_name(store: StoreDep, name: str = Query(min_length=1, max_length=255)) -> ExperimentOut:
    """The experiment called ``name`` (a query parameter: names may contain ``/``)."""
    return ExperimentOut.of(store.get_experiment_by_name(name))


@router.get("/{experiment_id}")
def get_experiment(experiment_id: Annotated[int, Path(ge=0, le=INT32_MAX)], store: StoreDep) -> ExperimentOut:
    """The experiment with this id; 404 ``experiment_not_found`` otherwise."""
    return ExperimentOut.of(store.get_experiment(experiment_id))
