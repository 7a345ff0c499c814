"""The web UI in a real browser: Debian's headless Chromium (Playwright, no downloaded browser) against a
real ``shipyard server --auth`` over SQLite, seeded through the REST API and the SDK (ui_seed.py). A user
signs in through the form, filters and sorts the runs table, opens a run's chart and hovers, zooms and
resets it, compares two runs, approves a model version (a viewer cannot, not even with a forged form),
sees a drift alert on the monitoring page, and a run named with HTML stays text. Every page type renders
what was seeded with its scripts working and nothing refused (console, CSP, failed or 4xx requests).

Every page visited is saved as a PNG (see conftest.py for where); ``SHIPYARD_UPDATE_SCREENSHOTS=1``
also rewrites docs/img/ui-runs.png and docs/img/ui-run.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from ui_site import (
    ARTIFACTS,
    DATASET,
    DEPLOYMENT,
    DRIFT_RULE,
    EXPERIMENT,
    FILES_EXPERIMENT,
    MODEL,
    MONITORED,
    PASSWORD,
    QUEUED_MODEL,
    REPO,
    RUNS,
    STEPS,
    UPDATE_SCREENSHOTS,
    XSS,
    Site,
    Visitor,
    Watch,
)

import shipyard as sy
from shipyard.registry import core, governance

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("browser")]
playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect  # Playwright's auto-waiting assertions

FILTER = "metrics.acc > 0.5"
DOCS_SHOT = REPO / "docs" / "img" / "ui-runs.png"
DOCS_RUN_SHOT = REPO / "docs" / "img" / "ui-run.png"


def _runs_url(site: Site, **query: str) -> str:
    url = f"/experiments/{site.seeded.experiment_id}"
    return url + ("?" + "&".join(f"{k}={quote(v)}" for k, v in query.items()) if query else "")


def _row_ids(page: Any) -> list[str]:
    """The run ids of the runs table's rows, top to bottom (each row's compare checkbox holds it)."""
    return list(page.locator("#runs tbody input[name=run]").evaluate_all("els => els.map(e => e.value)"))


def _column(page: Any, field: str) -> list[str]:
    """The cells of one column of the runs table, top to bottom."""
    headers = [h.strip().rstrip("▲▼ ") for h in page.locator("#runs thead th").all_inner_texts()]
    index = headers.index(field) + 1
    return list(page.locator(f"#runs tbody tr td:nth-child({index})").all_inner_texts())


def _words(text: str) -> str:
    return " ".join(text.split())


def test_signing_in_through_the_form_lands_on_the_page_asked_for(site: Site, visitor: Visitor) -> None:
    asked = _runs_url(site, filter=FILTER)
    page = visitor.page()
    page.goto(asked)
    page.wait_for_url(re.compile(r"/login\?next="))
    visitor.shoot(page, "sign-in")
    page.get_by_label("User").fill("viewer")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    error = page.locator("#login-error")
    error.wait_for()
    assert "Wrong user name or password" in error.inner_text()
    visitor.shoot(page, "wrong-password")

    page.get_by_label("User").fill("viewer")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url)
    visitor.shoot(page, "landed")
    landed, wanted = urlsplit(page.url), urlsplit(asked)
    assert landed.path == wanted.path and parse_qs(landed.query) == {"filter": [FILTER]}
    assert page.locator("header form.who span").inner_text() == "viewer"
    assert page.get_by_label("Filter").input_value() == FILTER


def test_filtering_and_sorting_the_runs_table_shows_what_the_sdk_finds(site: Site, visitor: Visitor) -> None:
    seeded, admin = site.seeded, site.admin
    page = visitor.sign_in("viewer", _runs_url(site))
    visitor.shoot(page, "runs")
    assert _row_ids(page) == list(admin.search_runs(EXPERIMENT)["run_id"])
    assert sorted(_row_ids(page)) == sorted(seeded.acc) and len(seeded.acc) == RUNS

    page.get_by_label("Filter").fill(FILTER)
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"filter=metrics"))
    visitor.shoot(page, "filtered")
    shown = _row_ids(page)
    assert shown == list(admin.search_runs(EXPERIMENT, filter=FILTER)["run_id"])
    assert sorted(shown) == sorted(r for r, acc in seeded.acc.items() if acc > 0.5)
    assert 0 < len(shown) < RUNS

    for direction in ("desc", "asc"):  # a header sorts by its column, a second click the other way
        page.locator("#runs thead").get_by_role("link", name="metrics.acc", exact=True).click()
        page.wait_for_url(re.compile(rf"order=metrics.acc\+{direction}"))
        visitor.shoot(page, f"sorted-{direction}")
        shown = _row_ids(page)
        wanted = admin.search_runs(EXPERIMENT, filter=FILTER, order_by=f"metrics.acc {direction}")
        assert shown == list(wanted["run_id"])
        accs = [seeded.acc[r] for r in shown]
        assert accs == sorted(accs, reverse=direction == "desc") and len(set(accs)) == len(accs)
        assert [float(cell) for cell in _column(page, "metrics.acc")] == accs
        assert page.get_by_label("Filter").input_value() == FILTER  # the filter stays on
        if direction == "desc" and UPDATE_SCREENSHOTS:
            DOCS_SHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(DOCS_SHOT))
            assert DOCS_SHOT.stat().st_size <= 200_000

    bad = "metrics.acc >> 0.5"
    with pytest.raises(sy.InvalidInput) as parsed:
        admin.search_runs(EXPERIMENT, filter=bad)
    page.get_by_label("Filter").fill(bad)
    with page.expect_response(lambda r: "/experiments/" in r.url) as answer:
        page.get_by_role("button", name="Show").click()
    assert answer.value.status == 400
    error = page.locator("#query-error")
    error.wait_for()
    visitor.shoot(page, "bad-filter")
    assert _words(parsed.value.message) in _words(error.inner_text())
    assert page.get_by_label("Filter").input_value() == bad  # kept in its box to fix
    assert _row_ids(page) == []


def test_a_run_page_draws_its_metric_series(site: Site, visitor: Visitor) -> None:
    seeded = site.seeded
    run_id = next(r for r in seeded.acc if r != seeded.xss_run)
    page = visitor.sign_in("viewer", _runs_url(site))
    visitor.shoot(page, "runs")
    page.locator(f'#runs a[href="/runs/{run_id}"]').click()
    page.wait_for_url(f"**/runs/{run_id}")
    figures = page.locator("figure.chart")
    figures.first.wait_for()
    visitor.shoot(page, "run")
    keys = sorted(site.admin.get_run(run_id).metrics)
    assert keys == ["acc", "loss"]
    assert figures.count() == len(keys)
    for key in keys:
        figure = figures.filter(has=page.locator("figcaption", has_text=re.compile(rf"^{key}\b")))
        assert figure.count() == 1, key
        history = list(site.admin.get_metric_history(run_id, key)["value"])
        assert len(history) == STEPS
        box = figure.bounding_box()
        assert box is not None and box["width"] > 150 and box["height"] > 80
        if figure.locator("svg polyline").count():  # server-drawn SVG
            points = figure.locator("svg polyline").get_attribute("points") or ""
            ys = [float(p.split(",")[1]) for p in points.split()]
            assert len(ys) == len(history)  # short series: every point drawn
            # SVG's y grows downwards: a rising series draws falling y, a falling one rising y
            rising = history == sorted(history)
            assert ys == sorted(ys, reverse=rising) and len(set(ys)) == len(ys)
        else:  # an interactive chart draws on a canvas
            canvas = figure.locator("canvas").first
            canvas.wait_for()
            drawn = canvas.bounding_box()
            assert drawn is not None and drawn["width"] > 100 and drawn["height"] > 50


def test_two_ticked_runs_are_compared_with_their_differences_marked(site: Site, visitor: Visitor) -> None:
    seeded, admin = site.seeded, site.admin
    ordinary = [r for r in seeded.acc if r != seeded.xss_run]
    a, b = ordinary[0], ordinary[2]  # same model, different lr, depth and accuracy
    page = visitor.sign_in("viewer", _runs_url(site))
    page.locator(f'#runs input[name=run][value="{a}"]').check()
    page.locator(f'#runs input[name=run][value="{b}"]').check()
    visitor.shoot(page, "ticked")
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url(re.compile(r"/compare\?"))
    visitor.shoot(page, "compare")
    ticked = parse_qs(urlsplit(page.url).query)["run"]  # in the table's order
    assert sorted(ticked) == sorted([a, b])
    headers = page.locator("#compare thead th a").all_inner_texts()
    assert headers == [seeded.names[r] for r in ticked]

    runs = [admin.get_run(a), admin.get_run(b)]
    expected: dict[str, bool] = {}
    for kind in ("params", "metrics", "tags"):
        keys = {k for r in runs for k in getattr(r, kind) if not (kind == "tags" and k.startswith("sy."))}
        for k in keys:
            values = [getattr(r, kind).get(k) for r in runs]
            expected[f"{kind}.{k}"] = values[0] != values[1]
    rows = page.locator("#compare tbody tr")
    shown = {
        rows.nth(i).locator("td").nth(1).inner_text(): "differs" in (rows.nth(i).get_attribute("class") or "")
        for i in range(rows.count())
    }
    assert shown == expected
    assert shown["params.lr"] and shown["metrics.acc"] and not shown["params.model"]
    marks = page.locator("#compare tbody tr.differs td:first-child").all_inner_texts()
    assert marks == ["≠"] * sum(expected.values())


def test_an_approver_approves_a_pending_version_on_the_model_page(site: Site, visitor: Visitor) -> None:
    version, admin = site.seeded.model_version, site.admin
    page = visitor.sign_in("approver", f"/models/{MODEL}")
    visitor.shoot(page, "model")
    row = page.locator("#versions tbody tr", has_text=f"v{version}")
    row.get_by_label(f"comment on v{version}").fill("fairness report read")
    row.get_by_role("button", name="Approve").click()
    page.wait_for_url(re.compile(r"message="))
    visitor.shoot(page, "approved")
    assert page.get_by_role("status").inner_text() == f"Approved version {version}."
    record = page.locator("#records tbody tr", has_text="approve: fairness report read")
    assert record.count() == 1 and "approver" in record.inner_text()

    approvals = core.list_model_records(MODEL, version, kind="approval", client=admin)
    assert [(r.actor, r.body["decision"]) for r in approvals] == [("approver", "approve")]
    # the approval is the registry's own: the policy now lets the version through
    assert governance.promote_model(
        MODEL, version, alias="champion", reason="approved", client=admin
    ).promoted
    page.reload()
    visitor.shoot(page, "promoted")
    assert f"champion → v{version}" in page.locator(".alias").all_inner_texts()


def test_a_viewer_sees_no_approve_button_and_a_forged_approval_is_refused(
    site: Site, visitor: Visitor
) -> None:
    version, admin = site.seeded.model_version, site.admin
    page = visitor.sign_in("viewer", f"/models/{MODEL}")
    visitor.shoot(page, "model-as-viewer")
    assert page.locator("#versions tbody tr").count() >= 1
    assert page.get_by_role("button", name="Approve").count() == 0
    assert page.locator("form.decide").count() == 0
    before = core.list_model_records(MODEL, version, kind="approval", client=admin)
    csrf = page.locator('form.who input[name="csrf"]').input_value()  # this session's real token
    forged = page.request.post(
        f"{site.seeded.url}/models/{MODEL}/versions/{version}/decide",
        form={"csrf": csrf, "decision": "approve", "comment": "forged"},
    )
    assert forged.status == 403, forged.text()
    assert "approve" in forged.text()
    assert core.list_model_records(MODEL, version, kind="approval", client=admin) == before


def test_a_run_named_with_html_shows_as_text_and_runs_nothing(site: Site, visitor: Visitor) -> None:
    seeded = site.seeded
    other = next(r for r in seeded.acc if r != seeded.xss_run)
    page = visitor.sign_in("viewer", _runs_url(site, filter="metrics.acc < 0.5"))
    visitor.shoot(page, "runs-with-html-name")
    link = page.locator("#runs").get_by_role("link", name=XSS, exact=True)
    assert link.is_visible() and link.inner_text() == XSS
    _nothing_injected(page)

    link.click()
    page.wait_for_url(f"**/runs/{seeded.xss_run}")
    visitor.shoot(page, "run-with-html-name")
    assert page.locator("h1").inner_text().startswith(XSS)
    assert page.title().startswith(XSS)
    _nothing_injected(page)

    page.goto(f"/compare?run={seeded.xss_run}&run={other}")
    visitor.shoot(page, "compare-with-html-name")
    assert XSS in page.locator("#compare thead th a").all_inner_texts()
    _nothing_injected(page)
    assert visitor.dialogs == []


def _nothing_injected(page: Any) -> None:
    assert page.locator("img").count() == 0  # the pages have no images: any is the payload's
    assert page.locator("[onerror]").count() == 0
    # the only scripts are the UI's own files and JSON data islands, which are never executed and
    # hold no raw "<" (tojson escapes it), so nothing in them can close the element
    for script in page.locator("script").all():
        src, kind = script.get_attribute("src"), script.get_attribute("type")
        assert (src or "").startswith("/static/") or (src is None and kind == "application/json")
        assert "<" not in script.inner_text()


def _ready(page: Any) -> None:
    """What every page must be once loaded: each chart redrawn by uPlot, every image loaded."""
    expect(page.locator("header nav")).to_be_visible()
    expect(page.locator("figure[data-chart]:not(.enhanced)")).to_have_count(0)
    charts = page.locator("figure[data-chart]").count()
    expect(page.locator("figure[data-chart] .uplot canvas")).to_have_count(charts)
    broken = "els => els.filter(e => !e.complete || e.naturalWidth === 0).map(e => e.src)"
    page.wait_for_function(f"() => ({broken})([...document.images]).length === 0")


@dataclass
class _Tour:
    """One signed-in page walked through the site: each stop is checked, screenshotted and its
    problems (see ui_site.Watch) kept by name."""

    page: Any
    visitor: Visitor
    watch: Watch
    problems: dict[str, list[str]] = field(default_factory=dict)

    @contextmanager
    def stop(self, what: str, path: str | None = None) -> Iterator[Any]:
        """Open ``path`` (or stay), wait until it is ready, run the block's checks, then take stock."""
        if path is not None:
            self.page.goto(path)
        try:
            _ready(self.page)
            yield self.page
        except AssertionError as exc:
            seen = self.watch.collect(self.page)
            raise AssertionError(f"{what}: {exc}\nwhat went wrong on the page: {seen}") from exc
        finally:
            self.visitor.shoot(self.page, what)
        self.problems[what] = self.watch.collect(self.page)


