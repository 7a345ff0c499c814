"""The web UI's pages (``shipyard.ui``) through the server's own app: what they show, that what users
typed is shown as text, the runs table's filter, sort, columns and paging, access with auth on, and
``shipyard ui`` serving the local store."""

from __future__ import annotations

import html
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_harness import SyncASGITransport, make_settings

from polling_helpers import wait_until
from shipyard import Client
from shipyard.server import create_app
from shipyard.server.app import app_state
from shipyard.store import AuthStore

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """An app over a store with one experiment of 7 runs; yields a client and the runs' ids by name."""
    root = tmp_path_factory.mktemp("ui")
    client = Client(settings=make_settings(root))
    ids = {}
    for i in range(6):
        with client.start_run(
            "ui-exp", name=f"run-{i}", params={"model": "rf" if i % 2 else "gbm", "depth": i}
        ) as run:
            run.log_metrics({"auc": 0.5 + i / 20, "loss": 1.0 - i / 10})
            ids[f"run-{i}"] = run.id
    with client.start_run("ui-exp", name=XSS, params={"note": XSS}, tags={XSS: XSS}) as run:
        run.log_metrics({"auc": float("nan")})
        run.log_bytes(b"hello", "notes/readme.txt")
        ids["xss"] = run.id
    with client.start_run("curves", name="curve") as run:
        for step in range(3_000):
            run.log_metric("val<loss>", 1 / (1 + step) + (5.0 if step == 1_777 else 0.0), step=step)
        run.log_metric("single", 1.0)
        ids["curve"] = run.id
    client.close()
    transport = SyncASGITransport(create_app(make_settings(root)))
    with httpx.Client(transport=transport, base_url="http://testserver") as http:
        yield http, ids
    transport.close()


def _rows(page: str) -> list[str]:
    """The run names in the runs table, in order."""
    body = page.split('<table id="runs">', 1)[1].split("</table>", 1)[0]
    return [html.unescape(m) for m in re.findall(r'<a href="/runs/[0-9a-f]+">(.*?)</a>', body)]


def _experiment(http: httpx.Client) -> str:
    page = http.get("/").text
    found = re.search(r'<a href="(/experiments/\d+)">ui-exp</a>', page)
    assert found, page
    return found.group(1)


def test_the_experiments_page_links_each_experiment(site: tuple[httpx.Client, dict[str, str]]) -> None:
    http, _ = site
    answer = http.get("/")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert http.get(_experiment(http)).status_code == 200


def test_what_users_typed_is_shown_as_text(site: tuple[httpx.Client, dict[str, str]]) -> None:
    http, ids = site
    pages = [http.get(_experiment(http)).text, http.get(f"/runs/{ids['xss']}").text]
    pages.append(http.get(_experiment(http), params={"filter": XSS}).text)  # echoed back in the box
    for page in pages:
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(" in page


def test_the_runs_table_filters_sorts_and_pages(site: tuple[httpx.Client, dict[str, str]]) -> None:
    http, _ = site
    url = _experiment(http)
    rf = _rows(http.get(url, params={"filter": "params.model = 'rf'", "order": "metrics.auc desc"}).text)
    assert rf == ["run-5", "run-3", "run-1"]
    ascending = _rows(http.get(url, params={"filter": "metrics.auc >= 0.6", "order": "metrics.auc asc"}).text)
    assert ascending == ["run-2", "run-3", "run-4", "run-5"]

    first = http.get(url, params={"order": "params.depth asc", "limit": 4, "filter": "params.depth >= 0"})
    assert _rows(first.text) == ["run-0", "run-1", "run-2", "run-3"]
    next_link = re.search(r'<a rel="next" href="(\?[^"]+)"', first.text)
    assert next_link, first.text
    second = http.get(url + html.unescape(next_link.group(1)))
    assert _rows(second.text) == ["run-4", "run-5"] and 'rel="next"' not in second.text

    sort_link = re.search(r'<a href="(\?[^"]*order=metrics.loss[^"]*)">metrics.loss</a>', first.text)
    assert sort_link, "each column header sorts by it"
    by_loss = _rows(http.get(url + html.unescape(sort_link.group(1))).text)
    assert by_loss == ["run-0", "run-1", "run-2", "run-3"]  # loss descending; filter and page size kept


def test_a_filter_that_does_not_parse_is_shown_with_its_error(
    site: tuple[httpx.Client, dict[str, str]],
) -> None:
    http, _ = site
    answer = http.get(_experiment(http), params={"filter": "metrics.auc >>> 1"})
    assert answer.status_code == 400
    assert 'id="query-error"' in answer.text and 'value="metrics.auc &gt;&gt;&gt; 1"' in answer.text
    bad_column = http.get(_experiment(http), params={"cols": "auc"})
    assert bad_column.status_code == 400 and "metrics.KEY" in bad_column.text


def test_chosen_columns_are_the_only_ones(site: tuple[httpx.Client, dict[str, str]]) -> None:
    http, _ = site
    url = _experiment(http)
    page = http.get(url, params={"cols": "metrics.auc"}).text
    head = page.split('<table id="runs">', 1)[1].split("<tbody>", 1)[0]
    assert ">metrics.auc</a>" in head and "params.model" not in head
    both = http.get(url + "?col=params.model&col=metrics.loss").text
    head = both.split('<table id="runs">', 1)[1].split("<tbody>", 1)[0]
    assert ">params.model</a>" in head and ">metrics.loss</a>" in head and ">metrics.auc</a>" not in head


def test_the_run_page_shows_the_whole_run(site: tuple[httpx.Client, dict[str, str]]) -> None:
    http, ids = site
    page = http.get(f"/runs/{ids['run-3']}").text
    assert "<td>auc</td><td>0.65</td>" in page and "<td>model</td><td>rf</td>" in page
    xss = http.get(f"/runs/{ids['xss']}").text
    assert "<td>auc</td><td>NaN</td>" in xss and "notes/readme.txt" in xss
    missing = http.get("/runs/" + "0" * 32)
    assert missing.status_code == 404 and "not found" in missing.text
    assert http.get("/experiments/999999").status_code == 404
    assert http.get("/static/shipyard.css").headers["content-type"].startswith("text/css")


def test_with_auth_on_the_pages_need_a_token(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, auth=True))
    store = app_state(app).store
    assert isinstance(store, AuthStore)
    store.create_user("vic", ["viewer"], "test")
    token = store.create_token("vic", "ui", "test")[1]
    transport = SyncASGITransport(app)
    with httpx.Client(transport=transport, base_url="http://testserver") as http:
        assert http.get("/").status_code == 303  # to the sign-in page (test_ui_signin.py)
        assert http.get("/runs/" + "0" * 32).headers["location"].startswith("/login?next=")
        assert http.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert http.get("/static/shipyard.css").status_code == 200
    transport.close()


