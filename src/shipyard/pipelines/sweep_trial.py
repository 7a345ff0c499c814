"""One sweep trial, wherever it runs (a thread of the driver, a Ray task): a child run of the sweep
run, the objective called with the run active, logged points of the metric reported to optuna (and
pruning), and the outcome handed back for the driver to tell optuna.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.config import Settings
from shipyard.entities import RunStatus
from shipyard.errors import InvalidInput
from shipyard.pipelines.pipeline import Pipeline
from shipyard.pipelines.runner import worker_client
from shipyard.pipelines.sweep_storage import StorageSpec, open_storage
from shipyard.tracking import ActiveRun, Client
from shipyard.tracking.fluent import activated

if TYPE_CHECKING:
    import optuna

__all__ = [
    "FAILURE_ATTR",
    "PROC_ATTR",
    "RUN_ATTR",
    "TrialOutcome",
    "TrialTask",
    "on_this_host",
    "process_dead",
    "process_id",
    "run_trial",
]

RUN_ATTR = "sy.run_id"  # optuna trial user attr: the trial's run
PROC_ATTR = "sy.process"  # "host|pid|start time" of the process running the trial
FAILURE_ATTR = "sy.failure"  # "error" (counted, like optuna's catch) or "killed" (re-run)


@dataclass(frozen=True)
class TrialTask:
    """Everything a worker (thread or Ray task) needs to run one trial."""

    objective: Callable[[dict[str, Any]], float] | Pipeline
    params: dict[str, Any]
    trial_id: int
    number: int
    study_name: str
    storage: StorageSpec
    pruner: Any  # an optuna pruner
    metric: str
    experiment: str
    sweep: str
    parent_run_id: str
    settings: Settings


@dataclass(frozen=True)
class TrialOutcome:
    """How a trial ended: ``complete`` (with its value), ``pruned``, ``failed``, or ``killed`` (settled
    as killed by another driver before it started: its retry runs the point)."""

    number: int
    run_id: str
    state: str
    value: float | None = None
    error: str = ""


def process_id() -> str:
    """This process as ``host|pid|start time``: a dead one is recognised even if its pid is reused."""
    import psutil

    return f"{socket.gethostname()}|{os.getpid()}|{psutil.Process().create_time():.2f}"


def on_this_host(ident: str | None) -> bool:
    """Whether ``ident`` (see :func:`process_id`) names a process of this host."""
    return (ident or "").partition("|")[0] == socket.gethostname()


def process_dead(ident: str | None) -> bool:
    """True when ``ident`` names a process of this host that no longer runs; False when unknown."""
    import psutil

    host, _, rest = (ident or "").partition("|")
    pid, _, started = rest.partition("|")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        return f"{psutil.Process(int(pid)).create_time():.2f}" != started
    except psutil.NoSuchProcess:
        return True


class _Reporter:
    """Turns logged points of the sweep's metric into optuna intermediate values; prunes."""

    def __init__(self, study: optuna.Study, trial_id: int, metric: str) -> None:
        self.study, self.trial_id, self.metric = study, trial_id, metric
        self.steps: set[int] = set()

    def __call__(self, key: str, value: float, step: int) -> None:
        if key != self.metric or step in self.steps or step < 0 or not math.isfinite(value):
            return
        import optuna

        self.steps.add(step)
        storage = self.study._storage
        storage.set_trial_intermediate_value(self.trial_id, step, value)
        if self.study.pruner.prune(self.study, storage.get_trial(self.trial_id)):
            raise optuna.TrialPruned(f"pruned at step {step} ({key}={value:g})")


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "item"):
        raise InvalidInput(f"{what} must be a number, got {type(value).__name__} {value!r:.60}")
    number = float(value.item() if hasattr(value, "item") else value)
    if not math.isfinite(number):
        raise InvalidInput(f"{what} is {number}, not a finite number")
    return number


def _pipeline_value(
    pipe: Pipeline, params: dict[str, Any], metric: str, client: Client, run: ActiveRun
) -> float:
    """Run the pipeline as a child of the trial run; its metric from the output or the runs."""
    result = pipe.run(client=client, parent_run_id=run.id, **params)
    run.set_tag("sy.trial.pipeline_run", result.run_id)
    output = result.output()
    if isinstance(output, Mapping) and metric in output:
        return _number(output[metric], f"Pipeline '{pipe.name}' output {metric!r}")
    for run_id in [result.run_id, *reversed([s.run_id for s in result.steps.values() if s.run_id])]:
        value = client.get_run(run_id).metrics.get(metric)
        if value is not None:
            return float(value)
    raise InvalidInput(
        f"Pipeline '{pipe.name}' (run {result.run_id}) produced no metric {metric!r}; return a dict "
        f"with {metric!r} from the pipeline function, or log it in a step with sy.log_metric"
    )


