"""The data pages (``shipyard.ui.datasets``) through the server's own app over a real SQLite store:
datasets, a dataset's versions and contract, a version's stored profile drawn as bars and its
personal-data findings, the diff of two versions; every value checked against what the data layer
computes in the test, what users typed shown as text, bad input answered with a 4xx page."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest
from server_harness import SyncASGITransport, make_settings
from sklearn.datasets import load_iris

from shipyard import Client
from shipyard.data import diff_datasets, load_dataset, load_profile, log_dataset
from shipyard.data.contracts import Contract, infer_contract
from shipyard.data.diff import diff_profiles
from shipyard.data.pii import anonymize, scan_pii
from shipyard.data.registry import get_contract, list_contracts
from shipyard.server import create_app
from shipyard.server.app import app_state
from shipyard.store import AuthStore
from shipyard.ui import datasets as datasets_ui

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
XSS_NAME = '<img src=x onerror=alert(1)>"&'  # a dataset name cannot hold "/" (it is a path segment)


@dataclass
class Site:
    http: httpx.Client
    client: Client


def _iris() -> pd.DataFrame:
    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns={"target": "label"})
    frame["species"] = [str(data.target_names[i]) for i in data.target]
    return frame


def _people(n: int) -> pd.DataFrame:
    cities = ["Lyon", "Oslo", "Oslo", "Kyiv", "Oslo", "Lyon", "Porto"]
    return pd.DataFrame(
        {
            "id": range(n),
            "email": [f"person{i}.name@example.org" for i in range(n)],
            "city": [cities[i % len(cities)] for i in range(n)],
        }
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """iris (v1: the first 100 rows; v2: all 150, checked against an annotated contract), people (v1 raw
    emails; v2 emails hashed, marked PII by its contract), a dataset and columns named with markup, and
    a version logged without a profile."""
    root = tmp_path_factory.mktemp("ui-datasets")
    client = Client(settings=make_settings(root))
    iris = _iris()
    log_dataset(iris.iloc[:100], "iris", client=client, source="sklearn iris, first 100 rows")
    contract = infer_contract(iris, name="iris-contract")
    contract = contract.model_copy(update={"description": f"Fisher's iris {XSS}"})
    contract.columns[0] = contract.columns[0].model_copy(update={"unit": "cm", "description": XSS})
    log_dataset(iris, "iris", client=client, contract=contract)

    people = _people(70)
    log_dataset(people, "people", client=client)
    hashed = anonymize(people, {"email": "hash"}, salt="test-salt")
    drafted = infer_contract(hashed, name="people")
    email = drafted.columns[1].model_copy(update={"pii": True, "allowed_values": None, "unique": False})
    drafted.columns[1] = email
    log_dataset(hashed, "people", client=client, contract=drafted)

    marked = pd.DataFrame({XSS: [XSS, XSS, XSS, "plain"], "n": [1.0, 2.0, 3.0, 4.0]})
    xss_contract = Contract.from_dict(
        {
            "name": "marked",
            "description": XSS,
            "columns": [{"name": XSS, "type": "string", "description": XSS}, {"name": "n", "type": "float"}],
        }
    )
    log_dataset(marked, XSS_NAME, client=client, contract=xss_contract)
    log_dataset(marked.assign(extra=[XSS] * 4, n=[2.0, 3.0, 4.0, 9.0]), XSS_NAME, client=client)

    log_dataset(iris.iloc[:10], "bare", client=client, profile=False)
    log_dataset(iris.iloc[:20], "bare", client=client)

    transport = SyncASGITransport(create_app(make_settings(root)))
    with httpx.Client(transport=transport, base_url="http://testserver") as http:
        yield Site(http, client)
    transport.close()
    client.close()


def _table(page: str, table_id: str) -> list[list[str]]:
    """The body rows of table ``table_id`` as lists of cell texts (tags removed, unescaped)."""
    body = page.split(f'<table id="{table_id}">', 1)[1].split("</table>", 1)[0].split("<tbody>", 1)[1]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, flags=re.S)
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in rows
    ]


def _profile_rows(page: str) -> dict[str, str]:
    """The profile table's rows (raw HTML) by column name."""
    rows = re.findall(r'<tr id="col-\d+" data-column="([^"]*)">(.*?)</tr>', page, flags=re.S)
    return {html.unescape(name): row for name, row in rows}


def _numbers(row: str) -> list[str]:
    return [
        html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
        for c in re.findall(r'<td class="num">(.*?)</td>', row, re.S)
    ]


