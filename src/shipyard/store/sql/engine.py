"""Engine creation: SQLite tuned for several processes (WAL, busy timeout, immediate writes), and the
rules both backends apply to every statement, so SQLite and PostgreSQL answer the same:

- a bound text holding NUL, or an integer past 64 bits, is refused with ``InvalidInput`` before it
  is sent (PostgreSQL cannot store NUL; SQLite raises ``OverflowError`` past 64 bits); PostgreSQL's
  ``integer out of range`` (a 32-bit column) is ``InvalidInput`` too;
- a statement running longer than ``statement_timeout`` seconds is cancelled (PostgreSQL's
  ``statement_timeout``, a progress check on SQLite) and raises ``StoreUnavailable`` naming the setting.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError
from sqlalchemy.pool import StaticPool

from shipyard.bounds import check_int
from shipyard.config import DEFAULT_STATEMENT_TIMEOUT
from shipyard.errors import ConfigError, InvalidInput, MissingExtra, ShipyardError, StoreUnavailable
from shipyard.names import check_text

__all__ = ["make_engine", "sqlite_path"]

BUSY_TIMEOUT_MS = 60_000
_PROGRESS_STEPS = 10_000  # SQLite VM instructions between deadline checks (well under a millisecond)
_PG_QUERY_CANCELED = "57014"
PING_AFTER_IDLE_S = 2.0
"""A pooled PostgreSQL connection idle longer than this is pinged before use (a dead one is replaced);
one used more recently is not (a ping is a round trip on every request of a busy server)."""
_PG_DATA_ERRORS = ("22003", "22P05", "22021")  # out of range, NUL in text, bad byte sequence


def _check_value(value: Any) -> None:
    if value.__class__ is str:
        check_text("A text value", value)
    elif value.__class__ is int:
        check_int("An integer value", value)
    elif value.__class__ is list:  # an array parameter (``= ANY(:ids)`` on PostgreSQL)
        for item in value:
            _check_value(item)


def _check_parameters(parameters: Any) -> None:
    """Refuse what one backend would store and the other refuse: NUL in text, integers past 64 bits."""
    rows = (
        parameters
        if isinstance(parameters, list | tuple)
        and parameters
        and isinstance(parameters[0], list | tuple | dict)
        else [parameters]
    )
    for row in rows:
        for value in row.values() if isinstance(row, dict) else row or ():
            _check_value(value)


class _Deadline:
    """When the statement running on one SQLite connection must stop (``inf``: no statement running)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.at = math.inf
        self.expired = False

    def start(self) -> None:
        self.expired = False
        self.at = time.monotonic() + self.timeout if self.timeout > 0 else math.inf

    def __call__(self) -> int:  # the progress handler: non-zero interrupts the statement
        if time.monotonic() > self.at:
            self.expired = True
            return 1
        return 0


def _timeout_error(timeout: float) -> StoreUnavailable:
    return StoreUnavailable(
        f"A metadata query ran longer than {timeout:g} s and was cancelled (setting statement_timeout / "
        "SHIPYARD_STATEMENT_TIMEOUT). Narrow the search (fewer keys or terms in the filter) or raise "
        "the setting."
    )


def _install_rules(engine: Engine, timeout: float) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, _cursor: Any, _stmt: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        _check_parameters(parameters)
        deadline = conn.connection.info.get("shipyard_deadline")
        if deadline is not None:
            deadline.start()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, *_args: Any) -> None:
        deadline = conn.connection.info.get("shipyard_deadline")
        if deadline is not None:
            deadline.at = math.inf

    @event.listens_for(engine, "handle_error")
    def _on_error(context: ExceptionContext) -> BaseException | None:
        orig = context.original_exception
        if isinstance(orig, ShipyardError):
            return None
        if isinstance(orig, OverflowError):
            return InvalidInput(f"A number is out of the store's range: {orig}")
        state = getattr(orig, "sqlstate", None)
        if state == _PG_QUERY_CANCELED:
            return _timeout_error(timeout)
        if state in _PG_DATA_ERRORS:
            return InvalidInput(f"The store refused a value: {str(orig).splitlines()[0]}")
        conn = context.connection
        deadline = conn.connection.info.get("shipyard_deadline") if conn is not None else None
        if deadline is not None and deadline.expired:
            deadline.expired = False
            return _timeout_error(timeout)
        return None


def _ping_after_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling for connections that sat idle: SQLAlchemy's ``pool_pre_ping``
    pings on every checkout; this only after :data:`PING_AFTER_IDLE_S` in the pool. A connection the
    server dropped within that time fails its first statement instead: SQLAlchemy then invalidates
    the whole pool, and the request answers 503 (clients retry it)."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_conn: Any, record: Any) -> None:
        record.info["shipyard_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("shipyard_idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the pool replaces the connection and checks out another
            raise DisconnectionError(f"idle connection is gone: {exc}") from exc
        if not alive:
            raise DisconnectionError("idle connection is gone")


def sqlite_path(uri: str) -> str | None:
    url = make_url(uri)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return url.database


def _tune_sqlite(engine: Engine, timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        if timeout > 0:
            deadline = _Deadline(timeout)
            dbapi_conn.set_progress_handler(deadline, _PROGRESS_STEPS)
            record.info["shipyard_deadline"] = deadline
        # Take transaction control from pysqlite so we can say BEGIN IMMEDIATE for writes.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: never corrupt, durable across kills
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA case_sensitive_like=ON")  # LIKE is case-sensitive, as on PostgreSQL
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front: no deadlock-prone read->write upgrade.
        immediate = conn.get_execution_options().get("immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(uri: str, statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT) -> Engine:
    """Create an engine for ``sqlite:///…`` or ``postgresql+psycopg://…`` with the rules above.

    Example:
        >>> make_engine("sqlite:///:memory:", statement_timeout=5.0).dialect.name
        'sqlite'
    """
    try:
        url = make_url(uri)
    except ArgumentError as exc:
        raise ConfigError(
            f"Cannot parse tracking URI {uri!r}: {exc}. Use sqlite:///path.db, "
            "postgresql+psycopg://user@host/db or http://host:port"
        ) from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = url.database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        in_memory = not path or path == ":memory:"
        kwargs: dict[str, Any] = {"poolclass": StaticPool} if in_memory else {}
        engine = create_engine(url, **kwargs)
        _tune_sqlite(engine, statement_timeout)
        _install_rules(engine, statement_timeout)
        return engine
    if backend == "postgresql":
        # Every connection carries the timeout: a runaway search is cancelled by the server itself.
        options = {"options": f"-c statement_timeout={int(statement_timeout * 1000)}"}
        try:
            engine = create_engine(url, pool_size=5, max_overflow=10, connect_args=options)
        except ModuleNotFoundError as exc:
            raise MissingExtra(
                f"PostgreSQL support needs psycopg: pip install 'shipyard[postgres]' ({exc})"
            ) from None
        _install_rules(engine, statement_timeout)
        _ping_after_idle(engine)
        return engine
    raise ConfigError(
        f"Unsupported tracking URI scheme {url.drivername!r} in {uri!r}; "
        "use sqlite:///…, postgresql+psycopg://… or http(s)://…"
    )
