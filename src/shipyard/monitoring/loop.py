"""The closed loop: from a retrain alert to a promoted (or blocked) challenger, every link recorded.

After an alert's ``retrain`` action ran its pipeline (``alerts.py``; the run id is on the alert),
:func:`complete_retrain`:

1. reads the pipeline run and takes the model output of its last step that produced one;
2. logs that model as the ``model`` artifact of that step run and registers it (``sy.register_model``) as
   the next version of the model the deployment serves, so the version's source run is the step run
   (lineage: alert → pipeline run → step run → version);
3. moves ``challenger`` onto it through the governed path (``sy.promote_model(..., alias="challenger")``:
   the model's policy applies to every alias);
4. evaluates challenger and champion on the most recent labelled window of the deployment (logged
   predictions joined with their labels) with ``sy.evaluate``, which stores an evaluation record on each;
5. runs the model's promotion policy for ``champion`` (``sy.promote_model``). Servers following
   ``champion`` swap when it moves. With ``approvals.required: 0`` (the default) a passing policy promotes
   on its own; otherwise the loop stops ``blocked`` with the policy's reasons (the missing approval) and
   :func:`complete_retrain` can be called again once the approval is in.

What happened is merged into the alert's actions under ``closed_loop`` (ids of the pipeline run, version,
evaluation and promotion records, and the reasons), which ``shipyard monitor alerts show ID`` renders.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from shipyard.entities import ModelVersion
from shipyard.errors import InvalidState, NotFound
from shipyard.monitoring.labels import join_labels, read_feedback, read_predictions
from shipyard.monitoring.query import query_predictions
from shipyard.pipelines.reads import get_pipeline_run
from shipyard.pipelines.runner import OutputRef, load_output
from shipyard.registry.core import register_model
from shipyard.registry.flavors import save_model_dir
from shipyard.registry.governance import evaluate, promote_model
from shipyard.tracking import Client
from shipyard.tracking.fluent import get_client

__all__ = ["ClosedLoop", "complete_retrain"]

HEADLINE = ("roc_auc", "accuracy", "f1", "log_loss", "mae", "rmse", "r2")


@dataclass
class ClosedLoop:
    """Where a retraining got to: ``status`` is ``promoted``, ``blocked`` (with ``reasons``) or ``failed``.

    ``evaluations`` maps ``challenger``/``champion`` to ``{"version", "record", "rows", "metrics"}``;
    ``challenger`` and ``promotion`` hold the two promotion decisions (status, reasons, record id).
    """

    alert: int
    status: str = "failed"
    pipeline_run: str | None = None
    pipeline_status: str | None = None
    step_run: str | None = None
    model: str | None = None
    version: int | None = None
    champion: int | None = None
    evaluations: dict[str, dict[str, Any]] = field(default_factory=dict)
    challenger: dict[str, Any] | None = None
    promotion: dict[str, Any] | None = None
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _model_output(run_id: str, client: Client, loop: ClosedLoop) -> Any:
    """The model output of the pipeline run's last step that produced one (its step run noted)."""
    info = get_pipeline_run(run_id, client=client)
    loop.pipeline_run, loop.pipeline_status = info.run_id, info.status
    if info.status != "finished":
        raise InvalidState(
            f"Pipeline run '{info.run_id}' is {info.status}, not finished: nothing to register"
        )
    for step in reversed(info.steps):
        for out in step.outputs:
            if out.get("materializer") == "model" and step.run_id:
                loop.step_run = step.run_id
                return load_output(client, OutputRef.from_dict(out))
    raise NotFound(
        f"Pipeline run '{info.run_id}' has no model output (steps: {', '.join(s.node for s in info.steps)}); "
        "the retrain pipeline must return a scikit-learn, XGBoost or LightGBM model from a step"
    )


def _served_model(deployment: str, root: str | os.PathLike[str] | None, client: Client) -> str:
    """The registered model the deployment's newest logged prediction came from."""
    frame = query_predictions(deployment, columns=["ts", "model"], root=root, client=client).collect()
    served = [str(m) for m in frame.sort("ts")["model"].drop_nulls()]
    if not served or not served[-1].startswith("models:/"):
        raise NotFound(
            f"Deployment '{deployment}' has logged no prediction from a registered model; pass model='NAME'"
        )
    return served[-1].removeprefix("models:/").split("/")[0].split("@")[0]


def _labelled_window(
    deployment: str, rows: int, target: str, root: str | os.PathLike[str] | None, client: Client
) -> pd.DataFrame:
    """The newest ``rows`` labelled, non-shadow predictions: their logged inputs plus ``target``."""
    preds, features = read_predictions(deployment, root=root, client=client)
    join = join_labels(preds, features, read_feedback(deployment, root=root, client=client))
    keep = join.labelled & ~join.rows["shadow"].to_numpy(dtype=bool)
    frame = features[keep].tail(rows).reset_index(drop=True)
    frame[target] = pd.Series(list(join.rows["label"][keep].tail(rows))).infer_objects()
    return frame


