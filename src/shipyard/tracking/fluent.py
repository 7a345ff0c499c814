"""Module-level helpers (``sy.start_run``, ``sy.log_metric`` …): thin wrappers over a ``Client``.

The active run is context-local (``contextvars``), so threads and asyncio tasks
each see their own; the default client is created lazily from settings.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shipyard.entities import Artifact, AuditEntry, DatasetVersion, Run
from shipyard.errors import InvalidState
from shipyard.tracking.client import Client, RunLike
from shipyard.tracking.run import ActiveRun, live_runs

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "activated",
    "active_run",
    "compare_runs",
    "end_run",
    "get_client",
    "get_metric_history",
    "get_run",
    "list_audit",
    "list_datasets",
    "log_artifact",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "search_runs",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]

_ACTIVE: contextvars.ContextVar[ActiveRun | None] = contextvars.ContextVar(
    "shipyard_active_run", default=None
)
_CLIENT: Client | None = None
_CLIENT_LOCK = threading.Lock()
_URIS: dict[str, str] = {}


def get_client() -> Client:
    """The default client (settings from ``SHIPYARD_*`` env / ``shipyard.toml``)."""
    global _CLIENT
    with _CLIENT_LOCK:
        if _CLIENT is None:
            _CLIENT = Client(**_URIS)  # type: ignore[arg-type]
        return _CLIENT


def set_tracking_uri(tracking_uri: str | None = None, artifact_uri: str | None = None) -> None:
    """Point the module-level helpers at another store (takes effect for the next call)."""
    global _CLIENT
    with _CLIENT_LOCK:
        _URIS.clear()
        _URIS.update({k: v for k, v in (("tracking_uri", tracking_uri), ("artifact_uri", artifact_uri)) if v})
        _CLIENT = None


def active_run() -> ActiveRun | None:
    """The run that module-level helpers log to in this context, if any."""
    return _ACTIVE.get()


@contextlib.contextmanager
def activated(run: ActiveRun) -> Iterator[ActiveRun]:
    """Make ``run`` the active run of this context for the block (pipeline steps log through it).

    Example:
        >>> with activated(step_run):  # doctest: +SKIP
        ...     sy.log_metric("rows", 100)  # lands on step_run
    """
    token = _ACTIVE.set(run)
    try:
        yield run
    finally:
        _ACTIVE.reset(token)


def _restore_active(run: ActiveRun) -> None:
    if _ACTIVE.get() is run:
        _ACTIVE.set(run.previous)


def _require_run() -> ActiveRun:
    run = _ACTIVE.get()
    if run is None:
        raise InvalidState("No active run: start one with `with shipyard.start_run(experiment=...) as run:`")
    return run


def start_run(
    experiment: str = "default",
    name: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    nested: bool = True,
    **kwargs: Any,
) -> ActiveRun:
    """Start a run and make it active; a run started inside another becomes its child.

    Example:
        >>> import shipyard as sy
        >>> with sy.start_run(experiment="churn", params={"C": 0.1}) as run:  # doctest: +SKIP
        ...     sy.log_metric("auc", 0.93)
    """
    parent = _ACTIVE.get() if nested else None
    run = get_client().start_run(
        experiment, name, dict(params or {}), dict(tags or {}), parent=parent, **kwargs
    )
    run.previous = _ACTIVE.get()
    run.on_end.append(_restore_active)
    _ACTIVE.set(run)
    return run


def end_run(status: str = "finished") -> None:
    _require_run().end(status)


def log_metric(key: str, value: float, step: int | None = None) -> None:
    _require_run().log_metric(key, value, step)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    _require_run().log_metrics(metrics, step)


def log_param(key: str, value: Any) -> None:
    _require_run().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    _require_run().log_params(params)


def set_tag(key: str, value: Any) -> None:
    _require_run().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    _require_run().set_tags(tags)


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> list[Artifact]:
    return _require_run().log_artifact(local_path, artifact_path)


def log_dict(data: Mapping[str, Any] | list[Any], artifact_path: str) -> Artifact:
    return _require_run().log_dict(data, artifact_path)


def log_figure(figure: Any, artifact_path: str) -> Artifact:
    return _require_run().log_figure(figure, artifact_path)


def search_runs(
    experiments: str | int | Sequence[str | int] | None = None,
    filter: str | None = None,
    order_by: Sequence[str] | str | None = None,
    limit: int = 1000,
    page_token: str | None = None,
    columns: Sequence[str] | None = None,
    view: str = "active",
) -> pd.DataFrame:
    """See :meth:`Client.search_runs`."""
    return get_client().search_runs(experiments, filter, order_by, limit, page_token, columns, view)


def get_run(run_id: RunLike) -> Run:
    """A run by id, or the stored state of a run you hold (see :meth:`Client.get_run`).

    Example:
        >>> sy.get_run(run).metrics["auc"]  # doctest: +SKIP
        0.93
    """
    return get_client().get_run(run_id)


def get_metric_history(run_id: RunLike, key: str) -> pd.DataFrame:
    """A metric's full series as a DataFrame (step, timestamp, value); ``run_id`` may be a run.

    Example:
        >>> sy.get_metric_history(run, "loss").value.min()  # doctest: +SKIP
        0.41
    """
    return get_client().get_metric_history(run_id, key)


def compare_runs(run_ids: Sequence[RunLike]) -> pd.DataFrame:
    """Several runs (ids or runs) side by side, with a ``differs`` column.

    Example:
        >>> sy.compare_runs([run_a, run_b])  # doctest: +SKIP
    """
    return get_client().compare_runs(run_ids)


def list_datasets(name: str | None = None) -> list[DatasetVersion]:
    """Dataset versions: every version of ``name``, or of every dataset when ``name`` is None.

    Example:
        >>> [v.ref for v in sy.list_datasets("flights")]  # doctest: +SKIP
        ['flights@v1', 'flights@v2']
    """
    return get_client().list_dataset_versions(name)


def list_audit(after_seq: int = 0, limit: int = 1000, **filters: str | None) -> list[AuditEntry]:
    """Audit entries in order; filters: ``actor``, ``action``, ``object_type``, ``object_id``.

    Example:
        >>> sy.list_audit(object_type="model_alias")[-1].action  # doctest: +SKIP
        'model_alias.set'
    """
    return get_client().list_audit(after_seq, limit, **filters)


@atexit.register
def _end_live_runs() -> None:
    for run in live_runs():
        try:
            run.end("finished")
        except Exception:  # the interpreter is going away; nothing more we can do
            continue
