"""The ``xgboost`` flavor: ``XGBClassifier`` / ``XGBRegressor`` (scikit-learn API) and raw ``Booster``,
saved in XGBoost's own UBJSON format (no pickle, loadable by any XGBoost of the same or later version).

A scikit-learn-API model is loaded back into its own class, so ``predict`` and ``predict_proba`` mean
what they meant. A raw ``Booster`` of a ``binary:*`` or ``multi:softprob`` objective predicts
probabilities; here ``predict`` turns them into class labels and ``predict_proba`` returns the
``(rows, classes)`` matrix, like the scikit-learn API.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shipyard.errors import InvalidInput
from shipyard.registry.flavors.base import Backend, Flavor, ModelMeta, SavedModel, jsonable_classes

__all__ = ["XGBoostFlavor"]

_SKLEARN_CLASSES = ("XGBClassifier", "XGBRegressor", "XGBRFClassifier", "XGBRFRegressor")


def _objective(booster: Any) -> str:
    return str(json.loads(booster.save_config())["learner"]["objective"]["name"])


def _booster_task(objective: str, num_class: int) -> tuple[Any, list[Any] | None]:
    if objective.startswith("binary:"):
        return "classification", [0, 1]
    if objective.startswith("multi:"):
        return "classification", list(range(num_class))
    if objective.startswith(("reg:", "count:", "survival:")):
        return "regression", None
    return None, None


class XGBoostFlavor(Flavor):
    name = "xgboost"
    model_file = "model.ubj"
    packages = ("xgboost", "numpy", "pandas")
    imports = ("xgboost",)
    extra = "xgboost"

    @classmethod
    def handles(cls, model: Any) -> bool:
        return type(model).__module__.split(".", 1)[0] == "xgboost"

    def sample_output(self, model: Any, example: pd.DataFrame) -> Any:
        if type(model).__name__ == "Booster":
            return None
        return model.predict(example)

    def _save(self, model: Any, path: Path) -> SavedModel:
        import xgboost

        kind = type(model).__name__
        if isinstance(model, xgboost.Booster):
            booster = model
        elif kind in _SKLEARN_CLASSES:
            booster = model.get_booster()
        else:
            raise InvalidInput(
                f"The xgboost flavor saves XGBClassifier, XGBRegressor and Booster, not {kind}; "
                "save it with flavor='python_function'"
            )
        objective = _objective(booster)
        num_class = int(json.loads(booster.save_config())["learner"]["learner_model_param"]["num_class"])
        model.save_model(path)
        if kind == "Booster":
            task, classes = _booster_task(objective, num_class)
        else:
            task = "classification" if "Classifier" in kind else "regression"
            classes = jsonable_classes(getattr(model, "classes_", None)) if task == "classification" else None
        options = {"kind": kind, "objective": objective}
        modules = ["sklearn"] if kind != "Booster" else []
        return SavedModel(
            task=task, classes=classes, options=options, modules=modules, proba=task == "classification"
        )

    def _load(self, path: Path, meta: ModelMeta, *, trust: bool, allowlist: frozenset[str]) -> Backend:
        import xgboost

        kind = str(meta.flavor_options.get("kind", "Booster"))
        if kind in _SKLEARN_CLASSES:
            model = getattr(xgboost, kind)()
            model.load_model(path)
            predict_fn = model.predict
            proba_fn = getattr(model, "predict_proba", None)

            def predict(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
                return np.asarray(predict_fn(frame))

            def predict_proba(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
                return np.asarray(proba_fn(frame))  # type: ignore[misc]

            return Backend(model, predict, predict_proba if proba_fn is not None else None)
        booster = xgboost.Booster()
        booster.load_model(path)
        return _booster_backend(booster, meta)


def _booster_backend(booster: Any, meta: ModelMeta) -> Backend:
    import xgboost

    def raw_predict(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        return np.asarray(booster.predict(xgboost.DMatrix(frame, enable_categorical=True)))

    if meta.task != "classification":
        return Backend(booster, raw_predict)
    classes = np.asarray(meta.classes if meta.classes is not None else [0, 1])
    if meta.flavor_options.get("objective") == "multi:softmax":  # predicts class indices, no probabilities
        return Backend(booster, lambda frame: classes[raw_predict(frame).astype(np.intp)])

    def predict_proba(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        out = raw_predict(frame)
        return np.column_stack([1.0 - out, out]) if out.ndim == 1 else out

    def predict(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        out = raw_predict(frame)
        index = (out > 0.5).astype(np.intp) if out.ndim == 1 else out.argmax(axis=1)
        return classes[index]  # type: ignore[no-any-return]

    return Backend(booster, predict, predict_proba)
