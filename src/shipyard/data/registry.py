"""Data contracts as versioned records in the store: register, resolve, load."""

from __future__ import annotations

import os
from pathlib import Path

from shipyard.data.contracts import Contract
from shipyard.entities import ContractVersion
from shipyard.tracking import Client
from shipyard.tracking.fluent import get_client

__all__ = ["get_contract", "list_contracts", "load_contract", "register_contract", "resolve_contract"]


def register_contract(
    contract: Contract | str | os.PathLike[str], *, client: Client | None = None
) -> ContractVersion:
    """Store a contract as the next version of its name (the same content keeps its version).

    Example:
        >>> sy.register_contract("contracts/flights.yaml").ref  # doctest: +SKIP
        'flights@v1'
    """
    client = client or get_client()
    contract = contract if isinstance(contract, Contract) else Contract.from_yaml(Path(contract))
    # a new version is audited by the store, in the same transaction
    return client.store.save_contract(
        contract.name, contract.to_yaml(), contract.digest, client.settings.user
    )


def load_contract(ref: str, *, client: Client | None = None) -> Contract:
    """A registered contract: ``name``, ``name@latest``, ``name@v2`` or ``name@<digest prefix>``.

    Example:
        >>> sy.load_contract("flights@v1").column("distance").unit  # doctest: +SKIP
        'miles'
    """
    return Contract.from_yaml(get_contract(ref, client=client).yaml)


def get_contract(ref: str, *, client: Client | None = None) -> ContractVersion:
    """A registered contract version as stored (name, version, digest, YAML text, author, time).

    Example:
        >>> print(sy.get_contract("flights@v1").yaml)  # doctest: +SKIP
    """
    name, _, version = ref.partition("@")
    return (client or get_client()).store.get_contract(name, version or "latest")


def list_contracts(name: str | None = None, *, client: Client | None = None) -> list[ContractVersion]:
    """Registered contract versions: every version of ``name``, or of every contract, oldest first.

    Example:
        >>> [c.ref for c in sy.list_contracts("flights")]  # doctest: +SKIP
        ['flights@v1', 'flights@v2']
    """
    return (client or get_client()).store.list_contracts(name)


def resolve_contract(contract: Contract | str | os.PathLike[str], client: Client) -> Contract:
    """A Contract from an object, a YAML file path, or a registry reference (``name@v2``)."""
    if isinstance(contract, Contract):
        return contract
    path = Path(contract)
    if path.is_file():
        return Contract.from_yaml(path)
    return load_contract(str(contract), client=client)
