"""The deployments' pages: every deployment, one deployment's variants and traffic split, its history
(what changed between versions, and why) with a rollback form for deployers, and the live traffic its
model server reports at its recorded address.

Rolling back is :func:`shipyard.serving.manage.rollback_deployment`, as ``shipyard deployments rollback``,
acting as the signed-in user. The live panel reads only the address recorded in the deployment's spec
(``url``), never one from the request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from shipyard.entities import DeploymentRecord
from shipyard.errors import NotFound, ShipyardError
from shipyard.registry.references import parse_model_ref
from shipyard.serving import manage
from shipyard.serving.deployment import DeploymentSpec, SpecChange, parse_deployment, spec_changes
from shipyard.serving.metrics import UNROUTED
from shipyard.serving.scrape import QUANTILES, Scrape, VariantTraffic, scrape, traffic
from shipyard.ui.core import UI, page_router, read_form

__all__ = ["LIVE_EVERY_S", "routes"]

LIVE_EVERY_S = 10
"""How often (seconds) the deployment page refreshes its live panel when scripts run."""
_BAR_WIDTH = 1000  # the traffic bar's SVG width in user units (it scales to the page)
_COLOURS = 6  # variants cycle through this many fill classes (share-0 … share-5)


@dataclass(frozen=True)
class _Variant:
    """One variant as the pages show it: its model as ``name@alias`` / ``name vN`` (or the folder)."""

    name: str
    model: str
    model_name: str  # a registered model's name (links to its page), or "" for a folder
    alias_version: int | None  # where the alias points now
    mode: str
    weight: float
    share: float | None  # None: a shadow (gets a copy of the traffic)


@dataclass(frozen=True)
class _Segment:
    name: str
    share: float
    x: float
    width: float
    colour: int


@dataclass(frozen=True)
class _Version:
    record: DeploymentRecord
    spec: DeploymentSpec | None
    problem: str  # why the spec could not be read (a spec saved by an older Shipyard)
    changes: list[SpecChange]
    reason: str


def _spec(record: DeploymentRecord) -> tuple[DeploymentSpec | None, str]:
    try:
        return parse_deployment(record.spec_yaml), ""
    except ShipyardError as exc:
        return None, exc.message


def _variants(spec: DeploymentSpec, aliases: dict[str, dict[str, int]] | None = None) -> list[_Variant]:
    """The spec's variants for display; ``aliases`` (model name → its aliases) resolves alias targets."""
    shares = spec.shares()
    out = []
    for v in spec.variants:
        model, model_name, target = v.model, "", None
        if v.model.startswith("models:/"):
            ref = parse_model_ref(v.model)
            model_name = ref.name
            model = f"{ref.name} v{ref.version}" if ref.version is not None else f"{ref.name}@{ref.ref}"
            if aliases is not None and ref.version is None:
                target = aliases.get(ref.name, {}).get(ref.ref)
        share = None if v.mode == "shadow" else shares.get(v.name, 0.0)
        out.append(_Variant(v.name, model, model_name, target, v.mode, v.weight, share))
    return out


def _aliases(ui: UI, spec: DeploymentSpec) -> dict[str, dict[str, int]]:
    """The aliases of every registered model the spec names (a missing model: none)."""
    found: dict[str, dict[str, int]] = {}
    for v in spec.variants:
        if v.model.startswith("models:/"):
            name = parse_model_ref(v.model).name
            if name not in found:
                try:
                    found[name] = dict(ui.store.get_registered_model(name).aliases)
                except NotFound:
                    found[name] = {}
    return found


def _bar(variants: list[_Variant]) -> list[_Segment]:
    """The traffic bar: one segment per live variant, as wide as its share."""
    segments, x = [], 0.0
    live = [(v.name, v.share) for v in variants if v.share]
    for i, (name, share) in enumerate(live):
        segments.append(_Segment(name, share, x, share * _BAR_WIDTH, i % _COLOURS))
        x += share * _BAR_WIDTH
    return segments


def _reasons(ui: UI, name: str) -> dict[int, str]:
    """Why each version was saved: the reason of its ``deployment.save`` audit entry."""
    reasons: dict[int, str] = {}
    after_seq, page = 0, 1000
    while True:
        entries = ui.store.list_audit(
            after_seq, page, action="deployment.save", object_type="deployment", object_id=name
        )
        for entry in entries:
            if isinstance(entry.after, dict) and isinstance(entry.after.get("version"), int):
                reasons[entry.after["version"]] = entry.reason
        if len(entries) < page:
            return reasons
        after_seq = entries[-1].seq


def _history(ui: UI, records: list[DeploymentRecord]) -> list[_Version]:
    """Every version, newest first, with what changed from the one before it."""
    reasons = _reasons(ui, records[0].name)
    versions, before = [], None
    for record in records:
        spec, problem = _spec(record)
        changes = spec_changes(before, spec) if spec is not None else []
        versions.append(_Version(record, spec, problem, changes, reasons.get(record.version, "")))
        before = spec
    return versions[::-1]


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.1f} ms"


@dataclass(frozen=True)
class _LiveRow:
    variant: str
    serving: str
    requests: str
    per_s: str
    client_errors: str
    server_errors: str
    shadow_errors: str
    latency: list[str]


def _model_name(model: str) -> str:
    """A registered model's name (``models:/churn/3`` → ``churn``), or the folder as given."""
    if model.startswith("models:/"):
        try:
            return parse_model_ref(model).name
        except ShipyardError:
            return model
    return model


