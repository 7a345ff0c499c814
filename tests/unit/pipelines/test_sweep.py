"""Sweeps: samplers on a real sklearn model, pruning, trial runs, best marks, artifacts, parallel, resume."""

from __future__ import annotations

import importlib
import io
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import shipyard as sy
from shipyard.pipelines.sweep_space import parse_space
from shipyard.pipelines.sweep_storage import OPTUNA_SCHEMA, resolve_storage
from shipyard.pipelines.sweep_trial import process_dead, process_id
from shipyard.store.sql import schema

optuna.logging.set_verbosity(optuna.logging.WARNING)

_X, _Y = load_breast_cancer(return_X_y=True)
_XTR, _XTE, _YTR, _YTE = train_test_split(_X, _Y, test_size=0.3, random_state=0, stratify=_Y)
_SCALER = StandardScaler().fit(_XTR)
XTR, XTE = _SCALER.transform(_XTR), _SCALER.transform(_XTE)


def logistic(params: dict[str, Any]) -> float:
    model = LogisticRegression(C=params["C"], fit_intercept=params["fit_intercept"], max_iter=500)
    return float(model.fit(XTR, _YTR).score(XTE, _YTE))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[sy.Client]:
    settings = sy.load_settings(
        tracking_uri=f"sqlite:///{tmp_path / 'shipyard.db'}",
        artifact_uri=str(tmp_path / "artifacts"),
        flush_interval=0.05,
    )
    c = sy.Client(settings=settings)
    yield c
    c.close()


def trial_runs(client: sy.Client, result: sy.SweepResult) -> list[sy.Run]:
    runs, _ = client.search_runs_page(filter=f"tags.`sy.sweep.run` = '{result.run_id}'")
    return sorted(runs, key=lambda r: int(r.tags["sy.trial"]))


SPACE = {"C": ("log", 1e-3, 10.0), "fit_intercept": [True, False]}


def test_tpe_sweep_records_trials_marks_the_best_and_stores_artifacts(client: sy.Client) -> None:
    result = sy.sweep(logistic, SPACE, metric="acc", trials=8, seed=0, client=client, name="tpe")
    frame = result.trials_frame()
    assert list(frame.columns) == [
        "trial",
        "run_id",
        "state",
        "value",
        "params.C",
        "params.fit_intercept",
        "steps",
        "duration_s",
        "failure",
    ]
    assert len(frame) == 8 and set(frame.state) == {"complete"}
    best_row = frame.loc[frame.value.idxmax()]
    assert result.best_value == best_row.value
    assert result.best_params == {
        "C": best_row["params.C"],
        "fit_intercept": best_row["params.fit_intercept"],
    }
    assert result.best_run_id == best_row.run_id

    parent = client.get_run(result.run_id)
    assert parent.status == sy.RunStatus.FINISHED and parent.tags["sy.run_type"] == "sweep"
    assert parent.tags["sy.best_run_id"] == result.best_run_id
    assert parent.tags["sy.best_trial"] == str(result.best_trial)
    assert json.loads(parent.tags["sy.best_params"]) == result.best_params
    assert parent.metrics["best.acc"] == pytest.approx(result.best_value)

    runs = trial_runs(client, result)
    assert [r.id for r in runs] == list(frame.run_id)
    for run, row in zip(runs, frame.itertuples(), strict=True):
        assert run.parent_run_id == result.run_id and run.status == sy.RunStatus.FINISHED
        assert float(run.params["C"]) == pytest.approx(row._5)  # params.C
        assert run.metrics["acc"] == pytest.approx(row.value)  # the objective's value is its metric
        assert run.tags["sy.trial_state"] == "complete"
        assert run.tags.get("sy.best_trial") == ("true" if run.id == result.best_run_id else None)

    paths = {a.path for a in client.list_artifacts(result.run_id, "sweep/")}
    assert paths == {
        "sweep/trials.csv",
        "sweep/param_importances.json",
        "sweep/param_importances.png",
        "sweep/parallel_coordinates.png",
        "sweep/parallel_coordinates.html",
    }
    importances = json.loads(client.read_artifact(result.run_id, "sweep/param_importances.json"))
    assert set(importances["importances"]) == {"C", "fit_intercept"}
    assert client.read_artifact(result.run_id, "sweep/parallel_coordinates.png")[:4] == b"\x89PNG"
    stored = pd.read_csv(io.BytesIO(client.read_artifact(result.run_id, "sweep/trials.csv")))
    assert list(stored.run_id) == list(frame.run_id)


