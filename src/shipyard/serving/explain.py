"""Per-row feature attributions for ``POST /explain``.

Two methods, and the answer says which one ran:

- ``shap``: exact TreeSHAP (``shap.TreeExplainer``) when shap is installed, the model object itself is a
  tree ensemble (scikit-learn forests and boosting, XGBoost, LightGBM; not a Pipeline around one) and every
  feature is numeric. Attributions are in the model's raw output units (log-odds for boosted classifiers).
- ``occlusion``: otherwise, for any model. Each feature in turn is replaced by a baseline value (the
  median of numeric columns, the most frequent value of others, taken from the model's input example,
  else from the request itself) and the attribution is how much the score drops:
  ``score(row) - score(row with that feature at its baseline)``. The score is the probability of the
  positive class (binary classifiers), of the predicted class (multi-class), or the prediction
  (regressors). One model call covers all rows and features. It ignores interactions (they do not sum to
  the prediction like SHAP values do), but it is cheap and model-agnostic.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd

from shipyard.registry.evaluation.explain import tree_explainer
from shipyard.registry.flavors import LoadedModel

__all__ = ["MAX_EXPLAIN_ROWS", "explain_rows"]

log = logging.getLogger("shipyard.serving")

MAX_EXPLAIN_ROWS = 1_000
_TREE_TYPES = ("Forest", "Trees", "Tree", "GradientBoosting", "XGB", "LGBM", "Booster")


def explain_rows(model: LoadedModel, frame: pd.DataFrame, background: pd.DataFrame | None) -> dict[str, Any]:
    """Attributions for each row of a signature-checked ``frame`` (blocking: run it in a worker thread).

    Returns ``{"method", "target", "base_values", "attributions": [{feature: value}, ...]}``.

    Example:
        >>> explain_rows(model, frame, None)["attributions"][0]  # doctest: +SKIP
        {'dep_delay': 0.31, 'distance': -0.02, 'carrier': 0.07}
    """
    if _tree_model(model.raw) and all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes):
        try:
            return _shap(model, frame)
        except Exception as exc:  # noqa: BLE001 - no shap, or it refused this model: the fallback answers
            log.info("TreeSHAP failed on %s (%s); explaining by occlusion", type(model.raw).__name__, exc)
    return _occlusion(model, frame, background)


def _tree_model(raw: Any) -> bool:
    name = type(raw).__name__
    return any(t in name for t in _TREE_TYPES)


def _shap(model: LoadedModel, frame: pd.DataFrame) -> dict[str, Any]:
    explainer = tree_explainer(model.raw)  # raises MissingExtra without shap (shipyard[explain])
    with warnings.catch_warnings():  # shap's deprecation chatter about return shapes is not the caller's
        warnings.simplefilter("ignore")
        values = explainer.shap_values(frame)
    expected = np.atleast_1d(np.asarray(explainer.expected_value, dtype=float))
    array = np.stack(values, axis=-1) if isinstance(values, list) else np.asarray(values, dtype=float)
    target = "raw output"
    if array.ndim == 3:  # one slice per class: the predicted class's
        chosen = _class_index(model, frame, array.shape[2])
        array = array[np.arange(len(frame)), :, chosen]
        base = expected[chosen] if len(expected) > 1 else np.repeat(expected[0], len(frame))
        target = "predicted class"
    else:
        base = np.repeat(expected[-1], len(frame))
    return _answer("shap", target, base, array, list(frame.columns))


def _class_index(model: LoadedModel, frame: pd.DataFrame, n_classes: int) -> np.ndarray:
    if model.has_proba:
        return np.asarray(np.argmax(model.predict_proba(frame), axis=1))
    classes = list(model.classes or range(n_classes))
    return np.array([classes.index(p) if p in classes else 0 for p in model.predict(frame).tolist()])


def _occlusion(model: LoadedModel, frame: pd.DataFrame, background: pd.DataFrame | None) -> dict[str, Any]:
    columns = list(frame.columns)
    reference = background if background is not None and len(background) else frame
    baseline = {
        c: _baseline(reference[c]) if c in reference.columns else _baseline(frame[c]) for c in columns
    }
    n = len(frame)
    variants = [frame] + [frame.assign(**{c: _filled(frame[c], baseline[c])}) for c in columns]
    variants.append(frame.head(1).assign(**{c: _filled(frame[c].head(1), baseline[c]) for c in columns}))
    scores, target = _scores(model, pd.concat(variants, ignore_index=True), n)
    full = scores[:n]
    drops = np.stack([full - scores[(j + 1) * n : (j + 2) * n] for j in range(len(columns))], axis=1)
    base = np.repeat(scores[-1], n)
    return {**_answer("occlusion", target, base, drops, columns), "baseline": _plain(baseline)}


def _scores(model: LoadedModel, frame: pd.DataFrame, n: int) -> tuple[np.ndarray, str]:
    if model.has_proba:
        proba = np.asarray(model.predict_proba(frame), dtype=float)
        if proba.shape[1] == 2:
            return proba[:, 1], f"probability of class {(model.classes or [0, 1])[1]!r}"
        chosen = np.argmax(proba[:n], axis=1)
        blocks = len(frame) // n if n else 0
        index = np.concatenate([np.tile(chosen, blocks), chosen[:1]])[: len(frame)]
        return proba[np.arange(len(frame)), index], "probability of the predicted class"
    return np.asarray(model.predict(frame), dtype=float).reshape(len(frame)), "prediction"


def _baseline(column: pd.Series) -> Any:
    values = column.dropna()
    if not len(values):
        return None
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        median = values.median()
        return int(round(median)) if pd.api.types.is_integer_dtype(column.dtype) else float(median)
    return values.mode().iloc[0]


def _filled(column: pd.Series, value: Any) -> pd.Series:
    filled = pd.Series([value] * len(column), index=column.index)
    try:
        return filled.astype(column.dtype)
    except (TypeError, ValueError):
        return filled


def _answer(method: str, target: str, base: Any, values: np.ndarray, columns: list[str]) -> dict[str, Any]:
    rows = [
        {c: float(v) for c, v in zip(columns, row, strict=True)} for row in np.asarray(values, dtype=float)
    ]
    return {
        "method": method,
        "target": target,
        "base_values": [float(b) for b in np.asarray(base, dtype=float)],
        "attributions": rows,
    }


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.item() if hasattr(v, "item") else v for k, v in values.items()}
