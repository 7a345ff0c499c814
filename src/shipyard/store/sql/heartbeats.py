"""Run heartbeats in the SQL store: live runs touch ``runs.heartbeat_ms``; stale ones become ``killed``.

A run's process sends a heartbeat every ``run_heartbeat_timeout / 5`` seconds from its
background flush thread (``shipyard.tracking.logger``). A ``running`` run whose last
heartbeat is older than the timeout had its process killed (SIGKILL, OOM, a lost machine):
:meth:`HeartbeatsMixin.expire_stale_runs` marks it ``killed`` with ``end_time`` = its last
heartbeat. Reads (``get_run``, ``search_runs``) call it lazily, at most once per
``timeout / 10`` seconds per store, so ``shipyard runs ls`` shows such runs as ``killed``.

A run marked ``killed`` this way whose process turns out to be alive (it was suspended, or
its network was cut for longer than the timeout) is ``running`` again at its next
heartbeat. Runs without any heartbeat (from before migration 0007, or from clients that
send none) are never marked.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence

from sqlalchemy import Connection, and_, case, or_, select, update

from shipyard.entities import RunStatus, now_ms
from shipyard.errors import StoreUnavailable
from shipyard.store.sql import schema as t

__all__ = ["DEFAULT_TIMEOUT_S", "HeartbeatsMixin"]

log = logging.getLogger("shipyard.store")

DEFAULT_TIMEOUT_S = 300.0
_R = t.runs.c
_RUNNING = RunStatus.RUNNING.value
_KILLED = RunStatus.KILLED.value


class HeartbeatsMixin:
    """The heartbeat methods of ``SqlStore`` (mixed in; uses its transaction helpers)."""

    heartbeat_timeout_s: float = DEFAULT_TIMEOUT_S
    _next_expiry: float = 0.0
    _expiry_lock = threading.Lock()

    def _write(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def _read(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def heartbeat(self, run_ids: Sequence[str]) -> None:
        """Record that the processes of ``run_ids`` are alive (one UPDATE; unknown or ended runs are skipped).

        Example:
            >>> store.heartbeat([run.id])  # doctest: +SKIP
        """
        ids = [r for r in dict.fromkeys(run_ids) if isinstance(r, str)]
        if not ids:
            return
        revived = and_(_R.status == _KILLED, _R.end_time == _R.heartbeat_ms)  # killed by expiry only
        statement = (
            update(t.runs)
            .where(_R.id.in_(ids), or_(_R.status == _RUNNING, revived))
            .values(
                heartbeat_ms=now_ms(),
                status=_RUNNING,
                end_time=case((revived, None), else_=_R.end_time),
            )
        )
        with self._write() as conn:
            conn.execute(statement)

    def expire_stale_runs(self) -> list[str]:
        """Mark ``killed`` every ``running`` run whose heartbeat is older than the timeout; their ids.

        ``end_time`` becomes the last heartbeat (the last moment the run was known alive).
        A timeout of 0 turns this off.

        Example:
            >>> store.expire_stale_runs()  # doctest: +SKIP
            ['3f2a9c…']
        """
        if self.heartbeat_timeout_s <= 0:
            return []
        cutoff = now_ms() - int(self.heartbeat_timeout_s * 1000)
        stale = and_(_R.status == _RUNNING, _R.heartbeat_ms.is_not(None), _R.heartbeat_ms < cutoff)
        with self._read() as conn:  # the common case finds nothing and takes no write lock
            found = list(conn.execute(select(_R.id).where(stale)).scalars())
        if not found:
            return []
        with self._write() as conn:
            conn.execute(
                update(t.runs).where(_R.id.in_(found), stale).values(status=_KILLED, end_time=_R.heartbeat_ms)
            )
        return found

    def _expire_lazily(self) -> None:
        """:meth:`expire_stale_runs`, at most once per ``timeout / 10`` seconds (called by reads)."""
        if self.heartbeat_timeout_s <= 0:
            return
        now = time.monotonic()
        with self._expiry_lock:
            if now < self._next_expiry:
                return
            self._next_expiry = now + max(self.heartbeat_timeout_s / 10, 0.05)
        try:
            self.expire_stale_runs()
        except StoreUnavailable as exc:  # a busy database must not fail the read; next read retries
            log.warning("Could not mark stale runs killed yet: %s", exc)
            self._next_expiry = 0.0