def _live_row(name: str, t: VariantTraffic, shadow: bool) -> _LiveRow:
    label = "refused before routing" if name == UNROUTED else name
    serving = f"{_model_name(t.model)} v{t.version}" if t.model else ""
    if shadow:  # a shadow's copies are not requests: only its failures are counted
        return _LiveRow(
            label, f"{serving} (shadow)", "—", "—", "—", "—", f"{t.shadow_errors:.0f}", ["—"] * len(QUANTILES)
        )
    per_s = "—" if t.requests_per_s is None else f"{t.requests_per_s:.2f}"
    return _LiveRow(
        label,
        serving,
        f"{t.requests:.0f}",
        per_s,
        f"{t.client_errors:.0f}",
        f"{t.server_errors:.0f}",
        f"{t.shadow_errors:.0f}",
        [_ms(t.latency[q]) for q in QUANTILES],
    )


def _live_rows(spec: DeploymentSpec, found: dict[str, VariantTraffic]) -> list[_LiveRow]:
    """The spec's variants in its order, then anything else the server reports (requests refused
    before routing, variants of another version it still serves)."""
    shadows = {v.name for v in spec.shadows}
    names = [v.name for v in spec.variants] + sorted(set(found) - {v.name for v in spec.variants})
    rows = []
    for name in names:
        t = found.get(name)
        if t is None:
            rows.append(_LiveRow(name, "not reported", "—", "—", "—", "—", "—", ["—"] * len(QUANTILES)))
        else:
            rows.append(_live_row(name, t, name in shadows))
    return rows


def routes(ui: UI) -> APIRouter:
    """``/deployments``, ``/deployments/{name}``, its ``/live`` panel and the rollback form's ``POST``."""
    router = page_router()
    last_scrapes: dict[str, Scrape] = {}  # per deployment: the previous scrape, for rates
    lock = threading.Lock()

    def not_found(request: Request, name: str) -> HTMLResponse:
        message = f"Deployment '{name}' not found (list them at /deployments, or: shipyard deployments ls)"
        return ui.error(request, 404, "Not found", message)

    @router.get("/deployments")
    def deployments(request: Request) -> HTMLResponse:
        rows = []
        for record in ui.store.list_deployments():
            spec, problem = _spec(record)
            rows.append((record, _variants(spec) if spec is not None else [], problem))
        return ui.page(request, "deployments.html", rows=rows)

    @router.get("/deployments/{name}")
    def deployment(request: Request, name: str, message: str = "") -> HTMLResponse:
        records = ui.store.list_deployments(name)
        if not records:
            return not_found(request, name)
        current = records[-1]
        spec, problem = _spec(current)
        variants = _variants(spec, _aliases(ui, spec)) if spec is not None else []
        return ui.page(
            request,
            "deployment.html",
            current=current,
            spec=spec,
            problem=problem,
            variants=variants,
            bar=_bar(variants),
            bar_width=_BAR_WIDTH,
            history=_history(ui, records),
            may_deploy=ui.may(request, "deploy"),
            live_every=LIVE_EVERY_S,
            message=message,
        )

    @router.get("/deployments/{name}/live")
    def live(request: Request, name: str) -> HTMLResponse:
        """The live panel: a fragment for htmx (``HX-Request``), else a page of its own."""
        try:
            record = ui.store.get_deployment(name)
        except NotFound:
            return not_found(request, name)
        spec, problem = _spec(record)
        note = f"This version's spec cannot be read: {problem}" if problem else ""
        rows: list[_LiveRow] = []
        window = None
        url = spec.url if spec is not None else None
        if spec is not None and url is None:
            note = (
                "No model server address is recorded for this deployment: add url: http://host:port "
                "to its spec (shipyard deployments create) to see its traffic here."
            )
        elif spec is not None and url is not None:
            try:
                now = scrape(url)  # only the recorded address: never one taken from the request
            except ShipyardError as exc:
                note = f"The model server did not answer, so there are no live numbers: {exc.message}"
            else:
                with lock:
                    previous = last_scrapes.get(name)
                    last_scrapes[name] = now
                seen = traffic(now, previous)
                rows, window = _live_rows(spec, seen.variants), seen.window_s
        fragment = request.headers.get("hx-request") == "true"
        return ui.page(
            request,
            "deployment_live_panel.html" if fragment else "deployment_live.html",
            current=record,
            url=url,
            note=note,
            rows=rows,
            window=window,
            quantiles=[f"p{round(q * 100)}" for q in QUANTILES],
        )

    @router.post("/deployments/{name}/versions/{version}/rollback", response_model=None)
    async def rollback(request: Request, name: str, version: str) -> Response:
        """Make an older version's spec current again (the route needs the deploy permission)."""
        form = await read_form(request)
        if not ui.form_is_ours(request, form):
            message = (
                "This form came from another site or has expired (its anti-forgery token did not match)."
            )
            return ui.error(request, 400, "Not rolled back", message)
        if not (version.isascii() and version.isdigit()) or not 0 < int(version) < 2**31:
            return ui.error(request, 400, "Not rolled back", f"'{version}' is not a version number.")
        if ui.client_for is None:
            return ui.error(request, 400, "Not rolled back", "This UI only reads.")
        to, client, reason = int(version), ui.client(request), form.get("reason", "").strip()
        try:
            before = await run_in_threadpool(ui.store.get_deployment, name)
            record = await run_in_threadpool(
                lambda: manage.rollback_deployment(name, to, reason=reason, client=client)
            )
        except NotFound as exc:
            return ui.error(request, 404, "Not found", exc.message)
        except ShipyardError as exc:
            return ui.error(request, exc.http_status, "Not rolled back", exc.message)
        if record.version == before.version:
            done = f"Version {to}'s spec is already the current one: nothing changed."
        else:
            done = f"Rolled back to version {to}'s spec (saved as version {record.version})."
        return RedirectResponse(
            f"/deployments/{quote(name, safe='')}?{urlencode({'message': done})}", status_code=303
        )

    return router
