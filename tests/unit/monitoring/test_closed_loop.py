"""The closed loop: a performance alert's retrain action runs a real scikit-learn pipeline, whose model
becomes the challenger, is evaluated beside the champion on the newest labelled predictions, and takes
``champion`` when the policy passes (or waits for an approval); the chain shows from the alert. Also
``shipyard monitor watch`` for a bounded number of passes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

import shipyard as sy
from shipyard.cli.main import app
from shipyard.monitoring.passes import MonitorPass, last_high_water_mark
from shipyard.monitoring.query import log_root
from shipyard.serving.logfeed import encode_row
from shipyard.serving.predlog import ParquetPredictionLog
from shipyard.tracking import Client

T0 = 1_764_226_800_000
COLUMNS = {"mean radius": "radius", "mean texture": "texture", "mean smoothness": "smoothness"}
FEATURES = [*COLUMNS.values(), "concavity"]
DEPLOYMENT = "cancer-svc"
RULES = """
rules:
  - name: auc-low
    when: performance.roc_auc < 0.8
    actions: [{retrain: {pipeline: 'test_closed_loop:training', params: {n: 350}}}]
"""


def cancer() -> pd.DataFrame:
    data = load_breast_cancer(as_frame=True).frame
    frame = data.rename(columns={**COLUMNS, "worst concavity": "concavity"})[FEATURES].copy()
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


def _as(client: Client, user: str, roles: Path) -> Client:
    return client.with_settings(user=user, roles_file=str(roles))


def _serve_with_a_broken_champion(
    alice: Client, dave: Client, approvals: int, root: Path | None = None
) -> None:
    """v1 (trained on shuffled labels) is champion; 200 one-row predictions are logged and labelled."""
    data = cancer()
    train_rows = data.head(350)
    broken = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        train_rows[FEATURES], np.random.default_rng(1).permutation(train_rows["label"].to_numpy())
    )
    v1 = sy.register_model(broken, "cancer", input_example=train_rows[FEATURES].head(3), client=alice)
    assert sy.promote_model("cancer", v1.version, client=alice).promoted  # no policy yet
    holdout = sy.log_dataset(data.iloc[350:], name="cancer-holdout", client=alice).ref
    policy = {
        "evaluation": {"dataset": holdout, "target": "label"},
        "gates": [
            {"metric": "roc_auc", "min": 0.9},
            {"metric": "roc_auc", "relative_to": "champion", "min_delta": 0.0},
        ],
        "approvals": {"required": approvals, "role": "approver"},
    }
    sy.set_promotion_policy("cancer", policy, client=dave)
    traffic = data.iloc[350:550].reset_index(drop=True)
    proba = broken.predict_proba(traffic[FEATURES])
    where = str(root) if root is not None else log_root(DEPLOYMENT, alice)
    sink = ParquetPredictionLog(where, deployment=DEPLOYMENT, flush_interval_s=0.05)
    rows = [
        encode_row(
            {
                "request_id": f"q{i}",
                "ts": T0 + i * 1000,
                "deployment": DEPLOYMENT,
                "variant": "main",
                "model": "models:/cancer/1",
                "model_version": "1",
                "shadow": False,
                "latency_ms": 3.0,
                "n_rows": 1,
                "inputs": traffic.loc[[i], FEATURES],
                "outputs": {
                    "predictions": [int(proba[i, 1] > 0.5)],
                    "probabilities": [proba[i].tolist()],
                },
                "status": 200,
            }
        )
        for i in range(len(traffic))
    ]
    sink.append(rows)
    sink.close()
    ids = [f"q{i}" for i in range(len(traffic))]
    sy.log_feedback(DEPLOYMENT, traffic["label"].tolist(), request_ids=ids, root=root, client=alice)


@pytest.fixture
def roles(tmp_path: Path) -> Path:
    path = tmp_path / "roles.yaml"
    path.write_text("approver: [bob]\nadmin: [dave]\n")
    return path


def _alert_show(client: Client, alert_id: int) -> str:
    env = {
        "SHIPYARD_TRACKING_URI": client.settings.tracking_uri,
        "SHIPYARD_ARTIFACT_URI": client.settings.artifact_uri,
    }
    shown = CliRunner().invoke(app, ["monitor", "alerts", "show", str(alert_id)], env=env)
    assert shown.exit_code == 0, shown.output
    return str(shown.output)


def test_a_retrain_alert_registers_evaluates_and_promotes_the_challenger(client: Client, roles: Path) -> None:
    alice, dave = _as(client, "alice", roles), _as(client, "dave", roles)
    _serve_with_a_broken_champion(alice, dave, approvals=0)
    result = sy.monitor_pass(DEPLOYMENT, rules=RULES, multivariate=False, client=alice)
    [outcome] = result.outcomes
    assert outcome.outcome == "opened" and outcome.alert is not None
    alert = alice.store.get_alert(outcome.alert.id)
    loop = alert.actions["closed_loop"]
    assert loop["status"] == "promoted", loop["reasons"]
    run_id = alert.actions["retrain"]["run_id"]
    assert loop["pipeline_run"] == run_id and loop["pipeline_status"] == "finished"
    # lineage: the new version's source run is the pipeline's training step run
    version = sy.get_model_version(f"models:/cancer/{loop['version']}", client=alice)
    assert (
        loop["version"] == 2
        and version.run_id == sy.get_pipeline_run(run_id, client=alice).step("train").run_id
    )
    aliases = sy.get_registered_model("cancer", client=alice).aliases
    assert aliases["champion"] == aliases["challenger"] == 2 and loop["champion"] == 1
    assert loop["challenger"]["status"] == "promoted"
    # both evaluated on the 200 labelled predictions, records stored on each version
    evals = loop["evaluations"]
    assert evals["challenger"]["rows"] == evals["champion"]["rows"] == 200
    assert evals["challenger"]["metrics"]["roc_auc"] > 0.9 > evals["champion"]["metrics"]["roc_auc"]
    for role in ("challenger", "champion"):
        records = sy.list_model_records("cancer", evals[role]["version"], client=alice)
        assert evals[role]["record"] in [r.id for r in records if r.kind == "evaluation"]
    promotions = [r for r in sy.list_model_records("cancer", 2, client=alice) if r.kind == "promotion"]
    assert loop["promotion"]["record"] == promotions[-1].id and promotions[-1].body["status"] == "promoted"
    shown = _alert_show(alice, alert.id)
    for text in ("closed loop", run_id, "models:/cancer/2", "roc_auc", "promoted"):
        assert text in shown, (text, shown)


def test_the_loop_waits_for_an_approval_then_resumes(client: Client, roles: Path, tmp_path: Path) -> None:
    alice, dave, bob = (_as(client, u, roles) for u in ("alice", "dave", "bob"))
    log = tmp_path / "elsewhere"  # a log outside the default root: the pass hands its root to the loop
    _serve_with_a_broken_champion(alice, dave, approvals=1, root=log)
    passed = sy.monitor_pass(DEPLOYMENT, rules=RULES, multivariate=False, root=log, client=alice)
    [outcome] = passed.outcomes
    assert outcome.alert is not None
    loop = alice.store.get_alert(outcome.alert.id).actions["closed_loop"]
    assert loop["status"] == "blocked" and loop["version"] == 2, loop["reasons"]
    assert any("approval" in r for r in loop["reasons"]), loop["reasons"]
    assert loop["evaluations"]["challenger"]["rows"] == 200
    assert sy.get_registered_model("cancer", client=alice).aliases["champion"] == 1
    assert "blocked" in _alert_show(alice, outcome.alert.id)
    sy.approve_model("cancer", 2, reason="window evaluation read", client=bob)
    env = {
        "SHIPYARD_TRACKING_URI": client.settings.tracking_uri,
        "SHIPYARD_ARTIFACT_URI": client.settings.artifact_uri,
        "SHIPYARD_USER": "alice",
        "SHIPYARD_ROLES_FILE": str(roles),
    }
    args = ["monitor", "alerts", "close-loop", str(outcome.alert.id), "--root", str(log), "--json"]
    resumed = CliRunner().invoke(app, args, env=env)
    assert resumed.exit_code == 0, resumed.output
    answer = json.loads(resumed.output)
    assert answer["status"] == "promoted" and answer["version"] == 2, answer["reasons"]
    assert sy.get_registered_model("cancer", client=alice).aliases["champion"] == 2
    assert len(sy.list_model_versions("cancer", client=alice)) == 2  # the same version, not a new one
    stored = alice.store.get_alert(outcome.alert.id).actions["closed_loop"]
    assert stored["status"] == "promoted"


def test_monitor_watch_runs_passes_until_its_limit(client: Client, roles: Path, tmp_path: Path) -> None:
    alice, dave = _as(client, "alice", roles), _as(client, "dave", roles)
    _serve_with_a_broken_champion(alice, dave, approvals=0)
    env = {
        "SHIPYARD_TRACKING_URI": client.settings.tracking_uri,
        "SHIPYARD_ARTIFACT_URI": client.settings.artifact_uri,
    }
    args = ["monitor", "watch", "-d", DEPLOYMENT, "--every", "1s", "--max-passes", "2", "--json"]
    out = CliRunner().invoke(app, args, env=env)
    assert out.exit_code == 0, out.output
    lines = [json.loads(line) for line in out.output.splitlines() if line.startswith("{")]
    assert [line["pass"] for line in lines] == [1, 2]
    assert lines[0]["requests"] == 200 and lines[1]["requests"] == 0
    assert last_high_water_mark(DEPLOYMENT, client=alice) == T0 + 199 * 1000


def test_a_pipeline_without_a_model_output_ends_the_loop_failed_and_the_pass_goes_on(
    client: Client, roles: Path
) -> None:
    alice, dave = _as(client, "alice", roles), _as(client, "dave", roles)
    _serve_with_a_broken_champion(alice, dave, approvals=0)
    rules = RULES.replace("test_closed_loop:training", "retrain_steps:retrain").replace("n: 350", "months: 2")
    result = sy.monitor_pass(DEPLOYMENT, rules=rules, multivariate=False, client=alice)
    assert result.id is not None and result.outcomes[0].alert is not None
    loop = alice.store.get_alert(result.outcomes[0].alert.id).actions["closed_loop"]
    assert loop["status"] == "failed" and loop["version"] is None
    assert "has no model output" in loop["reasons"][0]
    assert sy.get_registered_model("cancer", client=alice).aliases == {"champion": 1}


def test_ctrl_c_ends_monitor_watch_cleanly(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from shipyard.cli import monitor as monitor_cli

    real = sy.monitor_pass
    calls: list[str] = []

    def pass_then_interrupt(deployment: str, **kwargs: Any) -> MonitorPass:
        calls.append(deployment)
        if len(calls) == 2:  # Ctrl-C during the second pass
            raise KeyboardInterrupt
        return real(deployment, **kwargs)

    monkeypatch.setattr(monitor_cli, "monitor_pass", pass_then_interrupt)
    env = {
        "SHIPYARD_TRACKING_URI": client.settings.tracking_uri,
        "SHIPYARD_ARTIFACT_URI": client.settings.artifact_uri,
    }
    out = CliRunner().invoke(app, ["monitor", "watch", "-d", DEPLOYMENT, "--every", "1s"], env=env)
    assert out.exit_code == 0, out.output
    assert len(calls) == 2 and "pass 1: 0 new requests" in out.output
    assert "stopped after 1 pass(es)" in out.output
