"""Every fairness number Shipyard reports equals fairlearn's, on a real dataset and on the edge cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

fairlearn_metrics = pytest.importorskip("fairlearn.metrics")
sklego_datasets = pytest.importorskip("sklego.datasets")

from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from shipyard.registry.evaluation import EvaluationReport, evaluate_model, evaluate_predictions  # noqa: E402
from shipyard.registry.evaluation.fairness import (  # noqa: E402
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    group_codes,
)

FAIRLEARN = {
    "demographic_parity_difference": fairlearn_metrics.demographic_parity_difference,
    "demographic_parity_ratio": fairlearn_metrics.demographic_parity_ratio,
    "equalized_odds_difference": fairlearn_metrics.equalized_odds_difference,
    "equalized_odds_ratio": fairlearn_metrics.equalized_odds_ratio,
}
SHIPYARD = {
    "demographic_parity_difference": lambda y, p, c: demographic_parity_difference(p, c),
    "demographic_parity_ratio": lambda y, p, c: demographic_parity_ratio(p, c),
    "equalized_odds_difference": equalized_odds_difference,
    "equalized_odds_ratio": equalized_odds_ratio,
}


def fairlearn_numbers(y: np.ndarray, pred: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    return {name: float(fn(y, pred, sensitive_features=groups)) for name, fn in FAIRLEARN.items()}


def assert_report_matches_fairlearn(
    report: EvaluationReport, column: str, y: np.ndarray, pred: np.ndarray, groups: np.ndarray
) -> None:
    """The report's four numbers equal fairlearn's; a ratio fairlearn gives as NaN is absent."""
    expected = fairlearn_numbers(y, pred, groups)
    reported = report.fairness[column]
    for name, value in expected.items():
        if math.isnan(value):
            assert name not in reported, name
        else:
            assert reported[name] == pytest.approx(value, abs=1e-12), name
    codes, _ = group_codes(groups)
    for name, fn in SHIPYARD.items():
        mine, theirs = fn(y, pred, codes), expected[name]
        assert (math.isnan(mine) and math.isnan(theirs)) or mine == pytest.approx(theirs, abs=1e-12), name


# --- a real dataset: scikit-lego's arrests (Toronto, 5,226 arrests for marijuana possession) ---


@pytest.fixture(scope="module")
def arrests() -> tuple[pd.DataFrame, EvaluationReport]:
    data = sklego_datasets.load_arrests(as_frame=True)
    data = data.assign(
        released=(data["released"] == "Yes").astype(int),
        employed=(data["employed"] == "Yes").astype(int),
        citizen=(data["citizen"] == "Yes").astype(int),
        colour_sex=data["colour"] + "/" + data["sex"],
    )
    features = ["year", "age", "employed", "citizen", "checks"]
    train, test = train_test_split(data, test_size=0.5, random_state=0, stratify=data["released"])
    model = LogisticRegression(max_iter=1_000).fit(train[features], train["released"])
    test = test.assign(pred=model.predict(test[features]))
    report = evaluate_model(
        model,
        test[[*features, "released", "colour", "sex", "colour_sex"]],
        "released",
        sensitive=["colour", "sex", "colour_sex"],
        feature_columns=features,
        explain=False,
        plots=False,
    )
    return test, report


@pytest.mark.parametrize("column", ["colour", "sex", "colour_sex"])
def test_arrests_fairness_numbers_equal_fairlearns(
    arrests: tuple[pd.DataFrame, EvaluationReport], column: str
) -> None:
    test, report = arrests
    y, pred, groups = test["released"].to_numpy(), test["pred"].to_numpy(), test[column].to_numpy()
    assert 0 < report.fairness[column]["demographic_parity_difference"] < 1  # a real, non-trivial gap
    assert_report_matches_fairlearn(report, column, y, pred, groups)


def test_arrests_per_group_rates_equal_fairlearns_metric_frame(
    arrests: tuple[pd.DataFrame, EvaluationReport],
) -> None:
    test, report = arrests
    frame = fairlearn_metrics.MetricFrame(
        metrics={
            "selection_rate": fairlearn_metrics.selection_rate,
            "tpr": fairlearn_metrics.true_positive_rate,
            "fpr": fairlearn_metrics.false_positive_rate,
        },
        y_true=test["released"],
        y_pred=test["pred"],
        sensitive_features=test["colour_sex"],
    )
    for group, row in frame.by_group.iterrows():
        for metric, value in row.items():
            assert report.groups["colour_sex"][str(group)][str(metric)] == pytest.approx(value, abs=1e-12)


# --- edge cases ---

EDGE_CASES = {
    # b has no actual positives: fairlearn counts its TPR as 0, so the TPR gap is a's 0.5
    "a group with no positives": ([1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], list("aaaabb")),
    # b has no actual negatives: its FPR counts as 0
    "a group with no negatives": ([1, 0, 0, 0, 1, 1], [1, 1, 0, 0, 1, 0], list("aaaabb")),
    "a group with no predicted positives": ([1, 0, 1, 1, 0, 1], [1, 1, 0, 0, 0, 0], list("aaabbb")),
    "no predicted positives at all": ([1, 0, 1, 1, 0, 1], [0, 0, 0, 0, 0, 0], list("aaabbb")),
    "only predicted positives": ([1, 0, 1, 1, 0, 1], [1, 1, 1, 1, 1, 1], list("aaabbb")),
    "no actual positives at all": ([0, 0, 0, 0, 0, 0], [1, 0, 0, 1, 1, 0], list("aaabbb")),
    "a single group": ([1, 0, 1, 0, 1, 1], [1, 1, 0, 0, 1, 0], list("aaaaaa")),
    "a single group with no predicted positives": ([1, 0, 1, 0], [0, 0, 0, 0], list("aaaa")),
    "three groups, one of a single row": ([1, 0, 1, 0, 1, 0, 1], [1, 0, 0, 0, 1, 1, 1], list("aabbbbc")),
}


@pytest.mark.parametrize("case", list(EDGE_CASES))
def test_edge_cases_equal_fairlearn(case: str) -> None:
    y, pred, groups = (np.array(values) for values in EDGE_CASES[case])
    report = evaluate_predictions(y, pred, sensitive={"g": groups}, positive_label=1, plots=False)
    assert_report_matches_fairlearn(report, "g", y, pred, groups)


def test_a_group_without_positives_counts_as_a_tpr_of_zero_like_fairlearn() -> None:
    y, pred, groups = (np.array(values) for values in EDGE_CASES["a group with no positives"])
    report = evaluate_predictions(y, pred, sensitive={"g": groups}, positive_label=1, plots=False)
    assert report.fairness["g"]["equalized_odds_difference"] == 0.5  # was 0.0 when b was left out
    assert report.fairness["g"]["equalized_odds_ratio"] == 0.0
    assert (
        "tpr" not in report.groups["g"]["b"]
    )  # per group it is undefined, and the report says how it counts
    assert any("no actual positives ('b')" in note and "counts as 0" in note for note in report.notes)


def test_ratios_are_reported_and_left_out_when_fairlearn_has_nan() -> None:
    y, pred, groups = (np.array(values) for values in EDGE_CASES["a group with no predicted positives"])
    report = evaluate_predictions(y, pred, sensitive={"g": groups}, positive_label=1, plots=False)
    assert report.fairness["g"]["demographic_parity_ratio"] == 0.0
    y, pred, groups = (np.array(values) for values in EDGE_CASES["no predicted positives at all"])
    none = evaluate_predictions(y, pred, sensitive={"g": groups}, positive_label=1, plots=False)
    assert "demographic_parity_ratio" not in none.fairness["g"]
    assert "equalized_odds_ratio" not in none.fairness["g"]
    assert none.fairness["g"]["demographic_parity_difference"] == 0.0
    assert any("demographic_parity_ratio is undefined" in note for note in none.notes)


def test_string_labels_and_groups_give_fairlearns_numbers() -> None:
    rng = np.random.default_rng(3)
    y = rng.choice(["yes", "no"], size=300)
    pred = np.where(rng.random(300) < 0.8, y, np.where(y == "yes", "no", "yes"))
    groups = rng.choice(["north", "south", None], size=300, p=[0.5, 0.45, 0.05])
    report = evaluate_predictions(y, pred, sensitive={"region": groups}, positive_label="yes", plots=False)
    names = np.array(["<null>" if g is None else g for g in groups])
    assert_report_matches_fairlearn(
        report, "region", (y == "yes").astype(int), (pred == "yes").astype(int), names
    )


def test_random_small_groups_match_fairlearn_every_time() -> None:
    """Small groups make every edge case (no positives, no negatives, no selections) occur many times."""
    rng = np.random.default_rng(0)
    for _ in range(60):
        n = int(rng.integers(2, 14))
        y, pred = rng.integers(0, 2, size=n), rng.integers(0, 2, size=n)
        groups = rng.choice(["a", "b", "c"][: int(rng.integers(1, 4))], size=n)
        if len(np.unique(np.concatenate([y, pred]))) < 2:
            continue  # the report needs two classes to call it binary classification
        report = evaluate_predictions(y, pred, sensitive={"g": groups}, positive_label=1, plots=False)
        assert_report_matches_fairlearn(report, "g", y, pred, groups)
