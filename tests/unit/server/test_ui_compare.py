"""The compare page's curves and parallel coordinates, the charts' data islands, and the front-end files the
pages load (vendored uPlot and htmx, shipyard.js) under a CSP that allows scripts from this site only.

A real SQLite store behind the server's own app; every expected value is computed here from what the test
logged, not read back from the code under test."""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_harness import SyncASGITransport, make_settings

from shipyard import Client
from shipyard.server import create_app
from shipyard.ui import STATIC_DIR
from shipyard.ui.runs import CURVE_POINTS

XSS = '<script>alert("x")</script></script><img src=x onerror=alert(1)>'
VENDOR = STATIC_DIR / "vendor"

# The sweep: (name, params, loss curve length, auc); "c" lacks momentum, "d" lacks the loss curve.
SWEEP = [
    ("a", {"lr": "0.1", "opt": "sgd", "momentum": "0.9", "seed": "7"}, 40, 0.71),
    ("b", {"lr": "0.01", "opt": "adam", "momentum": "0.5", "seed": "7"}, 1_000, 0.83),
    ("c", {"lr": "0.3", "opt": "adam", "seed": "7"}, 25, 0.64),
    ("d", {"lr": "0.05", "opt": XSS, "momentum": "0.7", "seed": "7"}, 0, 0.77),
]


def seven(value: float) -> float:
    """A value as the pages' data islands carry it: 7 significant digits."""
    return float(f"{value:.7g}")


def loss(run: int, step: int) -> float:
    return 1.0 / (1.0 + step * (run + 1)) + (0.25 if step == 500 else 0.0)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    root = tmp_path_factory.mktemp("compare")
    client = Client(settings=make_settings(root))
    ids = {}
    for i, (name, params, steps, auc) in enumerate(SWEEP):
        with client.start_run("sweep", name=name, params=params) as run:
            if steps:
                run.log_metric_series("loss", [loss(i, s) for s in range(steps)], steps=list(range(steps)))
            run.log_metric("auc", auc)
            ids[name] = run.id
    with client.start_run("sweep", name=XSS, params={"lr": "0.2", "opt": XSS}) as run:
        run.log_metrics({"auc": 0.5, "other": 1.0})
        ids["xss"] = run.id
    with client.start_run("sweep", name="lonely") as run:
        run.log_metric("only-here", 1.0)
        ids["lonely"] = run.id
    client.close()
    transport = SyncASGITransport(create_app(make_settings(root)))
    with httpx.Client(transport=transport, base_url="http://testserver") as http:
        yield http, ids
    transport.close()


def compare(http: httpx.Client, ids: dict[str, str], names: list[str], **query: str) -> httpx.Response:
    return http.get("/compare", params=[("run", ids[n]) for n in names] + list(query.items()))


def island(page: str, figure_id: str) -> dict[str, Any]:
    figure = re.search(rf'<figure class="chart" id="{figure_id}".*?</figure>', page, flags=re.S)
    assert figure, page
    data = re.search(r'<script type="application/json" class="chart-data">(.*?)</script>', figure.group(0))
    assert data
    parsed: dict[str, Any] = json.loads(data.group(1))
    return parsed


def parallel_svg(page: str) -> str:
    found = re.search(r'<figure class="parallel".*?</figure>', page, flags=re.S)
    assert found, page
    return found.group(0)


def test_curves_overlay_one_series_per_run_with_its_own_points(
    site: tuple[httpx.Client, dict[str, str]],
) -> None:
    http, ids = site
    answer = compare(http, ids, ["a", "b", "c", "d"], metric="loss")
    assert answer.status_code == 200
    data = island(answer.text, "curves-chart")
    assert data["key"] == "loss"
    assert [s["label"] for s in data["series"]] == ["a", "b", "c"]  # d has no loss curve
    for i, series in enumerate(data["series"]):
        logged = [(s, seven(loss(i, s))) for s in range(SWEEP[i][2])]
        drawn = list(zip(series["x"], series["y"], strict=True))
        assert set(drawn) <= set(logged) and drawn[0] == logged[0] and drawn[-1] == logged[-1]
        assert len(drawn) in (min(len(logged), CURVE_POINTS), CURVE_POINTS + 1)  # + 1: min and max
    b = list(zip(data["series"][1]["x"], data["series"][1]["y"], strict=True))
    assert (500, seven(loss(1, 500))) in b  # the long curve is downsampled, its spike kept
    figure = re.search(r'<figure class="chart" id="curves-chart".*?</figure>', answer.text, flags=re.S)
    assert figure is not None
    assert len(re.findall(r"<polyline ", figure.group(0))) == 3  # the server's SVG: a line per run
    legend = re.findall(r"</svg> (.*?) <small>(\d+) points", figure.group(0))
    assert legend == [("a", "40"), ("b", "1000"), ("c", "25")]
    assert '<option value="loss" selected>' in answer.text


