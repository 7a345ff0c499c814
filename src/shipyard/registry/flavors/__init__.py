"""Model flavors: save a model to a directory and load it back, safely, ready to predict.

A model directory holds the library's own file (``model.skops``, ``model.ubj``, ``model.txt``,
``model.pkl`` or ``model.onnx``), an optional ``input_example.json`` and ``shipyard-model.yaml``: the
flavor, task, classes, signature, pinned requirements and the BLAKE3 digest of every file.
:func:`load_model_dir` verifies every digest before reading anything, refuses artifacts that would
import code outside the unpickle allowlist (unless ``trust=True``) and returns a :class:`LoadedModel`
whose ``predict`` checks its input against the signature. Flavors: ``sklearn`` (skops), ``xgboost``
(UBJSON), ``lightgbm`` (text), ``onnx`` (onnxruntime) and ``python_function`` (cloudpickle, scanned).
MLflow model folders get a ``shipyard-model.yaml`` naming one of these, or ``mlflow`` for folders
Shipyard refuses to load (see :mod:`~shipyard.registry.flavors.mlflow_folder`).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shipyard.config import Settings, load_settings
from shipyard.errors import AlreadyExists, InvalidInput
from shipyard.registry.flavors.base import (
    META_FILE,
    Flavor,
    LoadedModel,
    ModelMeta,
    distributions_of_modules,
    file_entries,
    pin_requirements,
    verify_files,
)
from shipyard.registry.flavors.lgbm import LightGBMFlavor
from shipyard.registry.flavors.mlflow_folder import MlflowFolderFlavor
from shipyard.registry.flavors.onnx import OnnxExport, OnnxFlavor
from shipyard.registry.flavors.pyfunc import PythonFunctionFlavor
from shipyard.registry.flavors.sklearn import SklearnFlavor
from shipyard.registry.flavors.xgb import XGBoostFlavor
from shipyard.registry.safety import build_allowlist
from shipyard.registry.signature import Signature, infer_signature, to_pandas

__all__ = [
    "FLAVORS",
    "INPUT_EXAMPLE_FILE",
    "LoadedModel",
    "ModelMeta",
    "OnnxExport",
    "detect_flavor",
    "load_model_dir",
    "read_input_example",
    "save_model_dir",
]

#: Flavor name -> class, in detection order (xgboost/lightgbm models are also scikit-learn estimators).
FLAVORS: dict[str, type[Flavor]] = {
    "xgboost": XGBoostFlavor,
    "lightgbm": LightGBMFlavor,
    "onnx": OnnxFlavor,
    "sklearn": SklearnFlavor,
    "python_function": PythonFunctionFlavor,
    "mlflow": MlflowFolderFlavor,  # an MLflow folder Shipyard keeps but does not load (never detected)
}
INPUT_EXAMPLE_FILE = "input_example.json"
_EXAMPLE_ROWS = 5


def detect_flavor(model: Any) -> str:
    """The flavor that saves ``model``.

    Example:
        >>> from sklearn.linear_model import LinearRegression
        >>> detect_flavor(LinearRegression())
        'sklearn'
    """
    for name, flavor in FLAVORS.items():
        if flavor.handles(model):
            return name
    raise InvalidInput(
        f"Cannot save a {type(model).__module__}.{type(model).__name__} as a model: it is not a "
        "scikit-learn, XGBoost, LightGBM or ONNX model and has no predict(frame) method"
    )


def _flavor(name: str) -> Flavor:
    try:
        return FLAVORS[name]()
    except KeyError:
        raise InvalidInput(f"Unknown flavor {name!r}; known flavors: {', '.join(FLAVORS)}") from None


def _sample_output(flavor: Flavor, model: Any, example: Any) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return flavor.sample_output(model, example)
    except Exception:  # the output type is a nicety: a model that cannot predict the example still saves
        return None


def save_model_dir(
    model: Any,
    path: str | os.PathLike[str],
    *,
    flavor: str | None = None,
    signature: Signature | Mapping[str, Any] | None = None,
    input_example: Any = None,
    pip_requirements: list[str] | None = None,
) -> ModelMeta:
    """Write ``model`` to the new (or empty) directory ``path`` and return its metadata.

    The flavor is detected from the model unless given. Without a ``signature`` one is inferred from
    ``input_example`` (pandas, polars, pyarrow, dict, records or numpy; its first 5 rows are also stored
    as ``input_example.json``), including the output type from the model's predictions on it.
    ``pip_requirements`` are added to (and override) the pinned versions of the flavor's libraries.

    Example:
        >>> import os, tempfile, pandas as pd
        >>> from sklearn.tree import DecisionTreeClassifier
        >>> X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
        >>> meta = save_model_dir(DecisionTreeClassifier().fit(X, [0, 0, 1, 1]),
        ...                       os.path.join(tempfile.mkdtemp(), "m"), input_example=X)
        >>> meta.flavor, meta.task, meta.classes, meta.signature.inputs[0].type
        ('sklearn', 'classification', [0, 1], 'float64')
    """
    directory = Path(path)
    if isinstance(model, LoadedModel):  # it has a predict method, but pickling it would be a poor copy
        raise InvalidInput(
            f"save_model_dir got a LoadedModel (from {model.path}): copy that directory as it is, "
            "or pass the library object, loaded.raw"
        )
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise AlreadyExists(f"Cannot save a model to {directory}: it exists and is not an empty directory")
    impl = _flavor(flavor or detect_flavor(model))
    if not impl.handles(model):
        raise InvalidInput(f"A {type(model).__name__} cannot be saved with flavor {impl.name!r}")
    example = to_pandas(input_example).head(_EXAMPLE_ROWS) if input_example is not None else None
    if isinstance(model, OnnxExport) and signature is None:
        signature = model.signature
    if signature is not None and not isinstance(signature, Signature):
        signature = Signature.from_dict(signature)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        saved = impl.save(model, directory / impl.model_file)
        if signature is None and example is not None:
            signature = infer_signature(example, _sample_output(impl, model, example), proba=saved.proba)
        if example is not None:
            (directory / INPUT_EXAMPLE_FILE).write_text(_example_json(example), encoding="utf-8")
        dists = [*impl.packages, *distributions_of_modules(saved.modules)]
        meta = ModelMeta(
            flavor=impl.name,
            model_file=impl.model_file,
            task=saved.task,
            classes=saved.classes,
            signature=signature,
            requirements=pin_requirements(dists, pip_requirements),
            trusted_types=saved.trusted_types,
            files=file_entries(directory),
            flavor_options=saved.options,
        )
        (directory / META_FILE).write_text(meta.to_yaml(), encoding="utf-8")
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)  # no half-written model directory
        raise
    return meta


def _example_json(example: Any) -> str:
    split = json.loads(example.to_json(orient="split", index=False, date_format="iso"))
    return json.dumps({"columns": split["columns"], "data": split["data"]}, ensure_ascii=False)


def read_input_example(path: str | os.PathLike[str]) -> Any:
    """The stored input example of a model directory as a pandas DataFrame, or None when there is none."""
    import pandas as pd

    file = Path(path) / INPUT_EXAMPLE_FILE
    if not file.is_file():
        return None
    data = json.loads(file.read_text(encoding="utf-8"))
    return pd.DataFrame(data["data"], columns=data["columns"])


def load_model_dir(
    path: str | os.PathLike[str],
    *,
    trust: bool = False,
    allowlist: list[str] | str | None = None,
    settings: Settings | None = None,
    signature: Signature | Mapping[str, Any] | None = None,
) -> LoadedModel:
    """Verify and load a model directory written by :func:`save_model_dir`.

    Every file's BLAKE3 digest is checked first (:class:`~shipyard.errors.DigestMismatch` names the
    file). Artifacts that import code (skops types, pickles) are checked against the unpickle allowlist:
    the built-in :data:`~shipyard.registry.safety.DEFAULT_UNPICKLE_ALLOWLIST`, plus the
    ``unpickle_allowlist`` setting, plus ``allowlist`` (module names or ``module.name``). Anything else
    raises :class:`~shipyard.errors.UnsafeModel` unless ``trust=True``; then
    :attr:`LoadedModel.trusted_unsafe` lists what was trusted. ``signature`` (a :class:`Signature` or
    its dict) replaces the one stored in the directory, e.g. a registered version's.

    Example:
        >>> import os, tempfile, pandas as pd
        >>> from sklearn.linear_model import LogisticRegression
        >>> X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
        >>> d = os.path.join(tempfile.mkdtemp(), "m")
        >>> _ = save_model_dir(LogisticRegression().fit(X, [0, 0, 1, 1]), d, input_example=X)
        >>> load_model_dir(d).predict_proba(X).shape
        (4, 2)
    """
    directory = Path(path)
    meta = ModelMeta.read(directory)
    impl = _flavor(meta.flavor)
    verify_files(directory, meta)
    configured = (settings or load_settings()).unpickle_allowlist
    allowed = build_allowlist([*configured.split(","), *_entries(allowlist)])
    backend = impl.load(directory / meta.model_file, meta, trust=trust, allowlist=allowed)
    loaded = LoadedModel(meta, backend, directory)
    if signature is not None:
        loaded.signature = signature
    return loaded


def _entries(allowlist: list[str] | str | None) -> list[str]:
    if allowlist is None:
        return []
    return allowlist.split(",") if isinstance(allowlist, str) else list(allowlist)
