"""Monitoring held by the server's scheduler: a built-in pipeline that runs one monitoring pass.

:func:`schedule_monitoring` validates its arguments (the alert rules are parsed and stored in the
schedule's params, not read from a file at fire time) and saves a pipeline schedule
(``sy.schedule_pipeline``) of :data:`MONITOR_PIPELINE`, the one-step pipeline :func:`monitor` below. The
Shipyard server's scheduler fires it like any schedule: in a subprocess of a worker, once per fire time
however many workers run. The step is never cached (every fire must run a pass) and calls
:func:`~shipyard.monitoring.passes.monitor_pass` with the stored params; its output is the pass's summary
(pass id, requests read, each rule's outcome, notes), and the pipeline run is tagged with the schedule and
fire time as for every schedule. List and remove these schedules like any other
(``shipyard pipelines schedules ls`` / ``rm NAME``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipyard.data.versions import parse_dataset_ref
from shipyard.entities import LogBatch, PipelineSchedule, now_ms
from shipyard.errors import InvalidInput
from shipyard.monitoring.passes import monitor_pass
from shipyard.monitoring.rules import AlertRules, parse_rules
from shipyard.names import check_name
from shipyard.pipelines.pipeline import pipeline
from shipyard.pipelines.schedule import list_schedules, schedule_pipeline
from shipyard.pipelines.steps import step
from shipyard.tracking import ActiveRun, Client
from shipyard.tracking.fluent import active_run, get_client
from shipyard.tracking.run import MAX_PARAM_LEN

__all__ = ["MONITOR_PIPELINE", "list_monitoring_schedules", "monitor", "schedule_monitoring"]

MONITOR_PIPELINE = "shipyard.monitoring.scheduled:monitor"
"""The built-in pipeline a monitoring schedule runs (``module:name``, as ``sy.trigger_pipeline`` takes)."""
STALE_FIRE_S = 3600
"""A pass still ``running`` after this long is taken as dead (its server was killed): it blocks no fire."""
PASS_TAG = "sy.monitor.pass"
"""On a fire's step run: ``running`` while it runs its pass, ``skipped`` when it found another one."""
SCHEDULE_TAG = "sy.monitor.schedule"
"""On a fire's step run: the schedule whose pass it runs."""


@step(cache=False)  # a cache hit would skip the pass: every fire must read the log again
def monitoring_pass(
    deployment: str,
    rules: dict[str, Any] | None,
    reference: str | None,
    root: str | None,
    multivariate: bool,
) -> dict[str, Any]:
    """One incremental pass with the schedule's params; its summary is the step's output.

    Passes of one schedule never overlap (two passes reading from the same high-water mark would both
    count the same predictions): a fire that finds another fire's pass still running skips its own (a
    pass longer than the interval, e.g. one that retrains); passes are incremental, so the next fire
    reads what the skipped one would have.
    """
    run = active_run()
    client = run.client if run is not None else get_client()
    summary: dict[str, Any] = {
        "deployment": deployment,
        "pass": None,
        "since": None,
        "high_water_ms": None,
        "requests": 0,
        "reports": {},
        "outcomes": [],
        "notes": [],
        "skipped": False,
    }
    skip = None if run is None else _pass_running_elsewhere(run, client)
    if skip is not None:
        summary["skipped"] = True
        summary["notes"] = [skip]
        return summary
    result = monitor_pass(
        deployment, rules=rules, reference=reference, root=root, multivariate=multivariate, client=client
    )
    summary.update(
        {
            "pass": result.id,
            "since": result.since,
            "high_water_ms": result.high_water_ms,
            "requests": result.requests,
            "reports": result.reports,
            "outcomes": [
                {"rule": o.rule, "outcome": o.outcome, "alert": None if o.alert is None else o.alert.id}
                for o in result.outcomes
            ],
            "notes": result.notes,
        }
    )
    return summary


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def _pass_running_elsewhere(step_run: ActiveRun, client: Client) -> str | None:
    """None when this fire may run its pass, else why it skips: another fire of its schedule is in one.

    A fire flags its step run (tags :data:`PASS_TAG` and :data:`SCHEDULE_TAG`, written to the store at
    once) and then looks for other running step runs flagged for the same schedule that started less
    than :data:`STALE_FIRE_S` ago (a pass whose server was killed never ends and must not block
    forever). Flag first, look second: of two fires that overlap, at least one sees the other, so two
    passes never run at once (when both see each other both skip, and the next fire catches up).
    """
    if step_run.info.parent_run_id is None:
        return None
    tags = client.get_run(step_run.info.parent_run_id).tags
    name = tags.get("sy.schedule")
    if not name or not tags.get("sy.schedule.fire_time"):
        return None  # not a fire: run by hand (monitor.run(...)) or by trigger_pipeline
    client.store.log_batch(step_run.id, LogBatch(tags={PASS_TAG: "running", SCHEDULE_TAG: name}))
    flagged, _ = client.search_runs_page(
        filter=f"tags.`{PASS_TAG}` = 'running' and attributes.status = 'running'", limit=1000
    )
    now = now_ms()
    others = [
        r
        for r in flagged
        if r.id != step_run.id
        and r.tags.get(SCHEDULE_TAG) == name
        and now - r.start_time < STALE_FIRE_S * 1000
    ]
    if not others:
        return None
    client.store.log_batch(step_run.id, LogBatch(tags={PASS_TAG: "skipped"}))
    began = min(others, key=lambda r: r.start_time)
    return (
        f"skipped: the pass of step run {began.id} (started {_iso(began.start_time)}) was still running; "
        "the next fire reads what this one would have"
    )


