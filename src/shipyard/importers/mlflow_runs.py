"""Runs of an MLflow store written into Shipyard, each verified by reading it back.

A run keeps its MLflow id, times, status, user, source, parent, params, tags, every metric point
and its artifact files (copied into the content-addressed blob store). An ended run is written in
one transaction (``log_run``) after its files are blobs, so a killed import leaves each run whole
or absent; a run found in Shipyard is not written again, only checked. A run still running in
MLflow is written in steps that can all be replayed (``create_run``, a ``log_batch`` with a
``batch_id``, ``record_artifacts``), and replayed when its checksum says a step is missing.

Source reads (metric histories, artifact listings and downloads) run ahead on a few threads while
this thread writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from shipyard.artifacts import BlobStore
from shipyard.entities import Artifact, LogBatch, MetricHistory, MetricSeries, Run, RunCreate
from shipyard.errors import NotFound, ShipyardError
from shipyard.importers.checksums import run_checksum
from shipyard.importers.context import ImportContext, check
from shipyard.importers.mlflow_source import mlflow_error
from shipyard.importers.records import SourceExperiment, SourceRun

__all__ = ["import_runs"]

T = TypeVar("T")
U = TypeVar("U")


@dataclass
class _Fetched:
    """A source run read ahead, with what Shipyard held of it then and its files as blobs."""

    run_id: str
    source: SourceRun | None = None
    before: Run | None = None
    artifacts: list[Artifact] = dataclasses.field(default_factory=list)
    error: str = ""


def import_runs(ctx: ImportContext, experiments: Sequence[tuple[SourceExperiment, str]]) -> None:
    """Every run of the chosen experiments (parents before their children), verified."""
    done = 0
    with ThreadPoolExecutor(max_workers=max(1, ctx.workers), thread_name_prefix="shipyard-import") as pool:
        writer = _RunWriter(ctx, pool)
        for exp, name in experiments:
            for page in ctx.source.run_pages(exp.source_id):
                deleted = {r.info.run_id for r in page if r.info.lifecycle_stage == "deleted"}
                before = _target_runs(writer.store, [r.info.run_id for r in page], deleted)
                jobs = ((mlrun, name, before.get(mlrun.info.run_id)) for mlrun in page)
                for fetched in _ahead(pool, jobs, writer.fetch, max(1, ctx.workers) * 4):
                    writer.take(fetched)
                    done += 1
                    ctx.progress("runs", done, None)
                writer.verify()
        writer.finish()


def _ahead(pool: ThreadPoolExecutor, items: Iterator[T], fn: Callable[[T], U], window: int) -> Iterator[U]:
    """``fn`` of each item, in order, computed up to ``window`` items ahead on ``pool``."""
    futures: deque[Future[U]] = deque()
    for item in items:
        futures.append(pool.submit(fn, item))
        if len(futures) >= window:
            yield futures.popleft().result()
    while futures:
        yield futures.popleft().result()


_PLAIN_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
_IN_CHUNK = 500


def _target_runs(store: Any, ids: list[str], maybe_deleted: set[str]) -> dict[str, Run]:
    """The runs among ``ids`` that Shipyard holds: one search per 500 ids, plus a lookup of each
    one ``maybe_deleted`` (a search leaves deleted runs out) or not spelled as a plain id."""
    found: dict[str, Run] = {}
    plain = [i for i in ids if _PLAIN_ID.match(i)]
    for k in range(0, len(plain), _IN_CHUNK):
        chunk = plain[k : k + _IN_CHUNK]
        quoted = ", ".join(f"'{i}'" for i in chunk)
        page = store.search_runs(filter=f"attributes.run_id IN ({quoted})", limit=len(chunk))
        found.update((r.id, r) for r in page.runs)
    for run_id in ids:
        if run_id not in found and (run_id in maybe_deleted or not _PLAIN_ID.match(run_id)):
            with contextlib.suppress(NotFound):
                found[run_id] = store.get_run(run_id)
    return found


class _RunWriter:
    """Writes runs in order, holding a child back until its parent is in Shipyard, and checks
    what it wrote (or found) a page at a time."""

    def __init__(self, ctx: ImportContext, pool: ThreadPoolExecutor) -> None:
        self.ctx = ctx
        self.pool = pool
        self.store = ctx.client.store
        self.present: set[str] = set()  # in Shipyard now (or, in a dry run, would be)
        self.waiting: dict[str, list[_Fetched]] = {}  # parent id -> children read before it
        self.written: list[tuple[SourceRun, bool]] = []  # to verify, and whether this import wrote it

    # runs on the pool's threads: source reads and blobs
    def fetch(self, job: tuple[Any, str, Run | None]) -> _Fetched:
        mlrun, exp_name, before = job
        run_id = str(mlrun.info.run_id)
        try:
            source = self.ctx.source.read_run(mlrun, exp_name)
            artifacts: list[Artifact] = []
            if before is None and source.files and not self.ctx.dry_run:
                artifacts = self._copy_files(source)
            return _Fetched(run_id, source, before, artifacts)
        except Exception as exc:  # one unreadable run must not stop the import: it is reported
            return _Fetched(run_id, error=_message(exc))

    def _copy_files(self, source: SourceRun) -> list[Artifact]:
        copied = self.ctx.source.copy_run_files(
            source.artifact_uri, source.files, self.ctx.client.blobs.put_file
        )
        return [Artifact(path, digest, size) for path, digest, size in copied]

    # runs on the importing thread
    def take(self, fetched: _Fetched) -> None:
        if fetched.source is None:
            self._failed(fetched.run_id, f"could not be read from MLflow: {fetched.error}")
            return
        parent = fetched.source.run.parent_run_id
        if parent and parent not in self.present:
            if not _target_runs(self.store, [parent], {parent}):
                self.waiting.setdefault(parent, []).append(fetched)
                return
            self.present.add(parent)
        self._write(fetched)

    def finish(self) -> None:
        """Write the children whose parent never came: without the link, keeping MLflow's tag."""
        while self.waiting:
            parent, children = self.waiting.popitem()
            for fetched in children:
                assert fetched.source is not None
                run = fetched.source.run
                run.tags["mlflow.parentRunId"] = parent
                run.parent_run_id = None
                self.ctx.report.problems.append(
                    f"run {run.id}: its parent run {parent} is not in the import; "
                    "kept as tag mlflow.parentRunId"
                )
                self._write(fetched)
        self.verify()

    def _write(self, fetched: _Fetched) -> None:
        assert fetched.source is not None
        source = fetched.source
        run = source.run
        if run.status.is_terminal and run.end_time is None:
            run.end_time = run.start_time
            self.ctx.report.problems.append(f"run {run.id} ended without an end time; it ends at its start")
        rows = self.ctx.report.entity("runs")
        try:
            if fetched.before is None:
                if not self.ctx.dry_run:
                    self._record(source, fetched.artifacts)
                rows.imported += 1
            else:
                rows.existing += 1
                if not self.ctx.dry_run:
                    self._complete(source, fetched.before)
        except ShipyardError as exc:
            self._failed(run.id, exc.message)
            return
        self.present.add(run.id)
        self.written.append((source, fetched.before is None))
        for child in self.waiting.pop(run.id, []):
            self._write(child)

    def _record(self, source: SourceRun, artifacts: list[Artifact]) -> None:
        run = source.run
        spec = _spec(run)
        batch = _batch(source)
        if run.status.is_terminal:
            assert run.end_time is not None
            self.store.log_run(
                spec, status=run.status, end_time=run.end_time, batch=batch, artifacts=artifacts
            )
        else:
            self.store.create_run(spec)
            self._replay(source, artifacts)
        if run.deleted:
            self.store.delete_runs([run.id], self.ctx.actor, f"deleted in MLflow; {self.ctx.reason}")

    def _replay(self, source: SourceRun, artifacts: list[Artifact]) -> None:
        """The steps of a running run after its create (each a no-op when done before)."""
        self.store.log_batch(source.run.id, _batch(source))
        if artifacts:
            self.store.record_artifacts(source.run.id, artifacts)

    def _complete(self, source: SourceRun, before: Run) -> None:
        """Finish a run an earlier, interrupted import left partly written (only the replayable steps)."""
        run = source.run
        if before.status.is_terminal and before.deleted == run.deleted:
            return  # ended runs are written whole: nothing can be missing
        if not before.status.is_terminal:
            target = _read_target(self.store, self.ctx.client.blobs, before)
            if target[0] != _sum(source):
                self._replay(source, self._copy_files(source) if source.files else [])
        if run.deleted and not before.deleted:
            self.store.delete_runs([run.id], self.ctx.actor, f"deleted in MLflow; {self.ctx.reason}")

    def verify(self) -> None:
        """Both sides' checksums and counts of the runs written or found since the last call (the
        target's read back from Shipyard)."""
        report, batch = self.ctx.report, self.written
        self.written = []
        deleted = {s.run.id for s, _ in batch if s.run.deleted}
        found = _target_runs(self.store, [s.run.id for s, _ in batch], deleted)
        blobs = self.ctx.client.blobs
        reads = self.pool.map(
            lambda item: (
                _read_target(self.store, blobs, found[item[0].run.id]) if item[0].run.id in found else None
            ),
            batch,
        )
        for (source, new), target in zip(batch, reads, strict=True):
            run = source.run
            check(self.ctx, report.entity("runs"), run.id, _sum(source), target[0] if target else None)
            report.skipped("run dataset inputs", source.dataset_inputs)
            report.skipped("run logged-model outputs", source.model_outputs)
            counts = _counts(run, source.histories, [(f.path, f.size) for f in source.files])
            got = _counts(*target[1:]) if target else dict.fromkeys(counts, 0)
            for entity, n in counts.items():
                row = report.entity(entity, checksummed=False)
                row.add_source(count=n)
                row.add_target(count=got[entity])
                if new:
                    row.imported += n
                else:
                    row.existing += n

    def _failed(self, run_id: str, why: str) -> None:
        row = self.ctx.report.entity("runs")
        row.failed += 1
        row.add_source(count=1)
        self.ctx.report.problems.append(
            f"run {run_id} {why}" if why.startswith("could") else f"run {run_id}: {why}"
        )


