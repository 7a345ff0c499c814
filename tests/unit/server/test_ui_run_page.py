"""The run page through the server's own app over a real SQLite store: system metrics in their own
section, cost and energy, lineage, a real pipeline's DAG with each step's status, and artifact
previews (images, JSON, CSV, Parquet, text, anything else) whose raw route never lets an uploaded
SVG or HTML file run script on the UI's origin."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from server_harness import SyncASGITransport, make_settings

import shipyard as sy
from shipyard import Client
from shipyard.errors import PipelineFailed
from shipyard.pipelines import LocalExecutor
from shipyard.server import create_app

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
SANDBOX = "sandbox; default-src 'none'"


# -- a real pipeline
@sy.step
def make_frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"i": list(range(n)), "square": [i * i for i in range(n)]})


@sy.step
def evens(frame: pd.DataFrame) -> int:
    return int(frame.loc[frame["i"] % 2 == 0, "square"].sum())


@sy.step
def odds(frame: pd.DataFrame) -> int:
    return int(frame.loc[frame["i"] % 2 == 1, "square"].sum())


@sy.step
def total(a: int, b: int) -> int:
    return a + b


@sy.step
def explode(frame: pd.DataFrame) -> int:
    raise RuntimeError(f"no {len(frame)} rows today")


@sy.pipeline(name="ui-squares")
def squares(n: int = 10) -> int:
    frame = make_frame(n)
    return total(evens(frame), odds(frame))  # type: ignore[no-any-return]


@sy.pipeline(name="ui-broken")
def broken(n: int = 5) -> int:
    frame = make_frame(n)
    return total(explode(frame), odds(frame))  # type: ignore[no-any-return]


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real (minimal) PNG: signature, IHDR, one zlib IDAT of filter-0 rows, IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG = _png(3, 2, (200, 30, 60))
EVIL_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(document.cookie)</script></svg>'
)
EVIL_HTML = b"<!doctype html><html><body><script>fetch('/api/v1/users')</script><h1>hi</h1></body></html>"
REPORT = {"auc": 0.91, "classes": ["late", "on time"], "note": XSS, "nested": {"depth": [1, {"x": None}]}}
BINARY = bytes(range(256)) * 4 + b"\x00\x01"
BIG_LOG = "".join(f"line {i:06d} of a long log\n" for i in range(4_000))  # about 100 KB
CSV_ROWS = [(i, f"name {i}" if i != 3 else XSS, i / 4) for i in range(30)]
PARQUET = pa.table(
    {
        "id": pa.array(range(50), pa.int64()),
        "city": pa.array([f"city-{i}" for i in range(50)]),
        "temp": pa.array([i * 0.5 for i in range(50)], pa.float64()),
    }
)
XSS_PATH = "odd/<script>alert(1)</script>&x=1.txt"


def _csv() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "name", "score"])
    writer.writerows(CSV_ROWS)
    return out.getvalue().encode()


def _parquet() -> bytes:
    out = io.BytesIO()
    pq.write_table(PARQUET, out, row_group_size=10)
    return out.getvalue()


ARTIFACTS = {
    "plots/curve.png": PNG,
    "disguised.txt": PNG,  # an image whatever its name says
    "fake.png": EVIL_SVG,  # not an image whatever its name says
    "evil.svg": EVIL_SVG,
    "page.html": EVIL_HTML,
    "reports/metrics.json": json.dumps(REPORT).encode(),
    "broken.json": b'{"auc": 0.9,',
    "data/table.csv": _csv(),
    "data/table.parquet": _parquet(),
    "notes.txt": f"Remember {XSS}\nsecond line é\n".encode(),
    "logs/big.log": BIG_LOG.encode(),
    "weights.bin": BINARY,
    XSS_PATH: b"odd name, plain text",
    "photo.gif": b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
    "photo.jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "photo.webp": b"RIFF\x1a\x00\x00\x00WEBPVP8 ",
}


@dataclass
class Site:
    http: httpx.Client
    client: Client
    ids: dict[str, str] = field(default_factory=dict)
    pipelines: dict[str, sy.PipelineResult] = field(default_factory=dict)
    broken_run: str = ""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("run-page")
    client = Client(settings=make_settings(root))
    ids: dict[str, str] = {}
    with client.start_run("files", name="files") as run:
        for path, data in ARTIFACTS.items():
            run.log_bytes(data, path)
        ids["files"] = run.id
    with client.start_run("charts", name="many-series") as run:
        for step in range(5):
            run.log_metrics({f"m{k:02d}": step * k for k in range(14)}, step=step)
            run.log_metrics({f"system.s{k:02d}": step + k for k in range(13)}, step=step)
        ids["many"] = run.id
    sampled = client.with_settings(system_metrics_interval=3600)
    with sampled.start_run("charts", name="sampled", system_metrics=True) as run:  # the real sampler
        run.log_metric("loss", 0.5)
        ids["sampled"] = run.id
    from sklearn.linear_model import LogisticRegression  # slow to import: only where it is used

    frame = pd.DataFrame({"x": np.arange(40), "y": np.arange(40) % 2})
    data = sy.log_dataset(frame, name="ui-lineage", client=client, profile=False)
    with client.start_run("lineage", name="trained") as run:
        run.use_dataset(data, role="train")
        sy.log_model(
            LogisticRegression().fit(frame[["x"]], frame["y"]),
            "model",
            run=run,
            input_example=frame[["x"]].head(),
        )
        sy.register_model(run, name="ui-model", client=client)
        ids["lineage"] = run.id
    one = LocalExecutor(max_workers=1)  # steps in this process: no worker start-up in a unit test
    pipelines = {
        "first": squares.run(n=10, client=client, executor=one),
        "again": squares.run(n=10, client=client, executor=one),
    }
    with pytest.raises(PipelineFailed) as failed:
        broken.run(n=5, client=client, executor=one)
    client.close()
    transport = SyncASGITransport(create_app(make_settings(root)))
    with httpx.Client(transport=transport, base_url="http://testserver") as http:
        reader = Client(settings=make_settings(root))
        yield Site(http, reader, ids, pipelines, failed.value.details["pipeline_run_id"])
        reader.close()
    transport.close()


def _section(page: str, marker: str) -> str:
    """The part of ``page`` from ``marker`` to the end of its section."""
    assert marker in page, f"{marker!r} not on the page"
    return page.split(marker, 1)[1].split("</section>", 1)[0]


def _view(site: Site, path: str) -> str:
    answer = site.http.get(f"/runs/{site.ids['files']}/artifacts/view", params={"path": path})
    assert answer.status_code == 200, answer.text
    return answer.text


def _raw(site: Site, path: str) -> httpx.Response:
    answer = site.http.get(f"/runs/{site.ids['files']}/artifacts/raw", params={"path": path})
    assert answer.status_code == 200, answer.text
    return answer


def _pre(page: str) -> str:
    found = re.search(r'<pre class="artifact">(.*?)</pre>', page, flags=re.S)
    assert found, page
    return html.unescape(found.group(1))


def _table(page: str) -> tuple[list[tuple[str, str]], list[list[str]]]:
    body = page.split('<table id="head">', 1)[1].split("</table>", 1)[0]
    head = re.findall(r"<th>(.*?) <small>(.*?)</small></th>", body)
    rows = [
        [html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1], flags=re.S)
    ]
    return [(html.unescape(n), html.unescape(t)) for n, t in head], rows


# -- artifacts --------------------------------------------------------------------------------


def test_the_artifacts_table_links_each_artifact_to_its_preview(site: Site) -> None:
    page = site.http.get(f"/runs/{site.ids['files']}").text
    table = page.split('<table id="artifacts">', 1)[1].split("</table>", 1)[0]
    previewed = set()
    for href in re.findall(r'<a href="([^"]+)">', table):  # every link opens a preview of an artifact
        url = urlsplit(html.unescape(href))
        assert url.path == f"/runs/{site.ids['files']}/artifacts/view"
        assert site.http.get(html.unescape(href)).status_code == 200
        previewed |= {v for k, v in parse_qsl(url.query) if k == "path"}
    assert previewed == {a.path for a in site.client.list_artifacts(site.ids["files"])} >= set(ARTIFACTS)


def test_images_are_told_by_their_bytes_and_shown_inline(site: Site) -> None:
    for path in ("plots/curve.png", "disguised.txt"):
        page = _view(site, path)
        img = re.search(r'<img class="artifact" src="([^"]+)"', page)
        assert img, page
        raw = site.http.get(html.unescape(img.group(1)))
        assert raw.status_code == 200 and raw.content == PNG
        assert raw.headers["content-type"] == "image/png"
        assert raw.headers["x-content-type-options"] == "nosniff"
        assert raw.headers["content-security-policy"] == SANDBOX
    for path, media_type in (
        ("photo.gif", "image/gif"),
        ("photo.jpg", "image/jpeg"),
        ("photo.webp", "image/webp"),
    ):
        answer = _raw(site, path)
        assert answer.headers["content-type"] == media_type and answer.content == ARTIFACTS[path]


@pytest.mark.parametrize("path", ["evil.svg", "page.html", "fake.png", "weights.bin", "notes.txt"])
def test_anything_but_a_raster_image_is_an_attachment_that_cannot_run(site: Site, path: str) -> None:
    answer = _raw(site, path)
    assert answer.content == ARTIFACTS[path]
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["content-security-policy"] == SANDBOX


def test_svg_and_html_previews_show_their_source_as_text(site: Site) -> None:
    for path in ("evil.svg", "page.html", "fake.png"):
        page = _view(site, path)
        assert _pre(page) == ARTIFACTS[path].decode()
        assert "<script>" not in page and "<svg" not in page and "<h1>hi</h1>" not in page
        assert "<img" not in page  # an SVG named .png is not shown as an image


def test_json_is_pretty_printed_and_invalid_json_shown_as_text(site: Site) -> None:
    page = _view(site, "reports/metrics.json")
    shown = _pre(page)
    assert json.loads(shown) == REPORT and '\n  "classes": [\n' in shown  # indented, one item a line
    assert "<script>alert" not in page
    bad = _view(site, "broken.json")
    assert _pre(bad) == ARTIFACTS["broken.json"].decode() and "not valid JSON" in bad


def test_csv_shows_its_first_rows_with_column_types(site: Site) -> None:
    page = _view(site, "data/table.csv")
    columns, rows = _table(page)
    assert [name for name, _ in columns] == ["id", "name", "score"]
    assert dict(columns)["id"] == "int64" and dict(columns)["score"] == "double"
    assert rows == [[str(i), name, str(score)] for i, name, score in CSV_ROWS[:20]]
    assert "30 rows, 3 columns; the first 20 rows" in page
    assert "<script>alert" not in page and "&lt;script&gt;" in page


def test_parquet_shows_its_first_rows_schema_and_row_count(site: Site) -> None:
    page = _view(site, "data/table.parquet")
    columns, rows = _table(page)
    assert columns == [(f.name, str(f.type)) for f in PARQUET.schema]
    expected = PARQUET.slice(0, 20).to_pylist()
    assert rows == [[str(r["id"]), r["city"], str(r["temp"])] for r in expected]
    assert f"{PARQUET.num_rows} rows, 3 columns" in page


def test_text_shows_its_first_64_kb(site: Site) -> None:
    page = _view(site, "notes.txt")
    assert _pre(page) == ARTIFACTS["notes.txt"].decode()
    assert "<script>alert" not in page
    big = _view(site, "logs/big.log")
    assert _pre(big) == BIG_LOG[: 64 * 1024] and len(BIG_LOG) > 64 * 1024
    assert f"The first 64 KB of {len(BIG_LOG):,} bytes" in big


def test_other_files_show_size_digest_and_a_download_link(site: Site) -> None:
    page = _view(site, "weights.bin")
    stored = {a.path: a for a in site.client.list_artifacts(site.ids["files"])}["weights.bin"]
    assert stored.size == len(BINARY) and f"<code>{stored.digest}</code>" in page
    assert f"{len(BINARY):,} bytes" in page and "No preview" in page and "<pre" not in page
    link = re.search(r'<a id="download" href="([^"]+)"', page)
    assert link and site.http.get(html.unescape(link.group(1))).content == BINARY


def test_a_name_with_markup_is_escaped_and_its_link_encoded(site: Site) -> None:
    page = site.http.get(f"/runs/{site.ids['files']}").text
    assert "<script>alert(1)" not in page and html.escape(XSS_PATH, quote=False) in page
    href = re.search(r'href="(/runs/[0-9a-f]+/artifacts/view\?path=odd/[^"]+)"', page)
    assert href and "<" not in href.group(1) and "&x=" not in html.unescape(href.group(1))
    view = site.http.get(html.unescape(href.group(1)))
    assert view.status_code == 200 and _pre(view.text) == "odd name, plain text"
    assert "<script>alert(1)" not in view.text


@pytest.mark.parametrize("path", ["../secret", "/etc/passwd", "a/../../x", "plots/../plots/curve.png", ""])
@pytest.mark.parametrize("route", ["view", "raw"])
def test_traversal_and_absolute_paths_are_refused(site: Site, route: str, path: str) -> None:
    answer = site.http.get(f"/runs/{site.ids['files']}/artifacts/{route}", params={"path": path})
    assert answer.status_code == 400 and answer.headers["content-type"].startswith("text/html")
    assert 'class="error"' in answer.text


@pytest.mark.parametrize("route", ["view", "raw"])
def test_unknown_artifacts_and_runs_are_404_pages(site: Site, route: str) -> None:
    missing = site.http.get(f"/runs/{site.ids['files']}/artifacts/{route}", params={"path": "nope.txt"})
    assert missing.status_code == 404 and "has no artifact" in missing.text
    no_run = site.http.get(f"/runs/{'0' * 32}/artifacts/{route}", params={"path": "notes.txt"})
    assert no_run.status_code == 404 and 'class="error"' in no_run.text
    folder = site.http.get(f"/runs/{site.ids['files']}/artifacts/{route}", params={"path": "plots"})
    assert folder.status_code == 404  # a folder is not an artifact


# -- metrics, cost, lineage --------------------------------------------------------------------


def test_system_metrics_have_their_own_section_and_chart_cap(site: Site) -> None:
    page = site.http.get(f"/runs/{site.ids['many']}").text
    model = _section(page, "<h2>Metric charts</h2>")
    system = _section(page, '<section id="system">')
    assert model.count("<figure") == 12 and system.count("<figure") == 12  # a cap per group
    assert "system." not in model and "m00" not in system
    assert "2 more metrics have no chart" in model and "1 more system metrics" in system
    drawn = re.findall(r"<figcaption>([^ <]+)", system)
    assert drawn == [f"system.s{k:02d}" for k in range(12)]
    latest = _section(page, '<table id="metrics">')
    assert "<td>m13</td>" in latest and "system." not in latest


def test_the_samplers_metrics_show_in_the_system_section(site: Site) -> None:
    recorded = site.client.get_run(site.ids["sampled"]).metrics
    sampled = sorted(k for k in recorded if k.startswith("system."))
    assert "system.cpu_percent" in sampled and "system.rss_mb" in sampled
    page = site.http.get(f"/runs/{site.ids['sampled']}").text
    table = _section(page, '<table id="system-metrics">')
    assert re.findall(r"<tr><td>([^<]+)</td>", table) == sampled
    assert re.findall(r"<tr><td>([^<]+)</td>", _section(page, '<table id="metrics">')) == ["loss"]


def test_cost_and_energy_of_a_step_are_shown_and_absent_elsewhere(site: Site) -> None:
    step = site.pipelines["first"].steps["make_frame"].run_id
    metrics = site.client.get_run(step).metrics
    cost = _section(site.http.get(f"/runs/{step}").text, '<section id="cost">')
    facts = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", cost))
    assert facts["CPU time"] == f"{metrics['cost.cpu_seconds']:.6g} s"
    assert facts["Peak memory"] == f"{metrics['cost.peak_memory_mb']:.6g} MB"
    assert facts["Wall time"] == f"{metrics['cost.wall_seconds']:.6g} s"
    energy = [v for k, v in facts.items() if k.startswith("Energy")]
    kwh = metrics["cost.energy_kwh"]
    assert sorted(energy) == sorted([f"{kwh * 1000:.6g} Wh", f"{kwh * 3.6e6:.6g} J"])
    assert facts["Cost"] == f"{metrics['cost.usd']:.6g} USD"
    assert "cost." not in _section(site.http.get(f"/runs/{step}").text, '<table id="metrics">')
    assert 'id="cost"' not in site.http.get(f"/runs/{site.ids['files']}").text


def test_lineage_links_the_datasets_in_and_the_models_out(site: Site) -> None:
    page = site.http.get(f"/runs/{site.ids['lineage']}").text
    datasets = _section(page, '<table id="datasets">')
    use = site.client.list_run_datasets(site.ids["lineage"])[0]
    assert (
        f'<td><a href="/datasets/{use.dataset.name}">{use.dataset.name}</a></td>'
        f"<td>v{use.dataset.version}</td><td>train</td>" in datasets
    )
    models = _section(page, '<table id="models-out">')
    assert '<a href="/models/ui-model">ui-model</a></td><td>v1</td>' in models
    assert 'id="lineage"' not in site.http.get(f"/runs/{site.ids['files']}").text


# -- the pipeline DAG --------------------------------------------------------------------------


def _dag(page: str) -> tuple[dict[str, tuple[str, str | None, int]], set[tuple[str, str]]]:
    """The drawn DAG: node → (status, linked run id, box x) and the edges (from, to)."""
    svg = page.split('<svg class="dag"', 1)[1].split("</svg>", 1)[0]
    nodes = {}
    for group in re.findall(r'<g class="step[^"]*".*?</g>', svg, flags=re.S):
        node = re.search(r'data-node="([^"]+)" data-status="([^"]+)"', group)
        link = re.search(r'<a href="/runs/([0-9a-f]+)">', group)
        box = re.search(r'<rect x="(\d+)"', group)
        assert node and box, group
        nodes[node.group(1)] = (node.group(2), link.group(1) if link else None, int(box.group(1)))
    edges = set(re.findall(r'<path class="edge" data-from="([^"]+)" data-to="([^"]+)"', svg))
    return nodes, edges


def test_a_pipeline_run_draws_its_real_dag_with_each_steps_status(site: Site) -> None:
    traced, _, _ = squares.trace(n=10)
    expected_edges = {(u, n) for n, node in traced.items() for u in node.upstream}
    for name, status in (("first", "finished"), ("again", "cached")):
        result = site.pipelines[name]
        nodes, edges = _dag(site.http.get(f"/runs/{result.run_id}").text)
        assert set(nodes) == set(traced) and edges == expected_edges
        assert {n: (s, r) for n, (s, r, _) in nodes.items()} == {
            n: (r.status, r.run_id) for n, r in result.steps.items()
        }
        assert {s for s, _, _ in nodes.values()} == {status}
        x = {n: box for n, (_, _, box) in nodes.items()}
        assert x["make_frame"] < x["evens"] == x["odds"] < x["total"]  # layered left to right


def test_a_failed_pipeline_shows_failed_and_skipped_steps(site: Site) -> None:
    page = site.http.get(f"/runs/{site.broken_run}").text
    nodes, edges = _dag(page)
    info = sy.get_pipeline_run(site.broken_run, client=site.client)
    assert {n: s for n, (s, _, _) in nodes.items()} == {s.node: s.status for s in info.steps}
    assert nodes["explode"][0] == "failed" and nodes["total"][0] == "skipped"
    assert edges == {
        ("make_frame", "explode"),
        ("make_frame", "odds"),
        ("explode", "total"),
        ("odds", "total"),
    }
    assert "status failed" in page.split("<h2>Pipeline", 1)[1].split("</h2>", 1)[0]


def test_a_step_page_links_its_pipeline_run_and_marks_itself(site: Site) -> None:
    result = site.pipelines["first"]
    step = result.steps["evens"].run_id
    page = site.http.get(f"/runs/{step}").text
    link = re.search(r'<a id="pipeline-run" href="/runs/([0-9a-f]+)">ui-squares</a>', page)
    assert link and link.group(1) == result.run_id
    current = re.findall(r'<g class="step [a-z]+ current" data-node="([^"]+)"', page)
    assert current == ["evens"]
    assert 'id="pipeline-run"' not in site.http.get(f"/runs/{result.run_id}").text  # the pipeline itself
    assert 'class="dag"' not in site.http.get(f"/runs/{site.ids['files']}").text  # not a pipeline


def test_a_steps_stored_output_previews_as_the_table_it_returned(site: Site) -> None:
    step = site.pipelines["first"].steps["make_frame"].run_id
    page = site.http.get(f"/runs/{step}/artifacts/view", params={"path": "outputs/0"}).text
    columns, rows = _table(page)
    returned = make_frame(10)  # outside a pipeline a step is its plain function
    assert [name for name, _ in columns] == list(returned.columns)
    assert rows == [[str(v) for v in row] for row in returned.itertuples(index=False)]
