"""The audit log's pages: entries newest first, filtered and paged, and the chain verified.

The store lists entries oldest first after a ``seq``, filtered exactly by actor, action and
object type; the page walks back from the head in windows of ``seq`` (every window one indexed
range read), keeps the entries whose subject (``object_type/object_id``) starts with the given
prefix, and stops after a page of matches or :data:`MAX_SCAN` entries, whichever comes first
(the next page's link continues from there). ``/audit/verify`` runs the audit layer's own
verification (what ``shipyard audit verify`` runs) and shows where the chain breaks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from shipyard.entities import AuditEntry
from shipyard.errors import ShipyardError
from shipyard.store import Store
from shipyard.ui.core import UI, page_router

__all__ = [
    "DEFAULT_PAGE",
    "MAX_PAGE",
    "MAX_SCAN",
    "WINDOW",
    "AuditPage",
    "newest_first",
    "routes",
    "subject_of",
]

DEFAULT_PAGE = 50
MAX_PAGE = 500
"""Most entries one page shows."""
WINDOW = 1000
"""Entries (by ``seq``) read per store call while walking back."""
MAX_SCAN = 50_000
"""Most entries one page walks back over looking for matches (then it links on)."""
MAX_DETAIL = 400
"""Characters of an entry's before / after shown (the rest is cut, marked …)."""
MAX_PROBLEMS = 50
_MAX_FILTER = 512


def subject_of(entry: AuditEntry) -> str:
    """What an entry is about, as the page shows and filters it: ``object_type/object_id``."""
    return f"{entry.object_type}/{entry.object_id}"


@dataclass(frozen=True)
class AuditPage:
    """Entries newest first; ``older`` is the ``before`` of the next page (None: none older);
    ``scanned_to`` the lowest ``seq`` looked at, when the walk stopped at :data:`MAX_SCAN`."""

    entries: list[AuditEntry]
    older: int | None
    scanned_to: int | None = None


def newest_first(
    store: Store,
    before: int,
    limit: int,
    filters: dict[str, str | None],
    keep: Callable[[AuditEntry], bool] = lambda _e: True,
) -> AuditPage:
    """Up to ``limit`` entries with ``seq < before`` that match ``filters`` (exact, in the store)
    and ``keep`` (here), newest first."""
    found: list[AuditEntry] = []
    upper, scanned = before, 0
    while upper > 1 and len(found) <= limit and scanned < MAX_SCAN:
        lower = max(upper - WINDOW, 1)
        # seq is the primary key: [lower, upper) holds at most upper - lower entries, so one read
        # of that many after lower - 1 returns every match in the window (and maybe later ones).
        batch = store.list_audit(lower - 1, upper - lower, **filters)
        found.extend(reversed([e for e in batch if e.seq < upper and keep(e)]))
        scanned += upper - lower
        upper = lower
    if len(found) > limit:
        return AuditPage(found[:limit], found[limit - 1].seq)
    if upper <= 1:
        return AuditPage(found, None)
    return AuditPage(found, upper, upper)  # stopped at MAX_SCAN: the next page goes on from here


def _detail(value: Any) -> str:
    if value is None:
        return ""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def _whole(text: str, name: str) -> tuple[int | None, str]:
    """A positive whole number from the query (None when empty), or the reason it is not one."""
    if text == "":
        return None, ""
    if text.isascii() and text.isdigit() and 0 < len(text) <= 10 and int(text) > 0:
        return int(text), ""
    return None, f"{name} must be a whole number from 1 up, got {text!r}."


def routes(ui: UI) -> APIRouter:
    """``/audit`` and ``/audit/verify``."""
    router = page_router()

    @router.get("/audit")
    def audit(
        request: Request,
        actor: str = "",
        event: str = "",
        subject: str = "",
        before: str = "",
        limit: str = "",
    ) -> HTMLResponse:
        state = {"actor": actor.strip(), "event": event.strip(), "subject": subject.strip()}
        start, bad_before = _whole(before, "before")
        size, bad_limit = _whole(limit, "limit")
        problem = bad_before or bad_limit
        if size is not None and size > MAX_PAGE:
            problem = f"limit must be at most {MAX_PAGE}, got {size}."
        if any(len(v) > _MAX_FILTER for v in state.values()):
            problem = f"A filter may be at most {_MAX_FILTER} characters long."
        if problem:
            return ui.error(request, 400, "Audit log", problem)
        size = size or DEFAULT_PAGE
        prefix = state["subject"]
        kind = prefix.split("/", 1)[0] if "/" in prefix else None  # exact type: filtered in the store
        filters = {"actor": state["actor"] or None, "action": state["event"] or None, "object_type": kind}
        try:
            head = ui.store.audit_head()
            upper = start if start is not None else head.seq + 1
            page = newest_first(ui.store, upper, size, filters, lambda e: subject_of(e).startswith(prefix))
        except ShipyardError as exc:
            return ui.error(request, exc.http_status, "Audit log", exc.message)

        def link(**changes: Any) -> str:
            query = {**state, "limit": size if size != DEFAULT_PAGE else "", **changes}
            return "/audit?" + urlencode({k: v for k, v in query.items() if v not in ("", None)})

        return ui.page(
            request,
            "audit.html",
            entries=[(e, subject_of(e), _detail(e.before), _detail(e.after)) for e in page.entries],
            state=state,
            head=head,
            before=start,
            scanned_to=page.scanned_to,
            older_link=link(before=page.older) if page.older is not None else "",
            newest_link=link() if start is not None else "",
        )

    @router.get("/audit/verify")
    def verify(request: Request) -> HTMLResponse:
        """Verify the whole chain now (a read: it changes nothing, so a plain link may run it)."""
        if ui.client_for is None:
            message = "This UI was started without a client; run: shipyard audit verify"
            return ui.error(request, 503, "Audit log", message)
        try:
            report = ui.client(request).verify_audit()
            head = ui.store.audit_head()
        except ShipyardError as exc:
            return ui.error(request, exc.http_status, "Audit log", exc.message)
        return ui.page(
            request,
            "audit_verify.html",
            report=report,
            problems=report.problems[:MAX_PROBLEMS],
            more=max(len(report.problems) - MAX_PROBLEMS, 0),
            head=head,
        )

    return router
