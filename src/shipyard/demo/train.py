"""The demo's models: what one sweep trial fits, evaluates and logs on its run.

Logistic regression (two C values), histogram gradient boosting (three depth /
learning-rate settings, with early stopping and its per-iteration loss curves)
and a small random forest. Models are saved as model folders (skops inside: safe to load,
unlike pickle) with an input example, ready to register. :mod:`shipyard.demo.flow` runs
:func:`fit_and_log` once per trial of its sweep.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from shipyard.registry.core import log_model
from shipyard.tracking import ActiveRun

__all__ = ["Columns", "ModelSpec", "build_estimator", "fit_and_log", "model_specs"]


@dataclass(frozen=True)
class ModelSpec:
    """A model to train: run name, family and hyperparameters."""

    name: str
    family: str  # logreg | hgb | rf
    params: dict[str, Any]


def model_specs(quick: bool) -> list[ModelSpec]:
    """The grid: the same six models in both modes; quick mode makes the ensembles small."""
    iters, trees = (40, 15) if quick else (200, 60)
    hgb = [(3, 0.2), (6, 0.1), (None, 0.05)]
    return [
        ModelSpec("logreg-C0.1", "logreg", {"C": 0.1}),
        ModelSpec("logreg-C10", "logreg", {"C": 10.0}),
        *(
            ModelSpec(
                f"hgb-depth{d or 'none'}-lr{lr}",
                "hgb",
                {"max_depth": d, "learning_rate": lr, "max_iter": iters},
            )
            for d, lr in hgb
        ),
        ModelSpec("rf-small", "rf", {"n_estimators": trees, "max_depth": 12, "min_samples_leaf": 20}),
    ]


class Columns(Protocol):
    """The feature columns by kind (``FlightsData`` has them; so does :class:`FeatureColumns`)."""

    @property
    def numeric(self) -> list[str]: ...

    @property
    def categorical(self) -> list[str]: ...


@dataclass(frozen=True)
class FeatureColumns:
    """Feature columns by kind, for code that has the names but not a ``FlightsData``."""

    numeric: list[str]
    categorical: list[str]


def build_estimator(spec: ModelSpec, data: Columns, seed: int) -> Any:
    """A pipeline for ``spec`` taking the raw feature frame (strings for carrier, origin, dest).

    Encoding lives inside the pipeline, so the saved model needs nothing but the raw
    columns: what a serving endpoint receives.
    """
    numeric: Any
    if spec.family == "hgb":
        # Categories first, so they are columns 0..k-1 of what the booster sees; unknown → missing.
        encode: Any = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan)
        prep = ColumnTransformer([("cat", encode, data.categorical), ("num", "passthrough", data.numeric)])
        model: Any = HistGradientBoostingClassifier(
            **spec.params,
            categorical_features=list(range(len(data.categorical))),
            early_stopping=True,
            validation_fraction=0.1,
            n_iter_no_change=15,
            random_state=seed,
        )
        return Pipeline([("prep", prep), ("model", model)])
    if spec.family == "logreg":
        numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
        encode = OneHotEncoder(handle_unknown="ignore", min_frequency=20)
        model = LogisticRegression(**spec.params, max_iter=2000)
    else:
        numeric = SimpleImputer(strategy="median")
        encode = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        model = RandomForestClassifier(**spec.params, n_jobs=-1, random_state=seed)
    prep = ColumnTransformer([("num", numeric, data.numeric), ("cat", encode, data.categorical)])
    return Pipeline([("prep", prep), ("model", model)])


def _metrics(y: Any, proba: np.ndarray[Any, Any]) -> dict[str, float]:
    predicted = (proba >= 0.5).astype(int)
    return {
        "val_auc": float(roc_auc_score(y, proba)),
        "val_log_loss": float(log_loss(y, proba)),
        "val_accuracy": float(accuracy_score(y, predicted)),
        "val_precision": float(precision_score(y, predicted, zero_division=0)),
        "val_recall": float(recall_score(y, predicted, zero_division=0)),
        "val_f1": float(f1_score(y, predicted, zero_division=0)),
    }


def _roc_figure(name: str, y: Any, proba: np.ndarray[Any, Any], auc: float) -> Figure:
    fpr, tpr, _ = roc_curve(y, proba)
    fig = Figure(figsize=(4.5, 4.5))  # no pyplot: no global state, no GUI backend
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, validation set")
    ax.legend(loc="lower right")
    return fig


def _log_curves(run: ActiveRun, estimator: Any) -> None:
    """Per-iteration losses of gradient boosting (early-stopping split); scores are negated losses."""
    train_scores = getattr(estimator, "train_score_", None)
    val_scores = getattr(estimator, "validation_score_", None)
    if train_scores is None or val_scores is None:
        return
    for step, (tr, va) in enumerate(zip(train_scores, val_scores, strict=False)):
        run.log_metrics({"curve_train_loss": -float(tr), "curve_val_loss": -float(va)}, step=step)
    run.log_metric("n_iterations", float(estimator.n_iter_))


def fit_and_log(
    spec: ModelSpec,
    train: pd.DataFrame,
    val: pd.DataFrame,
    columns: FeatureColumns,
    seed: int,
    run: ActiveRun,
) -> dict[str, float]:
    """Fit ``spec`` on ``train`` (features + ``late``), log everything a reviewer needs on ``run``.

    Params, validation metrics, a ROC curve, learning curves for gradient boosting, the model
    (skops) with an input example and the feature list. Returns the metrics.

    Example:
        >>> metrics = fit_and_log(spec, train, val, columns, 13, run)  # doctest: +SKIP
        >>> metrics["val_auc"]  # doctest: +SKIP
        0.726
    """
    features = [*columns.numeric, *columns.categorical]
    x_train, y_train = train[features], train["late"]
    x_val, y_val = val[features], val["late"]
    run.log_params({"model": spec.family, **spec.params, "train_rows": len(train), "val_rows": len(val)})
    run.set_tags({"model_family": spec.family, "model_name": spec.name, "target": "arr_delay > 15"})
    estimator = build_estimator(spec, columns, seed)
    # One OpenMP/BLAS thread: on a busy 2-core machine spinning OpenMP workers made gradient
    # boosting 10-20x slower (measured); single-threaded it is as fast unloaded and steady loaded.
    with threadpool_limits(limits=1):
        t0 = time.perf_counter()
        estimator.fit(x_train, y_train)
        fit_time = time.perf_counter() - t0
        proba = estimator.predict_proba(x_val)[:, 1]
    metrics = {**_metrics(y_val, proba), "fit_time_s": fit_time}
    run.log_metrics(metrics)
    if spec.family == "hgb":
        _log_curves(run, estimator.named_steps["model"])
    run.log_figure(_roc_figure(spec.name, y_val, proba, metrics["val_auc"]), "plots/roc_curve.png")
    log_model(estimator, "model", run=run, input_example=x_train.head(5))
    run.log_dict(
        {"numeric": columns.numeric, "categorical": columns.categorical, "target": "late"}, "features.json"
    )
    return metrics
