"""The webhook action: POST an alert as JSON, retrying with exponential backoff, each try with a timeout.

A connection error, a timeout, a 429 or a 5xx answer is retried (``retries`` more tries, waiting
``backoff_s``, then twice that, ...); any other answer is final. The outcome is returned, never raised:
a receiver that is down must not stop a monitoring pass, and the alert records what happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

__all__ = ["post_alert"]

_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def post_alert(
    url: str,
    payload: Mapping[str, Any],
    *,
    timeout_s: float = 5.0,
    retries: int = 3,
    backoff_s: float = 0.5,
    headers: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, Any]:
    """POST ``payload`` to ``url``; what happened as ``{"url", "ok", "status", "attempts", "error"}``.

    Example:
        >>> post_alert("http://127.0.0.1:9/hook", {"rule": "x"}, retries=0)["ok"]
        False
    """
    outcome: dict[str, Any] = {"url": url, "ok": False, "status": None, "attempts": 0, "error": ""}
    with httpx.Client(timeout=timeout_s, transport=transport, headers=dict(headers or {})) as http:
        for attempt in range(retries + 1):
            if attempt:
                sleep(backoff_s * 2 ** (attempt - 1))
            outcome["attempts"] = attempt + 1
            try:
                answer = http.post(url, json=dict(payload))
            except httpx.HTTPError as exc:
                outcome["error"] = f"{type(exc).__name__}: {exc}"
                continue
            outcome["status"] = answer.status_code
            outcome["ok"] = answer.is_success
            outcome["error"] = "" if answer.is_success else f"HTTP {answer.status_code}"
            if answer.status_code not in _RETRY_STATUS:
                break
    return outcome