def test_random_sampler_with_a_seed_repeats_its_points(client: sy.Client) -> None:
    runs = [
        sy.sweep(logistic, SPACE, metric="acc", trials=4, sampler="random", seed=7, client=client, name=n)
        for n in ("r1", "r2")
    ]
    first, second = (r.trials_frame()[["params.C", "params.fit_intercept", "value"]] for r in runs)
    pd.testing.assert_frame_equal(first, second)
    assert first["params.C"].nunique() == 4


def test_grid_sampler_visits_every_point_once(client: sy.Client) -> None:
    space = {"C": [0.01, 0.1, 1.0], "fit_intercept": [True, False]}
    result = sy.sweep(logistic, space, metric="acc", sampler="grid", client=client, name="grid")
    frame = result.trials_frame()
    points = sorted(zip(frame["params.C"], frame["params.fit_intercept"], strict=True))
    assert points == sorted((c, f) for c in (0.01, 0.1, 1.0) for f in (True, False))
    assert client.get_run(result.run_id).tags["sy.sweep.trials"] == "6"


EPOCHS = 6


def sgd(params: dict[str, Any]) -> float:
    """SGD per epoch, logging accuracy each epoch; noise > 0.8 shuffles the labels (the bad region)."""
    labels = np.random.default_rng(0).permutation(_YTR) if params["noise"] > 0.8 else _YTR
    model = SGDClassifier(alpha=params["alpha"], random_state=0)
    acc = 0.0
    for epoch in range(EPOCHS):
        model.partial_fit(XTR, labels, classes=[0, 1])
        acc = float(model.score(XTE, _YTE))
        sy.log_metric("acc", acc, step=epoch)
    return acc


def test_median_pruner_prunes_trials_in_the_bad_region(client: sy.Client) -> None:
    space = {"alpha": ("log", 1e-4, 1e-2), "noise": ("float", 0.0, 1.0)}
    result = sy.sweep(
        sgd, space, metric="acc", trials=16, sampler="random", seed=3, client=client, name="prune"
    )
    frame = result.trials_frame()
    pruned, complete = frame[frame.state == "pruned"], frame[frame.state == "complete"]
    assert len(pruned) >= 1 and len(pruned) + len(complete) == 16
    bad_after_startup = frame[(frame["params.noise"] > 0.8) & (frame.trial >= 5)]
    assert len(bad_after_startup) >= 1 and set(bad_after_startup.state) == {"pruned"}
    runs = {r.id: r for r in trial_runs(client, result)}
    for row in pruned.itertuples():
        run = runs[row.run_id]
        assert run.status == sy.RunStatus.KILLED and run.tags["sy.trial_state"] == "pruned"
        history = client.get_metric_history(run.id, "acc")
        assert len(history) == row.steps < EPOCHS  # stopped early; every logged point reached optuna
    for row in complete.itertuples():
        assert len(client.get_metric_history(row.run_id, "acc")) == EPOCHS == row.steps


def test_parallel_two_runs_two_trials_at_once_and_exactly_trials_runs(client: sy.Client) -> None:
    lock, both = threading.Lock(), threading.Event()
    state = {"now": 0, "max": 0}

    def objective(params: dict[str, Any]) -> float:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
            if state["now"] == 2:
                both.set()
        both.wait(timeout=10)  # the first trials meet (poll-free: an event with a deadline)
        try:
            return logistic(params)
        finally:
            with lock:
                state["now"] -= 1

    result = sy.sweep(
        objective, SPACE, metric="acc", trials=10, parallel=2, seed=1, client=client, name="par"
    )
    assert state["max"] == 2
    frame = result.trials_frame()
    assert len(frame) == 10 and set(frame.state) == {"complete"} and frame.trial.is_unique
    runs = trial_runs(client, result)
    assert len(runs) == 10 and {r.id for r in runs} == set(frame.run_id)
    assert all(r.status == sy.RunStatus.FINISHED for r in runs)


