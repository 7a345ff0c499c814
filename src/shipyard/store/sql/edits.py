"""Edits of experiments and runs in the SQL store (``EditsExperiments``, ``EditsRuns``): rename,
delete and restore an experiment, its tags, a run's name and the deletion of a run's tag.

Deleting an experiment marks it and its live runs deleted in one transaction; restoring brings
back it and every deleted run in it (MLflow's semantics: MLflow's API is what calls these). Run
deletions are audited one entry per run as ``delete_runs`` does, the experiment's change as
``experiment.delete`` / ``experiment.restore`` / ``experiment.update``.

Each store caches experiment name → id for its run creations; an edit here drops the entry in
this store. Another process (a second server worker, a local SDK) keeps its own cache until it
restarts: there a run created by the old name of a renamed experiment still lands in it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, delete, select, update

from shipyard.entities import MAX_KEY_LENGTH, Experiment, now_ms
from shipyard.errors import AlreadyExists, ExperimentNotFound, InvalidInput, InvalidState, NotFound
from shipyard.names import check_key, check_name, check_text
from shipyard.store.sql import audit
from shipyard.store.sql import schema as t

__all__ = ["EditsMixin"]

_E = t.experiments.c
_TAGS = t.experiment_tags.c
_RUN_TAGS = t.tags.c


class EditsMixin:
    """The edit methods of ``SqlStore`` (mixed in; uses its transaction helpers)."""

    _where: str
    _experiment_ids: dict[str, int]

    def _write(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def _read(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def _insert(self, table: Any) -> Any:
        raise NotImplementedError

    def _require_run(self, conn: Connection, run_id: str) -> Any:
        raise NotImplementedError

    def _mark_runs_deleted(
        self, conn: Connection, run_ids: Iterable[str], deleted: bool, actor: str, reason: str
    ) -> int:
        raise NotImplementedError

    @staticmethod
    def _experiment(row: Any) -> Experiment:
        raise NotImplementedError

    def get_experiment(self, experiment_id: int) -> Experiment:
        raise NotImplementedError

    # -- experiments --------------------------------------------------------------------------
    def _experiment_row(self, conn: Connection, experiment_id: int) -> Any:
        row = conn.execute(select(t.experiments).where(_E.id == experiment_id)).first()
        if row is None:
            raise ExperimentNotFound(
                f"Experiment {experiment_id} not found in {self._where} "
                "(list experiments with: shipyard experiments ls)"
            )
        return row

    def update_experiment(
        self, experiment_id: int, actor: str, *, name: str | None = None, description: str | None = None
    ) -> Experiment:
        """Rename the experiment and/or set its description; audited ``experiment.update``.

        Example:
            >>> store.update_experiment(3, "ann", name="churn-v2")  # doctest: +SKIP
        """
        if name is not None:
            check_name("Experiment name", name, at_sign=True)
        if description is not None:
            check_text("Experiment description", description)
        with self._write() as conn:
            row = self._experiment_row(conn, experiment_id)
            if row.deleted:
                raise InvalidState(
                    f"Experiment {experiment_id} ('{row.name}') is deleted; restore it before changing it"
                )
            changes: dict[str, Any] = {}
            if name is not None and name != row.name:
                if conn.execute(select(_E.id).where(_E.name == name)).first() is not None:
                    raise AlreadyExists(f"Experiment '{name}' already exists; choose another name")
                changes["name"] = name
            if description is not None and description != row.description:
                changes["description"] = description
            if not changes:
                return self._experiment(row)
            conn.execute(
                update(t.experiments).where(_E.id == experiment_id).values(**changes, updated_at=now_ms())
            )
            before = {k: getattr(row, k) for k in changes}
            audit.append(
                conn, actor, "experiment.update", "experiment", str(experiment_id), before, changes, ""
            )
        self._experiment_ids.pop(row.name, None)
        return self.get_experiment(experiment_id)

    def _set_experiment_deleted(
        self, experiment_id: int, deleted: bool, actor: str, reason: str
    ) -> Experiment:
        action = "experiment.delete" if deleted else "experiment.restore"
        with self._write() as conn:
            row = self._experiment_row(conn, experiment_id)
            if bool(row.deleted) == deleted:
                state = "deleted" if deleted else "active"
                raise InvalidState(f"Experiment {experiment_id} ('{row.name}') is already {state}")
            runs = t.runs.c
            ids = conn.execute(
                select(runs.id).where(runs.experiment_id == experiment_id, runs.deleted == (not deleted))
            ).scalars()
            self._mark_runs_deleted(conn, list(ids), deleted, actor, reason or action)
            conn.execute(
                update(t.experiments)
                .where(_E.id == experiment_id)
                .values(deleted=deleted, updated_at=now_ms())
            )
            audit.append(
                conn,
                actor,
                action,
                "experiment",
                str(experiment_id),
                {"deleted": not deleted},
                {"deleted": deleted},
                reason,
            )
        self._experiment_ids.pop(row.name, None)
        return self.get_experiment(experiment_id)

    def delete_experiment(self, experiment_id: int, actor: str, reason: str = "") -> Experiment:
        """Mark the experiment and its runs deleted (one transaction, audited).

        Example:
            >>> store.delete_experiment(3, "ann", "superseded").deleted  # doctest: +SKIP
            True
        """
        return self._set_experiment_deleted(experiment_id, True, actor, reason)

    def restore_experiment(self, experiment_id: int, actor: str, reason: str = "") -> Experiment:
        """Undo :meth:`delete_experiment`: the experiment and every deleted run in it are back."""
        return self._set_experiment_deleted(experiment_id, False, actor, reason)

    def list_deleted_experiments(self) -> list[Experiment]:
        with self._read() as conn:
            rows = conn.execute(select(t.experiments).where(_E.deleted.is_(True)).order_by(_E.id)).all()
        return [self._experiment(r) for r in rows]

    def experiment_tags(self, experiment_ids: Sequence[int]) -> dict[int, dict[str, str]]:
        ids = list(dict.fromkeys(int(i) for i in experiment_ids))
        out: dict[int, dict[str, str]] = {}
        with self._read() as conn:
            for i in range(0, len(ids), 500):
                stmt = select(_TAGS.experiment_id, _TAGS.key, _TAGS.value).where(
                    _TAGS.experiment_id.in_(ids[i : i + 500])
                )
                for exp_id, key, value in conn.execute(stmt):
                    out.setdefault(exp_id, {})[key] = value
        return out

    def set_experiment_tag(self, experiment_id: int, key: str, value: str) -> None:
        check_key("Experiment tag key", key)
        check_text(f"Experiment tag '{key}'", value)
        with self._write() as conn:
            row = self._experiment_row(conn, experiment_id)
            if row.deleted:
                raise InvalidState(
                    f"Experiment {experiment_id} ('{row.name}') is deleted; restore it to tag it"
                )
            upsert = self._insert(t.experiment_tags)
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=["experiment_id", "key"], set_={"value": upsert.excluded.value}
                ),
                {"experiment_id": experiment_id, "key": key, "value": value},
            )
            conn.execute(update(t.experiments).where(_E.id == experiment_id).values(updated_at=now_ms()))

    def delete_experiment_tag(self, experiment_id: int, key: str) -> None:
        with self._write() as conn:
            row = self._experiment_row(conn, experiment_id)
            if row.deleted:
                raise InvalidState(
                    f"Experiment {experiment_id} ('{row.name}') is deleted; restore it to untag it"
                )
            gone = conn.execute(
                delete(t.experiment_tags).where(_TAGS.experiment_id == experiment_id, _TAGS.key == key)
            ).rowcount
            if not gone:
                raise NotFound(f"Experiment {experiment_id} has no tag '{key}'")
            conn.execute(update(t.experiments).where(_E.id == experiment_id).values(updated_at=now_ms()))

    # -- runs ---------------------------------------------------------------------------------
    def _live_run(self, conn: Connection, run_id: str, doing: str) -> None:
        if self._require_run(conn, run_id).deleted:
            raise InvalidState(
                f"Run '{run_id}' is deleted; restore it before {doing} (shipyard runs restore {run_id})"
            )

    def rename_run(self, run_id: str, name: str) -> None:
        """Give a live run a new name.

        Example:
            >>> store.rename_run(run.id, "baseline")  # doctest: +SKIP
        """
        check_text("Run name", name)
        if len(name) > MAX_KEY_LENGTH:
            raise InvalidInput(f"Run name is {len(name)} characters; the limit is {MAX_KEY_LENGTH}")
        with self._write() as conn:
            self._live_run(conn, run_id, "renaming it")
            conn.execute(update(t.runs).where(t.runs.c.id == run_id).values(name=name))

    def delete_run_tag(self, run_id: str, key: str) -> None:
        with self._write() as conn:
            self._live_run(conn, run_id, "deleting its tags")
            gone = conn.execute(
                delete(t.tags).where(_RUN_TAGS.run_id == run_id, _RUN_TAGS.key == key)
            ).rowcount
            if not gone:
                raise NotFound(f"Run '{run_id}' has no tag '{key}'")
