"""The pages: experiments, an experiment's runs table, a run.

All of a runs table's state is in its URL (filter, sort, columns, page), so a view is saved by
bookmarking it. A filter in the query language that does not parse is shown with the parser's
message above the table, the filter kept in its box.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from shipyard.auth import SESSION_COOKIE, FailureLimiter, csrf_matches, csrf_token, session_credential
from shipyard.entities import Run, now_ms
from shipyard.errors import InvalidInput, NotFound, ShipyardError
from shipyard.registry import governance
from shipyard.store import Store
from shipyard.store.base import AuthStore, VerifiesCredentials
from shipyard.tracking import Client
from shipyard.ui.charts import chart
from shipyard.version import __version__

__all__ = [
    "FORM_COOKIE",
    "LOGIN_COOKIE",
    "MAX_COMPARE",
    "MAX_PAGE",
    "SESSION_HOURS",
    "STATIC_DIR",
    "build_router",
]

STATIC_DIR = Path(__file__).parent / "static"
MAX_PAGE = 500
"""Most runs one page of the runs table shows."""
DEFAULT_PAGE = 50
MAX_CHARTS = 12
"""Most metrics a run page charts (the first by name; every metric's latest value is in its table)."""
CHART_POINTS = 500
"""Points a chart draws at most (LTTB keeps the shape of longer series)."""
MAX_COMPARE = 20
"""Most runs the compare page puts side by side."""
MAX_AUTO_COLUMNS = 24
"""Most param and metric columns the table picks by itself (from the keys of the page's runs)."""

_ATTRIBUTES = ("run_name", "status", "start_time", "user")
_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
_templates = Jinja2Templates(env=_env)


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:.6g}"


def _when(ms: int | None) -> str:
    if ms is None:
        return ""
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(run: Run) -> str:
    if run.end_time is None:
        return ""
    seconds = max(run.end_time - run.start_time, 0) / 1000
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


_env.filters["number"] = _number
_env.filters["when"] = _when
_env.filters["duration"] = _duration


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
            return "" if value is None else _number(value)
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


FORM_COOKIE = "shipyard_forms"
"""Without a session (auth off): the nonce the pages' anti-forgery tokens derive from."""
LOGIN_COOKIE = "shipyard_login"
"""Holds the sign-in form's anti-forgery nonce until the form comes back (double submit)."""
SESSION_HOURS = 12
"""How long a browser stays signed in: its session is an API token that expires then."""


def _https(request: Request) -> bool:
    return request.url.scheme == "https"


