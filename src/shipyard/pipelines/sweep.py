"""``sy.sweep``: search a parameter space with optuna; one tracked child run per trial.

The sweep is a parent run (tag ``sy.run_type=sweep``); each trial is a child run (tag
``sy.run_type=sweep_trial``) holding its params and the history of the metric. The driver process
asks optuna for parameters and tells it the outcomes; trials run in threads (``executor="local"``)
or as Ray tasks (``executor="ray"``). An objective reports intermediate values by logging the
sweep's metric with a step (``sy.log_metric("auc", v, step=epoch)``): each such point goes to
optuna, and when the pruner says so the call raises ``optuna.TrialPruned``, which ends the trial as
pruned. The study lives in optuna storage beside Shipyard's database (see
:mod:`shipyard.pipelines.sweep_storage`), so a sweep with the same name resumes.

Resume after a killed driver: a trial that was running when its process died (its process is gone
from this host, or its run's heartbeat expired) is marked failed in optuna (user attr
``sy.failure=killed``) and on its run (status ``killed``, ``sy.trial_state=failed``), is not counted,
and runs again with the same parameters (an optuna trial enqueued with user attr ``sy.retry_of``).
A trial whose run finished before the kill but that optuna never heard of is told from its run. So
the store ends with exactly ``trials`` trial runs that finished or were pruned.

A driver dies between ``study.ask`` and tagging the new trial with its process too (sampling takes
a while): such a trial carries no owner. Each driver therefore says on the study, in a user attr
``sy.claiming.<driver>``, which process is asking right now (``""`` when none); an untagged trial is
settled at once when no live process is asking, and only after ``_UNTAGGED_S`` when a process on
another host is (its liveness cannot be seen from here). An untagged trial with params (the sampler
had chosen them) is re-run with them; one without params never had a point and is only marked killed.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shipyard.entities import LogBatch, RunStatus
from shipyard.errors import InvalidInput, NotFound, PipelineFailed
from shipyard.pipelines.pipeline import Pipeline
from shipyard.pipelines.sweep_artifacts import log_sweep_artifacts
from shipyard.pipelines.sweep_space import (
    SAMPLERS,
    check_choice,
    describe,
    grid_size,
    make_pruner,
    make_sampler,
    parse_space,
    require_optuna,
    space_json,
)
from shipyard.pipelines.sweep_storage import StorageSpec, open_storage, resolve_storage
from shipyard.pipelines.sweep_trial import (
    FAILURE_ATTR,
    PROC_ATTR,
    RUN_ATTR,
    TrialOutcome,
    TrialTask,
    on_this_host,
    process_dead,
    process_id,
    run_trial,
)
from shipyard.tracking import ActiveRun, Client
from shipyard.tracking.fluent import get_client

if TYPE_CHECKING:
    import optuna
    import pandas as pd
    from optuna.distributions import BaseDistribution
    from optuna.pruners import BasePruner
    from optuna.samplers import BaseSampler
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

    from shipyard.pipelines.sweep_ray import RayTrials

__all__ = ["SweepResult", "sweep"]

PARENT_ATTR = "sy.parent_run_id"  # optuna study user attr: the sweep's run
SPACE_ATTR = "sy.space"
METRIC_ATTR = "sy.metric"
DEFAULT_TRIALS = 20
_POLL_S = 0.5  # how often a driver with nothing left to run looks at other drivers' trials
CLAIM_PREFIX = "sy.claiming."  # study user attr per driver: the process asking optuna for a trial, or ""
RETRY_ATTR = "sy.retry_of"  # optuna trial user attr: the number of the killed trial it runs again
# Grace for what cannot be seen from this host: an untagged trial while a process on another host is
# asking, or a killed trial whose settler died before enqueueing its retry.
_UNTAGGED_S = 10.0
_CLAIMING: set[str] = set()  # this process's drivers that are inside study.ask right now
_CLAIMING_LOCK = threading.Lock()


# -- where trials run ------------------------------------------------------------------------------
class _Threads:
    """``parallel`` trials at once in threads of the driver (one: in the driver's own thread)."""

    def __init__(self, parallel: int, client: Client, study: optuna.Study) -> None:
        self.client, self.study = client, study
        self.pool = cf.ThreadPoolExecutor(parallel, "shipyard-trial") if parallel > 1 else None

    def submit(self, task: TrialTask) -> cf.Future[TrialOutcome]:
        if self.pool is not None:
            return self.pool.submit(run_trial, task, self.client, self.study)
        future: cf.Future[TrialOutcome] = cf.Future()
        future.set_result(run_trial(task, self.client, self.study))
        return future

    def close(self, wait: bool) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=wait, cancel_futures=True)


