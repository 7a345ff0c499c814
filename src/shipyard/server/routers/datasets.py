"""Dataset versions and their use by runs (lineage)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, status

from shipyard.data.versions import diff_datasets, load_dataset, load_profile
from shipyard.entities import DatasetVersion, DatasetVersionCreate
from shipyard.errors import InvalidInput
from shipyard.server.access import author_for
from shipyard.server.errors import ERROR_RESPONSES
from shipyard.server.schemas import (
    ContractIn,
    ContractList,
    ContractOut,
    DatasetUseIn,
    DatasetUseList,
    DatasetUseOut,
    DatasetVersionIn,
    DatasetVersionList,
    DatasetVersionOut,
    ValidateIn,
)
from shipyard.server.state import ServerState, StateDep, StoreDep
from shipyard.tracking import Client

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["datasets"], responses=ERROR_RESPONSES)


def _out(v: DatasetVersion) -> DatasetVersionOut:
    return DatasetVersionOut.model_validate(v.to_dict())


@router.post("/datasets/versions", status_code=status.HTTP_201_CREATED)
def create_dataset_version(body: DatasetVersionIn, store: StoreDep, request: Request) -> DatasetVersionOut:
    """Record a version (upload its Parquet blob first); the same digest gives the same version."""
    spec = DatasetVersionCreate(
        **{
            **body.model_dump(by_alias=False, exclude={"schema_"}),
            "schema": body.schema_,
            "created_by": author_for(request, body.created_by),
        }
    )
    return _out(store.create_dataset_version(spec))


@router.get("/datasets/versions")
def list_dataset_versions(
    store: StoreDep, name: str | None = Query(default=None, min_length=1, max_length=255)
) -> DatasetVersionList:
    """Every version of every dataset (or of ``name``), by name then version."""
    return DatasetVersionList(versions=[_out(v) for v in store.list_dataset_versions(name)])


@router.get("/datasets/resolve")
def get_dataset_version(
    store: StoreDep,
    name: str = Query(min_length=1, max_length=255),
    ref: str = Query(default="latest", max_length=64),
) -> DatasetVersionOut:
    """Resolve ``latest``, ``vN`` or a digest prefix to a version."""
    return _out(store.get_dataset_version(name, ref))


@router.post("/runs/{run_id}/datasets", status_code=status.HTTP_204_NO_CONTENT)
def record_dataset_use(run_id: str, body: DatasetUseIn, store: StoreDep) -> None:
    """Record that a run consumed a dataset version in a role."""
    store.record_dataset_use(run_id, body.name, body.version, body.role)


@router.get("/runs/{run_id}/datasets")
def list_run_datasets(run_id: str, store: StoreDep) -> DatasetUseList:
    """The dataset versions a run consumed, with their roles."""
    uses = store.list_run_datasets(run_id)
    return DatasetUseList(
        uses=[DatasetUseOut(run_id=u.run_id, role=u.role, dataset=_out(u.dataset)) for u in uses]
    )


@router.post("/contracts", status_code=status.HTTP_201_CREATED)
def save_contract(body: ContractIn, store: StoreDep, request: Request) -> ContractOut:
    """Record a contract version (canonical YAML and its BLAKE3 digest); the same digest returns it again."""
    from shipyard.data.contracts import Contract

    contract = Contract.from_yaml(body.yaml)  # refuse what is not a valid contract
    if contract.digest != body.digest or contract.name != body.name:
        raise InvalidInput(
            "The contract's name or digest does not match its YAML; send Contract.to_yaml() as is"
        )
    return ContractOut(
        **store.save_contract(
            body.name, body.yaml, body.digest, author_for(request, body.created_by)
        ).__dict__
    )


@router.get("/contracts")
def list_contracts(
    store: StoreDep, name: str | None = Query(default=None, min_length=1, max_length=255)
) -> ContractList:
    """Every version of every contract (or of ``name``)."""
    return ContractList(contracts=[ContractOut(**c.__dict__) for c in store.list_contracts(name)])


@router.get("/contracts/resolve")
def get_contract(
    store: StoreDep,
    name: str = Query(min_length=1, max_length=255),
    ref: str = Query(default="latest", max_length=64),
) -> ContractOut:
    """Resolve ``latest``, ``vN`` or a digest prefix to a contract version."""
    return ContractOut(**store.get_contract(name, ref).__dict__)


def _client(state: ServerState) -> Client:
    return Client.from_stores(state.settings, state.store, state.blobs)


@router.get("/datasets/profile")
def get_dataset_profile(
    state: StateDep,
    name: str = Query(min_length=1, max_length=255),
    ref: str = Query(default="latest", max_length=64),
) -> dict[str, Any]:
    """The profile stored with a version: counts, quantiles, histograms, top categories."""
    version = state.store.get_dataset_version(name, ref)
    return load_profile(version, client=_client(state)).to_dict()


@router.get("/datasets/diff")
def diff_dataset_versions(
    state: StateDep,
    a: str = Query(min_length=1, max_length=300, examples=["flights@v1"]),
    b: str = Query(min_length=1, max_length=300, examples=["flights@v2"]),
) -> dict[str, Any]:
    """What changed from version ``a`` to ``b``: schema, rows, per-column shift with a verdict."""
    return diff_datasets(a, b, client=_client(state)).to_dict()


@router.post("/datasets/validate")
def validate_dataset_version(body: ValidateIn, state: StateDep) -> dict[str, Any]:
    """Validate a stored version against a contract (a registered ``name@ref`` or YAML); the full report."""
    from shipyard.data.contracts import Contract
    from shipyard.data.registry import load_contract
    from shipyard.data.validation import validate

    client = _client(state)
    contract = (
        Contract.from_yaml(body.contract_yaml)
        if body.contract_yaml
        else load_contract(body.contract or "", client=client)
    )
    return validate(load_dataset(body.dataset, output="polars", client=client), contract).to_dict()


@router.get("/datasets/pii")
def scan_dataset_pii(
    state: StateDep,
    name: str = Query(min_length=1, max_length=255),
    ref: str = Query(default="latest", max_length=64),
    sample: int = Query(default=10_000, ge=1, le=1_000_000),
) -> dict[str, Any]:
    """Columns of a stored version that look like personal data (examples masked)."""
    from shipyard.data.pii import scan_pii

    version = state.store.get_dataset_version(name, ref)
    frame = load_dataset(version, output="polars", client=_client(state))
    return scan_pii(frame, sample=sample).to_dict()
