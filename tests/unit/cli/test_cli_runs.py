"""``shipyard runs …`` against a seeded SQLite store: tables, ``--json`` and clean errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from typer.testing import Result

Invoke = Callable[..., Result]


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # stdout holds the JSON document and nothing else


def _assert_clean_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output
    assert result.stdout == ""
    for needle in needles:
        assert needle in result.stderr


def test_runs_ls_lists_newest_first(cli: Invoke, seeded: Any) -> None:
    result = cli("runs", "ls")
    assert result.exit_code == 0, result.output
    assert result.stdout.index("lonely") < result.stdout.index("linear") < result.stdout.index("forest")
    assert seeded.forest in result.stdout


def test_runs_ls_json_and_experiment_filter(cli: Invoke, seeded: Any) -> None:
    data = _json(cli("runs", "ls", "-e", "churn", "--json"))
    assert {r["id"] for r in data["runs"]} == {seeded.forest, seeded.linear}
    assert data["next_page_token"] is None
    forest = next(r for r in data["runs"] if r["id"] == seeded.forest)
    assert forest["params"] == {"model": "rf", "depth": "6"}
    assert forest["metrics"]["auc"] == 0.8


def test_runs_ls_pages_with_a_token(cli: Invoke, seeded: Any) -> None:
    first = _json(cli("runs", "ls", "--limit", "2", "--json"))
    assert len(first["runs"]) == 2 and first["next_page_token"]
    rest = _json(cli("runs", "ls", "--limit", "2", "--page-token", first["next_page_token"], "--json"))
    assert [r["id"] for r in rest["runs"]] == [seeded.forest]
    table = cli("runs", "ls", "--limit", "2")
    assert f"--page-token {first['next_page_token']}" in table.stderr


def test_runs_ls_unknown_experiment_is_a_clean_error(cli: Invoke, seeded: Any) -> None:
    _assert_clean_error(cli("runs", "ls", "-e", "nope"), "Experiment 'nope' not found")


def test_runs_ls_on_an_empty_store_says_how_to_start(cli: Invoke) -> None:
    result = cli("runs", "ls")
    assert result.exit_code == 0
    assert "shipyard demo" in result.stdout


def test_runs_show_renders_every_section(cli: Invoke, seeded: Any) -> None:
    result = cli("runs", "show", seeded.forest)
    assert result.exit_code == 0, result.output
    for text in ("forest", "churn", "finished", "Params (2)", "depth", "auc", "0.8", "team", "risk"):
        assert text in result.stdout
    assert "model/model.bin" in result.stdout and "notes.txt" in result.stdout


def test_runs_show_json_includes_artifacts(cli: Invoke, seeded: Any) -> None:
    data = _json(cli("runs", "show", seeded.forest, "--json"))
    assert data["id"] == seeded.forest and data["status"] == "finished"
    assert data["metrics"] == {"auc": 0.8, "loss": 0.4}
    assert {a["path"] for a in data["artifacts"]} == {"model/model.bin", "notes.txt"}
    assert all(len(a["digest"]) == 64 for a in data["artifacts"])


def test_runs_show_unknown_run_is_one_clean_line(cli: Invoke, seeded: Any) -> None:
    result = cli("runs", "show", "feedface")
    _assert_clean_error(result, "feedface", "not found")
    assert len(result.stderr.strip().splitlines()) == 1


def test_runs_search_filters_and_orders(cli: Invoke, seeded: Any) -> None:
    data = _json(cli("runs", "search", "-f", "metrics.auc >= 0.7", "-o", "metrics.auc asc", "--json"))
    assert [r["run_id"] for r in data["runs"]] == [seeded.linear, seeded.forest]
    assert data["runs"][1]["metrics.auc"] == 0.8
    table = cli("runs", "search", "-e", "churn", "-f", "params.model = 'rf'")
    assert table.exit_code == 0, table.output
    assert "forest" in table.stdout and "linear" not in table.stdout
    assert "m.auc" in table.stdout and "p.depth" in table.stdout


def test_runs_search_columns_restrict_what_is_shown(cli: Invoke, seeded: Any) -> None:
    data = _json(cli("runs", "search", "-e", "churn", "-c", "metrics.auc,tags.team", "--json"))
    keys = set(data["runs"][0])
    assert {"metrics.auc", "tags.team"} <= keys
    assert "params.model" not in keys and "metrics.loss" not in keys
    table = cli("runs", "search", "-e", "churn", "-c", "metrics.auc", "-c", "tags.team")
    assert "t.team" in table.stdout and "p.model" not in table.stdout


def test_runs_search_json_is_strict_json_with_nulls(cli: Invoke, seeded: Any) -> None:
    result = cli("runs", "search", "--json")
    assert "NaN" not in result.stdout
    data = _json(result)
    lonely = next(r for r in data["runs"] if r["run_id"] == seeded.other)
    assert lonely.get("params.model") is None


def test_runs_search_bad_filter_reports_the_position(cli: Invoke, seeded: Any) -> None:
    result = cli("runs", "search", "-f", "metrics.auc >> 3")
    _assert_clean_error(result, "at position 13", "metrics.auc >> 3", "^")


def test_runs_search_bad_order_by_is_a_clean_error(cli: Invoke, seeded: Any) -> None:
    _assert_clean_error(cli("runs", "search", "-o", "metrics.auc sideways"), "position")


def test_runs_compare_marks_differing_rows(cli: Invoke, seeded: Any) -> None:
    result = cli("runs", "compare", seeded.forest, seeded.linear)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    model_line = next(line for line in lines if "params.model" in line)
    team_line = next(line for line in lines if "tags.team" in line)
    assert "≠" in model_line and "rf" in model_line and "lr" in model_line
    assert "≠" not in team_line
    assert "fields differ" in result.stderr


def test_runs_compare_json_and_only_diff(cli: Invoke, seeded: Any) -> None:
    data = _json(cli("runs", "compare", seeded.forest, seeded.linear, "--json"))
    assert [r["id"] for r in data["runs"]] == [seeded.forest, seeded.linear]
    rows = {row["field"]: row for row in data["rows"]}
    assert rows["params.model"] == {"field": "params.model", "values": ["rf", "lr"], "differs": True}
    assert rows["tags.team"]["differs"] is False
    only = _json(cli("runs", "compare", seeded.forest, seeded.linear, "--only-diff", "--json"))
    assert all(row["differs"] for row in only["rows"])


def test_runs_compare_unknown_run_is_a_clean_error(cli: Invoke, seeded: Any) -> None:
    _assert_clean_error(cli("runs", "compare", seeded.forest, "nope"), "nope")


def test_runs_delete_hides_and_restore_brings_back(cli: Invoke, seeded: Any) -> None:
    deleted = cli("runs", "delete", seeded.forest)
    assert deleted.exit_code == 0, deleted.output
    assert f"shipyard runs restore {seeded.forest}" in deleted.stdout
    assert seeded.forest not in cli("runs", "ls").stdout
    assert _json(cli("runs", "restore", seeded.forest, "--json")) == {
        "restored": 1,
        "run_ids": [seeded.forest],
    }
    assert seeded.forest in cli("runs", "ls").stdout


def test_runs_delete_unknown_run_changes_nothing(cli: Invoke, seeded: Any) -> None:
    _assert_clean_error(cli("runs", "delete", seeded.forest, "missing"), "missing")
    assert seeded.forest in cli("runs", "ls").stdout


def test_runs_history_prints_a_table_and_a_sparkline(cli: Invoke, seeded: Any) -> None:
    result = cli("runs", "history", seeded.forest, "auc")
    assert result.exit_code == 0, result.output
    assert "▁" in result.stdout and "█" in result.stdout
    assert "3 points" in result.stdout and "0.7" in result.stdout


def test_runs_history_json_has_every_point(cli: Invoke, seeded: Any) -> None:
    data = _json(cli("runs", "history", seeded.forest, "auc", "--json"))
    assert data["key"] == "auc"
    assert [(p["step"], p["value"]) for p in data["points"]] == [(0, 0.6), (1, 0.7), (2, 0.8)]


def test_runs_history_unknown_metric_lists_the_known_ones(cli: Invoke, seeded: Any) -> None:
    _assert_clean_error(cli("runs", "history", seeded.forest, "accuracy"), "'accuracy'", "auc, loss")