def test_the_datasets_page_lists_every_dataset_with_its_latest_version(site: Site) -> None:
    page = site.http.get("/datasets")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    rows = {row[0]: row for row in _table(page.text, "datasets")}
    versions = site.client.list_dataset_versions()
    assert set(rows) == {v.name for v in versions}
    for name, row in rows.items():
        latest = max((v for v in versions if v.name == name), key=lambda v: v.version)
        count = sum(1 for v in versions if v.name == name)
        assert row[1:5] == [f"v{latest.version}", str(count), f"{latest.rows:,}", str(latest.num_columns)]
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row[5]) and row[6] == latest.created_by
    assert rows["iris"][7] == get_contract("iris-contract", client=site.client).ref
    assert '<a href="/datasets">Datasets</a>' in page.text  # in the navigation of every page


def test_a_dataset_page_lists_its_versions_and_offers_a_diff(site: Site) -> None:
    page = site.http.get("/datasets/iris").text
    rows = _table(page, "versions")
    versions = sorted(site.client.list_dataset_versions("iris"), key=lambda v: -v.version)
    assert [r[0] for r in rows] == [f"v{v.version}" for v in versions]
    for row, version in zip(rows, versions, strict=True):
        assert (
            row[1] == version.digest[:12]
            and row[2] == f"{version.rows:,}"
            and row[3] == str(version.num_columns)
        )
        assert row[7] == version.source
    assert rows[0][8] == "iris-contract@v1" and rows[1][8] == ""
    form = re.search(r'<form method="get" action="/datasets/iris/diff".*?</form>', page, flags=re.S)
    assert form is not None
    assert '<option value="1" selected>' in form.group(0) and '<option value="2" selected>' in form.group(0)


def test_a_dataset_page_shows_its_contract_as_the_data_layer_parses_it(site: Site) -> None:
    page = site.http.get("/datasets/iris").text
    stored = get_contract("iris-contract", client=site.client)
    contract = Contract.from_yaml(stored.yaml)
    yaml_text = re.search(r'<pre id="contract-yaml">(.*?)</pre>', page, flags=re.S)
    assert yaml_text is not None and html.unescape(yaml_text.group(1)) == stored.yaml
    rows = _table(page, "contract-columns")
    assert [r[0] for r in rows] == contract.column_names
    for row, spec in zip(rows, contract.columns, strict=True):
        assert row[1] == spec.type and row[2] == ("yes" if spec.nullable else "no")
        if spec.min is not None:
            assert row[3] == f"{spec.min} … {spec.max}"
        assert row[4] == (", ".join(str(v) for v in spec.allowed_values) if spec.allowed_values else "")
        assert row[6] == ("PII" if spec.pii else "")
        assert row[7] == (spec.unit or "")
    people = Contract.from_yaml(get_contract("people", client=site.client).yaml)
    flags = {r[0]: r[6] for r in _table(site.http.get("/datasets/people").text, "contract-columns")}
    assert flags == {c.name: "PII" if c.pii else "" for c in people.columns} and flags["email"] == "PII"


def test_the_version_page_shows_the_stored_profile(site: Site) -> None:
    page = site.http.get("/datasets/iris/versions/2").text
    profile = load_profile("iris@v2", client=site.client)
    rows = _profile_rows(page)
    assert list(rows) == list(profile.columns)
    for name, column in profile.columns.items():
        nulls, distinct, low, high, mean = _numbers(rows[name])
        assert nulls.startswith(f"{column.null_rate * 100:.1f}%") and distinct == f"{column.distinct:,}"
        if column.kind == "numeric":
            assert float(low) == pytest.approx(column.min, rel=1e-5)
            assert float(high) == pytest.approx(column.max, rel=1e-5)
            assert float(mean) == pytest.approx(column.mean, rel=1e-5)
        else:
            assert low == high == mean == ""


def _rects(row: str) -> list[dict[str, float]]:
    found = re.findall(
        r'<rect x="([^"]+)" y="([^"]+)" width="([^"]+)" height="([^"]+)" data-count="(\d+)"/>', row
    )
    return [dict(zip(("x", "y", "width", "height", "count"), map(float, f), strict=True)) for f in found]


def test_histogram_bars_are_as_tall_as_the_profile_counts(site: Site) -> None:
    page = site.http.get("/datasets/iris/versions/2").text
    profile = load_profile("iris@v2", client=site.client)
    rows = _profile_rows(page)
    for name in ("sepal length (cm)", "petal width (cm)"):
        histogram = profile.columns[name].histogram
        assert histogram is not None
        bars = _rects(rows[name])
        assert [int(b["count"]) for b in bars] == histogram.counts
        tallest = max(histogram.counts)
        assert [b["height"] / max(b["height"] for b in bars) for b in bars] == pytest.approx(
            [c / tallest for c in histogram.counts], abs=1e-3
        )
        assert [b["x"] for b in bars] == sorted(b["x"] for b in bars)  # low values left


