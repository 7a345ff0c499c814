"""``SqlStore``: the ``Store`` protocol on SQLAlchemy Core (SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, and_, bindparam, delete, false, func, insert, or_, select, text, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import sqlite

from shipyard.config import DEFAULT_STATEMENT_TIMEOUT, Settings, redact_uri
from shipyard.entities import (
    Artifact,
    AuditEntry,
    ContractVersion,
    DatasetUse,
    DatasetVersion,
    DatasetVersionCreate,
    Experiment,
    LogBatch,
    MetricHistory,
    Run,
    RunCreate,
    RunPage,
    RunStatus,
    RunView,
    clean_artifact_path,
    now_ms,
)
from shipyard.errors import (
    AlreadyExists,
    ExperimentNotFound,
    InvalidInput,
    InvalidState,
    RunNotFound,
    StoreUnavailable,
)
from shipyard.names import check_key, check_name
from shipyard.store.sql import audit, datasets
from shipyard.store.sql import schema as t
from shipyard.store.sql.alerts import AlertsMixin
from shipyard.store.sql.auth import AuthMixin
from shipyard.store.sql.checkpoints import CheckpointsMixin
from shipyard.store.sql.codec import decode_chunk, encode_chunk, encode_point
from shipyard.store.sql.deployments import DeploymentsMixin
from shipyard.store.sql.edits import EditsMixin
from shipyard.store.sql.engine import make_engine, sqlite_path
from shipyard.store.sql.heartbeats import HeartbeatsMixin
from shipyard.store.sql.imports import ImportsMixin
from shipyard.store.sql.logged_models import LoggedModelsMixin
from shipyard.store.sql.migrate import current_revision, upgrade
from shipyard.store.sql.models import ModelsMixin, iter_model_digests
from shipyard.store.sql.monitoring import MonitoringMixin
from shipyard.store.sql.paths import check_path_conflicts
from shipyard.store.sql.schedules import SchedulesMixin
from shipyard.store.sql.search import SearchQuery, load_runs

__all__ = ["SqlStore"]

MAX_PARAM_LEN = 6000
COMPACT_TARGET_POINTS = 65_536


def _as_number(value: str) -> float | None:
    try:
        num = float(value)
    except ValueError:
        return None
    return num if math.isfinite(num) else None


def _check_key(kind: str, key: Any) -> str:
    return check_key(f"{kind} key", key)


_Columns = (
    tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]
    | tuple[list[int], list[int], list[float]]  # one point, as Python numbers (see _columns)
)


def _columns(batch: LogBatch) -> dict[str, _Columns]:
    """A batch's metric points as (steps, timestamps, values) arrays per key, in logging order."""
    parts: dict[str, list[tuple[Any, Any, Any]]] = {}
    if batch.metrics:
        keys, values, steps, stamps = zip(*batch.metrics, strict=True)
        rows: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            rows.setdefault(key, []).append(i)
        try:
            v = np.asarray(values, np.float64)
            s, ts = np.asarray(steps, np.int64), np.asarray(stamps, np.int64)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidInput(f"A metric point has a non-numeric value, step or timestamp: {exc}") from None
        if len(rows) == len(keys) and not batch.series:
            # One point per key (MLflow's log_batch of many keys): the same numbers as the general
            # path's arrays (converted above), as one-item lists: no numpy call per key.
            s_, ts_, v_ = s.tolist(), ts.tolist(), v.tolist()
            return {key: ([s_[i]], [ts_[i]], [v_[i]]) for i, key in enumerate(keys)}
        for key, idx in rows.items():
            parts.setdefault(key, []).append((s[idx], ts[idx], v[idx]))
    for series in batch.series:
        if len(series):
            parts.setdefault(series.key, []).append((series.steps, series.timestamps, series.values))
    out: dict[str, _Columns] = {}
    for key, chunks in parts.items():
        try:
            s = np.concatenate([np.asarray(c[0], np.int64) for c in chunks])
            ts = np.concatenate([np.asarray(c[1], np.int64) for c in chunks])
            v = np.concatenate([np.asarray(c[2], np.float64) for c in chunks])
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidInput(f"Metric '{key}' has a non-numeric value, step or timestamp: {exc}") from None
        if not len(s) == len(ts) == len(v):
            raise InvalidInput(f"Metric '{key}' has columns of different lengths")
        out[key] = (s, ts, v)
    return out