def _objective_value(task: TrialTask, client: Client, run: ActiveRun) -> float:
    if isinstance(task.objective, Pipeline):
        return _pipeline_value(task.objective, dict(task.params), task.metric, client, run)
    with activated(run):
        value = task.objective(dict(task.params))
    return _number(value, f"The objective's return value (metric {task.metric!r})")


def _load_study(task: TrialTask) -> optuna.Study:
    import optuna

    return optuna.load_study(
        study_name=task.study_name, storage=open_storage(task.storage), pruner=task.pruner
    )


class _Settled(Exception):
    """The trial ended in optuna before its run was linked to it."""

    def __init__(self, run: ActiveRun) -> None:
        super().__init__(run.id)
        self.run = run


def _start_run(task: TrialTask, client: Client, study: optuna.Study) -> ActiveRun:
    """The trial's run, recorded on the optuna trial with the process that runs it."""
    run = client.start_run(
        task.experiment,
        name=f"trial-{task.number}",
        params=task.params,
        parent=task.parent_run_id,
        tags={
            "sy.run_type": "sweep_trial",
            "sy.sweep": task.sweep,
            "sy.sweep.run": task.parent_run_id,
            "sy.trial": task.number,
            "sy.trial_state": "running",
        },
        system_metrics=False,
        log_environment=False,
    )
    run.flush()  # on the server now: the study records its id, and a resumed driver looks for it
    from optuna.exceptions import UpdateFinishedTrialError

    storage = study._storage
    try:
        storage.set_trial_user_attr(task.trial_id, RUN_ATTR, run.id)
        storage.set_trial_user_attr(task.trial_id, PROC_ATTR, process_id())
    except UpdateFinishedTrialError:
        raise _Settled(run) from None
    if storage.get_trial(task.trial_id).user_attrs.get(FAILURE_ATTR) == "killed":
        raise _Settled(run)  # a driver is settling it as killed (see sweep._Driver._taken_up)
    return run


def _abandon(run: ActiveRun) -> None:
    """The trial was settled as killed before this worker linked its run (its driver died while the
    task waited): the run ends killed and the objective does not run; the trial's retry runs it."""
    run.set_tags({"sy.trial_state": "failed", "sy.trial_failure": "killed"})
    run.end(RunStatus.KILLED)


def run_trial(
    task: TrialTask, client: Client | None = None, study: optuna.Study | None = None
) -> TrialOutcome:
    """Run one trial as a child run of the sweep run; never raises for a failure of the objective.

    Example:
        >>> outcome = run_trial(task)  # doctest: +SKIP
        >>> outcome.state, outcome.value  # doctest: +SKIP
        ('complete', 0.97)
    """
    import optuna

    client = client or worker_client(task.settings)
    study = study or _load_study(task)
    try:
        run = _start_run(task, client, study)
    except _Settled as settled:
        _abandon(settled.run)
        return TrialOutcome(task.number, settled.run.id, "killed")
    reporter = _Reporter(study, task.trial_id, task.metric)
    run.on_metric.append(reporter)
    try:
        value = _objective_value(task, client, run)
    except optuna.TrialPruned:
        run.set_tags({"sy.trial_state": "pruned"})
        run.end(RunStatus.KILLED)
        return TrialOutcome(task.number, run.id, "pruned")
    except Exception as exc:
        run._record_failure(exc, exc.__traceback__)
        run.set_tags({"sy.trial_state": "failed", "sy.trial_failure": "error"})
        run.end(RunStatus.FAILED)
        return TrialOutcome(task.number, run.id, "failed", error=f"{type(exc).__name__}: {exc}"[:500])
    except BaseException:  # interrupted (Ctrl-C): the sweep's next run re-runs this trial
        run.set_tags({"sy.trial_state": "failed", "sy.trial_failure": "killed"})
        run.end(RunStatus.KILLED)
        raise
    run.on_metric.remove(reporter)
    if not reporter.steps:  # the objective did not log the metric: its value is the history
        run.log_metric(task.metric, value)
    run.set_tags({"sy.trial_state": "complete", "sy.trial_value": repr(value)})
    run.end(RunStatus.FINISHED)
    return TrialOutcome(task.number, run.id, "complete", value)
