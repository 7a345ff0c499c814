"""The demo's retraining pipeline, triggered by a monitoring alert: newest labelled traffic in, a model out.

``flights_retraining`` is what the demo's ``retrain`` alert action runs (``sy.trigger_pipeline``):

1. ``newest_data`` reads the deployment's logged predictions joined with the labels that have arrived.
   The newest ``holdout_rows`` labelled rows become ``flights-recent`` (a dataset version the promotion
   policy judges every candidate and the champion on: data no model trained on); the older labelled
   traffic joins the original training data as a new version of ``flights-train``. The contract
   ``flights-features`` gets a new version inferred from every row seen (training, validation and
   traffic): wider (the months now run to December), never narrower.
2. ``refit`` fits the champion's model family and hyperparameters on the new training version (recorded
   as its ``train`` input: the lineage monitoring reads its drift reference from) and logs its metrics on
   the holdout. It returns the model; ``sy.complete_retrain`` registers it and runs the policy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score
from threadpoolctl import threadpool_limits

import shipyard as sy
from shipyard.data.versions import load_dataset, log_dataset
from shipyard.demo.data import CATEGORICAL, NUMERIC
from shipyard.demo.flow import CODE_VERSION, EXPERIMENT
from shipyard.demo.train import FeatureColumns, build_estimator, model_specs
from shipyard.demo.versioning import annotated_contract
from shipyard.errors import InvalidState
from shipyard.monitoring.labels import join_labels, read_feedback, read_predictions
from shipyard.pipelines import Pipeline
from shipyard.tracking import ActiveRun, Client
from shipyard.tracking.fluent import active_run

__all__ = ["HOLDOUT", "PIPELINE", "TRAIN", "flights_retraining", "labelled_traffic", "newest_data", "refit"]

PIPELINE = "flights-retraining"
TRAIN = "flights-train"
HOLDOUT = "flights-recent"
FEATURES = [*NUMERIC, *CATEGORICAL]


def labelled_traffic(deployment: str, client: Client) -> pd.DataFrame:
    """Every answered, labelled (non-shadow) prediction of the deployment: its logged inputs plus ``late``,
    oldest first."""
    rows, features = read_predictions(deployment, client=client)
    join = join_labels(rows, features, read_feedback(deployment, client=client))
    keep = join.labelled & ~rows["shadow"].to_numpy(dtype=bool)
    frame = features[keep].reset_index(drop=True)
    missing = [c for c in FEATURES if c not in frame.columns]
    if missing:
        raise InvalidState(f"The prediction log of '{deployment}' lacks feature columns {missing}")
    frame = frame[FEATURES].copy()
    for col in NUMERIC:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    for col in CATEGORICAL:
        frame[col] = frame[col].astype(str)
    frame["late"] = pd.Series(list(join.rows["label"][keep])).astype("int64").to_numpy()
    return frame


def _run() -> ActiveRun:
    run = active_run()
    if run is None:
        raise InvalidState("The retraining steps log on their step run; run them in flights_retraining")
    return run


@sy.step(version=CODE_VERSION)
def newest_data(deployment: str, train_ref: str, val_ref: str, holdout_rows: int) -> dict[str, Any]:
    """Version the newest data: the training data plus older labelled traffic, and a recent holdout."""
    run = _run()
    traffic = labelled_traffic(deployment, run.client)
    if len(traffic) < holdout_rows + 100:
        raise InvalidState(
            f"Only {len(traffic):,} labelled predictions of '{deployment}' so far; retraining holds out "
            f"{holdout_rows:,} and needs at least 100 more to learn from"
        )
    holdout, older = traffic.tail(holdout_rows), traffic.iloc[: len(traffic) - holdout_rows]
    run.use_dataset(train_ref, role="base")
    base = load_dataset(train_ref, client=run.client)[[*FEATURES, "late"]]
    # sorted: the same labelled rows give the same training data, whatever order the clients' requests
    # reached the log in (early stopping's validation split follows row order)
    older = older.sort_values([*FEATURES, "late"], kind="stable", na_position="last")
    train = pd.concat([base, older], ignore_index=True)
    # the contract's next version covers every row Shipyard has seen: a widening (the months now run to
    # December), never a narrowing that the earlier training and validation data would break
    run.use_dataset(val_ref, role="validation")
    seen = [train, holdout, load_dataset(val_ref, client=run.client)[[*FEATURES, "late"]]]
    contract = annotated_contract(pd.concat(seen, ignore_index=True))
    source = f"{train_ref} plus {len(older):,} labelled predictions of {deployment}"
    train_v = log_dataset(train, name=TRAIN, contract=contract, source=source, client=run.client)
    recent_v = log_dataset(
        holdout,
        name=HOLDOUT,
        contract=contract,
        source=f"the newest {len(holdout):,} labelled predictions of {deployment}",
        client=run.client,
    )
    run.use_dataset(recent_v, role="holdout")
    sy.log_metrics(
        {
            "labelled_predictions": len(traffic),
            "added_rows": len(older),
            "train_rows": len(train),
            "holdout_rows": len(holdout),
            "holdout_late_share": float(holdout["late"].mean()),
        }
    )
    return {"train": train_v.ref, "holdout": recent_v.ref}


@sy.step(version=CODE_VERSION)
def refit(data: dict[str, str], spec: str, quick: bool, seed: int) -> Any:
    """The champion's model family and hyperparameters, fitted on the new training version."""
    run = _run()
    specs = {s.name: s for s in model_specs(quick)}
    if spec not in specs:
        raise InvalidState(f"Unknown model spec {spec!r}; the demo's specs: {', '.join(specs)}")
    run.use_dataset(data["train"], role="train")
    train = load_dataset(data["train"], client=run.client)
    holdout = load_dataset(data["holdout"], client=run.client)
    estimator = build_estimator(specs[spec], FeatureColumns(list(NUMERIC), list(CATEGORICAL)), seed)
    with threadpool_limits(limits=1):
        estimator.fit(train[FEATURES], train["late"])
        proba = estimator.predict_proba(holdout[FEATURES])[:, 1]
    run.set_tags({"model_name": spec, "retrained": "true"})
    sy.log_metrics(
        {
            "holdout_auc": float(roc_auc_score(holdout["late"], proba)),
            "holdout_log_loss": float(log_loss(holdout["late"], proba)),
        }
    )
    return estimator


def _pipeline(fn: Callable[..., Any]) -> Pipeline:
    """``@sy.pipeline(name=PIPELINE, experiment=EXPERIMENT)``, typed."""
    return Pipeline(fn, PIPELINE, EXPERIMENT)


@_pipeline
def flights_retraining(
    deployment: str,
    train_ref: str,
    val_ref: str,
    spec: str,
    holdout_rows: int = 2_000,
    quick: bool = False,
    seed: int = 13,
) -> Any:
    """Retrain on the newest data (a demo alert's ``retrain`` action runs this)."""
    return refit(newest_data(deployment, train_ref, val_ref, holdout_rows), spec, quick, seed)