def test_without_a_metric_the_first_one_all_runs_share_is_drawn(
    site: tuple[httpx.Client, dict[str, str]],
) -> None:
    http, ids = site
    page = compare(http, ids, ["a", "b", "c", "d"]).text  # all have auc; d lacks loss
    assert '<option value="auc" selected>' in page and '<option value="loss">' in page
    assert [s["label"] for s in island(page, "curves-chart")["series"]] == ["a", "b", "c", "d"]
    apart = compare(http, ids, ["a", "lonely"])  # no metric in common: nothing drawn, a choice offered
    assert apart.status_code == 200 and "share no metric" in apart.text
    assert '<option value="only-here">' in apart.text and 'id="curves-chart"' not in apart.text
    chosen = compare(http, ids, ["a", "lonely"], metric="only-here")
    assert [s["label"] for s in island(chosen.text, "curves-chart")["series"]] == ["lonely"]


def test_a_metric_no_run_has_is_a_clear_400(site: tuple[httpx.Client, dict[str, str]]) -> None:
    http, ids = site
    answer = compare(http, ids, ["a", "b"], metric="<b>nope</b>")
    assert answer.status_code == 400
    error = re.search(r'<p class="error" id="metric-error">(.*?)</p>', answer.text)
    assert error is not None
    assert "&lt;b&gt;nope&lt;/b&gt;" in error.group(1) and "auc, loss" in error.group(1)
    assert '<table id="compare">' in answer.text and 'id="curves-chart"' not in answer.text


def test_parallel_coordinates_draw_each_run_through_its_values(
    site: tuple[httpx.Client, dict[str, str]],
) -> None:
    http, ids = site
    svg = parallel_svg(compare(http, ids, ["a", "b", "c", "d"], metric="auc").text)
    axes = re.findall(
        r'<g class="axis"><line x1="([\d.]+)" y1="([\d.]+)" x2="[\d.]+" y2="([\d.]+)"/>\s*'
        r'<text class="name"[^>]*><title>([^<]*)</title>',
        svg,
    )
    names = [html.unescape(name) for *_, name in axes]
    assert names == ["params.lr", "params.momentum", "params.opt", "metrics.auc"]  # seed is the same
    x = {name: float(ax) for (ax, _, _, _), name in zip(axes, names, strict=True)}
    top, bottom = float(axes[0][1]), float(axes[0][2])

    def y(value: float, values: list[float]) -> float:
        return bottom - (value - min(values)) / (max(values) - min(values)) * (bottom - top)

    lrs = [float(p["lr"]) for _, p, _, _ in SWEEP]
    momenta = [float(p["momentum"]) for _, p, _, _ in SWEEP if "momentum" in p]
    aucs = [auc for *_, auc in SWEEP]
    categories = sorted({p["opt"] for _, p, _, _ in SWEEP})  # adam, sgd, the XSS text: evenly spaced
    opt_y = {c: bottom - i / (len(categories) - 1) * (bottom - top) for i, c in enumerate(categories)}
    lows_highs = (
        re.findall(r'<text class="low"[^>]*>([^<]*)</text>', svg),
        re.findall(r'<text class="high"[^>]*>([^<]*)</text>', svg),
    )
    assert lows_highs == (["0.01", "0.5", "0.64"], ["0.3", "0.9", "0.83"])
    ticks = re.findall(r'<text class="category"[^>]*y="([\d.]+)"[^>]*><title>([^<]*)</title>', svg)
    assert [(float(ty) - 4, html.unescape(label)) for ty, label in ticks] == [
        (opt_y[c], c) for c in categories
    ]

    traces = re.findall(r'<polyline stroke="(#[0-9a-f]{6})" points="([^"]+)"><title>([^<]*)</title>', svg)
    by_run: dict[str, list[list[tuple[float, float]]]] = {}
    for _, points, title in traces:
        label = html.unescape(title).rsplit(": auc = ", 1)[0]
        by_run.setdefault(label, []).append([tuple(map(float, p.split(","))) for p in points.split()])
    for name, params, _, auc in SWEEP:
        want = [(x["params.lr"], y(float(params["lr"]), lrs))]
        if "momentum" in params:
            want.append((x["params.momentum"], y(float(params["momentum"]), momenta)))
        else:  # c lacks momentum: its line breaks there, lr alone is a dot
            want = []
        want += [(x["params.opt"], opt_y[params["opt"]]), (x["metrics.auc"], y(auc, aucs))]
        got = [p for segment in by_run[name] for p in segment]
        assert got == [(pytest.approx(px, abs=0.06), pytest.approx(py, abs=0.06)) for px, py in want], name
    dot = re.search(r'<circle cx="([\d.]+)" cy="([\d.]+)" r="3" fill="#[0-9a-f]{6}"><title>c: auc', svg)
    assert dot and (float(dot.group(1)), float(dot.group(2))) == pytest.approx((x["params.lr"], y(0.3, lrs)))
    colors = {html.unescape(title).rsplit(": auc = ", 1)[0]: color for color, _, title in traces}
    scale = re.findall(r'<stop offset="[\d.]+" stop-color="(#[0-9a-f]{6})"/>', svg)
    assert len(scale) == 3 and (colors["c"], colors["b"]) == (scale[0], scale[-1])  # lowest, highest auc
    assert "0.64 to 0.83" in svg


