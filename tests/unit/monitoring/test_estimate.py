"""The estimator's arithmetic and its trusted flag: expected metrics of a calibrated model match the
realised ones on average, and a constructed calibration break switches trust off with a reason."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from shipyard.monitoring.estimate import (
    Calibration,
    EstimateLimits,
    estimate_performance,
    expected_metrics,
    fit_calibration,
)


def draw(n: int, seed: int, slope: float = 1.0, intercept: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Scores, and labels drawn from sigmoid(slope * logit(score) + intercept)."""
    rng = np.random.default_rng(seed)
    s = rng.beta(2, 5, n)
    q = Calibration(slope, intercept, "truth", 0).apply(s)
    return s, (rng.random(n) < q).astype(float)


def test_expected_metrics_of_calibrated_scores_match_the_realised_mean() -> None:
    s, _ = draw(20_000, 0)
    expected = expected_metrics(s, s)
    realised = [roc_auc_score(np.random.default_rng(i).random(len(s)) < s, s) for i in range(20)]
    assert expected["roc_auc"] == pytest.approx(np.mean(realised), abs=0.003)


def test_ties_count_half_like_roc_auc_score() -> None:
    s = np.array([0.5, 0.5, 0.2, 0.8])
    y = np.array([1.0, 0.0, 0.0, 1.0])
    assert expected_metrics(s, y)["roc_auc"] == pytest.approx(roc_auc_score(y, s))


def test_platt_fit_recovers_a_broken_calibration() -> None:
    s, y = draw(50_000, 1, slope=0.5, intercept=0.8)
    fitted = fit_calibration(s, y)
    assert (fitted.slope, fitted.intercept) == (pytest.approx(0.5, abs=0.05), pytest.approx(0.8, abs=0.08))


def test_a_stable_world_is_trusted() -> None:
    ref_s, ref_y = draw(5_000, 2)
    s, y = draw(5_000, 3)
    recent_s, recent_y = draw(5_000, 4)
    est = estimate_performance(
        s, reference_scores=ref_s, reference_labels=ref_y, recent_scores=recent_s, recent_labels=recent_y
    )
    est.compare(s, y)
    assert est.trusted and not est.reasons and abs(est.errors["roc_auc"]) < 0.02


def test_a_calibration_break_carried_forward_is_not_trusted() -> None:
    ref_s, ref_y = draw(5_000, 2)
    recent_s, recent_y = draw(5_000, 4, slope=0.5, intercept=0.8)  # the latest labelled month broke
    s, _ = draw(5_000, 5, slope=0.5, intercept=0.8)
    est = estimate_performance(
        s, reference_scores=ref_s, reference_labels=ref_y, recent_scores=recent_s, recent_labels=recent_y
    )
    assert not est.trusted and "calibration moved by" in est.reasons[0]


def test_a_break_two_parameters_cannot_follow_is_not_trusted() -> None:
    ref_s, ref_y = draw(5_000, 2)
    rng = np.random.default_rng(6)
    s = rng.beta(2, 5, 20_000)
    y = (rng.random(len(s)) < np.where(s > 0.3, 0.9 - s, s)).astype(float)  # not monotone in the score
    some = np.where(rng.random(len(s)) < 0.2, y, np.nan)
    est = estimate_performance(s, reference_scores=ref_s, reference_labels=ref_y, labels=some, n_boot=20)
    assert est.method == "recalibrated" and not est.trusted
    assert any("Hosmer-Lemeshow" in r for r in est.reasons)


def test_too_few_labels_for_the_shift_widen_the_interval_and_lose_trust() -> None:
    ref_s, ref_y = draw(5_000, 2)
    s, y = draw(5_000, 7, slope=0.4, intercept=1.0)
    some = np.full(len(s), np.nan)
    some[:120] = y[:120]
    tight = EstimateLimits(max_interval=0.05)  # 120 labels give an interval about 0.07 wide here
    est = estimate_performance(s, reference_scores=ref_s, reference_labels=ref_y, labels=some, limits=tight)
    assert est.method == "recalibrated" and not est.trusted
    assert any("interval of ROC AUC" in r for r in est.reasons)
    roomy = estimate_performance(s, reference_scores=ref_s, reference_labels=ref_y, labels=some)
    assert roomy.trusted


def test_importance_weighting_flags_features_outside_the_reference() -> None:
    import pandas as pd

    rng = np.random.default_rng(8)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 2_000), "month": rng.integers(1, 7, 2_000).astype(float)})
    cur = pd.DataFrame({"x": rng.normal(0.3, 1, 2_000), "month": rng.integers(7, 13, 2_000).astype(float)})
    ref_s, ref_y = draw(2_000, 9)
    s, _ = draw(2_000, 10)
    est = estimate_performance(
        s, reference_scores=ref_s, reference_labels=ref_y, reference_features=ref, current_features=cur
    )
    assert not est.trusted and any("'month' outside the reference's range" in r for r in est.reasons)
