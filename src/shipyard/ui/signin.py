"""Signing in and out of the web UI: ``/login`` sets a session (an API token of the user, for
pages only, in an ``HttpOnly``, ``SameSite=Strict`` cookie); ``/logout`` revokes it."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from shipyard.auth import SESSION_COOKIE, csrf_matches, csrf_token, session_credential
from shipyard.entities import now_ms
from shipyard.store.base import AuthStore, VerifiesCredentials
from shipyard.ui.core import LOGIN_COOKIE, SESSION_HOURS, UI, https, page_router, read_form

__all__ = ["routes", "safe_next"]


def safe_next(target: str) -> str:
    """Where to go after signing in: a path on this site only (never ``//host`` or a URL)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target or len(target) > 2000:
        return "/"
    return target


def routes(ui: UI) -> APIRouter:
    """``GET``/``POST /login`` and ``POST /logout``."""
    router = page_router()

    def sign_in_page(request: Request, next_page: str, message: str = "", status: int = 200) -> HTMLResponse:
        nonce = secrets.token_urlsafe(24)
        answer = ui.page(
            request,
            "login.html",
            status,
            next_page=safe_next(next_page),
            message=message,
            csrf=csrf_token(nonce),
            auth=isinstance(ui.store, VerifiesCredentials),
        )
        answer.set_cookie(
            LOGIN_COOKIE, nonce, max_age=3600, httponly=True, samesite="strict", secure=https(request)
        )
        return answer

    @router.get("/login")
    def login_form(request: Request, next: str = "/") -> HTMLResponse:
        return sign_in_page(request, next)

    @router.post("/login", response_model=None)
    async def login(request: Request) -> Response:
        form = await read_form(request)
        name, password, target = form.get("user", ""), form.get("password", ""), form.get("next", "/")
        if not csrf_matches(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
            message = "This sign-in form has expired or came from another site: sign in again here."
            return sign_in_page(request, target, message, 400)
        if not name or not password:
            return sign_in_page(request, target, "Enter your user name and password.", 400)
        if not isinstance(ui.store, VerifiesCredentials) or not isinstance(ui.store, AuthStore):
            return sign_in_page(request, target, "This server has no users to sign in as.", 400)
        client = request.client.host if request.client is not None else "unknown"
        wait = ui.limiter.retry_after(client)
        if wait > 0:
            message = f"Too many failed sign-ins from {client}; try again in {int(wait) + 1} s."
            return sign_in_page(request, target, message, 429)
        user = await run_in_threadpool(ui.store.check_password, name, password)
        if user is None:
            ui.limiter.fail(client)
            details = {"client": client, "via": "web"}
            await run_in_threadpool(
                ui.store.record_security_event, "anonymous", "login_failed", f"user/{name}", details
            )
            return sign_in_page(
                request, target, "Wrong user name or password (or the user is disabled).", 401
            )
        await run_in_threadpool(
            ui.store.record_security_event,
            user.name,
            "login",
            f"user/{user.name}",
            {"client": client, "via": "web"},
        )
        expires = now_ms() + SESSION_HOURS * 3_600_000
        _, secret = await run_in_threadpool(
            ui.store.create_token, user.name, "web session", user.name, None, expires
        )
        answer = RedirectResponse(safe_next(target), status_code=303)
        answer.set_cookie(
            SESSION_COOKIE,
            secret,
            max_age=SESSION_HOURS * 3600,
            httponly=True,
            samesite="strict",
            secure=https(request),
        )
        answer.delete_cookie(LOGIN_COOKIE)
        return answer

    @router.post("/logout", response_model=None)
    async def logout(request: Request) -> Response:
        form = await read_form(request)
        session = session_credential(request.scope.get("headers", []))
        if session is None or not csrf_matches(session, form.get("csrf")):
            message = (
                "Signing out needs the form of a page of this site (its anti-forgery token did not match)."
            )
            return ui.error(request, 400, "Sign out", message)
        if isinstance(ui.store, VerifiesCredentials) and isinstance(ui.store, AuthStore):
            found = await run_in_threadpool(ui.store.verify_token, session)
            if found is not None:
                await run_in_threadpool(ui.store.revoke_token, found[1].id, found[0].name)
        answer = RedirectResponse("/login", status_code=303)
        answer.delete_cookie(SESSION_COOKIE)
        return answer

    return router
