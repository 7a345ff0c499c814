"""An evaluation record as the model page lays it out: recorded numbers only, in a stable order,
whatever a client stored; per-group bars scaled to the largest value; only image files shown."""

from __future__ import annotations

from typing import Any

from shipyard.entities import Artifact, ModelRecord
from shipyard.ui.evaluations import BAR_W, bar_chart, evaluation_view, plot_type


def _record(body: dict[str, Any], files: list[Artifact] | None = None) -> ModelRecord:
    return ModelRecord(7, "churn", 2, "evaluation", "ann", body, 0, files or [])


def test_bars_are_scaled_to_the_largest_value_and_skip_groups_without_it() -> None:
    chart = bar_chart(
        {"b": {"tpr": 0.2}, "a": {"tpr": 0.8}, "c": {"n": 3.0}, "d": {"tpr": float("nan")}}, "tpr"
    )
    assert chart is not None
    assert [(b.label, b.value, b.width) for b in chart.bars] == [("a", 0.8, BAR_W), ("b", 0.2, BAR_W / 4)]
    assert chart.bars[0].y < chart.bars[1].y and chart.height > chart.bars[1].y + chart.bar_h
    assert bar_chart({"a": {"n": 3.0}}, "tpr") is None


def test_negative_values_are_drawn_by_their_size() -> None:
    chart = bar_chart({"a": {"mean_error": -2.0}, "b": {"mean_error": 1.0}}, "mean_error")
    assert chart is not None and [b.width for b in chart.bars] == [BAR_W, BAR_W / 2]


def test_all_zero_values_draw_empty_bars() -> None:
    chart = bar_chart({"a": {"tpr": 0.0}}, "tpr")
    assert chart is not None and chart.bars[0].width == 0.0


def test_the_view_holds_what_the_record_holds() -> None:
    report = {
        "task": "classification",
        "n_rows": 50,
        "target": "y",
        "metrics": {"roc_auc": 0.75},
        "groups": {"region": {"west": {"tpr": 0.5, "n": 20.0, "fpr": 0.1}, "east": {"tpr": 0.25, "n": 30.0}}},
        "fairness": {"region": {"equalized_odds_difference": 0.25}},
        "importance": {"a": 0.1, "b": -0.3, "c": 0.2},
        "notes": ["small group"],
    }
    files = [Artifact("roc.png", "1" * 64, 3), Artifact("report.html", "2" * 64, 3)]
    view = evaluation_view(_record({"dataset": "flights@v2", "report": report}, files))
    assert (view.dataset, view.target, view.task, view.rows) == ("flights@v2", "y", "classification", 50)
    assert view.metrics == {"roc_auc": 0.75}
    [region] = view.fairness
    assert region.column == "region" and region.metrics == ["n", "fpr", "tpr"]  # the group's size first
    assert region.groups == [
        ("east", {"tpr": 0.25, "n": 30.0}),
        ("west", {"tpr": 0.5, "n": 20.0, "fpr": 0.1}),
    ]
    assert region.gaps == {"equalized_odds_difference": 0.25}
    assert region.chart is not None and region.chart.metric == "tpr"  # no selection rate recorded
    assert view.importance == [("b", -0.3), ("c", 0.2), ("a", 0.1)]  # by size
    assert view.plots == ["roc.png"] and view.notes == ["small group"]


def test_a_record_with_junk_in_it_still_shows() -> None:
    body = {
        "computed_by": "client",
        "report": {"metrics": {"auc": "high", "ok": True, "loss": 0.5}, "groups": {"g": "x"}, "notes": "n"},
    }
    view = evaluation_view(_record(body))
    assert view.metrics == {"loss": 0.5} and view.computed_by == "client"
    assert [f.groups for f in view.fairness] == [[]] and view.notes == [] and view.rows is None
    assert evaluation_view(_record({})).metrics == {}


def test_only_images_are_served() -> None:
    assert plot_type("roc.png") == "image/png" and plot_type("ROC.JPG") == "image/jpeg"
    assert plot_type("plot.svg") is None and plot_type("report.html") is None and plot_type("png") is None
