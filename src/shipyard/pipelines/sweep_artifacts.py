"""What a finished sweep stores on its run: the trials table, parameter importances and plots.

- ``sweep/trials.csv``: :meth:`SweepResult.trials_frame`;
- ``sweep/param_importances.json``: ``optuna.importance`` (fANOVA when scikit-learn is installed,
  else PED-ANOVA), or the reason there are none (fewer than two complete trials);
- ``sweep/parallel_coordinates.png`` and ``sweep/param_importances.png`` with matplotlib;
- ``sweep/parallel_coordinates.html`` (self-contained) with plotly.

A missing plotting library is a note on the run (tag ``sy.sweep.plots``), never an error.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

from shipyard.tracking import ActiveRun

if TYPE_CHECKING:
    import optuna
    import pandas as pd

__all__ = ["importances", "log_sweep_artifacts"]


def importances(study: optuna.Study) -> tuple[dict[str, float], str]:
    """Parameter importances and the evaluator's name, or ({}, why there are none)."""
    import optuna
    from optuna.exceptions import ExperimentalWarning
    from optuna.trial import TrialState

    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < 2:
        return {}, "none: fewer than two complete trials"
    try:
        import sklearn  # noqa: F401

        evaluator: Any = optuna.importance.FanovaImportanceEvaluator(seed=0)
    except ModuleNotFoundError:
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except Exception as exc:  # e.g. a parameter that never varied; importances are a nicety
        return {}, f"none: {type(exc).__name__}: {exc}"
    return {k: float(v) for k, v in found.items()}, type(evaluator).__name__


def _axis_values(study: optuna.Study, name: str, values: list[Any]) -> list[float]:
    """A parameter's values on a 0..1 axis (log ranges in log space, choices by index)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    dist = next(t.distributions[name] for t in study.trials if name in t.distributions)
    if isinstance(dist, CategoricalDistribution):
        return [dist.choices.index(v) / max(1, len(dist.choices) - 1) for v in values]
    assert isinstance(dist, (FloatDistribution, IntDistribution))
    scale = math.log if dist.log else float
    low, high = scale(dist.low), scale(dist.high)
    return [(scale(v) - low) / ((high - low) or 1.0) for v in values]


def _matplotlib_figures(study: optuna.Study, found: dict[str, float], metric: str) -> dict[str, Any]:
    from matplotlib import colormaps
    from matplotlib.figure import Figure  # no pyplot: no global state, safe in any thread
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    names = sorted({k for t in complete for k in t.params})
    figures: dict[str, Any] = {}
    fig = Figure(figsize=(1.6 * (len(names) + 1), 4))
    ax = fig.add_subplot()
    values = [float(t.value or 0.0) for t in complete]
    low, high = min(values, default=0.0), max(values, default=1.0)
    columns = [_axis_values(study, n, [t.params.get(n) for t in complete]) for n in names]
    cmap = colormaps["viridis"]
    for i, value in enumerate(values):
        ys = [(value - low) / ((high - low) or 1.0)] + [col[i] for col in columns]
        ax.plot(range(len(ys)), ys, color=cmap((value - low) / ((high - low) or 1.0)), alpha=0.7)
    ax.set_xticks(range(len(names) + 1), [metric, *names])
    ax.set_yticks([])
    ax.set_title(f"{study.study_name}: {len(complete)} complete trials (colour: {metric})")
    figures["sweep/parallel_coordinates.png"] = fig
    if found:
        fig = Figure(figsize=(6, 0.4 * len(found) + 1.2))
        ax = fig.add_subplot()
        ordered = sorted(found.items(), key=lambda kv: kv[1])
        ax.barh([k for k, _ in ordered], [v for _, v in ordered])
        ax.set_xlabel("importance")
        ax.set_title(f"Parameter importances for {metric}")
        figures["sweep/param_importances.png"] = fig
    return figures


def log_sweep_artifacts(run: ActiveRun, study: optuna.Study, frame: pd.DataFrame, metric: str) -> None:
    """Store the trials table, importances and plots on the sweep run (see the module doc)."""
    run.log_text(frame.to_csv(index=False), "sweep/trials.csv")
    found, evaluator = importances(study)
    run.log_dict({"evaluator": evaluator, "importances": found}, "sweep/param_importances.json")
    missing = []
    try:
        figures = _matplotlib_figures(study, found, metric)
    except ModuleNotFoundError:
        missing.append("matplotlib (pip install 'shipyard[demo]')")
    else:
        for path, figure in figures.items():
            run.log_figure(figure, path)
    try:
        import optuna.visualization as vis

        if not vis.is_available():
            raise ModuleNotFoundError("plotly")
        run.log_figure(vis.plot_parallel_coordinate(study), "sweep/parallel_coordinates.html")
    except ModuleNotFoundError:
        missing.append("plotly (pip install plotly)")
    run.set_tags({"sy.sweep.plots": f"not made: install {' and '.join(missing)}" if missing else "made"})
