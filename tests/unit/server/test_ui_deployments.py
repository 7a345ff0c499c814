"""The deployments pages: every deployment, a deployment's variants and traffic split as saved, its
history with what changed between versions, the rollback form (a deployer rolls back as themselves, a
viewer sees no form and a forged one is refused, no form works without this site's token), and the
live panel, read from a real model server at the deployment's recorded address."""

from __future__ import annotations

import html
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest
import uvicorn
from server_harness import Borrowed, SyncASGITransport, make_settings
from sklearn.tree import DecisionTreeClassifier

from polling_helpers import wait_until
from shipyard.registry import core
from shipyard.server import create_app
from shipyard.server.app import app_state
from shipyard.serving import ServeOptions, create_deployment_app, manage
from shipyard.store.sql import SqlStore
from shipyard.tracking import Client

PASSWORD = "correct horse battery staple"
NAME = "churn"
XSS = "<script>alert(1)</script>"
V1 = "name: churn\nvariants:\n  - {name: main, model: 'models:/churn/1'}\n"
V2 = (
    "name: churn\nvariants:\n"
    "  - {name: main, model: 'models:/churn/1', weight: 90}\n"
    "  - {name: candidate, model: 'models:/churn@challenger', weight: 10, mode: canary}\n"
    "  - {name: next, model: 'models:/churn/2', mode: shadow}\n"
)
V3 = V2.replace("weight: 90", "weight: 75").replace("weight: 10", "weight: 25")
X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})


@dataclass
class Site:
    transport: SyncASGITransport
    store: SqlStore
    sam: Client  # a scientist's SDK client on the server's own store
    root: Path
    browsers: dict[str, httpx.Client]  # signed in: eve (engineer: may deploy), vic (viewer)


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


