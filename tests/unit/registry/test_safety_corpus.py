"""The attacker corpus: every payload fires when loaded unprotected, and Shipyard refuses every one unrun.

Also: real models of every flavor still save and load (the allowlist covers what they are made of).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from safety_corpus import Payload, build_corpus, skops_gadget

from shipyard.artifacts.blobs import hash_file
from shipyard.config import load_settings
from shipyard.errors import UnsafeModel
from shipyard.registry.flavors import load_model_dir, save_model_dir
from shipyard.registry.flavors.base import META_FILE
from shipyard.registry.safety import safe_loads, scan_pickle

NO_SETTINGS = load_settings(env={})
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Payload], Path]:
    root = tmp_path_factory.mktemp("corpus")
    marker = root / "pwned"
    return build_corpus(marker, root / "work"), marker


def _names() -> list[str]:
    with tempfile.TemporaryDirectory() as root:
        return [p.name for p in build_corpus(Path(root) / "m", Path(root) / "work")]


def test_every_payload_fires_when_loaded_without_protection(tmp_path: Path) -> None:
    """Proof that the corpus is real: plain pickle / numpy.load / joblib.load / skops run every payload."""
    script = f"""
import io, pickle, sys
from pathlib import Path
sys.path.insert(0, {str(HERE)!r})
import joblib, numpy as np, skops.io
from safety_corpus import build_corpus
root = Path({str(tmp_path)!r})
count = len(build_corpus(root / "probe", root / "probe-work"))
for i in range(count):
    p = build_corpus(root / f"m{{i}}", root / f"w{{i}}")[i]
    try:
        if p.kind == "npy":
            np.load(io.BytesIO(p.data), allow_pickle=True)
        elif p.kind == "joblib":
            joblib.load(io.BytesIO(p.data))
        elif p.kind == "skops":
            skops.io.loads(p.data, trusted=skops.io.get_untrusted_types(data=p.data))
        else:
            pickle.loads(p.data)
    except Exception:
        pass
    print(i, (root / f"m{{i}}").exists())
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    fired = dict(line.split() for line in out.stdout.splitlines())
    assert fired and all(value == "True" for value in fired.values()), out.stdout


def _pyfunc_folder_with(tmp_path: Path, data: bytes) -> Path:
    """A python_function model folder whose model.pkl an attacker replaced (digests updated to match)."""

    class Model:
        def predict(self, frame: pd.DataFrame) -> np.ndarray:
            return np.zeros(len(frame))

    folder = tmp_path / "pyfunc"
    save_model_dir(Model(), folder, flavor="python_function")
    _replace(folder, "model.pkl", data, trusted_types=None)
    return folder


def _sklearn_folder_with(tmp_path: Path, data: bytes, trusted_types: list[str]) -> Path:
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path / "sk"
    save_model_dir(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), folder)
    _replace(folder, "model.skops", data, trusted_types=trusted_types)
    return folder


def _replace(folder: Path, name: str, data: bytes, trusted_types: list[str] | None) -> None:
    (folder / name).write_bytes(data)
    meta_path = folder / META_FILE
    meta = yaml.safe_load(meta_path.read_text())
    meta["files"][name]["digest"], meta["files"][name]["size"] = hash_file(folder / name)
    if trusted_types is not None:  # the attacker writes the folder's metadata too
        meta["trusted_types"] = trusted_types
    meta_path.write_text(yaml.safe_dump(meta, sort_keys=False))


@pytest.mark.parametrize("index", range(len(_names())), ids=_names())
def test_every_payload_is_refused_and_never_fires(
    index: int, corpus: tuple[list[Payload], Path], tmp_path: Path
) -> None:
    payloads, marker = corpus
    payload = payloads[index]
    if payload.kind == "skops":
        gadget = payload.data
        folder = _sklearn_folder_with(tmp_path, gadget, trusted_types=["sklearn.datasets._base.makedirs"])
        with pytest.raises(UnsafeModel, match="safe-loading rule refuses") as exc:
            load_model_dir(folder, settings=NO_SETTINGS)
        assert exc.value.details["types"], exc.value.message
        assert "allowlist=" in exc.value.message and "trust=True" in exc.value.message
        assert not marker.exists()
        return
    assert scan_pickle(payload.data), f"the static scan missed {payload.name}"
    embedded = payload.data
    if payload.kind == "npy":
        embedded = payload.data[payload.data.index(b"\n") + 1 :]  # the pickle after the .npy header
    # The restricted unpickler refuses on its own too, without the static scan's help.
    with pytest.raises((UnsafeModel, pickle.UnpicklingError, ValueError, EOFError)):
        safe_loads(embedded)
    assert not marker.exists()
    with pytest.raises(UnsafeModel, match="Refusing to unpickle"):
        load_model_dir(_pyfunc_folder_with(tmp_path, payload.data), settings=NO_SETTINGS)
    assert not marker.exists()


