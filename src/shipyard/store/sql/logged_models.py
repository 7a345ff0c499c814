"""MLflow 3's logged models in the SQL store (``KeepsLoggedModels``).

A logged model is a row of ``logged_models`` tied to the live run that logged it, with its params,
tags and metric points in three small tables. Its files are not here: they are the run's
artifacts under ``models/<id>`` (``artifacts``), so they share the run's content-addressed blobs,
show in its artifact listings and go when a purge removes the run (the rows cascade with it).
"""

from __future__ import annotations

import contextlib
import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, select, update

from shipyard.entities import LoggedModel, LoggedModelMetric, LoggedModelStatus, now_ms
from shipyard.errors import InvalidInput, InvalidState, NotFound, RunNotFound
from shipyard.names import check_key, check_text
from shipyard.store.sql import audit
from shipyard.store.sql import schema as t

__all__ = ["LoggedModelsMixin"]

_M = t.logged_models.c
_PARAMS = t.logged_model_params.c
_TAGS = t.logged_model_tags.c
_METRICS = t.logged_model_metrics.c
_ID_CHUNK = 500


class LoggedModelsMixin:
    """The logged-model methods of ``SqlStore`` (mixed in; uses its transaction helpers)."""

    _where: str

    def _write(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def _read(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def _insert(self, table: Any) -> Any:
        raise NotImplementedError

    # -- reading --------------------------------------------------------------------------------
    def _logged_rows(self, conn: Connection, rows: Sequence[Any]) -> list[LoggedModel]:
        """Models of ``rows`` with their params, tags and metrics (three reads per 500 models)."""
        ids = [r.id for r in rows]
        params: dict[str, dict[str, str]] = {}
        tags: dict[str, dict[str, str]] = {}
        metrics: dict[str, list[LoggedModelMetric]] = {}
        for i in range(0, len(ids), _ID_CHUNK):
            chunk = ids[i : i + _ID_CHUNK]
            for model_id, key, value in conn.execute(
                select(_PARAMS.model_id, _PARAMS.key, _PARAMS.value).where(_PARAMS.model_id.in_(chunk))
            ):
                params.setdefault(model_id, {})[key] = value
            for model_id, key, value in conn.execute(
                select(_TAGS.model_id, _TAGS.key, _TAGS.value).where(_TAGS.model_id.in_(chunk))
            ):
                tags.setdefault(model_id, {})[key] = value
            points = conn.execute(
                select(t.logged_model_metrics)
                .where(_METRICS.model_id.in_(chunk))
                .order_by(_METRICS.key, _METRICS.step, _METRICS.timestamp, _METRICS.run_id)
            )
            for p in points:
                metrics.setdefault(p.model_id, []).append(
                    LoggedModelMetric(
                        p.model_id,
                        p.key,
                        math.nan if p.value is None else p.value,
                        p.step,
                        p.timestamp,
                        p.run_id,
                        p.dataset_name,
                        p.dataset_digest,
                    )
                )
        return [
            LoggedModel(
                id=r.id,
                experiment_id=r.experiment_id,
                run_id=r.run_id,
                name=r.name,
                status=LoggedModelStatus(r.status),
                created_at=r.created_at,
                updated_at=r.updated_at,
                model_type=r.model_type,
                step=r.step,
                deleted=bool(r.deleted),
                params=params.get(r.id, {}),
                tags=tags.get(r.id, {}),
                metrics=tuple(metrics.get(r.id, ())),
            )
            for r in rows
        ]

    def _logged_row(self, conn: Connection, model_id: str, allow_deleted: bool = False) -> Any:
        row = conn.execute(select(t.logged_models).where(_M.id == model_id)).first()
        if row is None or (row.deleted and not allow_deleted):
            gone = " (it is deleted)" if row is not None else ""
            raise NotFound(f"Logged model '{model_id}' not found in {self._where}{gone}")
        return row

    def get_logged_model(self, model_id: str, *, allow_deleted: bool = False) -> LoggedModel:
        """The model, deleted ones too with ``allow_deleted``.

        Example:
            >>> store.get_logged_model(model.id).name  # doctest: +SKIP
            'model'
        """
        with self._read() as conn:
            return self._logged_rows(conn, [self._logged_row(conn, model_id, allow_deleted)])[0]

    def list_logged_models(
        self, experiment_ids: Sequence[int], *, name: str | None = None, run_id: str | None = None
    ) -> list[LoggedModel]:
        """The models (not deleted) of these experiments, newest first, of one name and/or run.

        Example:
            >>> [m.name for m in store.list_logged_models([3], name="model")]  # doctest: +SKIP
            ['model']
        """
        ids = list(dict.fromkeys(int(i) for i in experiment_ids))
        if not ids:
            return []
        stmt = select(t.logged_models).where(_M.experiment_id.in_(ids), _M.deleted.is_(False))
        if name is not None:
            stmt = stmt.where(_M.name == name)
        if run_id is not None:
            stmt = stmt.where(_M.run_id == run_id)
        with self._read() as conn:
            rows = conn.execute(stmt.order_by(_M.created_at.desc(), _M.id)).all()
            return self._logged_rows(conn, rows)

    # -- writing --------------------------------------------------------------------------------
    def create_logged_model(
        self,
        run_id: str,
        name: str,
        *,
        model_type: str = "",
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> LoggedModel:
        """A new ``pending`` model of the live run ``run_id``, in the run's experiment.

        Example:
            >>> store.create_logged_model(run.id, "model").status  # doctest: +SKIP
            <LoggedModelStatus.PENDING: 'pending'>
        """
        check_key("Logged model name", name)
        if model_type:
            check_key("Logged model type", model_type)
        model_id = f"m-{uuid.uuid4().hex}"
        with self._write() as conn:
            runs = t.runs.c
            run = conn.execute(select(runs.experiment_id, runs.deleted).where(runs.id == run_id)).first()
            if run is None:
                raise RunNotFound(
                    f"Run '{run_id}' not found in {self._where} (list runs with: shipyard runs ls)"
                )
            if run.deleted:
                raise InvalidState(
                    f"Run '{run_id}' is deleted; restore it before logging a model to it "
                    f"(shipyard runs restore {run_id})"
                )
            now = now_ms()
            row = {
                "id": model_id,
                "experiment_id": run.experiment_id,
                "run_id": run_id,
                "name": name,
                "model_type": model_type,
                "status": LoggedModelStatus.PENDING.value,
                "created_at": now,
                "updated_at": now,
            }
            conn.execute(t.logged_models.insert(), row)
            self._write_model_params(conn, model_id, params or {})
            self._write_model_tags(conn, model_id, tags or {})
        return self.get_logged_model(model_id)

    def update_logged_model(
        self, model_id: str, *, status: LoggedModelStatus | None = None, step: int | None = None
    ) -> LoggedModel:
        """Set the model's status (MLflow's finalize) and/or the run's step it was logged at."""
        changes: dict[str, Any] = {"updated_at": now_ms()}
        if status is not None:
            changes["status"] = LoggedModelStatus(status).value
        if step is not None:
            changes["step"] = int(step)
        with self._write() as conn:
            self._logged_row(conn, model_id)
            conn.execute(update(t.logged_models).where(_M.id == model_id).values(**changes))
        return self.get_logged_model(model_id)

    def delete_logged_model(self, model_id: str, actor: str, reason: str = "") -> None:
        """Mark the model deleted (its files stay the run's artifacts); audited
        ``logged_model.delete``."""
        with self._write() as conn:
            row = self._logged_row(conn, model_id)
            conn.execute(
                update(t.logged_models).where(_M.id == model_id).values(deleted=True, updated_at=now_ms())
            )
            audit.append(
                conn,
                actor,
                "logged_model.delete",
                "logged_model",
                model_id,
                {"deleted": False, "run_id": row.run_id, "name": row.name},
                {"deleted": True},
                reason,
            )

    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        with self._write() as conn:
            self._logged_row(conn, model_id)
            self._write_model_tags(conn, model_id, tags)
            self._touch_model(conn, model_id)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        with self._write() as conn:
            self._logged_row(conn, model_id)
            gone = conn.execute(
                delete(t.logged_model_tags).where(_TAGS.model_id == model_id, _TAGS.key == key)
            ).rowcount
            if not gone:
                raise NotFound(f"Logged model '{model_id}' has no tag '{key}'")
            self._touch_model(conn, model_id)

    def log_logged_model_params(self, model_id: str, params: Mapping[str, str]) -> None:
        with self._write() as conn:
            self._logged_row(conn, model_id)
            self._write_model_params(conn, model_id, params)
            self._touch_model(conn, model_id)

    def log_logged_model_metrics(self, metrics: Sequence[LoggedModelMetric]) -> None:
        """Record points on their models (one transaction); a point with the same model, key,
        step, timestamp and run replaces the earlier one."""
        if not metrics:
            return
        rows: dict[tuple[str, str, int, int, str], dict[str, Any]] = {}
        for p in metrics:
            check_key("Metric key", p.key)
            value = None if math.isnan(p.value) else float(p.value)
            rows[(p.model_id, p.key, p.step, p.timestamp, p.run_id)] = {
                "model_id": p.model_id,
                "key": p.key,
                "step": int(p.step),
                "timestamp": int(p.timestamp),
                "run_id": p.run_id,
                "value": value,
                "dataset_name": p.dataset_name,
                "dataset_digest": p.dataset_digest,
            }
        upsert = self._insert(t.logged_model_metrics)
        upsert = upsert.on_conflict_do_update(
            index_elements=["model_id", "key", "step", "timestamp", "run_id"],
            set_={c: upsert.excluded[c] for c in ("value", "dataset_name", "dataset_digest")},
        )
        with self._write() as conn:
            for model_id in dict.fromkeys(p.model_id for p in metrics):
                self._logged_row(conn, model_id)
                self._touch_model(conn, model_id)
            conn.execute(upsert, list(rows.values()))

    # -- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _touch_model(conn: Connection, model_id: str) -> None:
        conn.execute(update(t.logged_models).where(_M.id == model_id).values(updated_at=now_ms()))

    def _write_model_tags(self, conn: Connection, model_id: str, tags: Mapping[str, str]) -> None:
        if not tags:
            return
        rows = [
            {
                "model_id": model_id,
                "key": check_key("Logged model tag key", k),
                "value": check_text(f"Tag '{k}'", v),
            }
            for k, v in tags.items()
        ]
        upsert = self._insert(t.logged_model_tags)
        conn.execute(
            upsert.on_conflict_do_update(
                index_elements=["model_id", "key"], set_={"value": upsert.excluded.value}
            ),
            rows,
        )

    @staticmethod
    def _write_model_params(conn: Connection, model_id: str, params: Mapping[str, str]) -> None:
        """Add params; a key keeps its first value (a different one is refused), as a run's does."""
        if not params:
            return
        for key, value in params.items():
            check_key("Logged model param key", key)
            check_text(f"Param '{key}'", value)
        existing = dict(
            conn.execute(
                select(_PARAMS.key, _PARAMS.value).where(
                    _PARAMS.model_id == model_id, _PARAMS.key.in_(list(params))
                )
            ).all()
        )
        for key, value in params.items():
            if key in existing and existing[key] != value:
                raise InvalidInput(
                    f"Param '{key}' of logged model '{model_id}' is already {existing[key]!r}; cannot "
                    f"change it to {value!r}. Params are immutable; use a tag for values that change."
                )
        rows = [{"model_id": model_id, "key": k, "value": v} for k, v in params.items() if k not in existing]
        if rows:
            conn.execute(t.logged_model_params.insert(), rows)