def test_the_same_name_resumes_and_runs_only_the_missing_trials(client: sy.Client) -> None:
    calls: list[float] = []

    def objective(params: dict[str, Any]) -> float:
        calls.append(params["C"])
        return logistic(params)

    first = sy.sweep(objective, SPACE, metric="acc", trials=3, seed=0, client=client, name="again")
    second = sy.sweep(objective, SPACE, metric="acc", trials=5, seed=0, client=client, name="again")
    assert len(calls) == 5 and second.run_id == first.run_id
    assert len(trial_runs(client, second)) == 5 and len(second.trials_frame()) == 5
    assert len(set(second.trials_frame()["params.C"])) == 5  # the resumed sampler did not repeat points
    assert client.get_run(second.run_id).tags["sy.sweep.resumed"] == "true"
    third = sy.sweep(objective, SPACE, metric="acc", trials=5, seed=0, client=client, name="again")
    assert len(calls) == 5 and third.best_run_id == second.best_run_id
    with pytest.raises(sy.InvalidInput, match="already exists .* another space"):
        sy.sweep(objective, {"C": ("log", 1e-2, 1.0)}, metric="acc", trials=5, client=client, name="again")
    with pytest.raises(sy.InvalidInput, match="direction 'maximize'"):
        sy.sweep(objective, SPACE, metric="acc", direction="minimize", client=client, name="again")


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({}, "non-empty dict"),
        ({"C": ("log", 0, 1)}, r"'C' = \('log', 0, 1\): a log range needs low > 0"),
        ({"C": ("float", 1.0, 0.5)}, "low .* must be below high"),
        ({"n": ("int", 1.5, 3)}, "1.5 must be an integer"),
        ({"n": ("int", 1, 10, 4)}, "multiple of step"),
        ({"C": ("cubic", 1, 2)}, "unknown kind 'cubic'"),
        ({"C": ("float", 1)}, "takes low and high"),
        ({"k": []}, "non-empty list"),
        ({"k": ["a", "a"]}, "distinct"),
        ({"k": [object()]}, "choices must be None, bool, int, float or str"),
        ({"k": {"a": 1}}, "a dict is not a space entry"),
        ({"seed": 0}, "only fixes values"),
        ({"C": ("float", float("nan"), 1.0)}, "finite number"),
    ],
)
def test_a_bad_space_is_invalid_input_naming_the_entry(client: sy.Client, space: Any, message: str) -> None:
    with pytest.raises(sy.InvalidInput, match=message):
        sy.sweep(logistic, space, metric="acc", client=client, name="bad")
    assert client.search_runs_page()[0] == []  # refused before any run was made


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sampler": "grid", "space": {"C": ("log", 1e-3, 1.0)}}, "grid sampler needs a finite set"),
        ({"sampler": "annealing"}, "Unknown sampler 'annealing'"),
        ({"pruner": "sometimes"}, "Unknown pruner 'sometimes'"),
        ({"direction": "up"}, "direction must be one of"),
        ({"parallel": 0}, "parallel must be an integer >= 1"),
        ({"trials": 0}, "trials must be an integer >= 1"),
        ({"executor": "slurm"}, "executor must be one of"),
        ({"metric": ""}, "metric must be the non-empty name"),
    ],
)
def test_bad_options_are_invalid_input(client: sy.Client, kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"space": SPACE, "metric": "acc", **kwargs}
    with pytest.raises(sy.InvalidInput, match=message):
        sy.sweep(logistic, client=client, name="bad", **args)


def test_failing_trials_are_recorded_and_a_sweep_with_no_complete_trial_fails(client: sy.Client) -> None:
    def picky(params: dict[str, Any]) -> float:
        if not params["fit_intercept"]:
            raise ValueError(f"no intercept for C={params['C']}")
        return logistic(params)

    result = sy.sweep(
        picky, SPACE, metric="acc", trials=6, sampler="random", seed=2, client=client, name="picky"
    )
    frame = result.trials_frame()
    failed = frame[frame.state == "failed"]
    assert len(frame) == 6 and len(failed) >= 1 and set(failed.failure) == {"error"}
    run = client.get_run(failed.run_id.iloc[0])
    assert run.status == sy.RunStatus.FAILED and "ValueError: no intercept" in run.tags["sy.error"]
    assert b"ValueError" in client.read_artifact(run.id, "error/traceback.txt")
    assert not result.trials_frame().loc[frame.state == "complete", "params.fit_intercept"].eq(False).any()

    def broken(params: dict[str, Any]) -> float:
        return "high"  # type: ignore[return-value]

    with pytest.raises(sy.PipelineFailed, match="no complete trial out of 2 .*must be a number"):
        sy.sweep(broken, SPACE, metric="acc", trials=2, client=client, name="broken")


@sy.step
def cancer_frame(rows: int) -> pd.DataFrame:
    data = load_breast_cancer(as_frame=True).frame
    return data.head(rows) if rows else data


