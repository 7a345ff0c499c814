"""Model slots: what each variant serves right now, and how a new version replaces it without downtime.

A :class:`ModelSlot` holds one :class:`Loaded` (a model service and the version it came from). A request
reads ``slot.current`` once and keeps that reference until it has answered, so a swap — one attribute
assignment on the event loop — never changes a model under a running request; the old model is freed when
the last request holding it finishes.

A :class:`ModelSource` turns a variant's ``model`` string into a :class:`VersionKey` (cheap: a store
lookup, or reading a folder's ``shipyard-model.yaml``) and loads a version (slow: download, verify,
deserialise). The server resolves every variant on each poll and loads only when the key changed — in a
worker thread, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shipyard.config import Settings
from shipyard.entities import ModelVersion
from shipyard.errors import ConfigError
from shipyard.registry import core
from shipyard.registry.flavors import LoadedModel, ModelMeta, load_model_dir
from shipyard.serving.service import ModelService
from shipyard.tracking import Client

__all__ = [
    "REGISTRY_SCHEME",
    "Loaded",
    "ModelSlot",
    "ModelSource",
    "RegistrySource",
    "VersionKey",
    "load_version",
]

REGISTRY_SCHEME = "models:/"


@dataclass(frozen=True)
class VersionKey:
    """What a model reference resolves to now; a different ``digest`` means a different model."""

    ref: str  # how answers and logs name it: models:/churn/3, or the folder
    version: str  # the registry version number, or a digest prefix for a folder
    digest: str


@dataclass(frozen=True, eq=False)
class Loaded:
    """A loaded version, ready to serve."""

    service: ModelService
    key: VersionKey


class ModelSlot:
    """The model a variant serves; ``current`` is replaced whole (one assignment), never mutated.

    Example:
        >>> slot = ModelSlot("models:/churn@champion")
        >>> slot.current is None
        True
    """

    def __init__(self, model: str, current: Loaded | None = None) -> None:
        self.model = model
        self.current = current


class ModelSource(Protocol):
    """Resolves and loads the ``model`` strings of a deployment's variants."""

    def resolve(self, model: str) -> VersionKey:
        """What ``model`` names now (blocking: called in a worker thread)."""
        ...

    def load(self, model: str, key: VersionKey) -> LoadedModel:
        """Load the version ``key`` (blocking: called in a worker thread)."""
        ...


class RegistrySource:
    """Variants naming registry references (``models:/churn@champion``) or model folders.

    Example:
        >>> source = RegistrySource(client)  # doctest: +SKIP
        >>> source.resolve("models:/churn@champion").version  # doctest: +SKIP
        '7'
    """

    def __init__(
        self,
        client: Client | None,
        *,
        trust: bool = False,
        settings: Settings | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.client = client
        self.trust = trust
        self.labels = dict(labels or {})  # folder -> how answers name it (a packaged model's reference)
        self.settings = settings or (client.settings if client is not None else None)
        self._versions: dict[str, ModelVersion] = {}

    def resolve(self, model: str) -> VersionKey:
        if model.startswith(REGISTRY_SCHEME):
            if self.client is None:
                raise ConfigError(
                    f"Variant model {model!r} is a registry reference, and this server has no client to "
                    "resolve it; pass client=Client(...) to create_deployment_app (shipyard serve does), "
                    "or serve a model folder"
                )
            version = core.resolve(model, self.client)
            self._versions[version.digest] = version
            return VersionKey(version.ref, str(version.version), version.digest)
        meta = ModelMeta.read(Path(model))
        entry = meta.files.get(meta.model_file, {})
        digest = str(entry.get("digest", ""))
        return VersionKey(self.labels.get(model, model), digest[:12], digest)

    def load(self, model: str, key: VersionKey) -> LoadedModel:
        if model.startswith(REGISTRY_SCHEME):
            assert self.client is not None
            version = self._versions.get(key.digest) or core.resolve(key.ref, self.client)
            return core.load_model(version, trust=self.trust, client=self.client)
        return load_model_dir(Path(model), trust=self.trust, settings=self.settings)


def load_version(source: ModelSource, model: str, current: Loaded | None) -> Loaded | None:
    """The new :class:`Loaded` for ``model`` if it resolves to another version than ``current``, else None.

    Blocking (resolve, then load when changed): run it in a worker thread.

    Example:
        >>> fresh = load_version(source, "models:/churn@champion", slot.current)  # doctest: +SKIP
        >>> if fresh is not None:
        ...     slot.current = fresh  # the atomic swap, on the event loop
    """
    key = source.resolve(model)
    if current is not None and current.key.digest == key.digest and current.key.ref == key.ref:
        return None
    loaded = source.load(model, key)
    return Loaded(ModelService(loaded, key.ref, key.version), key)
