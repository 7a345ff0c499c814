"""The model registry in the SQL store: registered models, versions, aliases and records.

Every change here appends its audit entry in the same transaction as the change itself, so
the audit chain and the registry can never disagree (a crash loses both or neither). Alias moves
also write a row of ``model_alias_history`` (what rollback trusts) naming their audit entry.

Descriptions and tags (``set_model_description``, ``set_model_tag``, ``delete_model_tag``: the
``AnnotatesModels`` capability) are annotations changed in place, each audited; a version's tags
start as its card's tags.

Raw alias moves, arbitrary records and policy changes (``set_model_alias``, ``add_model_record``,
``set_model_policy``) are the ``LocalGovernance`` capability: the governed operations in
``shipyard.registry.governance`` call them after their checks, and no server route exposes them.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy import exc as sa_exc

from shipyard.entities import (
    AliasMove,
    Artifact,
    ModelRecord,
    ModelVersion,
    ModelVersionCreate,
    RegisteredModel,
    now_ms,
)
from shipyard.errors import InvalidInput, InvalidState, ModelNotFound, NotFound
from shipyard.names import check_alias
from shipyard.store.sql import audit, datasets
from shipyard.store.sql import schema as t

__all__ = [
    "MAX_TAG_KEY",
    "MAX_TAG_VALUE",
    "RECORD_KINDS",
    "ModelsMixin",
    "check_alias",
    "check_tag",
    "insert_version",
    "iter_model_digests",
]

_M = t.registered_models.c
_V = t.model_versions.c
RECORD_KINDS = ("evaluation", "approval", "promotion")


def _model_row(conn: Connection, name: str) -> Any:
    row = conn.execute(select(t.registered_models).where(_M.name == name)).first()
    if row is None:
        raise ModelNotFound(f"Registered model '{name}' not found (list models with: shipyard models ls)")
    return row


def _registered(conn: Connection, row: Any) -> RegisteredModel:
    aliases = conn.execute(
        select(t.model_aliases.c.alias, t.model_aliases.c.version)
        .where(t.model_aliases.c.model_id == row.id)
        .order_by(t.model_aliases.c.alias)
    ).all()
    latest = conn.execute(select(func.max(_V.version)).where(_V.model_id == row.id)).scalar()
    tags = conn.execute(
        select(t.model_tags.c.key, t.model_tags.c.value)
        .where(t.model_tags.c.model_id == row.id)
        .order_by(t.model_tags.c.key)
    ).all()
    return RegisteredModel(
        name=row.name,
        description=row.description,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        latest_version=latest,
        aliases={a.alias: a.version for a in aliases},
        policy_yaml=row.policy_yaml,
        tags={r.key: r.value for r in tags},
    )


def _version(conn: Connection, row: Any, name: str) -> ModelVersion:
    files = conn.execute(
        select(t.model_files).where(t.model_files.c.model_version_id == row.id).order_by(t.model_files.c.path)
    ).all()
    dv = t.dataset_versions.c
    lineage = conn.execute(
        select(t.datasets.c.name, dv.version, t.model_version_datasets.c.role)
        .join(t.dataset_versions, dv.id == t.model_version_datasets.c.dataset_version_id)
        .join(t.datasets, t.datasets.c.id == dv.dataset_id)
        .where(t.model_version_datasets.c.model_version_id == row.id)
        .order_by(t.model_version_datasets.c.role, t.datasets.c.name)
    ).all()
    aliases = conn.execute(
        select(t.model_aliases.c.alias)
        .where(t.model_aliases.c.model_id == row.model_id, t.model_aliases.c.version == row.version)
        .order_by(t.model_aliases.c.alias)
    ).scalars()
    vt = t.model_version_tags.c
    tags = conn.execute(select(vt.key, vt.value).where(vt.model_version_id == row.id).order_by(vt.key)).all()
    return ModelVersion(
        name=name,
        version=row.version,
        digest=row.digest,
        flavor=row.flavor,
        files=[Artifact(f.path, f.digest, f.size) for f in files],
        signature=json.loads(row.signature_json),
        metadata=json.loads(row.metadata_json),
        run_id=row.run_id,
        datasets=[(d.name, d.version, d.role) for d in lineage],
        description=row.description,
        created_by=row.created_by,
        created_at=row.created_at,
        aliases=list(aliases),
        tags={r.key: r.value for r in tags},
    )


def _find_version(conn: Connection, name: str, ref: str | int) -> Any:
    """The version row for ``latest``, ``N``/``vN`` or an alias."""
    model = _model_row(conn, name)
    ref_s = str(ref).strip()
    stmt = select(t.model_versions).where(_V.model_id == model.id)
    if ref_s in ("", "latest"):
        row = conn.execute(stmt.order_by(_V.version.desc()).limit(1)).first()
    elif ref_s.isascii() and ref_s.lstrip("v").isdigit():
        row = conn.execute(stmt.where(_V.version == int(ref_s.lstrip("v")))).first()
    else:
        check_alias(ref_s)
        target = conn.execute(
            select(t.model_aliases.c.version).where(
                t.model_aliases.c.model_id == model.id, t.model_aliases.c.alias == ref_s
            )
        ).scalar()
        if target is None:
            raise NotFound(
                f"Model '{name}' has no alias '{ref_s}' (aliases: {_alias_list(conn, model.id)}; "
                f"set one with: shipyard models promote {name} VERSION --to {ref_s})"
            )
        row = conn.execute(stmt.where(_V.version == target)).first()
    if row is None:
        raise NotFound(
            f"Model version '{name}/{ref_s}' not found (list versions with: shipyard models versions {name})"
        )
    return row


def _alias_list(conn: Connection, model_id: int) -> str:
    names = conn.execute(select(t.model_aliases.c.alias).where(t.model_aliases.c.model_id == model_id))
    return ", ".join(sorted(names.scalars())) or "none"


class ModelsMixin:
    """The registry methods of ``SqlStore`` (mixed in; uses its transaction helpers)."""

    def _write(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def _read(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def _insert(self, table: Any) -> Any:
        raise NotImplementedError

    # -- registered models ---------------------------------------------------------------------
    def create_registered_model(
        self, name: str, description: str = "", created_by: str = ""
    ) -> RegisteredModel:
        """Create a registered model, or return it when it exists (an audited event when new)."""
        _check_name(name)
        with self._write() as conn:
            row = conn.execute(select(t.registered_models).where(_M.name == name)).first()
            if row is None:
                now = now_ms()
                conn.execute(
                    insert(t.registered_models),
                    {
                        "name": name,
                        "description": description,
                        "created_by": created_by,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
                audit.append(conn, created_by, "model.create", "model", name, None, {"name": name}, "")
                row = _model_row(conn, name)
            return _registered(conn, row)

    def get_registered_model(self, name: str) -> RegisteredModel:
        with self._read() as conn:
            return _registered(conn, _model_row(conn, name))

    def list_registered_models(self) -> list[RegisteredModel]:
        with self._read() as conn:
            rows = conn.execute(select(t.registered_models).order_by(_M.name)).all()
            return [_registered(conn, r) for r in rows]

    def set_model_policy(
        self, name: str, policy_yaml: str | None, actor: str, reason: str = ""
    ) -> RegisteredModel:
        with self._write() as conn:
            row = _model_row(conn, name)
            conn.execute(
                update(t.registered_models)
                .where(_M.id == row.id)
                .values(policy_yaml=policy_yaml, updated_at=now_ms())
            )
            audit.append(conn, actor, "model.policy", "model", name, row.policy_yaml, policy_yaml, reason)
            return _registered(conn, _model_row(conn, name))

    # -- versions ------------------------------------------------------------------------------
    def create_model_version(self, spec: ModelVersionCreate) -> ModelVersion:
        """Record version N+1; the same content under the same model returns the existing version."""
        if not spec.files:
            raise InvalidInput("A model version needs at least one file")
        for _ in range(3):  # a concurrent writer may take the version number: try again
            try:
                with self._write() as conn:
                    return self._create_version(conn, spec)
            except sa_exc.IntegrityError:
                continue
        raise InvalidState(f"Could not allocate a version number for model '{spec.name}'; retry")

    def _create_version(self, conn: Connection, spec: ModelVersionCreate) -> ModelVersion:
        model = _model_row(conn, spec.name)
        existing = conn.execute(
            select(t.model_versions).where(_V.model_id == model.id, _V.digest == spec.digest)
        ).first()
        if existing is not None:
            return _version(conn, existing, spec.name)
        latest = conn.execute(select(func.max(_V.version)).where(_V.model_id == model.id)).scalar()
        number = int(latest or 0) + 1
        row = insert_version(conn, model.id, spec, number, now_ms())
        self._link_datasets(conn, row.id, spec)
        conn.execute(update(t.registered_models).where(_M.id == model.id).values(updated_at=now_ms()))
        version = _version(conn, row, spec.name)
        audit.append(
            conn,
            spec.created_by,
            "model_version.create",
            "model_version",
            f"{spec.name}/{number}",
            None,
            {
                "digest": spec.digest,
                "flavor": spec.flavor,
                "run_id": spec.run_id,
                "datasets": version.datasets,
            },
            spec.description,
        )
        return version

    def _link_datasets(self, conn: Connection, version_id: int, spec: ModelVersionCreate) -> None:
        """Lineage: the source run's dataset uses plus any given explicitly."""
        links: dict[tuple[int, str], None] = {}
        if spec.run_id is not None:
            rd = t.run_datasets.c
            for r in conn.execute(select(rd.dataset_version_id, rd.role).where(rd.run_id == spec.run_id)):
                links[(r.dataset_version_id, r.role)] = None
        for name, number, role in spec.datasets:
            found = datasets.find_version(conn, name, f"v{number}")
            dv_id = conn.execute(
                datasets._select(found.name)
                .with_only_columns(t.dataset_versions.c.id)
                .where(t.dataset_versions.c.version == found.version)
            ).scalar_one()
            links[(dv_id, role)] = None
        if links:
            conn.execute(
                insert(t.model_version_datasets),
                [{"model_version_id": version_id, "dataset_version_id": d, "role": r} for d, r in links],
            )

    def get_model_version(self, name: str, ref: str | int = "latest") -> ModelVersion:
        with self._read() as conn:
            return _version(conn, _find_version(conn, name, ref), name)

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        with self._read() as conn:
            model = _model_row(conn, name)
            rows = conn.execute(
                select(t.model_versions).where(_V.model_id == model.id).order_by(_V.version)
            ).all()
            return [_version(conn, r, name) for r in rows]

    def models_for_run(self, run_id: str) -> list[ModelVersion]:
        """Model versions registered from a run (lineage run -> model)."""
        with self._read() as conn:
            rows = conn.execute(
                select(t.model_versions, _M.name.label("model_name"))
                .join(t.registered_models, _M.id == _V.model_id)
                .where(_V.run_id == run_id)
                .order_by(_M.name, _V.version)
            ).all()
            return [_version(conn, r, r.model_name) for r in rows]

    # -- annotations: descriptions and tags (AnnotatesModels) ------------------------------------
    def set_model_description(self, name: str, version: int | None, description: str, actor: str) -> None:
        """Replace the description of model ``name`` (``version=None``) or of one version (audited)."""
        with self._write() as conn:
            model = _model_row(conn, name)
            if version is None:
                before = model.description
                conn.execute(
                    update(t.registered_models)
                    .where(_M.id == model.id)
                    .values(description=description, updated_at=now_ms())
                )
            else:
                row = _find_version(conn, name, version)
                before = row.description
                conn.execute(update(t.model_versions).where(_V.id == row.id).values(description=description))
                conn.execute(update(t.registered_models).where(_M.id == model.id).values(updated_at=now_ms()))
            kind, oid = _annotated(name, version)
            audit.append(
                conn,
                actor,
                f"{kind}.describe",
                kind,
                oid,
                {"description": before},
                {"description": description},
                "",
            )

    def set_model_tag(self, name: str, version: int | None, key: str, value: str, actor: str) -> None:
        """Set or replace tag ``key`` of model ``name`` (``version=None``) or of one version (audited)."""
        check_tag(key, value)
        with self._write() as conn:
            table, where, row_values = self._tag_target(conn, name, version)
            before = conn.execute(select(table.c.value).where(where, table.c.key == key)).scalar()
            conn.execute(delete(table).where(where, table.c.key == key))
            conn.execute(insert(table), {**row_values, "key": key, "value": value})
            kind, oid = _annotated(name, version)
            audit.append(conn, actor, f"{kind}.tag", kind, oid, {key: before}, {key: value}, "")

    def delete_model_tag(self, name: str, version: int | None, key: str, actor: str) -> None:
        """Remove tag ``key`` (nothing happens, and nothing is audited, when it is not set)."""
        with self._write() as conn:
            table, where, _ = self._tag_target(conn, name, version)
            before = conn.execute(select(table.c.value).where(where, table.c.key == key)).scalar()
            if before is None:
                return
            conn.execute(delete(table).where(where, table.c.key == key))
            kind, oid = _annotated(name, version)
            audit.append(conn, actor, f"{kind}.untag", kind, oid, {key: before}, {key: None}, "")

    def _tag_target(
        self, conn: Connection, name: str, version: int | None
    ) -> tuple[Any, Any, dict[str, int]]:
        """(tag table, the condition selecting the object's tags, the object's id column) for a tag
        change; bumps the model's ``updated_at``."""
        model = _model_row(conn, name)
        conn.execute(update(t.registered_models).where(_M.id == model.id).values(updated_at=now_ms()))
        if version is None:
            return t.model_tags, t.model_tags.c.model_id == model.id, {"model_id": model.id}
        row = _find_version(conn, name, version)
        vt = t.model_version_tags
        return vt, vt.c.model_version_id == row.id, {"model_version_id": row.id}

    # -- aliases -------------------------------------------------------------------------------
    def set_model_alias(
        self,
        name: str,
        alias: str,
        version: int | None,
        actor: str,
        reason: str = "",
        *,
        expect: int | None | Literal["any"] = "any",
    ) -> int | None:
        """Point ``alias`` at ``version`` (``None`` removes it); returns the version it pointed at.

        ``expect`` makes the move conditional: it fails with ``InvalidState`` when the alias
        meanwhile points elsewhere (a promotion checked against one champion must not replace
        another). The move and its audit entry are one transaction.
        """
        check_alias(alias)
        a = t.model_aliases.c
        with self._write() as conn:
            model = _model_row(conn, name)
            current = conn.execute(select(a.version).where(a.model_id == model.id, a.alias == alias)).scalar()
            if expect != "any" and current != expect:
                raise InvalidState(
                    f"Alias '{name}@{alias}' now points at version {current}, not {expect}: "
                    "someone moved it meanwhile; check with: shipyard models show " + name
                )
            if version is not None:
                _find_version(conn, name, version)
            conn.execute(delete(t.model_aliases).where(a.model_id == model.id, a.alias == alias))
            if version is not None:
                conn.execute(
                    insert(t.model_aliases),
                    {
                        "model_id": model.id,
                        "alias": alias,
                        "version": version,
                        "updated_by": actor,
                        "updated_at": now_ms(),
                    },
                )
            action = "alias.delete" if version is None else "alias.set"
            entry = audit.append(
                conn,
                actor,
                action,
                "model_alias",
                f"{name}@{alias}",
                {"version": current},
                {"version": version},
                reason,
            )
            conn.execute(
                insert(t.model_alias_history),
                {
                    "model_id": model.id,
                    "alias": alias,
                    "version": version,
                    "previous": current,
                    "actor": actor,
                    "reason": reason,
                    "created_at": entry.ts,
                    "audit_seq": entry.seq,
                },
            )
            return int(current) if current is not None else None

    def list_alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        """Every move of ``name``'s aliases (or of one alias), oldest first."""
        h = t.model_alias_history.c
        with self._read() as conn:
            model = _model_row(conn, name)
            stmt = select(t.model_alias_history).where(h.model_id == model.id)
            if alias is not None:
                stmt = stmt.where(h.alias == check_alias(alias))
            rows = conn.execute(stmt.order_by(h.id)).all()
        return [
            AliasMove(name, r.alias, r.version, r.previous, r.actor, r.reason, r.created_at, r.audit_seq)
            for r in rows
        ]

    # -- records (evaluations, approvals, promotions) ------------------------------------------
    def add_model_evaluation(
        self,
        name: str,
        version: int,
        actor: str,
        body: dict[str, Any],
        *,
        files: Sequence[Artifact] = (),
    ) -> ModelRecord:
        """Store an evaluation report on a version (audited as ``model_version.evaluate``)."""
        return self.add_model_record(
            name, version, "evaluation", actor, body, files=files, audit_action="model_version.evaluate"
        )

    def record_trusted_load(self, name: str, version: int, actor: str, reason: str = "") -> None:
        """Audit that ``actor`` loaded a version with ``trust=True`` (the allowlist check skipped)."""
        with self._write() as conn:
            row = _find_version(conn, name, version)
            audit.append(
                conn,
                actor,
                "model.load_trusted",
                "model_version",
                f"{name}/{row.version}",
                None,
                {"digest": row.digest},
                reason or "loaded with trust=True: the allowlist check was skipped",
            )

    def add_model_record(
        self,
        name: str,
        version: int,
        kind: str,
        actor: str,
        body: dict[str, Any],
        *,
        files: Sequence[Artifact] = (),
        audit_action: str | None = None,
        reason: str = "",
    ) -> ModelRecord:
        if kind not in RECORD_KINDS:
            raise InvalidInput(f"Record kind {kind!r} is not one of {', '.join(RECORD_KINDS)}")
        with self._write() as conn:
            row = _find_version(conn, name, version)
            files_json = json.dumps([f.__dict__ for f in files])
            result = conn.execute(
                insert(t.model_records).returning(t.model_records.c.id),
                {
                    "model_version_id": row.id,
                    "kind": kind,
                    "actor": actor,
                    "body_json": json.dumps(body, default=str),
                    "files_json": files_json,
                    "created_at": now_ms(),
                },
            )
            record_id = int(result.scalar_one())
            for f in files:  # plots are blobs too: keep them out of the garbage collector's reach
                conn.execute(
                    insert(t.model_files),
                    {
                        "model_version_id": row.id,
                        "path": f"records/{record_id}/{f.path}",
                        "digest": f.digest,
                        "size": f.size,
                    },
                )
            if audit_action is not None:
                audit.append(
                    conn, actor, audit_action, "model_version", f"{name}/{version}", None, body, reason
                )
            return self._records(conn, name, t.model_records.c.id == record_id)[0]

    def list_model_records(
        self, name: str, version: int | None = None, kind: str | None = None
    ) -> list[ModelRecord]:
        with self._read() as conn:
            model = _model_row(conn, name)
            cond = _V.model_id == model.id
            if version is not None:
                cond = cond & (_V.version == version)
            if kind is not None:
                cond = cond & (t.model_records.c.kind == kind)
            return self._records(conn, name, cond)

    def _records(self, conn: Connection, name: str, cond: Any) -> list[ModelRecord]:
        r = t.model_records.c
        rows = conn.execute(
            select(t.model_records, _V.version)
            .join(t.model_versions, _V.id == r.model_version_id)
            .where(cond)
            .order_by(r.id)
        ).all()
        return [
            ModelRecord(
                id=x.id,
                name=name,
                version=x.version,
                kind=x.kind,
                actor=x.actor,
                body=json.loads(x.body_json),
                created_at=x.created_at,
                files=[Artifact(**f) for f in json.loads(x.files_json)],
            )
            for x in rows
        ]


