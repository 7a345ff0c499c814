"""The checksums an import compares and the report that says whether both sides agree."""

from __future__ import annotations

import pytest

from shipyard.cli.importing import _next_step
from shipyard.entities import MetricHistory, Run, RunStatus
from shipyard.importers import EntityReport, ImportReport
from shipyard.importers.checksums import run_checksum


def _run(**changes: object) -> Run:
    run = Run("a" * 32, 1, "r", RunStatus.FINISHED, 5, 9, params={"lr": "0.1"}, tags={"t": "x"})
    run.experiment_name = "churn"
    for key, value in changes.items():
        setattr(run, key, value)
    return run


def _history(values: list[float], steps: list[int] | None = None) -> dict[str, MetricHistory]:
    steps = steps or list(range(len(values)))
    return {"loss": MetricHistory("loss", steps, [100 + s for s in steps], values)}


def test_a_series_sums_the_same_in_any_order() -> None:
    forward = MetricHistory("loss", [0, 1], [100, 101], [0.5, 0.25])
    backward = MetricHistory("loss", [1, 0], [101, 100], [0.25, 0.5])
    assert run_checksum(_run(), {"loss": forward}, []) == run_checksum(_run(), {"loss": backward}, [])


@pytest.mark.parametrize(
    ("a", "b"),
    [(float("nan"), 0.0), (-0.0, 0.0), (float("inf"), 1.7976931348623157e308), (0.1, 0.1000000000000001)],
)
def test_values_that_differ_sum_differently(a: float, b: float) -> None:
    assert run_checksum(_run(), _history([a]), []) != run_checksum(_run(), _history([b]), [])


@pytest.mark.parametrize(
    "change",
    [
        {"params": {"lr": "0.2"}},
        {"tags": {"t": "y"}},
        {"name": "other"},
        {"end_time": None},
        {"deleted": True},
        {"parent_run_id": "b" * 32},
        {"experiment_name": "other"},
    ],
)
def test_any_field_param_or_tag_changes_the_sum(change: dict[str, object]) -> None:
    assert run_checksum(_run(**change), {}, []) != run_checksum(_run(), {}, [])


def test_an_artifact_of_another_size_or_path_changes_the_sum() -> None:
    base = run_checksum(_run(), {}, [("model/MLmodel", 10)])
    assert run_checksum(_run(), {}, [("model/MLmodel", 11)]) != base
    assert run_checksum(_run(), {}, [("model/mlmodel", 10)]) != base


def test_the_experiment_id_does_not_count_only_its_name() -> None:
    assert run_checksum(_run(experiment_id=7), {}, []) == run_checksum(_run(), {}, [])


def test_a_report_is_ok_when_both_sides_agree_on_every_kind() -> None:
    report = ImportReport("mlruns", "sqlite:///s.db")
    runs = report.entity("runs")
    runs.compare("r1", "d1", "d1")
    points = report.entity("metric points", checksummed=False)
    points.add_source(count=3)
    points.add_target(count=3)
    assert report.ok and runs.source_checksum == runs.target_checksum


def test_a_difference_a_missing_record_or_a_failure_is_not_ok() -> None:
    differs = EntityReport("runs")
    differs.compare("r1", "d1", "d2")
    assert not differs.matches and differs.mismatched == ["r1"]
    missing = EntityReport("runs")
    missing.compare("r1", "d1", None)
    assert not missing.matches and missing.target == 0
    failed = EntityReport("runs")
    failed.failed = 1
    assert not failed.matches
    short = EntityReport("tags", checksummed=False)
    short.add_source(count=2)
    short.add_target(count=1)
    assert not short.matches


def test_a_dry_run_is_never_ok() -> None:
    report = ImportReport("mlruns", "sqlite:///s.db", dry_run=True)
    assert not report.ok


def test_runs_per_second_counts_the_runs_phase_only() -> None:
    report = ImportReport("mlruns", "sqlite:///s.db", seconds=10.0, phases={"runs": 2.0})
    report.entity("runs").add_source("d", count=100)
    assert report.runs_per_second == 50.0


def test_a_piped_import_reports_its_run_count_at_10_20_50_100() -> None:
    steps = [10]
    while steps[-1] < 10_000:
        steps.append(_next_step(steps[-1]))
    assert steps == [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000]
