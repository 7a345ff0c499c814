"""``shipyard monitor schedule``: a monitoring schedule held by a real ``shipyard server`` fires passes in
the server's subprocesses. The first fire reads the logged traffic, stores the pass, opens an alert whose
``retrain`` action runs a training pipeline from inside the fire and closes the loop (the new version takes
``champion``); later fires find no new predictions. The rules are checked and stored when scheduling."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from server_process import LiveServer
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

import shipyard as sy
from polling_helpers import wait_until
from shipyard import Client
from shipyard.cli.main import app
from shipyard.config import load_settings
from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring.passes import last_high_water_mark
from shipyard.monitoring.query import log_root
from shipyard.monitoring.scheduled import MONITOR_PIPELINE, list_monitoring_schedules, monitor
from shipyard.pipelines.runner import OutputRef, load_output
from shipyard.serving.logfeed import encode_row
from shipyard.serving.predlog import ParquetPredictionLog

pytestmark = pytest.mark.integration

T0 = 1_764_226_800_000
DEPLOYMENT = "cancer-svc"
FEATURES = ["radius", "texture", "smoothness", "concavity"]
# The retrain pipeline the fire's alert runs: the server imports it from its PYTHONPATH.
RETRAIN_MODULE = """
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import shipyard as sy

FEATURES = ["radius", "texture", "smoothness", "concavity"]


@sy.step
def load(n: int) -> pd.DataFrame:
    data = load_breast_cancer(as_frame=True).frame
    names = {"mean radius": "radius", "mean texture": "texture", "mean smoothness": "smoothness",
             "worst concavity": "concavity"}
    frame = data.rename(columns=names)[FEATURES].copy()
    frame["label"] = data["target"]
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True).head(n)


@sy.step
def train(frame: pd.DataFrame) -> Pipeline:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    return model.fit(frame[FEATURES], frame["label"])


@sy.pipeline
def training(n: int = 350):
    return train(load(n))
"""
RULES = """
rules:
  - name: busy
    when: traffic.requests > 100
  - name: slow
    when: latency.p99_ms > 1000
  - name: auc-low
    when: performance.roc_auc < 0.8
    actions: [record, {retrain: {pipeline: 'scheduled_retrain:training', params: {n: 350}}}]
