"""Audit checkpoints behind ``SqlStore``: the chain's head, written outside the database after
every transaction that appended to the chain (one small keyed file each), and read back for
``shipyard audit verify``."""

from __future__ import annotations

import contextlib
import logging

from sqlalchemy import Connection

from shipyard.audit import Checkpoint, CheckpointLog, load_key
from shipyard.config import Settings
from shipyard.errors import IntegrityError, InvalidState
from shipyard.store.sql import audit

__all__ = ["CheckpointsMixin", "checkpoint_location"]

log = logging.getLogger("shipyard.audit")


def checkpoint_location(settings: Settings) -> str:
    """Where checkpoints go: ``audit_checkpoint_uri``, else ``<artifact_uri>/audit/checkpoints``.

    Example:
        >>> from shipyard.config import load_settings
        >>> checkpoint_location(load_settings(artifact_uri="/data/art", env={}))
        '/data/art/audit/checkpoints'
    """
    return settings.audit_checkpoint_uri or f"{settings.artifact_uri.rstrip('/')}/audit/checkpoints"


class CheckpointsMixin:
    """The checkpoint methods of ``SqlStore`` (mixed in). A store opened without settings writes
    no checkpoints (it does not know where the artifact store is)."""

    _checkpoints: CheckpointLog | None = None
    _audit_key: bytes | None = None

    def _read(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def _init_checkpoints(self, settings: Settings | None) -> None:
        if settings is None:
            return
        self._audit_key = load_key(settings.audit_key_file)
        self._checkpoints = CheckpointLog(checkpoint_location(settings))

    def audit_head(self) -> Checkpoint:
        """The chain's head now (``seq``, ``hash``, ``count``, ``time``), keyed when a key is set."""
        with self._read() as conn:
            return audit.head(conn).signed(self._audit_key)

    def list_audit_checkpoints(self) -> list[Checkpoint]:
        """The checkpoints stored outside the database, in ``seq`` order.

        Raises:
            IntegrityError: a checkpoint file cannot be read (damaged or replaced).
        """
        if self._checkpoints is None:
            return []
        found, unreadable = self._checkpoints.read_all()
        if unreadable:
            raise IntegrityError(
                f"{len(unreadable)} audit checkpoint file(s) in {self._checkpoints.url} cannot be read "
                f"(damaged or replaced): {unreadable[0]}",
                details={"files": unreadable[:20]},
            )
        return found

    def write_audit_checkpoint(self) -> Checkpoint:
        """Write a checkpoint of the head now (``shipyard audit anchor``) and return it."""
        if self._checkpoints is None:
            raise InvalidState(
                "This store was opened without settings, so it does not know where to write audit "
                "checkpoints; open it with open_store(uri, settings) or shipyard.Client()"
            )
        checkpoint = self.audit_head()
        self._checkpoints.write(checkpoint)
        return checkpoint

    def _anchor(self, head: Checkpoint | None) -> None:
        """After a committed transaction that appended: keep its head outside the database."""
        if head is None or self._checkpoints is None:
            return
        try:
            self._checkpoints.write(head.signed(self._audit_key))
        except OSError as exc:  # the change is committed; a missing checkpoint only weakens verify
            log.warning("Could not write audit checkpoint %s to %s: %s", head.seq, self._checkpoints.url, exc)