def _annotated(name: str, version: int | None) -> tuple[str, str]:
    """The audit object (type, id) of an annotation change."""
    return ("model", name) if version is None else ("model_version", f"{name}/{version}")


MAX_TAG_KEY = 250
MAX_TAG_VALUE = 100_000


def insert_version(
    conn: Connection, model_id: int, spec: ModelVersionCreate, number: int, created_at: int
) -> Any:
    """Insert version ``number`` of the model: its row, its files and its tags (the card's tags);
    the new row. Numbering, lineage and the audit entry are the caller's."""
    conn.execute(
        insert(t.model_versions),
        {
            "model_id": model_id,
            "version": number,
            "digest": spec.digest,
            "flavor": spec.flavor,
            "run_id": spec.run_id,
            "signature_json": json.dumps(spec.signature),
            "metadata_json": json.dumps(spec.metadata, default=str),
            "description": spec.description,
            "created_by": spec.created_by,
            "created_at": created_at,
        },
    )
    row = conn.execute(select(t.model_versions).where(_V.model_id == model_id, _V.version == number)).one()
    conn.execute(
        insert(t.model_files),
        [
            {"model_version_id": row.id, "path": f.path, "digest": f.digest, "size": f.size}
            for f in spec.files
        ],
    )
    card_tags = spec.metadata.get("tags") or {}
    if card_tags:
        for key, value in card_tags.items():
            check_tag(str(key), str(value))
        conn.execute(
            insert(t.model_version_tags),
            [{"model_version_id": row.id, "key": str(k), "value": str(v)} for k, v in card_tags.items()],
        )
    return row


def check_tag(key: str, value: str) -> None:
    """A registry tag: a key of 1-250 characters and a value of at most 100,000 (MLflow's limits)."""
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_TAG_KEY:
        raise InvalidInput(f"Tag key {key!r} is not valid: use 1 to {MAX_TAG_KEY} characters")
    if not isinstance(value, str) or len(value) > MAX_TAG_VALUE:
        size = len(value) if isinstance(value, str) else type(value).__name__
        raise InvalidInput(
            f"The value of tag {key!r} is not a string of at most {MAX_TAG_VALUE:,} characters ({size})"
        )


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$", name):
        raise InvalidInput(
            f"Model name {name!r} is not valid: use letters, digits, '_', '-' or '.', "
            "starting with a letter or digit (e.g. churn or flights-delay)"
        )


def iter_model_digests(conn: Connection, digests: Sequence[str]) -> Iterator[str]:
    """The digests among ``digests`` that model files or evaluation plots still use."""
    c = t.model_files.c
    yield from conn.execute(select(c.digest).where(c.digest.in_(list(digests))).distinct()).scalars()
