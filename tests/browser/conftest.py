"""Fixtures of the browser tests: one seeded ``shipyard server`` and one headless Debian Chromium
(Playwright, never a downloaded browser) per module, and a :class:`Visitor` per test."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ui_seed import seed
from ui_site import (
    ADMIN_TOKEN,
    ARGS,
    CHROMIUM,
    OUTPUT,
    Site,
    Visitor,
    child_env,
    require_chromium,
    start_server,
    stop_server,
)

from shipyard import Client
from shipyard.config import load_settings


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One live ``shipyard server --auth`` over SQLite, seeded; stopped after the module."""
    require_chromium()
    root = tmp_path_factory.mktemp("browser-site")
    proc, url, log_path = start_server(root)
    env = child_env(root / "client-home")
    admin = Client(
        settings=load_settings(
            env=env, tracking_uri=url, token=ADMIN_TOKEN, user="admin", system_metrics=False
        )
    )
    try:
        yield Site(seed(url, admin, root / "prediction-log"), admin)
    finally:
        admin.close()
        stop_server(proc)
    assert "Traceback" not in log_path.read_text(), log_path.read_text()


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    """One headless Chromium for the module (Debian's, through Playwright)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=20_000)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    folder = OUTPUT / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def visitor(browser: Any, site: Site, screenshots: Path, request: pytest.FixtureRequest) -> Iterator[Visitor]:
    """Pages for one test; it fails if any page opened a JavaScript dialog."""
    prefix = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name.removeprefix("test_"))[:60]
    for old in screenshots.glob(f"{prefix}-*.png"):
        old.unlink()
    v = Visitor(browser, site.seeded.url, screenshots, prefix)
    try:
        yield v
    finally:
        v.close()
    assert v.dialogs == [], f"a page opened a dialog: {v.dialogs}"
