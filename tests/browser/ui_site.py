"""The site the browser tests visit: a real ``shipyard server --auth`` over SQLite, started as a process
and seeded through its REST API and the SDK, and the :class:`Visitor` whose pages are screenshotted.

Screenshots of every page visited go to ``$SHIPYARD_TEST_OUTPUT/screenshots`` (else
``build/test-output/screenshots`` in the repository).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard import Client

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
from server_process import child_env, free_port  # noqa: E402

__all__ = [
    "ADMIN_TOKEN",
    "ARGS",
    "ARTIFACTS",
    "CHROMIUM",
    "DATASET",
    "DEPLOYMENT",
    "DRIFT_RULE",
    "EXPERIMENT",
    "FILES_EXPERIMENT",
    "MODEL",
    "MONITORED",
    "OUTPUT",
    "PASSWORD",
    "QUEUED_MODEL",
    "REPO",
    "RUNS",
    "STEPS",
    "UPDATE_SCREENSHOTS",
    "USERS",
    "XSS",
    "XSS_INDEX",
    "Seeded",
    "Site",
    "Visitor",
    "Watch",
    "child_env",
    "free_port",
    "require_chromium",
    "start_server",
    "stop_server",
]

REPO = Path(__file__).parents[2]
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
ADMIN_TOKEN = "sy_" + "browser-tests-admin-token-0123456789abcdef"
PASSWORD = "correct horse battery staple"
USERS = {"admin": "admin", "approver": "approver", "viewer": "viewer"}  # name -> role
EXPERIMENT = "browser-flows"
MODEL = "churn"
QUEUED_MODEL = "fraud"  # a version that waits in the approvals queue throughout
DATASET = "flights"
FILES_EXPERIMENT = "browser-files"
ARTIFACTS = ("plots/gradient.png", "report.json", "tables/carriers.csv")
DEPLOYMENT = "churn-live"
MONITORED = "delays"  # a deployment known by its prediction log and its alert
DRIFT_RULE = "dep-delay-drift"
XSS = "<img src=x onerror=alert(1)><script>alert(2)</script>"
RUNS = 30
XSS_INDEX = 0
STEPS = 12
# Read while collecting: tests/conftest.py hides every SHIPYARD_* variable from the tests themselves.
OUTPUT = Path(os.environ.get("SHIPYARD_TEST_OUTPUT") or REPO / "build" / "test-output")
UPDATE_SCREENSHOTS = os.environ.get("SHIPYARD_UPDATE_SCREENSHOTS") == "1"


@dataclass
class Seeded:
    """What the store holds, as the test wrote it (the expected values of the flows)."""

    url: str
    experiment_id: int
    acc: dict[str, float] = field(default_factory=dict)  # run id -> final metrics.acc
    names: dict[str, str] = field(default_factory=dict)  # run id -> run name
    xss_run: str = ""
    model_version: int = 0  # MODEL's version waiting for the approver
    evaluation: int = 0  # the record id of its evaluation
    dataset_versions: list[int] = field(default_factory=list)
    files_run: str = ""  # the run with ARTIFACTS
    pipeline_run: str = ""
    deployment_versions: list[int] = field(default_factory=list)
    drift_alert: int = 0  # the id of the firing drift alert on MONITORED


@dataclass
class Site:
    seeded: Seeded
    admin: Client  # the SDK as the admin, through the server


def require_chromium() -> None:
    """Skip without Debian's Chromium; under CI (env CI set) fail instead."""
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        message = f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def start_server(root: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    """``shipyard server --auth`` on a free port over SQLite in ``root``, once its health route answers;
    the bootstrap admin's token is ADMIN_TOKEN. Returns the process, its URL and its log."""
    port = free_port()
    log_path = root / "server.log"
    env = {**child_env(root / "server-home"), "SHIPYARD_ADMIN_TOKEN": ADMIN_TOKEN}
    command = [
        sys.executable,
        "-m",
        "shipyard.cli",
        "server",
        "--auth",
        "--port",
        str(port),
        "--store",
        f"sqlite:///{root / 'server.db'}",
        "--artifacts",
        str(root / "artifacts"),
        "--log-level",
        "warning",
    ]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"shipyard server exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return proc, url, log_path
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # polling the health route, not waiting for a fixed time
    stop_server(proc)
    raise RuntimeError(f"shipyard server not healthy after 60 s:\n{log_path.read_text()}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server and its workers (its own process group), gracefully first."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


# Before any script of a page: record what its Content-Security-Policy refuses (the event reaches the
# document; the console message alone may be all a headless browser prints).
_RECORD_REFUSALS = """
window.__refused = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__refused.push(e.effectiveDirective + " refused " + (e.blockedURI || "inline") +
    " (" + (e.sourceFile || "the page") + ":" + e.lineNumber + ")");
});
"""


@dataclass
class Watch:
    """What went wrong on one page: console errors, uncaught exceptions, requests to this site that
    failed or answered 400 or more, and what the page's Content-Security-Policy refused."""

    origin: str
    problems: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))
        page.on("response", self._response)
        page.on("requestfailed", self._failed)

    def _console(self, message: Any) -> None:
        where = message.location.get("url") or "the page"
        if where == f"{self.origin}/favicon.ico":
            return  # the browser asks for it by convention; the pages name no icon (so it is a 404)
        if message.type in ("error", "warning") or "Content Security Policy" in message.text:
            self.problems.append(f"console {message.type} at {where}: {message.text}")

    def _response(self, response: Any) -> None:
        if response.url.startswith(self.origin) and response.status >= 400:
            self.problems.append(f"{response.status} {response.request.method} {response.url}")

    def _failed(self, request: Any) -> None:
        if request.url.startswith(self.origin):
            self.problems.append(f"failed {request.method} {request.url}: {request.failure}")

    def collect(self, page: Any) -> list[str]:
        """Everything seen since the last call (the page's CSP refusals read from the page itself)."""
        refused = page.evaluate("window.__refused || ['the refusal recorder did not run']")
        found = self.problems + [f"CSP: {r}" for r in refused]
        self.problems = []
        page.evaluate("window.__refused = []")
        return found


@dataclass
class Visitor:
    """Browser contexts (one per signed-in user) whose pages are screenshotted and watched for dialogs."""

    browser: Any
    url: str
    folder: Path
    prefix: str
    dialogs: list[str] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)
    shots: int = 0

    def page(self, watch: Watch | None = None) -> Any:
        """A page in a context of its own; with ``watch``, its problems are recorded there."""
        context = self.browser.new_context(base_url=self.url, viewport={"width": 1280, "height": 800})
        self.contexts.append(context)
        if watch is not None:
            context.add_init_script(_RECORD_REFUSALS)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.on("dialog", self._dialog)
        if watch is not None:
            watch.attach(page)
        return page

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def shoot(self, page: Any, what: str) -> Path:
        """Save the page as it is now: ``<test>-<n>-<what>.png``."""
        self.shots += 1
        path = self.folder / f"{self.prefix}-{self.shots:02d}-{what}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def sign_in(self, user: str, next_page: str = "/", watch: Watch | None = None) -> Any:
        """A new page signed in as ``user`` through the sign-in form, on ``next_page``."""
        page = self.page(watch)
        page.goto(next_page)
        page.wait_for_url(re.compile(r"/login\?"))
        self.shoot(page, f"sign-in-{user}")
        page.get_by_label("User").fill(user)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/login" not in url)
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()