def _spec(run: Run) -> RunCreate:
    return RunCreate(
        run_id=run.id,
        experiment_name=run.experiment_name,
        name=run.name,
        start_time=run.start_time,
        user=run.user,
        source=run.source,
        parent_run_id=run.parent_run_id,
        params=dict(run.params),
        tags=dict(run.tags),
    )


def _batch(source: SourceRun) -> LogBatch:
    series = [MetricSeries(k, h.steps, h.timestamps, h.values) for k, h in source.histories.items() if len(h)]
    return LogBatch(series=series, batch_id=f"mlflow-import-{source.run.id}")


def _sum(source: SourceRun) -> str:
    return run_checksum(source.run, source.histories, [(f.path, f.size) for f in source.files])


def _read_target(
    store: Any, blobs: BlobStore, run: Run
) -> tuple[str, Run, dict[str, MetricHistory], list[tuple[str, int]]]:
    """Shipyard's copy of the run, read back: its checksum, the run, its histories and files (a file
    whose blob is not in the blob store counts with size -1: recorded is not enough)."""
    histories = {key: store.get_metric_history(run.id, key) for key in sorted(run.metrics)}
    files = [(a.path, a.size if blobs.exists(a.digest) else -1) for a in store.list_artifacts(run.id)]
    return run_checksum(run, histories, files), run, histories, files


def _counts(run: Run, histories: dict[str, MetricHistory], files: list[tuple[str, int]]) -> dict[str, int]:
    return {
        "params": len(run.params),
        "tags": len(run.tags),
        "metric points": sum(len(h) for h in histories.values()),
        "artifact files": len(files),
        "artifact bytes": sum(size for _, size in files),
    }


def _message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, ShipyardError) else mlflow_error(exc)
