"""A stored evaluation as the model page shows it: its metrics, fairness by group, and plots.

Everything shown is what the registry recorded (``evaluation`` records, whose ``report`` is an
:class:`~shipyard.registry.evaluation.EvaluationReport` as ``to_dict`` wrote it): nothing is
recomputed here. The per-group bars are drawn from the recorded per-group values; the plots the
evaluation drew (PNG files on the record) are linked, since the record keeps no curve data to
redraw them from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shipyard.entities import ModelRecord

__all__ = [
    "BAR_METRICS",
    "Bar",
    "BarChart",
    "EvaluationView",
    "Fairness",
    "bar_chart",
    "evaluation_view",
    "plot_type",
]

BAR_METRICS = ("selection_rate", "tpr", "accuracy", "mae")
"""The per-group metric a column's bars show: the first of these its groups recorded."""
PLOT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
"""Evaluation files the pages show, by extension (anything else is not served)."""
MAX_IMPORTANCE = 10
LABEL_W, BAR_W, BAR_H, ROW_GAP, VALUE_W = 140, 300, 16, 6, 70
MAX_BAR_LABEL = 20


@dataclass(frozen=True)
class Bar:
    """One group's bar: its label (cut to fit), value, drawn width and top edge."""

    label: str
    value: float
    width: float
    y: float


@dataclass(frozen=True)
class BarChart:
    """Bars of one per-group metric, ready for an inline SVG."""

    metric: str
    bars: list[Bar]
    width: int
    height: int
    label_w: int = LABEL_W
    bar_h: int = BAR_H


@dataclass(frozen=True)
class Fairness:
    """One sensitive column: its groups' metrics (rows) and the gaps between them."""

    column: str
    metrics: list[str]
    groups: list[tuple[str, dict[str, float]]]
    gaps: dict[str, float]
    chart: BarChart | None


@dataclass(frozen=True)
class EvaluationView:
    """An evaluation record laid out for the page."""

    record: ModelRecord
    dataset: str
    target: str
    task: str
    rows: int | None
    computed_by: str
    metrics: dict[str, float]
    fairness: list[Fairness]
    importance: list[tuple[str, float]]
    plots: list[str]
    notes: list[str] = field(default_factory=list)


def bar_chart(groups: Mapping[str, Mapping[str, float]], metric: str) -> BarChart | None:
    """Horizontal bars of ``metric`` for each group that recorded it (groups sorted by name),
    scaled to the largest magnitude; None when no group has a finite value of it.

    Example:
        >>> c = bar_chart({"a": {"tpr": 0.5}, "b": {"tpr": 1.0}, "c": {}}, "tpr")
        >>> [(b.label, b.value, b.width) for b in c.bars], c.height
        ([('a', 0.5, 150.0), ('b', 1.0, 300.0)], 50)
    """
    values = [(g, float(m[metric])) for g, m in sorted(groups.items()) if _finite(m.get(metric))]
    if not values:
        return None
    top = max(abs(v) for _, v in values)
    bars = [
        Bar(_cut(g), v, abs(v) / top * BAR_W if top > 0 else 0.0, ROW_GAP + i * (BAR_H + ROW_GAP))
        for i, (g, v) in enumerate(values)
    ]
    height = ROW_GAP + len(bars) * (BAR_H + ROW_GAP)
    return BarChart(metric, bars, LABEL_W + BAR_W + VALUE_W, height)


def evaluation_view(record: ModelRecord) -> EvaluationView:
    """What the page shows of an evaluation record (missing parts are simply empty).

    Example:
        >>> r = ModelRecord(1, "m", 1, "evaluation", "ann", {"report": {"metrics": {"auc": 0.9}}}, 0)
        >>> evaluation_view(r).metrics
        {'auc': 0.9}
    """
    body = record.body
    report = _mapping(body.get("report"))
    groups = _mapping(report.get("groups"))
    fairness = []
    for column in sorted(set(groups) | set(_mapping(report.get("fairness")))):
        by_group = {str(g): _numbers(m) for g, m in _mapping(groups.get(column)).items()}
        names = sorted({k for m in by_group.values() for k in m}, key=_metric_order)
        shown = next((m for m in BAR_METRICS if m in names), None)
        fairness.append(
            Fairness(
                column,
                names,
                sorted(by_group.items()),
                _numbers(_mapping(report.get("fairness")).get(column)),
                bar_chart(by_group, shown) if shown else None,
            )
        )
    importance = sorted(_numbers(report.get("importance")).items(), key=lambda kv: -abs(kv[1]))
    plots = [f.path for f in record.files if _suffix(f.path) in PLOT_TYPES]
    rows = report.get("n_rows")
    return EvaluationView(
        record=record,
        dataset=str(body.get("dataset") or ""),
        target=str(body.get("target") or report.get("target") or ""),
        task=str(report.get("task") or ""),
        rows=rows if isinstance(rows, int) else None,
        computed_by=str(body.get("computed_by") or ""),
        metrics=_numbers(report.get("metrics")),
        fairness=fairness,
        importance=importance[:MAX_IMPORTANCE],
        plots=plots,
        notes=[str(n) for n in notes] if isinstance(notes := report.get("notes"), list) else [],
    )


def plot_type(path: str) -> str | None:
    """The content type an evaluation file is served with, or None when it is not shown."""
    return PLOT_TYPES.get(_suffix(path))


def _suffix(path: str) -> str:
    dot = path.rfind(".")
    return path[dot:].lower() if dot >= 0 else ""


def _metric_order(name: str) -> tuple[int, str]:
    return (0 if name == "n" else 1, name)  # the group's size first


def _cut(label: str) -> str:
    return label if len(label) <= MAX_BAR_LABEL else label[: MAX_BAR_LABEL - 1] + "…"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _numbers(value: Any) -> dict[str, float]:
    """The finite numbers of a recorded mapping (a record from a client may hold anything)."""
    return {str(k): float(v) for k, v in _mapping(value).items() if _finite(v)}
