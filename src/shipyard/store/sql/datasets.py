"""Dataset versions and lineage in the SQL store (the table logic behind ``SqlStore``'s methods)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, func, insert, select

from shipyard.entities import ContractVersion, DatasetUse, DatasetVersion, DatasetVersionCreate, now_ms
from shipyard.errors import InvalidInput, NotFound
from shipyard.store.sql import schema as t

__all__ = [
    "create_version",
    "find_contract",
    "find_version",
    "list_contracts",
    "list_versions",
    "record_use",
    "run_uses",
    "save_contract",
]

_COLS = t.dataset_versions.c


def _version(row: Any, name: str) -> DatasetVersion:
    return DatasetVersion(
        name=name,
        version=row.version,
        digest=row.digest,
        rows=row.rows,
        num_columns=row.num_columns,
        schema=[(str(a), str(b)) for a, b in json.loads(row.schema_json)],
        size=row.size,
        source=row.source,
        created_by=row.created_by,
        created_at=row.created_at,
        profile_digest=row.profile_digest,
        contract_digest=row.contract_digest,
    )


def _select(name: str) -> Any:
    return (
        select(t.dataset_versions)
        .join(t.datasets, t.datasets.c.id == _COLS.dataset_id)
        .where(t.datasets.c.name == name)
    )


def create_version(conn: Connection, ins: Any, spec: DatasetVersionCreate) -> DatasetVersion:
    """Record a version; the same content under the same name returns the existing version."""
    conn.execute(
        ins(t.datasets).on_conflict_do_nothing(index_elements=["name"]),
        {"name": spec.name, "created_at": now_ms()},
    )
    dataset_id = conn.execute(select(t.datasets.c.id).where(t.datasets.c.name == spec.name)).scalar_one()
    existing = conn.execute(_select(spec.name).where(_COLS.digest == spec.digest)).first()
    if existing is not None:
        return _version(existing, spec.name)
    latest = conn.execute(select(func.max(_COLS.version)).where(_COLS.dataset_id == dataset_id)).scalar()
    row = {
        "dataset_id": dataset_id,
        "version": int(latest or 0) + 1,
        "digest": spec.digest,
        "rows": spec.rows,
        "num_columns": spec.num_columns,
        "schema_json": json.dumps([list(c) for c in spec.schema]),
        "size": spec.size,
        "source": spec.source,
        "profile_digest": spec.profile_digest,
        "contract_digest": spec.contract_digest,
        "created_by": spec.created_by,
        "created_at": now_ms(),
    }
    conn.execute(insert(t.dataset_versions), row)
    return _version(conn.execute(_select(spec.name).where(_COLS.digest == spec.digest)).one(), spec.name)


def _by_ref(stmt: Any, cols: Any, kind: str, name: str, ref: str) -> Any:
    """Narrow ``stmt`` to ``latest``, ``vN`` (or ``N``) or a digest prefix of at least 6 characters."""
    ref = ref.strip().lower()
    if ref in ("", "latest"):
        return stmt.order_by(cols.version.desc()).limit(1)
    if ref.isascii() and ref.lstrip("v").isdigit():
        return stmt.where(cols.version == int(ref.lstrip("v")))
    if len(ref) >= 6 and all(c in "0123456789abcdef" for c in ref):
        return stmt.where(cols.digest.startswith(ref, autoescape=True)).limit(2)
    raise InvalidInput(
        f"{kind} reference '{name}@{ref}' is not understood; use {name}@latest, {name}@v3 "
        "or a digest prefix of at least 6 hex characters"
    )


def find_version(conn: Connection, name: str, ref: str) -> DatasetVersion:
    """Resolve ``latest``, ``vN`` (or ``N``) or a digest prefix of at least 6 characters."""
    rows = conn.execute(_by_ref(_select(name), _COLS, "Dataset", name, ref)).all()
    if len(rows) > 1:
        raise InvalidInput(
            f"Digest prefix '{ref}' matches several versions of '{name}'; give more characters"
        )
    if not rows:
        known = conn.execute(select(t.datasets.c.id).where(t.datasets.c.name == name)).first()
        hint = (
            "list versions with: shipyard data ls"
            if known is None
            else f"dataset '{name}' has no such version"
        )
        raise NotFound(f"Dataset version '{name}@{ref}' not found ({hint})")
    return _version(rows[0], name)


def list_versions(conn: Connection, name: str | None) -> list[DatasetVersion]:
    stmt = select(t.dataset_versions, t.datasets.c.name.label("dataset_name")).join(
        t.datasets, t.datasets.c.id == _COLS.dataset_id
    )
    if name is not None:
        stmt = stmt.where(t.datasets.c.name == name)
    rows = conn.execute(stmt.order_by(t.datasets.c.name, _COLS.version)).all()
    return [_version(r, r.dataset_name) for r in rows]


def record_use(conn: Connection, ins: Any, run_id: str, version: DatasetVersion, role: str) -> None:
    if not role or len(role) > 64:
        raise InvalidInput(f"Dataset role {role!r} must be a non-empty string of at most 64 characters")
    version_id = conn.execute(
        _select(version.name).with_only_columns(_COLS.id).where(_COLS.version == version.version)
    ).scalar_one()
    conn.execute(
        ins(t.run_datasets).on_conflict_do_nothing(),
        {"run_id": run_id, "dataset_version_id": version_id, "role": role},
    )


def run_uses(conn: Connection, run_id: str) -> list[DatasetUse]:
    stmt = (
        select(t.dataset_versions, t.datasets.c.name.label("dataset_name"), t.run_datasets.c.role)
        .join(t.run_datasets, t.run_datasets.c.dataset_version_id == _COLS.id)
        .join(t.datasets, t.datasets.c.id == _COLS.dataset_id)
        .where(t.run_datasets.c.run_id == run_id)
        .order_by(t.run_datasets.c.role, t.datasets.c.name)
    )
    return [DatasetUse(run_id, _version(r, r.dataset_name), r.role) for r in conn.execute(stmt)]


def save_contract(conn: Connection, name: str, yaml: str, digest: str, created_by: str) -> ContractVersion:
    """Record a contract version; the same content under the same name returns the existing one."""
    c = t.contracts.c
    existing = conn.execute(select(t.contracts).where(c.name == name, c.digest == digest)).first()
    if existing is None:
        latest = conn.execute(select(func.max(c.version)).where(c.name == name)).scalar()
        row = {
            "name": name,
            "version": int(latest or 0) + 1,
            "digest": digest,
            "yaml": yaml,
            "created_by": created_by,
            "created_at": now_ms(),
        }
        conn.execute(insert(t.contracts), row)
        existing = conn.execute(select(t.contracts).where(c.name == name, c.digest == digest)).one()
    return _contract(existing)


def _contract(row: Any) -> ContractVersion:
    return ContractVersion(row.name, row.version, row.digest, row.yaml, row.created_by, row.created_at)


def find_contract(conn: Connection, name: str, ref: str) -> ContractVersion:
    """Resolve ``latest``, ``vN`` or a digest prefix of contract ``name``."""
    c = t.contracts.c
    rows = conn.execute(_by_ref(select(t.contracts).where(c.name == name), c, "Contract", name, ref)).all()
    if len(rows) > 1:
        raise InvalidInput(f"Digest prefix '{ref}' matches several versions of contract '{name}'; give more")
    row = rows[0] if rows else None
    if row is None:
        raise NotFound(f"Contract '{name}@{ref}' not found (list them with: shipyard data contract ls)")
    return _contract(row)


def list_contracts(conn: Connection, name: str | None) -> list[ContractVersion]:
    c = t.contracts.c
    stmt = select(t.contracts).order_by(c.name, c.version)
    if name is not None:
        stmt = stmt.where(c.name == name)
    return [_contract(r) for r in conn.execute(stmt)]
