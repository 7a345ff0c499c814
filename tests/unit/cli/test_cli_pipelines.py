"""``shipyard pipelines …``: run (DAG table, cache hits, failures), ls, show, cache clear, schedules."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import Result

from shipyard import Client
from shipyard.cli.pipelines import parse_params
from shipyard.errors import InvalidInput

Invoke = Callable[..., Result]

SUMS = "cli_pipeline_steps:sums"


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _assert_clean_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def _step(info: dict[str, Any], node: str) -> dict[str, Any]:
    return next(s for s in info["steps"] if s["node"] == node)


def test_run_prints_the_dag_and_a_rerun_comes_from_the_cache(cli: Invoke) -> None:
    first = cli("pipelines", "run", SUMS, "--param", "n=4")
    assert first.exit_code == 0, first.output
    for needle in ("numbers", "total", "finished", "miss", "Pipeline 'sums' finished"):
        assert needle in first.stdout
    again = _json(cli("pipelines", "run", SUMS, "--param", "n=4", "--json"))
    assert again["status"] == "finished"
    assert again["params"] == {"n": "4"}
    assert [s["node"] for s in again["steps"]] == ["numbers", "total"]
    assert again["cache_hits"] == 2
    assert {s["cache"] for s in again["steps"]} == {"hit"}
    assert _step(again, "total")["upstream"] == ["numbers"]


def test_no_cache_and_a_changed_param_run_the_steps(cli: Invoke) -> None:
    _json(cli("pipelines", "run", SUMS, "--param", "n=4", "--json"))
    forced = _json(cli("pipelines", "run", SUMS, "--param", "n=4", "--no-cache", "--json"))
    assert forced["cache_hits"] == 0
    assert {s["status"] for s in forced["steps"]} == {"finished"}
    other = _json(cli("pipelines", "run", SUMS, "-p", "n=5", "--json"))
    assert _step(other, "numbers")["cache"] == "miss"


def test_ls_lists_pipeline_runs_with_steps_cache_hits_and_cost(cli: Invoke, client: Client) -> None:
    _json(cli("pipelines", "run", SUMS, "--json"))
    _json(cli("pipelines", "run", SUMS, "--json"))
    with client.start_run("plain", name="not-a-pipeline", system_metrics=False, log_environment=False):
        pass
    listed = _json(cli("pipelines", "ls", "--json"))["runs"]
    assert [r["pipeline"] for r in listed] == ["sums", "sums"]
    assert [r["cache_hits"] for r in listed] == [2, 0]  # newest first
    assert all(r["n_steps"] == 2 and r["cost_usd"] is not None for r in listed)
    table = cli("pipelines", "ls")
    assert table.exit_code == 0, table.output
    assert listed[0]["run_id"] in table.stdout and "not-a-pipeline" not in table.stdout
    assert _json(cli("pipelines", "ls", "--pipeline", "other", "--json"))["runs"] == []


def test_show_reads_the_dag_from_a_pipeline_run_or_one_of_its_steps(cli: Invoke) -> None:
    ran = _json(cli("pipelines", "run", SUMS, "--json"))
    shown = _json(cli("pipelines", "show", ran["run_id"], "--json"))
    assert shown["dag"] == {"numbers": [], "total": ["numbers"]}
    assert _step(shown, "total")["cost"]["wall_seconds"] >= 0
    step_run = _step(shown, "total")["run_id"]
    assert _json(cli("pipelines", "show", step_run, "--json"))["run_id"] == ran["run_id"]
    text = cli("pipelines", "show", ran["run_id"])
    assert text.exit_code == 0, text.output
    for needle in ("Pipeline run", ran["run_id"], "└─ total", "executor", "local"):
        assert needle in text.stdout


def test_show_of_a_run_that_is_no_pipeline_is_one_clean_error(cli: Invoke, client: Client) -> None:
    with client.start_run("plain", system_metrics=False, log_environment=False) as run:
        pass
    _assert_clean_error(cli("pipelines", "show", run.id), run.id, "not a pipeline run")
    _assert_clean_error(cli("pipelines", "show", "nope"), "nope")


def test_a_failed_step_shows_its_traceback_and_the_skipped_steps(cli: Invoke) -> None:
    result = cli("pipelines", "run", "cli_pipeline_steps:broken")
    _assert_clean_error(result, "failed at step 'boom'", "ValueError: boom")
    assert "boom: 3 rows is not what I wanted" in result.stdout  # the traceback summary
    assert "skipped" in result.stdout
    run_id = _json(cli("pipelines", "ls", "--json"))["runs"][0]["run_id"]
    shown = _json(cli("pipelines", "show", run_id, "--json"))
    assert shown["status"] == "failed"
    assert [(s["node"], s["status"]) for s in shown["steps"]] == [
        ("numbers", "finished"),
        ("boom", "failed"),
        ("total", "skipped"),
    ]
    assert 'raise ValueError(f"boom' in _step(shown, "boom")["error"]


def test_a_contract_violation_shows_the_validation_report(cli: Invoke) -> None:
    result = cli("pipelines", "run", "cli_pipeline_steps:guarded", "--param", "n=5")
    _assert_clean_error(result, "Step 'checked' stopped the pipeline", "input 'frame' broke its contract")
    assert "broke contract small" in result.stdout and "outside [0, 2]" in result.stdout  # the report
    run_id = _json(cli("pipelines", "ls", "--json"))["runs"][0]["run_id"]
    step = _step(_json(cli("pipelines", "show", run_id, "--json")), "checked")
    assert step["status"] == "failed" and step["boundary"] == "frame"
    assert [v["column"] for v in step["contract_report"]["violations"]] == ["x"]
    assert "broke contract small" in cli("pipelines", "show", run_id).stdout


def test_cache_clear_makes_the_next_run_execute_again(cli: Invoke) -> None:
    _json(cli("pipelines", "run", SUMS, "--json"))
    cleared = _json(cli("pipelines", "cache", "clear", "sums", "--json"))
    assert cleared == {"cleared": 2, "pipeline": "sums"}
    assert _json(cli("pipelines", "run", SUMS, "--json"))["cache_hits"] == 0
    assert "Cleared 0 cached" in cli("pipelines", "cache", "clear", "other").stdout


def test_bad_arguments_are_one_clean_error(cli: Invoke) -> None:
    _assert_clean_error(cli("pipelines", "run", SUMS, "--param", "n"), "KEY=VALUE")
    _assert_clean_error(cli("pipelines", "run", SUMS, "--executor", "dask"), "'dask'", "local or ray")
    _assert_clean_error(cli("pipelines", "run", SUMS, "--ray-address", "1.2.3.4:6379"), "--executor ray")
    _assert_clean_error(cli("pipelines", "run", "cli_pipeline_steps:nothing"), "nothing")
    _assert_clean_error(cli("pipelines", "run", "no-colon"), "package.module:name")


def test_params_are_json_where_they_parse() -> None:
    assert parse_params(["n=7", "lr=0.5", "on=true", 'tag="7"', "name=jfk", "xs=[1,2]", "eq=a=b"]) == {
        "n": 7,
        "lr": 0.5,
        "on": True,
        "tag": "7",
        "name": "jfk",
        "xs": [1, 2],
        "eq": "a=b",
    }
    with pytest.raises(InvalidInput, match="KEY=VALUE"):
        parse_params(["=3"])


def test_schedule_ls_and_rm(cli: Invoke) -> None:
    saved = _json(cli("pipelines", "schedule", SUMS, "--every", "1h", "--param", "n=2", "--json"))
    assert saved["name"] == "sums" and saved["every_seconds"] == 3600.0 and saved["params"] == {"n": 2}
    nightly = cli("pipelines", "schedule", SUMS, "--cron", "0 3 * * *", "--name", "nightly")
    assert nightly.exit_code == 0, nightly.output
    assert "Scheduled 'nightly'" in nightly.stdout
    listed = _json(cli("pipelines", "schedules", "ls", "--json"))["schedules"]
    assert [(s["name"], s["cron"], s["last_fire_time"]) for s in listed] == [
        ("nightly", "0 3 * * *", None),
        ("sums", None, None),
    ]
    assert "0 3 * * *" in cli("pipelines", "schedules", "ls").stdout
    assert cli("pipelines", "schedules", "rm", "sums").exit_code == 0
    left = _json(cli("pipelines", "schedules", "ls", "--json"))["schedules"]
    assert [s["name"] for s in left] == ["nightly"]
    _assert_clean_error(cli("pipelines", "schedules", "rm", "sums"), "Schedule 'sums' not found")


def test_schedule_refuses_bad_timetables(cli: Invoke) -> None:
    _assert_clean_error(cli("pipelines", "schedule", SUMS, "--cron", "61 * * * *"), "not valid")
    _assert_clean_error(cli("pipelines", "schedule", SUMS, "--every", "soon"), "30s, 15m")
    _assert_clean_error(cli("pipelines", "schedule", SUMS), "exactly one of cron")
    cron = ["pipelines", "schedule", SUMS, "--cron", "0 3 * * *"]
    _assert_clean_error(cli(*cron, "--every", "1h"), "exactly one")
    _assert_clean_error(cli(*cron, "--timezone", "Mars/Olympus"), "Mars/Olympus")
