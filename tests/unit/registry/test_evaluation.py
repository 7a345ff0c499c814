"""Evaluation: metrics equal scikit-learn's on the same predictions, fairness gaps equal hand computations,
bad input is refused with a precise message, and the report survives JSON."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from shipyard.errors import InvalidInput, MissingExtra
from shipyard.registry.evaluation import EvaluationReport, evaluate_model, evaluate_predictions
from shipyard.registry.evaluation.fairness import demographic_parity_difference, equalized_odds_difference
from shipyard.registry.evaluation.metrics import expected_calibration_error

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def cancer() -> tuple[RandomForestClassifier, pd.DataFrame]:
    """A forest trained on half of the breast-cancer data, and the other half (with a sensitive column)."""
    frame = load_breast_cancer(as_frame=True).frame
    frame["size"] = np.where(frame["mean area"] > frame["mean area"].median(), "large", "small")
    train, test = frame.iloc[::2], frame.iloc[1::2].reset_index(drop=True)
    features = [c for c in frame.columns if c not in ("target", "size")]
    model = RandomForestClassifier(n_estimators=30, random_state=0).fit(train[features], train["target"])
    return model, test


@pytest.fixture(scope="module")
def cancer_report(cancer: tuple[RandomForestClassifier, pd.DataFrame]) -> EvaluationReport:
    model, test = cancer
    return evaluate_model(model, test, "target", sensitive=["size"])


def _features(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["target", "size"])


# --- binary classification ---


def test_binary_metrics_equal_sklearns_on_the_same_predictions(
    cancer: tuple[RandomForestClassifier, pd.DataFrame], cancer_report: EvaluationReport
) -> None:
    model, test = cancer
    y, pred, proba = (
        test["target"],
        model.predict(_features(test)),
        model.predict_proba(_features(test))[:, 1],
    )
    m = cancer_report.metrics
    assert cancer_report.task == "classification" and cancer_report.n_rows == len(test)
    assert cancer_report.classes == [0, 1] and cancer_report.positive_label == 1
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, proba))


def test_ece_is_the_row_weighted_gap_between_observed_and_predicted_rate_over_ten_bins(
    cancer: tuple[RandomForestClassifier, pd.DataFrame], cancer_report: EvaluationReport
) -> None:
    model, test = cancer
    y, proba = test["target"].to_numpy(), model.predict_proba(_features(test))[:, 1]
    expected = 0.0
    for b in range(10):
        low, high = b / 10, (b + 1) / 10
        in_bin = (proba >= low) & ((proba < high) if b < 9 else (proba <= high))
        if in_bin.any():
            expected += in_bin.mean() * abs(y[in_bin].mean() - proba[in_bin].mean())
    assert cancer_report.metrics["ece"] == pytest.approx(expected)
    assert expected_calibration_error(np.array([1, 0]), np.array([1.0, 0.0])) == 0.0


def test_positive_label_picks_the_class_precision_and_recall_are_about(
    cancer: tuple[RandomForestClassifier, pd.DataFrame],
) -> None:
    model, test = cancer
    y, pred = test["target"], model.predict(_features(test))
    report = evaluate_model(model, test, "target", positive_label=0, explain=False, plots=False)
    assert report.positive_label == 0
    assert report.metrics["precision"] == pytest.approx(skm.precision_score(y, pred, pos_label=0))
    assert report.metrics["recall"] == pytest.approx(skm.recall_score(y, pred, pos_label=0))
    proba0 = model.predict_proba(_features(test))[:, 0]
    assert report.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y == 0, proba0))


def test_polars_data_and_a_sensitive_dataframe_are_accepted(
    cancer: tuple[RandomForestClassifier, pd.DataFrame], cancer_report: EvaluationReport
) -> None:
    import polars as pl

    model, test = cancer
    from_polars = evaluate_model(model, pl.from_pandas(test), "target", sensitive=["size"], explain=False)
    assert from_polars.metrics == cancer_report.metrics and from_polars.groups == cancer_report.groups
    pred = model.predict(_features(test))
    direct = evaluate_predictions(test["target"], pred, sensitive=test[["size"]], plots=False)
    assert direct.groups == cancer_report.groups


def test_string_labels_default_to_the_greater_class_as_positive() -> None:
    y_true = ["no", "yes", "yes", "no", "yes", "no"]
    y_pred = ["no", "yes", "no", "no", "yes", "yes"]
    report = evaluate_predictions(y_true, y_pred, plots=False)
    assert report.task == "classification" and report.positive_label == "yes"
    assert report.metrics["precision"] == pytest.approx(skm.precision_score(y_true, y_pred, pos_label="yes"))
    assert any("inferred as classification" in note for note in report.notes)


def test_model_without_predict_proba_gets_label_metrics_and_a_note(
    cancer: tuple[RandomForestClassifier, pd.DataFrame],
) -> None:
    model, test = cancer

    class LabelsOnly:
        def predict(self, df: pd.DataFrame) -> Any:
            return model.predict(df)

    report = evaluate_model(
        LabelsOnly(), test, "target", feature_columns=list(_features(test).columns), explain=False
    )
    assert "accuracy" in report.metrics and "roc_auc" not in report.metrics and "ece" not in report.metrics
    assert any("no predict_proba" in note for note in report.notes)
    assert "roc.png" not in report.plots and "confusion.png" in report.plots


# --- fairness ---


@pytest.fixture(scope="module")
def biased() -> tuple[DecisionTreeClassifier, pd.DataFrame]:
    """A tree that learnt a harsher threshold for group b: same score x, fewer positive predictions."""
    rng = np.random.default_rng(7)
    n = 2_000
    group = rng.choice(["a", "b"], size=n, p=[0.6, 0.4])
    x = rng.normal(size=n)
    is_b = (group == "b").astype(int)
    noisy = x + rng.normal(scale=0.3, size=n)  # the labels are noisy, so TPR/FPR differ from 0/1
    y = np.where(is_b == 1, noisy > 1.0, noisy > 0.0).astype(int)
    frame = pd.DataFrame({"x": x, "is_b": is_b, "group": group, "target": y})
    model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(frame[["x", "is_b"]], frame["target"])
    return model, frame


def test_demographic_parity_difference_is_the_selection_rate_gap_computed_by_hand(
    biased: tuple[DecisionTreeClassifier, pd.DataFrame],
) -> None:
    model, frame = biased
    pred = model.predict(frame[["x", "is_b"]])
    rate_a = pred[frame["group"] == "a"].sum() / (frame["group"] == "a").sum()
    rate_b = pred[frame["group"] == "b"].sum() / (frame["group"] == "b").sum()
    report = evaluate_model(model, frame, "target", sensitive=["group"], explain=False, plots=False)
    assert rate_a - rate_b > 0.2  # the setup is biased indeed
    assert report.groups["group"]["a"]["selection_rate"] == pytest.approx(rate_a, abs=1e-15)
    assert report.groups["group"]["b"]["selection_rate"] == pytest.approx(rate_b, abs=1e-15)
    assert report.fairness["group"]["demographic_parity_difference"] == pytest.approx(
        rate_a - rate_b, abs=1e-15
    )


def test_equalized_odds_difference_is_the_larger_of_the_tpr_and_fpr_gaps(
    biased: tuple[DecisionTreeClassifier, pd.DataFrame],
) -> None:
    model, frame = biased
    df = frame.assign(pred=model.predict(frame[["x", "is_b"]]))
    tpr = df[df.target == 1].groupby("group")["pred"].mean()
    fpr = df[df.target == 0].groupby("group")["pred"].mean()
    expected = max(tpr.max() - tpr.min(), fpr.max() - fpr.min())
    report = evaluate_model(model, frame, "target", sensitive=["group"], explain=False, plots=False)
    assert 0 < expected < 1
    assert report.fairness["group"]["equalized_odds_difference"] == pytest.approx(expected, abs=1e-12)
    for name in ("a", "b"):
        assert report.groups["group"][name]["tpr"] == pytest.approx(tpr[name], abs=1e-12)
        assert report.groups["group"][name]["fpr"] == pytest.approx(fpr[name], abs=1e-12)


def test_fairness_functions_on_a_hand_counted_example() -> None:
    # group 0: 10 rows, 6 predicted positive; group 1: 4 rows, 1 predicted positive -> DPD = 0.6 - 0.25
    codes = np.array([0] * 10 + [1] * 4)
    pred = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0] + [1, 0, 0, 0])
    true = np.array([1, 1, 1, 1, 0, 0, 1, 0, 0, 0] + [1, 1, 0, 0])
    assert demographic_parity_difference(pred, codes) == pytest.approx(0.35)
    # TPR: 4/5 vs 1/2 (gap 0.3); FPR: 2/5 vs 0/2 (gap 0.4)
    assert equalized_odds_difference(true, pred, codes) == pytest.approx(0.4)
    report = evaluate_predictions(true, pred, sensitive={"g": codes}, plots=False)
    assert report.fairness["g"]["demographic_parity_difference"] == pytest.approx(0.35)
    assert report.fairness["g"]["equalized_odds_difference"] == pytest.approx(0.4)


def test_per_group_metrics_equal_sklearns_on_each_groups_rows(
    cancer: tuple[RandomForestClassifier, pd.DataFrame], cancer_report: EvaluationReport
) -> None:
    model, test = cancer
    pred = model.predict(_features(test))
    for name in ("large", "small"):
        rows = (test["size"] == name).to_numpy()
        group = cancer_report.groups["size"][name]
        assert group["n"] == rows.sum()
        assert group["accuracy"] == pytest.approx(skm.accuracy_score(test["target"][rows], pred[rows]))
        assert group["tpr"] == pytest.approx(skm.recall_score(test["target"][rows], pred[rows]))
        assert group["selection_rate"] == pytest.approx(pred[rows].mean())


def test_nulls_form_their_own_group_and_small_groups_are_flagged(
    cancer: tuple[RandomForestClassifier, pd.DataFrame],
) -> None:
    model, test = cancer
    site = pd.Series(["north"] * len(test), dtype=object)
    site.iloc[:5] = None
    site.iloc[5:8] = "island"
    report = evaluate_model(model, test.assign(site=site), "target", sensitive=["site"], explain=False)
    groups = report.groups["site"]
    assert set(groups) == {"<null>", "island", "north"}
    assert groups["<null>"]["n"] == 5 and groups["island"]["n"] == 3
    small = [note for note in report.notes if "fewer than 10 rows" in note]
    assert len(small) == 1 and "'<null>' (5)" in small[0] and "'island' (3)" in small[0]


def test_a_group_without_positives_has_no_tpr_and_counts_as_zero_in_the_tpr_gap() -> None:
    true = np.array([1, 0, 1, 0, 0, 0])
    pred = np.array([1, 1, 0, 0, 1, 0])
    groups = np.array(["a", "a", "a", "b", "b", "b"])
    report = evaluate_predictions(true, pred, sensitive={"g": groups}, plots=False)
    assert "tpr" not in report.groups["g"]["b"]
    # FPR: a 1/1, b 1/3 -> 2/3; TPR: a 1/2, b counts as 0 (fairlearn) -> 1/2
    assert report.fairness["g"]["equalized_odds_difference"] == pytest.approx(2 / 3)


# --- regression and multiclass ---


@pytest.fixture(scope="module")
def diabetes() -> tuple[Ridge, pd.DataFrame]:
    frame = load_diabetes(as_frame=True).frame
    frame["sex_group"] = np.where(frame["sex"] > 0, "m", "f")
    features = [c for c in frame.columns if c not in ("target", "sex_group")]
    return Ridge(alpha=0.1).fit(frame[features][::2], frame["target"][::2]), frame.iloc[1::2]


def test_regression_metrics_equal_sklearns(diabetes: tuple[Ridge, pd.DataFrame]) -> None:
    model, test = diabetes
    report = evaluate_model(model, test, "target", sensitive=["sex_group"], explain=False)
    pred, y = model.predict(test.drop(columns=["target", "sex_group"])), test["target"]
    assert report.task == "regression"
    assert report.metrics["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert report.metrics["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred))
    assert report.metrics["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert report.metrics["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred))
    maes = {g: skm.mean_absolute_error(y[test.sex_group == g], pred[test.sex_group == g]) for g in ("f", "m")}
    assert report.groups["sex_group"]["m"]["mae"] == pytest.approx(maes["m"])
    assert report.fairness["sex_group"] == {"mae_gap": pytest.approx(abs(maes["m"] - maes["f"]))}
    assert report.plots["residuals.png"].startswith(PNG_SIGNATURE)
    assert report.plots["fairness.png"].startswith(PNG_SIGNATURE)


def test_mape_skips_zero_targets_and_says_how_many() -> None:
    report = evaluate_predictions([0.0, 2.0, 4.0, 0.0], [1.0, 1.0, 5.0, 0.5], task="regression", plots=False)
    assert report.metrics["mape"] == pytest.approx((0.5 + 0.25) / 2)
    assert any("2 row(s) whose target is zero" in note for note in report.notes)


def test_multiclass_metrics_are_macro_averages_and_ovr_auc() -> None:
    frame = load_iris(as_frame=True).frame
    features = [c for c in frame.columns if c != "target"]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(
        frame[features][::2], frame["target"][::2]
    )
    test = frame.iloc[1::2]
    report = evaluate_model(model, test, "target", explain=False)
    pred, proba, y = model.predict(test[features]), model.predict_proba(test[features]), test["target"]
    assert report.classes == [0, 1, 2] and report.positive_label is None
    assert report.metrics["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert report.metrics["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert report.metrics["precision"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert report.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    assert report.metrics["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert "brier" not in report.metrics and "roc.png" not in report.plots
    assert report.plots["confusion.png"].startswith(PNG_SIGNATURE)


def test_multiclass_fairness_compares_one_class_against_the_rest_when_asked() -> None:
    true = np.array(["cat", "dog", "emu", "cat", "dog", "emu"])
    pred = np.array(["cat", "cat", "emu", "dog", "dog", "cat"])
    groups = {"g": ["a", "a", "a", "b", "b", "b"]}
    plain = evaluate_predictions(true, pred, sensitive=groups, plots=False)
    assert set(plain.fairness["g"]) == {"accuracy_gap"}
    assert any("positive_label=" in note for note in plain.notes)
    one = evaluate_predictions(true, pred, sensitive=groups, positive_label="cat", plots=False)
    # selection rate of "cat": a 2/3, b 1/3
    assert one.fairness["g"]["demographic_parity_difference"] == pytest.approx(1 / 3)


# --- task inference ---


def test_task_comes_from_model_metadata_before_the_target() -> None:
    class Meta:
        task = "regression"

    class Counts:
        metadata = Meta()

        def predict(self, df: pd.DataFrame) -> Any:
            return df["x"].to_numpy() + 1

    frame = pd.DataFrame({"x": [1, 2, 3, 4], "target": [1, 2, 4, 4]})
    assert evaluate_model(Counts(), frame, "target", explain=False, plots=False).task == "regression"
    integers = evaluate_predictions([0, 1, 2, 1], [0, 1, 1, 1], plots=False)
    assert integers.task == "classification"
    floats = evaluate_predictions([0.5, 1.5, 2.5], [0.4, 1.6, 2.0], plots=False)
    assert floats.task == "regression"


# --- bad input ---


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "label"}, "Target column 'label' is not in the evaluation data"),
        ({"sensitive": ["region"]}, "Sensitive column(s) ['region'] are not in the evaluation data"),
        ({"sensitive": "size"}, "sensitive must be a list of column names"),
        ({"task": "ranking"}, "Unknown task 'ranking'"),
        ({"positive_label": 7}, "positive_label 7 is not one of the classes [0, 1]"),
        ({"feature_columns": ["mean radius", "colour"]}, "Feature column(s) ['colour'] from feature_columns"),
    ],
)
def test_bad_arguments_are_refused_with_what_where_and_how_to_fix(
    cancer: tuple[RandomForestClassifier, pd.DataFrame], kwargs: dict[str, Any], message: str
) -> None:
    model, test = cancer
    args: dict[str, Any] = {"target": "target", "explain": False, "plots": False} | kwargs
    with pytest.raises(InvalidInput) as info:
        evaluate_model(model, test, **args)
    assert message in info.value.message


def test_empty_data_and_null_targets_are_refused(cancer: tuple[RandomForestClassifier, pd.DataFrame]) -> None:
    model, test = cancer
    with pytest.raises(InvalidInput, match="empty data"):
        evaluate_model(model, test.iloc[:0], "target")
    nulls = test.assign(target=test["target"].astype("Int64"))
    nulls.loc[[3, 9, 27], "target"] = pd.NA
    with pytest.raises(InvalidInput, match=r"'target' has 3 null value\(s\) in 284 rows.*dropna"):
        evaluate_model(model, nulls, "target")


def test_signature_columns_must_be_in_the_data() -> None:
    class Spec:
        name = "speed"

    class Signature:
        inputs = [Spec()]

    class Model:
        signature = Signature()

        def predict(self, df: pd.DataFrame) -> Any:
            return np.zeros(len(df))

    with pytest.raises(InvalidInput, match=r"\['speed'\] from the model's signature"):
        evaluate_model(Model(), pd.DataFrame({"x": [1.0], "target": [1.0]}), "target")


def test_continuous_predictions_for_a_classification_task_are_refused() -> None:
    with pytest.raises(InvalidInput, match="predictions are continuous"):
        evaluate_predictions([0, 1, 1], [0.2, 0.9, 0.7], task="classification", plots=False)


def test_a_sensitive_column_with_too_many_groups_is_refused() -> None:
    with pytest.raises(InvalidInput, match="201 distinct values.*at most 200 groups"):
        evaluate_predictions(np.arange(201.0), np.arange(201.0), sensitive={"id": np.arange(201)})


def test_missing_sklearn_raises_missing_extra_with_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(MissingExtra, match=r"pip install 'shipyard\[sklearn\]'"):
        evaluate_predictions([1.0, 2.0], [1.0, 2.0])


# --- the report ---


def test_to_dict_round_trips_through_json_without_the_png_bytes(cancer_report: EvaluationReport) -> None:
    data = json.loads(json.dumps(cancer_report.to_dict(), allow_nan=False))
    assert data["plot_names"] == sorted(cancer_report.plots)
    again = EvaluationReport.from_dict(data)
    assert again == dataclasses.replace(cancer_report, plots={})
    assert again.to_dict() == data | {"plot_names": []}


def test_summary_names_the_task_metrics_fairness_and_top_features(cancer_report: EvaluationReport) -> None:
    text = cancer_report.summary()
    assert text.startswith("classification of 'target' on 284 rows (binary, positive label 1)")
    assert "accuracy 0." in text and "fairness by 'size' (2 groups): demographic parity difference" in text
    assert "top features: " in text


def test_unusable_probabilities_are_left_out_with_a_note_and_float32_ones_are_renormalised() -> None:
    true, pred = [0, 1, 2, 1], [0, 1, 1, 1]
    bad = evaluate_predictions(true, pred, proba=[[1.2, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0]], plots=False)
    assert "log_loss" not in bad.metrics and bad.metrics["accuracy"] == 0.75
    assert "Probability metrics omitted: predict_proba returned values outside [0, 1]." in bad.notes
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.1, 0.6, 0.3], [0.2, 0.7, 0.1]], dtype=np.float32)
    single = evaluate_predictions(true, pred, proba=proba, plots=False)  # no "do not sum to one" warning
    exact = proba.astype(float) / proba.astype(float).sum(axis=1, keepdims=True)
    assert single.metrics["log_loss"] == pytest.approx(skm.log_loss(true, exact))