def test_every_page_renders_with_its_scripts_working_and_nothing_refused(
    site: Site, visitor: Visitor
) -> None:
    seeded, admin = site.seeded, site.admin
    watch = Watch(seeded.url)
    page = visitor.sign_in("admin", "/", watch)
    tour = _Tour(page, visitor, watch, {"sign-in": watch.collect(page)})

    with tour.stop("experiments"):
        expect(page.get_by_role("link", name=EXPERIMENT, exact=True)).to_be_visible()
        expect(page.get_by_role("link", name=FILES_EXPERIMENT, exact=True)).to_be_visible()

    with tour.stop("runs", _runs_url(site)):
        expect(page.locator("#runs tbody tr")).to_have_count(RUNS)

    a, b = [r for r in seeded.acc if r != seeded.xss_run][:2]
    with tour.stop("run", f"/runs/{a}"):
        expect(page.locator("figure.chart.enhanced")).to_have_count(len(admin.get_run(a).metrics))

    with tour.stop("run-with-files", f"/runs/{seeded.files_run}"):
        expect(page.locator("#system")).to_contain_text("system.cpu_percent")
        used = [DATASET, f"v{seeded.dataset_versions[-1]}", "train", "1000"]  # July's 1,000 flights
        expect(page.locator("#datasets tbody tr td")).to_have_text(used)
        expect(page.locator("#artifacts tbody a")).to_have_text(list(ARTIFACTS))
    for path in ARTIFACTS:
        page.goto(f"/runs/{seeded.files_run}")
        page.locator("#artifacts").get_by_role("link", name=path, exact=True).click()
        page.wait_for_url(re.compile(r"/artifacts/view\?path="))
        with tour.stop(f"artifact-{path.rsplit('.', 1)[1]}"):
            preview = page.locator("#preview")
            if path.endswith(".png"):
                expect(preview.locator("img")).to_have_js_property("naturalWidth", 160)
            elif path.endswith(".json"):
                expect(preview.locator("pre")).to_contain_text('"roc_auc": 0.71')
            else:
                expect(preview.locator("#head tbody tr")).to_have_count(3)

    with tour.stop("pipeline-run", f"/runs/{seeded.pipeline_run}"):
        steps = page.locator("svg.dag g.step")
        expect(steps).to_have_count(4)
        assert set(steps.evaluate_all("els => els.map(e => e.dataset.status)")) == {"finished"}
        expect(page.locator("#steps tbody tr")).to_have_count(4)

    with tour.stop("compare", f"/compare?run={a}&run={b}"):
        labels = page.locator("#curves-chart .u-legend .u-series .u-label")
        expect(labels).to_have_text(["step", seeded.names[a], seeded.names[b]])  # overlaid curves
        # parallel coordinates: an axis per param whose values differ, and one for the metric
        params = [admin.get_run(r).params for r in (a, b)]
        differ = {f"params.{k}" for k in params[0] | params[1] if params[0].get(k) != params[1].get(k)}
        axes = page.locator("#parallel-chart g.axis text.name title").all_text_contents()
        assert sorted(axes) == sorted(differ | {"metrics.acc"}) and len(differ) >= 2
        assert page.locator("#parallel-chart g.traces polyline").count() >= 2  # each run a line

    with tour.stop("models", "/models"):
        for name in (MODEL, QUEUED_MODEL):
            expect(page.locator("#models").get_by_role("link", name=name, exact=True)).to_be_visible()

    with tour.stop("model", f"/models/{MODEL}"):
        expect(page.locator("#lineage svg")).to_be_visible()
        evaluation = page.locator(f"#evaluation-{seeded.evaluation}")
        expect(evaluation.locator("table.groups tbody td:first-child")).to_have_text(["a", "b"])
        assert evaluation.locator("img").count() >= 1  # its plots, each loaded (see _ready)

    with tour.stop("approvals", "/approvals"):
        expect(page.locator("#approvals tbody tr", has_text=QUEUED_MODEL)).to_have_count(1)

    with tour.stop("datasets", "/datasets"):
        expect(page.locator("#datasets tbody tr", has_text=DATASET)).to_have_count(1)
    first, last = seeded.dataset_versions
    with tour.stop("dataset", f"/datasets/{DATASET}"):
        expect(page.locator("#versions tbody tr")).to_have_count(len(seeded.dataset_versions))
    with tour.stop("dataset-version", f"/datasets/{DATASET}/versions/{last}"):
        expect(page.locator("#profile tbody tr", has_text="dep_delay")).to_have_count(1)
    with tour.stop("dataset-diff", f"/datasets/{DATASET}/diff?a={first}&b={last}"):
        expect(page.locator("#column-diffs tbody tr", has_text="dep_delay")).to_have_count(1)

    with tour.stop("deployments", "/deployments"):
        expect(page.locator("#deployments tbody tr", has_text=DEPLOYMENT)).to_have_count(1)
    with tour.stop("deployment", f"/deployments/{DEPLOYMENT}"):
        expect(page.locator("#history tbody tr")).to_have_count(len(seeded.deployment_versions))
        # htmx swaps the live panel in for the placeholder: no model server answers there, it says so
        expect(page.locator("#live .live-panel .live-note")).to_contain_text("did not answer")
        expect(page.locator("#live > p")).to_have_count(0)

    with tour.stop("audit", "/audit"):
        expect(page.locator("#audit tbody tr").first).to_be_visible()
    page.get_by_role("button", name="Verify chain").click()
    page.wait_for_url(re.compile(r"/audit/verify"))
    with tour.stop("audit-verify"):
        expect(page.locator(".verdict")).to_contain_text("Intact")

    with tour.stop("monitoring", "/monitoring"):
        expect(page.locator(f"#alert-{seeded.drift_alert}.alert.firing")).to_have_count(1)
    with tour.stop("deployment-monitoring", f"/monitoring/{MONITORED}"):
        expect(page.locator('figure.drift-feature[data-feature="dep_delay"]')).to_have_count(1)
        expect(page.locator('figure.distribution[data-feature="dep_delay"]')).to_have_count(1)
    with tour.stop("alert", f"/monitoring/alerts/{seeded.drift_alert}"):
        expect(page.locator("#chain li").first).to_be_visible()

    assert {what: found for what, found in tour.problems.items() if found} == {}