def _register(loop: ClosedLoop, model: Any, example: pd.DataFrame, client: Client) -> ModelVersion:
    assert loop.step_run is not None and loop.model is not None
    with tempfile.TemporaryDirectory(prefix="shipyard-retrain-") as tmp:
        folder = Path(tmp) / "model"
        save_model_dir(model, folder, input_example=example.head(5) if len(example) else None)
        client.log_artifact(loop.step_run, folder, "model")
    return register_model(
        loop.step_run,
        loop.model,
        client=client,
        description=f"retrained by alert {loop.alert} (pipeline run {loop.pipeline_run})",
        tags={"sy.alert": str(loop.alert), "sy.pipeline_run": str(loop.pipeline_run)},
    )


def _evaluate(
    loop: ClosedLoop, role: str, version: int, frame: pd.DataFrame, target: str, client: Client
) -> None:
    assert loop.model is not None
    report = evaluate(
        f"models:/{loop.model}/{version}", frame, target, explain=False, plots=False, client=client
    )
    record = client.store.list_model_records(loop.model, version, "evaluation")[-1]
    metrics = {k: float(v) for k, v in report.metrics.items() if k in HEADLINE and v is not None}
    loop.evaluations[role] = {"version": version, "record": record.id, "rows": len(frame), "metrics": metrics}


def _promote(loop: ClosedLoop, alias: str, client: Client) -> dict[str, Any]:
    assert loop.model is not None and loop.version is not None
    reason = f"closed loop of alert {loop.alert}"
    try:
        result = promote_model(loop.model, loop.version, alias=alias, reason=reason, client=client)
    except InvalidState as exc:  # already holds the alias (a resumed loop)
        return {"alias": alias, "status": "promoted", "reasons": [str(exc)], "record": None}
    record = client.store.list_model_records(loop.model, loop.version, "promotion")[-1]
    return {"alias": alias, "status": result.status, "reasons": result.reasons, "record": record.id}


def complete_retrain(
    alert_id: int,
    *,
    model: str | None = None,
    window_rows: int = 10_000,
    target: str = "label",
    root: str | os.PathLike[str] | None = None,
    client: Client | None = None,
) -> ClosedLoop:
    """Close the loop of an alert whose ``retrain`` action ran: register, evaluate, promote, record.

    Call it again after an approval arrives: it reuses the version it registered and retries promotion.

    Args:
        alert_id: The alert (its actions hold the retrain pipeline's run id).
        model: The registered model to add a version to (default: the one the deployment serves).
        window_rows: How many of the newest labelled predictions form the evaluation window.
        target: The label column's name in the evaluation frame.
        root: The prediction log's root. client: The client (default: the current one).

    Example:
        >>> loop = sy.complete_retrain(7)  # doctest: +SKIP
        >>> loop.status, loop.version, loop.reasons  # doctest: +SKIP
        ('blocked', 3, ["needs 1 more approval(s) from role 'approver' ..."])
    """
    client = client or get_client()
    alert = client.store.get_alert(alert_id)
    retrain = alert.actions.get("retrain")
    if not isinstance(retrain, dict) or not retrain.get("run_id"):
        raise InvalidState(
            f"Alert {alert_id} has no retrain run (actions: {sorted(alert.actions)}); only an alert whose "
            "rule has a `retrain` action that ran its pipeline can close the loop"
        )
    before = alert.actions.get("closed_loop")
    loop = ClosedLoop(alert=alert.id, pipeline_run=str(retrain["run_id"]))
    try:
        previous = before if isinstance(before, dict) else {}
        _run(loop, previous, alert.deployment, model, window_rows, target, root, client)
    except Exception as exc:  # a failed link is recorded on the alert; the monitoring pass goes on
        loop.status = "failed"
        loop.reasons.append(f"{type(exc).__name__}: {exc}")
    client.store.record_alert_actions(alert.id, {"closed_loop": loop.to_dict()})
    return loop


def _run(
    loop: ClosedLoop,
    before: dict[str, Any],
    deployment: str,
    model: str | None,
    window_rows: int,
    target: str,
    root: str | os.PathLike[str] | None,
    client: Client,
) -> None:
    assert loop.pipeline_run is not None
    trained = _model_output(loop.pipeline_run, client, loop)
    loop.model = model or before.get("model") or _served_model(deployment, root, client)
    frame = _labelled_window(deployment, window_rows, target, root, client)
    if before.get("version") and before.get("model") == loop.model:
        loop.version = int(before["version"])
    else:
        loop.version = _register(loop, trained, frame.drop(columns=[target]), client).version
    loop.champion = client.store.get_registered_model(loop.model).aliases.get("champion")
    loop.challenger = _promote(loop, "challenger", client)
    if frame.empty:
        loop.reasons.append(f"no labelled predictions of '{deployment}' yet: nothing evaluated on live data")
    else:
        _evaluate(loop, "challenger", loop.version, frame, target, client)
        if loop.champion is not None and loop.champion != loop.version:
            _evaluate(loop, "champion", loop.champion, frame, target, client)
    loop.promotion = _promote(loop, "champion", client)
    loop.status = str(loop.promotion["status"])
    loop.reasons += list(loop.promotion["reasons"]) if loop.status != "promoted" else []