def _deploy_churn(sam: Client, name: str) -> None:
    """Versions 1-3 of deployment ``name`` (V1, V2, V3), each saved with a reason."""
    for spec, reason in ((V1, "first"), (V2, f"10% canary {XSS}"), (V3, "canary healthy: 25%")):
        manage.deploy(spec.replace("name: churn", f"name: {name}"), reason=reason, client=sam)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server with auth on; model churn v1, v2 (alias challenger → v2); deployment churn at
    version 3. Tests that change a deployment make their own."""
    root = tmp_path_factory.mktemp("deployments")
    app = create_app(make_settings(root, auth=True))
    state = app_state(app)
    store = state.store
    assert isinstance(store, SqlStore)
    for name, roles in {"eve": ["engineer"], "vic": ["viewer"]}.items():
        store.create_user(name, roles, "test", password=PASSWORD)
    sam = Client.from_stores(state.settings.replace(user="sam"), store, state.blobs)
    for depth in (1, 2):
        model = DecisionTreeClassifier(max_depth=depth).fit(X, [0, 1, 1, 0])
        core.register_model(model, NAME, input_example=X, client=sam)
    store.set_model_alias(NAME, "challenger", 2, "sam")
    _deploy_churn(sam, NAME)
    transport = SyncASGITransport(app)
    browsers = {user: _browser(transport, user) for user in ("eve", "vic")}
    yield Site(transport, store, sam, root, browsers)
    for browser in browsers.values():
        browser.close()
    transport.close()


def _cells(page: str, table: str) -> list[list[str]]:
    """The text of every body cell of ``<table id=table>``, row by row."""
    body = page.split(f'<table id="{table}">', 1)[1].split("</table>", 1)[0].split("<tbody>", 1)[1]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    strip = re.compile(r"<[^>]+>")
    return [
        [
            html.unescape(" ".join(strip.sub(" ", c).split()))
            for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in rows
    ]


def _rollback_csrf(page: str, version: int) -> str:
    form = rf'/versions/{version}/rollback" class="rollback">\s*'
    found = re.search(form + r'<input type="hidden" name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def test_the_list_shows_each_deployment_at_its_current_version(site: Site) -> None:
    vic = site.browsers["vic"]
    page = vic.get("/deployments")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    rows = {row[0]: row[1:4] for row in _cells(page.text, "deployments")}
    assert rows["churn"] == [
        "v3",
        "main: churn v1 · 75.0% candidate: churn@challenger · 25.0% next: churn v2 · shadow",
        "sam",
    ]
    assert '<a href="/deployments/churn">churn</a>' in page.text


def test_the_page_shows_the_saved_variants_and_traffic_split(site: Site) -> None:
    vic = site.browsers["vic"]
    page = vic.get("/deployments/churn").text
    assert _cells(page, "variants") == [
        ["main", "churn v1", "ab", "75", "75.0%", "no"],
        ["candidate", "churn@challenger (→ v2)", "canary", "25", "25.0%", "no"],
        ["next", "churn v2", "shadow", "—", "copy", "yes"],
    ]
    # the bar: one segment per live variant, as wide as its share of 1000 units, side by side
    segments = re.findall(r'<rect x="([\d.]+)" y="0" width="([\d.]+)"', page)
    assert segments == [("0.00", "750.00"), ("750.00", "250.00")]
    assert "<title>main: 75.0%</title>" in page and "<title>candidate: 25.0%</title>" in page
    assert 'href="/models/churn"' in page


def test_the_history_says_what_changed_in_each_version_and_why(site: Site) -> None:
    vic = site.browsers["vic"]
    page = vic.get("/deployments/churn").text
    rows = _cells(page, "history")
    assert [r[0] for r in rows] == ["v3 (current)", "v2", "v1"]
    assert [r[2] for r in rows] == ["sam", "sam", "sam"]
    assert [r[3] for r in rows] == ["canary healthy: 25%", f"10% canary {XSS}", "first"]
    assert rows[0][4] == (
        "main weight: 90 → 75 main share: 90.0% → 75.0% "
        "candidate weight: 10 → 25 candidate share: 10.0% → 25.0%"
    )
    assert rows[1][4] == (
        "main weight: 100 → 90 main share: 100.0% → 90.0% "
        "+ candidate: models:/churn@challenger (canary, 10.0%) + next: models:/churn/2 (shadow copy)"
    )
    assert rows[2][4] == "+ main: models:/churn/1 (ab, 100.0%)"
    assert XSS not in page and html.escape(XSS) in page  # the reason is shown as text


def test_a_deployer_rolls_back_as_themselves_and_the_current_record_changes(site: Site) -> None:
    _deploy_churn(site.sam, "rb")
    eve = site.browsers["eve"]
    page = eve.get("/deployments/rb").text
    assert "/versions/3/rollback" not in page  # no form for the current version
    done = eve.post(
        "/deployments/rb/versions/1/rollback",
        data={"csrf": _rollback_csrf(page, 1), "reason": "canary raised error rate"},
    )
    assert done.status_code == 303 and done.headers["location"].startswith("/deployments/rb?")
    after = eve.get(done.headers["location"]).text
    assert "Rolled back to version 1&#39;s spec (saved as version 4)." in after
    current = site.store.get_deployment("rb")
    assert (current.version, current.created_by) == (4, "eve")
    assert current.spec_yaml == site.store.get_deployment("rb", 1).spec_yaml
    assert _cells(after, "variants") == [["main", "churn v1", "ab", "100", "100.0%", "no"]]
    entry = site.store.list_audit(action="deployment.save", object_id="rb")[-1]
    assert (entry.actor, entry.reason) == ("eve", "canary raised error rate")
    assert _cells(after, "history")[0][3] == "canary raised error rate"


def test_a_viewer_sees_no_form_and_a_forged_rollback_is_refused(site: Site) -> None:
    vic = site.browsers["vic"]
    page = vic.get("/deployments/churn").text
    assert "rollback" not in page and "<h2>History</h2>" in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)  # the sign-out form's token: the right one
    assert csrf
    forged = vic.post("/deployments/churn/versions/1/rollback", data={"csrf": csrf.group(1)})
    assert forged.status_code == 403
    assert site.store.get_deployment(NAME).version == 3


def test_a_rollback_without_this_sites_token_changes_nothing(site: Site) -> None:
    eve = site.browsers["eve"]
    for data in ({}, {"csrf": "guessed"}):
        answer = eve.post("/deployments/churn/versions/1/rollback", data=data)
        assert answer.status_code == 400 and "anti-forgery" in answer.text
    assert site.store.get_deployment(NAME).version == 3


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/deployments/nope", 404, "Deployment &#39;nope&#39; not found"),
        ("/deployments/nope/live", 404, "Deployment &#39;nope&#39; not found"),
        ("/deployments/<img src=x onerror=alert(1)>", 404, "&lt;img src=x onerror=alert(1)&gt;"),
    ],
)
def test_unknown_deployments_answer_a_404_page(site: Site, path: str, status: int, says: str) -> None:
    vic = site.browsers["vic"]
    answer = vic.get(path)
    assert answer.status_code == status and answer.headers["content-type"].startswith("text/html")
    assert says in answer.text and "<img" not in answer.text


@pytest.mark.parametrize(
    ("name", "version", "status", "says"),
    [
        ("churn", "abc", 400, "is not a version number"),
        ("churn", "0", 400, "is not a version number"),
        ("churn", "²", 400, "is not a version number"),
        ("churn", "99", 404, "version 99"),
        ("churn", "3", 400, "already at version 3"),
        ("nope", "1", 404, "Deployment &#39;nope&#39;"),
    ],
)
def test_a_bad_rollback_is_a_4xx_page_and_changes_nothing(
    site: Site, name: str, version: str, status: int, says: str
) -> None:
    eve = site.browsers["eve"]
    csrf = _rollback_csrf(eve.get("/deployments/churn").text, 1)
    answer = eve.post(f"/deployments/{name}/versions/{version}/rollback", data={"csrf": csrf})
    assert answer.status_code == status and answer.headers["content-type"].startswith("text/html")
    assert says in answer.text
    assert site.store.get_deployment(NAME).version == 3


# -- the live panel ---------------------------------------------------------------------------------------


@contextmanager
def _model_server(root: Path, deployment: str, sock: socket.socket) -> Iterator[str]:
    """``shipyard serve --deployment NAME`` in a thread: the real app under uvicorn on ``sock``."""
    client = Client(settings=make_settings(root))
    app = create_deployment_app(None, ServeOptions(stored=deployment), client=client)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        wait_until(lambda: server.started, "the model server to start", timeout=30)
        with httpx.Client(base_url=url, trust_env=False) as http:
            wait_until(lambda: http.get("/ready").status_code == 200, "the model server's models", timeout=30)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        client.close()


def _listening() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def _live_rows(page: str) -> dict[str, list[str]]:
    return {row[0]: row[1:] for row in _cells(page, "live-traffic")}


def test_the_live_panel_shows_a_real_model_servers_counters(site: Site) -> None:
    sock = _listening()
    port = sock.getsockname()[1]
    spec = (
        "name: live\nvariants:\n"
        "  - {name: main, model: 'models:/churn/1'}\n"
        "  - {name: next, model: 'models:/churn/2', mode: shadow}\n"
        "prediction_log: {enabled: false}\nreload: {poll_interval_s: 0}\n"
        f"url: http://127.0.0.1:{port}/\n"
    )
    manage.deploy(spec, reason="live", client=site.sam)
    vic = site.browsers["vic"]
    page = vic.get("/deployments/live").text
    assert 'hx-get="/deployments/live/live"' in page and 'href="/deployments/live/live"' in page
    assert f"<code>http://127.0.0.1:{port}</code>" in page
    with _model_server(site.root, "live", sock) as url, httpx.Client(base_url=url, trust_env=False) as http:
        for i in range(4):
            answer = http.post("/predict", json={"records": [{"a": float(i)}]})
            assert answer.status_code == 200 and answer.headers["x-shipyard-variant"] == "main"
        refused = http.post("/predict", json={"records": [{"b": "not a feature"}]})
        assert 400 <= refused.status_code < 500
        first = vic.get("/deployments/live/live", headers={"HX-Request": "true"})
        assert first.status_code == 200 and "<html" not in first.text  # the fragment htmx swaps in
        rows = _live_rows(first.text)
        # serving, requests, requests/s, 4xx, 5xx, shadow errors, p50, p95, p99
        assert rows["main"][:6] == ["churn v1", "5", "—", "1", "0", "0"]
        assert rows["next"][:6] == ["churn v2 (shadow)", "—", "—", "—", "—", "0"]  # copies are no requests
        assert all(cell.endswith(" ms") for cell in rows["main"][6:])
        http.post("/predict", json={"records": [{"a": 1.0}]})
        second = vic.get("/deployments/live/live")  # without htmx: a page of its own
        assert "<html" in second.text and "Back to the deployment" in second.text
        main = _live_rows(second.text)["main"]
        assert main[1] == "6" and re.fullmatch(r"\d+\.\d\d", main[2])  # a rate, since the last read


def test_an_unreachable_or_unrecorded_model_server_is_a_note_not_an_error(site: Site) -> None:
    sock = _listening()
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    spec = f"name: gone\nvariants: [{{name: main, model: 'models:/churn/1'}}]\nurl: http://127.0.0.1:{port}\n"
    manage.deploy(spec, client=site.sam)
    vic = site.browsers["vic"]
    gone = vic.get("/deployments/gone/live")
    assert gone.status_code == 200
    assert "did not answer" in gone.text and f"http://127.0.0.1:{port}" in gone.text
    assert "live-traffic" not in gone.text
    unrecorded = vic.get("/deployments/churn/live", headers={"HX-Request": "true"})
    assert unrecorded.status_code == 200 and "No model server address is recorded" in unrecorded.text