@sy.step
def fit_score(frame: pd.DataFrame, C: float) -> dict:  # noqa: N803 - the sweep's parameter name
    X, y = frame.drop(columns="target").to_numpy(), frame["target"].to_numpy()  # noqa: N806
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)  # noqa: N806
    scaler = StandardScaler().fit(Xtr)
    model = LogisticRegression(C=C, max_iter=500).fit(scaler.transform(Xtr), ytr)
    return {"acc": float(model.score(scaler.transform(Xte), yte))}


@sy.pipeline
def cancer_pipeline(C: float = 1.0, rows: int = 0):  # type: ignore[no-untyped-def]  # noqa: N803
    return fit_score(cancer_frame(rows), C)


def test_a_pipeline_objective_gets_params_and_its_output_metric(client: sy.Client) -> None:
    result = sy.sweep(
        cancer_pipeline, {"C": ("log", 1e-2, 10.0), "rows": 0}, metric="acc", trials=3, seed=0, client=client
    )
    assert result.name == "cancer_pipeline"
    runs = trial_runs(client, result)
    assert len(runs) == 3
    for run in runs:
        pipeline_run = client.get_run(run.tags["sy.trial.pipeline_run"])
        assert pipeline_run.parent_run_id == run.id and pipeline_run.status == sy.RunStatus.FINISHED
        assert float(pipeline_run.params["C"]) == pytest.approx(float(run.params["C"]))
        assert run.metrics["acc"] > 0.9
    assert result.best_value == max(r.metrics["acc"] for r in runs)
    later = client.search_runs_page(filter="tags.`sy.node` = 'cancer_frame' and tags.`sy.cache` = 'hit'")[0]
    assert len(later) == 2  # the data step ran once; the other trials reused it


def test_without_plotting_libraries_the_run_gets_a_note(
    client: sy.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setattr(optuna.visualization, "is_available", lambda: False)
    result = sy.sweep(logistic, SPACE, metric="acc", trials=3, seed=0, client=client, name="noplots")
    paths = {a.path for a in client.list_artifacts(result.run_id, "sweep/")}
    assert paths == {"sweep/trials.csv", "sweep/param_importances.json"}
    note = client.get_run(result.run_id).tags["sy.sweep.plots"]
    assert "matplotlib (pip install 'shipyard[demo]')" in note and "plotly" in note


def test_optuna_lives_beside_the_sqlite_store_not_in_its_tables(client: sy.Client, tmp_path: Path) -> None:
    result = sy.sweep(logistic, SPACE, metric="acc", trials=2, seed=0, client=client, name="where")
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'shipyard.db'}")
    with engine.connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) == set(schema.metadata.tables) | {"alembic_version"}
        assert (
            conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == schema.HEAD_REVISION
        )
    engine.dispose()
    sibling = tmp_path / "shipyard.optuna.db"
    study = optuna.load_study(study_name="where", storage=f"sqlite:///{sibling}")
    assert len(study.trials) == 2 and study.user_attrs["sy.parent_run_id"] == result.run_id
    assert client.get_run(result.run_id).tags["sy.sweep.storage"] == f"sqlite:///{sibling}"


def test_a_server_tracking_uri_needs_an_explicit_storage() -> None:
    with pytest.raises(sy.InvalidInput, match="pass storage= an optuna storage URL"):
        resolve_storage(None, "http://127.0.0.1:5000")
    assert resolve_storage("memory", "http://127.0.0.1:5000").shared is False
    assert resolve_storage("postgresql+psycopg://u@h/db", "http://h").schema == OPTUNA_SCHEMA


def test_on_postgresql_optuna_tables_go_in_their_own_schema(pg_uri: str, tmp_path: Path) -> None:
    settings = sy.load_settings(tracking_uri=pg_uri, artifact_uri=str(tmp_path / "a"), flush_interval=0.05)
    pg_client = sy.Client(settings=settings)
    try:
        first = sy.sweep(logistic, SPACE, metric="acc", trials=2, seed=0, client=pg_client, name="pg")
        again = sy.sweep(logistic, SPACE, metric="acc", trials=3, seed=0, client=pg_client, name="pg")
        assert again.run_id == first.run_id and len(trial_runs(pg_client, again)) == 3
    finally:
        pg_client.close()
    engine = sa.create_engine(pg_uri)
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        assert set(inspector.get_table_names()) == set(schema.metadata.tables) | {"alembic_version"}
        assert {"studies", "trials", "alembic_version"} <= set(
            inspector.get_table_names(schema=OPTUNA_SCHEMA)
        )
        assert (
            conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == schema.HEAD_REVISION
        )
    engine.dispose()
    sy.Client(settings=settings).close()  # Shipyard opens (and checks) its schema as before


