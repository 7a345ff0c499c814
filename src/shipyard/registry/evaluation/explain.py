"""Which features the model leans on: permutation importance (any model) and mean |SHAP| (tree models).

Both run on a fixed random sample so that evaluating a big table stays fast and two evaluations of the same
model on the same data give the same numbers. SHAP is best effort: when shap is not installed, the model is
not a tree model TreeExplainer understands, or the features are not numeric, it is skipped with a note.

:func:`tree_explainer` is the one place shap is imported and a ``TreeExplainer`` is set up; the model
server's ``POST /explain`` (``shipyard.serving.explain``) uses it too.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from shipyard.errors import InvalidInput, MissingExtra

__all__ = [
    "IMPORTANCE_REPEATS",
    "IMPORTANCE_ROWS",
    "SEED",
    "SHAP_MIN_EXACT_ROWS",
    "SHAP_ROWS",
    "SHAP_SECONDS",
    "permutation_importance",
    "sample_rows",
    "shap_importance",
    "tree_explainer",
]

IMPORTANCE_ROWS = 2_000
IMPORTANCE_REPEATS = 5
SHAP_ROWS = 500
# Exact TreeSHAP costs O(leaves x depth^2) per tree and row: ~20 ms a row for a 100-tree forest grown on 10k
# rows, ~150 ms grown on 50k. Past a first timed batch, rows are added only while the estimated total stays
# within this budget; when fewer than SHAP_MIN_EXACT_ROWS fit, shap's fast approximation is used instead.
SHAP_SECONDS = 1.0
SHAP_MIN_EXACT_ROWS = 100
_SHAP_FIRST_BATCH = 5
SEED = 0


def sample_rows(n_rows: int, size: int, seed: int = SEED) -> np.ndarray:
    """Sorted positions of a reproducible random sample of at most ``size`` rows out of ``n_rows``.

    Example:
        >>> sample_rows(5, 10).tolist()
        [0, 1, 2, 3, 4]
    """
    if n_rows <= size:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=size, replace=False))


class _Fitted:
    """Adapter so any object with ``predict`` passes sklearn's "has fit" check; it is never refitted."""

    def __init__(self, predict: Callable[[Any], np.ndarray]) -> None:
        self._predict = predict

    def fit(self, X: Any, y: Any = None) -> _Fitted:
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self._predict(X)


def permutation_importance(
    predict: Callable[[Any], np.ndarray], X: Any, y: np.ndarray, task: str, notes: list[str]
) -> dict[str, float]:
    """Mean drop in accuracy (classification) or R² (regression) when one feature is shuffled, per feature.

    Uses ``sklearn.inspection.permutation_importance`` with 5 repeats on at most 2,000 sampled rows and a
    fixed ``random_state``. ``predict`` maps a feature frame to a 1-d array of predictions.

    Example:
        >>> import pandas as pd
        >>> X = pd.DataFrame({"a": [0, 1] * 20, "b": [0] * 40})
        >>> y = X["a"].to_numpy()
        >>> imp = permutation_importance(lambda f: f["a"].to_numpy(), X, y, "classification", [])
        >>> imp["a"] > 0.2, imp["b"]
        (True, 0.0)
    """
    from sklearn.inspection import permutation_importance as sk_permutation_importance
    from sklearn.metrics import accuracy_score, r2_score

    rows = sample_rows(len(X), IMPORTANCE_ROWS)
    if len(rows) < len(X):
        notes.append(f"Permutation importance on a random sample of {len(rows):,} of {len(X):,} rows.")
    sample_X, sample_y = X.iloc[rows], y[rows]
    metric = accuracy_score if task == "classification" else r2_score

    def score(estimator: _Fitted, features: Any, target: np.ndarray) -> float:
        return float(metric(target, estimator.predict(features)))

    result = sk_permutation_importance(
        _Fitted(predict),
        sample_X,
        sample_y,
        scoring=score,
        n_repeats=IMPORTANCE_REPEATS,
        random_state=SEED,
    )
    pairs = zip(X.columns, result.importances_mean, strict=True)
    return dict(sorted(((str(name), float(value)) for name, value in pairs), key=lambda kv: -kv[1]))


def _import_shap() -> Any:
    """Import shap, or None. Its first import trips a matplotlib PendingDeprecationWarning (shap's colormaps
    call ``Colormap.set_bad``); that is shap's business, so it is silenced for that import only. Filters are
    process-wide, hence touched only on the first import, not on every evaluation."""
    if "shap" in sys.modules:
        try:
            import shap
        except ImportError:  # sys.modules["shap"] is None: blocked on purpose
            return None
        return shap
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning, module=r"shap\.")
        try:
            import shap
        except ImportError:
            return None
    return shap


