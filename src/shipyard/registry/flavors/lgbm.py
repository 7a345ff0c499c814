"""The ``lightgbm`` flavor: ``LGBMClassifier`` / ``LGBMRegressor`` and raw ``Booster``, saved as
LightGBM's native text model (no pickle).

Both come back as a ``lightgbm.Booster`` (``raw``), which predicts probabilities for classification
objectives; ``predict`` turns them into the labels in ``classes`` (which may be strings, as
``LGBMClassifier`` allows) and ``predict_proba`` returns the ``(rows, classes)`` matrix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shipyard.errors import InvalidInput
from shipyard.registry.flavors.base import Backend, Flavor, ModelMeta, SavedModel, Task, jsonable_classes

__all__ = ["LightGBMFlavor"]

_CLASSIFY = ("binary", "cross_entropy", "xentropy", "multiclass", "softmax", "multiclassova", "ova")


class LightGBMFlavor(Flavor):
    name = "lightgbm"
    model_file = "model.txt"
    packages = ("lightgbm", "numpy", "pandas")
    imports = ("lightgbm",)
    extra = "lightgbm"

    @classmethod
    def handles(cls, model: Any) -> bool:
        return type(model).__module__.split(".", 1)[0] == "lightgbm"

    def sample_output(self, model: Any, example: pd.DataFrame) -> Any:
        return None if type(model).__name__ == "Booster" else model.predict(example)

    def _save(self, model: Any, path: Path) -> SavedModel:
        import lightgbm

        kind = type(model).__name__
        if isinstance(model, lightgbm.Booster):
            booster = model
            objective = str(booster.params.get("objective", "regression"))
        elif hasattr(model, "booster_"):
            booster = model.booster_
            objective = str(getattr(model, "objective_", None) or booster.params.get("objective"))
        else:
            raise InvalidInput(
                f"The lightgbm flavor saves fitted LGBMClassifier, LGBMRegressor and Booster, not {kind}"
            )
        booster.save_model(str(path))
        task: Task = "classification" if objective in _CLASSIFY else "regression"
        classes: list[Any] | None = None
        if task == "classification":
            classes = jsonable_classes(getattr(model, "classes_", None))
            if classes is None:  # a raw Booster: classes are the indices
                per_iteration = booster.num_model_per_iteration()
                classes = list(range(2 if per_iteration == 1 else per_iteration))
        options = {"kind": kind, "objective": objective}
        return SavedModel(task=task, classes=classes, options=options, proba=task == "classification")

    def _load(self, path: Path, meta: ModelMeta, *, trust: bool, allowlist: frozenset[str]) -> Backend:
        import lightgbm

        booster = lightgbm.Booster(model_file=str(path))
        booster_predict = booster.predict

        def raw_predict(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
            return np.asarray(booster_predict(frame))

        if meta.task != "classification":
            return Backend(booster, raw_predict)
        classes = np.asarray(meta.classes if meta.classes is not None else [0, 1])

        def predict_proba(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
            out = raw_predict(frame)
            return np.column_stack([1.0 - out, out]) if out.ndim == 1 else out

        def predict(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
            out = raw_predict(frame)
            index = (out > 0.5).astype(np.intp) if out.ndim == 1 else out.argmax(axis=1)
            return classes[index]  # type: ignore[no-any-return]

        return Backend(booster, predict, predict_proba)
