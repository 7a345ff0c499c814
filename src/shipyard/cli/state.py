"""Per-invocation CLI state: the global options, resolved lazily into settings and a client.

Nothing is opened until a command needs it, so ``--help`` and ``--version`` never
touch a store, and ``doctor`` can report on settings even when the store is broken.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import typer

from shipyard.config import Settings, load_settings
from shipyard.tracking import Client

__all__ = ["CliState", "get_state"]


@dataclass
class CliState:
    """What the root callback parsed; the settings and client are built on first use."""

    tracking_uri: str | None = None
    artifact_uri: str | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _client: Client | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        """Settings with precedence: command-line option > ``SHIPYARD_*`` env > shipyard.toml > defaults."""
        if self._settings is None:
            self._settings = load_settings(tracking_uri=self.tracking_uri, artifact_uri=self.artifact_uri)
        return self._settings

    def client(self) -> Client:
        """The client for this invocation (closed when the command ends)."""
        if self._client is None:
            self._client = Client(settings=self.settings())
        return self._client

    def close(self) -> None:
        """Close the client if one was opened."""
        if self._client is not None:
            self._client.close()
            self._client = None


def get_state(ctx: typer.Context) -> CliState:
    """The state the root callback stored on the context (a fresh one if run without it)."""
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):
        obj = CliState()
        ctx.find_root().obj = obj
        ctx.find_root().call_on_close(obj.close)
    return obj
