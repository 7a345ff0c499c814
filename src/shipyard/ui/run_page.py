"""A run's page: its facts, metric and system-metric charts, cost and energy, params, tags,
lineage, the pipeline it is or belongs to (its DAG drawn with each step's status), and its
artifacts, each with a preview page and a raw download that never runs what it serves.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from shipyard.entities import Artifact, Run, clean_artifact_path
from shipyard.errors import NotFound, ShipyardError
from shipyard.pipelines.reads import PipelineRunInfo, get_pipeline_run, pipeline_run_of
from shipyard.tracking import Client
from shipyard.ui.charts import Chart, chart
from shipyard.ui.core import UI, page_router
from shipyard.ui.dag import layout
from shipyard.ui.previews import image_type, preview, raw_chunks, raw_headers

__all__ = ["CHART_POINTS", "MAX_CHARTS", "routes"]

MAX_CHARTS = 12
"""Most series a run page charts per group, model metrics and system metrics (the first by name;
every metric's latest value is in a table)."""
CHART_POINTS = 500
"""Points a chart draws at most (LTTB keeps the shape of longer series)."""

SYSTEM_PREFIX = "system."  # what shipyard.tracking.sysmetrics.SystemSampler logs
COST_PREFIX = "cost."  # what a pipeline step (and its pipeline, summed) logs: StepCost.metrics()
_COST_FACTS = (  # key after "cost.", label, unit
    ("wall_seconds", "Wall time", "s"),
    ("cpu_seconds", "CPU time", "s"),
    ("peak_memory_mb", "Peak memory", "MB"),
    ("gpu_seconds", "GPU time", "s"),
)


def _charts(ui: UI, run_id: str, keys: list[str]) -> tuple[list[Chart], int]:
    """Charts of the first ``MAX_CHARTS`` keys by name (series of one point draw none), and how
    many keys were left out."""
    charts = []
    for key in keys[:MAX_CHARTS]:
        history = ui.store.get_metric_history(run_id, key)
        if len(history) > 1:
            drawn = chart(key, history.steps, history.values, CHART_POINTS)
            if drawn is not None:
                charts.append(drawn)
    return charts, max(len(keys) - MAX_CHARTS, 0)


def _cost(run: Run) -> list[tuple[str, float, str]]:
    """The run's recorded cost and energy as (label, value, unit) rows; empty when none was recorded."""
    cost = {k[len(COST_PREFIX) :]: v for k, v in run.metrics.items() if k.startswith(COST_PREFIX)}
    rows = [(label, cost[key], unit) for key, label, unit in _COST_FACTS if key in cost]
    if "energy_kwh" in cost:
        source = run.tags.get("sy.cost.energy_source")
        how = {"rapl": " (RAPL counters)", "model": " (CPU time × watts per core)"}.get(source or "", "")
        rows += [
            (f"Energy{how}", cost["energy_kwh"] * 1000, "Wh"),
            ("Energy", cost["energy_kwh"] * 3.6e6, "J"),
        ]
    if "usd" in cost:
        rows.append(("Cost", cost["usd"], "USD"))
    return rows


def _reader(ui: UI, request: Request) -> Client | None:
    """The SDK client the pages read artifacts and pipelines through (the server builds the UI
    with one; a UI built over a store alone previews nothing and draws no DAG)."""
    return ui.client(request) if ui.client_for is not None else None


def _pipeline(client: Client | None, run: Run) -> PipelineRunInfo | None:
    pipeline_id = pipeline_run_of(run)
    if client is None or pipeline_id is None:
        return None
    try:
        return get_pipeline_run(pipeline_id, client=client)
    except ShipyardError:  # the pipeline run was deleted, or its tags are not a pipeline's: no DAG
        return None


def _pipeline_view(pipeline: PipelineRunInfo | None, run: Run) -> dict[str, Any]:
    """The page's pipeline section: the pipeline, its DAG laid out, its steps by node, and which
    of them this run is (empty when it is the pipeline run itself)."""
    if pipeline is None:
        return {"pipeline": None, "dag": None, "steps": {}, "current_step": ""}
    return {
        "pipeline": pipeline,
        "dag": layout({s.node: s.upstream for s in pipeline.steps}),
        "steps": {s.node: s for s in pipeline.steps},
        "current_step": next((s.node for s in pipeline.steps if s.run_id == run.id), ""),
    }


def _split(keys: Iterable[str]) -> tuple[list[str], list[str]]:
    model, system = [], []
    for key in sorted(keys):
        if key.startswith(SYSTEM_PREFIX):
            system.append(key)
        elif not key.startswith(COST_PREFIX):
            model.append(key)
    return model, system


def routes(ui: UI) -> APIRouter:
    """``/runs/{run_id}`` and its artifacts' ``/runs/{run_id}/artifacts/view`` and ``…/raw``."""
    router = page_router()

    @router.get("/runs/{run_id}")
    def run_page(request: Request, run_id: str) -> HTMLResponse:
        try:
            run = ui.store.get_run(run_id)
        except NotFound as exc:
            return ui.error(request, 404, "Not found", exc.message)
        model_keys, system_keys = _split(run.metrics)
        charts, more = _charts(ui, run_id, model_keys)
        system_charts, more_system = _charts(ui, run_id, system_keys)
        pipeline = _pipeline(_reader(ui, request), run)
        context: dict[str, Any] = {
            "run": run,
            "artifacts": ui.store.list_artifacts(run_id),
            "charts": charts,
            "more": more,
            "model_metrics": {k: run.metrics[k] for k in model_keys},
            "system_metrics": {k: run.metrics[k] for k in system_keys},
            "system_charts": system_charts,
            "more_system": more_system,
            "cost": _cost(run),
            "datasets": ui.store.list_run_datasets(run_id),
            "models": ui.store.models_for_run(run_id),
            **_pipeline_view(pipeline, run),
        }
        return ui.page(request, "run.html", **context)

    def artifact(request: Request, run_id: str, path: str) -> tuple[Client, Run, Artifact] | HTMLResponse:
        """The client to read with, the run and its artifact at ``path``, or the error page to answer."""
        if not path or path.startswith("/") or ".." in path.split("/"):
            why = "an artifact path is relative and has no '..' in it, as the run's artifact table lists it"
            return ui.error(request, 400, "Bad artifact path", f"Artifact path {path!r} refused: {why}.")
        try:
            clean = clean_artifact_path(path)
            run = ui.store.get_run(run_id)
        except ShipyardError as exc:
            title = "Not found" if exc.http_status == 404 else "Bad artifact path"
            return ui.error(request, exc.http_status, title, exc.message)
        client = _reader(ui, request)
        if client is None:
            return ui.error(request, 404, "Not found", "This UI was built without the artifact store.")
        found = next((a for a in client.list_artifacts(run_id, clean) if a.path == clean), None)
        if found is None:
            return ui.error(request, 404, "Not found", f"Run '{run_id}' has no artifact '{clean}'.")
        return client, run, found

    @router.get("/runs/{run_id}/artifacts/view")
    def view_artifact(request: Request, run_id: str, path: str = "") -> HTMLResponse:
        found = artifact(request, run_id, path)
        if isinstance(found, HTMLResponse):
            return found
        client, run, art = found
        try:
            shown = preview(client.blobs, art)
        except ShipyardError as exc:  # a blob gone missing or corrupt
            return ui.error(request, exc.http_status, "Cannot preview", exc.message)
        return ui.page(request, "artifact.html", run=run, artifact=art, preview=shown)

    @router.get("/runs/{run_id}/artifacts/raw", response_model=None)
    def raw_artifact(request: Request, run_id: str, path: str = "") -> Response:
        found = artifact(request, run_id, path)
        if isinstance(found, HTMLResponse):
            return found
        client, _, art = found
        try:
            first, chunks = raw_chunks(client.blobs, art.digest)
        except ShipyardError as exc:
            return ui.error(request, exc.http_status, "Cannot read the artifact", exc.message)
        headers = raw_headers(art, image_type(first))
        return StreamingResponse(chunks, media_type=headers.pop("Content-Type"), headers=headers)

    return router
