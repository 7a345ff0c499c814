"""The closed loop end to end against a live ``shipyard serve models:/cancer@champion``: real HTTP traffic to
a deliberately bad champion, labels through the server's ``POST /feedback``, a monitoring pass whose alert
retrains with a real scikit-learn pipeline, registers the result, evaluates and promotes it, and the live
server swaps to the new version while a client keeps sending requests, with no failed request.

The loop's chain is then read back from the alert (``shipyard monitor alerts show ID``), the audit log and
the prediction log (which shows the new version answering)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from server_process import child_env, free_port
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

import shipyard as sy
from polling_helpers import wait_until
from shipyard.cli.main import app
from shipyard.config import load_settings
from shipyard.monitoring.labels import read_feedback
from shipyard.tracking import Client

pytestmark = pytest.mark.integration

_CLI = "from shipyard.cli.main import main; main()"
MODEL = "cancer"
DEPLOYMENT = "cancer"  # what `shipyard serve models:/cancer@champion` names its deployment
COLUMNS = {
    "mean radius": "radius",
    "mean texture": "texture",
    "mean smoothness": "smoothness",
    "worst concavity": "concavity",
}
FEATURES = list(COLUMNS.values())
LABELLED = 200
RULES = """
rules:
  - name: auc-low
    when: performance.roc_auc < 0.8
    actions: [record, {retrain: {pipeline: 'test_closed_loop_live:training', params: {n: 350}}}]
