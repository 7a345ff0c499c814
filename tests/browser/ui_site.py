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
from shipyard.registry import core, governance

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
from server_process import child_env, free_port  # noqa: E402

__all__ = [
    "ADMIN_TOKEN",
    "ARGS",
    "CHROMIUM",
    "EXPERIMENT",
    "MODEL",
    "OUTPUT",
    "PASSWORD",
    "REPO",
    "RUNS",
    "STEPS",
    "UPDATE_SCREENSHOTS",
    "XSS",
    "Seeded",
    "Site",
    "Visitor",
    "child_env",
    "require_chromium",
    "seed",
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
    model_version: int = 0


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


def seed(url: str, admin: Client) -> Seeded:
    """Users with passwords (REST), the experiment's runs and a model version waiting for approval (SDK)."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
        answer = http.patch("/api/v1/auth/users/admin", json={"password": PASSWORD})
        assert answer.status_code == 200, answer.text
        for name, role in USERS.items():
            if name != "admin":
                answer = http.post(
                    "/api/v1/auth/users", json={"name": name, "roles": [role], "password": PASSWORD}
                )
                assert answer.status_code == 201, answer.text
    seeded = Seeded(url, 0)
    for i in range(RUNS):
        name = XSS if i == XSS_INDEX else f"trial-{i:02d}"
        # a permutation of 30 distinct accuracies, so no sort is the start order; the XSS run's is 0.05
        acc = round(0.05 + 0.03 * ((i * 7) % RUNS), 4)
        params = {"lr": 10.0 ** -(1 + i % 4), "model": "rf" if i % 2 else "gbm", "depth": 4 + i % 3}
        with admin.start_run(EXPERIMENT, name=name, params=params, log_environment=False) as run:
            for step in range(STEPS):
                progress = (step + 1) / STEPS
                run.log_metrics({"acc": acc * progress, "loss": 1.0 - acc * progress}, step=step)
        seeded.acc[run.id], seeded.names[run.id] = acc, name
        if i == XSS_INDEX:
            seeded.xss_run = run.id
    seeded.experiment_id = admin.get_experiment(EXPERIMENT).id
    seeded.model_version = _pending_version(admin)
    return seeded


def _pending_version(admin: Client) -> int:
    """A version of MODEL by the admin, waiting for one approval from the approver role."""
    import pandas as pd
    from sklearn.dummy import DummyClassifier

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    model = DummyClassifier().fit(frame, [0, 1, 0, 1])
    version = core.register_model(model, MODEL, input_example=frame.head(2), client=admin).version
    policy = {"approvals": {"required": 1, "role": "approver"}}
    governance.set_promotion_policy(MODEL, policy, reason="four eyes", client=admin)
    blocked = governance.promote_model(MODEL, version, alias="champion", reason="first", client=admin)
    assert not blocked.promoted, blocked  # waits for the approver
    return version


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

    def page(self) -> Any:
        context = self.browser.new_context(base_url=self.url, viewport={"width": 1280, "height": 800})
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.on("dialog", self._dialog)
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

    def sign_in(self, user: str, next_page: str = "/") -> Any:
        """A new page signed in as ``user`` through the sign-in form, on ``next_page``."""
        page = self.page()
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
