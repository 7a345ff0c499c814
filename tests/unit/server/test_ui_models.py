"""The models pages: versions, reviews and promotions, and the approvals form: an approver approves
or rejects with a comment, a viewer sees no buttons and a forged form is refused, the author cannot
approve their own version, and no form works without this site's anti-forgery token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from server_harness import Borrowed, SyncASGITransport, make_settings

import shipyard as sy
from shipyard.entities import Artifact, ModelVersionCreate
from shipyard.registry import governance
from shipyard.server import create_app
from shipyard.server.app import app_state
from shipyard.store.sql import SqlStore
from shipyard.tracking import Client

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


# -- the model page: lineage graph, evaluations, promotion history ------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"not really an image, but the bytes the evaluation stored"
REPORT = {
    "format": 1,
    "task": "classification",
    "n_rows": 120,
    "target": "churned",
    "metrics": {"roc_auc": 0.91, "accuracy": 0.875},
    "groups": {
        "region": {
            "north": {"n": 40.0, "selection_rate": 0.25, "tpr": 0.8},
            XSS: {"n": 80.0, "selection_rate": 0.5, "tpr": 0.6},
        }
    },
    "fairness": {"region": {"demographic_parity_difference": 0.25, "equalized_odds_difference": 0.2}},
    "importance": {"tenure": 0.125, "plan": 0.0625},
    "plot_names": ["roc.png"],
    "notes": [f"group {XSS} is small"],
}


@pytest.fixture
def lineage_site(tmp_path: Path) -> Iterator[tuple[httpx.Client, SqlStore, dict[str, str]]]:
    """churn v1 (trained by a run on flights@v1, validated on holdout@v1; champion; served by the
    deployment churn-live) and v2 (no run; shadow in churn-live), and an evaluation of v1."""
    app = create_app(make_settings(tmp_path))
    state = app_state(app)
    store = state.store
    assert isinstance(store, SqlStore)
    client = Client.from_stores(state.settings.replace(user="sam"), store, state.blobs)
    flights = sy.log_dataset(pd.DataFrame({"a": [1, 2]}), "flights", client=client, profile=False)
    holdout = sy.log_dataset(pd.DataFrame({"a": [3]}), "holdout", client=client, profile=False)
    with client.start_run("churn-exp", log_environment=False) as run:
        pass
    store.record_dataset_use(run.id, "flights", flights.version, "train")
    store.create_registered_model(NAME, XSS, "sam")
    for digest, run_id, extra in (
        ("a", run.id, [("holdout", holdout.version, "validation")]),
        ("b", None, []),
    ):
        spec = ModelVersionCreate(
            name=NAME,
            digest=digest * 64,
            flavor="sklearn",
            files=[Artifact("shipyard-model.yaml", digest * 64, 1)],
            signature={"inputs": [], "outputs": []},
            run_id=run_id,
            datasets=extra,
            created_by="sam",
        )
        store.create_model_version(spec)
    assert governance.promote_model(NAME, 1, alias="champion", reason="first", client=client).promoted
    deployment = (
        "name: churn-live\nvariants:\n"
        "  - {name: main, model: 'models:/churn@champion'}\n"
        "  - {name: next, model: 'models:/churn/2', mode: shadow}\n"
    )
    store.save_deployment("churn-live", deployment, "sam")
    digest, size = state.blobs.put_bytes(PNG)
    body = {"dataset": holdout.ref, "dataset_digest": holdout.digest, "target": "churned", "report": REPORT}
    record = store.add_model_evaluation(NAME, 1, "ann", body, files=[Artifact("roc.png", digest, size)])
    transport = SyncASGITransport(app)
    with httpx.Client(transport=Borrowed(transport), base_url="http://testserver") as http:
        yield http, store, {"run": run.id, "record": str(record.id)}
    transport.close()


def _section(page: str, start: str, end: str = "</section>") -> str:
    assert start in page, page
    return page.split(start, 1)[1].split(end, 1)[0]


def _cells(table_html: str) -> list[list[str]]:
    """The body rows of a table as lists of cell texts (tags stripped, entities left as sent)."""
    body = table_html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows
    ]


def test_the_lineage_graph_links_datasets_run_versions_aliases_and_deployments(
    lineage_site: tuple[httpx.Client, SqlStore, dict[str, str]],
) -> None:
    http, _, ids = lineage_site
    svg = _section(http.get(_model_url()).text, '<section id="lineage">', "</svg>")
    keys = re.findall(r'data-key="([^"]+)"', svg)
    run = ids["run"]
    assert sorted(keys) == sorted(
        [
            "dataset:flights@v1",
            "dataset:holdout@v1",
            f"run:{run}",
            "version:1",
            "version:2",
            "alias:champion",
            "deployment:churn-live",
        ]
    )
    hrefs = (
        "/datasets/flights/versions/1",
        "/datasets/holdout/versions/1",
        f"/runs/{run}",
        "/deployments/churn-live",
    )
    for href in hrefs:
        assert f'href="{href}"' in svg
    assert 'href="/models/churn#v1"' in svg and 'href="/models/churn#v2"' in svg
    edges = re.findall(r'<path class="edge" d="[^"]+"><title>([^<]*)</title>', svg)
    # flights feeds the run, the run and holdout feed v1; the alias and the two variants are served
    assert sorted(edges) == sorted(
        [
            "train",
            "trained",
            "validation",
            "@champion → v1",
            "variant main (ab, weight 100): models:/churn@champion",
            "variant next (shadow, weight 100): models:/churn/2",
        ]
    )


def test_an_evaluation_shows_what_was_recorded(
    lineage_site: tuple[httpx.Client, SqlStore, dict[str, str]],
) -> None:
    http, _, ids = lineage_site
    page = http.get(_model_url()).text
    ev = _section(page, f'<article class="evaluation" id="evaluation-{ids["record"]}">', "</article>")
    assert "holdout@v1" in ev and "classification of churned on 120 rows" in ev
    assert _cells(_section(ev, '<table class="eval-metrics">', "</table>") + "</table>") == [
        ["accuracy", "0.875"],
        ["roc_auc", "0.91"],
    ]
    fairness = _section(ev, '<div class="fairness" data-column="region">', "</figure>")
    groups = _cells(_section(fairness, '<table class="groups">', "</table>") + "</table>")
    header = re.findall(r"<th>(.*?)</th>", _section(fairness, '<table class="groups">', "</thead>"))
    assert header == ["Group", "n", "selection_rate", "tpr"]
    assert groups == [
        ["&lt;script&gt;alert(1)&lt;/script&gt;", "80", "0.5", "0.6"],
        ["north", "40", "0.25", "0.8"],
    ]
    gaps = _cells(_section(fairness, '<table class="gaps">', "</table>") + "</table>")
    assert gaps == [["demographic_parity_difference", "0.25"], ["equalized_odds_difference", "0.2"]]
    bars = re.findall(r'<rect x="\d+" y="[\d.]+" width="([\d.]+)"', fairness)
    assert [float(w) for w in bars] == [300.0, 150.0]  # selection rate 0.5 and 0.25, scaled to the largest
    assert "<script>" not in page


def test_an_evaluations_plot_is_served_from_its_record_only(
    lineage_site: tuple[httpx.Client, SqlStore, dict[str, str]],
) -> None:
    http, _, ids = lineage_site
    page = http.get(_model_url()).text
    url = f"/models/churn/evaluations/{ids['record']}/roc.png"
    assert f'<img src="{url}"' in page
    plot = http.get(url)
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png" and plot.content == PNG
    for bad in (
        f"/models/churn/evaluations/{ids['record']}/shipyard-model.yaml",
        f"/models/churn/evaluations/{ids['record']}/other.png",
        "/models/churn/evaluations/nope/roc.png",
        "/models/churn/evaluations/999/roc.png",
        f"/models/nope/evaluations/{ids['record']}/roc.png",
    ):
        answer = http.get(bad)
        assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html"), bad


def test_the_promotion_history_shows_gates_and_alias_moves(
    lineage_site: tuple[httpx.Client, SqlStore, dict[str, str]],
) -> None:
    http, store, _ = lineage_site
    page = http.get(_model_url()).text
    history = _cells(_section(page, '<table id="promotion-history">', "</table>") + "</table>")
    assert len(history) == 1 and history[0][1:5] == ["v1", "champion", "promoted", "sam"]
    moves = _cells(_section(page, '<table id="alias-history">', "</table>") + "</table>")
    seq = store.list_alias_history(NAME, "champion")[-1].audit_seq
    assert moves == [[moves[0][0], "champion", "v1", "sam", "first", f"#{seq}"]]
    assert f'href="/audit?before={seq + 1}"' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the description, as text


def test_an_unknown_model_is_a_404_page(lineage_site: tuple[httpx.Client, SqlStore, dict[str, str]]) -> None:
    http, _, _ = lineage_site
    answer = http.get("/models/nope")
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
