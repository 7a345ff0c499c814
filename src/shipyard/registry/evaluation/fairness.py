"""Per-group metrics and the gaps and ratios between groups of a sensitive column.

The gaps and ratios are fairlearn's
(https://fairlearn.org/main/user_guide/assessment/common_fairness_metrics.html)
``demographic_parity_difference``/``_ratio`` and ``equalized_odds_difference``/``_ratio`` with their
defaults (``method="between_groups"``, ``agg="worst_case"``), including fairlearn's edge cases: a group
with no actual positives has a TPR of 0 (no actual negatives: an FPR of 0), as
``sklearn.metrics.confusion_matrix(..., normalize="true")`` gives, and a ratio whose largest rate is 0 is
undefined (fairlearn's NaN). They are computed here with numpy (group sums via ``np.bincount``) so no
extra dependency is needed and the predictions made once for the overall metrics are reused; the tests
compare every number with fairlearn's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "MAX_GROUPS",
    "NULL_GROUP",
    "SMALL_GROUP",
    "classification_groups",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "fairness_gaps",
    "fairness_notes",
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


def _ratio(rates: np.ndarray) -> float:
    """Min over max of the rates (all defined); NaN when the largest is 0, like fairlearn's ``ratio()``."""
    largest = float(rates.max())
    return float(rates.min()) / largest if largest > 0 else math.nan


def _present(codes: np.ndarray) -> np.ndarray:
    """Which group codes occur: fairlearn only knows groups that have rows."""
    return np.bincount(codes) > 0


def _selection_rates(pred_pos: np.ndarray, codes: np.ndarray) -> np.ndarray:
    n = np.bincount(codes)
    return _rate(np.bincount(codes, weights=pred_pos.astype(float)), n)[n > 0]


