"""The approvals queue: exactly the versions whose promotion waits for an approval (made blocked
through the registry's own governance here), the longest waiting first, with their gates'
evidence; an approver decides from it and the version leaves it; a viewer sees the queue but no
form, a forged decision is refused (403) and one without this site's token changes nothing (400)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_harness import Borrowed, SyncASGITransport, make_settings

from shipyard.entities import Artifact, ModelVersionCreate
from shipyard.registry import governance
from shipyard.server import create_app
from shipyard.server.app import app_state
from shipyard.store.sql import SqlStore
from shipyard.tracking import Client

PASSWORD = "correct horse battery staple"
XSS = "<script>alert(1)</script>"
POLICY = {"gates": [{"max_size_mb": 50}], "approvals": {"required": 1, "role": "approver"}}


def _version(store: SqlStore, name: str, author: str, digest: str) -> int:
    spec = ModelVersionCreate(
        name=name,
        digest=digest,
        flavor="sklearn",
        files=[Artifact("shipyard-model.yaml", digest, 1)],
        signature={"inputs": [], "outputs": []},
        created_by=author,
    )
    return store.create_model_version(spec).version


class Site:
    def __init__(self, transport: SyncASGITransport, store: SqlStore, clients: dict[str, Client]) -> None:
        self.transport, self.store, self.clients = transport, store, clients

    def browser(self, user: str) -> httpx.Client:
        http = httpx.Client(transport=Borrowed(self.transport), base_url="http://testserver")
        csrf = re.search(r'name="csrf" value="([^"]+)"', http.get("/login").text)
        assert csrf
        answer = http.post(
            "/login", data={"user": user, "password": PASSWORD, "csrf": csrf.group(1), "next": "/"}
        )
        assert answer.status_code == 303, answer.text
        return http


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """churn v1 (sam), v2 (sam), v3 (ann) under a policy needing one approval, promoted in the
    order v3, v1, v2 (all blocked), then v2 rejected by bob; fraud v1 has no policy and promotes."""
    app = create_app(make_settings(tmp_path, auth=True))
    state = app_state(app)
    store = state.store
    assert isinstance(store, SqlStore)
    roles = {"sam": ["scientist"], "ann": ["approver"], "bob": ["approver"], "vic": ["viewer"]}
    for name, user_roles in {**roles, "root": ["admin"]}.items():
        store.create_user(name, user_roles, "test", password=PASSWORD)
    clients = {u: Client.from_stores(state.settings.replace(user=u), store, state.blobs) for u in roles}
    clients["root"] = Client.from_stores(state.settings.replace(user="root"), store, state.blobs)
    store.create_registered_model("churn", XSS, "sam")
    store.create_registered_model("fraud", XSS, "sam")
    for author, digest in (("sam", "a"), ("sam", "b"), ("ann", "c")):
        _version(store, "churn", author, digest * 64)
    _version(store, "fraud", "sam", "d" * 64)
    governance.set_promotion_policy("churn", POLICY, reason="four eyes", client=clients["root"])
    for v in (3, 1, 2):
        result = governance.promote_model("churn", v, alias="champion", client=clients["sam"])
        assert result.status == "blocked"
    governance.reject_model("churn", 2, reason="worse on <north>", client=clients["bob"])
    assert governance.promote_model("fraud", 1, client=clients["sam"]).promoted
    transport = SyncASGITransport(app)
    yield Site(transport, store, clients)
    transport.close()


def _queue(page: str) -> list[str]:
    """The queue's rows (model-version), in order."""
    return re.findall(r'<tr id="pending-([^"]+)">', page)


def _queue_csrf(page: str, row: str) -> str:
    body = page.split(f'<tr id="pending-{row}">', 1)[1].split("</tr>", 1)[0]
    found = re.search(r'class="decide">\s*<input type="hidden" name="csrf" value="([^"]+)"', body)
    assert found, body
    return found.group(1)


def test_the_queue_lists_exactly_the_versions_awaiting_a_decision_oldest_first(site: Site) -> None:
    vic = site.browser("vic")
    page = vic.get("/approvals")
    assert page.status_code == 200
    assert _queue(page.text) == ["churn-3", "churn-1"]  # v2 is rejected, fraud has no policy
    row = page.text.split('<tr id="pending-churn-1">', 1)[1].split("</tr>", 1)[0]
    assert "model size ≤ 50 MB: pass" in row and "size_mb=" in row
    assert "1 of 1 gates passed" in row and "0 of 1 from approver" in row
    assert 'href="/models/churn#v1"' in row
    vic.close()