"""


def cancer() -> pd.DataFrame:
    data = load_breast_cancer(as_frame=True).frame
    names = {
        "mean radius": "radius",
        "mean texture": "texture",
        "mean smoothness": "smoothness",
        "worst concavity": "concavity",
    }
    frame = data.rename(columns=names)[FEATURES].copy()
    frame["label"] = data["target"]
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


def _log_broken_traffic(client: Client) -> None:
    """v1 (fit on shuffled labels) is champion; 200 one-row predictions of it are logged and labelled."""
    data = cancer()
    rows = data.head(350)
    broken = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        rows[FEATURES], np.random.default_rng(1).permutation(rows["label"].to_numpy())
    )
    v1 = sy.register_model(broken, "cancer", input_example=rows[FEATURES].head(3), client=client)
    assert sy.promote_model("cancer", v1.version, client=client).promoted
    traffic = data.iloc[350:550].reset_index(drop=True)
    proba = broken.predict_proba(traffic[FEATURES])
    sink = ParquetPredictionLog(log_root(DEPLOYMENT, client), deployment=DEPLOYMENT, flush_interval_s=0.05)
    sink.append(
        [
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
    )
    sink.close()
    ids = [f"q{i}" for i in range(len(traffic))]
    sy.log_feedback(DEPLOYMENT, traffic["label"].tolist(), request_ids=ids, client=client)


def _env(client: Client) -> dict[str, str]:
    return {
        "SHIPYARD_TRACKING_URI": client.settings.tracking_uri,
        "SHIPYARD_ARTIFACT_URI": client.settings.artifact_uri,
    }


def test_a_served_monitoring_schedule_runs_passes_alerts_and_the_closed_loop(
    make_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "scheduled_retrain.py").write_text(textwrap.dedent(RETRAIN_MODULE))
    path = os.pathsep.join(p for p in (str(code), os.environ.get("PYTHONPATH", "")) if p)
    server = make_server(env={"PYTHONPATH": path})  # keeps the tested sources first when PYTHONPATH has them
    direct = Client(
        settings=load_settings(tracking_uri=server.tracking_uri, artifact_uri=server.artifact_uri)
    )
    remote = Client(settings=load_settings(tracking_uri=server.url, artifact_uri=str(tmp_path / "unused")))
    try:
        _log_broken_traffic(direct)
        rules = tmp_path / "alerts.yaml"
        rules.write_text(RULES)
        args = ["monitor", "schedule", "-d", DEPLOYMENT, "--every", "2s", "--rules", str(rules)]
        out = CliRunner().invoke(app, [*args, "--no-multivariate", "--json"], env=_env(remote))
        assert out.exit_code == 0, out.output
        saved = json.loads(out.output)
        assert (saved["name"], saved["ref"], saved["every_seconds"]) == (
            f"monitor-{DEPLOYMENT}",
            MONITOR_PIPELINE,
            2.0,
        )
        assert [r["name"] for r in saved["params"]["rules"]["rules"]] == ["busy", "slow", "auc-low"]
        rules.write_text("not: [rules")  # stored when scheduling: a later edit of the file changes nothing

        def a_second_pass_ran() -> list[sy.ScheduleFire]:
            fires = sy.list_schedule_fires(saved["name"], limit=100, client=direct)
            failed = [f for f in fires if f.status == "failed"]
            assert not failed, (failed, server.log_path.read_text()[-4000:])
            done = [f for f in fires if f.status == "finished"]
            passes = [o for o in map(_output, [direct] * len(done), done) if not o["skipped"]]
            return done if len(passes) >= 2 else []

        fires = wait_until(a_second_pass_ran, "two fires of the schedule that ran a pass", timeout=240)
        wide = {**_env(direct), "COLUMNS": "250"}  # a narrow terminal (CI) wraps the table's cells
        listed = CliRunner().invoke(app, ["monitor", "schedules"], env=wide)
        assert listed.exit_code == 0 and f"monitor-{DEPLOYMENT}" in listed.output, listed.output
        assert "auc-low" in listed.output and DEPLOYMENT in listed.output
    finally:
        remote.close()
    server.stop()
    try:
        _check_what_the_fires_did(direct, saved["name"], fires)
    finally:
        direct.close()


def _output(client: Client, fire: sy.ScheduleFire) -> dict[str, Any]:
    """What a fire's pass step returned (the pass summary, or why it skipped)."""
    run = sy.get_pipeline_run(fire.run_id or "", client=client)
    assert run.ref == MONITOR_PIPELINE and run.status == "finished"
    assert run.params["deployment"] == DEPLOYMENT
    step = run.step("monitoring_pass")
    output: dict[str, Any] = load_output(client, OutputRef.from_dict(step.outputs[0]))
    return output


