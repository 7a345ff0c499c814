"""The ``sklearn`` flavor: any scikit-learn estimator or pipeline, persisted with skops (no pickle).

At load, skops lists the types the file needs beyond its own defaults
(``skops.io.get_untrusted_types``, e.g. ``sklearn.tree._tree.Tree``); each is checked with Shipyard's
safe-loading rule (:func:`~shipyard.registry.safety.is_allowed`, extended only by what the caller passes
or configures), and skops is told to trust exactly those. So a RandomForest or a ColumnTransformer
pipeline round-trips without the user naming any type, while a file that needs any other type is refused
with :class:`~shipyard.errors.UnsafeModel` naming it, unless ``trust=True``. The ``trusted_types`` the
model folder's YAML lists (written at save time) are informational: trust never comes from the artifact.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import blake3
import numpy as np
import pandas as pd

from shipyard.errors import DigestMismatch, UnsafeModel
from shipyard.registry.flavors.base import Backend, Flavor, ModelMeta, SavedModel, jsonable_classes
from shipyard.registry.safety import is_allowed

__all__ = ["SklearnFlavor", "task_of", "tree_problems"]


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

        data = path.read_bytes()  # one read: the bytes checked are the bytes loaded
        if blake3.blake3(data).hexdigest() != meta.files.get(path.name, {}).get("digest"):
            raise DigestMismatch(f"Model file {path.name} in {path.parent} changed while it was being loaded")
        # Trust comes from Shipyard's rule and the caller, never from the folder: meta.trusted_types is
        # written by whoever wrote the folder, so it is informational only.
        needed = sorted(skops.io.get_untrusted_types(data=data))
        outside = [t for t in needed if not is_allowed(t, allowlist)]
        if outside and not trust:
            raise UnsafeModel(
                f"Model file {path.name} in {path.parent} needs types the safe-loading rule refuses: "
                f"{outside}. Shipyard decides which types skops may construct (its allowlist, never the "
                "model folder's metadata). If you trust them, pass them when loading: "
                f"allowlist={outside!r} (or the unpickle_allowlist setting, SHIPYARD_UNPICKLE_ALLOWLIST); "
                "to load the file regardless, "
                "trust=True (recorded in the audit log)",
                details={"types": outside, "file": path.name},
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                raw = skops.io.loads(data, trusted=needed)
        except UntrustedTypesFoundException as exc:  # skops saw a type get_untrusted_types did not report
            raise UnsafeModel(
                f"Model file {path.name} in {path.parent} needs types skops did not report before loading "
                f"({exc}); load it with trust=True only if you trust it",
                details={"file": path.name},
            ) from exc
        if not trust:
            bad = tree_problems(raw)
            if bad:
                raise UnsafeModel(
                    f"Model file {path.name} in {path.parent} holds malformed trees ({'; '.join(bad[:3])}): "
                    "predicting with it could read out of bounds or loop forever. It was not written by "
                    "scikit-learn; load it with trust=True only if you know why",
                    details={"file": path.name, "problems": bad[:20]},
                )
        return _backend(raw, meta, outside if trust else [])


def _children_ok(left: Any, right: Any, size: int) -> bool:
    """Each child is a leaf marker or a later node: indices in range and no cycles."""
    own = np.arange(size)
    for child in (np.asarray(left), np.asarray(right)):
        if child.shape != (size,) or not np.all((child == -1) | ((child > own) & (child < size))):
            return False
    return True


def _tree_problem(obj: Any, n_features: int | None) -> str | None:
    """What is wrong with one sklearn ``Tree`` or HistGradientBoosting ``TreePredictor`` (None if sound).

    skops trusts ``sklearn.tree._tree.Tree`` only if told to because scikit-learn indexes its arrays
    without bounds checks; these are the invariants scikit-learn's builders guarantee.
    """
    kind = type(obj).__name__
    if kind == "Tree":
        feature = np.asarray(obj.feature)
        limit = obj.n_features if n_features is None else min(obj.n_features, n_features)
        if not _children_ok(obj.children_left, obj.children_right, int(obj.node_count)):
            return "Tree with child indices out of order or range"
        if feature.size and not np.all((feature == -2) | ((feature >= 0) & (feature < limit))):
            return "Tree with feature indices out of range"
        return None
    nodes = obj.nodes
    leaf = nodes["is_leaf"].astype(bool)
    left = np.where(leaf, -1, nodes["left"].astype(np.int64))
    right = np.where(leaf, -1, nodes["right"].astype(np.int64))
    if not _children_ok(left, right, len(nodes)):
        return "TreePredictor with child indices out of order or range"
    feature = nodes["feature_idx"][~leaf].astype(np.int64)
    if feature.size and (feature.min() < 0 or (n_features is not None and feature.max() >= n_features)):
        return "TreePredictor with feature indices out of range"
    categorical = nodes["is_categorical"].astype(bool) & ~leaf
    bitsets = len(obj.raw_left_cat_bitsets)
    if categorical.any() and nodes["bitset_idx"][categorical].max() >= bitsets:
        return "TreePredictor with category bitset indices out of range"
    return None


def tree_problems(model: Any) -> list[str]:
    """Every malformed tree inside a loaded estimator (forests, boosting, pipelines, nested meta-estimators).

    Example:
        >>> from sklearn.tree import DecisionTreeClassifier
        >>> tree_problems(DecisionTreeClassifier().fit([[0], [1]], [0, 1]))
        []
    """
    problems: list[str] = []
    seen: set[int] = set()
    stack: list[tuple[Any, int | None]] = [(model, None)]
    while stack:
        obj, n_features = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, str | bytes | int | float | bool):
            continue
        seen.add(id(obj))
        if type(obj).__name__ in ("Tree", "TreePredictor") and type(obj).__module__.startswith("sklearn."):
            problem = _tree_problem(obj, n_features)
            if problem:
                problems.append(problem)
            continue
        if isinstance(obj, np.ndarray):
            if obj.dtype == object and obj.size and not isinstance(obj.flat[0], str):  # not categories
                stack.extend((item, n_features) for item in obj.ravel())
            continue
        if isinstance(obj, list | tuple | set):
            stack.extend((item, n_features) for item in obj)
        elif isinstance(obj, dict):
            stack.extend((item, n_features) for item in obj.values())
        elif type(obj).__module__.startswith("sklearn") and hasattr(obj, "__dict__"):
            width = getattr(obj, "n_features_in_", None)
            own = width if isinstance(width, int | np.integer) and width > 0 else n_features
            stack.extend((item, None if own is None else int(own)) for item in vars(obj).values())
    return problems


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
