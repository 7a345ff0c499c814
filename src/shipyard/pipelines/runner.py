"""Run one step as a child run: load inputs by reference, check contracts, call, store outputs, cost.

:func:`run_step_task` is what every executor calls, in the driver process or a worker (a process-pool
worker, a Ray task): everything it needs travels in a picklable :class:`StepTask`, and data travels
as :class:`OutputRef` digests into the blob store, never through the driver.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import traceback
from collections.abc import MutableMapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import blake3

from shipyard.config import Settings
from shipyard.entities import Artifact, RunStatus, now_ms
from shipyard.errors import InvalidInput
from shipyard.pipelines.cache import CACHE_TAG, OUTPUTS_TAG
from shipyard.pipelines.cost import CostMeter, StepCost
from shipyard.pipelines.materializers import (
    MaterializerOptions,
    StreamingMaterializer,
    materializer_by_name,
    materializer_for,
)
from shipyard.pipelines.steps import Step
from shipyard.tracking import ActiveRun, Client
from shipyard.tracking.fluent import activated

__all__ = ["OutputRef", "StepResult", "StepTask", "run_step_task", "worker_client"]


@dataclass(frozen=True)
class OutputRef:
    """A stored step output: its blob digest and how to read it back."""

    digest: str
    materializer: str
    type: str
    size: int
    allow: tuple[str, ...] = ()  # for pickled outputs: the one class the restricted unpickler may build
    dataset: str | None = None  # "name@vN" when stored as a dataset version
    # True when this run stored the blob for the first time: no earlier step run can have had it
    # as an input, so a step consuming it cannot hit the cache (the driver skips that look-up).
    # Never part of the recorded tags.
    fresh: bool = field(default=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in ((), None) and k != "fresh"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutputRef:
        return cls(**{**data, "allow": tuple(data.get("allow", ()))})


@dataclass(frozen=True)
class StepTask:
    """Everything a worker needs to run one node of a pipeline."""

    step: Step
    node: str
    pipeline: str
    pipeline_run_id: str
    experiment: str
    params: dict[str, Any]
    inputs: dict[str, OutputRef]
    cache_key: str
    settings: Settings
    use_cache: bool = True


@dataclass
class StepResult:
    """What running (or reusing) a node produced."""

    node: str
    run_id: str
    status: str  # finished | cached | failed | skipped
    outputs: list[OutputRef] = field(default_factory=list)
    error: str = ""
    contract: tuple[str, Any] | None = None  # (boundary, ValidationReport) on a violation
    cost: StepCost | None = None
    values: list[Any] = field(default_factory=list, repr=False)  # in-process only, never pickled

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "values": []}


CONTRACTS_TAG = "sy.contracts"  # on a step run: {boundary: contract} checked and passed

# Stored Parquet inputs at least this large are validated from their blob, streaming, before loading.
STREAM_INPUT_BYTES = 32 * 2**20

_CLIENTS: dict[tuple[str, str], Client] = {}
_CLIENTS_LOCK = threading.Lock()


def worker_client(settings: Settings) -> Client:
    """One client per store per worker process (opening a store per step would cost milliseconds)."""
    key = (settings.tracking_uri, settings.artifact_uri)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = Client(settings=settings)
        return _CLIENTS[key]


class _ContractBroken(Exception):
    def __init__(self, boundary: str, report: Any) -> None:
        super().__init__(boundary)
        self.boundary, self.report = boundary, report


def load_output(client: Client, ref: OutputRef, memo: MutableMapping[str, Any] | None = None) -> Any:
    """The value behind ``ref`` (from ``memo`` when this process still holds it)."""
    if memo is not None and ref.digest in memo:
        return memo[ref.digest]
    value = materializer_by_name(ref.materializer).load(
        client.blobs.get_bytes(ref.digest),
        MaterializerOptions(allowlist=(*client.settings.unpickle_allowlist.split(","), *ref.allow)),
    )
    if memo is not None:
        memo[ref.digest] = value
    return value


def _check_contract(task: StepTask, client: Client, boundary: str, value: Any) -> None:
    spec = task.step.options.contracts.get(boundary)
    if spec is None:
        return
    from shipyard.data.registry import resolve_contract
    from shipyard.data.validation import BATCH_ROWS, validate

    kind = type(value).__module__.split(".")[0]
    if kind not in ("pandas", "polars", "pyarrow") and not isinstance(value, Path):
        raise InvalidInput(
            f"Step '{task.node}' has a contract for {boundary!r}, but the value is a "
            f"{type(value).__name__}; contracts apply to DataFrames and Arrow tables"
        )
    # batch_rows: a large frame is checked in slices (the same report, less memory for the masks)
    report = validate(value, resolve_contract(spec, client), batch_rows=BATCH_ROWS)
    if not report.ok:
        raise _ContractBroken(boundary, report)


def _contract_label(spec: Any) -> str:
    """How a step's contract was declared: the reference or path as given, or the object's name."""
    return str(spec) if isinstance(spec, (str, os.PathLike)) else str(getattr(spec, "name", spec))


def _check_stored_input(
    task: StepTask, client: Client, name: str, ref: OutputRef, memo: MutableMapping[str, Any] | None
) -> bool:
    """Validate a large stored Parquet input by streaming its blob, before it is loaded whole.

    Returns False when the input is checked after loading instead (no contract, small, or in memory).
    """
    in_memory = memo is not None and ref.digest in memo
    if name not in task.step.options.contracts or in_memory:
        return False
    if ref.materializer != "parquet" or ref.size < STREAM_INPUT_BYTES:
        return False
    with tempfile.TemporaryDirectory(prefix="shipyard-step-input-") as tmp:
        local = Path(tmp) / "input.parquet"
        client.blobs.download(ref.digest, local)
        _check_contract(task, client, name, local)
    return True


def _call(task: StepTask, kwargs: dict[str, Any], run: ActiveRun) -> Any:
    """Call the function (in a thread with a deadline when the step has a timeout), with retries."""
    opts = task.step.options
    for attempt in range(opts.retries + 1):
        run.set_tag("sy.attempts", attempt + 1)
        try:
            with activated(run):
                if opts.timeout is None:
                    return task.step.fn(**kwargs)
                return _with_timeout(task, kwargs, run, opts.timeout)
        except _ContractBroken:
            raise
        except Exception:
            if attempt == opts.retries:
                raise
            time.sleep(opts.retry_backoff * 2**attempt)
    raise AssertionError("unreachable")


def _with_timeout(task: StepTask, kwargs: dict[str, Any], run: ActiveRun, timeout: float) -> Any:
    box: dict[str, Any] = {}

    def target() -> None:
        with activated(run):
            try:
                box["value"] = task.step.fn(**kwargs)
            except BaseException as exc:
                box["error"] = exc

    thread = threading.Thread(target=target, name=f"shipyard-step-{task.node}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():  # the executor runs timed steps in their own process and ends it afterwards
        raise TimeoutError(f"Step '{task.node}' did not finish within its timeout of {timeout} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _split(task: StepTask, value: Any) -> list[Any]:
    n = task.step.n_outputs
    if n is None:
        return [value]
    if not isinstance(value, tuple) or len(value) != n:
        raise InvalidInput(
            f"Step '{task.node}' is annotated to return a tuple of {n} values, got {type(value).__name__}"
        )
    return list(value)


def _store(task: StepTask, client: Client, run: ActiveRun, value: Any) -> OutputRef:
    opts = task.step.options
    kind = type(value).__module__.split(".")[0]
    if opts.dataset and kind in ("pandas", "polars", "pyarrow"):
        from shipyard.data.versions import log_dataset

        version = log_dataset(value, opts.dataset, client=client, source=f"step {task.node}")
        client.store.record_dataset_use(run.id, version.name, version.version, "output")
        return OutputRef(
            version.digest,
            "parquet",
            f"{type(value).__module__}.DataFrame",
            version.size,
            dataset=version.ref,
        )
    materializer = materializer_for(value, allow_pickle=opts.pickle, step=task.node)
    fresh = False
    if isinstance(materializer, StreamingMaterializer):  # written straight into the blob store
        digest, size = client.blobs.put_writer(lambda sink: materializer.save_to(value, sink))
    else:
        data = materializer.save(value)
        fresh = not client.blobs.exists(blake3.blake3(data).hexdigest())
        digest, size = client.blobs.put_bytes(data)
    cls = type(value)
    allow = (f"{cls.__module__}.{cls.__qualname__}",) if materializer.name == "pickle" else ()
    name = f"{cls.__module__}.{cls.__qualname__}"
    return OutputRef(digest, materializer.name, name, size, allow, fresh=fresh)


def _execute(
    task: StepTask, client: Client, run: ActiveRun, memo: MutableMapping[str, Any] | None
) -> StepResult:
    values = {}
    for name, ref in task.inputs.items():
        streamed = _check_stored_input(task, client, name, ref, memo)
        values[name] = load_output(client, ref, memo)
        if ref.dataset:
            dname, _, version = ref.dataset.partition("@v")
            client.store.record_dataset_use(run.id, dname, int(version), "input")
        if not streamed:
            _check_contract(task, client, name, values[name])
    outputs = _split(task, _call(task, {**task.params, **values}, run))
    for value in outputs:
        _check_contract(task, client, "return", value)
    refs = [_store(task, client, run, v) for v in outputs]
    contracts = task.step.options.contracts
    checked = {b: _contract_label(c) for b, c in contracts.items() if b in values or b == "return"}
    if checked:  # every declared boundary passed (a violation raised above): say so on the run
        run.set_tag(CONTRACTS_TAG, json.dumps(checked))
    if memo is not None:
        memo.update({r.digest: v for r, v in zip(refs, outputs, strict=True)})
    return StepResult(task.node, run.id, "finished", refs, values=outputs)


def step_tags(task: StepTask) -> dict[str, Any]:
    return {
        "sy.run_type": "pipeline_step",
        "sy.pipeline": task.pipeline,
        "sy.pipeline.run": task.pipeline_run_id,
        "sy.step": task.step.name,
        "sy.node": task.node,
        "sy.inputs": json.dumps({n: r.digest for n, r in task.inputs.items()}),
    }


def run_step_task(
    task: StepTask, client: Client | None = None, memo: MutableMapping[str, Any] | None = None
) -> StepResult:
    """Run one node as a child run of the pipeline run; never raises for a failure of the step.

    Example:
        >>> result = run_step_task(task)  # doctest: +SKIP
        >>> result.status, result.outputs[0].digest  # doctest: +SKIP
    """
    client = client or worker_client(task.settings)
    run = client.start_run(
        task.experiment,
        name=task.node,
        params=task.params,
        tags=step_tags(task),
        parent=task.pipeline_run_id,
        system_metrics=False,
        log_environment=False,
    )
    run.flush()  # on the server now: the pipeline's driver and other processes refer to it by id
    meter = CostMeter(client.settings, float(task.step.options.resources.get("gpus", 0))).start()
    try:
        result = _execute(task, client, run, memo)
    except _ContractBroken as broken:
        run.log_dict(broken.report.to_dict(), f"contracts/{broken.boundary}.json")
        run.set_tags({"sy.contract_violation": broken.boundary})
        result = StepResult(
            task.node, run.id, "failed", error=str(broken.report), contract=(broken.boundary, broken.report)
        )
    except Exception as exc:
        run._record_failure(exc, exc.__traceback__)
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        result = StepResult(task.node, run.id, "failed", error=text)
    result.cost = meter.stop()
    tags: dict[str, Any] = {**result.cost.tags(), "sy.step_status": result.status}
    tags["sy.cache"] = "miss" if task.use_cache and task.step.options.cache else "off"
    if result.status == "finished":
        tags[OUTPUTS_TAG] = json.dumps([r.to_dict() for r in result.outputs])
        if task.step.options.cache:
            tags[CACHE_TAG] = task.cache_key
    run.log_metrics(result.cost.metrics())
    run.set_tags(tags)
    if result.status == "finished":  # recorded with the end: one store transaction for all of it
        run.end(RunStatus.FINISHED, artifacts=step_artifacts(task.inputs, result.outputs))
    else:
        run.end(RunStatus.FAILED)
    return result


def step_artifacts(inputs: dict[str, OutputRef], outputs: list[OutputRef]) -> list[Artifact]:
    """A step run's artifact records: ``inputs/<name>`` and ``outputs/<i>`` (blobs already stored)."""
    now = now_ms()
    return [Artifact(f"inputs/{n}", r.digest, r.size, now) for n, r in inputs.items()] + [
        Artifact(f"outputs/{i}", r.digest, r.size, now) for i, r in enumerate(outputs)
    ]


def with_status(result: StepResult, status: str) -> StepResult:
    return replace(result, status=status)
