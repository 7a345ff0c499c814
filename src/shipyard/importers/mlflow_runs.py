"""Runs of an MLflow store written into Shipyard, each verified by reading it back.

A run keeps its MLflow id, times, status, user, source, parent, params, tags, every metric point
and its artifact files (copied into the content-addressed blob store). An ended run is written in
one transaction (``log_run``) after its files are blobs, so a killed import leaves each run whole
or absent; a run found in Shipyard is not written again, only checked. A run still running in
MLflow is written in steps that can all be replayed (``create_run``, a ``log_batch`` with a
``batch_id``, ``record_artifacts``), and replayed when its checksum says a step is missing.

Then come the run's inputs and outputs, each replayable and checked on its own row:

- its dataset inputs (``mlflow.log_input``) and model inputs, kept the way Shipyard's MLflow API
  keeps them (:func:`~shipyard.tracking.mlflow_inputs.record_inputs`: a use of the Shipyard dataset
  version they name, else as MLflow's JSON in the run tag ``mlflow.inputs``), so that MLflow's
  client reads the same ``run.inputs`` back from a Shipyard server;
- its logged models (MLflow 3, the run's model outputs), with their ids, times, status, params,
  tags and metric points (``import_logged_model``), their files copied from the model's own
  location into the run's artifacts under ``models/<model_id>/``, where Shipyard keeps a logged
  model's files (recorded before the model, so a model in Shipyard has its files).

MLflow 3 keeps a logged model's files beside its run, not among the run's artifacts; so the run's
checksum compares MLflow's listing of the run with Shipyard's less those model folders (the files
are checked with their models), rather than adding the model files to MLflow's side: either way
agrees, but this way the run's row stays what MLflow's client lists for the run.

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
from shipyard.entities import Artifact, LogBatch, LoggedModel, MetricHistory, MetricSeries, Run, RunCreate
from shipyard.errors import NotFound, ShipyardError
from shipyard.importers.checksums import inputs_checksum, logged_model_checksum, run_checksum
from shipyard.importers.context import ImportContext, check
from shipyard.importers.mlflow_source import mlflow_error
from shipyard.importers.records import SourceExperiment, SourceLoggedModel, SourceRun
from shipyard.store import ImportsRecords, KeepsLoggedModels
from shipyard.tracking.mlflow_inputs import INPUTS_TAG, encode_inputs, record_inputs, run_inputs, split_inputs

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
    models: dict[str, list[Artifact]] = dataclasses.field(default_factory=dict)  # missing ones: files
    error: str = ""


@dataclass
class _Written:
    """A run written or found, to verify: whether this import wrote it, its inputs, and which of
    its logged models."""

    source: SourceRun
    new: bool
    new_inputs: bool
    new_models: set[str]


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
        self.written: list[_Written] = []  # to verify

    # runs on the pool's threads: source reads and blobs
    def fetch(self, job: tuple[Any, str, Run | None]) -> _Fetched:
        mlrun, exp_name, before = job
        run_id = str(mlrun.info.run_id)
        try:
            source = self.ctx.source.read_run(mlrun, exp_name)
            artifacts: list[Artifact] = []
            if before is None and source.files and not self.ctx.dry_run:
                artifacts = self._copy_files(source)
            models = {m.model.id: self._copy_model(m) for m in self._missing(source, before)}
            return _Fetched(run_id, source, before, artifacts, models)
        except Exception as exc:  # one unreadable run must not stop the import: it is reported
            return _Fetched(run_id, error=_message(exc))

    def _copy_files(self, source: SourceRun) -> list[Artifact]:
        copied = self.ctx.source.copy_run_files(
            source.artifact_uri, source.files, self.ctx.client.blobs.put_file
        )
        return [Artifact(path, digest, size) for path, digest, size in copied]

    def _missing(self, source: SourceRun, before: Run | None) -> list[SourceLoggedModel]:
        """The run's logged models Shipyard lacks."""
        if before is None or not isinstance(self.store, KeepsLoggedModels):
            return list(source.logged_models)
        out = []
        for model in source.logged_models:
            try:
                self.store.get_logged_model(model.model.id, allow_deleted=True)
            except NotFound:
                out.append(model)
        return out

    def _copy_model(self, model: SourceLoggedModel) -> list[Artifact]:
        """A logged model's files as blobs, at their paths in the run's artifacts (none in a dry run)."""
        if self.ctx.dry_run:
            return []
        copied = self.ctx.source.copy_logged_model_files(model, self.ctx.client.blobs.put_file)
        folder = model.model.artifact_path
        return [Artifact(f"{folder}/{path}", digest, size) for path, digest, size in copied]

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
                    self._record(source, fetched.artifacts, fetched.models)
                rows.imported += 1
            else:
                rows.existing += 1
                if not self.ctx.dry_run:
                    self._complete(source, fetched.before, fetched.models)
        except ShipyardError as exc:
            self._failed(run.id, exc.message)
            return
        self.present.add(run.id)
        before = fetched.before
        inputs = bool(source.inputs or source.model_inputs)
        new_inputs = inputs and (before is None or INPUTS_TAG not in before.tags)
        self.written.append(_Written(source, before is None, new_inputs, set(fetched.models)))
        for child in self.waiting.pop(run.id, []):
            self._write(child)

    def _record(
        self, source: SourceRun, artifacts: list[Artifact], models: dict[str, list[Artifact]]
    ) -> None:
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
        self._inputs_and_outputs(source, run, models)
        if run.deleted:
            self.store.delete_runs([run.id], self.ctx.actor, f"deleted in MLflow; {self.ctx.reason}")

    def _replay(self, source: SourceRun, artifacts: list[Artifact]) -> None:
        """The steps of a running run after its create (each a no-op when done before)."""
        self.store.log_batch(source.run.id, _batch(source))
        if artifacts:
            self.store.record_artifacts(source.run.id, artifacts)

    def _complete(self, source: SourceRun, before: Run, models: dict[str, list[Artifact]]) -> None:
        """Finish a run an earlier, interrupted import left partly written (only the replayable
        steps; an ended run is written whole, its inputs and logged models after it)."""
        run = source.run
        if not before.status.is_terminal:
            target = _read_target(self.store, self.ctx.client.blobs, before, _models(source))
            if target[0] != _sum(source):
                self._replay(source, self._copy_files(source) if source.files else [])
        if not before.deleted:  # a deleted run takes no writes: its inputs went in before it was
            self._inputs_and_outputs(source, before, models)
        if run.deleted and not before.deleted:
            self.store.delete_runs([run.id], self.ctx.actor, f"deleted in MLflow; {self.ctx.reason}")

    def _inputs_and_outputs(self, source: SourceRun, target: Run, models: dict[str, list[Artifact]]) -> None:
        """The run's inputs (each kept once however often this runs) and the logged models Shipyard
        lacks (``models``: their files as blobs), each model's files recorded before the model."""
        if source.inputs or source.model_inputs:
            record_inputs(self.store, target, source.inputs, source.model_inputs)
        if not models:
            return
        if not isinstance(self.store, ImportsRecords):  # the import checks this up front
            raise ShipyardError("This store takes no imported logged models")
        for model in source.logged_models:
            if model.model.id in models:
                self.store.record_artifacts(target.id, models[model.model.id])
                origin = self.ctx.origin(model_id=model.model.id, run_id=target.id)
                self.store.import_logged_model(model.model, self.ctx.actor, origin)

    def verify(self) -> None:
        """Both sides' checksums and counts of the runs written or found since the last call (the
        target's read back from Shipyard)."""
        report, batch = self.ctx.report, self.written
        self.written = []
        deleted = {w.source.run.id for w in batch if w.source.run.deleted}
        found = _target_runs(self.store, [w.source.run.id for w in batch], deleted)
        blobs = self.ctx.client.blobs
        reads = self.pool.map(
            lambda w: (
                _read_target(self.store, blobs, found[w.source.run.id], _models(w.source))
                if w.source.run.id in found
                else None
            ),
            batch,
        )
        for written, target in zip(batch, reads, strict=True):
            source, new = written.source, written.new
            run = source.run
            check(self.ctx, report.entity("runs"), run.id, _sum(source), target[0] if target else None)
            counts = _counts(run, source.histories, [(f.path, f.size) for f in source.files])
            got = _counts(*target[1:4]) if target else dict.fromkeys(counts, 0)
            for entity, n in counts.items():
                row = report.entity(entity, checksummed=False)
                row.add_source(count=n)
                row.add_target(count=got[entity])
                if new:
                    row.imported += n
                else:
                    row.existing += n
            self._verify_inputs(written, target[1] if target else None)
            self._verify_models(written, target[4] if target else {})

    def _verify_inputs(self, written: _Written, target: Run | None) -> None:
        """Both sides of the run's inputs, as MLflow's client reads them (``run.inputs``): what
        MLflow holds, as Shipyard keeps it (:func:`_expected_inputs`), and what Shipyard holds."""
        source = written.source
        if not (source.inputs or source.model_inputs or (target is not None and INPUTS_TAG in target.tags)):
            return
        expected = _expected_inputs(self.store, source)
        held = run_inputs(target.tags, self.store.list_run_datasets(target.id)) if target else None
        row = self.ctx.report.entity("run inputs")
        if written.new_inputs:
            row.imported += 1
        else:
            row.existing += 1
        check(
            self.ctx,
            row,
            source.run.id,
            inputs_checksum(expected),
            inputs_checksum(held) if held is not None else None,
        )
        counted = self.ctx.report.entity("dataset inputs", checksummed=False)
        n = len(source.inputs)
        counted.add_source(count=n)
        counted.add_target(count=len(held["dataset_inputs"]) if held else 0)
        if written.new_inputs:
            counted.imported += n
        else:
            counted.existing += n

    def _verify_models(self, written: _Written, files: dict[str, list[tuple[str, int]]]) -> None:
        """Both sides of each of the run's logged models (Shipyard's read back with its files)."""
        report = self.ctx.report
        for problem in written.source.unreadable:
            report.entity("logged models").failed += 1
            report.entity("logged models").add_source(count=1)
            report.problems.append(f"run {written.source.run.id}: {problem}")
        for model in written.source.logged_models:
            row = report.entity("logged models")
            ours = _logged_model(self.store, model.model.id)
            theirs = logged_model_checksum(model.model, [(f.path, f.size) for f in model.files])
            held = files.get(model.model.id, [])
            target = logged_model_checksum(ours, held) if ours is not None else None
            check(self.ctx, row, model.model.id, theirs, target)
            counted = report.entity("logged model files", checksummed=False)
            counted.add_source(count=len(model.files))
            counted.add_target(count=len(held))
            if model.model.id in written.new_models:
                row.imported += 1
                counted.imported += len(model.files)
            else:
                row.existing += 1
                counted.existing += len(model.files)

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