def monitor(
    deployment: str,
    rules: dict[str, Any] | None = None,
    reference: str | None = None,
    root: str | None = None,
    multivariate: bool = True,
) -> Any:
    """One monitoring pass of ``deployment`` as a pipeline run (what a monitoring schedule fires)."""
    return monitoring_pass(deployment, rules, reference, root, multivariate)


# Decorated by call (the decorator is untyped) under the function's own name: the pipeline's reference
# is ``module:qualname``, which MONITOR_PIPELINE names.
monitor = pipeline(monitor, name="monitor", experiment="monitoring")


def _stored_rules(rules: AlertRules | str | Path | Mapping[str, Any], deployment: str) -> dict[str, Any]:
    """The rules as the JSON mapping the schedule keeps: parsed now, so a bad rule fails here."""
    parsed = parse_rules(rules)
    if parsed.deployment is not None and parsed.deployment != deployment:
        raise InvalidInput(
            f"The alert rules are for deployment '{parsed.deployment}' (their deployment: key) but the "
            f"schedule monitors '{deployment}'; fix the rules' deployment: or pass --deployment "
            f"{parsed.deployment}"
        )
    stored: dict[str, Any] = parsed.model_dump(mode="json")
    size = len(json.dumps(stored))
    if size > MAX_PARAM_LEN:
        raise InvalidInput(
            f"The alert rules are {size} characters as JSON; a schedule keeps at most {MAX_PARAM_LEN} "
            "(they are a pipeline run parameter): split them across several schedules"
        )
    return stored


def schedule_monitoring(
    deployment: str,
    *,
    every: str | float | None = None,
    cron: str | None = None,
    rules: AlertRules | str | Path | Mapping[str, Any] | None = None,
    reference: str | None = None,
    root: str | Path | None = None,
    multivariate: bool = True,
    name: str | None = None,
    timezone: str = "UTC",
    client: Client | None = None,
) -> PipelineSchedule:
    """Have the Shipyard server run a monitoring pass of ``deployment`` on a timetable.

    Saves a pipeline schedule (replacing one of the same name) of the built-in pipeline
    :data:`MONITOR_PIPELINE`; the server's scheduler runs each fire in a subprocess, so the
    passes, their alerts and any retraining happen while no terminal is open. Give exactly one of
    ``every`` (``"5m"``, ``"1h"`` or seconds, at least 1 s) and ``cron`` (``"*/10 * * * *"``).

    Args:
        deployment: The deployment whose prediction log the passes read.
        every, cron, timezone: The timetable, as for ``sy.schedule_pipeline``.
        rules: Alert rules (YAML text, a ``.yaml`` path, a mapping or :class:`AlertRules`); parsed now and
            stored in the schedule (editing the file later does not change it: schedule again).
        reference: The drift reference dataset version (``"flights@v3"``; default: the training data).
        root: The prediction log's root (default: where the server's model servers write it).
        multivariate: Run drift's domain classifier on each pass.
        name: The schedule's name (default ``monitor-<deployment>``).
        client: The client (default: the current one).

    Example:
        >>> sy.schedule_monitoring("churn", every="5m", rules="alerts.yaml")  # doctest: +SKIP
    """
    if not isinstance(deployment, str):
        raise InvalidInput(f"Deployment must be a name such as 'churn', got {type(deployment).__name__}")
    check_name("Deployment name", deployment)
    client = client or get_client()
    if reference is not None:
        if not isinstance(reference, str):
            raise InvalidInput(
                "A scheduled pass's reference must be a dataset version such as 'flights@v3', "
                f"got {type(reference).__name__}"
            )
        client.store.get_dataset_version(*parse_dataset_ref(reference))  # NotFound names it
    params: dict[str, Any] = {
        "deployment": deployment,
        "rules": None if rules is None else _stored_rules(rules, deployment),
        "reference": reference,
        "root": None if root is None else str(root),
        "multivariate": bool(multivariate),
    }
    return schedule_pipeline(
        MONITOR_PIPELINE,
        every=every,
        cron=cron,
        params=params,
        name=name or f"monitor-{deployment}",
        timezone=timezone,
        client=client,
    )


def list_monitoring_schedules(*, client: Client | None = None) -> list[PipelineSchedule]:
    """The schedules that run monitoring passes (their ``params`` hold the deployment and rules).

    Example:
        >>> [(s.name, s.params["deployment"]) for s in sy.list_monitoring_schedules()]  # doctest: +SKIP
    """
    return [s for s in list_schedules(client=client) if s.ref == MONITOR_PIPELINE]
