"""``import_mlflow``: move an MLflow store into Shipyard, resumably, and verify it.

The order is experiments, then runs (parents before children; each with its dataset inputs and its
logged models), then the deletion of experiments
MLflow deleted, then registered models with their versions and aliases. Everything keeps MLflow's
ids where Shipyard has a place for them (run ids, version numbers, names) and MLflow's times;
experiment ids are Shipyard's own, and the mapping is in the report and in the audit log
(``experiment.import`` entries). Each record is checked after it is written: a checksum of what
MLflow holds against one of what Shipyard holds, read back.

Running it again writes nothing that is there already and checks everything once more; after a
kill it carries on where it stopped (a run is written whole or not at all).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence

from shipyard.config import redact_uri
from shipyard.errors import InvalidInput
from shipyard.importers.context import ImportContext, ProgressFn
from shipyard.importers.mlflow_experiments import finish_experiments, import_experiments
from shipyard.importers.mlflow_models import import_models
from shipyard.importers.mlflow_runs import import_runs
from shipyard.importers.mlflow_source import MlflowSource
from shipyard.importers.report import ImportReport
from shipyard.store import ImportsRecords, LocalGovernance
from shipyard.tracking import Client
from shipyard.tracking.fluent import get_client

__all__ = ["import_mlflow"]


def _quiet(phase: str, done: int, total: int | None) -> None:
    """The default progress callback: says nothing."""


def import_mlflow(
    source: str,
    *,
    client: Client | None = None,
    experiments: Sequence[str] | None = None,
    models: bool = True,
    dry_run: bool = False,
    progress: ProgressFn | None = None,
    workers: int = 4,
) -> ImportReport:
    """Import the MLflow store at ``source`` into Shipyard and verify it (see the module docstring).

    Args:
        source: A ``mlruns/`` folder, an MLflow database URI (``sqlite:///mlflow.db``,
            ``postgresql://…``) or an MLflow server (``http://host:5000``).
        client: The Shipyard client to write through (default: the configured one). Its metadata
            store must be a database (SQLite or PostgreSQL), not a Shipyard server.
        experiments: Only these experiments (names or MLflow ids); all when None.
        models: Import the registered models too.
        dry_run: Read both sides and report what would be imported; write nothing.
        progress: Called as ``progress(phase, done, total)`` (``total`` None when unknown) for the
            phases ``experiments``, ``runs`` and ``models``.
        workers: Threads that read the source ahead of the writes.

    Returns:
        The verification report: per kind of record, the counts and checksums of both sides.

    Example:
        >>> report = import_mlflow("mlruns")  # doctest: +SKIP
        >>> report.ok, report.entities["runs"].imported  # doctest: +SKIP
        (True, 2000)
    """
    client = client or get_client()
    store = client.store
    if not dry_run and not (isinstance(store, ImportsRecords) and isinstance(store, LocalGovernance)):
        raise InvalidInput(
            f"Cannot import into {redact_uri(store.uri)}: an import writes into Shipyard's database "
            "directly; run it with that database as the tracking URI (shipyard --tracking-uri "
            "postgresql+psycopg://… --artifact-uri <the server's artifact store> import mlflow --from …)"
        )
    started = time.monotonic()
    report = ImportReport(source=redact_uri(source), target=redact_uri(store.uri), dry_run=dry_run)
    with MlflowSource(source) as src:
        ctx = ImportContext(client, src, report, dry_run, progress or _quiet, workers)
        with _phase(report, "experiments"):
            chosen = import_experiments(ctx, experiments)
        with _phase(report, "runs"):
            import_runs(ctx, chosen)
        finish_experiments(ctx, chosen)
        if models:
            with _phase(report, "models"):
                import_models(ctx)
    report.seconds = time.monotonic() - started
    return report


@contextlib.contextmanager
def _phase(report: ImportReport, name: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        report.phases[name] = time.monotonic() - started