def tree_explainer(model: Any) -> Any:
    """A ``shap.TreeExplainer`` for ``model`` (the library object, e.g. ``LoadedModel.raw``).

    Raises:
        MissingExtra: shap is not installed.
        InvalidInput: TreeExplainer does not understand this model (the message says why).

    Example:
        >>> from sklearn.tree import DecisionTreeRegressor
        >>> explainer = tree_explainer(DecisionTreeRegressor().fit([[0.0], [1.0]], [0, 1]))
        >>> type(explainer).__name__
        'TreeExplainer'
    """
    shap = _import_shap()
    if shap is None:
        raise MissingExtra("SHAP needs shap, which is not installed: pip install 'shipyard[explain]'")
    try:
        return shap.TreeExplainer(model)
    except Exception as exc:  # shap raises several types for "not a model I understand"
        raise InvalidInput(
            f"TreeExplainer does not support {type(model).__name__} ({_first_line(exc)})"
        ) from exc


def shap_importance(model: Any, X: Any, notes: list[str]) -> dict[str, float] | None:
    """Mean |SHAP value| per feature from ``shap.TreeExplainer`` on at most 500 sampled rows, or None.

    ``model`` is the library object (``LoadedModel.raw`` or a raw estimator). For classifiers the mean runs
    over rows and classes. Rows past a first timed batch are explained only while the estimated time stays
    within ``SHAP_SECONDS``; when that is fewer than ``SHAP_MIN_EXACT_ROWS`` (very deep forests), the values
    come from ``shap_values(approximate=True)`` (Saabas attributions) on every sampled row instead. A note
    says which, and on how many rows.

    Example:
        >>> import pandas as pd
        >>> from sklearn.tree import DecisionTreeRegressor
        >>> X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 1.0, 1.0, 1.0]})
        >>> values = shap_importance(DecisionTreeRegressor().fit(X, [0, 1, 2, 3]), X, [])
        >>> values["a"] > 0, values["b"]
        (True, 0.0)
    """
    try:
        explainer = tree_explainer(model)
    except MissingExtra:
        notes.append("SHAP skipped: shap is not installed (pip install 'shipyard[explain]').")
        return None
    except InvalidInput as exc:
        notes.append(f"SHAP skipped: {exc.message}.")
        return None
    sample = X.iloc[sample_rows(len(X), SHAP_ROWS)]
    try:
        values = _timed_shap_values(explainer, sample, notes)
    except Exception as exc:  # e.g. non-numeric features the tree library cannot take as they are
        notes.append(
            f"SHAP skipped: TreeExplainer failed on the data ({type(exc).__name__}: {_first_line(exc)})."
        )
        return None
    magnitude = np.abs(values)
    means = magnitude.mean(axis=tuple(i for i in range(magnitude.ndim) if i != 1))
    pairs = zip(X.columns, means, strict=True)
    return dict(sorted(((str(name), float(value)) for name, value in pairs), key=lambda kv: -kv[1]))


def _timed_shap_values(explainer: Any, sample: Any, notes: list[str]) -> np.ndarray:
    """SHAP values (rows, features[, k]): exact on as many rows as the budget allows, else approximate.

    Rows go in growing chunks, each sized from the previous chunk's cost per row, so that a library with a
    large fixed cost per call (xgboost builds a DMatrix) is not mistaken for a slow one.
    """
    started = time.perf_counter()
    parts: list[np.ndarray] = []
    done, chunk = 0, _SHAP_FIRST_BATCH
    while chunk > 0:
        began = time.perf_counter()
        parts.append(_explain_rows(explainer, sample.iloc[done : done + chunk]))
        done += len(parts[-1])
        per_row = (time.perf_counter() - began) / max(len(parts[-1]), 1)
        fits = int((SHAP_SECONDS - (time.perf_counter() - started)) / max(per_row, 1e-9))
        chunk = max(min(chunk * 4, len(sample) - done, fits), 0)
    if done < min(SHAP_MIN_EXACT_ROWS, len(sample)):
        try:
            values = _explain_rows(explainer, sample, approximate=True)
        except Exception:  # approximate=True is tree-library specific (LightGBM and CatBoost refuse it)
            pass
        else:
            notes.append(
                f"SHAP values are approximate (TreeExplainer approximate=True) on {len(values):,} sampled "
                f"rows: exact TreeSHAP would take ~{per_row * len(sample):.0f} s on this model."
            )
            return values
    budget = " (time budget)" if done < len(sample) else ""
    notes.append(f"SHAP (TreeExplainer) on {done:,} sampled rows{budget}.")
    return np.concatenate(parts, axis=0)


def _explain_rows(explainer: Any, rows: Any, approximate: bool = False) -> np.ndarray:
    """SHAP values through the ``explainer(X)`` API, which returns one array (rows, features[, outputs])
    whatever the library (``shap_values`` warns that LightGBM's binary output changed shape)."""
    return np.asarray(explainer(rows, check_additivity=False, approximate=approximate).values)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
