"""The rules every store applies to a monitor report before keeping it (one home for SQL and REST)."""

from __future__ import annotations

import json
import re
from typing import Any

from shipyard.entities import MAX_KEY_LENGTH, MonitorReport
from shipyard.errors import InvalidInput

__all__ = ["ALERT_STATES", "alert_key", "check_alert", "check_monitor_report", "report_json"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def report_json(value: Any, what: str) -> str:
    """A report's ``summary`` or ``body`` as compact JSON; NaN and infinities are refused, not written.

    Example:
        >>> report_json({"psi": 0.1}, "summary")
        '{"psi":0.1}'
    """
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"A monitor report's {what} is not JSON without NaN or infinity ({exc}); write them as null"
        ) from None


def check_monitor_report(report: MonitorReport) -> None:
    """Refuse a report the store could not hold or list: bad names, a window that ends before it starts.

    Example:
        >>> from shipyard.entities import MonitorReport
        >>> check_monitor_report(MonitorReport("churn", "drift", None, 0, 1, 10, "ok", {}, {}))
    """
    if not isinstance(report.deployment, str) or not _NAME.match(report.deployment):
        raise InvalidInput(
            f"Deployment name {report.deployment!r} is not valid: letters, digits, '_', '-' or '.', "
            "at most 64"
        )
    if not isinstance(report.kind, str) or not _KIND.match(report.kind):
        raise InvalidInput(
            f"Monitor report kind {report.kind!r} is not valid: lower-case letters, digits, '_'"
        )
    if report.variant is not None and (not isinstance(report.variant, str) or len(report.variant) > 255):
        raise InvalidInput(f"Variant {report.variant!r} is not valid: a name of at most 255 characters")
    if report.window_end < report.window_start:
        raise InvalidInput(
            f"Monitor report window ends ({report.window_end}) before it starts ({report.window_start})"
        )
    if report.rows < 0 or len(report.created_by) > MAX_KEY_LENGTH:
        raise InvalidInput("A monitor report needs rows >= 0 and a created_by of at most 255 characters")
    report_json(report.summary, "summary")
    report_json(report.body, "body")


ALERT_STATES = ("firing", "resolved")
_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def alert_key(deployment: str, variant: str | None, rule: str) -> str:
    """The key that at most one firing alert holds: deployment, variant and rule.

    Example:
        >>> alert_key("churn", None, "drift-high")
        'churn|*|drift-high'
    """
    return f"{deployment}|{'*' if variant is None else variant}|{rule}"


def check_alert(deployment: str, variant: str | None, rule: str, expression: str, evidence: Any) -> None:
    """Refuse an alert the store could not hold: bad names, evidence that is not JSON.

    Example:
        >>> check_alert("churn", None, "drift-high", "drift.share > 0.3", {"value": 0.4})
    """
    if not isinstance(deployment, str) or not _NAME.match(deployment):
        raise InvalidInput(
            f"Deployment name {deployment!r} is not valid: letters, digits, '_', '-' or '.', at most 64"
        )
    if not isinstance(rule, str) or not _RULE.match(rule):
        raise InvalidInput(
            f"Alert rule name {rule!r} is not valid: letters, digits, '_', '.', ':' or '-', at most 128"
        )
    if variant is not None and (not isinstance(variant, str) or not 0 < len(variant) <= 255):
        raise InvalidInput(f"Variant {variant!r} is not valid: a name of at most 255 characters")
    if not isinstance(expression, str) or not 0 < len(expression) <= 1000:
        raise InvalidInput(f"Alert expression {expression!r} must be 1 to 1000 characters")
    report_json(evidence, "alert evidence")