def _check_what_the_fires_did(client: Client, schedule: str, fires: list[sy.ScheduleFire]) -> None:
    # one pass read the 200 logged predictions; every later fire found nothing new and stored nothing
    passes = client.store.list_monitor_reports(DEPLOYMENT, kind="pass", limit=100)
    assert len(passes) == 1 and passes[0].body["high_water_ms"] == T0 + 199 * 1000
    assert last_high_water_mark(DEPLOYMENT, client=client) == T0 + 199 * 1000
    outputs = [_output(client, fire) for fire in fires]
    ran = [o for o in outputs if not o["skipped"]]
    [first] = [o for o in ran if o["since"] is None]  # the pass that started from no mark
    assert first["requests"] == 200 and first["pass"] == passes[0].id
    assert all(o["requests"] == 0 and o["pass"] is None for o in ran if o is not first)
    skipped = [o["notes"][0] for o in outputs if o["skipped"]]  # fired while the first pass ran
    assert all("was still running" in note for note in skipped), skipped
    outcomes = {o["rule"]: o["outcome"] for o in first["outcomes"]}
    assert outcomes == {"busy": "opened", "slow": "ok", "auc-low": "opened"}, outcomes
    # the alerts are stored; the retrain ran inside the fire and its loop promoted the new version
    alerts = {a.rule: a for a in sy.list_alerts(DEPLOYMENT, client=client)}
    assert set(alerts) == {"busy", "auc-low"} and all(a.state == "firing" for a in alerts.values())
    assert alerts["busy"].evidence["values"][0] == 200.0, alerts["busy"].evidence
    loop = alerts["auc-low"].actions["closed_loop"]
    assert loop["status"] == "promoted" and loop["version"] == 2, loop["reasons"]
    assert loop["pipeline_status"] == "finished"
    assert loop["evaluations"]["challenger"]["rows"] == 200
    assert sy.get_registered_model("cancer", client=client).aliases["champion"] == 2
    retrain_run = sy.get_pipeline_run(loop["pipeline_run"], client=client)
    assert retrain_run.pipeline == "training" and retrain_run.status == "finished"
    schedule_runs = {f.run_id for f in fires}
    assert loop["pipeline_run"] not in schedule_runs  # its own pipeline run, not the fire's
    [listed] = list_monitoring_schedules(client=client)
    assert listed.name == schedule and listed.last_fire_time is not None  # the last may be ended by the stop


def test_scheduling_checks_rules_deployment_and_reference_first(client: Client, tmp_path: Path) -> None:
    bad = "rules:\n  - {name: r1, when: drift.share > 0.3}\n  - {name: r2, when: drift.shar >> 3}\n"
    with pytest.raises(InvalidInput, match="r2") as caught:
        sy.schedule_monitoring(DEPLOYMENT, every="5m", rules=bad, client=client)
    assert "when" in str(caught.value)
    other = "deployment: churn\nrules: [{name: r, when: drift.share > 0.3}]\n"
    with pytest.raises(InvalidInput, match="'churn'.*'cancer-svc'"):
        sy.schedule_monitoring(DEPLOYMENT, every="5m", rules=other, client=client)
    with pytest.raises(NotFound, match="flights"):
        sy.schedule_monitoring(DEPLOYMENT, every="5m", reference="flights@v3", client=client)
    with pytest.raises(InvalidInput, match="exactly one of cron"):
        sy.schedule_monitoring(DEPLOYMENT, client=client)
    with pytest.raises(InvalidInput, match="at least 1"):
        sy.schedule_monitoring(DEPLOYMENT, every="0.5s", client=client)
    missing = tmp_path / "nowhere.yaml"
    out = CliRunner().invoke(
        app,
        ["monitor", "schedule", "-d", DEPLOYMENT, "--every", "5m", "--rules", str(missing)],
        env=_env(client),
    )
    assert out.exit_code != 0 and "does not exist" in out.output, out.output
    assert sy.list_schedules(client=client) == []  # nothing was saved by a refused call
    saved = sy.schedule_monitoring(
        DEPLOYMENT, cron="*/10 * * * *", rules={"rules": [{"name": "r", "when": "drift.share > 0.3"}]},
        name="ten-minutes", client=client,
    )  # fmt: skip
    assert saved.params["rules"]["rules"][0]["when"] == "drift.share > 0.3"
    assert (saved.ref, monitor.ref) == (MONITOR_PIPELINE, MONITOR_PIPELINE)
    assert [s.name for s in list_monitoring_schedules(client=client)] == ["ten-minutes"]
    sy.schedule_pipeline("scheduled_retrain:training", every="1h", client=client)  # not a monitoring one
    assert [s.name for s in list_monitoring_schedules(client=client)] == ["ten-minutes"]
