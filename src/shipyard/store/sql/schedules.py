"""Pipeline schedules in the SQL store, and the fire-time claims that make a fire happen once.

Every server worker runs the same scheduler loop; a due fire time is run by the worker whose
``INSERT`` of the ``(schedule_id, fire_time)`` row into ``schedule_fires`` commits first: the
primary key refuses the others (``IntegrityError``), on SQLite and PostgreSQL alike. Saving and
deleting a schedule is audited in the same transaction.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update
from sqlalchemy import exc as sa_exc

from shipyard.entities import PipelineSchedule, ScheduleFire, now_ms
from shipyard.errors import InvalidInput, NotFound
from shipyard.names import check_name
from shipyard.store.sql import audit
from shipyard.store.sql import schema as t

__all__ = ["SchedulesMixin"]

_S = t.pipeline_schedules.c
_F = t.schedule_fires.c
_FIRE_STATUSES = ("finished", "failed")


def _schedule(row: Any, last: Any = None) -> PipelineSchedule:
    return PipelineSchedule(
        name=row.name,
        ref=row.ref,
        cron=row.cron,
        every_seconds=row.every_seconds,
        timezone=row.timezone,
        params=json.loads(row.params_json or "{}"),
        created_by=row.created_by,
        created_at=row.created_at,
        last_fire_time=None if last is None else last.fire_time,
        last_status=None if last is None else last.status,
        last_run_id=None if last is None else last.run_id,
    )


def _fire(name: str, row: Any) -> ScheduleFire:
    return ScheduleFire(
        name,
        row.fire_time,
        row.claimed_by,
        row.claimed_at,
        row.status,
        row.run_id,
        row.error,
        row.finished_at,
    )


def _not_found(name: str) -> NotFound:
    return NotFound(f"Schedule '{name}' not found (list them with: shipyard pipelines schedules ls)")


class SchedulesMixin:
    """The schedule methods of ``SqlStore`` (mixed in; uses its transaction helpers)."""

    def _write(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def _read(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def save_schedule(self, schedule: PipelineSchedule) -> PipelineSchedule:
        """Create the schedule, or replace the one of that name (its fire history stays)."""
        check_name("Schedule name", schedule.name)
        if (schedule.cron is None) == (schedule.every_seconds is None):
            raise InvalidInput(f"Schedule '{schedule.name}' needs exactly one of cron and every_seconds")
        row = {
            "name": schedule.name,
            "ref": schedule.ref,
            "cron": schedule.cron,
            "every_seconds": schedule.every_seconds,
            "timezone": schedule.timezone,
            "params_json": json.dumps(schedule.params, sort_keys=True),
            "created_by": schedule.created_by,
            "created_at": schedule.created_at or now_ms(),
        }
        for _ in range(3):
            try:
                with self._write() as conn:
                    old = conn.execute(select(t.pipeline_schedules).where(_S.name == schedule.name)).first()
                    if old is None:
                        conn.execute(insert(t.pipeline_schedules), row)
                    else:
                        conn.execute(update(t.pipeline_schedules).where(_S.id == old.id).values(**row))
                    before = None if old is None else _schedule(old).to_dict()
                    after = {k: v for k, v in row.items() if k != "params_json"}
                    audit.append(
                        conn,
                        schedule.created_by,
                        "schedule.save",
                        "schedule",
                        schedule.name,
                        before,
                        {**after, "params": schedule.params},
                        "",
                    )
                break
            except sa_exc.IntegrityError:  # a concurrent save created the name: replace it
                continue
        return self.get_schedule(schedule.name)

    def get_schedule(self, name: str) -> PipelineSchedule:
        with self._read() as conn:
            row = conn.execute(select(t.pipeline_schedules).where(_S.name == name)).first()
            if row is None:
                raise _not_found(name)
            last = conn.execute(
                select(t.schedule_fires)
                .where(_F.schedule_id == row.id)
                .order_by(_F.fire_time.desc())
                .limit(1)
            ).first()
        return _schedule(row, last)

    def list_schedules(self) -> list[PipelineSchedule]:
        latest = (
            select(_F.schedule_id, func.max(_F.fire_time).label("fire_time"))
            .group_by(_F.schedule_id)
            .subquery()
        )
        last = t.schedule_fires.alias("last")
        stmt = (
            select(t.pipeline_schedules, last.c.fire_time, last.c.status, last.c.run_id)
            .select_from(t.pipeline_schedules)
            .outerjoin(latest, latest.c.schedule_id == _S.id)
            .outerjoin(last, and_(last.c.schedule_id == _S.id, last.c.fire_time == latest.c.fire_time))
            .order_by(_S.name)
        )
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        return [_schedule(r, r if r.fire_time is not None else None) for r in rows]

    def delete_schedule(self, name: str, actor: str = "") -> None:
        """Delete the schedule and its fire history (audited)."""
        with self._write() as conn:
            row = conn.execute(select(t.pipeline_schedules).where(_S.name == name)).first()
            if row is None:
                raise _not_found(name)
            conn.execute(delete(t.schedule_fires).where(_F.schedule_id == row.id))
            conn.execute(delete(t.pipeline_schedules).where(_S.id == row.id))
            audit.append(conn, actor, "schedule.delete", "schedule", name, _schedule(row).to_dict(), None, "")

    def list_schedule_fires(self, name: str, limit: int = 100) -> list[ScheduleFire]:
        """The schedule's fires, newest first."""
        with self._read() as conn:
            sid = conn.execute(select(_S.id).where(_S.name == name)).scalar()
            if sid is None:
                raise _not_found(name)
            rows = conn.execute(
                select(t.schedule_fires)
                .where(_F.schedule_id == sid)
                .order_by(_F.fire_time.desc())
                .limit(limit)
            ).all()
        return [_fire(name, r) for r in rows]

    def claim_schedule_fire(self, name: str, fire_time: int, claimed_by: str) -> bool:
        """Claim one fire time of a schedule: True for exactly one caller, False for the others
        (and when the schedule is gone)."""
        try:
            with self._write() as conn:
                sid = conn.execute(select(_S.id).where(_S.name == name)).scalar()
                if sid is None:
                    return False
                conn.execute(
                    insert(t.schedule_fires),
                    {
                        "schedule_id": sid,
                        "fire_time": int(fire_time),
                        "claimed_by": claimed_by[:255],
                        "claimed_at": now_ms(),
                        "status": "running",
                    },
                )
        except sa_exc.IntegrityError:  # another worker's claim committed first
            return False
        return True

    def finish_schedule_fire(
        self, name: str, fire_time: int, status: str, run_id: str | None = None, error: str = ""
    ) -> None:
        """Record the outcome of a claimed fire (``finished`` or ``failed``, its pipeline run)."""
        if status not in _FIRE_STATUSES:
            raise InvalidInput(f"Fire status {status!r} must be one of {', '.join(_FIRE_STATUSES)}")
        with self._write() as conn:
            sid = conn.execute(select(_S.id).where(_S.name == name)).scalar()
            if sid is None:
                return
            conn.execute(
                update(t.schedule_fires)
                .where(_F.schedule_id == sid, _F.fire_time == int(fire_time))
                .values(status=status, run_id=run_id, error=error[-20_000:], finished_at=now_ms())
            )
