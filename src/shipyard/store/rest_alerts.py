"""Alerts of ``RestStore`` (mixed in): each call maps onto a route of ``server/routers/monitoring.py``;
the server's own store opens, updates, resolves and audits them."""

from __future__ import annotations

from typing import Any

import httpx

from shipyard.entities import Alert
from shipyard.store.reports import check_alert

__all__ = ["RestAlertsMixin"]

API = "/api/v1/monitoring/alerts"


class RestAlertsMixin:
    """Alert calls over HTTP."""

    def _request(
        self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        raise NotImplementedError

    def _get(self, path: str, **params: Any) -> Any:
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
        check_alert(deployment, variant, rule, expression, evidence)
        body = {
            "deployment": deployment,
            "variant": variant,
            "rule": rule,
            "expression": expression,
            "evidence": evidence,
            "actor": actor,
        }
        return Alert.from_dict(self._request("POST", f"{API}/fire", body=body).json())

    def resolve_alert(
        self, deployment: str, variant: str | None, rule: str, evidence: dict[str, Any], actor: str = ""
    ) -> Alert | None:
        body = {
            "deployment": deployment,
            "variant": variant,
            "rule": rule,
            "evidence": evidence,
            "actor": actor,
        }
        answer = self._request("POST", f"{API}/resolve", body=body).json()
        return None if answer.get("alert") is None else Alert.from_dict(answer["alert"])

    def record_alert_actions(self, alert_id: int, actions: dict[str, Any]) -> Alert:
        path = f"{API}/{int(alert_id)}/actions"
        return Alert.from_dict(self._request("POST", path, body={"actions": actions}).json())

    def get_alert(self, alert_id: int) -> Alert:
        return Alert.from_dict(self._get(f"{API}/{int(alert_id)}"))

    def list_alerts(
        self, deployment: str | None = None, state: str | None = None, limit: int = 1000
    ) -> list[Alert]:
        params: dict[str, Any] = {"limit": limit}
        params.update({k: v for k, v in (("deployment", deployment), ("state", state)) if v is not None})
        return [Alert.from_dict(a) for a in self._get(API, **params)["items"]]
