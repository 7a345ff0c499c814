"""A step whose contracts passed says so on its run (``sy.contracts``) and in ``sy.get_pipeline_run``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pipeline_steps as ps
import pytest

import shipyard as sy


@pytest.fixture(autouse=True)
def store(tmp_path: Path) -> Iterator[sy.Client]:
    sy.set_tracking_uri(f"sqlite:///{tmp_path / 'sy.db'}", str(tmp_path / "artifacts"))
    yield sy.get_client()
    sy.set_tracking_uri(None)


def test_passed_contracts_are_recorded_on_the_step_run_and_read_back(store: sy.Client) -> None:
    sy.register_contract(
        sy.Contract(
            name="delays",
            columns=[
                {"name": "dep_delay", "type": "float", "nullable": True},
                {"name": "arr_delay", "type": "float", "nullable": True},
            ],
        )
    )
    result = ps.checked.run(month=1)
    step_run = store.get_run(result.steps["delays"].run_id)
    assert json.loads(step_run.tags["sy.contracts"]) == {"return": "delays@v1"}
    info = sy.get_pipeline_run(result.run_id)
    assert info.step("delays").contracts == {"return": "delays@v1"}
    assert info.step("mean_delay").contracts == {}  # no contract declared: nothing claimed
    again = sy.get_pipeline_run(ps.checked.run(month=1).run_id)
    assert again.step("delays").status == "cached" and again.step("delays").contracts == {}