"""


def cancer() -> pd.DataFrame:
    data = load_breast_cancer(as_frame=True).frame
    frame = data.rename(columns=COLUMNS)[FEATURES].copy()
    frame["label"] = data["target"]
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


@sy.step
def load(n: int) -> pd.DataFrame:
    return cancer().head(n)


@sy.step
def train(frame: pd.DataFrame) -> Pipeline:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    return model.fit(frame[FEATURES], frame["label"])


@sy.pipeline
def training(n: int = 350):  # type: ignore[no-untyped-def]
    return train(load(n))


class Serve:
    """``shipyard serve models:/cancer@champion`` in its own process group on a free port; SIGTERM to stop."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port, self.log = free_port(), log
        args = ["serve", f"models:/{MODEL}@champion", "--port", str(self.port), "--poll-interval", "0.2"]
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _CLI, *args, "--log-level", "warning"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_until(self._ready, "GET /ready to answer 200", timeout=60, interval=0.1)
        except AssertionError:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _ready(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(f"{self.url}/ready", timeout=1).status_code == 200
        return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise


@dataclass
class Traffic:
    """A client thread sending one-row predictions until stopped; every answer (or error) is counted."""

    url: str
    rows: list[dict[str, Any]]
    statuses: Counter[int] = field(default_factory=Counter)
    versions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            i = 0
            while not self.stop.is_set():
                body = {"records": [self.rows[i % len(self.rows)]]}
                i += 1
                try:
                    answer = http.post("/predict?proba=true", json=body, headers={"X-Request-ID": f"bg{i}"})
                except httpx.HTTPError as exc:  # a refused or cut connection is a failed request too
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                self.statuses[answer.status_code] += 1
                if answer.status_code == 200:
                    self.versions.append(str(answer.json()["model_version"]))
                else:
                    self.errors.append(f"{answer.status_code}: {answer.text[:300]}")

    def answered_by(self, version: str) -> int:
        return sum(v == version for v in list(self.versions))


@dataclass
class Stores:
    alice: Client  # the data scientist: registers, serves, runs the monitoring pass
    env: dict[str, str]
    root: Path


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[Stores]:
    roles = tmp_path / "roles.yaml"
    roles.write_text("admin: [dave]\n")
    tracking, artifacts = f"sqlite:///{tmp_path / 'registry.db'}", str(tmp_path / "artifacts")
    settings = load_settings(tracking_uri=tracking, artifact_uri=artifacts, flush_interval=0.05)
    base = Client(settings=settings)
    alice = base.with_settings(user="alice", roles_file=str(roles))
    dave = base.with_settings(user="dave", roles_file=str(roles))
    data = cancer()
    train_rows = data.head(350)
    broken = make_pipeline(StandardScaler(), LogisticRegression()).fit(  # fit on shuffled labels
        train_rows[FEATURES], np.random.default_rng(1).permutation(train_rows["label"].to_numpy())
    )
    v1 = sy.register_model(broken, MODEL, input_example=train_rows[FEATURES].head(3), client=alice)
    assert sy.promote_model(MODEL, v1.version, client=alice).promoted  # no policy yet
    holdout = sy.log_dataset(data.iloc[350:], name="cancer-holdout", client=alice).ref
    policy = {
        "evaluation": {"dataset": holdout, "target": "label"},
        "gates": [
            {"metric": "roc_auc", "min": 0.9},
            {"metric": "roc_auc", "relative_to": "champion", "min_delta": 0.0},
        ],
        "approvals": {"required": 0},  # automatic promotion when the gates pass
    }
    sy.set_promotion_policy(MODEL, policy, client=dave)
    env = child_env(tmp_path / "home")
    env.update(SHIPYARD_TRACKING_URI=tracking, SHIPYARD_ARTIFACT_URI=artifacts)
    yield Stores(alice, env, tmp_path)
    base.close()  # the others share its stores


def _logged(client: Client) -> tuple[int, int]:
    predictions = sy.query_predictions(DEPLOYMENT, columns=["request_id"], client=client).collect()
    labelled = read_feedback(DEPLOYMENT, client=client)
    return len(predictions), len(labelled)


def test_a_retrain_alert_promotes_a_challenger_and_the_live_server_swaps_with_no_failed_request(
    stores: Stores,
) -> None:
    alice = stores.alice
    data = cancer()
    traffic = data.iloc[350 : 350 + LABELLED].reset_index(drop=True)
    server = Serve(stores.env, stores.root / "serve.log")
    background = Traffic(server.url, data.head(350)[FEATURES].to_dict(orient="records"))
    sender = threading.Thread(target=background.run, name="traffic", daemon=True)
    try:
        # 1. real traffic to the bad champion, then its labels through POST /feedback
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for i, record in enumerate(traffic[FEATURES].to_dict(orient="records")):
                answer = http.post(
                    "/predict?proba=true", json={"records": [record]}, headers={"X-Request-ID": f"q{i}"}
                )
                assert answer.status_code == 200, answer.text
                assert answer.json()["model_version"] == "1"
            feedback = [{"request_id": f"q{i}", "label": int(y)} for i, y in enumerate(traffic["label"])]
            accepted = http.post("/feedback", json={"feedback": feedback})
            assert accepted.status_code == 202 and accepted.json() == {"accepted": LABELLED}, accepted.text
        wait_until(
            lambda: _logged(alice) >= (LABELLED, LABELLED),
            lambda: f"the server to flush {LABELLED} predictions and labels (now {_logged(alice)})",
            timeout=30,
            interval=0.1,
        )
        # 2. a client keeps sending requests from before the pass until well after the swap
        sender.start()
        wait_until(lambda: background.answered_by("1") >= 20, "background traffic to flow", timeout=30)
        result = sy.monitor_pass(DEPLOYMENT, rules=RULES, multivariate=False, client=alice)
        wait_until(
            lambda: background.answered_by("2") >= 50,
            lambda: f"version 2 to answer the background client ({Counter(background.versions)})",
            timeout=30,
            interval=0.05,
        )
        info = httpx.get(f"{server.url}/info", timeout=10).json()
    finally:
        background.stop.set()
        if sender.is_alive():
            sender.join(timeout=30)
        server.stop()

    # zero failed requests over the whole swap; the versions switch once, from 1 to 2, and never back
    assert background.errors == [], background.errors[:5]
    assert set(background.statuses) == {200} and background.statuses[200] == len(background.versions)
    switch = background.versions.index("2")
    assert set(background.versions[:switch]) == {"1"} and set(background.versions[switch:]) == {"2"}
    assert switch >= 20  # the swap happened under load, not before the client started
    assert str(info["version"]) == "2" and str(info["variants"][0]["version"]) == "2", info

    # the alert, the pipeline run, the new version and the promotion
    [outcome] = result.outcomes
    assert outcome.outcome == "opened" and outcome.alert is not None
    assert outcome.value is not None and outcome.value < 0.8
    alert = alice.store.get_alert(outcome.alert.id)
    loop = alert.actions["closed_loop"]
    assert loop["status"] == "promoted", loop["reasons"]
    run_id = alert.actions["retrain"]["run_id"]
    assert loop["pipeline_run"] == run_id and loop["pipeline_status"] == "finished"
    pipeline_run = sy.get_pipeline_run(run_id, client=alice)
    assert pipeline_run.pipeline == "training" and pipeline_run.status == "finished"
    version = sy.get_model_version(f"models:/{MODEL}/{loop['version']}", client=alice)
    assert loop["version"] == 2 and version.run_id == pipeline_run.step("train").run_id
    tags = version.metadata["tags"]  # the model card names the alert and the pipeline run
    assert tags["sy.alert"] == str(alert.id) and tags["sy.pipeline_run"] == run_id
    aliases = sy.get_registered_model(MODEL, client=alice).aliases
    assert aliases["champion"] == aliases["challenger"] == 2 and loop["champion"] == 1
    evals = loop["evaluations"]  # both on the labelled live window: the 200 answers with feedback
    assert evals["challenger"]["rows"] == evals["champion"]["rows"] == LABELLED
    assert evals["challenger"]["metrics"]["roc_auc"] > 0.9 > evals["champion"]["metrics"]["roc_auc"]
    promotions = [r for r in sy.list_model_records(MODEL, 2, client=alice) if r.kind == "promotion"]
    assert loop["promotion"]["record"] == promotions[-1].id and promotions[-1].body["status"] == "promoted"

    # the audit log holds the alert's opening, the promotion decision and the alias move it caused
    opened = alice.list_audit(action="alert.open", object_id=str(alert.id))
    decided = alice.list_audit(action="model_version.promotion", actor="alice")
    moves = alice.list_audit(action="alias.set", object_id=f"{MODEL}@champion")
    assert len(opened) == 1 and decided
    assert moves[-1].after == {"version": 2} and moves[-1].before == {"version": 1}
    assert moves[-1].reason == f"closed loop of alert {alert.id}" and moves[-1].actor == "alice"
    assert opened[0].seq < decided[-1].seq < moves[-1].seq  # alert → promotion → move, in that order

    # the chain from the alert, through the CLI
    env = {
        "SHIPYARD_TRACKING_URI": alice.settings.tracking_uri,
        "SHIPYARD_ARTIFACT_URI": alice.settings.artifact_uri,
    }
    shown = CliRunner().invoke(app, ["monitor", "alerts", "show", str(alert.id)], env=env)
    assert shown.exit_code == 0, shown.output
    for text in ("closed loop", "promoted", run_id, f"models:/{MODEL}/2", f"models:/{MODEL}/1", "roc_auc"):
        assert text in shown.output, (text, shown.output)

    # and the swap from the server's own prediction log: version 2 answered (after version 1)
    logged = sy.query_predictions(
        DEPLOYMENT, columns=["ts", "request_id", "model_version"], client=alice
    ).collect()
    by_version = logged.group_by("model_version").len()
    counts = dict(zip(by_version["model_version"].to_list(), by_version["len"].to_list(), strict=True))
    assert counts.get("1", 0) >= LABELLED + 20 and counts.get("2", 0) >= 1, counts
