"""Sweep trials as Ray tasks. The cluster connection is the Ray executor's (one policy for both).

:class:`~shipyard.pipelines.ray_executor.RayExecutor` connects (an address, an existing ``ray.init``,
``$RAY_ADDRESS``, a local ``ray start`` cluster, or a new local instance), refuses machine-local
stores on a multi-machine cluster, and disconnects at the end if it connected. Here each trial is
``run_trial`` as a Ray task (one CPU); the worker opens the tracking store and optuna's storage
itself, so the study must live where workers can reach it (a SQLite file on this machine, or
PostgreSQL).
"""

from __future__ import annotations

import concurrent.futures as cf
from dataclasses import replace
from pathlib import Path
from typing import Any

from shipyard.pipelines.executor import ExecutorContext
from shipyard.pipelines.ray_executor import RayExecutor, import_ray, shareable_settings
from shipyard.pipelines.sweep_trial import TrialOutcome, TrialTask, run_trial
from shipyard.tracking import Client

__all__ = ["RayTrials"]


class RayTrials:
    """Submits trials to Ray; ``close()`` cancels unfinished ones and disconnects if it connected.

    Example:
        >>> trials = RayTrials(client, "127.0.0.1:6379")  # doctest: +SKIP
        >>> trials.submit(task).result().state  # doctest: +SKIP
        'complete'
    """

    def __init__(self, client: Client, address: str | None) -> None:
        self._executor = RayExecutor(address)
        self._executor.start(ExecutorContext(client, {}))
        self._ray = import_ray()
        self._remote = self._ray.remote(run_trial)
        self._settings = shareable_settings(client.settings, Path.cwd())
        self._refs: list[Any] = []

    def submit(self, task: TrialTask) -> cf.Future[TrialOutcome]:
        ref = self._remote.options(
            num_cpus=1, max_retries=0, name=f"shipyard:sweep:{task.sweep}:{task.number}"
        ).remote(replace(task, settings=self._settings))
        self._refs.append(ref)
        return ref.future()  # type: ignore[no-any-return]

    def close(self, wait: bool) -> None:
        if not wait:
            for ref in self._refs:
                self._ray.cancel(ref, force=True)
        self._refs.clear()
        self._executor.close()
