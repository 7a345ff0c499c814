"""``@pipeline``: trace a function of steps into a DAG and run it as a tracked run with child step runs."""

from __future__ import annotations

import concurrent.futures as cf
import functools
import importlib
import inspect
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shipyard.entities import RunStatus
from shipyard.errors import InvalidInput, PipelineFailed, StepContractViolation
from shipyard.pipelines.cache import OUTPUTS_TAG, SOURCE_STEP_RUN, CacheIndex, cache_key
from shipyard.pipelines.cost import StepCost, sum_costs
from shipyard.pipelines.executor import Executor, ExecutorContext, LocalExecutor
from shipyard.pipelines.materializers import libraries_for_annotation, materializer_by_name
from shipyard.pipelines.ray_executor import RayExecutor
from shipyard.pipelines.runner import (
    OutputRef,
    StepResult,
    StepTask,
    load_output,
    step_artifacts,
    step_tags,
)
from shipyard.pipelines.steps import TRACE, Node, Placeholder, Trace
from shipyard.tracking import ActiveRun, Client
from shipyard.tracking.fluent import get_client

__all__ = ["Pipeline", "PipelineResult", "pipeline", "trigger_pipeline"]


@dataclass
class PipelineResult:
    """A finished pipeline run: its run id, each node's result, and lazily loaded outputs."""

    run_id: str
    steps: dict[str, StepResult]
    cost: StepCost
    _client: Client = field(repr=False)
    _outputs: Any = field(repr=False, default=None)
    _memo: dict[str, Any] = field(repr=False, default_factory=dict)

    def output(self) -> Any:
        """The pipeline function's return value with real values (loaded on first access).

        Example:
            >>> result.output()["auc"]  # doctest: +SKIP
        """
        return _resolve(self._outputs, self)

    def step_output(self, node: str, index: int = 0) -> Any:
        """One node's output value (loaded from the blob store unless this process holds it)."""
        return load_output(self._client, self.steps[node].outputs[index], self._memo)

    @property
    def cache_hits(self) -> list[str]:
        return [n for n, r in self.steps.items() if r.status == "cached"]


def _resolve(value: Any, result: PipelineResult) -> Any:
    if isinstance(value, Placeholder):
        return result.step_output(value.node, value.index or 0)
    if isinstance(value, tuple):
        return tuple(_resolve(v, result) for v in value)
    if isinstance(value, list):
        return [_resolve(v, result) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, result) for k, v in value.items()}
    return value


class Pipeline:
    """A function of steps made runnable by :func:`pipeline`; ``.run(**params)`` or call it."""

    def __init__(self, fn: Callable[..., Any], name: str | None, experiment: str | None) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name or fn.__name__
        self.experiment = experiment or self.name

    def __repr__(self) -> str:
        return f"<Pipeline {self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> PipelineResult:
        return self.run(*args, **kwargs)

    @property
    def ref(self) -> str:
        """``module:name``, what ``trigger_pipeline`` and the CLI accept."""
        return f"{self.fn.__module__}:{self.fn.__qualname__}"

    def trace(self, *args: Any, **kwargs: Any) -> tuple[dict[str, Node], Any, dict[str, Any]]:
        """The DAG (node id → node), the placeholder outputs and the bound pipeline params."""
        bound = inspect.signature(self.fn).bind(*args, **kwargs)
        bound.apply_defaults()
        trace = Trace()
        token = TRACE.set(trace)
        try:
            outputs = self.fn(*bound.args, **bound.kwargs)
        finally:
            TRACE.reset(token)
        if not trace.nodes:
            raise InvalidInput(
                f"Pipeline '{self.name}' called no steps; decorate its functions with @sy.step"
            )
        return trace.nodes, outputs, dict(bound.arguments)

    def run(
        self,
        *args: Any,
        no_cache: bool = False,
        executor: Executor | str | None = None,
        client: Client | None = None,
        parent_run_id: str | None = None,
        ray_address: str | None = None,
        **kwargs: Any,
    ) -> PipelineResult:
        """Run the pipeline: one tracked run, one child run per step; raises when a step fails.

        ``executor`` is ``"local"`` (default), ``"ray"`` (on the cluster at ``ray_address``, or an
        existing ``ray.init`` connection) or an :class:`Executor` object.

        ``parent_run_id`` makes the pipeline run a child of that run (a sweep's trial run).

        Example:
            >>> result = train.run(month=1)  # doctest: +SKIP
            >>> result.cache_hits  # doctest: +SKIP
        """
        nodes, outputs, params = self.trace(*args, **kwargs)
        client = client or get_client()
        runner = _Driver(self, nodes, client, _executor(executor, ray_address), no_cache)
        runner.parent_run_id = parent_run_id
        return runner.run(params, outputs)


