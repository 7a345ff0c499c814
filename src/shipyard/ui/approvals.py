"""The approvals queue: every model version awaiting a reviewer, the longest waiting first.

Which versions wait is the registry's own answer (:func:`~shipyard.registry.governance.pending_approvals`:
a blocked promotion short of the approvals its policy needs, not rejected). Each shows the gates'
evidence from its latest promotion attempt and, to an approver, the approve / reject form, which
posts to the model's decision route and comes back here.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from shipyard.errors import ShipyardError
from shipyard.registry import governance
from shipyard.ui.core import UI, page_router

__all__ = ["routes"]


def routes(ui: UI) -> APIRouter:
    """``/approvals``."""
    router = page_router()

    @router.get("/approvals")
    def approvals(request: Request, message: str = "") -> HTMLResponse:
        if ui.client_for is None:
            return ui.error(request, 503, "Approvals", "This UI was started to read only: it has no queue.")
        client = ui.client(request)
        try:
            pending = governance.pending_approvals(client=client)
        except ShipyardError as exc:  # e.g. an unreadable roles file: say so, not a 500
            return ui.error(request, exc.http_status, "Approvals", exc.message)
        return ui.page(
            request,
            "approvals.html",
            pending=pending,
            me=client.settings.user,
            may_decide=ui.may(request, "approve"),
            message=message,
        )

    return router
