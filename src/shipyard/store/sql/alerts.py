"""Alerts in the SQL store: one row per alert, at most one firing per (deployment, variant, rule).

Opening and resolving an alert are audited in the same transaction (``alert.open``, ``alert.resolve``);
a re-fire (the condition still holds on a later pass) updates the evidence, ``last_seen_at`` and the
count of windows without an audit entry (nothing changed state).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy import exc as sa_exc

from shipyard.entities import Alert, now_ms
from shipyard.errors import InvalidInput, InvalidState, NotFound
from shipyard.store.reports import ALERT_STATES, alert_key, check_alert, report_json
from shipyard.store.sql import audit
from shipyard.store.sql import schema as t

__all__ = ["AlertsMixin"]

_A = t.alerts.c
MAX_LIMIT = 100_000


def _alert(row: Any) -> Alert:
    return Alert(
        deployment=row.deployment,
        variant=row.variant,
        rule=row.rule,
        expression=row.expression,
        state=row.state,
        evidence=json.loads(row.evidence_json),
        actions=json.loads(row.actions_json),
        opened_at=row.opened_at,
        last_seen_at=row.last_seen_at,
        resolved_at=row.resolved_at,
        windows=row.windows,
        created_by=row.created_by,
        id=row.id,
    )


class AlertsMixin:
    """The alert methods of ``SqlStore`` (mixed in; uses its transaction helpers)."""

    def _write(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def _read(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def fire_alert(
        self,
        deployment: str,
        variant: str | None,
        rule: str,
        expression: str,
        evidence: dict[str, Any],
        actor: str = "",
    ) -> Alert:
        """Open an alert (audited) or, when one of the rule already fires, update its evidence."""
        check_alert(deployment, variant, rule, expression, evidence)
        key, body = alert_key(deployment, variant, rule), report_json(evidence, "alert evidence")
        for _ in range(3):
            try:
                with self._write() as conn:
                    return self._fire(conn, key, deployment, variant, rule, expression, body, actor)
            except sa_exc.IntegrityError:  # a concurrent pass opened it first: update that one
                continue
        raise InvalidState(f"Could not open or update alert {key!r}; retry")

    def _fire(
        self,
        conn: Connection,
        key: str,
        deployment: str,
        variant: str | None,
        rule: str,
        expression: str,
        evidence: str,
        actor: str,
    ) -> Alert:
        now = now_ms()
        row = conn.execute(select(t.alerts).where(_A.open_key == key)).first()
        if row is not None:
            conn.execute(
                update(t.alerts)
                .where(_A.id == row.id)
                .values(
                    evidence_json=evidence, last_seen_at=now, windows=row.windows + 1, expression=expression
                )
            )
            return _alert(conn.execute(select(t.alerts).where(_A.id == row.id)).one())
        values = {
            "deployment": deployment,
            "variant": variant,
            "rule": rule,
            "expression": expression,
            "state": "firing",
            "open_key": key,
            "evidence_json": evidence,
            "actions_json": "{}",
            "opened_at": now,
            "last_seen_at": now,
            "windows": 1,
            "created_by": actor,
        }
        new_id = int(conn.execute(insert(t.alerts).returning(_A.id), values).scalar_one())
        after = {"rule": rule, "variant": variant, "expression": expression, "evidence": json.loads(evidence)}
        audit.append(
            conn, actor, "alert.open", "alert", str(new_id), None, after, f"{deployment}: {expression}"
        )
        return _alert(conn.execute(select(t.alerts).where(_A.id == new_id)).one())

    def resolve_alert(
        self, deployment: str, variant: str | None, rule: str, evidence: dict[str, Any], actor: str = ""
    ) -> Alert | None:
        """Resolve the firing alert of the rule (audited); ``None`` when none fires."""
        key, body = alert_key(deployment, variant, rule), report_json(evidence, "alert evidence")
        with self._write() as conn:
            row = conn.execute(select(t.alerts).where(_A.open_key == key)).first()
            if row is None:
                return None
            now = now_ms()
            conn.execute(
                update(t.alerts)
                .where(_A.id == row.id)
                .values(
                    state="resolved", open_key=None, resolved_at=now, last_seen_at=now, evidence_json=body
                )
            )
            audit.append(
                conn,
                actor,
                "alert.resolve",
                "alert",
                str(row.id),
                {"state": "firing", "evidence": json.loads(row.evidence_json)},
                {"state": "resolved", "evidence": evidence},
                f"{deployment}: {row.expression} no longer holds",
            )
            return _alert(conn.execute(select(t.alerts).where(_A.id == row.id)).one())

    def record_alert_actions(self, alert_id: int, actions: dict[str, Any]) -> Alert:
        """Merge what the alert's actions did into its ``actions`` (a webhook's answer, a run id)."""
        report_json(actions, "alert actions")
        with self._write() as conn:
            row = conn.execute(select(t.alerts).where(_A.id == int(alert_id))).first()
            if row is None:
                raise NotFound(f"Alert {alert_id} not found (list them with: shipyard monitor alerts ls)")
            merged = {**json.loads(row.actions_json), **actions}
            conn.execute(update(t.alerts).where(_A.id == row.id).values(actions_json=report_json(merged, "")))
            return _alert(conn.execute(select(t.alerts).where(_A.id == row.id)).one())

    def get_alert(self, alert_id: int) -> Alert:
        with self._read() as conn:
            row = conn.execute(select(t.alerts).where(_A.id == int(alert_id))).first()
        if row is None:
            raise NotFound(f"Alert {alert_id} not found (list them with: shipyard monitor alerts ls)")
        return _alert(row)

    def list_alerts(
        self, deployment: str | None = None, state: str | None = None, limit: int = 1000
    ) -> list[Alert]:
        """Newest first (by last seen); only ``state`` (``firing``/``resolved``) when given."""
        if not 1 <= int(limit) <= MAX_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
        if state is not None and state not in ALERT_STATES:
            raise InvalidInput(f"Alert state {state!r} is not one of {', '.join(ALERT_STATES)}")
        stmt = select(t.alerts)
        if deployment is not None:
            stmt = stmt.where(_A.deployment == deployment)
        if state is not None:
            stmt = stmt.where(_A.state == state)
        stmt = stmt.order_by(_A.last_seen_at.desc(), _A.id.desc()).limit(int(limit))
        with self._read() as conn:
            return [_alert(r) for r in conn.execute(stmt).all()]