def _executor(executor: Executor | str | None, ray_address: str | None = None) -> Executor:
    if executor == "ray" or (executor is None and ray_address is not None):
        return RayExecutor(ray_address)
    if ray_address is not None:
        raise InvalidInput(
            f"ray_address={ray_address!r} applies to executor='ray', not {executor!r}; pass "
            "executor='ray' (or a RayExecutor(address) object)"
        )
    if executor is None or executor == "local":
        return LocalExecutor()
    if isinstance(executor, str):
        raise InvalidInput(f"Unknown executor {executor!r}; use 'local', 'ray' or pass an Executor object")
    return executor


class _Driver:
    """Schedules one pipeline run: cache look-ups per ready wave, submissions, failure propagation."""

    def __init__(
        self, pipe: Pipeline, nodes: dict[str, Node], client: Client, executor: Executor, no_cache: bool
    ) -> None:
        self.pipe, self.nodes, self.client, self.executor = pipe, nodes, client, executor
        self.no_cache = no_cache
        self.results: dict[str, StepResult] = {}
        self.memo: dict[str, Any] = {}
        self.cache = CacheIndex(client, len(nodes))
        self.run_: ActiveRun | None = None
        self.parent_run_id: str | None = None

    def run(self, params: dict[str, Any], outputs: Any) -> PipelineResult:
        t0 = time.perf_counter()
        dag = {n.id: n.upstream for n in self.nodes.values()}
        self.run_ = self.client.start_run(
            self.pipe.experiment,
            name=self.pipe.name,
            params={k: v for k, v in params.items() if _plain(v)},
            tags={
                "sy.run_type": "pipeline",
                "sy.pipeline": self.pipe.name,
                "sy.pipeline.ref": self.pipe.ref,
                "sy.dag": json.dumps(dag),
                "sy.executor": getattr(self.executor, "name", "custom"),
            },
            system_metrics=False,
            parent=self.parent_run_id,
        )
        self.run_.flush()  # on the server now: steps in other processes name it as their parent
        try:
            self.executor.start(ExecutorContext(self.client, self.memo))
        except BaseException:  # e.g. no Ray cluster at that address: no run left "running"
            self.run_.end(RunStatus.FAILED)
            raise
        try:
            self._schedule()
        finally:
            self.executor.close()
        costs = [r.cost for r in self.results.values() if r.cost is not None and r.status != "cached"]
        total = sum_costs(costs, time.perf_counter() - t0)
        counts = {
            s: sum(r.status == s for r in self.results.values())
            for s in ("finished", "cached", "failed", "skipped")
        }
        self.run_.log_metrics({**total.metrics(), **{f"pipeline.steps_{k}": v for k, v in counts.items()}})
        failed = [r for r in self.results.values() if r.status == "failed"]
        self.run_.set_tags({**total.tags(), "sy.pipeline_status": "failed" if failed else "finished"})
        self.run_.end(RunStatus.FAILED if failed else RunStatus.FINISHED)
        if failed:
            raise self._error(failed[0])
        return PipelineResult(self.run_.id, self.results, total, self.client, outputs, self.memo)

    def _error(self, failed: StepResult) -> Exception:
        if failed.contract is not None:
            boundary, report = failed.contract
            return StepContractViolation(report, step=failed.node, boundary=boundary, run_id=failed.run_id)
        assert self.run_ is not None
        skipped = sorted(n for n, r in self.results.items() if r.status == "skipped")
        last = failed.error.strip().splitlines()[-1] if failed.error.strip() else "unknown error"
        return PipelineFailed(
            f"Pipeline '{self.pipe.name}' failed at step '{failed.node}': {last} (pipeline run "
            f"{self.run_.id}, step run {failed.run_id}; skipped: {', '.join(skipped) or 'none'}; traceback: "
            f"shipyard runs show {failed.run_id}; fix it and re-run: finished steps come from the cache)",
            details={
                "pipeline_run_id": self.run_.id,
                "step": failed.node,
                "step_run_id": failed.run_id,
                "skipped": skipped,
                "error": failed.error,
            },
        )

    def _schedule(self) -> None:
        pending = dict(self.nodes)
        running: dict[cf.Future[StepResult], str] = {}
        failed = False
        while pending or running:
            before = len(self.results)
            if not failed:
                ready = [n for n in pending.values() if all(u in self.results for u in n.upstream)]
                for node in ready:
                    del pending[node.id]
                ready = self._reuse_cached(ready)
                for node in ready:
                    alone = len(ready) == 1 and not running
                    running[self.executor.submit(self._task(node), alone=alone)] = node.id
            if not running:
                if failed or not pending or len(self.results) == before:
                    break
                continue  # cache hits made new nodes ready
            done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for future in done:
                node_id = running.pop(future)
                self.results[node_id] = self._result(node_id, future)
                failed = failed or self.results[node_id].status == "failed"
        for node_id in pending:
            self._skip(node_id)

    def _result(self, node_id: str, future: cf.Future[StepResult]) -> StepResult:
        try:
            result = future.result()
        except Exception as exc:  # the worker itself died (killed, out of memory)
            return StepResult(node_id, "", "failed", error=f"{type(exc).__name__}: {exc}")
        self.memo.update({r.digest: v for r, v in zip(result.outputs, result.values, strict=False)})
        return result

    def _inputs(self, node: Node) -> dict[str, OutputRef]:
        return {name: self.results[p.node].outputs[p.index or 0] for name, p in node.inputs.items()}

    def _key(self, node: Node) -> str:
        inputs = self._inputs(node)
        libs = [lib for ref in inputs.values() for lib in _libraries(ref)]
        libs += libraries_for_annotation(node.step.hints.get("return"))
        return cache_key(
            step=node.step.name,
            code=node.step.code_version,
            params=node.params,
            inputs={k: v.digest for k, v in inputs.items()},
            libraries=libs,
        )

    def _task(self, node: Node, key: str | None = None) -> StepTask:
        assert self.run_ is not None
        return StepTask(
            node.step,
            node.id,
            self.pipe.name,
            self.run_.id,
            self.pipe.experiment,
            node.params,
            self._inputs(node),
            key or self._key(node),
            self.client.settings,
            not self.no_cache,
        )

    def _reuse_cached(self, ready: list[Node]) -> list[Node]:
        """Record cache hits for ready nodes (at most one search per wave); return the nodes to run."""
        cacheable = [
            n
            for n in ready
            if n.step.options.cache
            and not self.no_cache
            and not any(ref.fresh for ref in self._inputs(n).values())  # a sure miss: no look-up
        ]
        keys = {n.id: self._key(n) for n in cacheable}
        hits = self.cache.find(keys.values()) if keys else {}
        to_run = []
        for node in ready:
            tags = hits.get(keys.get(node.id, ""))
            if tags is None:
                to_run.append(node)
                continue
            self._record_hit(node, keys[node.id], tags)
        return to_run

    def _record_hit(self, node: Node, key: str, tags: dict[str, str]) -> None:
        task = self._task(node, key)
        refs = [OutputRef.from_dict(d) for d in json.loads(tags[OUTPUTS_TAG])]
        run_id = self.client.log_run(  # one store write: a hit never shows half recorded
            task.experiment,
            node.id,
            status=RunStatus.FINISHED,
            params=node.params,
            parent=task.pipeline_run_id,
            artifacts=step_artifacts(task.inputs, refs),
            tags={
                **step_tags(task),
                "sy.cache": "hit",
                "sy.step_status": "cached",
                "sy.cache_key": key,
                OUTPUTS_TAG: tags[OUTPUTS_TAG],
                "sy.cache_source_run": tags.get("sy.pipeline.run", ""),
                SOURCE_STEP_RUN: tags.get(SOURCE_STEP_RUN, ""),
            },
        )
        source = tags.get(SOURCE_STEP_RUN)
        if source:  # lineage follows the reused outputs: the datasets the source step consumed
            for use in self.client.store.list_run_datasets(source):
                self.client.store.record_dataset_use(run_id, use.dataset.name, use.dataset.version, use.role)
        self.results[node.id] = StepResult(node.id, run_id, "cached", refs)

    def _skip(self, node_id: str) -> None:
        node = self.nodes[node_id]
        assert self.run_ is not None
        run_id = self.client.log_run(
            self.pipe.experiment,
            node_id,
            status=RunStatus.KILLED,
            params={k: v for k, v in node.params.items() if _plain(v)},
            parent=self.run_.id,
            tags={
                "sy.run_type": "pipeline_step",
                "sy.pipeline": self.pipe.name,
                "sy.pipeline.run": self.run_.id,
                "sy.step": node.step.name,
                "sy.node": node_id,
                "sy.step_status": "skipped",
            },
        )
        self.results[node_id] = StepResult(node_id, run_id, "skipped")


