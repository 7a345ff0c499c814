"""Deployments in the SQL store: versioned specs, each save audited in the same transaction."""

from __future__ import annotations

import contextlib
import re
from typing import Any

import blake3
from sqlalchemy import Connection, func, insert, select
from sqlalchemy import exc as sa_exc

from shipyard.entities import DeploymentRecord, now_ms
from shipyard.errors import InvalidInput, InvalidState, NotFound
from shipyard.store.sql import audit
from shipyard.store.sql import schema as t

__all__ = ["DeploymentsMixin"]

_D = t.deployments.c
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _record(row: Any) -> DeploymentRecord:
    return DeploymentRecord(row.name, row.version, row.spec_yaml, row.digest, row.created_by, row.created_at)


class DeploymentsMixin:
    """The deployment methods of ``SqlStore`` (mixed in; uses its transaction helpers)."""

    def _write(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def _read(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def save_deployment(self, name: str, spec_yaml: str, actor: str, reason: str = "") -> DeploymentRecord:
        """Record version N+1 of deployment ``name``; the same spec as the latest returns the latest."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidInput(
                f"Deployment name {name!r} is not valid: letters, digits, '_', '-' or '.', at most 64"
            )
        if not spec_yaml.strip():
            raise InvalidInput("A deployment needs a spec (YAML with name: and variants:)")
        digest = blake3.blake3(spec_yaml.encode()).hexdigest()
        for _ in range(3):
            try:
                with self._write() as conn:
                    return self._save(conn, name, spec_yaml, digest, actor, reason)
            except sa_exc.IntegrityError:  # a concurrent save took the number: try again
                continue
        raise InvalidState(f"Could not allocate a version number for deployment '{name}'; retry")

    def _save(
        self, conn: Connection, name: str, spec_yaml: str, digest: str, actor: str, reason: str
    ) -> DeploymentRecord:
        latest = conn.execute(
            select(t.deployments).where(_D.name == name).order_by(_D.version.desc()).limit(1)
        ).first()
        if latest is not None and latest.digest == digest:
            return _record(latest)
        number = (latest.version if latest is not None else 0) + 1
        row = {
            "name": name,
            "version": number,
            "spec_yaml": spec_yaml,
            "digest": digest,
            "created_by": actor,
            "created_at": now_ms(),
        }
        conn.execute(insert(t.deployments), row)
        before = None if latest is None else {"version": latest.version, "spec": latest.spec_yaml}
        audit.append(
            conn,
            actor,
            "deployment.save",
            "deployment",
            name,
            before,
            {"version": number, "spec": spec_yaml},
            reason,
        )
        return DeploymentRecord(**row)  # type: ignore[arg-type]

    def get_deployment(self, name: str, ref: str | int = "latest") -> DeploymentRecord:
        """``ref``: ``latest`` or a version number (``3`` or ``v3``)."""
        text = str(ref).strip().lower()
        stmt = select(t.deployments).where(_D.name == name)
        if text in ("", "latest"):
            stmt = stmt.order_by(_D.version.desc()).limit(1)
        elif text.isascii() and text.lstrip("v").isdigit():
            stmt = stmt.where(_D.version == int(text.lstrip("v")))
        else:
            raise InvalidInput(
                f"Deployment reference '{name}@{ref}' is not understood; use latest or a number"
            )
        with self._read() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            raise NotFound(
                f"Deployment '{name}' (version {ref}) not found (list them with: shipyard deployments ls)"
            )
        return _record(row)

    def list_deployments(self, name: str | None = None) -> list[DeploymentRecord]:
        """The latest version of every deployment, or every version of ``name``."""
        with self._read() as conn:
            if name is not None:
                rows = conn.execute(select(t.deployments).where(_D.name == name).order_by(_D.version)).all()
            else:
                latest = select(_D.name, func.max(_D.version).label("v")).group_by(_D.name).subquery()
                rows = conn.execute(
                    select(t.deployments)
                    .join(latest, (latest.c.name == _D.name) & (latest.c.v == _D.version))
                    .order_by(_D.name)
                ).all()
        return [_record(r) for r in rows]
