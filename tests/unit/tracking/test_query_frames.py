"""Querying runs as pandas DataFrames: search, compare, metric history."""

from __future__ import annotations

import pandas as pd
import pytest

import shipyard as sy
from shipyard import Client
from shipyard.errors import ExperimentNotFound, InvalidInput
from shipyard.tracking.frames import ATTRIBUTE_COLUMNS


@pytest.fixture
def three_runs(client: Client) -> list[str]:
    ids = []
    for n, (c, auc) in enumerate([(0.1, 0.71), (1.0, 0.93), (10.0, 0.85)]):
        with client.start_run(
            experiment="churn",
            name=f"run{n}",
            params={"C": c, "kernel": "rbf"},
            tags={"team": "risk"},
            log_environment=False,
        ) as run:
            run.log_metric("auc", auc)
        ids.append(run.id)
    with client.start_run(experiment="other", name="elsewhere", log_environment=False) as run:
        run.log_metric("auc", 0.99)
    return ids


def test_search_runs_returns_one_row_per_run_with_grouped_columns(
    client: Client, three_runs: list[str]
) -> None:
    df = client.search_runs("churn", order_by="metrics.auc desc")
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == [*ATTRIBUTE_COLUMNS, "params.C", "params.kernel", "metrics.auc", "tags.team"]
    assert df["run_name"].tolist() == ["run1", "run2", "run0"]
    assert df["metrics.auc"].tolist() == [0.93, 0.85, 0.71]
    assert df["params.C"].tolist() == ["1.0", "10.0", "0.1"]
    assert set(df["experiment"]) == {"churn"}
    assert set(df["status"]) == {"finished"}
    assert str(df["start_time"].dt.tz) == "UTC"
    assert (df["duration_s"] >= 0).all()
    assert df.attrs["next_page_token"] is None


def test_search_runs_filter_and_columns(client: Client, three_runs: list[str]) -> None:
    df = client.search_runs("churn", filter="params.C >= 1", columns=["metrics.auc"])
    assert sorted(df["run_name"]) == ["run1", "run2"]
    assert [c for c in df.columns if c not in ATTRIBUTE_COLUMNS] == ["metrics.auc"]


def test_search_runs_pages_carry_the_next_token_in_attrs(client: Client, three_runs: list[str]) -> None:
    first = client.search_runs("churn", limit=2)
    assert len(first) == 2
    token = first.attrs["next_page_token"]
    assert isinstance(token, str)
    rest = client.search_runs("churn", limit=2, page_token=token)
    assert rest.attrs["next_page_token"] is None
    assert sorted([*first["run_id"], *rest["run_id"]]) == sorted(three_runs)


def test_search_runs_across_experiments_by_name_or_id(client: Client, three_runs: list[str]) -> None:
    other = client.get_experiment("other")
    assert len(client.search_runs(["churn", other.id])) == 4
    assert len(client.search_runs()) == 4
    with pytest.raises(ExperimentNotFound, match="'nope'"):
        client.search_runs("nope")


def test_search_runs_with_no_match_is_an_empty_frame_with_the_attribute_columns(
    client: Client, three_runs: list[str]
) -> None:
    df = client.search_runs("churn", filter="metrics.auc > 2")
    assert df.empty
    assert list(df.columns) == ATTRIBUTE_COLUMNS


def test_module_level_search_runs(fluent_client: Client) -> None:
    with sy.start_run(experiment="e", log_environment=False) as run:
        sy.log_metric("auc", 0.5)
    df = sy.search_runs("e")
    assert df["run_id"].tolist() == [run.id]


def test_compare_runs_marks_fields_that_differ(client: Client, three_runs: list[str]) -> None:
    df = client.compare_runs(three_runs[:2])
    assert list(df.columns) == ["run0", "run1", "differs"]
    assert df.loc["params.C"].tolist() == ["0.1", "1.0", True]
    assert df.loc["params.kernel"].tolist() == ["rbf", "rbf", False]
    assert df.loc["metrics.auc", "differs"]
    assert not df.loc["tags.team", "differs"]
    assert list(df.index) == sorted(df.index)


def test_compare_runs_hides_system_tags_and_shows_missing_fields(client: Client) -> None:
    with client.start_run(name="a", params={"only_a": 1}) as a:  # with environment tags (sy.*)
        pass
    with client.start_run(name="b", log_environment=False) as b:
        pass
    df = client.compare_runs([a.id, b.id])
    assert not [i for i in df.index if i.startswith("tags.sy.")]
    assert df.loc["params.only_a", "a"] == "1"
    assert pd.isna(df.loc["params.only_a", "b"])
    assert df.loc["params.only_a", "differs"]


def test_compare_runs_needs_a_run(client: Client) -> None:
    with pytest.raises(InvalidInput):
        client.compare_runs([])


def test_get_metric_history_is_a_frame_of_step_timestamp_value(client: Client) -> None:
    with client.start_run(log_environment=False) as run:
        for i, v in enumerate([0.9, 0.5, 0.3]):
            run.log_metric("loss", v, step=i * 10, timestamp=1_767_225_600_000 + i)
    df = client.get_metric_history(run.id, "loss")
    assert list(df.columns) == ["step", "timestamp", "value"]
    assert df["step"].tolist() == [0, 10, 20]
    assert df["value"].tolist() == [0.9, 0.5, 0.3]
    assert df["step"].dtype == "int64" and df["value"].dtype == "float64"
    assert df["timestamp"].iloc[0] == pd.Timestamp("2026-01-01T00:00:00", tz="UTC")
    assert df.attrs["key"] == "loss"


def test_get_metric_history_of_an_unlogged_key_is_an_empty_typed_frame(client: Client) -> None:
    with client.start_run(log_environment=False) as run:
        pass
    df = client.get_metric_history(run.id, "nothing")
    assert df.empty
    assert df["step"].dtype == "int64" and df["value"].dtype == "float64"


def test_module_level_compare_and_history(fluent_client: Client) -> None:
    with sy.start_run(name="x", log_environment=False) as x:
        sy.log_metric("m", 1.0)
    with sy.start_run(name="y", log_environment=False) as y:
        sy.log_metric("m", 2.0)
    assert sy.compare_runs([x.id, y.id]).loc["metrics.m"].tolist() == [1.0, 2.0, True]
    assert sy.get_metric_history(y.id, "m")["value"].tolist() == [2.0]