# -- the driver ------------------------------------------------------------------------------------
@dataclass
class _Config:
    name: str
    experiment: str
    metric: str
    direction: str
    trials: int
    parallel: int
    executor: str
    dists: dict[str, BaseDistribution]
    fixed: dict[str, Any]
    sampler: str | BaseSampler
    pruner: str | BasePruner | None
    seed: int | None
    storage: StorageSpec
    ray_address: str | None = None


class _Driver:
    """Opens (or resumes) the study and the sweep run, keeps ``parallel`` trials going, marks the best."""

    def __init__(self, objective: Any, cfg: _Config, client: Client) -> None:
        self.objective, self.cfg, self.client = objective, cfg, client
        self.claim_key = f"{CLAIM_PREFIX}{uuid.uuid4().hex[:16]}"
        self.study = self._open_study()
        self.parent = self._parent_run()

    def _open_study(self) -> optuna.Study:
        import optuna

        cfg = self.cfg
        storage: BaseStorage = open_storage(cfg.storage)
        direction = optuna.study.StudyDirection[cfg.direction.upper()]
        study = optuna.create_study(
            storage=storage, study_name=cfg.name, direction=direction, load_if_exists=True
        )
        seen = len(study._storage.get_all_trials(study._study_id, deepcopy=False))
        seed = None if cfg.seed is None else cfg.seed + seen  # a resumed sweep does not repeat points
        study.sampler = make_sampler(cfg.sampler, cfg.dists, seed)
        study.pruner = make_pruner(cfg.pruner)
        self._check_same_sweep(study)
        return study

    def _check_same_sweep(self, study: optuna.Study) -> None:
        cfg, attrs = self.cfg, self.study_attrs(study)
        space = space_json(cfg.dists, cfg.fixed)
        mine = {SPACE_ATTR: space, METRIC_ATTR: cfg.metric}
        for key, value in mine.items():
            if key not in attrs:
                study.set_user_attr(key, value)
            elif attrs[key] != value:
                raise InvalidInput(
                    f"Sweep '{cfg.name}' already exists (storage {cfg.storage.describe()}) with another "
                    f"{key.removeprefix('sy.')}: {attrs[key]!s:.200} (now {value!s:.200}); resume it "
                    "with the same space and metric, or start a new sweep with another name="
                )
        if study.direction.name.lower() != cfg.direction:
            raise InvalidInput(
                f"Sweep '{cfg.name}' already exists with direction '{study.direction.name.lower()}'; "
                f"resume it with that direction, or start a new sweep with another name="
            )

    @staticmethod
    def study_attrs(study: optuna.Study) -> dict[str, Any]:
        return study._storage.get_study_user_attrs(study._study_id)

    def _parent_run(self) -> ActiveRun:
        cfg = self.cfg
        tags = {
            "sy.run_type": "sweep",
            "sy.sweep": cfg.name,
            "sy.sweep.metric": cfg.metric,
            "sy.sweep.direction": cfg.direction,
            "sy.sweep.trials": cfg.trials,
            "sy.sweep.parallel": cfg.parallel,
            "sy.sweep.executor": cfg.executor,
            "sy.sweep.sampler": describe(cfg.sampler),
            "sy.sweep.pruner": describe(cfg.pruner),
            "sy.sweep.storage": cfg.storage.describe(),
            "sy.sweep.space": space_json(cfg.dists, cfg.fixed),
            "sy.sweep_status": "running",
        }
        if self.objective_is_pipeline:
            tags["sy.sweep.pipeline"] = self.objective.name
        run_id = self.study_attrs(self.study).get(PARENT_ATTR)
        if run_id:
            try:
                run = ActiveRun(self.client, self.client.get_run(run_id))
            except NotFound:
                run_id = None
            else:
                self.client.store.update_run(run_id, status=RunStatus.RUNNING)
                run.set_tags({**tags, "sy.sweep.resumed": "true"})
                return run
        run = self.client.start_run(cfg.experiment, name=cfg.name, tags=tags, system_metrics=False)
        run.flush()  # on the server now: trials in other processes name it as their parent
        self.study.set_user_attr(PARENT_ATTR, run.id)
        return run

    @property
    def objective_is_pipeline(self) -> bool:
        return isinstance(self.objective, Pipeline)

    # -- counting and reconciling -------------------------------------------------------------
    def _counted(self) -> int:
        """Trials that count toward ``trials``: ended ones (not killed) and those running now."""
        from optuna.trial import TrialState

        live = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        return sum(
            t.state in live or (t.state == TrialState.FAIL and t.user_attrs.get(FAILURE_ATTR) == "error")
            for t in self.study.get_trials(deepcopy=False)
        )

    def reconcile(self) -> int:
        """Settle trials left running by dead processes, re-enqueue lost retries; how many changed."""
        from optuna.trial import TrialState

        trials = self.study.get_trials(deepcopy=False)
        claimers = _Claimers(self.study_attrs(self.study))  # read after the trials: see _abandoned
        settled = 0
        for t in trials:
            if t.state == TrialState.RUNNING:
                fate = self._fate(t, claimers)
                if fate is not None:
                    settled += self._settle(t, *fate)
        return settled + self._requeue_lost_retries(trials)

    def _fate(self, t: FrozenTrial, claimers: _Claimers) -> tuple[str, float | None] | None:
        """What became of a running trial: None while its process may live, else (state, value)."""
        run_id = t.user_attrs.get(RUN_ATTR)
        if not run_id:
            owner = t.user_attrs.get(PROC_ATTR)
            if owner is None:  # asked, then its driver died before tagging it
                return ("killed", None) if self._abandoned(t, claimers) else None
            return ("killed", None) if process_dead(owner) else None
        try:
            run = self.client.get_run(run_id)
        except NotFound:
            return "killed", None
        if run.status == RunStatus.RUNNING:
            return ("killed", None) if process_dead(t.user_attrs.get(PROC_ATTR)) else None
        state = run.tags.get("sy.trial_state")
        if state == "complete":
            return "complete", float(run.tags["sy.trial_value"])
        if state == "pruned" or (state == "failed" and run.tags.get("sy.trial_failure") == "error"):
            return ("pruned" if state == "pruned" else "failed"), None
        return "killed", None

    def _abandoned(self, t: FrozenTrial, claimers: _Claimers) -> bool:
        """Whether an untagged running trial's driver is gone. A driver sets its claim before
        ``study.ask`` and clears it after tagging the trial; the claims were read after ``t``, so if
        no live process was claiming then and ``t`` is still untagged now, nobody will tag it."""
        if claimers.live:
            return False
        if claimers.remote and _age(t.datetime_start) < _UNTAGGED_S:
            return False
        fresh = self.study._storage.get_trial(t._trial_id)
        return fresh.state.name == "RUNNING" and PROC_ATTR not in fresh.user_attrs

    def _settle(self, t: FrozenTrial, state: str, value: float | None) -> int:
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        storage = self.study._storage
        if state in ("complete", "pruned"):
            final = TrialState.COMPLETE if state == "complete" else TrialState.PRUNED
            self.study.tell(
                t.number, value if state == "complete" else None, state=final, skip_if_finished=True
            )
            return 1
        try:
            storage.set_trial_user_attr(t._trial_id, FAILURE_ATTR, "error" if state == "failed" else "killed")
            if state == "killed" and self._taken_up(t):
                storage.set_trial_user_attr(t._trial_id, FAILURE_ATTR, "")
                return 0
            if not storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                return 0
        except UpdateFinishedTrialError:
            return 0  # another driver settled it first
        if state == "killed":
            self._mark_killed_run(t.user_attrs.get(RUN_ATTR), t.number)
            self._retry(t)
        return 1

    def _taken_up(self, t: FrozenTrial) -> bool:
        """Whether a worker linked its run to ``t`` since ``t`` was read (a task of a dead driver that
        a surviving worker just started). The worker links, then reads ``sy.failure``; this driver
        wrote ``sy.failure=killed``, then reads the links: one of the two sees the other, so a trial
        is never both killed here and run there (the worker, seeing ``killed``, ends its run)."""
        fresh = self.study._storage.get_trial(t._trial_id).user_attrs
        return any(fresh.get(k) != t.user_attrs.get(k) for k in (RUN_ATTR, PROC_ATTR))

    def _retry(self, t: FrozenTrial) -> None:
        """Run a killed trial's point again. A trial killed before the sampler gave it params never
        had a point: the next ``ask`` samples a new one in its place."""
        if t.params:
            self.study.enqueue_trial(t.params, user_attrs={RETRY_ATTR: t.number})

    def _requeue_lost_retries(self, trials: list[FrozenTrial]) -> int:
        """A driver killed between settling a trial and enqueueing its retry lost the retry: enqueue
        it once the settling is ``_UNTAGGED_S`` old (a live settler enqueues milliseconds after)."""
        from optuna.trial import TrialState

        retried = {t.user_attrs.get(RETRY_ATTR) for t in trials}
        lost = [
            t
            for t in trials
            if t.state == TrialState.FAIL
            and t.user_attrs.get(FAILURE_ATTR) == "killed"
            and t.params
            and t.number not in retried
            and _age(t.datetime_complete) >= _UNTAGGED_S
        ]
        for t in lost:
            self._retry(t)
        return len(lost)

    def _mark_killed_run(self, run_id: str | None, number: int) -> None:
        if not run_id:  # killed between starting its run and linking it: find the run by its tags
            query = f"tags.`sy.sweep.run` = '{self.parent.id}' and tags.`sy.trial` = '{number}'"
            runs, _ = self.client.search_runs_page(self.cfg.experiment, filter=query, limit=10)
            for run in runs:
                self._mark_killed_run(run.id, number)
            return
        store = self.client.store
        try:
            store.log_batch(run_id, LogBatch(tags={"sy.trial_state": "failed", "sy.trial_failure": "killed"}))
            if self.client.get_run(run_id).status == RunStatus.RUNNING:
                store.update_run(run_id, status=RunStatus.KILLED)
        except NotFound:
            return

    # -- the loop ------------------------------------------------------------------------------
    def _task(self, trial: optuna.Trial) -> TrialTask:
        cfg = self.cfg
        return TrialTask(
            self.objective,
            {**cfg.fixed, **trial.params},
            trial._trial_id,
            trial.number,
            cfg.name,
            cfg.storage,
            self.study.pruner,
            cfg.metric,
            cfg.experiment,
            cfg.name,
            self.parent.id,
            self.client.settings,
        )

    def _claim(self) -> optuna.Trial | None:
        """A new trial when fewer than ``trials`` are counted; None when the sweep is full. While
        asking, the driver's claim names this process (see :meth:`_abandoned`)."""
        if self._counted() >= self.cfg.trials:
            return None
        me = process_id()
        with _CLAIMING_LOCK:
            _CLAIMING.add(self.claim_key)
        try:
            self.study.set_user_attr(self.claim_key, me)
            trial = self.study.ask(self.cfg.dists)
            trial.set_user_attr(PROC_ATTR, me)
        finally:  # also when interrupted mid-ask: the untagged trial is then anybody's to settle
            with _CLAIMING_LOCK:
                _CLAIMING.discard(self.claim_key)
            self.study.set_user_attr(self.claim_key, "")
        return trial

    def run(self) -> None:
        runner: _Threads | RayTrials
        if self.cfg.executor == "ray":
            from shipyard.pipelines.sweep_ray import RayTrials  # the Ray path only: ray is optional

            runner = RayTrials(self.client, self.cfg.ray_address)
        else:
            runner = _Threads(self.cfg.parallel, self.client, self.study)
        try:
            self._loop(runner)
        except BaseException:
            runner.close(wait=False)
            self._interrupted()
            raise
        runner.close(wait=True)

    def _loop(self, runner: _Threads | RayTrials) -> None:
        """Keep ``parallel`` trials going until ``trials`` are counted and none is running anywhere."""
        from optuna.trial import TrialState

        running: dict[cf.Future[TrialOutcome], optuna.Trial] = {}
        self.reconcile()
        while True:
            while len(running) < self.cfg.parallel and (trial := self._claim()) is not None:
                running[runner.submit(self._task(trial))] = trial
            if running:
                done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    self._tell(running.pop(future), future)
            elif self.reconcile():  # another driver's process died: its trials run again here
                continue
            elif self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                time.sleep(_POLL_S)  # other drivers' trials: the result waits for them
            else:
                return

    def _tell(self, trial: optuna.Trial, future: cf.Future[TrialOutcome]) -> None:
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        try:
            outcome = future.result()
        except Exception as exc:  # the worker itself died (a Ray worker killed, out of memory)
            outcome = TrialOutcome(trial.number, "", "failed", error=f"{type(exc).__name__}: {exc}")
        if outcome.state == "killed":  # settled as killed before its worker started it: nothing to tell
            return
        if outcome.state == "complete":
            self.study.tell(trial, outcome.value, skip_if_finished=True)
        elif outcome.state == "pruned":
            self.study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
        else:
            try:
                trial.set_user_attr(FAILURE_ATTR, "error")
                trial.set_user_attr("sy.error", outcome.error)
            except UpdateFinishedTrialError:
                return  # its worker died and another driver settled it as killed already
            self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)

    def _interrupted(self) -> None:
        """The driver is stopping mid-sweep (Ctrl-C). Trials in flight stay as they are: the next
        run of the sweep tells optuna what their runs recorded, or re-runs them if they died."""
        self.parent.set_tags({"sy.sweep_status": "interrupted"})
        self.parent.end(RunStatus.KILLED)

    # -- the end -------------------------------------------------------------------------------
    def finish(self) -> SweepResult:
        """Mark the best trial on the sweep run, store the artifacts, end the run; the result."""
        from optuna.trial import TrialState

        cfg, parent = self.cfg, self.parent
        trials = self.study.get_trials(deepcopy=False)
        counts = {s: sum(t.state == s for t in trials) for s in (TrialState.COMPLETE, TrialState.PRUNED)}
        failed = [
            t for t in trials if t.state == TrialState.FAIL and t.user_attrs.get(FAILURE_ATTR) == "error"
        ]
        parent.log_metrics(
            {
                "sweep.trials_complete": counts[TrialState.COMPLETE],
                "sweep.trials_pruned": counts[TrialState.PRUNED],
                "sweep.trials_failed": len(failed),
            }
        )
        if not counts[TrialState.COMPLETE]:
            parent.set_tags({"sy.sweep_status": "failed"})
            parent.end(RunStatus.FAILED)
            first = failed[0].user_attrs.get("sy.error", "") if failed else "every trial was pruned"
            raise PipelineFailed(
                f"Sweep '{cfg.name}' has no complete trial out of {len(trials)} ({first}); see the trial "
                f"runs of sweep run {parent.id} (tag sy.sweep.run)",
                details={"sweep_run_id": parent.id, "sweep": cfg.name},
            )
        best = self.study.best_trial
        best_run = str(best.user_attrs.get(RUN_ATTR, ""))
        self._mark_best(best_run)
        parent.log_metric(f"best.{cfg.metric}", float(best.value or 0.0))
        parent.set_tags(
            {
                "sy.best_trial": best.number,
                "sy.best_run_id": best_run,
                "sy.best_params": json.dumps(best.params, default=str),
                "sy.sweep_status": "finished",
            }
        )
        result = SweepResult(cfg.name, parent.id, cfg.metric, cfg.direction, self.study, self.client)
        log_sweep_artifacts(parent, self.study, result.trials_frame(), cfg.metric)
        parent.end(RunStatus.FINISHED)
        return result

    def _mark_best(self, best_run: str) -> None:
        previous = self.client.get_run(self.parent.id).tags.get("sy.best_run_id")
        if previous and previous != best_run:
            self.client.store.log_batch(previous, LogBatch(tags={"sy.best_trial": "false"}))
        if best_run:
            self.client.store.log_batch(best_run, LogBatch(tags={"sy.best_trial": "true"}))