def test_what_users_typed_is_escaped_in_svg_and_json(site: tuple[httpx.Client, dict[str, str]]) -> None:
    http, ids = site
    for metric in ("auc", "other"):
        page = compare(http, ids, ["d", "xss"], metric=metric).text
        assert "<script>alert" not in page and "<img src=x" not in page and "</script><img" not in page
        assert "&lt;script&gt;alert(" in page
        data = island(page, "curves-chart")  # the JSON island: <, >, & and ' escaped, the text intact
        assert XSS in [s["label"] for s in data["series"]]
        raw = re.search(r'class="chart-data">(.*?)</script>', page, flags=re.S)
        assert raw is not None and "<" not in raw.group(1) and ">" not in raw.group(1)
    svg = parallel_svg(compare(http, ids, ["d", "xss"], metric="auc").text)
    assert "<script" not in svg and "&lt;script&gt;" in svg


def test_run_page_charts_carry_their_points_as_json(site: tuple[httpx.Client, dict[str, str]]) -> None:
    http, ids = site
    page = http.get(f"/runs/{ids['b']}").text
    figure = re.search(r'<figure class="chart" id="chart-\d+".*?</figure>', page, flags=re.S)
    assert figure is not None and "loss" in figure.group(0)
    svg_points = re.search(r'points="([^"]+)"', figure.group(0))
    assert svg_points is not None
    data = island(page, "chart-1")  # auc has one point: no chart
    (series,) = data["series"]
    assert len(series["x"]) == len(svg_points.group(1).split()) == 500
    assert (500, seven(loss(1, 500))) in zip(series["x"], series["y"], strict=True)


def _vendored() -> list[tuple[str, str]]:
    """(path under /static/vendor, sha256) as vendor/README.md lists them."""
    readme = (VENDOR / "README.md").read_text()
    return re.findall(r"^\| `([\w.-]+/[\w.-]+)` \| `([0-9a-f]{64})` \|$", readme, flags=re.M)


def test_vendored_files_are_served_as_listed(site: tuple[httpx.Client, dict[str, str]]) -> None:
    http, _ = site
    listed = _vendored()
    on_disk = sorted(str(p.relative_to(VENDOR)) for p in VENDOR.glob("*/*"))
    assert sorted(path for path, _ in listed) == on_disk and len(listed) == 5
    kinds = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",)}
    for path, digest in listed:
        answer = http.get(f"/static/vendor/{path}")
        assert answer.status_code == 200 and hashlib.sha256(answer.content).hexdigest() == digest, path
        kind = kinds.get(Path(path).suffix)
        if kind:
            assert answer.headers["content-type"].split(";")[0] in kind, path
    own = http.get("/static/shipyard.js")
    assert own.status_code == 200 and own.headers["content-type"].split(";")[0] in kinds[".js"]


def test_pages_load_scripts_from_this_site_only(site: tuple[httpx.Client, dict[str, str]]) -> None:
    http, ids = site
    answer = compare(http, ids, ["a", "b"], metric="loss")
    policy = answer.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'" and directives["default-src"] == "'none'"
    assert directives["connect-src"] == "'self'"  # htmx's fragments (the live traffic panel)
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    page = answer.text
    scripts = re.findall(r"<script([^>]*)>", page)
    loaded = [m.group(1) for s in scripts if (m := re.search(r'src="([^"]+)"', s))]
    assert loaded == [
        "/static/vendor/htmx-2.0.11/htmx.min.js",
        "/static/vendor/uplot-1.6.32/uPlot.iife.min.js",
        "/static/shipyard.js",
    ]
    inline = [s for s in scripts if "src=" not in s]
    assert inline and all('type="application/json"' in s for s in inline)  # data, never code
    assert " style=" not in page and "<style" not in page  # the CSP refuses inline styles too
    for href in [*loaded, *re.findall(r'<link rel="stylesheet" href="([^"]+)"', page)]:
        assert http.get(href).status_code == 200, href
    meta = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", page)
    assert meta is not None and json.loads(meta.group(1)) == {
        "includeIndicatorStyles": False,
        "allowEval": False,
    }


def test_compare_keeps_its_choices_in_links_and_forms(site: tuple[httpx.Client, dict[str, str]]) -> None:
    http, ids = site
    page = compare(http, ids, ["a", "b"], metric="loss", only_diff="true").text
    form = re.search(r'<form method="get" action="/compare" class="metric">(.*?)</form>', page, flags=re.S)
    assert form is not None
    assert re.findall(r'name="run" value="([0-9a-f]+)"', form.group(1)) == [ids["a"], ids["b"]]
    assert 'name="only_diff" value="true"' in form.group(1) and "data-autosubmit" in form.group(1)
    toggle = re.search(r'<a href="\?([^"]+)">Show every field</a>', page)
    assert toggle is not None and "metric=loss" in html.unescape(toggle.group(1))