def test_the_registry_and_the_page_agree_on_what_waits(site: Site) -> None:
    pending = governance.pending_approvals(client=site.clients["vic"])
    assert [(p.name, p.version) for p in pending] == [("churn", 3), ("churn", 1)]
    assert pending[0].created_by == "ann" and pending[0].promotion.alias == "champion"
    assert pending[0].approvals["required"] == 1 and pending[0].approvals["approved_by"] == []


def test_an_approver_approves_from_the_queue_and_the_version_leaves_it(site: Site) -> None:
    ann = site.browser("ann")
    page = ann.get("/approvals").text
    assert "You registered it" in page.split('<tr id="pending-churn-3">', 1)[1].split("</tr>", 1)[0]
    form = {
        "csrf": _queue_csrf(page, "churn-1"),
        "decision": "approve",
        "comment": "ok <b>",
        "back": "approvals",
    }
    done = ann.post("/models/churn/versions/1/decide", data=form)
    assert done.status_code == 303 and done.headers["location"].startswith("/approvals?")
    after = ann.get(done.headers["location"]).text
    assert "Approved version 1 of churn." in after
    assert _queue(after) == ["churn-3"]
    record = site.store.list_model_records("churn", 1, "approval")[-1]
    assert (record.actor, record.body["decision"], record.body["comment"]) == ("ann", "approve", "ok <b>")
    # approved: promoting again now moves the alias
    assert governance.promote_model("churn", 1, client=site.clients["sam"]).promoted
    ann.close()


def test_a_rejection_from_the_queue_needs_a_comment_and_removes_the_version(site: Site) -> None:
    bob = site.browser("bob")
    page = bob.get("/approvals").text
    form = {"csrf": _queue_csrf(page, "churn-3"), "decision": "reject", "back": "approvals"}
    assert bob.post("/models/churn/versions/3/decide", data=form).status_code == 400
    form["comment"] = "fails on July data"
    done = bob.post("/models/churn/versions/3/decide", data=form)
    assert done.status_code == 303
    assert _queue(bob.get(done.headers["location"]).text) == ["churn-1"]
    bob.close()


def test_the_way_back_is_only_a_known_local_page(site: Site) -> None:
    ann = site.browser("ann")
    page = ann.get("/approvals").text
    form = {"csrf": _queue_csrf(page, "churn-1"), "decision": "approve", "back": "//evil.example/x"}
    done = ann.post("/models/churn/versions/1/decide", data=form)
    assert done.status_code == 303 and done.headers["location"].startswith("/models/churn?")
    ann.close()


def test_a_viewer_sees_the_queue_without_forms_and_a_forged_decision_is_refused(site: Site) -> None:
    vic = site.browser("vic")
    page = vic.get("/approvals").text
    assert _queue(page) and 'value="approve"' not in page and 'name="back"' not in page
    token = re.search(r'name="csrf" value="([^"]+)"', page)  # the sign-out form's: a valid token
    assert token
    forged = {"csrf": token.group(1), "decision": "approve", "back": "approvals"}
    assert vic.post("/models/churn/versions/1/decide", data=forged).status_code == 403
    assert site.store.list_model_records("churn", 1, "approval") == []
    vic.close()


def test_a_decision_without_this_sites_token_changes_nothing(site: Site) -> None:
    ann = site.browser("ann")
    for token in ({}, {"csrf": "guessed"}):
        answer = ann.post(
            "/models/churn/versions/1/decide", data={**token, "decision": "approve", "back": "approvals"}
        )
        assert answer.status_code == 400 and "anti-forgery" in answer.text
    assert site.store.list_model_records("churn", 1, "approval") == []
    ann.close()


def test_bad_versions_answer_an_html_page_not_a_500(site: Site) -> None:
    ann = site.browser("ann")
    page = ann.get("/approvals").text
    for version in ("nope", "0", "99"):
        answer = ann.post(
            f"/models/churn/versions/{version}/decide",
            data={"csrf": _queue_csrf(page, "churn-1"), "decision": "approve"},
        )
        assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
    ann.close()


def test_without_a_session_the_queue_sends_you_to_sign_in(site: Site) -> None:
    with httpx.Client(transport=Borrowed(site.transport), base_url="http://testserver") as anonymous:
        answer = anonymous.get("/approvals")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login?")
