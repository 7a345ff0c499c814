"""How MLflow's records become Shipyard's: system tags as run fields, statuses, names Shipyard can keep,
and the refusals that come before anything is read or written."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from shipyard import Client
from shipyard.config import load_settings
from shipyard.entities import RunStatus
from shipyard.errors import InvalidInput, MissingExtra
from shipyard.importers import import_mlflow
from shipyard.importers.mlflow_source import MlflowSource, experiment_name, model_name, to_run

entities = pytest.importorskip("mlflow.entities")


def _mlflow_run(
    tags: dict[str, str], *, status: str = "FINISHED", stage: str = "active", user: str = "ann"
) -> object:
    info = entities.RunInfo(
        run_id="a" * 32,
        experiment_id="3",
        user_id=user,
        status=status,
        start_time=1_000,
        end_time=2_000 if status != "RUNNING" else None,
        lifecycle_stage=stage,
        artifact_uri="file:///nowhere",
        run_name=tags.get("mlflow.runName", ""),
    )
    data = entities.RunData(
        metrics=[entities.Metric("loss", 0.5, 1_500, 3)],
        params=[entities.Param("lr", "0.1")],
        tags=[entities.RunTag(k, v) for k, v in tags.items()],
    )
    return entities.Run(info, data)


def test_system_tags_become_the_runs_fields_and_other_tags_stay() -> None:
    tags = {
        "mlflow.runName": "baseline",
        "mlflow.user": "ann",
        "mlflow.source.name": "train.py",
        "mlflow.parentRunId": "b" * 32,
        "mlflow.source.git.commit": "abc123",
        "team": "core",
    }
    run = to_run(_mlflow_run(tags), "churn")
    assert (run.id, run.name, run.user, run.source, run.parent_run_id) == (
        "a" * 32,
        "baseline",
        "ann",
        "train.py",
        "b" * 32,
    )
    assert run.tags == {"mlflow.source.git.commit": "abc123", "team": "core"}
    assert (run.start_time, run.end_time, run.status, run.experiment_name) == (
        1_000,
        2_000,
        RunStatus.FINISHED,
        "churn",
    )
    assert (run.params, run.metrics) == ({"lr": "0.1"}, {"loss": 0.5})


def test_a_system_tag_that_disagrees_with_the_field_is_kept_as_a_tag() -> None:
    run = to_run(_mlflow_run({"mlflow.user": "bob"}, user="ann"), "churn")
    assert run.user == "ann" and run.tags == {"mlflow.user": "bob"}


@pytest.mark.parametrize(
    ("status", "expected"),
    [("RUNNING", "running"), ("SCHEDULED", "running"), ("FAILED", "failed"), ("KILLED", "killed")],
)
def test_statuses_map_to_shipyards(status: str, expected: str) -> None:
    assert str(to_run(_mlflow_run({}, status=status), "x").status) == expected


def test_a_deleted_run_stays_deleted() -> None:
    assert to_run(_mlflow_run({}, stage="deleted"), "x").deleted


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("churn", "churn"),
        ("churn model/v2", "churn-model-v2"),
        ("_private", "m-_private"),
        ("ünïcode", "n-code"),
        ("!!!", "model"),
    ],
)
def test_model_names_become_names_shipyard_takes(name: str, expected: str) -> None:
    assert model_name(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("/Users/ann@corp.com/churn", "/Users/ann@corp.com/churn"),
        (" padded ", "padded"),
        ("tab\there", "tab-here"),
        ("x" * 400, "x" * 255),
    ],
)
def test_experiment_names_are_kept_unless_shipyard_cannot_hold_them(name: str, expected: str) -> None:
    assert experiment_name(name) == expected


def test_a_missing_store_is_refused_and_not_created(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        MlflowSource(str(tmp_path / "mlruns"))
    with pytest.raises(InvalidInput, match="does not exist"):
        MlflowSource(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_is_not_an_mlflow_store_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InvalidInput, match="not an MLflow store"):
        MlflowSource(str(tmp_path))


def test_a_shipyard_server_as_the_target_is_refused_naming_the_fix(tmp_path: Path) -> None:
    settings = load_settings(tracking_uri="http://127.0.0.1:9", home=str(tmp_path))
    client = Client(settings=settings)
    try:
        with pytest.raises(InvalidInput, match="--tracking-uri postgresql"):
            import_mlflow(str(tmp_path), client=client)
    finally:
        client.close()


def test_without_the_mlflow_client_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what an environment without MLflow looks like
    with pytest.raises(MissingExtra, match=r"pip install 'shipyard\[mlflow\]'"):
        MlflowSource(str(tmp_path))