def _legend_value(chart: Any, series: int) -> Any:
    """The uPlot legend's value cell of a series (0: the x axis, step)."""
    return chart.locator(".u-legend .u-series").nth(series).locator(".u-value")


def _hover(page: Any, chart: Any, fraction: float) -> None:
    """The mouse over the plot area, ``fraction`` of its width from the left."""
    box = chart.locator(".u-over").bounding_box()
    page.mouse.move(box["x"] + fraction * box["width"], box["y"] + box["height"] / 2)


def _step_under_mouse(page: Any, chart: Any, fraction: float, wanted: str) -> int:
    """Hover at ``fraction`` and wait until the legend's step satisfies ``wanted`` (JS, of ``step``)."""
    _hover(page, chart, fraction)
    cell = _legend_value(chart, 0).element_handle()
    try:
        page.wait_for_function(
            f"cell => {{ const step = Number(cell.textContent); return {wanted}; }}", arg=cell
        )
    except playwright.TimeoutError:
        shown = cell.text_content()
        raise AssertionError(
            f"at {fraction:.0%} of the plot the legend reads step {shown!r}, not {wanted}"
        ) from None
    return int(cell.text_content())


def test_a_run_chart_reads_values_under_the_mouse_zooms_on_drag_and_resets_on_double_click(
    site: Site, visitor: Visitor
) -> None:
    seeded = site.seeded
    run_id = next(r for r in seeded.acc if r != seeded.xss_run)
    page = visitor.sign_in("viewer", f"/runs/{run_id}")
    chart = page.locator("figure.chart", has=page.locator("figcaption", has_text=re.compile(r"^acc\b")))
    expect(chart.locator(".uplot canvas")).to_have_count(1)  # uPlot's canvas took the SVG's place
    expect(chart.locator("svg[role=img]")).to_be_hidden()
    chart.scroll_into_view_if_needed()
    assert _legend_value(chart, 0).inner_text() == "--"  # nothing under the mouse yet

    # the legend reads the point under the mouse: its step and the value logged at that step
    history = site.admin.get_metric_history(run_id, "acc")
    logged = dict(zip(history["step"], history["value"], strict=True))
    assert sorted(logged) == list(range(STEPS))
    for fraction, wanted in ((0.01, "step === 0"), (0.99, f"step === {STEPS - 1}"), (0.4, "step > 0")):
        step = _step_under_mouse(page, chart, fraction, wanted)
        shown = float(_legend_value(chart, 1).inner_text())
        assert shown == pytest.approx(logged[step], abs=5e-4), (step, shown)
    visitor.shoot(page, "hover")
    if UPDATE_SCREENSHOTS:
        DOCS_RUN_SHOT.parent.mkdir(parents=True, exist_ok=True)
        clip = {"x": 0, "y": 0, "width": 1280, "height": 960}  # the facts and both charts
        page.screenshot(path=str(DOCS_RUN_SHOT), full_page=True, clip=clip)
        assert DOCS_RUN_SHOT.stat().st_size <= 200_000

    # dragging from 45% to 85% of the width zooms into those steps: the plot's edges read inner steps
    box = chart.locator(".u-over").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 0.45 * box["width"], y)
    page.mouse.down()
    page.mouse.move(box["x"] + 0.85 * box["width"], y, steps=8)
    page.mouse.up()
    left = _step_under_mouse(page, chart, 0.01, "step >= 3")
    right = _step_under_mouse(page, chart, 0.99, f"step <= {STEPS - 2}")
    assert 3 <= left < right <= STEPS - 2
    visitor.shoot(page, "zoomed")

    # a double-click zooms out to every step again
    page.mouse.dblclick(box["x"] + 0.5 * box["width"], y)
    assert _step_under_mouse(page, chart, 0.01, "step === 0") == 0
    assert _step_under_mouse(page, chart, 0.99, f"step === {STEPS - 1}") == STEPS - 1
    visitor.shoot(page, "reset")


