"""What every page shares: the templates, their filters, and :class:`UI`, which renders a page
with the signed-in user and the anti-forgery token its forms carry, and checks that token when a
form comes back.

Each area of the UI (runs, models, datasets, …) is a module with ``routes(ui) -> APIRouter``;
:func:`shipyard.ui.pages.build_router` puts them together.
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape

from shipyard.auth import FailureLimiter, Principal, csrf_matches, csrf_token, session_credential
from shipyard.entities import Run
from shipyard.errors import ShipyardError
from shipyard.store import Store
from shipyard.tracking import Client
from shipyard.version import __version__

__all__ = [
    "FORM_COOKIE",
    "LOGIN_COOKIE",
    "PageRoute",
    "SESSION_HOURS",
    "STATIC_DIR",
    "UI",
    "duration",
    "error_page",
    "https",
    "number",
    "page_router",
    "read_form",
    "templates",
    "when",
]

STATIC_DIR = Path(__file__).parent / "static"
FORM_COOKIE = "shipyard_forms"
"""Without a session (auth off): the nonce the pages' anti-forgery tokens derive from."""
LOGIN_COOKIE = "shipyard_login"
"""Holds the sign-in form's anti-forgery nonce until the form comes back (double submit)."""
SESSION_HOURS = 12
"""How long a browser stays signed in: its session is an API token that expires then."""

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
templates = Jinja2Templates(env=_env)


def number(value: float | None) -> str:
    """A number as the pages show it: 6 significant digits, NaN and ±∞ spelled out."""
    if value is None:
        return ""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:.6g}"


def when(ms: int | None) -> str:
    """Epoch milliseconds as UTC ``YYYY-MM-DD HH:MM:SS`` (empty for None)."""
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(run: Run) -> str:
    """How long a finished run took (empty while it runs)."""
    if run.end_time is None:
        return ""
    seconds = max(run.end_time - run.start_time, 0) / 1000
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


_env.filters["number"] = number
_env.filters["when"] = when
_env.filters["duration"] = duration


def error_page(request: Request, status: int, title: str, message: str, **context: Any) -> HTMLResponse:
    """The error page: ``title`` and a ``message`` that says what went wrong and what to do."""
    base = {"version": __version__, "signed_in": None, "form_csrf": ""}
    return templates.TemplateResponse(
        request,
        "error.html",
        {**base, **context, "title": title, "message": message},
        status_code=status,
    )


def _query_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body"))
        parts.append(f"{where or 'the address'}: {err.get('msg', 'invalid')}")
    return "This address is not one the page understands (" + "; ".join(parts) + "). Fix it and try again."


class PageRoute(APIRoute):
    """A page's route: a query or path value FastAPI cannot read answers the HTML error page (400),
    not the API's JSON, and so does a refusal of the client's input that a page did not catch
    itself (a :class:`ShipyardError` with a 4xx status: a NUL in a name, say)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return error_page(request, 400, "Bad address", _query_message(exc))
            except ShipyardError as exc:
                if not 400 <= exc.http_status < 500:
                    raise
                return error_page(request, exc.http_status, "Not shown", exc.message)

        return answer


def page_router() -> APIRouter:
    """The router of an area's pages (HTML answers, outside the OpenAPI schema, :class:`PageRoute`)."""
    return APIRouter(include_in_schema=False, default_response_class=HTMLResponse, route_class=PageRoute)


def https(request: Request) -> bool:
    return request.url.scheme == "https"


async def read_form(request: Request, max_fields: int = 20) -> dict[str, str]:
    """A urlencoded form's fields (the last value of each); anything else reads as no fields."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return {}
    body = await request.body()
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=max_fields)
    except (UnicodeDecodeError, ValueError):
        return {}
    return dict(pairs)


@dataclass
class UI:
    """The store the pages read, and how they act and render.

    ``client_for(actor)`` gives the SDK client that acts as ``actor`` (None: the server's own user)
    for the pages' actions (approving, rolling back); without it the pages only read.
    ``limiter`` counts failed sign-ins per client. ``reader`` is the SDK client the pages read
    stored data through (dataset profiles and rows live in the blob store, which ``store`` does not
    reach); without it those parts of the pages say they cannot be shown.
    """

    store: Store
    client_for: Callable[[str | None], Client] | None = None
    limiter: FailureLimiter = field(default_factory=FailureLimiter)
    reader: Client | None = None

    @staticmethod
    def principal(request: Request) -> Principal | None:
        """The signed-in caller (None with auth off)."""
        return getattr(request.state, "principal", None)

    def may(self, request: Request, permission: str) -> bool:
        """Whether the page may offer an action needing ``permission`` (the server checks again)."""
        principal = self.principal(request)
        return self.client_for is not None and (principal is None or principal.can(permission))

    def client(self, request: Request) -> Client:
        """The SDK client acting as the caller (only where :meth:`may` said yes)."""
        if self.client_for is None:
            raise RuntimeError("this UI only reads: it was built without client_for")
        principal = self.principal(request)
        return self.client_for(principal.name if principal is not None else None)

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        """``template`` rendered with ``context`` plus ``version``, ``signed_in`` and ``form_csrf``."""
        principal = self.principal(request)
        session = session_credential(request.scope.get("headers", []))
        # Forms carry a token derived from the session, or without one (auth off) from a nonce in
        # a SameSite=Strict cookie: a page of another site can send neither.
        nonce = None if session else (request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(24))
        form_csrf = csrf_token(session or nonce or "")
        signed_in = {"user": principal.name} if principal and session else None
        answer = templates.TemplateResponse(
            request,
            template,
            {"version": __version__, "signed_in": signed_in, "form_csrf": form_csrf, **context},
            status_code=status,
        )
        if nonce is not None and nonce != request.cookies.get(FORM_COOKIE):
            answer.set_cookie(FORM_COOKIE, nonce, httponly=True, samesite="strict", secure=https(request))
        return answer

    def error(self, request: Request, status: int, title: str, message: str) -> HTMLResponse:
        """The error page: ``title`` and a ``message`` that says what went wrong and what to do."""
        return self.page(request, "error.html", status, title=title, message=message)

    def form_is_ours(self, request: Request, form: dict[str, str]) -> bool:
        """Whether a posted form carries this browser's anti-forgery token (see :meth:`page`)."""
        session = session_credential(request.scope.get("headers", []))
        given = form.get("csrf")
        if session:
            return csrf_matches(session, given)
        return csrf_matches(request.cookies.get(FORM_COOKIE), given)
