"""The HTML monitoring report in a real browser: Debian's headless Chromium (through Playwright, no
downloaded browser) opens the file offline, shows every chart and heading, logs no console error and asks
the network for nothing. A screenshot is kept in the test's tmp folder."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

import shipyard as sy
from shipyard.tracking import Client

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "monitoring"))
from report_data import build  # noqa: E402

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SECTIONS = [
    "Summary",
    "Feature distributions: reference vs current",
    "Drift over time",
    "Performance over time",
    "Estimated vs realised performance",
    "Alerts",
    "Retraining and promotion history",
]


def test_report_opens_offline_in_chromium_with_its_charts(client: Client, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        message = f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    sync_api = pytest.importorskip("playwright.sync_api")
    build(tmp_path / "log", client)
    report = sy.monitor_report("flights", tmp_path / "report.html", models=["flights"], client=client)
    errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=20_000)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.set_default_timeout(10_000)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))

            def route(r: object) -> None:
                requests.append(r.request.url)  # type: ignore[attr-defined]
                if r.request.url.startswith("file://"):  # type: ignore[attr-defined]
                    r.continue_()  # type: ignore[attr-defined]
                else:
                    r.abort()  # type: ignore[attr-defined]

            page.route("**/*", route)
            page.goto(report.resolve().as_uri(), wait_until="load")
            headings = page.locator("h2").all_inner_texts()
            charts = page.locator("svg.chart").count()
            drawn = page.locator("svg.chart rect, svg.chart polyline").count()
            box = page.locator("svg.chart").first.bounding_box()
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    print(f"report screenshot: {shot}")
    assert headings == SECTIONS
    # 4 features' distributions + drift + performance + share labelled + estimated vs realised
    assert charts >= 8 and drawn > 40
    assert box is not None and box["width"] > 200 and box["height"] > 80
    assert errors == []
    assert [u for u in requests if not u.startswith("file://")] == []
    assert requests == [report.resolve().as_uri()]
    assert shot.stat().st_size > 10_000