def test_a_drift_alert_shows_on_the_monitoring_page(site: Site, visitor: Visitor) -> None:
    [alert] = sy.list_alerts(MONITORED, state="firing", client=site.admin)
    assert alert.id == site.seeded.drift_alert and alert.rule == DRIFT_RULE
    page = visitor.sign_in("viewer", "/monitoring")
    visitor.shoot(page, "monitoring")
    firing = page.locator("tr.alert.firing")
    expect(firing).to_have_count(1)
    expect(firing).to_have_id(f"alert-{alert.id}")
    expect(firing.locator(".rule")).to_have_text(DRIFT_RULE)
    expect(firing.locator(".feature")).to_have_text("feature dep_delay")
    expect(firing.get_by_role("link", name=MONITORED, exact=True)).to_be_visible()

    # the deployment's page draws dep_delay's drift over time with the window that fired flagged
    firing.get_by_role("link", name=MONITORED, exact=True).click()
    page.wait_for_url(f"**/monitoring/{MONITORED}")
    visitor.shoot(page, "deployment-monitoring")
    drifted = page.locator('figure.drift-feature[data-feature="dep_delay"]')
    expect(drifted.locator(".point.flagged")).to_have_count(1)
    expect(page.locator(f"#alert-{alert.id}.alert.firing")).to_have_count(1)

    # and the alert's own page its rule and evidence
    page.locator(f"#alert-{alert.id}").get_by_role("link", name="firing").click()
    page.wait_for_url(f"**/monitoring/alerts/{alert.id}")
    visitor.shoot(page, "alert")
    expect(page.locator("#this-alert.alert.firing .rule")).to_have_text(DRIFT_RULE)
    expect(page.locator("#evidence tbody tr").first).to_be_visible()
