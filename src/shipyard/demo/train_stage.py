"""Demo stage: train through the ``flights_training`` pipeline (with a sweep), then show its DAG.

The pipeline runs with the local executor (or Ray: ``shipyard demo --executor ray``). While it runs,
a thread reads the store and prints each finished sweep trial under a progress bar; afterwards the
stage renders the pipeline run as read back with ``sy.get_pipeline_run``: each step's status, cache
hit, duration, cost and the contracts checked at its boundaries, then the cache and cost summary.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from rich import box
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from shipyard.demo.context import DemoContext, ModelResult
from shipyard.demo.flow import EXPERIMENT, PIPELINE, flights_training, sweep_name
from shipyard.demo.train import model_specs
from shipyard.entities import now_ms
from shipyard.errors import ShipyardError
from shipyard.pipelines.ray_executor import import_ray
from shipyard.pipelines.reads import PipelineRunInfo, get_pipeline_run, list_pipeline_runs

__all__ = ["train_models"]

_POLL_S = 0.4
_STATUS_STYLE = {"finished": "green", "cached": "cyan", "failed": "red", "skipped": "yellow"}


class _TrialWatch:
    """Reads the store while the pipeline runs: the train step's run, then its finished trials."""

    def __init__(self, ctx: DemoContext, progress: Progress, task: Any) -> None:
        self.ctx, self.progress, self.task = ctx, progress, task
        self.since = now_ms() - 1000
        self.seen: set[str] = set()
        self.sweep: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="shipyard-demo-trials", daemon=True)

    def __enter__(self) -> _TrialWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        with contextlib.suppress(ShipyardError):
            self.poll()  # the trials that finished since the last look

    def _loop(self) -> None:
        while not self._stop.wait(_POLL_S):
            with contextlib.suppress(ShipyardError):  # progress is best effort
                self.poll()

    def poll(self) -> None:
        client = self.ctx.client
        if self.sweep is None:
            found = list_pipeline_runs(PIPELINE, limit=1, client=client)
            if not found or found[0].start_time < self.since:
                return
            info = get_pipeline_run(found[0].run_id, client=client)
            running = [s.node for s in info.steps if s.status == "running"]
            self.progress.update(self.task, description=f"step {running[0]}" if running else "pipeline")
            step = next((s for s in info.steps if s.node == "train" and s.run_id), None)
            if step is None or step.status == "cached" or step.run_id is None:
                return
            self.sweep = sweep_name(step.run_id)
        query = f"tags.`sy.sweep` = '{self.sweep}' and tags.`sy.trial_state` = 'complete'"
        trials = client.search_runs(EXPERIMENT, filter=query, order_by=["attributes.end_time asc"])
        for row in trials.to_dict(orient="records"):
            if row["run_id"] in self.seen:
                continue
            self.seen.add(row["run_id"])
            name = str(row.get("tags.model_name", row["run_name"]))
            auc, fit = row.get("metrics.val_auc", float("nan")), row.get("metrics.fit_time_s", float("nan"))
            self.progress.console.print(
                Text(f"  {row['run_name']:<8} {name:<22} AUC {auc:.3f}   fit {fit:5.1f}s")
            )
            self.progress.update(self.task, description=f"sweep: {name}", advance=1)


@contextlib.contextmanager
def _ray_if_asked(ctx: DemoContext) -> Iterator[None]:
    """``--executor ray`` without an address: a Ray instance in this process, ended afterwards."""
    if ctx.executor != "ray" or ctx.ray_address:
        yield
        return
    ray = import_ray()
    if ray.is_initialized():
        yield
        return
    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    ctx.console.print(
        Text(
            f"ray.init(): a local Ray instance, {ray.cluster_resources().get('CPU', 0):.0f} CPUs", style="dim"
        )
    )
    try:
        yield
    finally:
        ray.shutdown()


