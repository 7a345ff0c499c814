"""``Client``: the explicit, thread-safe tracking API every other face wraps."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from shipyard.artifacts import BlobStore, open_blob_store
from shipyard.audit import ChainReport, Checkpoint, load_key, read_pinned, verify_store
from shipyard.config import Settings, load_settings
from shipyard.entities import (
    Artifact,
    AuditEntry,
    DatasetUse,
    DatasetVersion,
    Experiment,
    Run,
    RunCreate,
    RunStatus,
    RunView,
    clean_artifact_path,
    now_ms,
)
from shipyard.errors import ArtifactNotFound, InvalidInput
from shipyard.names import check_name
from shipyard.store import ServesBlobs, Store, open_store
from shipyard.tracking import artifact_files, environment, frames
from shipyard.tracking.maintenance import GcReport, collect_garbage
from shipyard.tracking.run import ActiveRun, check_key, param_text, tag_text

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Client", "GcReport", "RunLike", "run_id_of"]

RunLike: TypeAlias = str | Run | ActiveRun
"""What a run-id parameter accepts: the id, a ``Run`` entity or an ``ActiveRun``."""


def run_id_of(run: RunLike) -> str:
    """The id of a run given as its id, a ``Run`` or an ``ActiveRun`` (flushed first, so reads see it all).

    Example:
        >>> run_id_of("3f2a9c")
        '3f2a9c'
    """
    if isinstance(run, str):
        return run
    if isinstance(run, ActiveRun):
        if not run.ended:
            run.flush()
        return run.id
    if isinstance(run, Run):
        return run.id
    raise InvalidInput(
        f"Expected a run id (a string), a Run or an ActiveRun, got {type(run).__name__} {run!r:.80}; "
        "pass run.id or the id shown by `shipyard runs ls`"
    )


class Client:
    """Talks to one metadata store and one artifact store.

    Example:
        >>> client = Client(tracking_uri="sqlite:///:memory:", artifact_uri="memory://doc")
        >>> with client.start_run(experiment="churn", params={"C": 1.0}) as run:
        ...     run.log_metric("auc", 0.91)
        >>> client.get_run(run.id).params
        {'C': '1.0'}
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        artifact_uri: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        base = settings or load_settings()
        changes = {k: v for k, v in (("tracking_uri", tracking_uri), ("artifact_uri", artifact_uri)) if v}
        self.settings = base.replace(**changes) if changes else base
        self.store: Store = open_store(self.settings.tracking_uri, self.settings)
        self._blobs: BlobStore | None = None
        self._lock = threading.Lock()
        if not isinstance(self.store, ServesBlobs):
            try:  # an unusable artifact root fails now, naming it, not at the first log_artifact
                self._blobs = open_blob_store(self.settings.artifact_uri)
            except BaseException:
                self.store.close()
                raise

    @classmethod
    def from_stores(cls, settings: Settings, store: Store, blobs: BlobStore) -> Client:
        """A client over stores that are already open (the server uses this; it owns them)."""
        client = cls.__new__(cls)
        client.settings, client.store, client._blobs = settings, store, blobs
        client._lock = threading.Lock()
        return client

    def __repr__(self) -> str:
        return f"<Client tracking={self.settings.tracking_uri} artifacts={self.settings.artifact_uri}>"

    @property
    def blobs(self) -> BlobStore:
        """The artifact store (via the server when tracking to one)."""
        with self._lock:
            if self._blobs is None:
                if isinstance(self.store, ServesBlobs):
                    self._blobs = self.store.blob_store()
                else:
                    self._blobs = open_blob_store(self.settings.artifact_uri)
            return self._blobs

    def with_settings(self, **changes: Any) -> Client:
        """A client over the same stores with some settings changed (e.g. acting as another ``user``).

        Example:
            >>> reviewer = client.with_settings(user="bob")  # doctest: +SKIP
        """
        return Client.from_stores(self.settings.replace(**changes), self.store, self.blobs)

    def schema_version(self) -> str:
        """The metadata store's schema version (the Alembic revision; ``shipyard doctor`` shows it)."""
        return self.store.schema_version()

    def close(self) -> None:
        self.store.close()

    # -- experiments --------------------------------------------------------------------------
    def create_experiment(self, name: str, description: str = "") -> Experiment:
        return self.store.create_experiment(name, description)

    def get_experiment(self, name_or_id: str | int) -> Experiment:
        if isinstance(name_or_id, int):
            return self.store.get_experiment(name_or_id)
        return self.store.get_experiment_by_name(name_or_id)

    def list_experiments(self) -> list[Experiment]:
        return self.store.list_experiments()

    # -- runs ---------------------------------------------------------------------------------
    def start_run(
        self,
        experiment: str = "default",
        name: str | None = None,
        params: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
        parent: ActiveRun | str | None = None,
        system_metrics: bool | None = None,
        log_environment: bool = True,
    ) -> ActiveRun:
        """Start a run; use it as a context manager so it always ends with the right status."""
        check_name("Experiment name", experiment, at_sign=True)
        run_id = uuid.uuid4().hex
        all_tags = environment.run_tags() if log_environment else {}
        all_tags.update({check_key("Tag", k): tag_text(k, v) for k, v in (tags or {}).items()})
        spec = RunCreate(
            run_id=run_id,
            experiment_name=experiment,
            name=name or f"run-{run_id[:8]}",
            start_time=now_ms(),
            user=self.settings.user,
            source=environment.source_of_run(),
            parent_run_id=parent.id if isinstance(parent, ActiveRun) else parent,
            params={check_key("Param", k): param_text(k, v) for k, v in (params or {}).items()},
            tags=all_tags,
        )
        run = self.store.create_run(spec)
        active = ActiveRun(self, run, parent if isinstance(parent, ActiveRun) else None)
        if self.settings.system_metrics if system_metrics is None else system_metrics:
            from shipyard.tracking.sysmetrics import SystemSampler

            active._sampler = SystemSampler(
                lambda m, step: active.log_metrics(m, step=step), self.settings.system_metrics_interval
            )
        if log_environment:
            thread = threading.Thread(target=self._log_packages, args=(run_id,), daemon=True)
            thread.start()
            active._aux.append(thread)
        return active

    def log_run(
        self,
        experiment: str,
        name: str,
        *,
        status: RunStatus | str,
        params: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
        parent: str | None = None,
        artifacts: Sequence[Artifact] = (),
    ) -> str:
        """Record a run that is already over, whole, in one store write (a cached or skipped
        pipeline step): no live handle, no environment capture; returns its id.

        Example:
            >>> client.log_run("churn", "load", status="finished", tags={"sy.cache": "hit"})  # doctest: +SKIP
            '3f2a9c…'
        """
        check_name("Experiment name", experiment, at_sign=True)
        run_id, now = uuid.uuid4().hex, now_ms()
        spec = RunCreate(
            run_id=run_id,
            experiment_name=experiment,
            name=name,
            start_time=now,
            user=self.settings.user,
            source=environment.source_of_run(),
            parent_run_id=parent,
            params={check_key("Param", k): param_text(k, v) for k, v in (params or {}).items()},
            tags={check_key("Tag", k): tag_text(k, v) for k, v in (tags or {}).items()},
        )
        self.store.log_run(spec, status=RunStatus(status), end_time=now, artifacts=artifacts)
        return run_id

    def _log_packages(self, run_id: str) -> None:
        try:
            self.log_bytes(run_id, environment.installed_packages().encode(), "environment/requirements.txt")
        except Exception:  # environment capture must never break training
            return

    def get_run(self, run_id: RunLike) -> Run:
        """A run by id (or the stored state of a ``Run`` / ``ActiveRun`` you hold)."""
        return self.store.get_run(run_id_of(run_id))

    def delete_runs(self, run_ids: Iterable[str], reason: str = "") -> int:
        """Mark runs deleted (hidden from search; purged by :meth:`gc`); each deletion is audited."""
        return self.store.delete_runs(list(run_ids), self.settings.user, reason)

    def restore_runs(self, run_ids: Iterable[str], reason: str = "") -> int:
        """Undo :meth:`delete_runs` for runs not purged yet (audited like it)."""
        return self.store.restore_runs(list(run_ids), self.settings.user, reason)

    # -- query --------------------------------------------------------------------------------
    def _experiment_ids(self, experiments: str | int | Sequence[str | int] | None) -> list[int] | None:
        if experiments is None:
            return None
        items = [experiments] if isinstance(experiments, (str, int)) else list(experiments)
        return [self.get_experiment(e).id for e in items]

    def search_runs_page(
        self,
        experiments: str | int | Sequence[str | int] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | str | None = None,
        limit: int = 1000,
        page_token: str | None = None,
        columns: Sequence[str] | None = None,
        view: str = "active",
    ) -> tuple[list[Run], str | None]:
        """Runs matching ``filter`` as entities, and the token of the next page (or None);
        ``view`` as in :meth:`search_runs`."""
        if isinstance(order_by, str):
            order_by = [order_by]
        checked = RunView.parse(view)
        page = self.store.search_runs(
            self._experiment_ids(experiments), filter, order_by, limit, page_token, columns, checked
        )
        return page.runs, page.next_page_token

    def search_runs(
        self,
        experiments: str | int | Sequence[str | int] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | str | None = None,
        limit: int = 1000,
        page_token: str | None = None,
        columns: Sequence[str] | None = None,
        view: str = "active",
    ) -> pd.DataFrame:
        """Search runs; a DataFrame with one column per param, metric and tag.

        The next page's token is in ``df.attrs["next_page_token"]`` (None on the last page).
        ``view`` says which runs are searched: ``"active"`` (the default), ``"deleted"`` (deleted
        and not purged yet: restore one with :meth:`restore_runs`) or ``"all"``.

        Example:
            >>> client.search_runs(  # doctest: +SKIP
            ...     "churn", filter="metrics.auc > 0.9", order_by="metrics.auc desc"
            ... )
            >>> client.search_runs("churn", view="deleted")  # doctest: +SKIP
        """
        runs, token = self.search_runs_page(experiments, filter, order_by, limit, page_token, columns, view)
        return frames.runs_frame(runs, token)

    def get_metric_history(self, run_id: RunLike, key: str) -> pd.DataFrame:
        """A metric's full series: columns step, timestamp (datetime) and value."""
        return frames.history_frame(self.store.get_metric_history(run_id_of(run_id), key))

    def compare_runs(self, run_ids: Sequence[RunLike]) -> pd.DataFrame:
        """Params, metrics and tags of several runs (ids or runs) side by side, with a ``differs`` column."""
        if isinstance(run_ids, (str, Run, ActiveRun)):
            raise InvalidInput(f"compare_runs takes a list of runs, got one: pass [{run_ids!r:.60}, ...]")
        if len(run_ids) < 1:
            raise InvalidInput("compare_runs needs at least one run id")
        return frames.compare_frame([self.get_run(r) for r in run_ids])

    # -- audit log (written by the stores as they act; read and verified here) -----------------
    def list_audit(self, after_seq: int = 0, limit: int = 1000, **filters: str | None) -> list[AuditEntry]:
        """Audit entries in order; filters: actor, action, object_type, object_id."""
        return self.store.list_audit(after_seq, limit, **filters)

    def verify_audit(
        self, page_size: int = 1000, anchor: str | os.PathLike[str] | None = None
    ) -> ChainReport:
        """Walk the whole chain page by page and check it against its checkpoints (and the ones
        pinned in the file ``anchor``) and the registry's aliases and policies against it.

        The report names the first edited, deleted or reordered entry, truncation, and registry
        state changed outside Shipyard; ``notes`` say what could not be checked.

        Example:
            >>> client.verify_audit(anchor="pinned-head.json").ok  # doctest: +SKIP
            True
        """
        pinned = read_pinned(anchor) if anchor is not None else ()
        key = load_key(self.settings.audit_key_file)
        return verify_store(self.store, key=key, pinned=pinned, page_size=page_size)

    def audit_checkpoint(self) -> Checkpoint:
        """Checkpoint the audit chain's head outside the database now, and return it (pin a copy).

        Example:
            >>> client.audit_checkpoint().seq  # doctest: +SKIP
            120
        """
        return self.store.write_audit_checkpoint()

    def audit_head(self) -> Checkpoint:
        """The audit chain's head now (``seq``, ``hash``, ``count``, ``time``; keyed by the store)."""
        return self.store.audit_head()

    # -- datasets -----------------------------------------------------------------------------
    def get_dataset_version(self, name: str, ref: str = "latest") -> DatasetVersion:
        """Resolve ``latest``, ``vN`` or a digest prefix of dataset ``name``."""
        return self.store.get_dataset_version(name, ref)

    def list_dataset_versions(self, name: str | None = None) -> list[DatasetVersion]:
        return self.store.list_dataset_versions(name)

    def list_run_datasets(self, run_id: str) -> list[DatasetUse]:
        """Lineage: the dataset versions a run consumed, with their roles."""
        return self.store.list_run_datasets(run_id)

    # -- artifacts ----------------------------------------------------------------------------
    def log_bytes(self, run_id: str, data: bytes, artifact_path: str) -> Artifact:
        path = clean_artifact_path(artifact_path)
        digest, size = self.blobs.put_bytes(data)
        artifact = Artifact(path, digest, size, now_ms())
        self.store.record_artifacts(run_id, [artifact])
        return artifact

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[Artifact]:
        """Store a file or directory (content-addressed) and record path → digest on the run."""
        src = Path(local_path)
        if not src.exists():
            raise InvalidInput(f"Cannot log artifact: {src} does not exist")
        now = now_ms()
        if src.is_file():
            files = [(src, clean_artifact_path(artifact_path or src.name))]
        else:  # symbolic links out of the folder are refused (artifact_files explains why)
            base = clean_artifact_path(artifact_path) if artifact_path else src.name
            files = artifact_files.folder_files(src, base)
        artifacts = []
        for file, path in files:
            digest, size = self.blobs.put_file(file)
            artifacts.append(Artifact(path, digest, size, now))
        self.store.record_artifacts(run_id, artifacts)
        return artifacts

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]:
        return self.store.list_artifacts(run_id, prefix)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        """The verified bytes of one artifact."""
        path = clean_artifact_path(path)
        for artifact in self.store.list_artifacts(run_id, path):
            if artifact.path == path:
                return self.blobs.get_bytes(artifact.digest)
        raise ArtifactNotFound(
            f"Run '{run_id}' has no artifact '{path}' (list them: shipyard runs show {run_id})"
        )

    def download_artifacts(self, run_id: str, path: str = "", dest: str | os.PathLike[str] = ".") -> Path:
        """Download one artifact or a directory of them under ``dest``; every blob is verified."""
        found = self.store.list_artifacts(run_id, path)
        if not found:
            raise ArtifactNotFound(
                f"Run '{run_id}' has no artifact at '{path or '/'}' (list them: shipyard runs show {run_id})"
            )
        root = Path(dest)
        artifact_files.download_tree(self.blobs, found, root, run_id)  # all or nothing, never partial
        return root / clean_artifact_path(path) if path else root

    # -- maintenance --------------------------------------------------------------------------
    def gc(self, grace_seconds: float = 3600.0, batch_size: int = 1000) -> GcReport:
        """Purge deleted runs, then delete blobs no run refers to (older than the grace period).

        Works in pages of ``batch_size``, so memory stays bounded however large the stores are;
        against a server, the same collector lists and deletes the server's blobs through it.
        """
        return collect_garbage(self.store, self.blobs, grace_seconds, batch_size)