def _tpr_fpr(true_pos: np.ndarray, pred_pos: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-group TPR and FPR as fairlearn computes them: 0 (not undefined) for a group without
    actual positives (negatives)."""
    true_pos = true_pos.astype(bool)
    pred = pred_pos.astype(float)
    present = _present(codes)
    tpr = np.nan_to_num(
        _rate(np.bincount(codes, weights=pred * true_pos), np.bincount(codes, weights=true_pos))
    )
    fpr = np.nan_to_num(
        _rate(np.bincount(codes, weights=pred * ~true_pos), np.bincount(codes, weights=~true_pos))
    )
    return tpr[present], fpr[present]


def demographic_parity_difference(pred_pos: np.ndarray, codes: np.ndarray) -> float:
    """fairlearn's demographic parity difference: max - min over groups of the selection rate.

    The selection rate of a group is the share of its rows predicted positive, ``P(ŷ=1 | A=a)``.

    Example:
        >>> import numpy as np
        >>> demographic_parity_difference(np.array([1, 1, 0, 1]), np.array([0, 0, 1, 1]))
        0.5
    """
    return _gap(_selection_rates(pred_pos, codes))


def demographic_parity_ratio(pred_pos: np.ndarray, codes: np.ndarray) -> float:
    """fairlearn's demographic parity ratio: min / max over groups of the selection rate.

    NaN when no group has a positive prediction (fairlearn's 0/0).

    Example:
        >>> import numpy as np
        >>> demographic_parity_ratio(np.array([1, 1, 0, 1]), np.array([0, 0, 1, 1]))
        0.5
    """
    return _ratio(_selection_rates(pred_pos, codes))


def equalized_odds_difference(true_pos: np.ndarray, pred_pos: np.ndarray, codes: np.ndarray) -> float:
    """fairlearn's equalized odds difference (``agg="worst_case"``): the larger of the TPR gap and the FPR
    gap, each being max - min over groups.

    ``TPR_a = P(ŷ=1 | y=1, A=a)``, ``FPR_a = P(ŷ=1 | y=0, A=a)``. As in fairlearn, a group without actual
    positives has a TPR of 0 and a group without actual negatives an FPR of 0.

    Example:
        >>> import numpy as np
        >>> y, p, a = np.array([1, 0, 1, 0]), np.array([1, 0, 0, 0]), np.array([0, 0, 1, 1])
        >>> equalized_odds_difference(y, p, a)
        1.0
    """
    tpr, fpr = _tpr_fpr(true_pos, pred_pos, codes)
    return max(_gap(tpr), _gap(fpr))


def equalized_odds_ratio(true_pos: np.ndarray, pred_pos: np.ndarray, codes: np.ndarray) -> float:
    """fairlearn's equalized odds ratio (``agg="worst_case"``): the smaller of the TPR ratio and the FPR
    ratio, each being min / max over groups (TPR/FPR as in :func:`equalized_odds_difference`).

    Undefined ratios follow fairlearn's ``min(Series([tpr_ratio, fpr_ratio]))``: NaN when every group's TPR
    is 0; when only every FPR is 0, the TPR ratio.

    Example:
        >>> import numpy as np
        >>> y, p, a = np.array([1, 0, 1, 1, 0, 1]), np.array([1, 0, 1, 0, 0, 1]), np.array([0, 0, 0, 1, 1, 1])
        >>> equalized_odds_ratio(y, p, a)
        0.5
    """
    tpr, fpr = _tpr_fpr(true_pos, pred_pos, codes)
    return _worst_ratio(_ratio(tpr), _ratio(fpr))


def _worst_ratio(tpr_ratio: float, fpr_ratio: float) -> float:
    # Python's min() keeps its first argument when a comparison with NaN is False; fairlearn relies on it.
    if math.isnan(tpr_ratio) or math.isnan(fpr_ratio):
        return tpr_ratio
    return min(tpr_ratio, fpr_ratio)


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


def _column(groups: dict[str, dict[str, float]], metric: str, missing: float = math.nan) -> np.ndarray:
    return np.array([values.get(metric, missing) for values in groups.values()], dtype=float)


def fairness_gaps(groups: dict[str, dict[str, float]], task: str) -> dict[str, float]:
    """The gaps and ratios of one sensitive column from its per-group metrics (see the module docstring).

    Classification: ``accuracy_gap`` and, when selection rates were computed,
    ``demographic_parity_difference``, ``demographic_parity_ratio``, ``equalized_odds_difference`` and
    ``equalized_odds_ratio``, equal to fairlearn's functions of the same names on the raw predictions (a
    group whose ``tpr``/``fpr`` is undefined counts as 0, as in fairlearn). A ratio that fairlearn gives as
    NaN is left out. Regression: ``mae_gap``. A gap is max - min over the groups.

    Example:
        >>> fairness_gaps({"a": {"mae": 1.0}, "b": {"mae": 3.0}}, "regression")
        {'mae_gap': 2.0}
        >>> gaps = fairness_gaps({"a": {"accuracy": 1.0, "selection_rate": 0.5, "tpr": 1.0, "fpr": 0.0},
        ...                       "b": {"accuracy": 0.5, "selection_rate": 0.25, "fpr": 0.25}}, "binary")
        >>> gaps["equalized_odds_difference"], gaps["demographic_parity_ratio"], gaps["equalized_odds_ratio"]
        (1.0, 0.5, 0.0)
    """
    if task == "regression":
        return {"mae_gap": _gap(_column(groups, "mae"))}
    out = {}
    if any("selection_rate" in values for values in groups.values()):
        selection = _column(groups, "selection_rate")
        tpr, fpr = _column(groups, "tpr", 0.0), _column(groups, "fpr", 0.0)
        ratios = {
            "demographic_parity_ratio": _ratio(selection),
            "equalized_odds_ratio": _worst_ratio(_ratio(tpr), _ratio(fpr)),
        }
        out["demographic_parity_difference"] = _gap(selection)
        out["equalized_odds_difference"] = max(_gap(tpr), _gap(fpr))
        out.update({name: value for name, value in ratios.items() if not math.isnan(value)})
    out["accuracy_gap"] = _gap(_column(groups, "accuracy"))
    return out


def fairness_notes(column: str, groups: dict[str, dict[str, float]]) -> list[str]:
    """Plain-words notes on the edge cases of :func:`fairness_gaps` for one sensitive column.

    Example:
        >>> fairness_notes("g", {"a": {"selection_rate": 0.0, "fpr": 0.0}, "b": {"selection_rate": 0.0}})
        ... # doctest: +NORMALIZE_WHITESPACE
        ["Groups of 'g' with no actual positives ('a', 'b'): their TPR is undefined and counts as 0 in
        equalized_odds_difference/_ratio, as in fairlearn.", "Groups of 'g' with no actual negatives
        ('b'): their FPR is undefined and counts as 0 in equalized_odds_difference/_ratio, as in
        fairlearn.", "No group of 'g' has a positive prediction: demographic_parity_ratio is undefined
        (fairlearn's NaN) and left out."]
    """
    if not any("selection_rate" in values for values in groups.values()):
        return []
    notes = []
    for metric, what in (("tpr", "positives"), ("fpr", "negatives")):
        lacking = [name for name, values in groups.items() if metric not in values]
        if lacking:
            shown = ", ".join(repr(name) for name in lacking[:5]) + (" and more" if len(lacking) > 5 else "")
            notes.append(
                f"Groups of {column!r} with no actual {what} ({shown}): their {metric.upper()} is undefined "
                "and counts as 0 in equalized_odds_difference/_ratio, as in fairlearn."
            )
    if not any(values.get("selection_rate", 0.0) > 0 for values in groups.values()):
        notes.append(
            f"No group of {column!r} has a positive prediction: demographic_parity_ratio is undefined "
            "(fairlearn's NaN) and left out."
        )
    return notes
