"""Records made by another tool, written with their own times and version numbers (``ImportsRecords``).

``shipyard import mlflow`` writes through these. Each creates what is missing and returns what
exists unchanged (``created=False``), so an import that was killed can simply run again. A creation
is audited in its own transaction as ``experiment.import``, ``model.import``,
``model_version.import`` or ``logged_model.import`` with the source's id (``origin``) in the entry's
``after``: the mapping from the source's ids to Shipyard's is kept in the hash chain.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy import exc as sa_exc

from shipyard.entities import (
    Experiment,
    LoggedModel,
    LoggedModelStatus,
    ModelVersion,
    ModelVersionCreate,
    RegisteredModel,
)
from shipyard.errors import InvalidInput, NotFound, RunNotFound
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

    def get_logged_model(self, model_id: str, *, allow_deleted: bool = False) -> LoggedModel:
        raise NotImplementedError  # LoggedModelsMixin's (before this one in SqlStore's bases)

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

    def import_logged_model(
        self, model: LoggedModel, actor: str, origin: dict[str, Any]
    ) -> tuple[LoggedModel, bool]:
        """MLflow 3's logged model as it was logged elsewhere (its id, times, status, step, params,
        tags, metric points), of its run ``model.run_id`` and in that run's experiment, written in
        one transaction; the model of that id when it exists. Its files are the run's artifacts
        under ``model.artifact_path`` (recorded by the caller).

        Example:
            >>> found, created = store.import_logged_model(model, "ann", {"id": model.id})
        """
        check_key("Logged model name", model.name)
        if model.model_type:
            check_key("Logged model type", model.model_type)
        for key, value in [*model.params.items(), *model.tags.items()]:
            check_key("Logged model param or tag key", key)
            check_text(f"Logged model param or tag '{key}'", value)
        with contextlib.suppress(NotFound):
            return self.get_logged_model(model.id, allow_deleted=True), False
        try:
            with self._write() as conn:
                self._insert_logged_model(conn, model, actor, origin)
        except sa_exc.IntegrityError:  # written by another import meanwhile
            pass
        return self.get_logged_model(model.id, allow_deleted=True), True

    @staticmethod
    def _insert_logged_model(
        conn: Connection, model: LoggedModel, actor: str, origin: dict[str, Any]
    ) -> None:
        runs = t.runs.c
        run = conn.execute(select(runs.experiment_id).where(runs.id == model.run_id)).first()
        if run is None:
            raise RunNotFound(f"Run '{model.run_id}' of logged model '{model.id}' is not in this store")
        conn.execute(
            insert(t.logged_models),
            {
                "id": model.id,
                "experiment_id": run.experiment_id,
                "run_id": model.run_id,
                "name": model.name,
                "model_type": model.model_type,
                "status": LoggedModelStatus(model.status).value,
                "step": model.step,
                "deleted": model.deleted,
                "created_at": model.created_at,
                "updated_at": model.updated_at,
            },
        )
        for table, pairs in ((t.logged_model_params, model.params), (t.logged_model_tags, model.tags)):
            if pairs:
                conn.execute(
                    insert(table), [{"model_id": model.id, "key": k, "value": v} for k, v in pairs.items()]
                )
        points = {
            (p.key, p.step, p.timestamp, p.run_id): {
                "model_id": model.id,
                "key": check_key("Metric key", p.key),
                "step": int(p.step),
                "timestamp": int(p.timestamp),
                "run_id": p.run_id,
                "value": None if math.isnan(p.value) else float(p.value),
                "dataset_name": p.dataset_name,
                "dataset_digest": p.dataset_digest,
            }
            for p in model.metrics
        }
        if points:
            conn.execute(insert(t.logged_model_metrics), list(points.values()))
        after = {"run_id": model.run_id, "name": model.name, "created_at": model.created_at, "origin": origin}
        audit.append(conn, actor, "logged_model.import", "logged_model", model.id, None, after, "")
