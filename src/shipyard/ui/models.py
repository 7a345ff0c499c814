"""The registry's pages: models, and a model whole — its lineage graph, versions, evaluations
(metrics, fairness by group, plots), promotions with every gate's evidence, reviews and alias
moves — with the approve / reject form an approver sees (the decision is the registry's own,
made as the signed-in user)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from shipyard.entities import ModelVersion, RegisteredModel
from shipyard.errors import NotFound, ShipyardError
from shipyard.registry import governance
from shipyard.serving.deployment import DeploymentSpec, parse_deployment
from shipyard.ui.core import UI, page_router, read_form
from shipyard.ui.evaluations import evaluation_view, plot_type
from shipyard.ui.lineage import Graph, layout, model_lineage

__all__ = ["BACK", "MAX_EVALUATIONS", "MAX_LINEAGE_VERSIONS", "routes"]

MAX_LINEAGE_VERSIONS = 25
"""Most versions the lineage graph draws (the newest)."""
MAX_EVALUATIONS = 20
"""Most evaluations a model page shows (the newest; every one is in the registry)."""
BACK = {"approvals": "/approvals"}
"""Where a decision form may send the browser back to (its hidden ``back`` field), besides the
model's own page: only these local paths, never an address from the form."""


def _number(text: str) -> int | None:
    """A positive integer path or query value, or None when ``text`` is not one."""
    return int(text) if text.isascii() and text.isdigit() and 0 < len(text) <= 9 else None


def _lineage(ui: UI, model: RegisteredModel, versions: Sequence[ModelVersion]) -> Graph:
    """The lineage graph of the newest versions (datasets, runs, aliases, deployments)."""
    shown = list(versions[:MAX_LINEAGE_VERSIONS])
    run_datasets: dict[str, list[tuple[str, int, str]]] = {}
    for run_id in dict.fromkeys(v.run_id for v in shown if v.run_id):
        try:
            uses = ui.store.list_run_datasets(run_id)
        except NotFound:  # a purged run: its versions keep their own dataset links
            uses = []
        run_datasets[run_id] = [(u.dataset.name, u.dataset.version, u.role) for u in uses]
    specs: list[DeploymentSpec] = []
    for record in ui.store.list_deployments():
        try:
            specs.append(parse_deployment(record.spec_yaml))
        except ShipyardError:  # a spec this version cannot read draws no edge, and breaks no page
            continue
    return layout(*model_lineage(model, shown, run_datasets, specs))


def routes(ui: UI) -> APIRouter:
    """``/models``, ``/models/{name}``, an evaluation's plots, and the decision form's ``POST``."""
    router = page_router()

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
        evaluations = [r for r in records if r.kind == "evaluation"]
        return ui.page(
            request,
            "model.html",
            model=model,
            versions=versions,
            graph=_lineage(ui, model, versions),
            graph_more=max(len(versions) - MAX_LINEAGE_VERSIONS, 0),
            evaluations=[evaluation_view(r) for r in evaluations[:MAX_EVALUATIONS]],
            evaluations_more=max(len(evaluations) - MAX_EVALUATIONS, 0),
            promotions=[r for r in records if r.kind == "promotion"],
            reviews=[r for r in records if r.kind == "approval"],
            moves=list(reversed(ui.store.list_alias_history(name))),
            may_decide=ui.may(request, "approve"),
            message=message,
        )

    @router.get("/models/{name}/evaluations/{record_id}/{file}", response_model=None)
    def evaluation_file(request: Request, name: str, record_id: str, file: str) -> Response:
        """A plot an evaluation stored (only files of that evaluation record, only images)."""
        number = _number(record_id)
        try:
            records = ui.store.list_model_records(name, kind="evaluation") if number else []
        except NotFound as exc:
            return ui.error(request, 404, "Not found", exc.message)
        record = next((r for r in records if r.id == number), None)
        found = next((f for f in record.files if f.path == file), None) if record else None
        kind = plot_type(file)
        if found is None or kind is None or ui.client_for is None:
            message = f"Model '{name}' has no evaluation {record_id!r} with a plot named {file!r}."
            return ui.error(request, 404, "Not found", message)
        try:
            content = ui.client(request).blobs.get_bytes(found.digest)
        except ShipyardError as exc:
            return ui.error(request, exc.http_status, "Plot unavailable", exc.message)
        return Response(content, media_type=kind, headers={"cache-control": "private, max-age=86400"})

    @router.post("/models/{name}/versions/{version}/decide", response_model=None)
    async def decide(request: Request, name: str, version: str) -> Response:
        """Approve or reject a version from its model's page or the approvals queue (the route
        needs the approve permission); ``back=approvals`` returns to the queue."""
        form = await read_form(request)
        if not ui.form_is_ours(request, form):
            message = (
                "This form came from another site or has expired (its anti-forgery token did not match)."
            )
            return ui.error(request, 400, "Not decided", message)
        number = _number(version)
        if number is None:
            return ui.error(request, 404, "Not found", f"Model '{name}' has no version {version!r}.")
        decision, comment = form.get("decision", ""), form.get("comment", "").strip()
        if decision not in ("approve", "reject") or ui.client_for is None:
            return ui.error(request, 400, "Not decided", "Choose approve or reject.")
        client = ui.client(request)
        act = governance.approve_model if decision == "approve" else governance.reject_model
        try:
            await run_in_threadpool(lambda: act(name, number, reason=comment, client=client))
        except ShipyardError as exc:
            return ui.error(request, exc.http_status, "Not decided", exc.message)
        done = f"{'Approved' if decision == 'approve' else 'Rejected'} version {number}"
        back = BACK.get(form.get("back", ""))
        if back is None:  # the model's own page
            back, done = f"/models/{quote(name, safe='')}", f"{done}."
        else:  # a page about many models: say which
            done = f"{done} of {name}."
        return RedirectResponse(f"{back}?{urlencode({'message': done})}", status_code=303)

    return router
