"""Signing in to the web UI with auth on: a session cookie for pages only, anti-forgery tokens on
every form, failed sign-ins limited and audited, open redirects refused, signing out revokes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_harness import SyncASGITransport, make_settings

from shipyard.auth import MAX_FAILURES, SESSION_COOKIE
from shipyard.server import create_app
from shipyard.server.app import app_state
from shipyard.store.sql import SqlStore
from shipyard.ui.core import LOGIN_COOKIE

PASSWORD = "correct horse battery staple"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[tuple[httpx.Client, SqlStore]]:
    app = create_app(make_settings(tmp_path, auth=True))
    store = app_state(app).store
    assert isinstance(store, SqlStore)
    store.create_user("vic", ["viewer"], "test", password=PASSWORD)
    transport = SyncASGITransport(app)
    with httpx.Client(transport=transport, base_url="http://testserver") as http:
        yield http, store
    transport.close()


def _form_csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def _sign_in(
    http: httpx.Client, password: str = PASSWORD, next_page: str = "/", **form: str
) -> httpx.Response:
    page = http.get("/login", params={"next": next_page})
    fields = {"user": "vic", "password": password, "next": next_page, "csrf": _form_csrf(page.text), **form}
    return http.post("/login", data=fields)


def _cookie_flags(answer: httpx.Response, name: str) -> str:
    found = [v for k, v in answer.headers.multi_items() if k == "set-cookie" and v.startswith(f"{name}=")]
    assert found, answer.headers
    return found[0].lower()


def test_pages_send_a_browser_without_a_session_to_sign_in(browser: tuple[httpx.Client, SqlStore]) -> None:
    http, _ = browser
    answer = http.get("/experiments/1", params={"filter": "metrics.a > 1"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fexperiments%2F1%3Ffilter%3Dmetrics.a%2B%253E%2B1"
    assert http.get("/api/v1/experiments").status_code == 401  # the API answers, it does not redirect


def test_signing_in_sets_a_strict_httponly_session_for_pages_only(
    browser: tuple[httpx.Client, SqlStore],
) -> None:
    http, store = browser
    page = http.get("/login")
    assert page.status_code == 200 and "httponly" in _cookie_flags(page, LOGIN_COOKIE)
    assert page.headers["x-frame-options"] == "DENY" or "frame-ancestors" in page.headers.get(
        "content-security-policy", ""
    )
    answer = _sign_in(http, next_page="/compare?run=a&run=b")
    assert answer.status_code == 303 and answer.headers["location"] == "/compare?run=a&run=b"
    flags = _cookie_flags(answer, SESSION_COOKIE)
    assert "httponly" in flags and "samesite=strict" in flags and "max-age=43200" in flags
    home = http.get("/")
    assert home.status_code == 200 and "<span>vic</span>" in home.text and 'action="/logout"' in home.text
    assert http.get("/api/v1/experiments").status_code == 401  # the cookie is not a credential for the API
    events = [e.action for e in store.list_audit(limit=100)]
    assert "security.login" in events


def test_a_sign_in_form_from_elsewhere_is_refused(browser: tuple[httpx.Client, SqlStore]) -> None:
    http, _ = browser
    http.get("/login")
    forged = http.post("/login", data={"user": "vic", "password": PASSWORD, "csrf": "guessed"})
    assert forged.status_code == 400 and SESSION_COOKIE not in forged.headers.get("set-cookie", "")
    no_cookie = httpx.Client(transport=http._transport, base_url="http://testserver")
    token = _form_csrf(http.get("/login").text)
    assert (
        no_cookie.post("/login", data={"user": "vic", "password": PASSWORD, "csrf": token}).status_code == 400
    )


def test_wrong_passwords_are_audited_and_limited(browser: tuple[httpx.Client, SqlStore]) -> None:
    http, store = browser
    for _ in range(MAX_FAILURES):
        answer = _sign_in(http, password="wrong")
        assert answer.status_code == 401 and 'id="login-error"' in answer.text
    assert _sign_in(http).status_code == 429  # even the right password waits now
    failed = [e for e in store.list_audit(limit=1000) if e.action == "security.login_failed"]
    assert len(failed) == MAX_FAILURES and PASSWORD not in str([e.after for e in failed])


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example", "javascript:alert(1)", "/\\evil"]
)
def test_signing_in_never_sends_the_browser_off_site(
    browser: tuple[httpx.Client, SqlStore], target: str
) -> None:
    http, _ = browser
    answer = _sign_in(http, next_page=target)
    assert answer.status_code == 303 and answer.headers["location"] == "/"


def test_signing_out_needs_the_pages_token_and_revokes_the_session(
    browser: tuple[httpx.Client, SqlStore],
) -> None:
    http, store = browser
    assert _sign_in(http).status_code == 303
    session = http.cookies[SESSION_COOKIE]
    forged = http.post("/logout", data={"csrf": "x"})
    assert forged.status_code == 400 and http.get("/").status_code == 200  # still signed in
    out = http.post("/logout", data={"csrf": _form_csrf(http.get("/").text)})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert http.get("/").status_code == 303
    replay = httpx.Client(
        transport=http._transport, base_url="http://testserver", cookies={SESSION_COOKIE: session}
    )
    assert replay.get("/").status_code == 303  # the old cookie is revoked, not only forgotten
    assert store.verify_token(session) is None


def test_pages_may_load_their_stylesheet_and_post_forms_here_only(
    browser: tuple[httpx.Client, SqlStore],
) -> None:
    http, _ = browser
    page_policy = http.get("/login").headers["content-security-policy"]
    assert "style-src 'self'" in page_policy and "form-action 'self'" in page_policy
    assert "script-src 'self';" in page_policy and "frame-ancestors 'none'" in page_policy
    assert (
        "unsafe-inline" not in page_policy and "unsafe-eval" not in page_policy
    )  # scripts from files here only
    api_policy = http.get("/api/v1/experiments").headers["content-security-policy"]
    assert api_policy.startswith("default-src 'none'") and "style-src" not in api_policy
