"""Overall metrics of one set of predictions: classification (binary or multiclass) and regression.

Every function takes numpy arrays that were computed once by the caller and appends to ``notes`` whatever it
had to leave out, so the report never carries a NaN without saying why.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shipyard.errors import MissingExtra

__all__ = [
    "ECE_BINS",
    "binary_metrics",
    "expected_calibration_error",
    "multiclass_metrics",
    "regression_metrics",
    "require_sklearn",
]

ECE_BINS = 10


def require_sklearn() -> None:
    """Raise :class:`MissingExtra` with the install hint when scikit-learn is missing.

    Example:
        >>> require_sklearn()  # silent when scikit-learn is installed
    """
    try:
        import sklearn  # noqa: F401
    except ModuleNotFoundError:
        raise MissingExtra(
            "Evaluating models needs scikit-learn installed: pip install 'shipyard[sklearn]'"
        ) from None


def expected_calibration_error(y_true: np.ndarray, prob: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error over ``n_bins`` equal-width probability bins.

    ``ECE = sum_b (n_b / N) * |mean(y in b) - mean(p in b)|`` (Naeini et al., AAAI 2015; Guo et al., ICML
    2017): the gap between the observed positive rate and the mean predicted probability in each bin,
    weighted by the bin's share of rows. A probability of exactly 1.0 falls into the last bin.

    Args:
        y_true: 1 for the positive class, 0 otherwise.
        prob: predicted probability of the positive class.
        n_bins: number of bins over [0, 1].

    Example:
        >>> import numpy as np
        >>> round(expected_calibration_error(np.array([0, 1, 1, 1]), np.array([0.05, 0.95, 0.95, 0.95])), 4)
        0.05
    """
    if len(prob) == 0:
        return 0.0
    bins = np.minimum((np.asarray(prob, dtype=float) * n_bins).astype(np.int64), n_bins - 1)
    observed = np.bincount(bins, weights=np.asarray(y_true, dtype=float), minlength=n_bins)
    predicted = np.bincount(bins, weights=np.asarray(prob, dtype=float), minlength=n_bins)
    # n_b/N * |sum_y/n_b - sum_p/n_b| == |sum_y - sum_p| / N
    return float(np.abs(observed - predicted).sum() / len(prob))


def binary_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, proba_pos: np.ndarray | None, positive: Any, notes: list[str]
) -> dict[str, float]:
    """Accuracy, precision/recall/F1 of ``positive``, and ROC AUC, log loss, Brier score and ECE from
    ``proba_pos`` (the predicted probability of ``positive``) when given.

    Example:
        >>> import numpy as np
        >>> y_true, y_pred, proba = np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]), np.array([.1, .9, .4, .2])
        >>> m = binary_metrics(y_true, y_pred, proba, 1, [])
        >>> m["accuracy"], m["recall"], m["roc_auc"]
        (0.75, 0.5, 1.0)
    """
    from sklearn import metrics as skm

    true_pos = (y_true == positive).astype(np.int64)
    pred_pos = (y_pred == positive).astype(np.int64)
    out = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision": float(skm.precision_score(true_pos, pred_pos, zero_division=0)),
        "recall": float(skm.recall_score(true_pos, pred_pos, zero_division=0)),
        "f1": float(skm.f1_score(true_pos, pred_pos, zero_division=0)),
    }
    if proba_pos is None:
        return out
    if 0 < true_pos.sum() < len(true_pos):
        out["roc_auc"] = float(skm.roc_auc_score(true_pos, proba_pos))
    else:
        notes.append(f"roc_auc omitted: the target holds only one class (positive label {positive!r}).")
    # Both labels are passed so log loss is defined even when the data hold a single class.
    out["log_loss"] = float(skm.log_loss(true_pos, proba_pos, labels=[0, 1]))
    out["brier"] = float(skm.brier_score_loss(true_pos, proba_pos, pos_label=1))
    out["ece"] = expected_calibration_error(true_pos, proba_pos)
    return out


def multiclass_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, classes: list[Any], notes: list[str]
) -> dict[str, float]:
    """Accuracy, macro precision/recall/F1, and one-vs-rest macro ROC AUC and log loss from ``proba``
    (columns in the order of ``classes``) when given.

    Example:
        >>> import numpy as np
        >>> multiclass_metrics(np.array([0, 1, 2]), np.array([0, 1, 1]), None, [0, 1, 2], [])["accuracy"]
        0.6666666666666666
    """
    from sklearn import metrics as skm

    out = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision": float(skm.precision_score(y_true, y_pred, average="macro", zero_division=0)),
        "recall": float(skm.recall_score(y_true, y_pred, average="macro", zero_division=0)),
        "f1": float(skm.f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }
    if proba is None:
        return out
    absent = [c for c in classes if not np.any(y_true == c)]
    if absent:
        notes.append(
            f"roc_auc omitted: classes {absent[:5]!r} never occur in the target, so one-vs-rest AUC is "
            "undefined for them."
        )
    else:
        try:
            out["roc_auc"] = float(
                skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=classes)
            )
        except ValueError as exc:  # e.g. probability rows that do not sum to 1
            notes.append(f"roc_auc omitted: {exc}")
    out["log_loss"] = float(skm.log_loss(y_true, proba, labels=classes))
    return out


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray, notes: list[str]) -> dict[str, float]:
    """MAE, RMSE, R² and MAPE (a fraction, over rows whose target is not zero).

    Example:
        >>> import numpy as np
        >>> m = regression_metrics(np.array([1.0, 2.0, 0.0]), np.array([1.5, 2.0, 0.5]), [])
        >>> m["mae"], m["mape"]
        (0.3333333333333333, 0.25)
    """
    from sklearn import metrics as skm

    out = {
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "rmse": float(skm.root_mean_squared_error(y_true, y_pred)),
    }
    if len(y_true) >= 2 and np.ptp(y_true) > 0:
        out["r2"] = float(skm.r2_score(y_true, y_pred))
    else:
        notes.append("r2 omitted: it needs at least two rows with different target values.")
    nonzero = y_true != 0
    skipped = int(len(y_true) - nonzero.sum())
    if skipped == len(y_true):
        notes.append("mape omitted: every target value is zero.")
    else:
        out["mape"] = float(np.mean(np.abs(y_true[nonzero] - y_pred[nonzero]) / np.abs(y_true[nonzero])))
        if skipped:
            notes.append(f"mape ignores the {skipped:,} row(s) whose target is zero.")
    return out
