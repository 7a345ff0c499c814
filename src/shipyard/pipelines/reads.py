"""Read pipeline runs back: typed views over the runs and tags a pipeline run records.

A pipeline run is a tracked run tagged ``sy.run_type=pipeline`` (with ``sy.pipeline``,
``sy.pipeline.ref``, ``sy.dag`` and, once it ended, ``sy.pipeline_status``); its steps are child
runs tagged ``sy.pipeline.run=<id>`` (``sy.node``, ``sy.step_status``, ``sy.cache``, ``sy.inputs``,
``sy.outputs``, ``sy.contracts`` (the boundaries whose contracts passed), ``cost.*`` metrics, and
on failure ``error/traceback.txt`` or ``contracts/<boundary>.json``). The CLI (``shipyard pipelines
ls|show``) and the UI read them through :func:`list_pipeline_runs` and :func:`get_pipeline_run`, never
by parsing tags themselves.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.entities import Run
from shipyard.errors import InvalidInput, NotFound, ShipyardError
from shipyard.pipelines.cache import OUTPUTS_TAG

if TYPE_CHECKING:
    from shipyard.tracking import Client

__all__ = ["PipelineRunInfo", "StepRunInfo", "get_pipeline_run", "list_pipeline_runs", "pipeline_run_of"]

STEP_STATUSES = ("finished", "cached", "failed", "skipped", "running", "pending")
_TRACEBACK_LINES = 12


@dataclass(frozen=True)
class StepRunInfo:
    """One node of a pipeline run, as its step run recorded it.

    ``status`` is ``finished``, ``cached``, ``failed``, ``skipped``, ``running`` (no status yet) or
    ``pending`` (no step run yet). ``cost`` holds the ``cost.*`` metrics without the prefix.
    ``contract_report`` is the validation report of a contract violation (``boundary`` says where),
    ``error`` the last lines of the traceback of a failure.
    """

    node: str
    upstream: list[str]
    status: str
    run_id: str | None = None
    step: str = ""
    start_time: int | None = None
    end_time: int | None = None
    cache: str = ""  # hit | miss | off
    cache_source_run: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    attempts: int | None = None
    contracts: dict[str, str] = field(default_factory=dict)  # boundary → contract, checked and passed
    boundary: str | None = None
    contract_report: dict[str, Any] | None = None
    error: str | None = None

    @property
    def duration_s(self) -> float | None:
        """Wall seconds the step ran (its ``cost.wall_seconds``, else end − start)."""
        if "wall_seconds" in self.cost:
            return self.cost["wall_seconds"]
        if self.start_time is None or self.end_time is None:
            return None
        return (self.end_time - self.start_time) / 1000

    @property
    def cost_usd(self) -> float | None:
        return self.cost.get("usd")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "duration_s": self.duration_s, "cost_usd": self.cost_usd}


@dataclass(frozen=True)
class PipelineRunInfo:
    """A pipeline run: its attributes, DAG, step counts and total cost; ``steps`` when read with
    :func:`get_pipeline_run` (empty in listings).

    ``status`` is the pipeline's own (``sy.pipeline_status``) once it ended, else the run's status.
    """

    run_id: str
    pipeline: str
    ref: str
    experiment: str
    status: str
    start_time: int
    end_time: int | None
    executor: str
    params: dict[str, str]
    dag: dict[str, list[str]]
    step_counts: dict[str, int]
    cost: dict[str, float]
    steps: list[StepRunInfo] = field(default_factory=list)

    @property
    def n_steps(self) -> int:
        return len(self.dag)

    @property
    def cache_hits(self) -> int:
        return self.step_counts.get("cached", 0)

    @property
    def duration_s(self) -> float | None:
        if "wall_seconds" in self.cost:
            return self.cost["wall_seconds"]
        if self.end_time is None:
            return None
        return (self.end_time - self.start_time) / 1000

    @property
    def cost_usd(self) -> float | None:
        return self.cost.get("usd")

    def step(self, node: str) -> StepRunInfo:
        """The step of node ``node`` (``NotFound`` naming the nodes there are)."""
        for s in self.steps:
            if s.node == node:
                return s
        raise NotFound(
            f"Pipeline run '{self.run_id}' has no step '{node}'; its steps: {', '.join(self.dag) or 'none'}"
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = [s.to_dict() for s in self.steps]
        return {
            **data,
            "n_steps": self.n_steps,
            "cache_hits": self.cache_hits,
            "duration_s": self.duration_s,
            "cost_usd": self.cost_usd,
        }


def _cost(metrics: dict[str, float]) -> dict[str, float]:
    return {k[len("cost.") :]: v for k, v in metrics.items() if k.startswith("cost.")}


def _json(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def _pipeline_info(run: Run, steps: list[StepRunInfo] | None = None) -> PipelineRunInfo:
    tags = run.tags
    dag = {str(k): [str(u) for u in v] for k, v in _json(tags.get("sy.dag"), {}).items()}
    counts = {
        s: int(run.metrics[f"pipeline.steps_{s}"])
        for s in ("finished", "cached", "failed", "skipped")
        if f"pipeline.steps_{s}" in run.metrics
    }
    if steps is not None:  # the step runs themselves are the better count (also while running)
        counts = {s: n for s in STEP_STATUSES if (n := sum(x.status == s for x in steps))}
    return PipelineRunInfo(
        run_id=run.id,
        pipeline=tags.get("sy.pipeline", run.name),
        ref=tags.get("sy.pipeline.ref", ""),
        experiment=run.experiment_name,
        status=tags.get("sy.pipeline_status") or str(run.status),
        start_time=run.start_time,
        end_time=run.end_time,
        executor=tags.get("sy.executor", ""),
        params=dict(run.params),
        dag=dag,
        step_counts=counts,
        cost=_cost(run.metrics),
        steps=steps or [],
    )


def list_pipeline_runs(
    pipeline: str | None = None,
    *,
    ref: str | None = None,
    limit: int = 20,
    client: Client | None = None,
) -> list[PipelineRunInfo]:
    """Pipeline runs, newest first (of one pipeline, by name or ``module:name`` ref, or of all);
    without their steps.

    Example:
        >>> for r in sy.list_pipeline_runs("train", limit=5):  # doctest: +SKIP
        ...     print(r.run_id, r.status, r.cache_hits, r.cost_usd)
    """
    from shipyard.tracking.fluent import get_client

    client = client or get_client()
    where = "tags.`sy.run_type` = 'pipeline'"
    if pipeline is not None:
        where += f" and tags.`sy.pipeline` = '{_quoted(pipeline)}'"
    if ref is not None:
        where += f" and tags.`sy.pipeline.ref` = '{_quoted(ref)}'"
    runs, _ = client.search_runs_page(filter=where, order_by=["attributes.start_time desc"], limit=limit)
    return [_pipeline_info(r) for r in runs]


def _quoted(value: str) -> str:
    if "'" in value or "\\" in value:
        raise InvalidInput(f"Pipeline name {value!r} may not contain quotes or backslashes")
    return value


def get_pipeline_run(run_id: str, *, client: Client | None = None) -> PipelineRunInfo:
    """One pipeline run with its steps in DAG order: status, timing, cache, cost, and for a failed
    step its contract report or the end of its traceback. ``run_id`` may also be one of its step runs.

    Example:
        >>> info = sy.get_pipeline_run(result.run_id)  # doctest: +SKIP
        >>> [(s.node, s.status, s.cache) for s in info.steps]  # doctest: +SKIP
        [('load', 'cached', 'hit'), ('train', 'finished', 'miss')]
    """
    from shipyard.tracking.fluent import get_client

    client = client or get_client()
    run = client.get_run(run_id)
    if run.tags.get("sy.pipeline.run"):  # a step run: show the pipeline run it belongs to
        run = client.get_run(run.tags["sy.pipeline.run"])
    if run.tags.get("sy.run_type") != "pipeline":
        raise InvalidInput(
            f"Run '{run_id}' is not a pipeline run nor one of its steps; list pipeline runs with: "
            "shipyard pipelines ls"
        )
    found, _ = client.search_runs_page(
        filter=f"tags.`sy.pipeline.run` = '{_quoted(run.id)}'",
        order_by=["attributes.start_time asc"],
        limit=10_000,
    )
    by_node: dict[str, Run] = {}
    for step_run in found:  # one run per node; keep the latest should a node have several
        by_node[step_run.tags.get("sy.node", step_run.name)] = step_run
    dag = {str(k): [str(u) for u in v] for k, v in _json(run.tags.get("sy.dag"), {}).items()}
    order = _topological(dag) + sorted(set(by_node) - set(dag))
    steps = [_step_info(node, dag.get(node, []), by_node.get(node), client) for node in order]
    return _pipeline_info(run, steps)


def pipeline_run_of(run: Run) -> str | None:
    """The id of the pipeline run that ``run`` is, or is a step of; None for any other run (what
    a page asks before reading the pipeline with :func:`get_pipeline_run`).

    Example:
        >>> pipeline_run_of(client.get_run(step_run_id)) == pipeline_run_id  # doctest: +SKIP
        True
    """
    if run.tags.get("sy.run_type") == "pipeline":
        return run.id
    return run.tags.get("sy.pipeline.run") or None


def _topological(dag: dict[str, list[str]]) -> list[str]:
    """Nodes with their upstream first; ties in the DAG's own (definition) order."""
    done: dict[str, None] = {}
    pending = list(dag)
    while pending:
        ready = [n for n in pending if all(u in done or u not in dag for u in dag[n])]
        if not ready:  # a cycle cannot come from tracing; show the rest as they are
            ready = pending
        for n in ready:
            done[n] = None
        pending = [n for n in pending if n not in done]
    return list(done)