async def _form(request: Request) -> dict[str, str]:
    """A urlencoded form's fields (the last value of each); anything else reads as no fields."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return {}
    body = await request.body()
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return {}
    return dict(pairs)


def _shown(value: Any) -> str:
    """A compared value as text: numbers as the runs table shows them, absent as empty."""
    if value is None:
        return ""
    return _number(value) if isinstance(value, float) else str(value)


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


def _chosen(cols: str, col: list[str]) -> list[str]:
    picked = [c.strip() for c in [*cols.split(","), *col] if c.strip()]
    for c in picked:
        kind = c.split(".", 1)[0]
        if kind not in ("metrics", "params", "tags") or "." not in c or not c.split(".", 1)[1]:
            raise InvalidInput(
                f"Column {c!r} is not a metric, param or tag: name it as metrics.KEY, params.KEY or tags.KEY"
            )
    return picked


def _safe_next(target: str) -> str:
    """Where to go after signing in: a path on this site only (never ``//host`` or a URL)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target or len(target) > 2000:
        return "/"
    return target


def build_router(
    store: Store,
    limiter: FailureLimiter | None = None,
    client_for: Callable[[str | None], Client] | None = None,
) -> APIRouter:
    """The UI's routes over ``store`` (outside the OpenAPI schema: they answer HTML).

    ``limiter`` counts failed sign-ins per client (the server shares its own with the API's login).
    ``client_for(actor)`` gives the SDK client that acts as ``actor`` (None: the server's own user)
    for the pages' actions (approving a model version); without it the pages only read.
    """
    router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
    failures = limiter if limiter is not None else FailureLimiter()

    def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        principal = getattr(request.state, "principal", None)
        session = session_credential(request.scope.get("headers", []))
        # Forms carry a token derived from the session, or without one (auth off) from a nonce in
        # a SameSite=Strict cookie: a page of another site can send neither.
        nonce = None if session else (request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(24))
        form_csrf = csrf_token(session or nonce or "")
        signed_in = {"user": principal.name} if principal and session else None
        answer = _templates.TemplateResponse(
            request,
            template,
            {"version": __version__, "signed_in": signed_in, "form_csrf": form_csrf, **context},
            status_code=status,
        )
        if nonce is not None and nonce != request.cookies.get(FORM_COOKIE):
            answer.set_cookie(FORM_COOKIE, nonce, httponly=True, samesite="strict", secure=_https(request))
        return answer

    def form_is_ours(request: Request, form: dict[str, str]) -> bool:
        """Whether a posted form carries this browser's anti-forgery token (see ``page``)."""
        session = session_credential(request.scope.get("headers", []))
        given = form.get("csrf")
        return (
            csrf_matches(session, given) if session else csrf_matches(request.cookies.get(FORM_COOKIE), given)
        )

    def sign_in_page(request: Request, next_page: str, message: str = "", status: int = 200) -> HTMLResponse:
        nonce = secrets.token_urlsafe(24)
        answer = page(
            request,
            "login.html",
            status,
            next_page=_safe_next(next_page),
            message=message,
            csrf=csrf_token(nonce),
            auth=isinstance(store, VerifiesCredentials),
        )
        answer.set_cookie(
            LOGIN_COOKIE, nonce, max_age=3600, httponly=True, samesite="strict", secure=_https(request)
        )
        return answer

    @router.get("/login")
    def login_form(request: Request, next: str = "/") -> HTMLResponse:
        return sign_in_page(request, next)

    @router.post("/login", response_model=None)
    async def login(request: Request) -> Response:
        form = await _form(request)
        name, password, target = form.get("user", ""), form.get("password", ""), form.get("next", "/")
        if not csrf_matches(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
            message = "This sign-in form has expired or came from another site: sign in again here."
            return sign_in_page(request, target, message, 400)
        if not name or not password:
            return sign_in_page(request, target, "Enter your user name and password.", 400)
        if not isinstance(store, VerifiesCredentials) or not isinstance(store, AuthStore):
            return sign_in_page(request, target, "This server has no users to sign in as.", 400)
        client = request.client.host if request.client is not None else "unknown"
        wait = failures.retry_after(client)
        if wait > 0:
            message = f"Too many failed sign-ins from {client}; try again in {int(wait) + 1} s."
            return sign_in_page(request, target, message, 429)
        user = await run_in_threadpool(store.check_password, name, password)
        if user is None:
            failures.fail(client)
            details = {"client": client, "via": "web"}
            await run_in_threadpool(
                store.record_security_event, "anonymous", "login_failed", f"user/{name}", details
            )
            return sign_in_page(
                request, target, "Wrong user name or password (or the user is disabled).", 401
            )
        await run_in_threadpool(
            store.record_security_event,
            user.name,
            "login",
            f"user/{user.name}",
            {"client": client, "via": "web"},
        )
        expires = now_ms() + SESSION_HOURS * 3_600_000
        _, secret = await run_in_threadpool(
            store.create_token, user.name, "web session", user.name, None, expires
        )
        answer = RedirectResponse(_safe_next(target), status_code=303)
        answer.set_cookie(
            SESSION_COOKIE,
            secret,
            max_age=SESSION_HOURS * 3600,
            httponly=True,
            samesite="strict",
            secure=_https(request),
        )
        answer.delete_cookie(LOGIN_COOKIE)
        return answer

    @router.post("/logout", response_model=None)
    async def logout(request: Request) -> Response:
        form = await _form(request)
        session = session_credential(request.scope.get("headers", []))
        if session is None or not csrf_matches(session, form.get("csrf")):
            message = (
                "Signing out needs the form of a page of this site (its anti-forgery token did not match)."
            )
            return page(request, "error.html", 400, title="Sign out", message=message)
        if isinstance(store, VerifiesCredentials) and isinstance(store, AuthStore):
            found = await run_in_threadpool(store.verify_token, session)
            if found is not None:
                await run_in_threadpool(store.revoke_token, found[1].id, found[0].name)
        answer = RedirectResponse("/login", status_code=303)
        answer.delete_cookie(SESSION_COOKIE)
        return answer

    @router.get("/")
    def experiments(request: Request) -> HTMLResponse:
        return page(request, "experiments.html", experiments=store.list_experiments())

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
            experiment = store.get_experiment(experiment_id)
        except NotFound as exc:
            return page(request, "error.html", 404, title="Not found", message=exc.message)
        error = ""
        runs: list[Run] = []
        next_token = None
        try:
            chosen = _chosen(cols, col)
            columns_arg = None
            if chosen:  # only what the table shows is loaded
                columns_arg = list(dict.fromkeys([*chosen, *([order.split()[0]] if order else [])]))
            result = store.search_runs(
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
        return page(
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
    ) -> HTMLResponse:
        ids = list(dict.fromkeys(r for r in run if r))
        if not 2 <= len(ids) <= MAX_COMPARE:
            message = (
                f"Choose from 2 to {MAX_COMPARE} runs to compare (tick them in a runs table); got {len(ids)}."
            )
            return page(request, "error.html", 400, title="Compare runs", message=message)
        try:
            runs = [store.get_run(r) for r in ids]
        except NotFound as exc:
            return page(request, "error.html", 404, title="Not found", message=exc.message)
        rows = _compare_rows(runs)
        differing = sum(1 for _, _, differs in rows if differs)
        total = len(rows)
        rows = [row for row in rows if row[2] or not only_diff]
        query = urlencode([("run", r) for r in ids] + ([] if only_diff else [("only_diff", "true")]))
        return page(
            request,
            "compare.html",
            runs=list(zip(runs, _labels(runs), strict=True)),
            rows=rows,
            differing=differing,
            total=total,
            only_diff=only_diff,
            toggle_link=f"?{query}",
        )

    @router.get("/models")
    def models(request: Request) -> HTMLResponse:
        return page(request, "models.html", models=store.list_registered_models())

    @router.get("/models/{name}")
    def model_page(request: Request, name: str, message: str = "") -> HTMLResponse:
        try:
            model = store.get_registered_model(name)
        except NotFound as exc:
            return page(request, "error.html", 404, title="Not found", message=exc.message)
        versions = sorted(store.list_model_versions(name), key=lambda v: -v.version)
        records = sorted(store.list_model_records(name), key=lambda r: -r.id)
        principal = getattr(request.state, "principal", None)
        may_decide = client_for is not None and (principal is None or principal.can("approve"))
        return page(
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
        form = await _form(request)
        principal = getattr(request.state, "principal", None)
        if not form_is_ours(request, form):
            message = (
                "This form came from another site or has expired (its anti-forgery token did not match)."
            )
            return page(request, "error.html", 400, title="Not decided", message=message)
        decision, comment = form.get("decision", ""), form.get("comment", "").strip()
        if decision not in ("approve", "reject") or client_for is None:
            return page(request, "error.html", 400, title="Not decided", message="Choose approve or reject.")
        client = client_for(principal.name if principal is not None else None)
        act = governance.approve_model if decision == "approve" else governance.reject_model
        try:
            await run_in_threadpool(lambda: act(name, version, reason=comment, client=client))
        except ShipyardError as exc:
            return page(request, "error.html", exc.http_status, title="Not decided", message=exc.message)
        done = f"{'Approved' if decision == 'approve' else 'Rejected'} version {version}."
        return RedirectResponse(
            f"/models/{quote(name, safe='')}?{urlencode({'message': done})}", status_code=303
        )

    @router.get("/runs/{run_id}")
    def run_page(request: Request, run_id: str) -> HTMLResponse:
        try:
            run = store.get_run(run_id)
        except NotFound as exc:
            return page(request, "error.html", 404, title="Not found", message=exc.message)
        charts = []
        for key in sorted(run.metrics)[:MAX_CHARTS]:
            history = store.get_metric_history(run_id, key)
            if len(history) > 1:
                drawn = chart(key, history.steps, history.values, CHART_POINTS)
                if drawn is not None:
                    charts.append(drawn)
        more = max(len(run.metrics) - MAX_CHARTS, 0)
        return page(
            request, "run.html", run=run, artifacts=store.list_artifacts(run_id), charts=charts, more=more
        )

    return router