def test_the_restricted_unpickler_refuses_what_only_exists_at_load_time(
    corpus: tuple[list[Payload], Path],
) -> None:
    payloads, marker = corpus
    computed = next(p for p in payloads if "computed" in p.name)
    assert scan_pickle(computed.data) == ["<STACK_GLOBAL with a computed module or name>"]
    with pytest.raises(UnsafeModel, match=r"os\.system") as exc:
        safe_loads(computed.data)  # find_class sees the name str('os') produced
    assert exc.value.details["global"] == "os.system"
    assert not marker.exists()


def test_a_skops_gadget_listed_in_the_folder_metadata_is_still_refused(tmp_path: Path) -> None:
    marker = tmp_path / "made-by-skops"
    gadget = skops_gadget("sklearn.datasets._base", "makedirs", str(marker))
    folder = _sklearn_folder_with(tmp_path, gadget, trusted_types=["sklearn.datasets._base.makedirs"])
    with pytest.raises(UnsafeModel, match=r"sklearn\.datasets\._base\.makedirs") as exc:
        load_model_dir(folder, settings=NO_SETTINGS)
    assert exc.value.details["types"] == ["sklearn.datasets._base.makedirs"]
    with pytest.raises(UnsafeModel):  # not even when the caller lists it: os.makedirs is denied everywhere
        load_model_dir(folder, allowlist=["sklearn.datasets._base.makedirs"], settings=NO_SETTINGS)
    assert not marker.exists()


# ---- real models of every flavor still load --------------------------------------------------------


@pytest.fixture(scope="module")
def flights() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame(
        {
            "carrier": rng.choice(["AA", "DL", "UA"], n),
            "origin": rng.choice(["JFK", "LGA"], n),
            "distance": rng.uniform(100, 3000, n),
            "hour": rng.integers(5, 23, n),
        }
    )
    y = ((frame["hour"] > 15) ^ (frame["carrier"] == "UA")).to_numpy().astype(int)
    return frame, y


def _pipeline(final: object) -> object:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["carrier", "origin"]),
            ("num", StandardScaler(), ["distance", "hour"]),
        ]
    )
    return Pipeline([("columns", columns), ("model", final)])


def _models() -> dict[str, tuple[str, object]]:
    import lightgbm
    import xgboost
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    return {
        "sklearn pipeline + HistGradientBoosting": (
            "sklearn",
            _pipeline(HistGradientBoostingClassifier(max_iter=10)),
        ),
        "sklearn pipeline + LogisticRegression": ("sklearn", _pipeline(LogisticRegression())),
        "pickled pipeline + HistGradientBoosting": (
            "python_function",
            _pipeline(HistGradientBoostingClassifier(max_iter=10)),
        ),
        "pickled pipeline + RandomForest": (
            "python_function",
            _pipeline(RandomForestClassifier(5, random_state=0)),
        ),
        "xgboost": ("xgboost", xgboost.XGBClassifier(n_estimators=5)),
        "pickled xgboost": ("python_function", xgboost.XGBClassifier(n_estimators=5)),
        "lightgbm": ("lightgbm", lightgbm.LGBMClassifier(n_estimators=5, verbose=-1)),
        "pickled lightgbm": ("python_function", lightgbm.LGBMClassifier(n_estimators=5, verbose=-1)),
    }