class _Claimers:
    """The drivers asking optuna for a trial right now (study user attrs ``sy.claiming.*``):
    ``live`` when one of them is a process alive on this host (this process: a driver of it is in
    ``study.ask``), ``remote`` when one runs on another host (its liveness is unknown here)."""

    def __init__(self, attrs: Mapping[str, Any]) -> None:
        self.live = self.remote = False
        me = process_id()
        with _CLAIMING_LOCK:
            mine = set(_CLAIMING)
        for key, proc in attrs.items():
            if not key.startswith(CLAIM_PREFIX) or not proc:
                continue
            if proc == me:
                self.live |= key in mine
            elif not process_dead(proc):
                self.live |= on_this_host(proc)
                self.remote |= not on_this_host(proc)


def _age(moment: datetime | None) -> float:
    """Seconds since an optuna timestamp (naive local time); infinite when there is none."""
    if moment is None:
        return math.inf
    return (datetime.now(moment.tzinfo) - moment).total_seconds()


@dataclass
class SweepResult:
    """A sweep's outcome: the best trial, every trial as a DataFrame, and the optuna study.

    Example:
        >>> result.best_params, result.best_value, result.best_run_id  # doctest: +SKIP
        ({'C': 0.8}, 0.97, '3f2a…')
        >>> result.trials_frame().sort_values("value").tail(3)  # doctest: +SKIP
    """

    name: str
    run_id: str
    metric: str
    direction: str
    study: Any = field(repr=False)  # optuna.Study
    _client: Client = field(repr=False)

    @property
    def best_trial(self) -> int:
        return int(self.study.best_trial.number)

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.study.best_trial.params)

    @property
    def best_value(self) -> float:
        return float(self.study.best_trial.value)

    @property
    def best_run_id(self) -> str:
        return str(self.study.best_trial.user_attrs.get(RUN_ATTR, ""))

    def trials_frame(self) -> pd.DataFrame:
        """One row per trial: ``trial``, ``run_id``, ``state`` (complete, pruned, failed, running),
        ``value``, ``params.<name>`` per searched parameter, ``steps`` (intermediate values
        reported), ``duration_s`` and ``failure`` (``error``/``killed`` for failed trials)."""
        import pandas as pd
        from optuna.trial import TrialState

        states = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}
        rows, names = [], set()
        for t in self.study.get_trials(deepcopy=False):
            if t.state == TrialState.WAITING:
                continue
            names.update(t.params)
            rows.append(
                {
                    "trial": t.number,
                    "run_id": str(t.user_attrs.get(RUN_ATTR, "")),
                    "state": states.get(t.state, "running"),
                    "value": math.nan if t.value is None else float(t.value),
                    **{f"params.{k}": v for k, v in t.params.items()},
                    "steps": len(t.intermediate_values),
                    "duration_s": t.duration.total_seconds() if t.duration else math.nan,
                    "failure": str(t.user_attrs.get(FAILURE_ATTR, "")),
                }
            )
        head = ["trial", "run_id", "state", "value"]
        columns = [*head, *(f"params.{n}" for n in sorted(names)), "steps", "duration_s", "failure"]
        return pd.DataFrame(rows, columns=columns)


