"""The audit log's pages: entries newest first, paged by ``before``, filtered by actor, event and
subject prefix; "Verify chain" runs the audit layer's own verification and reports OK on an
intact store and the first broken entry when a row is edited in SQLite behind the store's back;
what users wrote into entries is shown as text; bad query values answer an HTML 400."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_harness import Borrowed, SyncASGITransport, make_settings
from sqlalchemy import create_engine, text

from shipyard.server import create_app
from shipyard.server.app import app_state
from shipyard.store.sql import SqlStore
from shipyard.tracking import Client
from shipyard.ui import audit as audit_ui

PASSWORD = "correct horse battery staple"
XSS = "<script>alert(1)</script>"


class Site:
    def __init__(self, transport: SyncASGITransport, store: SqlStore, uri: str) -> None:
        self.transport, self.store, self.uri = transport, store, uri

    def browser(self, user: str) -> httpx.Client:
        http = httpx.Client(transport=Borrowed(self.transport), base_url="http://testserver")
        csrf = re.search(r'name="csrf" value="([^"]+)"', http.get("/login").text)
        assert csrf
        answer = http.post(
            "/login", data={"user": user, "password": PASSWORD, "csrf": csrf.group(1), "next": "/"}
        )
        assert answer.status_code == 303, answer.text
        return http

    def sql(self, statement: str) -> None:
        engine = create_engine(self.uri)
        with engine.begin() as conn:
            conn.execute(text(statement))
        engine.dispose()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """A viewer, and audited actions by ann and bob: runs deleted and restored (one reason is
    markup), and a model created by bob."""
    settings = make_settings(tmp_path, auth=True)
    app = create_app(settings)
    state = app_state(app)
    store = state.store
    assert isinstance(store, SqlStore)
    store.create_user("vic", ["viewer"], "test", password=PASSWORD)  # writes security entries
    ann = Client.from_stores(state.settings.replace(user="ann"), store, state.blobs)
    bob = Client.from_stores(state.settings.replace(user="bob"), store, state.blobs)
    with ann.start_run(log_environment=False) as run:
        pass
    for i in range(6):
        who = ann if i % 2 == 0 else bob
        act = who.delete_runs if i % 2 == 0 else who.restore_runs
        act([run.id], reason=XSS if i == 0 else f"step {i}")
    store.create_registered_model("churn", XSS, "bob")
    transport = SyncASGITransport(app)
    yield Site(transport, store, settings.tracking_uri)
    transport.close()


def _rows(page: str) -> list[tuple[int, str, str, str]]:
    """(seq, actor, event, subject) of each row shown, in order."""
    body = page.split('<table id="audit">', 1)[1].split("</table>", 1)[0]
    found = re.findall(
        r'<tr id="seq-(\d+)"><td>\d+</td><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>', body
    )
    return [(int(seq), html.unescape(a), html.unescape(e), html.unescape(s)) for seq, a, e, s in found]


def _older(page: str) -> str | None:
    found = re.search(r'<a href="([^"]+)" rel="next">', page)
    return html.unescape(found.group(1)) if found else None


def test_entries_are_shown_newest_first_and_paged(site: Site) -> None:
    vic = site.browser("vic")
    everything = site.store.list_audit(0, 10_000)
    first = vic.get("/audit?limit=4")
    assert first.status_code == 200
    seen = [r[0] for r in _rows(first.text)]
    assert seen == [e.seq for e in reversed(everything)][:4]
    link: str | None = _older(first.text)
    while link is not None:  # follow "Older entries" to the very first entry
        assert "before=" in link and "limit=4" in link
        page = vic.get(link).text
        seen += [r[0] for r in _rows(page)]
        link = _older(page)
    assert seen == [e.seq for e in reversed(everything)]  # every entry once, newest first
    vic.close()


def test_the_filters_select_by_actor_event_and_subject_prefix(site: Site) -> None:
    vic = site.browser("vic")
    every = site.store.list_audit(0, 10_000)
    by_bob = _rows(vic.get("/audit", params={"actor": "bob"}).text)
    assert [r[0] for r in by_bob] == [e.seq for e in reversed(every) if e.actor == "bob"]
    assert {r[1] for r in by_bob} == {"bob"} and {r[2] for r in by_bob} == {"run.restore", "model.create"}
    deletes = _rows(vic.get("/audit", params={"event": "run.delete", "actor": "ann"}).text)
    assert [r[0] for r in deletes] == [e.seq for e in reversed(every) if e.action == "run.delete"]
    assert len(deletes) == 3
    runs = _rows(vic.get("/audit", params={"subject": "run/"}).text)
    assert len(runs) == 6 and all(r[3].startswith("run/") for r in runs)
    model = _rows(vic.get("/audit", params={"subject": "model/ch"}).text)
    assert [(r[1], r[2], r[3]) for r in model] == [("bob", "model.create", "model/churn")]
    security = _rows(vic.get("/audit", params={"subject": "sec"}).text)  # a prefix of the type
    assert security and all(r[3].startswith("security/") for r in security)
    none = vic.get("/audit", params={"actor": "nobody"}).text
    assert _rows(none) == [] and "No entries match" in none
    vic.close()


@pytest.mark.parametrize("window", [1, 2, 3, 5])
def test_the_walk_back_finds_every_match_across_windows(
    site: Site, monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    """Small windows (every alignment of matches to window edges) and a small scan budget: the
    pages still hold every match once, newest first."""
    monkeypatch.setattr(audit_ui, "WINDOW", window)
    monkeypatch.setattr(audit_ui, "MAX_SCAN", 2 * window)
    every = site.store.list_audit(0, 10_000)
    for actor in ("ann", "bob", None):
        found: list[int] = []
        before: int | None = every[-1].seq + 1
        while before is not None:
            page = audit_ui.newest_first(
                site.store, before, 2, {"actor": actor}, lambda e: e.object_type != "security"
            )
            assert len(page.entries) <= 2
            found += [e.seq for e in page.entries]
            before = page.older
        expected = [
            e.seq for e in reversed(every) if actor in (None, e.actor) and e.object_type != "security"
        ]
        assert found == expected, actor


def test_verify_reports_an_intact_chain(site: Site) -> None:
    vic = site.browser("vic")
    page = vic.get("/audit/verify")
    assert page.status_code == 200
    count = site.store.audit_head().count
    assert f"Intact: {count} entries checked" in page.text and "Broken" not in page.text
    head = site.store.audit_head()
    assert head.hash in page.text
    assert 'action="/audit/verify"' in vic.get("/audit").text  # the button on the log's page
    vic.close()


def test_verify_names_the_entry_edited_behind_the_stores_back(site: Site) -> None:
    site.sql("UPDATE audit_log SET reason = 'nothing to see' WHERE seq = 3")
    vic = site.browser("vic")
    page = vic.get("/audit/verify").text
    assert "Broken at entry #3" in page and "entry 3: its content does not match its hash" in page
    assert 'href="/audit?before=4"' in page  # to the broken entry in the log
    shown = _rows(vic.get("/audit?before=4").text)
    assert shown[0][0] == 3
    vic.close()


def test_what_users_wrote_is_shown_as_text(site: Site) -> None:
    vic = site.browser("vic")
    page = vic.get("/audit", params={"actor": "ann"}).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    page = vic.get("/audit", params={"subject": XSS}).text  # the filter itself, echoed in its box
    assert "<script>" not in page
    vic.close()


@pytest.mark.parametrize(
    "query",
    ["before=abc", "before=0", "before=-3", "limit=0", "limit=100000", "limit=x", "actor=" + "a" * 600],
)
def test_bad_query_values_answer_an_html_400(site: Site, query: str) -> None:
    vic = site.browser("vic")
    answer = vic.get(f"/audit?{query}")
    assert answer.status_code == 400 and answer.headers["content-type"].startswith("text/html")
    assert 'role="alert"' in answer.text
    vic.close()


def test_without_a_session_the_log_sends_you_to_sign_in(site: Site) -> None:
    with httpx.Client(transport=Borrowed(site.transport), base_url="http://testserver") as anonymous:
        for path in ("/audit", "/audit/verify"):
            answer = anonymous.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login?")
