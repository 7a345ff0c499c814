"""A run's page: its facts, metric charts, params, tags and artifacts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from shipyard.errors import NotFound
from shipyard.ui.charts import chart
from shipyard.ui.core import UI

__all__ = ["CHART_POINTS", "MAX_CHARTS", "routes"]

MAX_CHARTS = 12
"""Most metrics a run page charts (the first by name; every metric's latest value is in its table)."""
CHART_POINTS = 500
"""Points a chart draws at most (LTTB keeps the shape of longer series)."""


def routes(ui: UI) -> APIRouter:
    """``/runs/{run_id}``."""
    router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

    @router.get("/runs/{run_id}")
    def run_page(request: Request, run_id: str) -> HTMLResponse:
        try:
            run = ui.store.get_run(run_id)
        except NotFound as exc:
            return ui.error(request, 404, "Not found", exc.message)
        charts = []
        for key in sorted(run.metrics)[:MAX_CHARTS]:
            history = ui.store.get_metric_history(run_id, key)
            if len(history) > 1:
                drawn = chart(key, history.steps, history.values, CHART_POINTS)
                if drawn is not None:
                    charts.append(drawn)
        more = max(len(run.metrics) - MAX_CHARTS, 0)
        return ui.page(
            request, "run.html", run=run, artifacts=ui.store.list_artifacts(run_id), charts=charts, more=more
        )

    return router