def sweep(
    objective: Callable[[dict[str, Any]], float] | Pipeline,
    space: Mapping[str, Any],
    *,
    metric: str,
    direction: str = "maximize",
    trials: int | None = None,
    sampler: str | BaseSampler = "tpe",
    pruner: str | BasePruner | None = "median",
    parallel: int = 1,
    executor: str = "local",
    experiment: str | None = None,
    name: str | None = None,
    seed: int | None = None,
    storage: str | BaseStorage | None = None,
    ray_address: str | None = None,
    client: Client | None = None,
) -> SweepResult:
    """Search ``space`` for the params that maximize (or minimize) ``metric``; one child run per trial.

    Args:
        objective: ``fn(params) -> float`` (it may log ``metric`` per step to allow pruning) or a
            ``@sy.pipeline`` (params become pipeline params; the metric comes from its output dict
            or from the metrics its runs logged).
        space: the search space (see :mod:`shipyard.pipelines.sweep_space`), e.g.
            ``{"C": ("log", 1e-3, 10), "depth": ("int", 2, 8), "kernel": ["rbf", "linear"]}``.
        metric: the name of the value the objective returns and logs.
        direction: ``"maximize"`` or ``"minimize"``.
        trials: trials to finish (complete, pruned or failed with an error); default 20, or the
            whole grid for ``sampler="grid"``. Running the sweep again with more trials adds some.
        sampler: ``"tpe"``, ``"random"``, ``"grid"``, ``"cmaes"``, ``"qmc"``, ``"bruteforce"`` or an
            optuna sampler.
        pruner: ``"median"``, ``"hyperband"``, ``"successive_halving"``, None or an optuna pruner.
        parallel: trials at once (threads with ``executor="local"``, Ray tasks with ``"ray"``).
        executor: ``"local"`` or ``"ray"`` (``ray_address`` to join a cluster).
        experiment: the experiment of the sweep's runs (default: the sweep's name).
        name: the sweep's name (default: the objective's); the same name resumes the sweep.
        seed: seeds the sampler (a resumed sweep continues from ``seed + trials so far``).
        storage: where optuna keeps the study (default: beside the tracking database; required
            when tracking to a Shipyard server); a URL, ``"memory"`` or an optuna storage.
        client: the client to track with (default: the module-level one).

    Example:
        >>> import shipyard as sy
        >>> def objective(params):
        ...     return -(params["x"] - 2) ** 2
        >>> result = sy.sweep(objective, {"x": ("float", -5, 5)}, metric="score", trials=30)  # doctest: +SKIP
        >>> result.best_params  # doctest: +SKIP
        {'x': 2.01...}
    """
    require_optuna()
    client = client or get_client()
    cfg = _config(objective, space, metric, direction, trials, sampler, pruner, parallel, executor)
    default = objective.name if isinstance(objective, Pipeline) else getattr(objective, "__name__", "")
    cfg.name = str(name or default or "sweep")
    cfg.experiment = experiment or cfg.name
    cfg.seed, cfg.ray_address = seed, ray_address
    cfg.storage = resolve_storage(storage, client.settings.tracking_uri)
    if executor == "ray" and not cfg.storage.shared:
        raise InvalidInput(
            f"executor='ray' needs a storage Ray workers can reach, not {cfg.storage.describe()}; "
            "track to a SQLite file or PostgreSQL, or pass storage='postgresql+psycopg://…'"
        )
    driver = _Driver(objective, cfg, client)
    driver.run()
    return driver.finish()