def test_shipyard_ui_serves_the_local_store(tmp_path: Path) -> None:
    client = Client(settings=make_settings(tmp_path))
    with client.start_run("local-exp", name="mine"):
        pass
    client.close()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "SHIPYARD_TRACKING_URI": f"sqlite:///{tmp_path / 'server.db'}",
        "SHIPYARD_ARTIFACT_URI": str(tmp_path / "artifacts"),
        "SHIPYARD_HOME": str(tmp_path / "home"),
    }
    cmd = [str(Path(sys.executable).parent / "shipyard"), "ui", "--no-open", "--port", str(port)]
    log = (tmp_path / "ui.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:

        def home() -> httpx.Response | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
            except httpx.HTTPError:
                return None

        answer = wait_until(home, lambda: (tmp_path / "ui.log").read_text(errors="replace"), timeout=60)
        assert answer.status_code == 200 and ">local-exp</a>" in answer.text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
        log.close()


def test_compare_puts_runs_side_by_side_and_marks_differences(
    site: tuple[httpx.Client, dict[str, str]],
) -> None:
    http, ids = site
    url = f"/compare?run={ids['run-1']}&run={ids['run-3']}"
    page = http.get(url).text
    marked = dict(
        (field, differs == "differs")
        for differs, field in re.findall(r'<tr(?: class="(differs)")?><td>[^<]*</td><td>([^<]+)</td>', page)
    )
    assert marked == {"metrics.auc": True, "metrics.loss": True, "params.depth": True, "params.model": False}
    assert "<td>params.depth</td><td>1</td><td>3</td>" in page and "3 of 4 fields differ" in page
    only = http.get(url + "&only_diff=true").text
    assert "params.model" not in only and "params.depth" in only and "metrics.auc" in only
    with_xss = http.get(f"/compare?run={ids['run-0']}&run={ids['xss']}").text
    assert "<script>alert" not in with_xss and "&lt;script&gt;" in with_xss
    assert http.get(f"/compare?run={ids['run-0']}").status_code == 400  # one run is no comparison
    assert http.get(f"/compare?run={ids['run-0']}&run={'0' * 32}").status_code == 404
    table = http.get(_experiment(http)).text  # the runs table ticks runs into this page
    assert '<form method="get" action="/compare"' in table and f'name="run" value="{ids["run-1"]}"' in table


def test_the_run_page_charts_long_series_downsampled(site: tuple[httpx.Client, dict[str, str]]) -> None:
    http, ids = site
    page = http.get(f"/runs/{ids['curve']}").text
    figures = re.findall(r'<figure class="chart".*?</figure>', page, flags=re.S)
    assert len(figures) == 1  # "single" has one point: no chart
    figure = figures[0]
    assert "val&lt;loss&gt;" in figure and "3000 points, 500 drawn (LTTB)" in figure
    points = re.search(r'points="([^"]+)"', figure)
    assert points is not None and len(points.group(1).split()) == 500
    ys = [float(p.split(",")[1]) for p in points.group(1).split()]
    assert min(ys) == pytest.approx(6.0, abs=0.5)  # the spike at step 1777 is drawn, at the top