@pytest.mark.parametrize("name", list(_models()))
def test_real_models_of_every_flavor_still_load(
    name: str, flights: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    frame, y = flights
    flavor, model = _models()[name]
    data = frame if "pipeline" in name else frame[["distance", "hour"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model.fit(data, y)  # type: ignore[attr-defined]
        save_model_dir(model, tmp_path / "m", flavor=flavor, input_example=data)
        loaded = load_model_dir(tmp_path / "m", settings=NO_SETTINGS)
        expected = model.predict(data)  # type: ignore[attr-defined]
        assert loaded.flavor == flavor and loaded.trusted_unsafe == []
        assert np.array_equal(loaded.predict(data), expected)


def test_an_onnx_model_still_loads(flights: tuple[pd.DataFrame, np.ndarray], tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    from shipyard.registry.onnx_export import export_onnx

    frame, y = flights
    model = _pipeline(LogisticRegression()).fit(frame, y)  # type: ignore[attr-defined]
    save_model_dir(export_onnx(model, frame), tmp_path / "m")
    loaded = load_model_dir(tmp_path / "m", settings=NO_SETTINGS)
    assert loaded.flavor == "onnx"
    assert np.array_equal(loaded.predict(frame), model.predict(frame))


def test_a_pickled_model_loads_through_the_restricted_unpickler(tmp_path: Path) -> None:
    from sklearn.tree import DecisionTreeClassifier

    model = DecisionTreeClassifier().fit([[0.0], [1.0]], [0, 1])
    assert scan_pickle(pickle.dumps(model)) == []
    restored = safe_loads(pickle.dumps(model))
    assert isinstance(restored, DecisionTreeClassifier)
    assert restored.predict([[1.0]]).tolist() == [1]


def _zoo() -> dict[str, object]:
    import scipy.sparse as sp
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.cluster import KMeans
    from sklearn.ensemble import GradientBoostingRegressor, IsolationForest
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.gaussian_process import GaussianProcessClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import FunctionTransformer, TargetEncoder
    from sklearn.svm import SVC

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] > 0).astype(int)
    cats = pd.DataFrame({"c": rng.choice(["a", "b"], 80)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "GradientBoostingRegressor": GradientBoostingRegressor(n_estimators=3).fit(X, X[:, 0]),
            "IsolationForest": IsolationForest(n_estimators=3, random_state=0).fit(X),
            "KNN kd_tree": KNeighborsClassifier(algorithm="kd_tree").fit(X, y),
            "KNN ball_tree": KNeighborsClassifier(algorithm="ball_tree").fit(X, y),
            "SVC": SVC(probability=True).fit(X, y),
            "MLP (sgd, RandomState)": MLPClassifier(
                max_iter=3, solver="sgd", random_state=np.random.RandomState(0)
            ).fit(X, y),
            "KMeans": KMeans(2, n_init=1).fit(X),
            "GridSearchCV roc_auc": GridSearchCV(
                LogisticRegression(), {"C": [1, 2]}, cv=2, scoring="roc_auc"
            ).fit(X, y),
            "CalibratedClassifierCV": CalibratedClassifierCV(LogisticRegression(), cv=2).fit(X, y),
            "GaussianProcessClassifier": GaussianProcessClassifier().fit(X[:20], y[:20]),
            "TfidfVectorizer": TfidfVectorizer().fit(["alpha beta", "beta gamma"]),
            "FunctionTransformer(log1p)": FunctionTransformer(np.log1p).fit(np.abs(X)),
            "TargetEncoder": TargetEncoder().fit(cats, y),
            "DataFrame": pd.DataFrame(
                {
                    "s": ["x", "y"],
                    "cat": pd.Categorical(["a", "b"]),
                    "n": pd.array([1, None], dtype="Int64"),
                    "t": pd.to_datetime(["2024-01-01", "2024-06-01"]).tz_localize("UTC"),
                }
            ),
            "sparse": sp.csr_matrix(np.eye(3)),
            "Generator": np.random.default_rng(1),
        }


@pytest.mark.parametrize("protocol", [2, 5])
@pytest.mark.parametrize("name", list(_zoo()))
def test_pickles_of_real_estimators_and_data_pass_the_rule(name: str, protocol: int) -> None:
    obj = _zoo()[name]
    data = pickle.dumps(obj, protocol=protocol)
    assert scan_pickle(data) == []
    restored = safe_loads(data)
    assert type(restored) is type(obj)
    if callable(getattr(obj, "predict", None)):
        X = np.random.default_rng(2).normal(size=(5, 3))
        assert np.array_equal(restored.predict(X), obj.predict(X))  # type: ignore[attr-defined]
    elif isinstance(obj, pd.DataFrame):
        pd.testing.assert_frame_equal(restored, obj)
