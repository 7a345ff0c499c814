"""Metadata persistence (layer 1): the ``Store`` protocol and its implementations.

``Store`` is the union of capability protocols (``TrackingStore``, ``DatasetStore``,
``ModelStore``, ``DeploymentStore``, ``AuditStore``, ``ScheduleStore``, ``MonitoringStore``,
``MaintenanceStore``);
optional capabilities (``ServesBlobs``, ``RemoteGovernance``, ``LocalGovernance``,
``AnnotatesModels``, ``ClaimsScheduleFires``, ``EditsExperiments``, ``EditsRuns``,
``KeepsLoggedModels``, ``ImportsRecords``, ``AuthStore``, ``VerifiesCredentials``,
``ChecksTokens``) are checked
with ``isinstance``.
Implementations are chosen by URI scheme from a table and imported lazily:
``sqlite``/``postgresql`` → ``SqlStore``; ``http``/``https`` → ``RestStore`` (a
Shipyard server). ``open_store`` is the one way to get a store.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from shipyard.store.base import (
    AnnotatesModels,
    AuditStore,
    AuthStore,
    ChecksTokens,
    ClaimsScheduleFires,
    DatasetStore,
    DefersRunStarts,
    DeploymentStore,
    EditsExperiments,
    EditsRuns,
    ImportsRecords,
    KeepsLoggedModels,
    LocalGovernance,
    MaintenanceStore,
    ModelStore,
    MonitoringStore,
    RemoteGovernance,
    ScheduleStore,
    ServesBlobs,
    Store,
    TrackingStore,
    VerifiesCredentials,
)

if TYPE_CHECKING:
    from shipyard.config import Settings

__all__ = [
    "AnnotatesModels",
    "AuditStore",
    "AuthStore",
    "ChecksTokens",
    "ClaimsScheduleFires",
    "DatasetStore",
    "DefersRunStarts",
    "DeploymentStore",
    "EditsExperiments",
    "EditsRuns",
    "ImportsRecords",
    "KeepsLoggedModels",
    "LocalGovernance",
    "MaintenanceStore",
    "ModelStore",
    "MonitoringStore",
    "RemoteGovernance",
    "ScheduleStore",
    "ServesBlobs",
    "Store",
    "TrackingStore",
    "VerifiesCredentials",
    "open_store",
]

_BACKENDS: dict[str, str] = {
    "sqlite": "shipyard.store.sql:SqlStore",
    "postgresql": "shipyard.store.sql:SqlStore",
    "http": "shipyard.store.rest:RestStore",
    "https": "shipyard.store.rest:RestStore",
}


def open_store(uri: str, settings: Settings | None = None) -> Store:
    """Open the metadata store at ``uri`` (migrating a SQL schema when needed).

    Example:
        >>> open_store("sqlite:///:memory:").list_experiments()
        []
    """
    from shipyard.errors import ConfigError

    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower()
    target = _BACKENDS.get(scheme)
    if target is None:
        raise ConfigError(
            f"Unsupported tracking URI {uri!r}; use sqlite:///path.db, "
            "postgresql+psycopg://user@host/db or http(s)://host:port"
        )
    module, name = target.split(":")
    cls: Any = getattr(importlib.import_module(module), name)
    # Both backends are checked against ``Store`` statically (``shipyard.store._conformance``).
    store: Store = cls(uri, settings=settings)
    return store
