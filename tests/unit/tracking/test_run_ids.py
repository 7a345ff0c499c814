"""Where a run id is expected, a run object works too; anything else is a clear ``InvalidInput``."""

from __future__ import annotations

from typing import Any

import pytest

import shipyard as sy
from shipyard import Client
from shipyard.errors import InvalidInput
from shipyard.tracking.client import run_id_of


def test_get_run_accepts_an_id_a_run_or_an_active_run(client: Client) -> None:
    with client.start_run("ids", log_environment=False) as active:
        active.log_metric("loss", 0.5)
        live = client.get_run(active)  # flushed first: the metric logged a moment ago is there
        assert live.metrics == {"loss": 0.5}
    stored = client.get_run(active.id)
    assert client.get_run(stored) == stored == client.get_run(active)


def test_compare_runs_and_metric_history_accept_run_objects(client: Client) -> None:
    runs = []
    for lr in (0.1, 0.2):
        with client.start_run("ids", params={"lr": lr}, log_environment=False) as active:
            active.log_metric("loss", lr)
        runs.append(active)
    by_object = client.compare_runs([runs[0], client.get_run(runs[1].id)])
    by_id = client.compare_runs([r.id for r in runs])
    assert by_object.equals(by_id) and by_id.loc["params.lr", "differs"]
    history = client.get_metric_history(runs[0], "loss")
    assert history["value"].tolist() == [0.1]
    assert client.get_metric_history(client.get_run(runs[0].id), "loss").equals(history)


@pytest.mark.parametrize("bad", [42, None, 3.5, b"abc", {"id": "x"}])
def test_anything_else_is_a_clear_invalid_input(client: Client, bad: Any) -> None:
    with pytest.raises(InvalidInput, match="Expected a run id") as caught:
        client.get_run(bad)
    assert type(bad).__name__ in str(caught.value)
    with pytest.raises(InvalidInput, match="Expected a run id"):
        client.get_metric_history(bad, "loss")
    with pytest.raises(InvalidInput, match="Expected a run id"):
        client.compare_runs([bad])


def test_compare_runs_refuses_a_single_id_instead_of_reading_its_characters(client: Client) -> None:
    with pytest.raises(InvalidInput, match="takes a list of runs"):
        client.compare_runs("abc123")


def test_the_module_level_helpers_accept_run_objects(fluent_client: Client) -> None:
    with sy.start_run(experiment="ids") as active:
        sy.log_metric("loss", 0.3)
    assert sy.get_run(active).metrics == {"loss": 0.3}
    assert sy.get_metric_history(active, "loss")["value"].tolist() == [0.3]
    assert sy.compare_runs([active]).loc["metrics.loss"].iloc[0] == 0.3
    with pytest.raises(InvalidInput):
        sy.get_run(7)  # type: ignore[arg-type]


def test_run_id_of_returns_the_id() -> None:
    assert run_id_of("a1b2") == "a1b2"
