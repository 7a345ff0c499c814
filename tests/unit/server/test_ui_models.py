"""The models pages: versions, reviews and promotions, and the approvals form: an approver approves
or rejects with a comment, a viewer sees no buttons and a forged form is refused, the author cannot
approve their own version, and no form works without this site's anti-forgery token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_harness import Borrowed, SyncASGITransport, make_settings

from shipyard.entities import Artifact, ModelVersionCreate
from shipyard.server import create_app
from shipyard.server.app import app_state
from shipyard.store.sql import SqlStore

PASSWORD = "correct horse battery staple"
NAME = "churn"
XSS = "<script>alert(1)</script>"


def _version(store: SqlStore, name: str, author: str, digest: str = "a" * 64) -> int:
    store.create_registered_model(name, XSS, author)
    spec = ModelVersionCreate(
        name=name,
        digest=digest,
        flavor="sklearn",
        files=[Artifact("shipyard-model.yaml", digest, 1)],
        signature={"inputs": [], "outputs": []},
        created_by=author,
    )
    return store.create_model_version(spec).version


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[SyncASGITransport, SqlStore]]:
    app = create_app(make_settings(tmp_path, auth=True))
    store = app_state(app).store
    assert isinstance(store, SqlStore)
    for name, roles in {"sam": ["scientist"], "ann": ["approver"], "vic": ["viewer"]}.items():
        store.create_user(name, roles, "test", password=PASSWORD)
    _version(store, NAME, "sam")
    transport = SyncASGITransport(app)
    yield transport, store
    transport.close()


def _browser(transport: SyncASGITransport, user: str) -> httpx.Client:
    http = httpx.Client(transport=Borrowed(transport), base_url="http://testserver")
    page = http.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    answer = http.post(
        "/login", data={"user": user, "password": PASSWORD, "csrf": csrf.group(1), "next": "/"}
    )
    assert answer.status_code == 303, answer.text
    return http


def _model_url() -> str:
    return "/models/churn"


def _form_csrf(page: str) -> str:
    found = re.search(r'class="decide">\s*<input type="hidden" name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def test_an_approver_approves_and_rejects_with_a_comment(site: tuple[SyncASGITransport, SqlStore]) -> None:
    transport, store = site
    ann = _browser(transport, "ann")
    listing = ann.get("/models").text
    assert ">churn</a>" in listing and "&lt;script&gt;" in listing and "<script>" not in listing
    page = ann.get(_model_url()).text
    assert 'value="approve"' in page
    decide = _model_url() + "/versions/1/decide"
    done = ann.post(decide, data={"csrf": _form_csrf(page), "decision": "approve", "comment": "fair <ok>"})
    assert done.status_code == 303
    after = ann.get(done.headers["location"]).text
    assert "Approved version 1." in after and "approve: fair &lt;ok&gt;" in after
    record = store.list_model_records(NAME, 1, "approval")[-1]
    assert (record.actor, record.body["decision"], record.body["comment"]) == ("ann", "approve", "fair <ok>")
    no_reason = ann.post(decide, data={"csrf": _form_csrf(after), "decision": "reject", "comment": ""})
    assert no_reason.status_code == 400 and "needs a reason" in no_reason.text
    ann.close()


def test_a_viewer_sees_no_buttons_and_a_forged_approval_is_refused(
    site: tuple[SyncASGITransport, SqlStore],
) -> None:
    transport, store = site
    for user in ("vic", "sam"):  # a viewer, and the author (a scientist): neither may approve
        browser = _browser(transport, user)
        page = browser.get(_model_url()).text
        assert 'value="approve"' not in page and "<h2>Versions</h2>" in page
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)  # the sign-out form's token: the right one
        assert csrf
        forged = browser.post(
            _model_url() + "/versions/1/decide", data={"csrf": csrf.group(1), "decision": "approve"}
        )
        assert forged.status_code == 403
        browser.close()
    assert store.list_model_records(NAME, 1, "approval") == []


def test_the_author_cannot_approve_their_own_version(site: tuple[SyncASGITransport, SqlStore]) -> None:
    transport, store = site
    assert _version(store, NAME, "ann", "b" * 64) == 2  # by ann
    ann = _browser(transport, "ann")
    page = ann.get(_model_url()).text
    answer = ann.post(
        _model_url() + "/versions/2/decide", data={"csrf": _form_csrf(page), "decision": "approve"}
    )
    assert answer.status_code == 403 and "four eyes" in answer.text
    assert store.list_model_records(NAME, 2, "approval") == []
    ann.close()


def test_a_form_without_this_sites_token_changes_nothing(site: tuple[SyncASGITransport, SqlStore]) -> None:
    transport, store = site
    ann = _browser(transport, "ann")
    answer = ann.post(_model_url() + "/versions/1/decide", data={"decision": "approve", "csrf": "guessed"})
    assert answer.status_code == 400
    assert store.list_model_records(NAME, 1, "approval") == []
    ann.close()


def test_without_auth_the_local_user_approves_with_the_pages_token(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, user="lee"))
    store = app_state(app).store
    assert isinstance(store, SqlStore)
    _version(store, "local", "sam")
    store.create_user("lee", ["approver"], "test")  # without auth, the local user's roles still count
    transport = SyncASGITransport(app)
    with httpx.Client(transport=Borrowed(transport), base_url="http://testserver") as http:
        page = http.get("/models/local").text
        assert 'value="approve"' in page
        forged = httpx.Client(transport=Borrowed(transport), base_url="http://testserver")  # no cookie
        token = _form_csrf(page)
        assert (
            forged.post(
                "/models/local/versions/1/decide", data={"csrf": token, "decision": "approve"}
            ).status_code
            == 400
        )
        done = http.post("/models/local/versions/1/decide", data={"csrf": token, "decision": "approve"})
        assert done.status_code == 303
        assert store.list_model_records("local", 1, "approval")[-1].actor == "lee"
    transport.close()
