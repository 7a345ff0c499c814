"""Small PNG plots of an evaluation, drawn with matplotlib's object API on the Agg canvas.

Figures are built as ``matplotlib.figure.Figure`` objects attached to their own ``FigureCanvasAgg``, never
through pyplot: no global figure registry, no backend switch, so evaluations may run in threads side by side.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

__all__ = [
    "DPI",
    "FIGSIZE",
    "calibration_png",
    "confusion_png",
    "fairness_png",
    "importance_png",
    "residuals_png",
    "roc_png",
]

FIGSIZE = (5.0, 4.0)
DPI = 100
_MAX_POINTS = 2_000
_MAX_BARS = 15
_MAX_GROUPS_SHOWN = 20
_MAX_CONFUSION_CLASSES = 20


def _figure(height: float = FIGSIZE[1]) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(FIGSIZE[0], height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def roc_png(true_pos: np.ndarray, proba_pos: np.ndarray, auc: float | None) -> bytes:
    """ROC curve of a binary classifier (``true_pos``: 1 for the positive class).

    Example:
        >>> import numpy as np
        >>> roc_png(np.array([0, 1, 1, 0]), np.array([.2, .8, .6, .4]), 1.0)[:4]
        b'\\x89PNG'
    """
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(true_pos, proba_pos)
    fig = _figure()
    ax = fig.add_subplot()
    label = f"model (AUC {auc:.3f})" if auc is not None else "model"
    ax.plot(fpr, tpr, label=label)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curve")
    ax.legend(loc="lower right")
    return _png(fig)


def calibration_png(true_pos: np.ndarray, proba_pos: np.ndarray, n_bins: int, ece: float | None) -> bytes:
    """Reliability diagram: observed positive rate against mean predicted probability per bin.

    Example:
        >>> import numpy as np
        >>> calibration_png(np.array([0, 1, 1, 0]), np.array([.2, .8, .6, .4]), 10, 0.3)[:4]
        b'\\x89PNG'
    """
    from sklearn.calibration import calibration_curve

    observed, predicted = calibration_curve(true_pos, proba_pos, n_bins=n_bins, strategy="uniform")
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    label = f"model (ECE {ece:.3f})" if ece is not None else "model"
    ax.plot(predicted, observed, marker="o", label=label)
    ax.set(
        xlabel="Mean predicted probability",
        ylabel="Observed positive rate",
        title="Calibration",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(loc="upper left")
    return _png(fig)


def confusion_png(y_true: np.ndarray, y_pred: np.ndarray, classes: list[Any]) -> bytes | None:
    """Confusion matrix with counts (rows: actual, columns: predicted); None below 2 or past 20 classes.

    Example:
        >>> import numpy as np
        >>> confusion_png(np.array([0, 1, 1]), np.array([0, 1, 0]), [0, 1])[:4]
        b'\\x89PNG'
    """
    from sklearn.metrics import confusion_matrix

    if not 2 <= len(classes) <= _MAX_CONFUSION_CLASSES:
        return None
    matrix = confusion_matrix(y_true, y_pred, labels=classes)
    fig = _figure()
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax)
    names = [str(c) for c in classes]
    ax.set_xticks(range(len(names)), labels=names, rotation=45 if len(names) > 4 else 0)
    ax.set_yticks(range(len(names)), labels=names)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, f"{count:,}", ha="center", va="center", color="white" if count > threshold else "black")
    ax.set(xlabel="Predicted", ylabel="Actual", title="Confusion matrix")
    return _png(fig)


def residuals_png(y_true: np.ndarray, y_pred: np.ndarray) -> bytes:
    """Predicted against actual values (at most 2,000 sampled points) with the identity line.

    Example:
        >>> import numpy as np
        >>> residuals_png(np.array([1.0, 2.0, 3.0]), np.array([1.1, 1.9, 3.2]))[:4]
        b'\\x89PNG'
    """
    if len(y_true) > _MAX_POINTS:
        rows = np.sort(np.random.default_rng(0).choice(len(y_true), size=_MAX_POINTS, replace=False))
        y_true, y_pred = y_true[rows], y_pred[rows]
    fig = _figure()
    ax = fig.add_subplot()
    ax.scatter(y_true, y_pred, s=6, alpha=0.5)
    low = float(min(y_true.min(), y_pred.min()))
    high = float(max(y_true.max(), y_pred.max()))
    ax.plot([low, high], [low, high], linestyle="--", color="grey")
    ax.set(xlabel="Actual", ylabel="Predicted", title="Predicted vs actual")
    return _png(fig)


def importance_png(importance: dict[str, float], shap: dict[str, float] | None) -> bytes:
    """Horizontal bars of the 15 most important features (permutation importance; SHAP beside it if any).

    Example:
        >>> importance_png({"a": 0.3, "b": 0.1}, None)[:4]
        b'\\x89PNG'
    """
    names = list(importance)[:_MAX_BARS][::-1]
    fig = _figure()
    ax = fig.add_subplot(1, 2 if shap else 1, 1)
    ax.barh(names, [importance[name] for name in names])
    ax.set(xlabel="Permutation importance", title="Feature importance")
    if shap:
        side = fig.add_subplot(1, 2, 2, sharey=ax)
        side.barh(names, [shap.get(name, 0.0) for name in names], color="tab:orange")
        side.set(xlabel="Mean |SHAP|")
        side.tick_params(labelleft=False)
    return _png(fig)


def fairness_png(groups: dict[str, dict[str, dict[str, float]]], metrics: list[str]) -> bytes:
    """Per sensitive column, bars of ``metrics`` (e.g. selection rate and TPR) for its 20 largest groups.

    Example:
        >>> fairness_png({"sex": {"F": {"n": 5, "mae": 1.0}, "M": {"n": 5, "mae": 2.0}}}, ["mae"])[:4]
        b'\\x89PNG'
    """
    fig = _figure(height=max(FIGSIZE[1], 2.5 * len(groups)))
    width = 0.8 / len(metrics)
    for index, (column, by_group) in enumerate(groups.items(), start=1):
        ax = fig.add_subplot(len(groups), 1, index)
        shown = sorted(by_group, key=lambda name: -by_group[name].get("n", 0.0))[:_MAX_GROUPS_SHOWN]
        positions = np.arange(len(shown))
        for offset, metric in enumerate(metrics):
            values = [by_group[name].get(metric, np.nan) for name in shown]
            ax.bar(positions + offset * width, values, width=width, label=metric)
        ax.set_xticks(
            positions + width * (len(metrics) - 1) / 2, labels=shown, rotation=45 if len(shown) > 5 else 0
        )
        ax.set(title=f"By {column}", ylim=(0, 1.2) if all(m != "mae" for m in metrics) else None)
        ax.legend(fontsize="small", ncols=len(metrics), loc="upper left")
    return _png(fig)
