"""Tracking's pages: experiments, an experiment's runs table, and runs compared.

All of a runs table's state is in its URL (filter, sort, columns, page), so a view is saved by
bookmarking it. A filter in the query language that does not parse is shown with the parser's
message above the table, the filter kept in its box.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from shipyard.entities import Run
from shipyard.errors import InvalidInput, NotFound
from shipyard.ui.charts import Chart, Parallel, overlay, parallel
from shipyard.ui.core import UI, number, page_router

__all__ = ["CURVE_POINTS", "MAX_COMPARE", "MAX_PAGE", "routes"]

MAX_PAGE = 500
"""Most runs one page of the runs table shows."""
DEFAULT_PAGE = 50
MAX_COMPARE = 20
"""Most runs the compare page puts side by side."""
CURVE_POINTS = 300
"""Points each run's curve draws at most on the compare page (LTTB keeps the shape)."""
MAX_AUTO_COLUMNS = 24
"""Most param and metric columns the table picks by itself (from the keys of the page's runs)."""

_ATTRIBUTES = ("run_name", "status", "start_time", "user")


@dataclass(frozen=True)
class Column:
    """A column of the runs table: ``field`` as the query language names it (``metrics.auc``)."""

    field: str

    @property
    def kind(self) -> str:
        return self.field.split(".", 1)[0] if "." in self.field else "attributes"

    @property
    def key(self) -> str:
        return self.field.split(".", 1)[1] if "." in self.field else self.field

    def cell(self, run: Run) -> str:
        if self.kind == "metrics":
            value = run.metrics.get(self.key)
            return "" if value is None else number(value)
        if self.kind == "params":
            return run.params.get(self.key, "")
        if self.kind == "tags":
            return run.tags.get(self.key, "")
        return ""


def _columns(chosen: Sequence[str], runs: Sequence[Run]) -> list[Column]:
    """The chosen columns, or the page's params and metrics (sorted, at most MAX_AUTO_COLUMNS)."""
    if chosen:
        return [Column(c) for c in dict.fromkeys(chosen)]
    params = sorted({k for r in runs for k in r.params})
    metrics = sorted({k for r in runs for k in r.metrics})
    fields = [f"params.{k}" for k in params] + [f"metrics.{k}" for k in metrics]
    return [Column(f) for f in fields[:MAX_AUTO_COLUMNS]]


def _shown(value: Any) -> str:
    """A compared value as text: numbers as the runs table shows them, absent as empty."""
    if value is None:
        return ""
    return number(value) if isinstance(value, float) else str(value)


def _labels(runs: Sequence[Run]) -> list[str]:
    """Column labels: the run's name, with its id's start where two runs share a name."""
    names = [r.name for r in runs]
    return [r.name if r.name and names.count(r.name) == 1 else f"{r.name} ({r.id[:8]})" for r in runs]


def _compare_rows(runs: Sequence[Run]) -> list[tuple[str, list[str], bool]]:
    """Rows of the compare page: each param, metric and tag (not ``sy.*``) of any of the runs, its
    value in each run, and whether they differ (a key some runs lack differs), sorted by field."""
    fields = {f"params.{k}" for r in runs for k in r.params}
    fields |= {f"metrics.{k}" for r in runs for k in r.metrics}
    fields |= {f"tags.{k}" for r in runs for k in r.tags if not k.startswith("sy.")}
    rows = []
    for field in sorted(fields):
        kind, key = field.split(".", 1)
        values = [getattr(r, kind).get(key) for r in runs]
        rows.append((field, [_shown(v) for v in values], len({repr(v) for v in values}) > 1))
    return rows


@dataclass(frozen=True)
class MetricViews:
    """The compare page's charts of one metric: its runs' curves overlaid, and parallel coordinates."""

    metric: str  # the metric drawn ("" when none)
    choices: list[str]  # every metric of any of the runs
    error: str  # why the asked-for metric cannot be drawn
    curves: Chart | None = None
    coords: Parallel | None = None  # parallel coordinates


def _metric_views(ui: UI, runs: Sequence[Run], labels: Sequence[str], metric: str) -> MetricViews:
    """Charts of ``metric``, or without one of the first metric (by name) all runs have."""
    choices = sorted({k for r in runs for k in r.metrics})
    if metric and metric not in choices:
        named = ", ".join(choices[:10]) + (", …" if len(choices) > 10 else "")
        error = (
            f"None of these runs has a metric {metric!r}; choose one they have: {named}."
            if choices
            else f"None of these runs has a metric {metric!r}: they have no metrics."
        )
        return MetricViews("", choices, error)
    if not metric:
        metric = next((k for k in choices if all(k in r.metrics for r in runs)), "")
        if not metric:
            return MetricViews("", choices, "")
    series = []
    for r, label in zip(runs, labels, strict=True):
        if metric in r.metrics:
            history = ui.store.get_metric_history(r.id, metric)
            series.append((label, history.steps, history.values))
    curves = overlay(metric, series, CURVE_POINTS)
    scored = [(label, r.params, r.metrics.get(metric)) for r, label in zip(runs, labels, strict=True)]
    return MetricViews(metric, choices, "", curves, parallel(metric, scored))


