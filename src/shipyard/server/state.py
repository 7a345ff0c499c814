"""What the server holds for its lifetime (one metadata store, one blob store) and how routes get it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from shipyard.artifacts import FsspecBlobStore
from shipyard.config import Settings, redact_uri
from shipyard.errors import ConfigError
from shipyard.store import Store, open_store

__all__ = ["Blobs", "ServerState", "StateDep", "StoreDep", "open_state", "redact_uri"]


@dataclass
class ServerState:
    """The stores a server process opens once and shares across requests (both are thread-safe)."""

    settings: Settings
    store: Store
    blobs: FsspecBlobStore

    def close(self) -> None:
        self.store.close()


def open_state(settings: Settings) -> ServerState:
    """Open the SQL store at ``settings.tracking_uri`` (migrating it) and the blob store.

    Example:
        >>> from shipyard.config import load_settings
        >>> state = open_state(load_settings(tracking_uri="sqlite:///:memory:", artifact_uri="memory://doc"))
        >>> state.close()
    """
    if settings.is_remote:
        raise ConfigError(
            f"The Shipyard server needs a SQL tracking URI (sqlite:///… or postgresql+psycopg://…), "
            f"got {redact_uri(settings.tracking_uri)!r}: a server cannot store into another server"
        )
    store = open_store(settings.tracking_uri, settings)
    try:
        blobs = FsspecBlobStore(settings.artifact_uri)
    except BaseException:
        store.close()
        raise
    return ServerState(settings=settings, store=store, blobs=blobs)


# The dependencies are coroutines though they never await: FastAPI runs a plain ``def`` dependency in
# its thread pool, a hop out of the event loop and back for every request and every dependency.
def _app_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.shipyard
    return state


async def _state(request: Request) -> ServerState:
    return _app_state(request)


async def _store(request: Request) -> Store:
    return _app_state(request).store


async def _blobs(request: Request) -> FsspecBlobStore:
    return _app_state(request).blobs


StateDep = Annotated[ServerState, Depends(_state)]
StoreDep = Annotated[Store, Depends(_store)]
Blobs = Annotated[FsspecBlobStore, Depends(_blobs)]