def train_models(ctx: DemoContext) -> None:
    """Stage: run the training pipeline, print each trial as it finishes, then the DAG and its cost."""
    versions = ctx.extras["datasets"]
    train_ref = f"flights-train@{versions['flights-train'].digest}"
    val_ref = f"flights-validation@{versions['flights-validation'].digest}"
    where = f'executor="{ctx.executor}"' + (f', ray_address="{ctx.ray_address}"' if ctx.ray_address else "")
    ctx.console.print(
        Text(
            f"flights_training.run(train_ref, val_ref, quick={ctx.quick}, seed={ctx.seed}, {where})  "
            "# load → validate → train (sy.sweep) → select",
            style="dim",
        ),
        soft_wrap=True,
    )
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=ctx.console,
    )
    with _ray_if_asked(ctx), progress:
        task = progress.add_task("pipeline", total=len(model_specs(ctx.quick)))
        with _TrialWatch(ctx, progress, task) as watch:
            result = flights_training.run(
                train_ref,
                val_ref,
                ctx.quick,
                ctx.seed,
                client=ctx.client,
                executor=ctx.executor,
                ray_address=ctx.ray_address,
            )
        progress.update(
            task,
            description="trained" if watch.seen else "from the cache",
            completed=len(model_specs(ctx.quick)),
        )
    best: dict[str, Any] = result.output()
    ctx.best = ModelResult(best["run_id"], best["name"], best["family"], dict(best["metrics"]))
    ctx.extras.update(
        pipeline_run_id=result.run_id, sweep_run_id=best["sweep_run_id"], trials_trained=len(watch.seen)
    )
    info = get_pipeline_run(result.run_id, client=ctx.client)
    ctx.console.print(dag_table(info))
    _summary(ctx, info, best)


def dag_table(info: PipelineRunInfo) -> Table:
    """The pipeline run as a table, steps in DAG order (the shape of ``shipyard pipelines show``)."""
    table = Table(
        "step",
        "after",
        "status",
        "cache",
        "time",
        "CPU s",
        "cost $",
        "contracts passed",
        box=box.SIMPLE_HEAD,
        title=f"pipeline run {info.run_id} · {info.pipeline} · executor {info.executor}",
        title_justify="left",
    )
    for s in info.steps:
        table.add_row(
            s.node,
            ",".join(s.upstream) or "—",
            Text(s.status, _STATUS_STYLE.get(s.status, "")),
            s.cache or "—",
            f"{s.duration_s:.2f}s" if s.duration_s is not None else "—",
            f"{s.cost['cpu_seconds']:.2f}" if "cpu_seconds" in s.cost else "—",
            f"{s.cost_usd:.6f}" if s.cost_usd is not None else "—",
            " ".join(f"{b} ✓" for b in s.contracts) or "—",
        )
    return table


def _summary(ctx: DemoContext, info: PipelineRunInfo, best: dict[str, Any]) -> None:
    cost = info.cost
    hits = info.cache_hits
    line = Text.assemble(
        (f"{hits} of {info.n_steps} steps reused from cache", "bold cyan" if hits else "bold"),
        f" · pipeline {cost.get('wall_seconds', 0):.1f}s wall, {cost.get('cpu_seconds', 0):.1f} CPU-s, "
        f"{cost.get('energy_kwh', 0) * 1000:.3f} Wh, ${cost.get('usd', 0):.6f}",
    )
    ctx.console.print(line)
    train = info.step("train")
    if train.status == "cached":
        source, spent = _trained_in(ctx, train.cache_source_run)
        ctx.console.print(
            f"Same data, same code: no model was trained again. The sweep's {best['trials']} trials "
            f"and the best model come from pipeline run {source}{spent}."
        )
    else:
        ctx.console.print(
            f"{ctx.extras['trials_trained']} models trained in sweep {best['sweep_run_id'][:8]} (one trial "
            f"run each); best: [bold green]{best['name']}[/], validation AUC "
            f"{best['metrics']['val_auc']:.3f}. Run the demo again: every step comes from the cache."
        )


def _trained_in(ctx: DemoContext, run_id: str | None) -> tuple[str | None, str]:
    """The pipeline run whose train step really ran (following hits of hits), and what it cost."""
    for _ in range(20):  # each hit names the run it reused, which may itself be a hit
        if not run_id:
            break
        try:
            source = get_pipeline_run(run_id, client=ctx.client)
        except ShipyardError:
            break
        step = source.step("train")
        if step.status != "cached":
            cost = source.cost
            return run_id, f", which took {cost.get('wall_seconds', 0):.1f}s and ${cost.get('usd', 0):.6f}"
        run_id = step.cache_source_run
    return run_id, ""
