"""Per-group metrics and the gaps between groups of a sensitive column.

The definitions follow fairlearn (https://fairlearn.org/main/user_guide/assessment/common_fairness_metrics.html),
computed here with numpy (group sums via ``np.bincount``) so no extra dependency is needed and the predictions
made once for the overall metrics are reused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "MAX_GROUPS",
    "NULL_GROUP",
    "SMALL_GROUP",
    "classification_groups",
    "demographic_parity_difference",
    "equalized_odds_difference",
    "fairness_gaps",
    "group_codes",
    "regression_groups",
]

NULL_GROUP = "<null>"
SMALL_GROUP = 10
# A "sensitive" column with more distinct values than this is an identifier, not a grouping.
MAX_GROUPS = 200


def group_codes(values: Any) -> tuple[np.ndarray, list[str]]:
    """Integer group code per row and the group names (values as ``str``, nulls as ``"<null>"``), sorted.

    Example:
        >>> codes, names = group_codes(["b", None, "a", "b"])
        >>> codes.tolist(), names
        ([2, 0, 1, 2], ['<null>', 'a', 'b'])
    """
    import pandas as pd

    raw_codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    labels = [str(value) for value in uniques]
    if (raw_codes < 0).any():
        labels.append(NULL_GROUP)
        raw_codes = np.where(raw_codes < 0, len(labels) - 1, raw_codes)
    # Values with the same text (1 and "1") share a group: the report keys groups by text anyway.
    names = sorted(set(labels))
    position = {name: i for i, name in enumerate(names)}
    remap = np.array([position[label] for label in labels], dtype=np.int64)
    return remap[raw_codes], names


def _rate(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Per-group ratio, NaN where the group has no rows in the denominator."""
    out = np.full(len(denominator), np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _gap(rates: np.ndarray) -> float:
    """Max minus min over the groups where the rate is defined (0.0 when fewer than two are)."""
    defined = rates[~np.isnan(rates)]
    return float(defined.max() - defined.min()) if len(defined) >= 2 else 0.0


def demographic_parity_difference(pred_pos: np.ndarray, codes: np.ndarray) -> float:
    """fairlearn's demographic parity difference: max - min over groups of the selection rate.

    The selection rate of a group is the share of its rows predicted positive, ``P(ŷ=1 | A=a)``.

    Example:
        >>> import numpy as np
        >>> demographic_parity_difference(np.array([1, 1, 0, 1]), np.array([0, 0, 1, 1]))
        0.5
    """
    n = np.bincount(codes)
    return _gap(_rate(np.bincount(codes, weights=pred_pos.astype(float)), n))


def equalized_odds_difference(true_pos: np.ndarray, pred_pos: np.ndarray, codes: np.ndarray) -> float:
    """fairlearn's equalized odds difference (``agg="worst_case"``): the larger of the TPR gap and the FPR
    gap, each being max - min over groups.

    ``TPR_a = P(ŷ=1 | y=1, A=a)``, ``FPR_a = P(ŷ=1 | y=0, A=a)``. A group without positives (or negatives)
    has no TPR (FPR) and is left out of that gap.

    Example:
        >>> import numpy as np
        >>> y, p, a = np.array([1, 0, 1, 0]), np.array([1, 0, 0, 0]), np.array([0, 0, 1, 1])
        >>> equalized_odds_difference(y, p, a)
        1.0
    """
    true_pos = true_pos.astype(bool)
    pred = pred_pos.astype(float)
    tpr = _rate(np.bincount(codes, weights=pred * true_pos), np.bincount(codes, weights=true_pos))
    fpr = _rate(np.bincount(codes, weights=pred * ~true_pos), np.bincount(codes, weights=~true_pos))
    return max(_gap(tpr), _gap(fpr))


def classification_groups(
    codes: np.ndarray, names: list[str], y_true: np.ndarray, y_pred: np.ndarray, positive: Any
) -> dict[str, dict[str, float]]:
    """Per group: ``n``, ``accuracy`` and, when ``positive`` is given, ``selection_rate``, ``base_rate``
    (share actually positive), ``tpr`` and ``fpr`` (left out when the group has no positives/negatives).

    Example:
        >>> import numpy as np
        >>> codes, y_true, y_pred = np.array([0, 0, 1]), np.array([1, 0, 1]), np.array([1, 1, 1])
        >>> g = classification_groups(codes, ["a", "b"], y_true, y_pred, 1)
        >>> g["a"]["selection_rate"], g["a"]["fpr"], "fpr" in g["b"]
        (1.0, 1.0, False)
    """
    k = len(names)
    n = np.bincount(codes, minlength=k).astype(float)
    columns: dict[str, np.ndarray] = {
        "n": n,
        "accuracy": _rate(np.bincount(codes, weights=(y_true == y_pred).astype(float), minlength=k), n),
    }
    if positive is not None:
        true_pos = y_true == positive
        pred_pos = (y_pred == positive).astype(float)
        positives = np.bincount(codes, weights=true_pos.astype(float), minlength=k)
        columns["selection_rate"] = _rate(np.bincount(codes, weights=pred_pos, minlength=k), n)
        columns["base_rate"] = _rate(positives, n)
        columns["tpr"] = _rate(np.bincount(codes, weights=pred_pos * true_pos, minlength=k), positives)
        columns["fpr"] = _rate(np.bincount(codes, weights=pred_pos * ~true_pos, minlength=k), n - positives)
    return _by_group(names, columns)


def regression_groups(
    codes: np.ndarray, names: list[str], y_true: np.ndarray, y_pred: np.ndarray
) -> dict[str, dict[str, float]]:
    """Per group: ``n``, ``mae``, ``rmse`` and ``mean_error`` (mean of prediction - target: the bias).

    Example:
        >>> import numpy as np
        >>> regression_groups(np.array([0, 1]), ["a", "b"], np.array([1.0, 2.0]), np.array([2.0, 2.0]))["a"]
        {'n': 1.0, 'mae': 1.0, 'rmse': 1.0, 'mean_error': 1.0}
    """
    k = len(names)
    n = np.bincount(codes, minlength=k).astype(float)
    error = y_pred.astype(float) - y_true.astype(float)
    columns = {
        "n": n,
        "mae": _rate(np.bincount(codes, weights=np.abs(error), minlength=k), n),
        "rmse": np.sqrt(_rate(np.bincount(codes, weights=error**2, minlength=k), n)),
        "mean_error": _rate(np.bincount(codes, weights=error, minlength=k), n),
    }
    return _by_group(names, columns)


def _by_group(names: list[str], columns: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Transpose metric columns into group -> metric -> value, dropping undefined (NaN) values."""
    return {
        name: {metric: float(values[i]) for metric, values in columns.items() if not np.isnan(values[i])}
        for i, name in enumerate(names)
    }


def fairness_gaps(groups: dict[str, dict[str, float]], task: str) -> dict[str, float]:
    """The gaps of one sensitive column from its per-group metrics (see the module docstring).

    Classification: ``accuracy_gap`` and, when selection rates were computed,
    ``demographic_parity_difference`` and ``equalized_odds_difference``. Regression: ``mae_gap``. Each gap is
    max - min over the groups where the metric is defined, which is what :func:`demographic_parity_difference`
    and :func:`equalized_odds_difference` compute from raw predictions.

    Example:
        >>> fairness_gaps({"a": {"mae": 1.0}, "b": {"mae": 3.0}}, "regression")
        {'mae_gap': 2.0}
    """

    def gap(metric: str) -> float:
        return _gap(np.array([values.get(metric, np.nan) for values in groups.values()], dtype=float))

    if task == "regression":
        return {"mae_gap": gap("mae")}
    out = {}
    if any("selection_rate" in values for values in groups.values()):
        out["demographic_parity_difference"] = gap("selection_rate")
        out["equalized_odds_difference"] = max(gap("tpr"), gap("fpr"))
    out["accuracy_gap"] = gap("accuracy")
    return out
