"""Pipelines: typed steps composed into DAGs, run as tracked runs with contracts, caching and cost.

``@step`` makes a function a step and ``@pipeline`` composes steps by calling them; each run is a
tracked run with one child run per step, outputs stored as content-addressed blobs through
materializers chosen by type, contracts checked at step boundaries, unchanged steps reused from the
cache, and wall time, CPU, memory, energy and cost recorded per step. Executors run the steps: the
local one by default (parallel branches in a process pool) or Ray (:class:`RayExecutor`); others
implement :class:`Executor`. :func:`sweep` searches parameters with optuna, one child run per trial.
"""

from shipyard.pipelines.cache import clear_cache
from shipyard.pipelines.executor import Executor, ExecutorContext, LocalExecutor
from shipyard.pipelines.materializers import Materializer, MaterializerOptions, register_materializer
from shipyard.pipelines.pipeline import Pipeline, PipelineResult, pipeline, trigger_pipeline
from shipyard.pipelines.ray_executor import RayExecutor
from shipyard.pipelines.runner import OutputRef, StepResult, StepTask, run_step_task
from shipyard.pipelines.steps import Step, StepOptions, step
from shipyard.pipelines.sweep import SweepResult, sweep

__all__ = [
    "Executor",
    "ExecutorContext",
    "LocalExecutor",
    "Materializer",
    "MaterializerOptions",
    "OutputRef",
    "Pipeline",
    "PipelineResult",
    "RayExecutor",
    "Step",
    "StepOptions",
    "StepResult",
    "StepTask",
    "SweepResult",
    "clear_cache",
    "pipeline",
    "register_materializer",
    "run_step_task",
    "step",
    "sweep",
    "trigger_pipeline",
]