def _models(source: SourceRun) -> list[LoggedModel]:
    return [m.model for m in source.logged_models]


def _read_target(
    store: Any, blobs: BlobStore, run: Run, models: Sequence[LoggedModel]
) -> tuple[str, Run, dict[str, MetricHistory], list[tuple[str, int]], dict[str, list[tuple[str, int]]]]:
    """Shipyard's copy of the run, read back: its checksum, the run, its histories and files (a file
    whose blob is not in the blob store counts with size -1: recorded is not enough), and apart
    from those the files of its logged models ``models`` (paths in the model's folder).

    The run is compared as MLflow holds it: without the tag that keeps its inputs (compared on
    their own) and without its logged models' folders (see the module docstring)."""
    histories = {key: store.get_metric_history(run.id, key) for key in sorted(run.metrics)}
    folders = {f"{m.artifact_path}/": m.id for m in models}
    files: list[tuple[str, int]] = []
    held: dict[str, list[tuple[str, int]]] = {m.id: [] for m in models}
    for a in store.list_artifacts(run.id):
        item = (a.path, a.size if blobs.exists(a.digest) else -1)
        folder = next((f for f in folders if a.path.startswith(f)), None)
        if folder is None:
            files.append(item)
        else:
            held[folders[folder]].append((a.path[len(folder) :], item[1]))
    shown = dataclasses.replace(run, tags={k: v for k, v in run.tags.items() if k != INPUTS_TAG})
    return run_checksum(shown, histories, files), run, histories, files, held


def _logged_model(store: Any, model_id: str) -> LoggedModel | None:
    if not isinstance(store, KeepsLoggedModels):
        return None
    try:
        return store.get_logged_model(model_id, allow_deleted=True)
    except NotFound:
        return None


def _expected_inputs(store: Any, source: SourceRun) -> dict[str, Any]:
    """The run's inputs as Shipyard should show them: the uses of the Shipyard dataset versions
    they name, the others as MLflow holds them."""
    uses, kept = split_inputs(store, source.run.id, source.inputs)
    models = [{"model_id": i} for i in dict.fromkeys(source.model_inputs)]
    tags = {INPUTS_TAG: encode_inputs({"datasets": kept, "models": models})} if kept or models else {}
    return run_inputs(tags, uses)


def _counts(run: Run, histories: dict[str, MetricHistory], files: list[tuple[str, int]]) -> dict[str, int]:
    return {
        "params": len(run.params),
        "tags": sum(1 for key in run.tags if key != INPUTS_TAG),
        "metric points": sum(len(h) for h in histories.values()),
        "artifact files": len(files),
        "artifact bytes": sum(size for _, size in files),
    }


def _message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, ShipyardError) else mlflow_error(exc)