def _config(
    objective: Any,
    space: Mapping[str, Any],
    metric: str,
    direction: str,
    trials: int | None,
    sampler: Any,
    pruner: Any,
    parallel: int,
    executor: str,
) -> _Config:
    if not callable(objective):
        raise InvalidInput(
            f"sweep() takes a function params -> float or a @sy.pipeline, got {type(objective).__name__}"
        )
    if not isinstance(metric, str) or not metric:
        raise InvalidInput(f"metric must be the non-empty name of the value to optimize, got {metric!r}")
    check_choice("direction", direction, ("maximize", "minimize"))
    check_choice("executor", executor, ("local", "ray"))
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise InvalidInput(f"parallel must be an integer >= 1, got {parallel!r}")
    dists, fixed = parse_space(space)
    if trials is None:
        trials = grid_size(dists) if sampler == "grid" else DEFAULT_TRIALS
    elif sampler == "grid":
        trials = min(trials, grid_size(dists))  # the grid has no more points
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise InvalidInput(f"trials must be an integer >= 1, got {trials!r}")
    if isinstance(sampler, str) and sampler.lower() not in SAMPLERS:
        make_sampler(sampler, dists, None)  # raises, naming the choices
    make_pruner(pruner)  # fail before any run exists
    return _Config(
        "",
        "",
        metric,
        direction,
        trials,
        parallel,
        executor,
        dists,
        fixed,
        sampler,
        pruner,
        None,
        StorageSpec(),
    )