def _step_info(node: str, upstream: list[str], run: Run | None, client: Client) -> StepRunInfo:
    if run is None:
        return StepRunInfo(node=node, upstream=upstream, status="pending")
    tags = run.tags
    status = tags.get("sy.step_status") or ("running" if str(run.status) == "running" else str(run.status))
    boundary = tags.get("sy.contract_violation")
    report = error = None
    if status == "failed":
        if boundary:
            report = _read_json(client, run.id, f"contracts/{boundary}.json")
        else:
            error = _error_summary(client, run)
    attempts = tags.get("sy.attempts")
    return StepRunInfo(
        node=node,
        upstream=upstream,
        status=status,
        run_id=run.id,
        step=tags.get("sy.step", ""),
        start_time=run.start_time,
        end_time=run.end_time,
        cache=tags.get("sy.cache", ""),
        cache_source_run=tags.get("sy.cache_source_run") or None,
        params=dict(run.params),
        metrics={k: v for k, v in run.metrics.items() if not k.startswith("cost.")},
        cost=_cost(run.metrics),
        inputs=_json(tags.get("sy.inputs"), {}),
        outputs=_json(tags.get(OUTPUTS_TAG), []),
        attempts=int(attempts) if attempts and attempts.isascii() and attempts.isdigit() else None,
        contracts=_json(tags.get("sy.contracts"), {}),
        boundary=boundary,
        contract_report=report,
        error=error,
    )


def _read_json(client: Client, run_id: str, path: str) -> dict[str, Any] | None:
    try:
        value = json.loads(client.read_artifact(run_id, path))
    except (ShipyardError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _error_summary(client: Client, run: Run) -> str | None:
    """The last lines of the stored traceback (or the ``sy.error`` / ``sy.traceback`` tag)."""
    try:
        text = client.read_artifact(run.id, "error/traceback.txt").decode("utf-8", "replace")
    except ShipyardError:
        text = run.tags.get("sy.traceback") or run.tags.get("sy.error") or ""
    lines = [line for line in text.rstrip().splitlines() if line.strip()]
    return "\n".join(lines[-_TRACEBACK_LINES:]) or None
