"""Evaluate a model (or ready-made predictions) on labelled data: validation, task and class resolution, and
the assembly of an :class:`EvaluationReport` from the metric, fairness, explanation and plot modules.

The model is asked for predictions once (and for probabilities once); overall metrics, per-group metrics,
fairness gaps and plots all reuse those arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.errors import InvalidInput
from shipyard.registry.evaluation import explain as _explain
from shipyard.registry.evaluation import fairness as _fairness
from shipyard.registry.evaluation import metrics as _metrics
from shipyard.registry.evaluation import plots as _plots
from shipyard.registry.evaluation.report import EvaluationReport

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TASKS", "evaluate_model", "evaluate_predictions"]

TASKS = ("classification", "regression")
# An integer-valued target with at most this many distinct values is taken for class labels.
_MAX_INFERRED_CLASSES = 20
_NO_PROBA = "roc_auc, log_loss, brier and ece omitted: the model has no predict_proba."


def evaluate_model(
    model: Any,
    data: pd.DataFrame,
    target: str,
    *,
    sensitive: Sequence[str] = (),
    task: str | None = None,
    feature_columns: Sequence[str] | None = None,
    explain: bool = True,
    plots: bool = True,
    positive_label: Any = None,
) -> EvaluationReport:
    """Evaluate ``model`` on labelled ``data``: metrics, per-group fairness, feature importance and plots.

    Args:
        model: anything with ``predict(df)`` (and optionally ``predict_proba(df)``): a Shipyard
            ``LoadedModel`` or a fitted estimator.
        data: features, the target and the sensitive columns (pandas; polars and pyarrow are converted).
        target: the label column.
        sensitive: columns to break metrics down by (each group's value as str, nulls as ``"<null>"``).
        task: ``"classification"`` or ``"regression"``; inferred when None from ``model.metadata.task``, the
            estimator type, or else the target (strings, booleans or few distinct integers: classification).
        feature_columns: the columns handed to the model; by default the model's signature inputs, its
            ``feature_names_in_``, or else every column except the target and the sensitive ones.
        explain: compute permutation importance (2,000 sampled rows, 5 repeats) and, for tree models with
            shap installed, mean |SHAP| (at most 500 rows).
        plots: draw PNG plots (needs matplotlib; skipped with a note without it).
        positive_label: binary classification's positive class (default: the greater class); for multiclass,
            the class whose one-vs-rest selection rate and TPR/FPR the fairness gaps compare.

    Raises:
        InvalidInput: empty data, a missing target/sensitive/feature column, nulls in the target, an unknown
            task or positive label, or predictions that do not fit the rows.
        MissingExtra: scikit-learn is not installed.

    Example:
        >>> from sklearn.datasets import load_breast_cancer
        >>> from sklearn.linear_model import LogisticRegression
        >>> df = load_breast_cancer(as_frame=True).frame[["mean radius", "mean texture", "target"]]
        >>> model = LogisticRegression().fit(df[["mean radius", "mean texture"]], df["target"])
        >>> report = evaluate_model(model, df, "target", explain=False, plots=False)
        >>> report.task, round(report.metrics["accuracy"], 2)
        ('classification', 0.89)
    """
    _metrics.require_sklearn()
    frame = _as_pandas(data)
    _check_columns(frame, target, sensitive)
    features = _feature_columns(model, frame, target, sensitive, feature_columns)
    y_true = _target_values(frame, target)
    notes: list[str] = []
    X = frame[features]
    y_pred = _predict(model, X, len(frame))
    resolved = _resolve_task(task, model, y_true, y_pred, notes)
    proba = _predict_proba(model, X, len(frame), notes) if resolved == "classification" else None
    report = _evaluate(
        y_true,
        y_pred,
        proba=proba,
        classes=_model_classes(model),
        task=resolved,
        sensitive={column: frame[column] for column in sensitive},
        positive_label=positive_label,
        plots=plots,
        target=target,
        notes=notes,
    )
    report.features = list(features)
    if explain:
        _add_explanations(report, model, X, y_true)
        if plots and report.importance:
            _add_plot(report, "importance.png", lambda: _plots.importance_png(report.importance, report.shap))
    return report


def evaluate_predictions(
    y_true: Any,
    y_pred: Any,
    *,
    proba: Any = None,
    classes: Sequence[Any] | None = None,
    task: str | None = None,
    sensitive: Mapping[str, Any] | None = None,
    positive_label: Any = None,
    plots: bool = True,
    target: str = "target",
) -> EvaluationReport:
    """Evaluate predictions made elsewhere (a batch job, another system): same report, minus importance.

    Args:
        y_true: the labels (array-like, no nulls).
        y_pred: the predictions, one per label.
        proba: class probabilities, shape (rows, classes), columns in the order of ``classes``; or, for binary
            classification, a 1-d array with the probability of the positive label.
        classes: the class labels (default: the sorted labels seen in ``y_true`` and ``y_pred``).
        task: ``"classification"`` or ``"regression"``; inferred from ``y_true`` when None.
        sensitive: column name -> group value per row (a DataFrame works too).
        positive_label: see :func:`evaluate_model`.
        plots: draw PNG plots.
        target: the name the report gives the target.

    Example:
        >>> report = evaluate_predictions([1.0, 2.0, 4.0], [1.5, 2.0, 3.0], plots=False)
        >>> report.task, report.metrics["mae"]
        ('regression', 0.5)
    """
    _metrics.require_sklearn()
    truth = _target_values(_series(y_true, target), target)
    if len(truth) == 0:
        raise InvalidInput("Cannot evaluate zero predictions: y_true is empty.")
    notes: list[str] = []
    predicted = np.asarray(y_pred)
    if predicted.ndim == 2 and predicted.shape[1] == 1:
        predicted = predicted.ravel()
    if predicted.shape != truth.shape:
        raise InvalidInput(
            f"y_pred has shape {predicted.shape} but y_true has {len(truth):,} rows: pass one each."
        )
    resolved = _resolve_task(task, None, truth, predicted, notes)
    groups = {} if sensitive is None else {str(name): values for name, values in sensitive.items()}
    return _evaluate(
        truth,
        predicted,
        proba=None if proba is None else np.asarray(proba, dtype=float),
        classes=None if classes is None else list(classes),
        task=resolved,
        sensitive=groups,
        positive_label=positive_label,
        plots=plots,
        target=target,
        notes=notes,
    )


def _evaluate(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    proba: np.ndarray | None,
    classes: list[Any] | None,
    task: str,
    sensitive: Mapping[str, Any],
    positive_label: Any,
    plots: bool,
    target: str,
    notes: list[str],
) -> EvaluationReport:
    """The report of one set of predictions; ``notes`` already holds what the caller noticed."""
    report = EvaluationReport(task=task, n_rows=len(y_true), target=target, notes=notes)
    codes = {
        column: _sensitive_codes(column, values, len(y_true), notes) for column, values in sensitive.items()
    }
    draw = plots and _have_matplotlib(notes)
    if task == "regression":
        _evaluate_regression(report, y_true, y_pred, codes, draw)
    else:
        _evaluate_classification(report, y_true, y_pred, proba, classes, positive_label, codes, draw)
    return report


def _evaluate_regression(
    report: EvaluationReport,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    codes: dict[str, tuple[np.ndarray, list[str]]],
    draw: bool,
) -> None:
    truth, predicted = _regression_arrays(y_true, y_pred, report.target)
    report.metrics = _metrics.regression_metrics(truth, predicted, report.notes)
    for column, (group, names) in codes.items():
        report.groups[column] = _fairness.regression_groups(group, names, truth, predicted)
    _add_fairness(report, ["mae"], draw)
    if draw:
        _add_plot(report, "residuals.png", lambda: _plots.residuals_png(truth, predicted))


def _evaluate_classification(
    report: EvaluationReport,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    classes: list[Any] | None,
    positive_label: Any,
    codes: dict[str, tuple[np.ndarray, list[str]]],
    draw: bool,
) -> None:
    notes = report.notes
    y_pred = _coerce_labels(y_true, y_pred)
    labels, proba = _resolve_classes(classes, proba, y_true, y_pred, notes)
    positive = _positive_label(positive_label, labels)
    report.classes, report.positive_label = [_plain(label) for label in labels], _plain(positive)
    binary = len(labels) == 2
    proba_pos = proba[:, labels.index(positive)] if proba is not None and binary else None
    if binary:
        report.metrics = _metrics.binary_metrics(y_true, y_pred, proba_pos, positive, notes)
    else:
        report.metrics = _metrics.multiclass_metrics(y_true, y_pred, proba, labels, notes)
    for column, (group, names) in codes.items():
        report.groups[column] = _fairness.classification_groups(group, names, y_true, y_pred, positive)
    if codes and positive is None:
        notes.append(
            "Fairness of a multiclass model compares accuracy only: pass positive_label= to compare one "
            "class's selection rate and TPR/FPR against the rest."
        )
    _add_fairness(report, ["selection_rate", "tpr"] if positive is not None else ["accuracy"], draw)
    if not draw:
        return
    if proba_pos is not None:
        true_pos = (y_true == positive).astype(np.int64)
        auc, ece = report.metrics.get("roc_auc"), report.metrics.get("ece")
        if "roc_auc" in report.metrics:
            _add_plot(report, "roc.png", lambda: _plots.roc_png(true_pos, proba_pos, auc))
        _add_plot(report, "calibration.png", lambda: _plots.calibration_png(true_pos, proba_pos, 10, ece))
    _add_plot(report, "confusion.png", lambda: _plots.confusion_png(y_true, y_pred, labels))


def _add_fairness(report: EvaluationReport, plotted: list[str], draw: bool) -> None:
    """Gaps per sensitive column, and the fairness plot of ``plotted`` per-group metrics."""
    for column, groups in report.groups.items():
        report.fairness[column] = _fairness.fairness_gaps(groups, report.task)
        report.notes.extend(_fairness.fairness_notes(column, groups))
    if draw and report.groups:
        _add_plot(report, "fairness.png", lambda: _plots.fairness_png(report.groups, plotted))


def _add_plot(report: EvaluationReport, name: str, draw: Callable[[], bytes | None]) -> None:
    """Draw one plot into the report; a plot that cannot be drawn is a note, not a failed evaluation."""
    try:
        png = draw()
    except Exception as exc:  # matplotlib/sklearn errors on degenerate data should not lose the metrics
        report.notes.append(f"{name} not drawn: {type(exc).__name__}: {exc}")
        return
    if png is not None:
        report.plots[name] = png


def _have_matplotlib(notes: list[str]) -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        notes.append("Plots skipped: matplotlib is not installed (pip install matplotlib).")
        return False
    return True


def _add_explanations(report: EvaluationReport, model: Any, X: pd.DataFrame, y_true: np.ndarray) -> None:
    """Permutation importance and SHAP; both are best effort, so a failure becomes a note."""

    def predict(frame: pd.DataFrame) -> np.ndarray:
        predicted = _predict(model, frame, len(frame))
        return predicted.astype(float) if report.task == "regression" else _coerce_labels(y_true, predicted)

    truth = y_true.astype(float) if report.task == "regression" else y_true
    try:
        report.importance = _explain.permutation_importance(predict, X, truth, report.task, report.notes)
    except Exception as exc:  # the model's own error on shuffled data: keep the metrics, say why
        report.notes.append(f"Permutation importance failed: {type(exc).__name__}: {exc}")
    report.shap = _explain.shap_importance(getattr(model, "raw", model), X, report.notes)


# --- input checks ---


def _as_pandas(data: Any) -> pd.DataFrame:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "to_pandas"):  # polars DataFrame, pyarrow Table
        frame = data.to_pandas()
        if isinstance(frame, pd.DataFrame):
            return frame
    raise InvalidInput(
        "Evaluation data must be a table (pandas or polars DataFrame, pyarrow Table), "
        f"got {type(data).__name__}."
    )


def _check_columns(frame: pd.DataFrame, target: str, sensitive: Sequence[str]) -> None:
    if isinstance(sensitive, str):
        raise InvalidInput(
            f"sensitive must be a list of column names, got the string {sensitive!r}: use [{sensitive!r}]."
        )
    if len(frame) == 0:
        raise InvalidInput("Cannot evaluate on empty data (0 rows): pass a labelled holdout set.")
    available = _column_list(frame)
    if target not in frame.columns:
        raise InvalidInput(f"Target column {target!r} is not in the evaluation data (columns: {available}).")
    missing = [column for column in sensitive if column not in frame.columns]
    if missing:
        raise InvalidInput(
            f"Sensitive column(s) {missing!r} are not in the evaluation data (columns: {available})."
        )
    if target in sensitive:
        raise InvalidInput(f"Column {target!r} cannot be both the target and a sensitive column.")


def _column_list(frame: pd.DataFrame, limit: int = 20) -> str:
    names = [str(column) for column in frame.columns]
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (f", … {len(names) - limit} more" if len(names) > limit else "")


def _feature_columns(
    model: Any, frame: pd.DataFrame, target: str, sensitive: Sequence[str], given: Sequence[str] | None
) -> list[str]:
    """The explicit list, else the model's signature inputs, else its ``feature_names_in_``, else the rest."""
    source = "feature_columns"
    columns = None if given is None else [str(column) for column in given]
    signature = getattr(model, "signature", None)
    if columns is None and signature is not None and getattr(signature, "inputs", None):
        columns, source = [str(spec.name) for spec in signature.inputs], "the model's signature"
    if columns is None:
        for holder in (model, getattr(model, "raw", None)):
            names = getattr(holder, "feature_names_in_", None)
            if names is not None:
                columns, source = [str(name) for name in names], "the model's feature_names_in_"
                break
    if columns is None:
        columns = [str(c) for c in frame.columns if c != target and c not in sensitive]
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise InvalidInput(
            f"Feature column(s) {missing!r} from {source} are not in the evaluation data "
            f"(columns: {_column_list(frame)}); add them or pass feature_columns=."
        )
    if target in columns:
        raise InvalidInput(f"The target {target!r} is among the feature columns (from {source}): remove it.")
    if not columns:
        raise InvalidInput(f"No feature columns left besides the target {target!r}: pass feature_columns=.")
    return columns


def _series(values: Any, name: str) -> pd.Series:
    import pandas as pd

    return values if isinstance(values, pd.Series) else pd.Series(np.asarray(values), name=name)


def _target_values(frame_or_series: Any, target: str) -> np.ndarray:
    """The target as a numpy array (nullable dtypes unwrapped), refusing nulls."""
    import pandas as pd

    series = frame_or_series[target] if isinstance(frame_or_series, pd.DataFrame) else frame_or_series
    nulls = int(series.isna().sum())
    if nulls:
        raise InvalidInput(
            f"Target column {target!r} has {nulls:,} null value(s) in {len(series):,} rows: evaluation needs "
            f"a label on every row (drop them first, e.g. data.dropna(subset=[{target!r}]))."
        )
    if isinstance(series.dtype, pd.CategoricalDtype):
        return np.asarray(series.astype(object).to_numpy())
    numpy_dtype = getattr(series.dtype, "numpy_dtype", None)
    return np.asarray(series.to_numpy(dtype=numpy_dtype) if numpy_dtype is not None else series.to_numpy())


def _sensitive_codes(column: str, values: Any, n_rows: int, notes: list[str]) -> tuple[np.ndarray, list[str]]:
    codes, names = _fairness.group_codes(values)
    if len(codes) != n_rows:
        raise InvalidInput(f"Sensitive column {column!r} has {len(codes):,} values for {n_rows:,} rows.")
    if len(names) > _fairness.MAX_GROUPS:
        raise InvalidInput(
            f"Sensitive column {column!r} has {len(names):,} distinct values; fairness needs a grouping "
            f"with at most {_fairness.MAX_GROUPS} groups (bin it first, e.g. pandas.cut for ages)."
        )
    counts = np.bincount(codes, minlength=len(names))
    small = [
        f"{name!r} ({count})"
        for name, count in zip(names, counts, strict=True)
        if count < _fairness.SMALL_GROUP
    ]
    if small:
        notes.append(
            f"Groups of {column!r} with fewer than {_fairness.SMALL_GROUP} rows (their metrics are noisy): "
            + ", ".join(small[:10])
            + (f", … {len(small) - 10} more" if len(small) > 10 else "")
        )
    return codes, names


# --- task, classes and predictions ---


def _resolve_task(
    task: str | None, model: Any, y_true: np.ndarray, y_pred: np.ndarray, notes: list[str]
) -> str:
    """The given task, else the model's own (metadata, estimator type), else one inferred from the data."""
    if task is not None:
        if task not in TASKS:
            raise InvalidInput(f"Unknown task {task!r}: use 'classification' or 'regression'.")
        return task
    declared = getattr(getattr(model, "metadata", None), "task", None)
    if declared in TASKS:
        return str(declared)
    from sklearn.base import BaseEstimator, is_classifier, is_regressor

    estimator = getattr(model, "raw", model)
    if isinstance(estimator, BaseEstimator):  # sklearn's tag lookup raises on other objects
        if is_classifier(estimator):
            return "classification"
        if is_regressor(estimator):
            return "regression"
    return _infer_task(y_true, y_pred, notes)


def _infer_task(y_true: np.ndarray, y_pred: np.ndarray, notes: list[str]) -> str:
    """Continuous predictions mean regression; otherwise strings, booleans or few distinct integers in the
    target mean classification."""
    kind = y_true.dtype.kind
    if kind in "iuf" and y_pred.dtype.kind == "f" and not _integral(y_pred):
        task, reason = "regression", "the predictions are continuous"
    elif kind in "iuf":
        integral = _integral(y_true)
        distinct = len(np.unique(y_true))
        task = "classification" if integral and distinct <= _MAX_INFERRED_CLASSES else "regression"
        reason = f"the target has {'integer' if integral else 'non-integer'} values, {distinct:,} distinct"
    else:
        task, reason = "classification", f"the target holds {y_true.dtype} labels"
    notes.append(f"Task inferred as {task} ({reason}); pass task= to override.")
    return task


def _integral(values: np.ndarray) -> bool:
    """Every value is a finite whole number (floats such as 0.0 and 1.0 that are really labels)."""
    return values.dtype.kind in "iub" or bool(np.all(np.isfinite(values)) and np.all(np.mod(values, 1) == 0))


def _model_classes(model: Any) -> list[Any] | None:
    for holder in (model, getattr(model, "raw", None)):
        classes = getattr(holder, "classes_", None)
        if classes is not None:
            return list(classes)
    classes = getattr(getattr(model, "metadata", None), "classes", None)
    return None if classes is None else list(classes)


def _predict(model: Any, X: pd.DataFrame, n_rows: int) -> np.ndarray:
    predicted = np.asarray(model.predict(X))
    if predicted.ndim == 2 and predicted.shape[1] == 1:
        predicted = predicted.ravel()
    if predicted.shape != (n_rows,):
        raise InvalidInput(
            f"{type(model).__name__}.predict returned shape {predicted.shape} for {n_rows:,} rows: "
            "evaluation needs one prediction per row (single-output models only)."
        )
    return predicted


def _predict_proba(model: Any, X: pd.DataFrame, n_rows: int, notes: list[str]) -> np.ndarray | None:
    if not hasattr(model, "predict_proba"):
        notes.append(_NO_PROBA)
        return None
    try:
        proba = np.asarray(model.predict_proba(X), dtype=float)
    except (InvalidInput, AttributeError, NotImplementedError):  # a LoadedModel whose flavor has none
        notes.append(_NO_PROBA)
        return None
    if proba.shape[0] != n_rows:
        raise InvalidInput(
            f"{type(model).__name__}.predict_proba returned {proba.shape[0]:,} rows for {n_rows:,}."
        )
    return proba


def _coerce_labels(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Integer-valued float predictions (ONNX, some boosters) become integers to match integer labels;
    continuous predictions are refused, since no label comparison makes sense of them."""
    if y_true.dtype.kind in "iuf" and y_pred.dtype.kind == "f":
        if not _integral(y_pred):
            bad = ~np.isfinite(y_pred)
            bad[~bad] = np.mod(y_pred[~bad], 1) != 0
            example = y_pred[np.flatnonzero(bad)[0]]
            raise InvalidInput(
                f"The task is classification but the predictions are continuous (e.g. {example!r}): pass "
                "task='regression', or a model whose predict returns class labels."
            )
        if y_true.dtype.kind in "iu":
            return y_pred.astype(y_true.dtype)
    return y_pred


def _resolve_classes(
    classes: list[Any] | None,
    proba: np.ndarray | None,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    notes: list[str],
) -> tuple[list[Any], np.ndarray | None]:
    """Sorted class labels and the probability columns in that order (sklearn's metrics want them sorted)."""
    seen = _sorted_labels(np.concatenate([np.unique(y_true), np.unique(y_pred)]))
    labels = seen if classes is None else list(classes)
    unknown = [label for label in seen if label not in labels]
    if unknown:
        notes.append(
            f"Labels {[_plain(u) for u in unknown[:5]]!r} occur in the data but not among the model's "
            f"classes {[_plain(c) for c in labels[:10]]!r}."
        )
        labels = labels + unknown
    if proba is not None:
        proba = _checked_proba(proba, len(labels), bool(unknown), notes)
    order = _sort_order(labels)
    labels = [labels[i] for i in order]
    return labels, None if proba is None else proba[:, order]


def _checked_proba(proba: np.ndarray, n_classes: int, unknown: bool, notes: list[str]) -> np.ndarray | None:
    """Probabilities as (rows, classes) with rows summing to 1, or None and a note saying why not."""
    if proba.ndim == 1 and n_classes == 2:
        proba = np.column_stack([1.0 - proba, proba])
    if unknown:
        problem = "the model's probability columns do not cover every label"
    elif proba.ndim != 2 or proba.shape[1] != n_classes:
        problem = f"predict_proba has shape {proba.shape} for {n_classes} classes"
    elif not np.isfinite(proba).all() or proba.min() < 0 or proba.max() > 1:
        problem = "predict_proba returned values outside [0, 1]"
    elif np.abs(proba.sum(axis=1) - 1).max() > 1e-3:
        problem = "rows of predict_proba do not sum to 1"
    else:
        # float32 outputs (ONNX, boosters) sum to 1 only within float32 precision; sklearn checks float64's
        sums = proba.sum(axis=1, keepdims=True)
        normalised: np.ndarray = proba / sums if np.abs(sums - 1).max() > 1e-9 else proba
        return normalised
    notes.append(f"Probability metrics omitted: {problem}.")
    return None


def _sorted_labels(values: np.ndarray) -> list[Any]:
    unique = list(dict.fromkeys(values.tolist()))
    return [unique[i] for i in _sort_order(unique)]


def _sort_order(labels: list[Any]) -> list[int]:
    try:
        return sorted(range(len(labels)), key=lambda i: labels[i])
    except TypeError:  # labels of mixed types keep the model's order
        return list(range(len(labels)))


def _plain(label: Any) -> Any:
    """numpy scalars as Python ones, so reports print ``1``, not ``np.int64(1)``."""
    return label.item() if isinstance(label, np.generic) else label


def _positive_label(requested: Any, classes: list[Any]) -> Any:
    """Binary: the requested or the greater class. Multiclass: the requested class (one-vs-rest) or None."""
    if requested is not None:
        if requested not in classes:
            shown = [_plain(label) for label in classes[:20]]
            raise InvalidInput(f"positive_label {requested!r} is not one of the classes {shown!r}.")
        return requested
    return classes[-1] if len(classes) == 2 else None


def _regression_arrays(y_true: np.ndarray, y_pred: np.ndarray, target: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        truth, predicted = y_true.astype(float), y_pred.astype(float)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"Regression needs numeric targets and predictions; {target!r} is {y_true.dtype} and the "
            f"predictions are {y_pred.dtype} (pass task='classification' for labels)."
        ) from None
    bad = int((~np.isfinite(predicted)).sum())
    if bad:
        raise InvalidInput(
            f"The model returned {bad:,} NaN or infinite prediction(s) in {len(predicted):,} rows: fix its "
            "handling of missing values or drop those rows."
        )
    if not np.isfinite(truth).all():
        raise InvalidInput(f"Target {target!r} holds infinite values: drop those rows.")
    return truth, predicted
