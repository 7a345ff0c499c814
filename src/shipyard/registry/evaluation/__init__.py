"""Model evaluation: metrics, per-group fairness gaps, feature importance and plots for a model on labelled
data, as one :class:`EvaluationReport` that the registry stores on a model version. Pure computation: no store
access; scikit-learn, pandas, matplotlib and shap are imported only when an evaluation runs."""

from __future__ import annotations

from shipyard.registry.evaluation.evaluate import evaluate_model, evaluate_predictions
from shipyard.registry.evaluation.report import EvaluationReport

__all__ = ["EvaluationReport", "evaluate_model", "evaluate_predictions"]