def _chosen(cols: str, col: list[str]) -> list[str]:
    picked = [c.strip() for c in [*cols.split(","), *col] if c.strip()]
    for c in picked:
        kind = c.split(".", 1)[0]
        if kind not in ("metrics", "params", "tags") or "." not in c or not c.split(".", 1)[1]:
            raise InvalidInput(
                f"Column {c!r} is not a metric, param or tag: name it as metrics.KEY, params.KEY or tags.KEY"
            )
    return picked


def routes(ui: UI) -> APIRouter:
    """Experiments, a runs table, and runs compared."""
    router = page_router()

    @router.get("/")
    def experiments(request: Request) -> HTMLResponse:
        return ui.page(request, "experiments.html", experiments=ui.store.list_experiments())

    @router.get("/experiments/{experiment_id}")
    def runs_table(
        request: Request,
        experiment_id: int,
        filter: str = "",
        order: str = "",
        cols: str = "",
        col: list[str] = Query(default=[]),  # noqa: B008 - FastAPI's way to declare a repeated query
        page_token: str = Query(default="", alias="page"),
        limit: int = Query(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE),
    ) -> HTMLResponse:
        try:
            experiment = ui.store.get_experiment(experiment_id)
        except NotFound as exc:
            return ui.error(request, 404, "Not found", exc.message)
        error = ""
        runs: list[Run] = []
        next_token = None
        try:
            chosen = _chosen(cols, col)
            columns_arg = None
            if chosen:  # only what the table shows is loaded
                columns_arg = list(dict.fromkeys([*chosen, *([order.split()[0]] if order else [])]))
            result = ui.store.search_runs(
                [experiment_id],
                filter or None,
                [order] if order else None,
                limit,
                page_token or None,
                columns=columns_arg,
            )
            runs, next_token = result.runs, result.next_page_token
        except InvalidInput as exc:
            error, chosen = exc.message, []
        columns = _columns(chosen, runs)
        state = {"filter": filter, "order": order, "cols": ",".join(chosen), "limit": limit}

        def link(**changes: Any) -> str:
            query = {**state, **changes}
            return "?" + urlencode({k: v for k, v in query.items() if v not in ("", None, DEFAULT_PAGE)})

        def sort_link(field: str) -> str:
            descending = order == f"{field} desc"
            return link(order=f"{field} {'asc' if descending else 'desc'}", page="")

        status = 400 if error else 200
        return ui.page(
            request,
            "runs.html",
            status,
            experiment=experiment,
            runs=runs,
            columns=columns,
            error=error,
            state=state,
            next_link=link(page=next_token) if next_token else "",
            first_link=link(page="") if page_token else "",
            sort_link=sort_link,
            order=order,
            known=[c.field for c in _columns([], runs)],
        )

    @router.get("/compare")
    def compare(
        request: Request,
        run: list[str] = Query(default=[]),  # noqa: B008 - a repeated query parameter
        only_diff: bool = False,
        metric: str = "",
    ) -> HTMLResponse:
        ids = list(dict.fromkeys(r for r in run if r))
        if not 2 <= len(ids) <= MAX_COMPARE:
            message = (
                f"Choose from 2 to {MAX_COMPARE} runs to compare (tick them in a runs table); got {len(ids)}."
            )
            return ui.error(request, 400, "Compare runs", message)
        try:
            runs = [ui.store.get_run(r) for r in ids]
        except NotFound as exc:
            return ui.error(request, 404, "Not found", exc.message)
        rows = _compare_rows(runs)
        differing = sum(1 for _, _, differs in rows if differs)
        total = len(rows)
        rows = [row for row in rows if row[2] or not only_diff]
        labels = _labels(runs)
        views = _metric_views(ui, runs, labels, metric)
        keep = [("run", r) for r in ids] + ([("metric", metric)] if metric else [])
        query = urlencode(keep + ([] if only_diff else [("only_diff", "true")]))
        return ui.page(
            request,
            "compare.html",
            400 if views.error else 200,
            runs=list(zip(runs, labels, strict=True)),
            rows=rows,
            differing=differing,
            total=total,
            only_diff=only_diff,
            toggle_link=f"?{query}",
            views=views,
        )

    return router