def test_category_bars_are_as_long_as_the_profile_counts(site: Site) -> None:
    page = site.http.get("/datasets/people/versions/1").text
    top = load_profile("people@v1", client=site.client).columns["city"].top
    assert top is not None
    row = _profile_rows(page)["city"]
    bars = _rects(row)
    assert [int(b["count"]) for b in bars] == list(top.counts.values())
    longest = max(top.counts.values())
    assert [b["width"] / max(b["width"] for b in bars) for b in bars] == pytest.approx(
        [c / longest for c in top.counts.values()], abs=1e-3
    )
    labels = [html.unescape(t) for t in re.findall(r'text-anchor="end">([^<]*)</text>', row)]
    assert labels == list(top.counts)


def test_the_version_page_shows_the_personal_data_the_data_layer_finds(site: Site) -> None:
    for ref in ("people@v1", "people@v2"):
        page = site.http.get(f"/datasets/people/versions/{ref[-1]}").text
        report = scan_pii(load_dataset(ref, output="polars", client=site.client))
        if report.findings:
            rows = _table(page, "pii-findings")
            expected = [
                [f.column, f.kind, f"{f.confidence:.2f}", f"{f.match_share * 100:.0f}%",
                 "yes" if f.name_hint else "", ", ".join(f.examples), f.reason]
                for f in report.findings
            ]  # fmt: skip
            assert rows == expected
        else:
            assert 'id="pii-none"' in page and 'id="pii-findings"' not in page
    raw = scan_pii(load_dataset("people@v1", output="polars", client=site.client))
    assert "email" in raw.columns  # the raw version's emails are found (and only masked ones shown)
    page = site.http.get("/datasets/people/versions/1").text
    assert "person1.name@example.org" not in page  # the profile keeps raw top values: not drawn
    assert "categories not drawn: personal data" in _profile_rows(page)["email"]
    assert not _rects(_profile_rows(page)["email"]) and _rects(_profile_rows(page)["city"])


def test_a_diff_does_not_list_the_values_of_a_column_its_contract_marks_personal(site: Site) -> None:
    page = site.http.get("/datasets/people/diff", params={"a": 1, "b": 2}).text
    diff = diff_datasets("people@v1", "people@v2", client=site.client)
    vanished = diff.columns["email"].vanished_categories
    assert vanished and not any(value in page for value in vanished)
    row = {r[0]: r for r in _table(page, "column-diffs")}["email"]
    assert row[9] == f"{len(vanished)} (personal data: not shown)"


def test_a_version_bigger_than_a_page_reads_is_diffed_from_profiles_and_scanned_from_the_cli(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datasets_ui, "PAGE_ROWS", 60)
    page = site.http.get("/datasets/people/versions/1").text
    assert 'id="pii-cli"' in page and 'id="pii-findings"' not in page
    assert (
        "shipyard data get people@v1 -o people-v1.parquet" in page
        and "shipyard data pii people-v1.parquet" in page
    )
    diff = site.http.get("/datasets/iris/diff", params={"a": 1, "b": 2}).text
    assert 'id="binned"' in diff and "shipyard data diff iris@v1 iris@v2" in diff
    expected = diff_profiles(
        load_profile("iris@v1", client=site.client), load_profile("iris@v2", client=site.client)
    )
    rows = {r[0]: r for r in _table(diff, "column-diffs")}
    for name, column in expected.columns.items():
        assert rows[name][2] == column.verdict
        assert float(rows[name][3]) == pytest.approx(column.psi, rel=1e-5)


def test_the_diff_page_shows_the_data_layers_diff(site: Site) -> None:
    answer = site.http.get("/datasets/iris/diff", params={"a": "1", "b": "v2"})
    assert answer.status_code == 200
    page = answer.text
    diff = diff_datasets("iris@v1", "iris@v2", client=site.client)
    assert diff.exact and 'id="binned"' not in page
    rows_line = re.search(r'<p id="rows">(.*?)</p>', page)
    assert rows_line is not None
    change = diff.rows_b - diff.rows_a
    assert html.unescape(rows_line.group(1)) == f"{diff.rows_a:,} → {diff.rows_b:,} ({change:+,})"
    rows = {r[0]: r for r in _table(page, "column-diffs")}
    assert list(rows) == list(diff.columns)
    for name, column in diff.columns.items():
        row = rows[name]
        assert row[1] == column.kind and row[2] == column.verdict
        assert float(row[3]) == pytest.approx(column.psi, rel=1e-5)
        if column.ks is not None:
            assert float(row[4]) == pytest.approx(column.ks, rel=1e-5)
        assert row[8] == ", ".join(column.new_categories) and row[9] == ", ".join(column.vanished_categories)
    assert rows["species"][8] == "virginica"  # v1 is the first 100 rows: no virginica yet
    assert _table(page, "schema-changes") == [["None: the same columns with the same types."]]
    changed = site.http.get(f"/datasets/{XSS_NAME}/diff", params={"a": 1, "b": 2}).text
    expected = diff_datasets(f"{XSS_NAME}@v1", f"{XSS_NAME}@v2", client=site.client).schema_changes
    assert (
        _table(changed, "schema-changes")
        == [[s.column, s.change, s.dtype_a or "", s.dtype_b or ""] for s in expected]
        and expected
    )