def _orphan_trial(
    client: sy.Client, tmp_path: Path, name: str, process: str, link: bool = True
) -> tuple[optuna.Trial, sy.ActiveRun]:
    """A trial as a dead driver leaves it: asked, its run started (and linked to the trial unless
    ``link`` is false: killed in between), never told to optuna."""
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'shipyard.optuna.db'}")
    trial = study.ask(parse_space(SPACE)[0])
    parent = study.user_attrs["sy.parent_run_id"]
    tags = {"sy.run_type": "sweep_trial", "sy.sweep": name, "sy.sweep.run": parent, "sy.trial": trial.number}
    run = client.start_run(name, params=trial.params, parent=parent, tags=tags, log_environment=False)
    if link:
        trial.set_user_attr("sy.run_id", run.id)
    trial.set_user_attr("sy.process", process)
    return trial, run


def test_a_trial_whose_run_ended_unseen_by_optuna_is_told_from_its_run(
    client: sy.Client, tmp_path: Path
) -> None:
    calls: list[dict[str, Any]] = []

    def objective(params: dict[str, Any]) -> float:
        calls.append(params)
        return logistic(params)

    sy.sweep(objective, SPACE, metric="acc", trials=2, seed=0, client=client, name="told")
    trial, run = _orphan_trial(client, tmp_path, "told", process_id())  # this process: alive
    run.set_tags({"sy.trial_state": "complete", "sy.trial_value": "0.5"})
    run.end(sy.RunStatus.FINISHED)
    result = sy.sweep(objective, SPACE, metric="acc", trials=3, seed=0, client=client, name="told")
    assert len(calls) == 2  # the run decided: nothing ran again
    row = result.trials_frame().set_index("trial").loc[trial.number]
    assert (row.state, row.value, row.run_id) == ("complete", 0.5, run.id)


@pytest.mark.parametrize("link", [True, False], ids=["linked", "run-not-linked-yet"])
def test_a_trial_whose_process_died_is_marked_killed_and_run_again(
    client: sy.Client, tmp_path: Path, link: bool
) -> None:
    calls: list[dict[str, Any]] = []

    def objective(params: dict[str, Any]) -> float:
        calls.append(params)
        return logistic(params)

    sy.sweep(objective, SPACE, metric="acc", trials=2, seed=0, client=client, name="dead")
    code = "from shipyard.pipelines.sweep_trial import process_id; print(process_id())"
    dead = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    dead_id = dead.stdout.strip()
    assert process_dead(dead_id) and not process_dead(process_id())
    trial, run = _orphan_trial(client, tmp_path, "dead", dead_id, link)
    result = sy.sweep(objective, SPACE, metric="acc", trials=3, seed=0, client=client, name="dead")
    assert len(calls) == 3 and calls[-1] == trial.params  # run again, with the same params
    frame = result.trials_frame().set_index("trial")
    assert (frame.loc[trial.number, "state"], frame.loc[trial.number, "failure"]) == ("failed", "killed")
    assert list(frame.state).count("complete") == 3
    stored = client.get_run(run.id)
    assert stored.status == sy.RunStatus.KILLED and stored.tags["sy.trial_failure"] == "killed"


def _study(tmp_path: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'shipyard.optuna.db'}")


def test_a_trial_asked_but_never_tagged_is_settled_at_once_and_run_first(
    client: sy.Client, tmp_path: Path
) -> None:
    """A driver that died inside ``study.ask`` (after the sampler chose params, before it tagged the
    trial with its process) left a trial no live driver is asking for: the next driver settles it
    before anything else, so its retry is the first trial it runs (not a leftover at the end)."""
    calls: list[dict[str, Any]] = []

    def objective(params: dict[str, Any]) -> float:
        calls.append(params)
        return logistic(params)

    sy.sweep(objective, SPACE, metric="acc", trials=2, seed=0, client=client, name="untagged")
    orphan = _study(tmp_path, "untagged").ask(parse_space(SPACE)[0])  # no driver, no process tag
    result = sy.sweep(objective, SPACE, metric="acc", trials=4, seed=0, client=client, name="untagged")
    assert len(calls) == 4 and calls[2] == orphan.params
    trials = {t.number: t for t in result.study.trials}
    assert trials[orphan.number].state == optuna.trial.TrialState.FAIL
    assert trials[orphan.number].user_attrs["sy.failure"] == "killed"
    retry = trials[orphan.number + 1]
    assert retry.user_attrs["sy.retry_of"] == orphan.number and retry.params == orphan.params
    assert [t.state.name for t in trials.values()].count("COMPLETE") == 4


