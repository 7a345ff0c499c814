"""The web UI's router: every area's pages over one :class:`~shipyard.ui.core.UI`."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from shipyard.auth import FailureLimiter
from shipyard.store import Store
from shipyard.tracking import Client
from shipyard.ui import approvals, audit, datasets, deployments, models, monitoring, run_page, runs, signin
from shipyard.ui.core import UI

__all__ = ["build_router"]


def build_router(
    store: Store,
    limiter: FailureLimiter | None = None,
    client_for: Callable[[str | None], Client] | None = None,
    reader: Client | None = None,
) -> APIRouter:
    """The UI's routes over ``store`` (outside the OpenAPI schema: they answer HTML).

    ``limiter`` counts failed sign-ins per client (the server shares its own with the API's login).
    ``client_for(actor)`` gives the SDK client that acts as ``actor`` (None: the server's own user)
    for the pages' actions (approving a model version); without it the pages only read.
    ``reader`` is the client the pages read stored data through (dataset profiles and rows).
    """
    ui = UI(store, client_for, limiter if limiter is not None else FailureLimiter(), reader)
    router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
    areas = (signin, runs, run_page, models, approvals, datasets, deployments, monitoring, audit)
    for area in areas:  # each area: routes(ui) -> APIRouter
        router.routes.extend(area.routes(ui).routes)  # flat: the access matrix walks them
    return router
