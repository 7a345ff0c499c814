"""The result of an evaluation: metrics, per-group metrics, fairness gaps, feature importance and plots.

The report is plain data. ``to_dict()`` is what the registry stores on a model version (JSON, without the PNG
bytes, which are uploaded as blobs named by ``plot_names``); ``from_dict()`` reads it back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EvaluationReport", "json_label"]

_FORMAT = 1
_SUMMARY_METRICS = 6
_SUMMARY_FEATURES = 5


def json_label(value: Any) -> Any:
    """A class label as a JSON value: numpy scalars become Python ones, anything exotic becomes its ``str``.

    Example:
        >>> import numpy as np
        >>> json_label(np.int64(1)), json_label("yes"), json_label(None)
        (1, 'yes', None)
    """
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)


@dataclass
class EvaluationReport:
    """What :func:`~shipyard.registry.evaluation.evaluate_model` found.

    Attributes:
        task: ``"classification"`` or ``"regression"``.
        n_rows: rows evaluated.
        target: the target column.
        metrics: overall metrics, e.g. ``{"accuracy": 0.93, "roc_auc": 0.97}``; undefined metrics are left out
            (and explained in ``notes``), never NaN.
        groups: sensitive column -> group value (as str, nulls as ``"<null>"``) -> metrics of that group
            (``n``, and ``selection_rate``/``tpr``/``fpr`` for binary classification, ``mae`` for regression).
        fairness: sensitive column -> gaps and ratios between its groups, as fairlearn computes them
            (``demographic_parity_difference``/``_ratio``, ``equalized_odds_difference``/``_ratio``,
            ``accuracy_gap``; ``mae_gap`` for regression); a ratio fairlearn gives as NaN is left out.
        importance: permutation importance (mean drop of accuracy or R² over 5 shuffles), sorted descending.
        shap: mean absolute SHAP value per feature, sorted descending, or None when not computed.
        plots: file name (``"roc.png"``) -> PNG bytes. Not part of ``to_dict()``.
        notes: everything worth knowing that is not a number: skipped metrics, small groups, samples used.
        classes: the class labels (classification), in the order of the model's probability columns.
        positive_label: the positive class of binary classification (or of a one-vs-rest fairness view).
        features: the feature columns handed to the model.

    Example:
        >>> report = EvaluationReport(task="regression", n_rows=3, target="y", metrics={"mae": 0.5})
        >>> EvaluationReport.from_dict(report.to_dict()) == report
        True
    """

    task: str
    n_rows: int
    target: str
    metrics: dict[str, float] = field(default_factory=dict)
    groups: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    fairness: dict[str, dict[str, float]] = field(default_factory=dict)
    importance: dict[str, float] = field(default_factory=dict)
    shap: dict[str, float] | None = None
    plots: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    classes: list[Any] | None = None
    positive_label: Any = None
    features: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able data, without the PNG bytes (their names are kept in ``plot_names``).

        Example:
            >>> import json
            >>> report = EvaluationReport(task="regression", n_rows=3, target="y", metrics={"mae": 0.5})
            >>> json.loads(json.dumps(report.to_dict()))["metrics"]
            {'mae': 0.5}
        """
        return {
            "format": _FORMAT,
            "task": self.task,
            "n_rows": int(self.n_rows),
            "target": self.target,
            "metrics": _floats(self.metrics),
            "groups": {
                col: {group: _floats(values) for group, values in groups.items()}
                for col, groups in self.groups.items()
            },
            "fairness": {col: _floats(gaps) for col, gaps in self.fairness.items()},
            "importance": _floats(self.importance),
            "shap": None if self.shap is None else _floats(self.shap),
            "plot_names": sorted(self.plots),
            "notes": list(self.notes),
            "classes": None if self.classes is None else [json_label(c) for c in self.classes],
            "positive_label": json_label(self.positive_label),
            "features": list(self.features),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationReport:
        """Rebuild a report from :meth:`to_dict` output (``plots`` comes back empty: the bytes are blobs).

        Example:
            >>> EvaluationReport.from_dict({"task": "regression", "n_rows": 1, "target": "y"}).metrics
            {}
        """
        shap = data.get("shap")
        classes = data.get("classes")
        return cls(
            task=str(data["task"]),
            n_rows=int(data["n_rows"]),
            target=str(data["target"]),
            metrics=_floats(data.get("metrics") or {}),
            groups={
                str(col): {str(group): _floats(values) for group, values in groups.items()}
                for col, groups in (data.get("groups") or {}).items()
            },
            fairness={str(col): _floats(gaps) for col, gaps in (data.get("fairness") or {}).items()},
            importance=_floats(data.get("importance") or {}),
            shap=None if shap is None else _floats(shap),
            notes=[str(note) for note in data.get("notes") or []],
            classes=None if classes is None else list(classes),
            positive_label=data.get("positive_label"),
            features=[str(name) for name in data.get("features") or []],
        )

    def summary(self) -> str:
        """A few lines for a terminal: headline metrics, the worst fairness gaps, top features, note count.

        Example:
            >>> report = EvaluationReport(task="regression", n_rows=3, target="y", metrics={"mae": 0.5})
            >>> print(report.summary())
            regression of 'y' on 3 rows
              mae 0.5
        """
        head = f"{self.task} of {self.target!r} on {self.n_rows:,} rows"
        if self.task == "classification" and self.classes is not None:
            kind = "binary" if len(self.classes) == 2 else f"{len(self.classes)} classes"
            positive = f", positive label {self.positive_label!r}" if self.positive_label is not None else ""
            head += f" ({kind}{positive})"
        lines = [head]
        if self.metrics:
            shown = list(self.metrics.items())[:_SUMMARY_METRICS]
            lines.append("  " + "  ".join(f"{name} {value:.4g}" for name, value in shown))
        for col, gaps in self.fairness.items():
            text = ", ".join(f"{name.replace('_', ' ')} {value:.3g}" for name, value in gaps.items())
            lines.append(f"  fairness by {col!r} ({len(self.groups.get(col, {}))} groups): {text}")
        if self.importance:
            top = list(self.importance.items())[:_SUMMARY_FEATURES]
            lines.append("  top features: " + ", ".join(f"{name} {value:.3g}" for name, value in top))
        if self.notes:
            lines.append(
                f"  {len(self.notes)} note(s): " + self.notes[0] + (" …" if len(self.notes) > 1 else "")
            )
        return "\n".join(lines)


def _floats(values: dict[str, Any]) -> dict[str, float]:
    """Plain-float copy of a metric mapping, dropping values that JSON cannot carry (NaN, infinity)."""
    out: dict[str, float] = {}
    for key, value in values.items():
        number = float(value)
        if math.isfinite(number):
            out[str(key)] = number
    return out