def test_a_trial_killed_before_it_had_params_is_marked_killed_and_not_run_again(
    client: sy.Client, tmp_path: Path
) -> None:
    sy.sweep(logistic, SPACE, metric="acc", trials=2, seed=0, client=client, name="noparams")
    orphan = _study(tmp_path, "noparams").ask()  # died while the sampler chose: no params yet
    result = sy.sweep(logistic, SPACE, metric="acc", trials=4, seed=0, client=client, name="noparams")
    trials = result.study.trials
    assert [t.state.name for t in trials].count("COMPLETE") == 4 and len(trials) == 5
    assert trials[orphan.number].state == optuna.trial.TrialState.FAIL and not trials[orphan.number].params
    assert not [t for t in trials if "sy.retry_of" in t.user_attrs]  # it had no point to run again
    frame = result.trials_frame().set_index("trial")
    assert (frame.loc[orphan.number, "state"], frame.loc[orphan.number, "failure"]) == ("failed", "killed")


def test_a_killed_trial_whose_retry_was_lost_is_run_again(
    client: sy.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A driver killed between settling a trial as killed and enqueueing its retry: a later driver
    enqueues the retry once the settling is older than the grace (0 here: no waiting in a test)."""
    sweep_module = importlib.import_module("shipyard.pipelines.sweep")  # the package exports sweep()

    calls: list[dict[str, Any]] = []

    def objective(params: dict[str, Any]) -> float:
        calls.append(params)
        return logistic(params)

    sy.sweep(objective, SPACE, metric="acc", trials=2, seed=0, client=client, name="lost")
    study = _study(tmp_path, "lost")
    lost = study.ask(parse_space(SPACE)[0])
    lost.set_user_attr("sy.failure", "killed")
    study.tell(lost, state=optuna.trial.TrialState.FAIL)
    monkeypatch.setattr(sweep_module, "_UNTAGGED_S", 0.0)
    result = sy.sweep(objective, SPACE, metric="acc", trials=3, seed=0, client=client, name="lost")
    assert calls[-1] == lost.params
    retries = [t for t in result.study.trials if t.user_attrs.get("sy.retry_of") == lost.number]
    assert len(retries) == 1 and retries[0].state == optuna.trial.TrialState.COMPLETE
    again = sy.sweep(objective, SPACE, metric="acc", trials=3, seed=0, client=client, name="lost")
    assert len(calls) == 3 and len(again.study.trials) == 4  # retried once, not on every resume


def test_a_worker_whose_trial_was_settled_before_it_started_does_not_run_it(
    client: sy.Client, tmp_path: Path
) -> None:
    """A task of a dead driver that a surviving worker starts after another driver settled the trial
    as killed: the worker ends its run killed and never calls the objective (the retry runs it)."""
    sweep_module = importlib.import_module("shipyard.pipelines.sweep")  # the package exports sweep()
    from shipyard.pipelines.sweep_trial import run_trial

    calls: list[dict[str, Any]] = []

    def objective(params: dict[str, Any]) -> float:
        calls.append(params)
        return logistic(params)

    sy.sweep(objective, SPACE, metric="acc", trials=1, seed=0, client=client, name="late")
    cfg = sweep_module._config(objective, SPACE, "acc", "maximize", 2, "tpe", "median", 1, "local")
    cfg.name = cfg.experiment = "late"
    cfg.storage = resolve_storage(None, client.settings.tracking_uri)
    driver = sweep_module._Driver(objective, cfg, client)
    trial = driver._claim()
    assert trial is not None
    study = _study(tmp_path, "late")
    study._storage.set_trial_user_attr(trial._trial_id, "sy.failure", "killed")  # settling, as a driver
    outcome = run_trial(driver._task(trial), client, driver.study)
    assert outcome.state == "killed" and len(calls) == 1  # only the first sweep's trial ran
    run = client.get_run(outcome.run_id)
    assert run.status == sy.RunStatus.KILLED and run.tags["sy.trial_failure"] == "killed"
