"""Records made by another tool, written with their own times and version numbers (``ImportsRecords``).

``shipyard import mlflow`` writes through these. Each creates what is missing and returns what
exists unchanged (``created=False``), so an import that was killed can simply run again. A creation
is audited in its own transaction as ``experiment.import``, ``model.import`` or
``model_version.import`` with the source's id (``origin``) in the entry's ``after``: the mapping from
the source's ids to Shipyard's is kept in the hash chain.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy import exc as sa_exc

from shipyard.entities import Experiment, ModelVersion, ModelVersionCreate, RegisteredModel
from shipyard.errors import InvalidInput
from shipyard.names import check_key, check_name, check_text
from shipyard.store.sql import audit
from shipyard.store.sql import schema as t
from shipyard.store.sql.models import (
    _check_name,
    _model_row,
    _registered,
    _version,
    check_tag,
    insert_version,
)

__all__ = ["ImportsMixin"]

_E = t.experiments.c
_M = t.registered_models.c
_V = t.model_versions.c


class ImportsMixin:
    """The ``ImportsRecords`` methods of ``SqlStore`` (mixed in; uses its transaction helpers)."""

    def _write(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def _link_datasets(self, conn: Connection, version_id: int, spec: ModelVersionCreate) -> None:
        raise NotImplementedError

    @staticmethod
    def _experiment(row: Any) -> Experiment:
        raise NotImplementedError

    def import_experiment(
        self,
        name: str,
        description: str,
        created_at: int,
        actor: str,
        origin: dict[str, Any],
        *,
        tags: Mapping[str, str] | None = None,
    ) -> tuple[Experiment, bool]:
        """The experiment ``name`` as it was created elsewhere, with its tags (found by name, deleted
        or not, when it exists).

        Example:
            >>> exp, created = store.import_experiment("churn", "", 1700000000000, "ann", {"id": "3"})
        """
        check_name("Experiment name", name, at_sign=True)
        for key, value in (tags or {}).items():
            check_key("Experiment tag key", key)
            check_text(f"Experiment tag '{key}'", value)
        try:
            with self._write() as conn:
                row = conn.execute(select(t.experiments).where(_E.name == name)).first()
                if row is not None:
                    return self._experiment(row), False
                new_id = conn.execute(
                    insert(t.experiments).values(name=name, description=description, created_at=created_at)
                ).inserted_primary_key
                assert new_id is not None
                exp_id = int(new_id[0])
                if tags:
                    rows = [{"experiment_id": exp_id, "key": k, "value": v} for k, v in tags.items()]
                    conn.execute(insert(t.experiment_tags), rows)
                after = {"id": exp_id, "name": name, "created_at": created_at, "origin": origin}
                audit.append(conn, actor, "experiment.import", "experiment", name, None, after, "")
                row = conn.execute(select(t.experiments).where(_E.id == exp_id)).one()
                return self._experiment(row), True
        except sa_exc.IntegrityError:  # created by someone else meanwhile: it exists, as asked
            with self._write() as conn:
                row = conn.execute(select(t.experiments).where(_E.name == name)).one()
                return self._experiment(row), False

    def import_registered_model(
        self,
        name: str,
        description: str,
        created_by: str,
        created_at: int,
        updated_at: int,
        actor: str,
        origin: dict[str, Any],
        *,
        tags: Mapping[str, str] | None = None,
    ) -> tuple[RegisteredModel, bool]:
        """The registered model ``name`` with its own creation and update times and its tags (found
        when it exists).

        Example:
            >>> model, created = store.import_registered_model("churn", "", "ann", 1, 2, "bob", {})
        """
        _check_name(name)
        for key, value in (tags or {}).items():
            check_tag(key, value)
        with self._write() as conn:
            row = conn.execute(select(t.registered_models).where(_M.name == name)).first()
            if row is not None:
                return _registered(conn, row), False
            conn.execute(
                insert(t.registered_models),
                {
                    "name": name,
                    "description": description,
                    "created_by": created_by,
                    "created_at": created_at,
                    "updated_at": updated_at,
                },
            )
            row = _model_row(conn, name)
            if tags:
                conn.execute(
                    insert(t.model_tags),
                    [{"model_id": row.id, "key": k, "value": v} for k, v in tags.items()],
                )
            after = {"name": name, "created_at": created_at, "origin": origin}
            audit.append(conn, actor, "model.import", "model", name, None, after, "")
            return _registered(conn, row), True

    def import_model_version(
        self, spec: ModelVersionCreate, version: int, created_at: int, actor: str, origin: dict[str, Any]
    ) -> tuple[ModelVersion, bool]:
        """Version ``version`` of ``spec.name`` as given, or the version of that number that exists.

        Unlike ``create_model_version`` the number is the caller's (the source's own) and the same
        files under another number are refused by the store's one-version-per-content rule
        (``InvalidInput``), never merged silently.

        Example:
            >>> mv, created = store.import_model_version(spec, 3, 1700000000000, "ann", {"version": "3"})
        """
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise InvalidInput(f"Model version number must be a positive integer, got {version!r}")
        if not spec.files:
            raise InvalidInput("A model version needs at least one file")
        try:
            with self._write() as conn:
                return self._import_version(conn, spec, version, created_at, actor, origin)
        except sa_exc.IntegrityError as exc:
            with self._write() as conn:  # the number was taken meanwhile: return what holds it
                model = _model_row(conn, spec.name)
                row = conn.execute(
                    select(t.model_versions).where(_V.model_id == model.id, _V.version == version)
                ).first()
                if row is not None:
                    return _version(conn, row, spec.name), False
            raise InvalidInput(
                f"Cannot import version {version} of model '{spec.name}': another version of it has the "
                f"same files (digest {spec.digest[:12]}…); Shipyard keeps one version per content"
            ) from exc

    def _import_version(
        self,
        conn: Connection,
        spec: ModelVersionCreate,
        version: int,
        created_at: int,
        actor: str,
        origin: dict[str, Any],
    ) -> tuple[ModelVersion, bool]:
        model = _model_row(conn, spec.name)
        row = conn.execute(
            select(t.model_versions).where(_V.model_id == model.id, _V.version == version)
        ).first()
        if row is not None:
            return _version(conn, row, spec.name), False
        row = insert_version(conn, model.id, spec, version, created_at)
        self._link_datasets(conn, row.id, spec)
        after = {"digest": spec.digest, "run_id": spec.run_id, "created_at": created_at, "origin": origin}
        audit.append(
            conn, actor, "model_version.import", "model_version", f"{spec.name}/{version}", None, after, ""
        )
        return _version(conn, row, spec.name), True
