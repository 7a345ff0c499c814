"""Evaluating alert rules on a monitoring pass, and running their actions.

A rule is evaluated only when the pass produced a new report of the kind it reads (no new data, no
verdict: a firing alert stays as it is). It then reads the stored series of that kind (the last
``windows`` reports of the deployment, or of the rule's variant) and fires when the condition holds on
every one of them; otherwise the rule's firing alert, if any, is resolved. The store keeps one firing
alert per deployment, variant and rule: a re-fire updates its evidence, ``last_seen_at`` and ``windows``.

Actions: ``record`` (the stored alert itself), ``webhook`` (a JSON POST when the alert opens and when it
resolves, see ``webhook.py``) and ``retrain`` (``sy.trigger_pipeline`` when it opens; the run id is kept
on the alert), after which ``loop.complete_retrain`` registers, evaluates and promotes the pipeline's
model (the closed loop). What each action did is merged into the alert's ``actions``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shipyard.entities import Alert, MonitorReport
from shipyard.monitoring.loop import complete_retrain
from shipyard.monitoring.rules import AlertRule, AlertRules, RetrainAction, WebhookAction
from shipyard.monitoring.webhook import post_alert
from shipyard.pipelines import trigger_pipeline
from shipyard.tracking import Client
from shipyard.tracking.fluent import get_client

__all__ = ["RuleOutcome", "evaluate_rules", "get_alert", "list_alerts"]

Poster = Callable[..., dict[str, Any]]


@dataclass
class RuleOutcome:
    """What one rule did on a pass: ``opened``, ``firing`` (still), ``resolved``, ``ok`` or ``no data``."""

    rule: str
    expression: str
    variant: str | None
    outcome: str
    value: float | None = None
    alert: Alert | None = None
    actions: dict[str, Any] = field(default_factory=dict)


_PENDING = 24  # windows a min_labelled rule looks past (those not labelled enough yet)


def _series(rule: AlertRule, deployment: str, client: Client) -> list[MonitorReport]:
    cond = rule.condition
    # per-variant kinds (performance) read any variant unless the rule names one; the others are
    # stored for the whole deployment (variant None) by a pass
    variant = rule.variant if rule.variant is not None else (None if cond.kind == "performance" else "")
    if not rule.min_labelled:
        return client.store.list_monitor_reports(
            deployment, kind=cond.kind, variant=variant, limit=cond.windows
        )
    # windows still waiting for most of their labels are not judged: the newest ones that are
    found = client.store.list_monitor_reports(
        deployment, kind=cond.kind, variant=variant, limit=cond.windows + _PENDING
    )
    judged = [r for r in found if (r.summary.get("labelled_share") or 0) >= rule.min_labelled]
    return judged[-cond.windows :]


def _evidence(rule: AlertRule, series: list[MonitorReport], values: list[float | None]) -> dict[str, Any]:
    cond = rule.condition
    return {
        "metric": cond.metric,
        "op": cond.op,
        "threshold": cond.threshold,
        "windows": cond.windows,
        "values": values,
        "reports": [r.id for r in series],
        "window_start": series[0].window_start if series else None,
        "window_end": series[-1].window_end if series else None,
    }


def evaluate_rules(
    rules: AlertRules,
    deployment: str,
    new_kinds: Sequence[str],
    *,
    client: Client,
    post: Poster = post_alert,
    root: str | os.PathLike[str] | None = None,
) -> list[RuleOutcome]:
    """Evaluate every rule whose report kind is in ``new_kinds`` (what this pass stored); open, update or
    resolve alerts and run their actions (``root``: the prediction log's root, for the closed loop).

    Example:
        >>> rules = parse_rules("rules.yaml")  # doctest: +SKIP
        >>> outcomes = evaluate_rules(rules, "churn", ["drift"], client=client)  # doctest: +SKIP
    """
    out = []
    for rule in rules.rules:
        cond = rule.condition
        if cond.kind not in new_kinds:
            out.append(RuleOutcome(rule.name, str(cond), rule.variant, "no data"))
            continue
        series = _series(rule, deployment, client)
        values = [cond.value(r) for r in series]
        evidence = _evidence(rule, series, values)
        latest = values[-1] if values else None
        if latest is None:  # the newest report does not carry the metric (no labels yet, say): no verdict
            out.append(RuleOutcome(rule.name, str(cond), rule.variant, "no data"))
            continue
        if len(series) >= cond.windows and all(cond.holds(v) for v in values):
            out.append(_fire(rule, deployment, evidence, latest, client, post, root))
            continue
        resolved = client.store.resolve_alert(
            deployment, rule.variant, rule.name, evidence, client.settings.user
        )
        outcome = RuleOutcome(rule.name, str(cond), rule.variant, "resolved" if resolved else "ok", latest)
        if resolved is not None:
            outcome.alert = _act(rule, resolved, "resolved", client, post)
            outcome.actions = outcome.alert.actions
        out.append(outcome)
    return out


def _fire(
    rule: AlertRule,
    deployment: str,
    evidence: dict[str, Any],
    latest: float | None,
    client: Client,
    post: Poster,
    root: str | os.PathLike[str] | None = None,
) -> RuleOutcome:
    alert = client.store.fire_alert(
        deployment, rule.variant, rule.name, str(rule.condition), evidence, client.settings.user
    )
    opened = alert.windows == 1
    if opened:
        alert = _act(rule, alert, "opened", client, post, root)
    return RuleOutcome(
        rule.name,
        str(rule.condition),
        rule.variant,
        "opened" if opened else "firing",
        latest,
        alert,
        alert.actions,
    )


def _act(
    rule: AlertRule,
    alert: Alert,
    event: str,
    client: Client,
    post: Poster,
    root: str | os.PathLike[str] | None = None,
) -> Alert:
    """Run the rule's actions for an alert that just opened or resolved; record what they did."""
    done: dict[str, Any] = {}
    for action in rule.actions:
        if isinstance(action, WebhookAction):
            payload = {"event": event, "alert": alert.to_dict()}
            result = post(
                action.url,
                payload,
                timeout_s=action.timeout_s,
                retries=action.retries,
                backoff_s=action.backoff_s,
                headers=action.headers,
            )
            done.setdefault(f"webhook_{event}", []).append(result)
        elif isinstance(action, RetrainAction) and event == "opened":
            done["retrain"] = _retrain(action, alert, client)
    if not done:
        return alert
    alert = client.store.record_alert_actions(alert.id, done)
    if done.get("retrain", {}).get("run_id"):  # the pipeline ran (synchronously): close the loop
        window = next((a.window_rows for a in rule.actions if isinstance(a, RetrainAction)), 10_000)
        complete_retrain(alert.id, window_rows=window, root=root, client=client)
        alert = client.store.get_alert(alert.id)
    return alert


def _retrain(action: RetrainAction, alert: Alert, client: Client) -> dict[str, Any]:
    params = dict(action.params)
    try:
        result = trigger_pipeline(action.pipeline, params=params, client=client)
    except Exception as exc:  # a failed retraining is recorded on the alert; the pass goes on
        return {"pipeline": action.pipeline, "params": params, "error": f"{type(exc).__name__}: {exc}"}
    return {"pipeline": action.pipeline, "params": params, "run_id": result.run_id, "alert": alert.id}


def get_alert(alert_id: int, *, client: Client | None = None) -> Alert:
    """One stored alert by id, with its evidence and what its actions did.

    Example:
        >>> sy.get_alert(7).state  # doctest: +SKIP
        'firing'
    """
    return (client or get_client()).store.get_alert(alert_id)


def list_alerts(
    deployment: str | None = None,
    state: str | None = None,
    *,
    limit: int = 1000,
    client: Client | None = None,
) -> list[Alert]:
    """Stored alerts, most recently seen first (``state``: ``firing`` or ``resolved``).

    Example:
        >>> [a.rule for a in sy.list_alerts("churn", state="firing")]  # doctest: +SKIP
    """
    return (client or get_client()).store.list_alerts(deployment, state=state, limit=limit)