def _libraries(ref: OutputRef) -> tuple[str, ...]:
    try:
        return materializer_by_name(ref.materializer).libraries
    except InvalidInput:
        return ()


def _plain(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool, list, dict, type(None)))


def pipeline(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None, experiment: str | None = None
) -> Any:
    """Make a function that calls steps a pipeline; its arguments are the pipeline's parameters.

    Example:
        >>> import shipyard as sy
        >>> @sy.step
        ... def load(n: int) -> list: return list(range(n))
        >>> @sy.step
        ... def total(xs: list) -> int: return sum(xs)
        >>> @sy.pipeline
        ... def numbers(n: int = 3):
        ...     return total(load(n))
        >>> numbers.run(n=4).output()  # doctest: +SKIP
        6
    """
    if fn is not None:
        return Pipeline(fn, name, experiment)
    return lambda f: Pipeline(f, name, experiment)


def trigger_pipeline(
    pipeline_or_ref: Pipeline | str,
    params: Mapping[str, Any] | None = None,
    *,
    executor: Executor | str | None = None,
    no_cache: bool = False,
    client: Client | None = None,
    ray_address: str | None = None,
) -> PipelineResult:
    """Run a pipeline given as an object or ``"module:attr"`` (monitoring uses it to retrain).

    Example:
        >>> sy.trigger_pipeline("myproject.pipelines:train", params={"month": 7})  # doctest: +SKIP
    """
    target: Any = pipeline_or_ref
    if isinstance(pipeline_or_ref, str):
        module, sep, attr = pipeline_or_ref.partition(":")
        if not sep or not attr:
            raise InvalidInput(f"Pipeline reference {pipeline_or_ref!r} must look like 'package.module:name'")
        try:
            target = importlib.import_module(module)
            for part in attr.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as exc:
            raise InvalidInput(f"Cannot import pipeline {pipeline_or_ref!r}: {exc}") from None
    if not isinstance(target, Pipeline):
        raise InvalidInput(f"{pipeline_or_ref!r} is not a pipeline (decorate it with @sy.pipeline)")
    return target.run(
        no_cache=no_cache, executor=executor, client=client, ray_address=ray_address, **dict(params or {})
    )
