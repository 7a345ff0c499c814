"""Checkpoints of the audit chain's head, kept outside the database ("anchors").

A hash chain alone proves only that the rows agree with each other: someone who can write the
database can delete the last rows, delete every row, or edit a row and recompute every later
hash, and the chain still links. A checkpoint ``{seq, hash, count, time}`` stored *outside* the
database pins what the chain was: if entry ``seq`` no longer has that hash, or the chain now
holds fewer than ``count`` entries, it was rewritten or truncated.

Checkpoints carry an HMAC-SHA256 (``mac``) under a key read from the file named by the
``audit_key_file`` setting, so whoever can write the checkpoint folder but does not hold the key
cannot forge one. ``CheckpointLog`` keeps them as one small JSON file per checkpoint under a
folder or fsspec URL (by default ``<artifact_uri>/audit/checkpoints``); operators can also pin
checkpoints anywhere they like (``shipyard audit anchor --out FILE``, ``GET /api/v1/audit/head``)
and check against them with ``shipyard audit verify --anchor FILE``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from shipyard.errors import ConfigError, InvalidInput

__all__ = ["MIN_KEY_BYTES", "Checkpoint", "CheckpointLog", "latest", "load_key", "read_pinned"]

log = logging.getLogger("shipyard.audit")

MIN_KEY_BYTES = 16  # shorter keys are guessable; ``openssl rand -hex 32 > key`` gives 64


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head at one moment: last ``seq`` and its ``hash``, the entry ``count``, the
    ``time`` (epoch ms) and an HMAC over those (``mac``; empty when no key was configured).

    Example:
        >>> cp = Checkpoint(3, "ab" * 32, 3, 0).signed(b"k" * 32)
        >>> cp.authentic(b"k" * 32), cp.authentic(b"x" * 32)
        (True, False)
    """

    seq: int
    hash: str
    count: int
    time: int
    mac: str = ""

    def _payload(self) -> bytes:
        body = {"seq": self.seq, "hash": self.hash, "count": self.count, "time": self.time}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def signed(self, key: bytes | None) -> Checkpoint:
        """This checkpoint with its MAC under ``key`` (unchanged, unsigned, when ``key`` is None)."""
        if key is None:
            return replace(self, mac="")
        return replace(self, mac=hmac.new(key, self._payload(), hashlib.sha256).hexdigest())

    def authentic(self, key: bytes) -> bool:
        """True when ``mac`` is this checkpoint's HMAC under ``key`` (constant-time compare)."""
        expected = hmac.new(key, self._payload(), hashlib.sha256).hexdigest()
        return bool(self.mac) and hmac.compare_digest(expected, self.mac)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = "checkpoint") -> Checkpoint:
        """Parse and type-check one checkpoint (``where`` names it in the error)."""
        try:
            cp = cls(
                seq=_int(data["seq"]),
                hash=str(data["hash"]),
                count=_int(data["count"]),
                time=_int(data["time"]),
                mac=str(data.get("mac") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(
                f"{where} is not an audit checkpoint ({exc!s}): expected a JSON object with "
                "seq, hash, count and time, as written by `shipyard audit anchor`"
            ) from None
        if cp.seq < 0 or cp.count < 0 or len(cp.hash) != 64:
            raise InvalidInput(f"{where} has an impossible seq, count or hash: {cp.to_dict()}")
        return cp


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not an integer")
    return value


def load_key(path: str | os.PathLike[str] | None) -> bytes | None:
    """The checkpoint key from the file ``path`` (surrounding whitespace ignored); None when unset.

    Example:
        >>> load_key("") is None
        True
    """
    if not path:
        return None
    try:
        key = Path(path).read_bytes().strip()
    except OSError as exc:
        raise ConfigError(
            f"Cannot read the audit key file {path} (setting audit_key_file): {exc.strerror or exc}"
        ) from exc
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            f"The audit key in {path} (setting audit_key_file) has {len(key)} bytes; use at least "
            f"{MIN_KEY_BYTES}, e.g.: openssl rand -hex 32 > {path}"
        )
    return key


class CheckpointLog:
    """Checkpoints under a folder or fsspec URL, one ``<seq>.json`` file each (works on object
    stores, which cannot append). Writing the same ``seq`` again replaces that file.

    Example:
        >>> cps = CheckpointLog("memory://doc-anchors")
        >>> cps.write(Checkpoint(1, "ab" * 32, 1, 0))
        >>> [c.seq for c in cps.read_all()[0]]
        [1]
    """

    def __init__(self, url: str) -> None:
        import fsspec

        self.url = url
        try:
            self._fs, root = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as exc:
            raise ConfigError(f"Cannot open the audit checkpoint location {url!r}: {exc}") from exc
        self._root = root.rstrip("/")

    def write(self, checkpoint: Checkpoint) -> None:
        """Store ``checkpoint`` (written to a temporary name, then renamed where the filesystem can)."""
        self._fs.makedirs(self._root, exist_ok=True)
        final = f"{self._root}/{checkpoint.seq:012d}.json"
        tmp = f"{self._root}/.{checkpoint.seq:012d}.{os.getpid()}.tmp"
        with self._fs.open(tmp, "w") as fh:
            fh.write(json.dumps(checkpoint.to_dict(), sort_keys=True))
        self._fs.mv(tmp, final)

    def read_all(self) -> tuple[list[Checkpoint], list[str]]:
        """Every stored checkpoint in ``seq`` order, and the files that could not be read as one."""
        try:
            names = sorted(
                p for p in self._fs.ls(self._root, detail=False, refresh=True) if str(p).endswith(".json")
            )  # refresh: other processes (the server's other workers) write checkpoints too
        except FileNotFoundError:
            return [], []
        found: list[Checkpoint] = []
        unreadable: list[str] = []
        for name in names:
            try:
                with self._fs.open(name, "r") as fh:
                    found.append(Checkpoint.from_dict(json.loads(fh.read()), where=str(name)))
            except (OSError, ValueError, InvalidInput) as exc:
                unreadable.append(f"{name}: {exc}")
        return sorted(found, key=lambda c: (c.seq, c.time)), unreadable


def read_pinned(path: str | os.PathLike[str]) -> list[Checkpoint]:
    """Checkpoints an operator pinned: one JSON object (``shipyard audit anchor --out``, or the
    answer of ``GET /api/v1/audit/head``), a JSON list of them, or one per line.

    Example:
        >>> read_pinned("pinned-head.json")  # doctest: +SKIP
        [Checkpoint(seq=120, hash='…', count=120, time=1720000000000, mac='…')]
    """
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InvalidInput(f"Cannot read the pinned checkpoint file {path}: {exc.strerror or exc}") from exc
    try:
        data: Any = json.loads(text)
        items: Iterable[Any] = data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        try:
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path} is neither JSON nor JSON lines: {exc}") from None
    found = [Checkpoint.from_dict(item, where=f"{path}") for item in items]
    if not found:
        raise InvalidInput(f"{path} holds no checkpoint")
    return found


def latest(checkpoints: Sequence[Checkpoint]) -> Checkpoint | None:
    """The checkpoint with the highest ``seq`` (the newest among equals), or None."""
    return max(checkpoints, key=lambda c: (c.seq, c.time), default=None)
