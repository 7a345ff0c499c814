"""Monitoring results in the SQL store: one ``monitor_reports`` row per deployment, kind and window."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from typing import Any

from sqlalchemy import Connection, and_, exists, insert, select

from shipyard.entities import MonitorReport, now_ms
from shipyard.errors import InvalidInput, NotFound
from shipyard.store.reports import check_monitor_report, report_json
from shipyard.store.sql import schema as t

__all__ = ["MonitoringMixin"]

_M = t.monitor_reports.c
MAX_LIMIT = 100_000
REMEASURED = "performance"  # the kind whose windows are measured again as labels land


def _record(row: Any) -> MonitorReport:
    return MonitorReport(
        deployment=row.deployment,
        kind=row.kind,
        variant=row.variant,
        window_start=row.window_start,
        window_end=row.window_end,
        rows=row.rows,
        verdict=row.verdict,
        summary=json.loads(row.summary_json),
        body=json.loads(row.body_json),
        created_by=row.created_by,
        created_at=row.created_at,
        id=row.id,
    )


class MonitoringMixin:
    """The monitoring-report methods of ``SqlStore`` (mixed in; uses its transaction helpers)."""

    def _write(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def _read(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def save_monitor_report(self, report: MonitorReport) -> MonitorReport:
        """Store a report; ``id`` and ``created_at`` are assigned."""
        check_monitor_report(report)
        summary, body, created_at = (
            report_json(report.summary, "summary"),
            report_json(report.body, "body"),
            now_ms(),
        )
        row = {
            "deployment": report.deployment,
            "kind": report.kind,
            "variant": report.variant,
            "window_start": int(report.window_start),
            "window_end": int(report.window_end),
            "rows": int(report.rows),
            "verdict": report.verdict,
            "summary_json": summary,
            "body_json": body,
            "created_by": report.created_by,
            "created_at": created_at,
        }
        with self._write() as conn:
            new_id = conn.execute(insert(t.monitor_reports).returning(_M.id), row).scalar_one()
        # read back through JSON, as get/list would: tuples become lists, keys become strings
        return dataclasses.replace(
            report, summary=json.loads(summary), body=json.loads(body), created_at=created_at, id=int(new_id)
        )

    def get_monitor_report(self, report_id: int) -> MonitorReport:
        with self._read() as conn:
            row = conn.execute(select(t.monitor_reports).where(_M.id == int(report_id))).first()
        if row is None:
            raise NotFound(
                f"Monitor report {report_id} not found "
                "(list them with: shipyard monitor drift --deployment NAME)"
            )
        return _record(row)

    def list_monitor_reports(
        self,
        deployment: str,
        kind: str | None = None,
        variant: str | None = None,
        since: int | None = None,
        limit: int = 1000,
    ) -> list[MonitorReport]:
        """Oldest first; the newest ``limit`` reports. ``variant=""`` selects whole-deployment reports.

        A performance window measured again (same variant, start and end: realised performance once more
        labels have landed) lists once, as its newest measurement; the older rows stay readable by id.
        Other kinds list every report (two drift reports of one window may use different references).
        """
        if not 1 <= int(limit) <= MAX_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
        later = t.monitor_reports.alias("later")
        superseded = exists().where(
            and_(
                later.c.deployment == _M.deployment,
                _M.kind == REMEASURED,
                later.c.kind == _M.kind,
                later.c.variant.is_not_distinct_from(_M.variant),
                later.c.window_start == _M.window_start,
                later.c.window_end == _M.window_end,
                later.c.id > _M.id,
            )
        )
        stmt = select(t.monitor_reports).where(_M.deployment == deployment, ~superseded)
        if kind is not None:
            stmt = stmt.where(_M.kind == kind)
        if variant == "":
            stmt = stmt.where(_M.variant.is_(None))
        elif variant is not None:
            stmt = stmt.where(_M.variant == variant)
        if since is not None:
            stmt = stmt.where(_M.window_end >= int(since))
        stmt = stmt.order_by(_M.window_end.desc(), _M.id.desc()).limit(int(limit))
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        return [_record(r) for r in reversed(rows)]
