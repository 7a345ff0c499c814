"""Labels that land after the pass that read their predictions: the window is measured again when they
arrive (its newest measurement supersedes the older one in series), rules with ``min_labelled`` wait for
enough labels, and the estimate uses the labels that have arrived (checked against sklearn)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shipyard as sy
from shipyard.errors import InvalidInput
from shipyard.monitoring.rules import parse_rules
from shipyard.serving.logfeed import encode_row
from shipyard.serving.predlog import ParquetPredictionLog
from shipyard.tracking import Client

T0 = 1_764_226_800_000
HOUR = 3_600_000
DEPLOYMENT = "cancer-late"
FEATURES = ["mean radius", "mean texture", "mean smoothness", "worst concavity"]
RULES = """
rules:
  - name: auc-low
    when: performance.roc_auc < 0.999 for 2 windows
    min_labelled: 0.9
"""


def _data() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    frame = load_breast_cancer(as_frame=True).frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(frame[FEATURES].head(200), frame["target"].head(200))
    proba = model.predict_proba(frame[FEATURES])
    return frame, proba, frame["target"].to_numpy()


def _log(root: Path, frame: pd.DataFrame, proba: np.ndarray, rows: range, hour: int) -> list[str]:
    sink = ParquetPredictionLog(str(root), deployment=DEPLOYMENT, flush_interval_s=0.05)
    ids = [f"h{hour}-{i}" for i in rows]
    sink.append(
        [
            encode_row(
                {
                    "request_id": rid,
                    "ts": T0 + hour * HOUR + k * 1000,
                    "deployment": DEPLOYMENT,
                    "variant": "main",
                    "model": "models:/cancer/1",
                    "model_version": "1",
                    "shadow": False,
                    "latency_ms": 2.0,
                    "n_rows": 1,
                    "inputs": frame.loc[[i], FEATURES],
                    "outputs": {
                        "predictions": [int(proba[i, 1] > 0.5)],
                        "probabilities": [proba[i].tolist()],
                    },
                    "status": 200,
                }
            )
            for k, (i, rid) in enumerate(zip(rows, ids, strict=True))
        ]
    )
    sink.close()
    return ids


def test_late_labels_measure_the_window_again_and_rules_wait_for_them(client: Client, tmp_path: Path) -> None:
    frame, proba, y = _data()
    first, second = range(200, 380), range(380, 560)
    ids1 = _log(tmp_path, frame, proba, first, hour=0)
    early = ids1[:18]  # a tenth of the first window's labels arrive before its pass
    sy.log_feedback(
        DEPLOYMENT, [int(y[200 + i]) for i in range(18)], request_ids=early, root=tmp_path, client=client
    )
    pass1 = sy.monitor_pass(DEPLOYMENT, rules=RULES, multivariate=False, root=tmp_path, client=client)
    [report1] = client.store.list_monitor_reports(DEPLOYMENT, kind="performance")
    assert report1.summary["labelled_share"] == pytest.approx(0.1)
    assert [o.outcome for o in pass1.outcomes] == ["no data"]  # not labelled enough to judge
    # the rest lands, with the next window's traffic
    rest = list(range(18, 180))
    sy.log_feedback(
        DEPLOYMENT,
        [int(y[200 + i]) for i in rest],
        request_ids=[ids1[i] for i in rest],
        root=tmp_path,
        client=client,
    )
    _log(tmp_path, frame, proba, second, hour=1)
    sy.monitor_pass(DEPLOYMENT, rules=RULES, multivariate=False, root=tmp_path, client=client)
    series = client.store.list_monitor_reports(DEPLOYMENT, kind="performance")
    assert len(series) == 2  # window 1 once (its newest measurement), then window 2
    again, newest = series
    assert (again.window_start, again.window_end) == (report1.window_start, report1.window_end)
    assert again.id != report1.id and again.summary["labelled_share"] == 1.0
    expected = roc_auc_score(y[first.start : first.stop], proba[first.start : first.stop, 1])
    assert again.summary["roc_auc"] == pytest.approx(expected)
    assert client.store.get_monitor_report(report1.id).summary["labelled_share"] == pytest.approx(0.1)
    assert newest.summary["labelled_share"] == 0.0
    # a pass with no new traffic still measures the second window once its labels land, and the rule
    # (two fully labelled windows under 0.999) now has what it needs
    sy.log_feedback(
        DEPLOYMENT,
        [int(v) for v in y[second.start : second.stop]],
        request_ids=[f"h1-{i}" for i in second],
        root=tmp_path,
        client=client,
    )
    final = sy.monitor_pass(DEPLOYMENT, rules=RULES, multivariate=False, root=tmp_path, client=client)
    assert final.requests == 0
    [outcome] = final.outcomes
    assert outcome.outcome == "opened", outcome
    alert = sy.get_alert(outcome.alert.id, client=client) if outcome.alert else None
    assert alert is not None and len(alert.evidence["values"]) == 2
    expected2 = roc_auc_score(y[second.start : second.stop], proba[second.start : second.stop, 1])
    assert alert.evidence["values"] == pytest.approx([expected, expected2])


def test_a_pass_without_new_labels_does_not_reopen_old_partitions(client: Client, tmp_path: Path) -> None:
    frame, proba, _ = _data()
    _log(tmp_path, frame, proba, range(200, 300), hour=0)
    sy.monitor_pass(DEPLOYMENT, multivariate=False, root=tmp_path, client=client)
    for old in (tmp_path / "predictions").rglob("hour=00/*.parquet"):
        old.write_bytes(b"not parquet")  # a pass that opened the first hour again would fail
    _log(tmp_path, frame, proba, range(300, 400), hour=1)
    second = sy.monitor_pass(DEPLOYMENT, multivariate=False, root=tmp_path, client=client)
    assert second.requests == 100


def test_the_estimate_uses_the_labels_that_have_arrived(client: Client, tmp_path: Path) -> None:
    frame, proba, y = _data()
    rows = range(200, 569)
    ids = _log(tmp_path, frame, proba, rows, hour=0)
    known = ids[::3]  # a third has arrived
    sy.log_feedback(
        DEPLOYMENT,
        [int(y[200 + 3 * k]) for k in range(len(known))],
        request_ids=known,
        root=tmp_path,
        client=client,
    )
    ref = (proba[:200, 1], y[:200])
    result = sy.monitor_pass(
        DEPLOYMENT, estimate_reference=ref, multivariate=False, root=tmp_path, client=client
    )
    assert result.estimate is not None
    assert result.estimate.method == "recalibrated" and result.estimate.labelled == len(known)


def test_min_labelled_is_for_performance_rules_only() -> None:
    with pytest.raises(InvalidInput, match="min_labelled applies to performance rules only"):
        parse_rules("rules: [{name: d, when: drift.share > 0.3, min_labelled: 0.5}]")
    with pytest.raises(InvalidInput, match="min_labelled"):
        parse_rules("rules: [{name: p, when: performance.roc_auc < 0.8, min_labelled: 1.5}]")


def test_a_multiclass_window_is_not_estimated_and_says_why(client: Client, tmp_path: Path) -> None:
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True).frame
    model = LogisticRegression(max_iter=500).fit(iris.iloc[:, :4], iris["target"])
    proba = model.predict_proba(iris.iloc[:, :4])
    sink = ParquetPredictionLog(str(tmp_path), deployment=DEPLOYMENT, flush_interval_s=0.05)
    sink.append(
        [
            encode_row(
                {
                    "request_id": f"i{i}",
                    "ts": T0 + i * 1000,
                    "deployment": DEPLOYMENT,
                    "variant": "main",
                    "model": "models:/iris/1",
                    "model_version": "1",
                    "shadow": False,
                    "latency_ms": 2.0,
                    "n_rows": 1,
                    "inputs": iris.iloc[[i], :4],
                    "outputs": {
                        "predictions": [int(proba[i].argmax())],
                        "probabilities": [proba[i].tolist()],
                    },
                    "status": 200,
                }
            )
            for i in range(150)
        ]
    )
    sink.close()
    ref = (proba[:, 1], (iris["target"] == 1).to_numpy())
    result = sy.monitor_pass(
        DEPLOYMENT, estimate_reference=ref, multivariate=False, root=tmp_path, client=client
    )
    assert result.estimate is None and "estimated" not in result.reports
    assert any("binary classifiers" in n and "[3] probability columns" in n for n in result.notes), (
        result.notes
    )
