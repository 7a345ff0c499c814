"""The registry's pages: models, a model's versions, reviews and promotions, and the approve /
reject form an approver sees (the decision is the registry's own, made as the signed-in user)."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from shipyard.errors import NotFound, ShipyardError
from shipyard.registry import governance
from shipyard.ui.core import UI, read_form

__all__ = ["routes"]


def routes(ui: UI) -> APIRouter:
    """``/models``, ``/models/{name}`` and the decision form's ``POST``."""
    router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

    @router.get("/models")
    def models(request: Request) -> HTMLResponse:
        return ui.page(request, "models.html", models=ui.store.list_registered_models())

    @router.get("/models/{name}")
    def model_page(request: Request, name: str, message: str = "") -> HTMLResponse:
        try:
            model = ui.store.get_registered_model(name)
        except NotFound as exc:
            return ui.error(request, 404, "Not found", exc.message)
        versions = sorted(ui.store.list_model_versions(name), key=lambda v: -v.version)
        records = sorted(ui.store.list_model_records(name), key=lambda r: -r.id)
        may_decide = ui.may(request, "approve")
        return ui.page(
            request,
            "model.html",
            model=model,
            versions=versions,
            records=records,
            may_decide=may_decide,
            message=message,
        )

    @router.post("/models/{name}/versions/{version}/decide", response_model=None)
    async def decide(request: Request, name: str, version: int) -> Response:
        """Approve or reject a version from its model's page (the route needs the approve permission)."""
        form = await read_form(request)
        if not ui.form_is_ours(request, form):
            message = (
                "This form came from another site or has expired (its anti-forgery token did not match)."
            )
            return ui.error(request, 400, "Not decided", message)
        decision, comment = form.get("decision", ""), form.get("comment", "").strip()
        if decision not in ("approve", "reject") or ui.client_for is None:
            return ui.error(request, 400, "Not decided", "Choose approve or reject.")
        client = ui.client(request)
        act = governance.approve_model if decision == "approve" else governance.reject_model
        try:
            await run_in_threadpool(lambda: act(name, version, reason=comment, client=client))
        except ShipyardError as exc:
            return ui.error(request, exc.http_status, "Not decided", exc.message)
        done = f"{'Approved' if decision == 'approve' else 'Rejected'} version {version}."
        return RedirectResponse(
            f"/models/{quote(name, safe='')}?{urlencode({'message': done})}", status_code=303
        )

    return router