def _insert_for(dialect: str) -> Any:
    """The dialect's INSERT (with ON CONFLICT); PostgreSQL's dialect module loads only when used
    (importing it costs a SQLite user ~0.05 s at every start)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    return sqlite.insert


# _unnest_sql's array parameters, as psycopg's dialect renders them
_ARRAY_PARAM = re.compile(r"%\((w\d+_\w+)\)s")


def _unnest_sql(
    conn: Connection,
    statements: _Statements,
    parts: tuple[tuple[str, tuple[str, ...]], ...],
    with_run: bool = False,
) -> str:
    """The PostgreSQL SQL writing each part's rows from arrays, one array parameter per column
    (``INSERT … SELECT unnest(%(w0_key)s::VARCHAR[]), …``; upserts keep their ``ON CONFLICT``); the
    parts after the first as data-modifying ``WITH`` queries of the last. The text depends on the
    tables and columns only, never on the number of rows: compiled once, converted once by psycopg
    and prepared by PostgreSQL, where a multi-row ``VALUES`` is a new statement for every row count.

    ``with_run``: the run's own row first (``insert_run``, its columns as parameters), every part
    written only if that insert took (a run recorded before is left as it is), and the statement
    answers the number of runs inserted (0 or 1).
    """
    sql = statements.unnest_sql.get((parts, with_run))
    if sql is None:
        from sqlalchemy.dialects import postgresql  # only on PostgreSQL: a SQLite process never loads it

        pieces = []
        if with_run:
            run = statements.insert_run.compile(dialect=conn.dialect, column_keys=list(_RUN_COLUMNS))
            pieces.append(str(run))
        for j, (name, columns) in enumerate(parts):
            stmt = getattr(statements, name)
            table = stmt.table
            arrays = [
                func.unnest(bindparam(f"w{j}_{c}", type_=postgresql.ARRAY(table.c[c].type))) for c in columns
            ]
            rows = select(*arrays)
            if with_run:
                rows = rows.where(text("EXISTS (SELECT FROM run)"))
            pieces.append(str(stmt.from_select(list(columns), rows).compile(dialect=conn.dialect)))
        if with_run:
            names = ["run"] + [f"w{j}" for j in range(len(parts))]
            heads = ", ".join(f"{n} AS ({piece})" for n, piece in zip(names, pieces, strict=True))
            sql = f"WITH {heads} SELECT count(*) FROM run"
        else:
            heads = ", ".join(f"w{j} AS ({piece})" for j, piece in enumerate(pieces[:-1]))
            sql = f"WITH {heads} {pieces[-1]}" if heads else pieces[-1]
        # The arrays go in binary: psycopg's text form quotes each element through a regex (for a
        # log_batch of 500 keys, most of the request's CPU); the binary form packs them.
        sql = _ARRAY_PARAM.sub(r"%(\1)b", sql)
        statements.unnest_sql[(parts, with_run)] = sql
    return sql


def _unnest_values(parts: list[tuple[str, list[dict[str, Any]]]]) -> dict[str, list[Any]]:
    return {f"w{j}_{c}": [row[c] for row in rows] for j, (_, rows) in enumerate(parts) for c in rows[0]}


def _insert_rows(conn: Connection, statements: _Statements, name: str, rows: list[dict[str, Any]]) -> None:
    """Statement ``name`` (an INSERT or upsert) for every row: on PostgreSQL one statement whatever the
    number of rows (:func:`_unnest_sql`; an executemany costs several round trips), on SQLite an
    executemany (no round trips to save). Inside :func:`_rows_in_one_statement` the rows wait."""
    collected = conn.info.get(_COLLECT)
    if collected is not None:
        collected.append((name, rows))
        return
    stmt = getattr(statements, name)
    if conn.dialect.name != "postgresql" or len(rows) == 1:
        conn.execute(stmt, rows[0] if len(rows) == 1 else rows)
        return
    parts = [(name, rows)]
    conn.exec_driver_sql(_unnest_sql(conn, statements, ((name, tuple(rows[0])),)), _unnest_values(parts))


_COLLECT = "shipyard_collected_rows"


@contextlib.contextmanager
def _rows_in_one_statement(
    conn: Connection, statements: _Statements, run: dict[str, Any] | None = None
) -> Iterator[list[int]]:
    """Collect the rows :func:`_insert_rows` would write inside the block, then write them all with
    one statement on PostgreSQL (:func:`_unnest_sql`): a whole run's params, tags, metric chunks and
    latest values are one round trip.

    The parts must not touch the same rows (the caller merges, e.g. a record's tags); two parts for
    one table fall back to one statement each. Nothing is written if the block raises. On SQLite the
    rows are written as they come (no round trips to save).

    ``run`` (PostgreSQL only): a new run's row, inserted by the same statement, which then writes the
    parts only if the run was new; the list yielded holds, after the block, the number of runs
    inserted (0 or 1). One statement is atomic: this needs no transaction around it.
    """
    inserted: list[int] = []
    if conn.dialect.name != "postgresql":
        yield inserted
        return
    collected: list[tuple[str, list[dict[str, Any]]]] = []
    conn.info[_COLLECT] = collected
    try:
        yield inserted
    finally:
        conn.info.pop(_COLLECT, None)
    parts = [(name, rows) for name, rows in collected if rows]
    names = [name for name, _ in parts]
    if len(set(names)) < len(names):
        if run is not None:  # never so for a recorded run: its params and tags are merged first
            raise AssertionError("a run written in one statement has one part per table")
        for name, rows in parts:
            _insert_rows(conn, statements, name, rows)
        return
    shapes = tuple((name, tuple(rows[0])) for name, rows in parts)
    if run is not None:
        sql = _unnest_sql(conn, statements, shapes, with_run=True)
        inserted.append(int(conn.exec_driver_sql(sql, {**run, **_unnest_values(parts)}).scalar_one()))
    elif parts:
        conn.exec_driver_sql(_unnest_sql(conn, statements, shapes), _unnest_values(parts))


_RUN_COLUMNS = (
    "id",
    "experiment_id",
    "name",
    "status",
    "start_time",
    "end_time",
    "parent_run_id",
    "user",
    "source",
    "deleted",
)


def _run_row(spec: RunCreate, exp_id: int, status: RunStatus, end_time: int | None) -> dict[str, Any]:
    """A new run's row in ``runs`` (the columns :data:`_RUN_COLUMNS`)."""
    return {
        "id": spec.run_id,
        "experiment_id": exp_id,
        "name": spec.name,
        "status": status.value,
        "start_time": spec.start_time,
        "end_time": end_time,
        "parent_run_id": spec.parent_run_id,
        "user": spec.user,
        "source": spec.source,
        "deleted": False,
    }


@dataclass(frozen=True)
class _NewRun:
    """The state of a run inserted in the current transaction (what ``_require_run`` would read)."""

    id: str
    status: str = "running"
    deleted: bool = False


class _Statements:
    """Statements of the hot paths, built once per store: building SQLAlchemy constructs per call
    costs more than executing them on SQLite."""

    def __init__(self, dialect: str) -> None:
        self.unnest_sql: dict[tuple[tuple[tuple[str, tuple[str, ...]], ...], bool], str] = {}  # _unnest_sql
        ins = _insert_for(dialect)
        runs = t.runs.c
        self.run_state = select(runs.id, runs.status, runs.deleted).where(runs.id == bindparam("rid"))
        self.insert_run = ins(t.runs).on_conflict_do_nothing(index_elements=["id"]).returning(runs.id)
        self.insert_params = insert(t.params)
        self.existing_params = select(t.params.c.key, t.params.c.value).where(
            t.params.c.run_id == bindparam("rid"), t.params.c.key.in_(bindparam("keys", expanding=True))
        )
        tags = ins(t.tags)
        self.upsert_tags = tags.on_conflict_do_update(
            index_elements=["run_id", "key"],
            set_={"value": tags.excluded.value, "value_num": tags.excluded.value_num},
        )
        self.insert_chunks = insert(t.metric_chunks)
        latest = ins(t.latest_metrics)
        cur = t.latest_metrics.c
        newer = or_(
            latest.excluded.step > cur.step,
            and_(latest.excluded.step == cur.step, latest.excluded.timestamp >= cur.timestamp),
        )
        self.upsert_latest = latest.on_conflict_do_update(
            index_elements=["run_id", "key"],
            set_={
                "value": latest.excluded.value,
                "step": latest.excluded.step,
                "timestamp": latest.excluded.timestamp,
            },
            where=newer,
        )
        self.claim_batch = (
            ins(t.applied_batches).on_conflict_do_nothing().returning(t.applied_batches.c.batch_id)
        )
        self.set_status = update(t.runs).where(runs.id == bindparam("rid")).values(status=bindparam("st"))
        self.end_run = (
            update(t.runs)
            .where(runs.id == bindparam("rid"))
            .values(status=bindparam("st"), end_time=bindparam("et"))
        )
        chunks = t.metric_chunks.c
        self.fragmented_keys = (
            select(chunks.key)
            .where(chunks.run_id == bindparam("rid"))
            .group_by(chunks.key)
            .having(func.count() > 1)
        )
        arts = ins(t.artifacts)
        self.upsert_artifacts = arts.on_conflict_do_update(
            index_elements=["run_id", "path"],
            set_={
                "digest": arts.excluded.digest,
                "size": arts.excluded.size,
                "created_at": arts.excluded.created_at,
            },
        )
        self.experiment_id = select(t.experiments.c.id, t.experiments.c.deleted).where(
            t.experiments.c.name == bindparam("name")
        )
        self.insert_experiment = ins(t.experiments).on_conflict_do_nothing(index_elements=["name"])


class SqlStore(
    EditsMixin,
    LoggedModelsMixin,
    ModelsMixin,
    DeploymentsMixin,
    SchedulesMixin,
    MonitoringMixin,
    AlertsMixin,
    HeartbeatsMixin,
    CheckpointsMixin,
    AuthMixin,
    ImportsMixin,
):
    """Metadata store on SQLite (default) or PostgreSQL; migrates on open.

    Example:
        >>> store = SqlStore("sqlite:///:memory:")
        >>> store.create_experiment("churn").name
        'churn'
    """

    def __init__(self, uri: str, *, settings: Settings | None = None) -> None:
        self.uri = uri
        self._init_checkpoints(settings)  # audit checkpoints go outside the database (settings say where)
        if settings is not None:  # else the mixin's default (300 s)
            self.heartbeat_timeout_s = settings.run_heartbeat_timeout
        self._where = redact_uri(uri)  # what messages show: never a password
        timeout = settings.statement_timeout if settings is not None else DEFAULT_STATEMENT_TIMEOUT
        self._engine = make_engine(uri, timeout)
        self._dialect = self._engine.dialect.name
        # One-statement reads (a token check on every request) skip BEGIN and ROLLBACK on PostgreSQL:
        # under READ COMMITTED a single statement sees the same snapshot either way.
        self._autocommit = (
            self._engine.execution_options(isolation_level="AUTOCOMMIT")
            if self._dialect == "postgresql"
            else self._engine
        )
        self._s = _Statements(self._dialect)
        self._experiment_ids: dict[str, int] = {}  # experiments are never renamed or deleted
        try:
            upgrade(self._engine, uri, sqlite_path(uri))
        except sa_exc.DatabaseError as exc:  # unreachable server, not a database file, ...
            self._engine.dispose()
            raise StoreUnavailable(f"Cannot open the store {uri}: {exc.orig}") from exc
        except BaseException:
            self._engine.dispose()  # e.g. SchemaTooNew: do not leak pooled connections
            raise

    # -- plumbing -----------------------------------------------------------------------------
    def close(self) -> None:
        self._engine.dispose()

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self._engine.execution_options(immediate=True).begin() as conn:
                audit.take_head(conn)  # drop a mark that a failed transaction left on this connection
                yield conn
                head = audit.take_head(conn)  # the chain's head if this transaction appended
        except sa_exc.OperationalError as exc:
            raise StoreUnavailable(f"Store {self._where} failed a write: {exc.orig}") from exc
        self._anchor(head)  # committed: checkpoint it outside the database

    @contextlib.contextmanager
    def _write_at_once(self) -> Iterator[Connection]:
        """A connection for a write that is one statement (PostgreSQL: in autocommit, no BEGIN and
        COMMIT round trips; one statement is atomic). Not for writes that append to the audit log."""
        try:
            with self._autocommit.connect() as conn:
                yield conn
        except sa_exc.OperationalError as exc:
            raise StoreUnavailable(f"Store {self._where} failed a write: {exc.orig}") from exc

    @contextlib.contextmanager
    def _read(self, *, one_statement: bool = False) -> Iterator[Connection]:
        """A connection for reads; ``one_statement=True`` for a read of a single statement (no
        transaction around it on PostgreSQL: two round trips fewer)."""
        engine = self._autocommit if one_statement else self._engine
        try:
            with engine.connect() as conn:
                yield conn
        except sa_exc.OperationalError as exc:
            raise StoreUnavailable(f"Store {self._where} failed a read: {exc.orig}") from exc

    def _insert(self, table: Any) -> Any:
        return _insert_for(self._dialect)(table)

    def schema_version(self) -> str:
        with self._read() as conn:
            return current_revision(conn) or ""

    # -- experiments --------------------------------------------------------------------------
    @staticmethod
    def _experiment(row: Any) -> Experiment:
        return Experiment(
            id=row.id,
            name=row.name,
            created_at=row.created_at,
            description=row.description,
            deleted=bool(row.deleted),
            updated_at=row.updated_at,
        )

    def create_experiment(self, name: str, description: str = "") -> Experiment:
        check_name("Experiment name", name, at_sign=True)
        try:
            with self._write() as conn:
                new_id = conn.execute(
                    insert(t.experiments).values(name=name, description=description, created_at=now_ms())
                ).inserted_primary_key
        except sa_exc.IntegrityError:
            raise AlreadyExists(f"Experiment '{name}' already exists") from None
        assert new_id is not None
        return self.get_experiment(int(new_id[0]))

    def _get_or_create_experiment_id(self, conn: Connection, name: str) -> int:
        cached = self._experiment_ids.get(name)
        if cached is not None:
            return cached
        check_name("Experiment name", name, at_sign=True)
        conn.execute(self._s.insert_experiment, {"name": name, "description": "", "created_at": now_ms()})
        found = conn.execute(self._s.experiment_id, {"name": name}).one()
        if found.deleted:
            raise InvalidState(
                f"Experiment '{name}' is deleted in {self._where}; restore it (MLflow: "
                "restore_experiment) or log to another experiment"
            )
        return int(found.id)

    def get_experiment(self, experiment_id: int) -> Experiment:
        with self._read() as conn:
            row = conn.execute(select(t.experiments).where(t.experiments.c.id == experiment_id)).first()
        if row is None:
            raise ExperimentNotFound(
                f"Experiment {experiment_id} not found in {self._where} "
                "(list experiments with: shipyard experiments ls)"
            )
        return self._experiment(row)

    def get_experiment_by_name(self, name: str) -> Experiment:
        with self._read() as conn:
            row = conn.execute(select(t.experiments).where(t.experiments.c.name == name)).first()
        if row is None:
            raise ExperimentNotFound(
                f"Experiment '{name}' not found in {self._where} "
                "(list experiments with: shipyard experiments ls)"
            )
        return self._experiment(row)

    def list_experiments(self) -> list[Experiment]:
        with self._read() as conn:
            rows = conn.execute(
                select(t.experiments).where(t.experiments.c.deleted == false()).order_by(t.experiments.c.id)
            ).all()
        return [self._experiment(r) for r in rows]

    # -- runs ---------------------------------------------------------------------------------
    def create_run(self, spec: RunCreate) -> Run:
        try:
            with self._write() as conn:
                run = self._insert_run(conn, spec)
        except sa_exc.IntegrityError as exc:
            # On PostgreSQL a concurrent create of the same id (a retry racing its original) can win
            # between our check and insert: the run exists, which is what the caller asked for.
            with self._read() as conn:
                if conn.execute(select(t.runs.c.id).where(t.runs.c.id == spec.run_id)).first() is None:
                    raise InvalidInput(
                        f"Cannot create run '{spec.run_id}' in {self._where}: {exc.orig}"
                    ) from exc
            run = None
        if run is None:
            run = self.get_run(spec.run_id)
        # Cached only once committed: another thread must never reference an uncommitted experiment.
        self._experiment_ids[run.experiment_name] = run.experiment_id
        return run

    def _insert_run(
        self,
        conn: Connection,
        spec: RunCreate,
        status: RunStatus = RunStatus.RUNNING,
        end_time: int | None = None,
    ) -> Run | None:
        """Insert a new run; None when a run with this id exists already (create is idempotent)."""
        exp_id = self._get_or_create_experiment_id(conn, spec.experiment_name)
        if spec.parent_run_id is not None:
            self._require_run(conn, spec.parent_run_id)
        row = _run_row(spec, exp_id, status, end_time)
        if conn.execute(self._s.insert_run, row).first() is None:
            return None
        self._write_params(conn, spec.run_id, spec.params, new_run=True)
        self._write_tags(conn, spec.run_id, spec.tags)
        return Run(
            id=spec.run_id,
            experiment_id=exp_id,
            experiment_name=spec.experiment_name,
            name=spec.name,
            status=status,
            start_time=spec.start_time,
            end_time=end_time,
            parent_run_id=spec.parent_run_id,
            user=spec.user,
            source=spec.source,
            params=dict(spec.params),
            tags=dict(spec.tags),
        )

    def _require_run(self, conn: Connection, run_id: str) -> Any:
        row = conn.execute(self._s.run_state, {"rid": run_id}).first()
        if row is None:
            raise RunNotFound(f"Run '{run_id}' not found in {self._where} (list runs with: shipyard runs ls)")
        return row

    def get_run(self, run_id: str) -> Run:
        self._expire_lazily()  # a run whose process was killed reads as killed
        with self._read() as conn:
            runs = load_runs(conn, [run_id], None)
        if not runs:
            raise RunNotFound(f"Run '{run_id}' not found in {self._where} (list runs with: shipyard runs ls)")
        return runs[0]

    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus,
        end_time: int | None = None,
        final_batch: LogBatch | None = None,
        compact: bool = True,
        artifacts: Sequence[Artifact] = (),
    ) -> None:
        status = RunStatus(status)
        with self._write() as conn:
            row = self._require_run(conn, run_id)
            if final_batch:
                self._apply_batch(conn, row, final_batch)
            if artifacts:
                self._record_artifacts(conn, run_id, artifacts)
            if not status.is_terminal:
                conn.execute(self._s.set_status, {"rid": run_id, "st": status.value})
                return
            et = end_time if end_time is not None else now_ms()
            conn.execute(self._s.end_run, {"rid": run_id, "st": status.value, "et": et})
            if compact:
                self._compact(conn, run_id)

    def log_run(
        self,
        spec: RunCreate,
        *,
        status: RunStatus,
        end_time: int,
        batch: LogBatch | None = None,
        artifacts: Sequence[Artifact] = (),
    ) -> None:
        """Create an ended run with its last batch and artifacts in one transaction (see ``Store``)."""
        status = RunStatus(status)
        if not status.is_terminal:
            raise InvalidInput(f"log_run records ended runs; status {status.value!r} is not an end status")
        if batch and (batch.params or batch.tags):
            # One set of params and tags for the new run (the rows go out in one statement)
            for key, value in batch.params.items():
                if spec.params.get(key, value) != value:
                    raise InvalidInput(
                        f"Param '{key}' of run '{spec.run_id}' is given twice, as {spec.params[key]!r} "
                        f"and {value!r}; params are immutable"
                    )
            spec = dataclasses.replace(
                spec, params={**spec.params, **batch.params}, tags={**spec.tags, **batch.tags}
            )
            batch = dataclasses.replace(batch, params={}, tags={})
        exp_id = self._experiment_ids.get(spec.experiment_name)
        if self._dialect == "postgresql" and exp_id is not None and not artifacts:
            self._log_run_at_once(spec, exp_id, status, end_time, batch)
            return
        try:
            with self._write() as conn:
                with _rows_in_one_statement(conn, self._s):
                    run = self._insert_run(conn, spec, status, end_time)
                    if run is None:
                        return  # recorded before (a retry): create is idempotent
                    if batch:
                        # New in this transaction: no batch of it can have been applied before.
                        self._apply_batch(conn, _NewRun(spec.run_id), batch, claim=False)
                if artifacts:
                    self._record_artifacts(conn, spec.run_id, artifacts)
        except sa_exc.IntegrityError as exc:
            raise InvalidInput(f"Cannot record run '{spec.run_id}' in {self._where}: {exc.orig}") from exc
        self._experiment_ids[run.experiment_name] = run.experiment_id

    def _log_run_at_once(
        self, spec: RunCreate, exp_id: int, status: RunStatus, end_time: int, batch: LogBatch | None
    ) -> None:
        """:meth:`log_run` on PostgreSQL in one statement and no transaction (atomic by itself): the
        run, its params, tags and metrics (one round trip where a transaction takes four). For a
        known experiment and no artifacts (the usual short run the SDK records)."""
        try:
            with self._write_at_once() as conn:
                if spec.parent_run_id is not None:
                    self._require_run(conn, spec.parent_run_id)
                row = _run_row(spec, exp_id, status, end_time)
                with _rows_in_one_statement(conn, self._s, run=row):
                    self._write_params(conn, spec.run_id, spec.params, new_run=True)
                    self._write_tags(conn, spec.run_id, spec.tags)
                    if batch:  # a new run (or nothing is written): no batch of it was applied before
                        self._apply_batch(conn, _NewRun(spec.run_id), batch, claim=False)
        except sa_exc.IntegrityError as exc:
            raise InvalidInput(f"Cannot record run '{spec.run_id}' in {self._where}: {exc.orig}") from exc

    # -- logging ------------------------------------------------------------------------------
    def log_batch(self, run_id: str, batch: LogBatch) -> None:
        if not batch:
            return
        with self._write() as conn:
            self._apply_batch(conn, self._require_run(conn, run_id), batch)

    def _apply_batch(self, conn: Connection, row: Any, batch: LogBatch, claim: bool = True) -> None:
        run_id = row.id
        if row.deleted:
            raise InvalidState(
                f"Run '{run_id}' is deleted; restore it before logging (shipyard runs restore {run_id})"
            )
        if claim and batch.batch_id is not None:
            # RETURNING, not rowcount: SQLAlchemy 2.1 reports rowcount -1 for INSERTs on psycopg.
            row_ = {"batch_id": batch.batch_id, "run_id": run_id, "applied_at": now_ms()}
            if conn.execute(self._s.claim_batch, row_).first() is None:
                return  # replayed batch: applied before
        self._write_params(conn, run_id, batch.params)
        self._write_tags(conn, run_id, batch.tags)
        self._write_metrics(conn, run_id, _columns(batch))

    def _write_params(
        self, conn: Connection, run_id: str, values: dict[str, str], new_run: bool = False
    ) -> None:
        if not values:
            return
        for key, value in values.items():
            _check_key("Param", key)
            if len(value) > MAX_PARAM_LEN:
                raise InvalidInput(
                    f"Param '{key}' value is {len(value)} characters; the limit is {MAX_PARAM_LEN}"
                )
        existing: dict[str, str] = {}
        if not new_run:
            existing = dict(
                conn.execute(self._s.existing_params, {"rid": run_id, "keys": list(values)}).all()
            )
        changed = {k: (existing[k], v) for k, v in values.items() if k in existing and existing[k] != v}
        if changed:
            key, (old, new) = next(iter(changed.items()))
            raise InvalidInput(
                f"Param '{key}' of run '{run_id}' is already {old!r}; cannot change it to {new!r}. "
                "Params are immutable; log a new run or use a tag for values that change."
            )
        rows = [
            {"run_id": run_id, "key": k, "value": v, "value_num": _as_number(v)}
            for k, v in values.items()
            if k not in existing
        ]
        if rows:
            _insert_rows(conn, self._s, "insert_params", rows)

    def _write_tags(self, conn: Connection, run_id: str, values: dict[str, str]) -> None:
        if not values:
            return
        rows = [
            {"run_id": run_id, "key": _check_key("Tag", k), "value": v, "value_num": _as_number(v)}
            for k, v in values.items()
        ]
        _insert_rows(conn, self._s, "upsert_tags", rows)

    def _write_metrics(self, conn: Connection, run_id: str, columns: dict[str, _Columns]) -> None:
        if not columns:
            return
        chunks = []
        latest = []
        for key, (steps, stamps, values) in columns.items():
            _check_key("Metric", key)
            if len(steps) == 1:
                step, stamp, value = int(steps[0]), int(stamps[0]), float(values[0])
                data = encode_point(step, stamp, value, level=1)
            else:
                s, ts = np.asarray(steps, np.int64), np.asarray(stamps, np.int64)
                data = encode_chunk(s, ts, np.asarray(values, np.float64), level=1)
                last = int(np.lexsort((ts, s))[-1])
                step, stamp, value = int(s[last]), int(ts[last]), float(values[last])
            chunks.append({"run_id": run_id, "key": key, "n": len(steps), "data": data})
            latest.append(
                {
                    "run_id": run_id,
                    "key": key,
                    "value": None if math.isnan(value) else value,
                    "step": step,
                    "timestamp": stamp,
                }
            )
        _insert_rows(conn, self._s, "insert_chunks", chunks)
        _insert_rows(conn, self._s, "upsert_latest", latest)

    def _compact(self, conn: Connection, run_id: str) -> None:
        """Merge each series' small chunks (one per flush) into chunks of up to 64k points."""
        c = t.metric_chunks.c
        keys = (
            conn.execute(select(c.key).where(c.run_id == run_id).group_by(c.key).having(func.count() > 1))
            .scalars()
            .all()
        )
        for key in keys:
            rows = conn.execute(
                select(c.id, c.n, c.data).where(c.run_id == run_id, c.key == key).order_by(c.id)
            ).all()
            group: list[Any] = []
            for row in [*rows, None]:
                if row is not None and sum(r.n for r in group) + row.n <= COMPACT_TARGET_POINTS:
                    group.append(row)
                    continue
                if len(group) > 1:
                    parts = [decode_chunk(r.data) for r in group]
                    merged = encode_chunk(*(np.concatenate([p[i] for p in parts]) for i in range(3)))  # type: ignore[arg-type]
                    conn.execute(
                        update(t.metric_chunks)
                        .where(c.id == group[0].id)
                        .values(n=sum(r.n for r in group), data=merged)
                    )
                    conn.execute(delete(t.metric_chunks).where(c.id.in_([r.id for r in group[1:]])))
                group = [row] if row is not None else []

    def get_metric_history(self, run_id: str, key: str) -> MetricHistory:
        c = t.metric_chunks.c
        with self._read() as conn:
            self._require_run(conn, run_id)
            rows = (
                conn.execute(select(c.data).where(c.run_id == run_id, c.key == key).order_by(c.id))
                .scalars()
                .all()
            )
        if not rows:
            return MetricHistory(key, [], [], [])
        parts = [decode_chunk(d) for d in rows]
        steps = np.concatenate([p[0] for p in parts])
        stamps = np.concatenate([p[1] for p in parts])
        values = np.concatenate([p[2] for p in parts])
        order = np.lexsort((stamps, steps))
        return MetricHistory(key, steps[order].tolist(), stamps[order].tolist(), values[order].tolist())

    # -- search -------------------------------------------------------------------------------
    def search_runs(
        self,
        experiment_ids: Sequence[int] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        limit: int = 1000,
        page_token: str | None = None,
        columns: Sequence[str] | None = None,
        view: RunView | str = RunView.ACTIVE,
    ) -> RunPage:
        query = SearchQuery.build(experiment_ids, filter, order_by, limit, page_token, columns, view)
        self._expire_lazily()  # runs whose process was killed list as killed
        with self._read() as conn:
            return query.execute(conn)

    # -- deletion and maintenance -------------------------------------------------------------
    def _set_deleted(self, run_ids: Iterable[str], deleted: bool, actor: str, reason: str) -> int:
        with self._write() as conn:
            return self._mark_runs_deleted(conn, run_ids, deleted, actor, reason)

    def _mark_runs_deleted(
        self, conn: Connection, run_ids: Iterable[str], deleted: bool, actor: str, reason: str
    ) -> int:
        """Mark runs deleted (or not) in the caller's transaction; one audit entry per run."""
        ids = list(dict.fromkeys(run_ids))
        count = 0
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            found = set(conn.execute(select(t.runs.c.id).where(t.runs.c.id.in_(part))).scalars())
            missing = [r for r in part if r not in found]
            if missing:
                raise RunNotFound(f"Run '{missing[0]}' not found in {self._where}; nothing was changed")
            count += conn.execute(
                update(t.runs).where(t.runs.c.id.in_(part)).values(deleted=deleted)
            ).rowcount
        action = "run.delete" if deleted else "run.restore"
        for run_id in ids:  # audited in the change's own transaction
            audit.append(
                conn, actor, action, "run", run_id, {"deleted": not deleted}, {"deleted": deleted}, reason
            )
        return count

    def delete_runs(self, run_ids: Iterable[str], actor: str = "", reason: str = "") -> int:
        """Mark runs deleted; one audit entry per run, by ``actor``, in the same transaction."""
        return self._set_deleted(run_ids, True, actor, reason)

    def restore_runs(self, run_ids: Iterable[str], actor: str = "", reason: str = "") -> int:
        return self._set_deleted(run_ids, False, actor, reason)

    def purge_deleted_runs(self, batch_size: int = 500) -> int:
        """Remove deleted runs for good, ``batch_size`` at a time (bounded memory)."""
        total = 0
        children = (
            t.params,
            t.tags,
            t.latest_metrics,
            t.metric_chunks,
            t.artifacts,
            t.applied_batches,
            t.run_datasets,
        )
        while True:
            with self._write() as conn:
                ids = (
                    conn.execute(select(t.runs.c.id).where(t.runs.c.deleted.is_(True)).limit(batch_size))
                    .scalars()
                    .all()
                )
                if not ids:
                    return total
                for table in children:
                    conn.execute(delete(table).where(table.c.run_id.in_(ids)))
                conn.execute(update(t.runs).where(t.runs.c.parent_run_id.in_(ids)).values(parent_run_id=None))
                conn.execute(delete(t.runs).where(t.runs.c.id.in_(ids)))
                total += len(ids)

    def referenced_digests(self, digests: Sequence[str]) -> set[str]:
        """The digests still used by run artifacts, dataset versions, profiles or model files."""
        wanted = list(digests)
        dv = t.dataset_versions.c
        with self._read() as conn:
            found = set(
                conn.execute(
                    select(t.artifacts.c.digest).where(t.artifacts.c.digest.in_(wanted)).distinct()
                ).scalars()
            )
            found.update(conn.execute(select(dv.digest).where(dv.digest.in_(wanted))).scalars())
            found.update(
                conn.execute(select(dv.profile_digest).where(dv.profile_digest.in_(wanted))).scalars()
            )
            found.update(iter_model_digests(conn, wanted))
            return found

    def iter_run_ids(self, batch_size: int = 1000) -> Iterator[list[str]]:
        last = ""
        while True:
            with self._read() as conn:
                ids = list(
                    conn.execute(
                        select(t.runs.c.id).where(t.runs.c.id > last).order_by(t.runs.c.id).limit(batch_size)
                    ).scalars()
                )
            if not ids:
                return
            yield ids
            last = ids[-1]

    # -- datasets -----------------------------------------------------------------------------
    def create_dataset_version(self, spec: DatasetVersionCreate) -> DatasetVersion:
        check_name("Dataset name", spec.name)
        try:
            with self._write() as conn:
                return self._create_dataset_version(conn, spec)
        except sa_exc.IntegrityError:  # a concurrent writer took the version number: try once more
            with self._write() as conn:
                return self._create_dataset_version(conn, spec)

    def _create_dataset_version(self, conn: Connection, spec: DatasetVersionCreate) -> DatasetVersion:
        """Create (or find) the version; a new one is audited, by its creator, in this transaction."""
        known = {v.digest for v in datasets.list_versions(conn, spec.name)}
        version = datasets.create_version(conn, self._insert, spec)
        if version.digest not in known:
            after = version.to_dict()
            audit.append(
                conn, spec.created_by, "dataset.version.create", "dataset", version.ref, None, after, ""
            )
        return version

    def get_dataset_version(self, name: str, ref: str = "latest") -> DatasetVersion:
        with self._read() as conn:
            return datasets.find_version(conn, name, ref)

    def list_dataset_versions(self, name: str | None = None) -> list[DatasetVersion]:
        with self._read() as conn:
            return datasets.list_versions(conn, name)

    def record_dataset_use(self, run_id: str, name: str, version: int, role: str) -> None:
        with self._write() as conn:
            self._require_run(conn, run_id)
            found = datasets.find_version(conn, name, f"v{version}")
            datasets.record_use(conn, self._insert, run_id, found, role)

    def list_run_datasets(self, run_id: str) -> list[DatasetUse]:
        with self._read() as conn:
            self._require_run(conn, run_id)
            return datasets.run_uses(conn, run_id)

    # -- audit log (appended only by the methods that act; checkpoints in CheckpointsMixin) ----
    def list_audit(
        self,
        after_seq: int = 0,
        limit: int = 1000,
        actor: str | None = None,
        action: str | None = None,
        object_type: str | None = None,
        object_id: str | None = None,
    ) -> list[AuditEntry]:
        if not 1 <= limit <= 10_000:
            raise InvalidInput(f"limit must be from 1 to 10000, got {limit}")
        filters = {"actor": actor, "action": action, "object_type": object_type, "object_id": object_id}
        with self._read() as conn:
            return audit.entries(conn, after_seq, limit, filters)

    # -- contracts ----------------------------------------------------------------------------
    def save_contract(self, name: str, yaml: str, digest: str, created_by: str = "") -> ContractVersion:
        check_name("Contract name", name)
        try:
            with self._write() as conn:
                return self._save_contract(conn, name, yaml, digest, created_by)
        except sa_exc.IntegrityError:  # a concurrent writer took the version number: try once more
            with self._write() as conn:
                return self._save_contract(conn, name, yaml, digest, created_by)

    def _save_contract(
        self, conn: Connection, name: str, yaml: str, digest: str, actor: str
    ) -> ContractVersion:
        """Save (or find) the version; a new one is audited, by its author, in this transaction."""
        known = {c.digest for c in datasets.list_contracts(conn, name)}
        saved = datasets.save_contract(conn, name, yaml, digest, actor)
        if saved.digest not in known:
            audit.append(
                conn, actor, "contract.register", "contract", saved.ref, None, {"digest": saved.digest}, ""
            )
        return saved

    def get_contract(self, name: str, ref: str = "latest") -> ContractVersion:
        with self._read() as conn:
            return datasets.find_contract(conn, name, ref)

    def list_contracts(self, name: str | None = None) -> list[ContractVersion]:
        with self._read() as conn:
            return datasets.list_contracts(conn, name)

    # -- artifacts ----------------------------------------------------------------------------
    def record_artifacts(self, run_id: str, artifacts: Sequence[Artifact]) -> None:
        if not artifacts:
            return
        with self._write() as conn:
            self._require_run(conn, run_id)
            self._record_artifacts(conn, run_id, artifacts)

    def _record_artifacts(self, conn: Connection, run_id: str, artifacts: Sequence[Artifact]) -> None:
        rows = [
            {
                "run_id": run_id,
                "path": clean_artifact_path(a.path),
                "digest": a.digest,
                "size": a.size,
                "created_at": a.created_at or now_ms(),
            }
            for a in artifacts
        ]
        check_path_conflicts(conn, run_id, [str(r["path"]) for r in rows])
        conn.execute(self._s.upsert_artifacts, rows)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]:
        c = t.artifacts.c
        with self._read() as conn:
            self._require_run(conn, run_id)
            stmt = select(c.path, c.digest, c.size, c.created_at).where(c.run_id == run_id)
            if prefix:
                prefix = clean_artifact_path(prefix)
                stmt = stmt.where(
                    or_(c.path == prefix, c.path.startswith(prefix.rstrip("/") + "/", autoescape=True))
                )
            rows = conn.execute(stmt.order_by(c.path)).all()
        return [Artifact(r.path, r.digest, r.size, r.created_at) for r in rows]
