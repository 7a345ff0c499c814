"""The demo's training pipeline: load → validate → sweep → select, each step a tracked, cached run.

``flights_training`` reads the demo's two dataset versions (by digest, so the same data is the same
cache key), checks them against the ``flights-features`` contract at every step boundary, runs a
``sy.sweep`` over the model grid (each trial a run with its metrics, ROC curve and skops model) and
picks the best trial. A second run on the same data reuses every step from the cache: no model is
trained again and no trial run is added. The steps live at module level so process-pool and Ray
workers import them by name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

import shipyard as sy
from shipyard.data.versions import load_dataset
from shipyard.demo import data as _features_module
from shipyard.demo import train as _models_module
from shipyard.demo.data import CATEGORICAL, NUMERIC
from shipyard.demo.train import FeatureColumns, fit_and_log, model_specs
from shipyard.errors import InvalidState
from shipyard.pipelines import Pipeline
from shipyard.tracking import ActiveRun
from shipyard.tracking.fluent import active_run

__all__ = [
    "CONTRACT",
    "EXPERIMENT",
    "PIPELINE",
    "flights_training",
    "load",
    "select",
    "sweep_name",
    "train",
    "validate",
]

EXPERIMENT = "flights-delay"
PIPELINE = "flights-training"
CONTRACT = "flights-features"  # registered by the demo's version stage (inferred, then annotated)
METRIC = "val_auc"


def _code_version() -> str:
    """The demo's own code (this module, the models, the features) as the steps' cache version.

    Shipyard's code is in every cache key through its version; fingerprinting the functions the
    steps call would also follow Shipyard internals whenever Shipyard is installed from a checkout.
    """
    files = [Path(__file__), Path(str(_models_module.__file__)), Path(str(_features_module.__file__))]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]


CODE_VERSION = _code_version()


def sweep_name(step_run_id: str) -> str:
    """The sweep of one execution of the ``train`` step (a re-execution starts a new sweep)."""
    return f"flights-models-{step_run_id[:12]}"


def _run() -> ActiveRun:
    run = active_run()
    if run is None:  # called outside a pipeline: steps are plain functions then
        raise InvalidState("The demo's steps log on their step run; run them in flights_training")
    return run


@sy.step(contracts={"return": CONTRACT}, version=CODE_VERSION)
def load(train_ref: str, val_ref: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training and validation dataset versions (recorded as inputs of this step's run)."""
    run = _run()
    frames = []
    for ref, role in ((train_ref, "train"), (val_ref, "validation")):
        run.use_dataset(ref, role=role)
        frames.append(load_dataset(ref, client=run.client))
    return frames[0], frames[1]


@sy.step(contracts={"train": CONTRACT, "val": CONTRACT}, version=CODE_VERSION)
def validate(train: pd.DataFrame, val: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Contracts on the way in; then what a contract cannot say: both classes present, no shared rows."""
    for name, frame in (("train", train), ("val", val)):
        if frame["late"].nunique() != 2:
            raise InvalidState(f"The {name} split has only one class of 'late'; a model cannot learn from it")
    features = [*NUMERIC, *CATEGORICAL]
    shared = len(train[features].merge(val[features].drop_duplicates(), how="inner"))
    sy.log_metrics(
        {
            "train_rows": len(train),
            "val_rows": len(val),
            "train_late_share": float(train["late"].mean()),
            "val_late_share": float(val["late"].mean()),
            "rows_in_both_splits": shared,
        }
    )
    return train, val


@sy.step(contracts={"train": CONTRACT, "val": CONTRACT}, version=CODE_VERSION)
def train(
    train: pd.DataFrame,
    val: pd.DataFrame,
    datasets: dict[str, str],
    quick: bool,
    seed: int,
    parallel: int = 2,
) -> dict[str, Any]:
    """A grid sweep over the demo's models: one trial run per model, the best marked on the sweep run.

    ``datasets`` (role → dataset reference) is recorded on every trial run: its lineage.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the trial runs tell the story
    run = _run()
    specs = {spec.name: spec for spec in model_specs(quick)}
    columns = FeatureColumns(list(NUMERIC), list(CATEGORICAL))

    def objective(params: dict[str, Any]) -> float:
        trial = _run()  # the sweep activates each trial's run
        for role, ref in datasets.items():
            trial.use_dataset(ref, role=role)
        return fit_and_log(specs[params["spec"]], train, val, columns, seed, trial)[METRIC]

    result = sy.sweep(
        objective,
        {"spec": list(specs)},
        metric=METRIC,
        direction="maximize",
        sampler="grid",
        pruner=None,
        parallel=parallel,
        seed=seed,
        experiment=EXPERIMENT,
        name=sweep_name(run.id),
        client=run.client,
    )
    sy.log_metric("best_val_auc", result.best_value)
    return {
        "sweep": result.name,
        "sweep_run_id": result.run_id,
        "best_run_id": result.best_run_id,
        "best_value": result.best_value,
        "trials": len(result.trials_frame()),
    }


@sy.step(version=CODE_VERSION)
def select(sweep: dict[str, Any], val: pd.DataFrame) -> dict[str, Any]:
    """The sweep's best trial, checked against the majority baseline: the model to register."""
    client = _run().client
    best = client.get_run(sweep["best_run_id"])
    majority = 1 - float(val["late"].mean())
    if best.metrics.get(METRIC, 0.0) <= 0.5:
        raise InvalidState(
            f"The best trial (run {best.id}) has {METRIC} {best.metrics.get(METRIC)}: no better than chance"
        )
    sy.log_metrics({"best_val_auc": best.metrics[METRIC], "majority_accuracy": majority})
    return {
        "run_id": best.id,
        "name": best.tags.get("model_name", best.name),
        "family": best.params.get("model", ""),
        "metrics": {k: v for k, v in best.metrics.items() if k.startswith("val_") or k == "fit_time_s"},
        "majority_accuracy": majority,
        "sweep_run_id": sweep["sweep_run_id"],
        "trials": sweep["trials"],
    }


def _pipeline(fn: Callable[..., Any]) -> Pipeline:
    """``@sy.pipeline(name=PIPELINE, experiment=EXPERIMENT)``, typed."""
    return Pipeline(fn, PIPELINE, EXPERIMENT)


@_pipeline
def flights_training(train_ref: str, val_ref: str, quick: bool = False, seed: int = 13) -> Any:
    """The demo's training: every step a child run of the pipeline run, contracts at its boundaries."""
    train_frame, val_frame = validate(*load(train_ref, val_ref))
    datasets = {"train": train_ref, "validation": val_ref}
    return select(train(train_frame, val_frame, datasets, quick, seed), val_frame)
