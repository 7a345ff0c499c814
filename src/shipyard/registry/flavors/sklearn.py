"""The ``sklearn`` flavor: any scikit-learn estimator or pipeline, persisted with skops (no pickle).

skops records which types a file needs. At save time the types skops does not trust by default (e.g.
``sklearn.tree._tree.Tree``) are stored as ``trusted_types``; at load each one is checked against the
unpickle allowlist, and skops is then told to trust exactly those, so a RandomForest or a
ColumnTransformer pipeline round-trips without the user naming any type, while a file that needs a type
outside the allowlist is refused with :class:`~shipyard.errors.UnsafeModel` unless ``trust=True``.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shipyard.errors import UnsafeModel
from shipyard.registry.flavors.base import Backend, Flavor, ModelMeta, SavedModel, jsonable_classes
from shipyard.registry.safety import is_allowed

__all__ = ["SklearnFlavor", "task_of"]


def task_of(model: Any) -> Any:
    """``"classification"``, ``"regression"`` or None for a scikit-learn-style estimator."""
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(model):
        return "classification"
    return "regression" if is_regressor(model) else None


def _fitted_on_frames(model: Any) -> bool:
    # A model fitted on numpy warns when it is given a DataFrame; one fitted on a DataFrame checks names.
    return getattr(model, "feature_names_in_", None) is not None


class SklearnFlavor(Flavor):
    name = "sklearn"
    model_file = "model.skops"
    packages = ("scikit-learn", "skops", "numpy", "scipy", "pandas")
    imports = ("sklearn", "skops")
    extra = "sklearn"

    @classmethod
    def handles(cls, model: Any) -> bool:
        if "sklearn" not in sys.modules:
            return False
        from sklearn.base import BaseEstimator

        return isinstance(model, BaseEstimator)

    def sample_output(self, model: Any, example: pd.DataFrame) -> Any:
        data = example if _fitted_on_frames(model) else example.to_numpy()
        return model.predict(data)

    def _save(self, model: Any, path: Path) -> SavedModel:
        import skops.io

        skops.io.dump(model, path)
        trusted = skops.io.get_untrusted_types(file=path)
        task = task_of(model)
        classes = jsonable_classes(getattr(model, "classes_", None)) if task == "classification" else None
        return SavedModel(
            task=task,
            classes=classes,
            trusted_types=trusted,
            options={"fitted_on_frames": _fitted_on_frames(model)},
            modules=sorted({t.split(".", 1)[0] for t in trusted}),
            proba=hasattr(model, "predict_proba"),
        )

    def _load(self, path: Path, meta: ModelMeta, *, trust: bool, allowlist: frozenset[str]) -> Backend:
        import skops.io
        from skops.io.exceptions import UntrustedTypesFoundException

        trusted = list(meta.trusted_types or [])
        outside = [t for t in trusted if not is_allowed(t, allowlist)]
        if outside and not trust:
            raise UnsafeModel(
                f"Model file {path.name} in {path.parent} needs types outside the unpickle allowlist: "
                f"{outside}. If you trust its author, load it with trust=True (audited) or add their "
                "modules to the unpickle_allowlist setting (SHIPYARD_UNPICKLE_ALLOWLIST)",
                details={"types": outside, "file": path.name},
            )
        if trust:  # everything the file needs, even what the metadata did not record
            trusted = sorted(set(trusted) | set(skops.io.get_untrusted_types(file=path)))
            outside = [t for t in trusted if not is_allowed(t, allowlist)]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                raw = skops.io.load(path, trusted=trusted)
        except UntrustedTypesFoundException as exc:
            raise UnsafeModel(
                f"Model file {path.name} in {path.parent} needs types its metadata did not record at save "
                f"time ({exc}); it was altered after saving. Load it with trust=True only if you trust it",
                details={"file": path.name},
            ) from exc
        return _backend(raw, meta, outside if trust else [])


def _backend(raw: Any, meta: ModelMeta, trusted_unsafe: list[str]) -> Backend:
    on_frames = bool(meta.flavor_options.get("fitted_on_frames", _fitted_on_frames(raw)))
    predict_fn = raw.predict
    proba_fn = getattr(raw, "predict_proba", None) if hasattr(raw, "predict_proba") else None

    if on_frames:

        def predict(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
            return np.asarray(predict_fn(frame))

        def predict_proba(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
            return np.asarray(proba_fn(frame))  # type: ignore[misc]
    else:

        def predict(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
            return np.asarray(predict_fn(frame.to_numpy()))

        def predict_proba(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
            return np.asarray(proba_fn(frame.to_numpy()))  # type: ignore[misc]

    return Backend(raw, predict, predict_proba if proba_fn is not None else None, trusted_unsafe)
