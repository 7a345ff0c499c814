"""Where a sweep's optuna study lives: beside Shipyard's own database, never inside its tables.

optuna's ``RDBStorage`` creates its own tables (``studies``, ``trials``, ``trial_params``, …: no
Shipyard table has these names) and, like Shipyard, keeps its schema revision in Alembic's
``alembic_version`` table. Sharing that one table breaks both (optuna refuses a revision it does not
know, and Shipyard would read optuna's), so:

- SQLite tracking store ``…/shipyard.db`` → optuna in ``…/shipyard.optuna.db`` beside it (WAL, a
  60 s busy timeout and ``BEGIN IMMEDIATE`` for every transaction, as Shipyard's own engine does, so
  threads, processes and Ray workers on the machine share it without "database is locked");
- PostgreSQL → the same database, in the schema ``shipyard_optuna`` (optuna's ``search_path``);
  Shipyard's migrations live in ``public`` and never see it;
- ``sqlite:///:memory:`` → optuna's in-memory storage (no resume, no Ray);
- a Shipyard server (``http(s)://``) → ``storage=`` is required: an optuna storage URL every worker
  can reach (PostgreSQL URLs also get the ``shipyard_optuna`` schema), or ``"memory"``.
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import ConfigError, InvalidInput

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

__all__ = ["OPTUNA_SCHEMA", "StorageSpec", "open_storage", "resolve_storage"]

OPTUNA_SCHEMA = "shipyard_optuna"
_BUSY_TIMEOUT_S = 60
_PG_LOCK_KEY = 0x5357_4550  # "SWEP": serialises creating optuna's schema and tables
_OPEN: dict[tuple[str, str | None], BaseStorage] = {}
_OPEN_LOCK = threading.Lock()


@dataclass(frozen=True)
class StorageSpec:
    """A picklable description of a study's storage (Ray workers open it again by it)."""

    url: str = ""  # an RDB URL; "" with obj None means in-memory
    schema: str | None = None  # PostgreSQL schema for optuna's tables
    obj: Any = None  # an optuna storage object the user passed

    @property
    def shared(self) -> bool:
        """Whether other processes can reach it (resume, Ray)."""
        return bool(self.url) or self.obj is not None

    def describe(self) -> str:
        if self.obj is not None:
            return type(self.obj).__name__
        if not self.url:
            return "memory"
        from sqlalchemy.engine import make_url

        text = make_url(self.url).render_as_string(hide_password=True)
        return f"{text} (schema {self.schema})" if self.schema else text


def _from_url(url: str, tracking_uri: str) -> StorageSpec:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InvalidInput(
            f"Sweep storage {url!r} is not a database URL; use sqlite:///sweeps.db, "
            "postgresql+psycopg://user@host/db, 'memory' or an optuna storage object"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return StorageSpec(url, OPTUNA_SCHEMA)
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            return StorageSpec()
        if _same_file(parsed.database, tracking_uri):  # Shipyard's own file: optuna goes beside it
            return StorageSpec(_sibling(parsed.database))
        return StorageSpec(f"sqlite:///{Path(parsed.database).absolute()}")
    return StorageSpec(url)


def _same_file(database: str, tracking_uri: str) -> bool:
    from sqlalchemy.engine import make_url

    if not tracking_uri.startswith("sqlite"):
        return False
    other = make_url(tracking_uri).database
    return bool(other) and Path(database).resolve() == Path(str(other)).resolve()


def _sibling(database: str) -> str:
    path = Path(database).absolute()  # Ray workers and resumed drivers may run elsewhere
    return f"sqlite:///{path.with_name(path.stem + '.optuna.db')}"


def resolve_storage(storage: str | BaseStorage | None, tracking_uri: str) -> StorageSpec:
    """Where a sweep keeps its study, given ``storage=`` and the tracking URI (see the module doc).

    Example:
        >>> resolve_storage(None, "sqlite:////data/shipyard.db").url
        'sqlite:////data/shipyard.optuna.db'
    """
    if storage is not None and not isinstance(storage, str):
        return StorageSpec(obj=storage)
    if storage == "memory":
        return StorageSpec()
    if storage is not None:
        return _from_url(storage, tracking_uri)
    if tracking_uri.startswith(("http://", "https://")):
        raise InvalidInput(
            f"This sweep tracks to the Shipyard server {tracking_uri}, which cannot hold optuna's study; "
            "pass storage= an optuna storage URL every worker can reach (e.g. the server's PostgreSQL "
            "database, postgresql+psycopg://user@host/db: optuna's tables go in schema "
            f"'{OPTUNA_SCHEMA}'), or storage='memory' for a sweep that cannot be resumed"
        )
    return _from_url(tracking_uri, tracking_uri)


def open_storage(spec: StorageSpec) -> BaseStorage:
    """The optuna storage for ``spec``: one per process and URL (engines are costly to open)."""
    import optuna

    if spec.obj is not None:
        return spec.obj  # type: ignore[no-any-return]
    if not spec.url:
        return optuna.storages.InMemoryStorage()
    key = (spec.url, spec.schema)
    with _OPEN_LOCK:
        if key not in _OPEN:
            try:
                _OPEN[key] = _open_pg(spec) if spec.schema else _open_sqlite_or_other(spec.url)
            except Exception as exc:
                raise ConfigError(
                    f"Cannot open the sweep storage {spec.describe()}: {type(exc).__name__}: {exc}"
                ) from exc
        return _OPEN[key]


@contextlib.contextmanager
def _file_lock(path: str) -> Iterator[None]:
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _open_sqlite_or_other(url: str) -> BaseStorage:
    import optuna
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return optuna.storages.RDBStorage(url)
    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(parsed.database + ".lock"):  # optuna creates its tables on first open
        storage = optuna.storages.RDBStorage(
            url, engine_kwargs={"connect_args": {"timeout": _BUSY_TIMEOUT_S}}
        )
    _tune_sqlite(storage.engine)
    return storage


def _tune_sqlite(engine: Any) -> None:
    """WAL and ``BEGIN IMMEDIATE``: a deferred read-then-write transaction can fail at once with
    "database is locked" when another writer got in between; taking the write lock up front makes
    every writer wait its turn (up to the busy timeout) instead."""
    from sqlalchemy import event

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_S * 1000}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.close()

    def on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    engine.dispose()  # connections opened while optuna set up predate the listeners


def _open_pg(spec: StorageSpec) -> BaseStorage:
    import optuna
    import sqlalchemy as sa

    admin = sa.create_engine(spec.url, pool_pre_ping=True)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            try:
                conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{spec.schema}"'))
                conn.commit()
                storage = optuna.storages.RDBStorage(
                    spec.url,
                    engine_kwargs={
                        "pool_pre_ping": True,
                        "connect_args": {"options": f"-c search_path={spec.schema}"},
                    },
                )
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
    finally:
        admin.dispose()
    return storage