def test_what_users_typed_is_shown_as_text(site: Site) -> None:
    http = site.http
    pages = [
        http.get("/datasets"),
        http.get(f"/datasets/{XSS_NAME}"),
        http.get(f"/datasets/{XSS_NAME}/versions/1"),
        http.get(f"/datasets/{XSS_NAME}/versions/2"),
        http.get(f"/datasets/{XSS_NAME}/diff", params={"a": 1, "b": 2}),
        http.get("/datasets/iris"),  # the contract's description and a column's description
        http.get(f"/datasets/{XSS_NAME}x"),  # the unknown name, echoed in the error
    ]
    for answer in pages:
        assert answer.status_code in (200, 404), answer.text
        assert "<script>alert" not in answer.text and "<img src=x" not in answer.text
        assert "&lt;img src=x onerror=alert(1)&gt;" in answer.text
    assert "&lt;script&gt;alert(" in pages[2].text  # a column name and a category label
    links = re.findall(r'<a href="(/datasets/[^"/]+)">', pages[0].text)
    opened = [site.http.get(html.unescape(link)) for link in links]  # links are percent-encoded
    assert len(opened) == 4 and all(a.status_code == 200 for a in opened)
    titles = [re.search(r"<h1>(.*?) <small>", a.text) for a in opened]
    assert XSS_NAME in {html.unescape(t.group(1)) for t in titles if t is not None}
    contract_rows = _table(pages[1].text, "contract-columns")
    assert contract_rows[0][0] == XSS and contract_rows[0][8] == XSS


def test_a_version_without_a_profile_shows_its_schema_and_cannot_be_diffed(site: Site) -> None:
    page = site.http.get("/datasets/bare/versions/1")
    assert page.status_code == 200 and "logged without a profile" in page.text
    version = site.client.get_dataset_version("bare", "v1")
    assert _table(page.text, "schema") == [[name, dtype] for name, dtype in version.schema]
    refused = site.http.get("/datasets/bare/diff", params={"a": 1, "b": 2})
    assert refused.status_code == 409 and "bare@v1" in refused.text and "without a profile" in refused.text


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/datasets/nope", 404),
        ("/datasets/nope/versions/1", 404),
        ("/datasets/iris/versions/3", 404),
        ("/datasets/iris/versions/x", 400),
        ("/datasets/iris/versions/0", 400),
        ("/datasets/iris/versions/-1", 400),
        ("/datasets/iris/versions/1.5", 400),
        ("/datasets/iris/versions/99999999999999999999", 400),
        ("/datasets/iris/diff", 400),
        ("/datasets/iris/diff?a=1", 400),
        ("/datasets/iris/diff?a=1&b=1", 400),
        ("/datasets/iris/diff?a=v2&b=2", 400),
        ("/datasets/iris/diff?a=one&b=2", 400),
        ("/datasets/iris/diff?a=1&b=%3Cscript%3E", 400),
        ("/datasets/iris/diff?a=1&b=7", 404),
        ("/datasets/nope/diff?a=1&b=2", 404),
    ],
)
def test_bad_input_answers_an_html_error_page(site: Site, url: str, status: int) -> None:
    answer = site.http.get(url)
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("text/html")
    assert '<p class="error" role="alert">' in answer.text and "<script>" not in answer.text


def test_with_auth_on_the_data_pages_need_a_reader(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, auth=True))
    store = app_state(app).store
    assert isinstance(store, AuthStore)
    store.create_user("vic", ["viewer"], "test")
    token = store.create_token("vic", "ui", "test")[1]
    transport = SyncASGITransport(app)
    with httpx.Client(transport=transport, base_url="http://testserver") as http:
        assert http.get("/datasets").headers["location"].startswith("/login?next=")
        assert http.get("/datasets/iris/diff?a=1&b=2").status_code == 303
        assert http.get("/datasets", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    transport.close()


def test_contracts_listed_are_the_stores(site: Site) -> None:
    """The datasets page names a contract only where a version was logged with it."""
    page = site.http.get("/datasets").text
    named = {r[0]: r[7] for r in _table(page, "datasets")}
    refs = {c.digest: c.ref for c in list_contracts(client=site.client)}
    for version in site.client.list_dataset_versions():
        if version.version == max(v.version for v in site.client.list_dataset_versions(version.name)):
            assert named[version.name] == refs.get(version.contract_digest or "", "")
