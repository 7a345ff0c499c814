"""What a model version records about itself: lineage, signature and the model card metadata."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shipyard.data.contracts import Contract
from shipyard.data.versions import parse_dataset_ref
from shipyard.entities import Artifact, DatasetVersion, Run
from shipyard.errors import InvalidInput
from shipyard.tracking import Client

__all__ = ["contract_by_digest", "lineage", "metadata", "signature_for"]


def _dataset(client: Client, ref: str) -> DatasetVersion:
    name, version = parse_dataset_ref(ref)
    return client.store.get_dataset_version(name, version)


def lineage(
    client: Client,
    run: Run | None,
    training_data: Any,
    datasets: Sequence[tuple[str, str]] | None,
) -> list[tuple[str, int, str]]:
    """Explicit lineage links ``(name, version, role)``; the store adds the source run's own."""
    links: list[tuple[str, int, str]] = []
    if isinstance(training_data, str):
        found = _dataset(client, training_data)
        links.append((found.name, found.version, "train"))
    for item in datasets or ():
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise InvalidInput(
                f"datasets= takes (reference, role) pairs such as ('flights@v3', 'validation'), got {item!r}"
            )
        found = _dataset(client, str(item[0]))
        links.append((found.name, found.version, str(item[1])))
    if run is not None:
        known = {(u.dataset.name, u.dataset.version, u.role) for u in client.list_run_datasets(run.id)}
        links = [x for x in links if x not in known]
    return links


def _training_version(client: Client, run: Run | None, training_data: Any) -> DatasetVersion | None:
    if isinstance(training_data, str):
        return _dataset(client, training_data)
    if run is not None:
        for use in client.list_run_datasets(run.id):
            if use.role == "train":
                return use.dataset
    return None


def contract_by_digest(client: Client, digest: str) -> Contract | None:
    """The registered contract with this digest (what a dataset version records), if any."""
    for saved in client.store.list_contracts():
        if saved.digest == digest:
            return Contract.from_yaml(saved.yaml)
    return None


def signature_for(
    client: Client,
    meta: Mapping[str, Any],
    signature: Any,
    training_data: Any,
    target: str | None,
    run: Run | None,
) -> dict[str, Any]:
    """The version's signature: given > training data's contract > training data > input example."""
    from shipyard.registry.signature import Signature, infer_signature, signature_from_contract

    stored = meta.get("signature")
    if signature is not None:
        return (
            signature.to_dict()
            if isinstance(signature, Signature)
            else Signature.from_dict(signature).to_dict()
        )
    trained_on = _training_version(client, run, training_data)
    contract = (
        contract_by_digest(client, trained_on.contract_digest)
        if trained_on is not None and trained_on.contract_digest
        else None
    )
    if contract is not None:
        from_contract = signature_from_contract(contract, target)
        if stored:  # keep the model's own column set and output; types and nulls from the contract
            inputs = {c["name"] for c in stored.get("inputs", [])}
            d = from_contract.to_dict()
            d["inputs"] = [c for c in d["inputs"] if not inputs or c["name"] in inputs]
            d["output"] = stored.get("output", d.get("output"))
            d["proba"] = stored.get("proba", d.get("proba"))
            d["source"] = f"contract {contract.name}"
            return d
        return {**from_contract.to_dict(), "source": f"contract {contract.name}"}
    if training_data is not None and not isinstance(training_data, str):
        frame = (
            training_data.drop(columns=[target])
            if target and hasattr(training_data, "drop")
            else training_data
        )
        inferred = infer_signature(frame).to_dict()
        if stored:
            inferred["output"] = stored.get("output", inferred.get("output"))
            inferred["proba"] = stored.get("proba", inferred.get("proba"))
        return inferred
    if stored:
        return dict(stored)
    raise InvalidInput(
        "Cannot tell this model's signature: pass input_example= (a few rows of its input), "
        "training_data= (a DataFrame or a dataset reference with a contract) or signature="
    )


def metadata(
    meta: Mapping[str, Any],
    run: Run | None,
    metrics: Mapping[str, float] | None,
    tags: Mapping[str, str] | None,
    files: Sequence[Artifact],
    target: str | None,
    artifact: str | None = None,
) -> dict[str, Any]:
    """The model card stored with the version (what ``shipyard models show`` prints); ``artifact``
    is where in the source run the model folder is (its artifact path)."""
    logged = run.metrics if run is not None else {}
    merged = {k: v for k, v in logged.items() if not k.startswith("system.")}
    merged.update({k: float(v) for k, v in (metrics or {}).items()})
    return {
        "task": meta.get("task"),
        "classes": meta.get("classes"),
        "target": target,
        "requirements": list(meta.get("requirements") or []),
        "metrics": {k: v for k, v in merged.items() if v == v},  # drop NaN: JSON has no NaN
        "tags": dict(tags or {}),
        "size": sum(f.size for f in files),
        "python": meta.get("python"),
        "shipyard": meta.get("shipyard"),
        "input_example": meta.get("input_example"),
        "trusted_types": list(meta.get("trusted_types") or []),
        **({"artifact": artifact.strip("/")} if artifact else {}),
    }
