"""Offline spool: a write-ahead journal of a REST client's writes, replayed when the server is back.

Entry point for the CLI command ``shipyard sync``::

    replay_spools(server_uri: str | None, spool_dir: str | os.PathLike[str],
                  *, settings: Settings | None = None) -> SyncReport

    Replays every journal in ``spool_dir`` (normally ``Settings.spool_dir``, i.e.
    ``<home>/spool``), oldest first, to ``server_uri`` — or, when it is None, to the
    server each journal was written for. Never raises for an unreachable server:
    those journals are counted as pending and kept.

    SyncReport(files, operations, failed, pending, problems)
        files       journals replayed completely (and removed)
        operations  operations the server accepted
        failed      operations the server refused; kept in ``spool_dir/rejected/``
        pending     journals left for later (server unreachable or refusing for
                    now, or another process is replaying them right now)
        problems    one line per journal left or entry refused: which, and why

``spool_status(spool_dir)`` reads the same state without sending anything (what
``shipyard doctor`` shows): journals waiting, why each last replay stopped, and
refused entries.

How it works. When a ``RestStore`` gets no answer from its server (connection
refused or reset, timeouts, a gateway's 502/503/504: ``ServerUnreachable``) a
write — ``create_run``, ``log_batch``, ``update_run``, ``record_artifacts`` or a
blob upload — is appended to a journal ``<spool_dir>/<pid>-<uuid>.jsonl`` (one
JSON object per line, fsynced before the call returns) and the call returns
normally. A server that answers with an error (say ``storage_full``) is not
"unreachable": that write raises and is not spooled. Every later write of a
spooling client goes to the journal too, so order is kept, until a replay has
sent them all.
Blob bytes wait in ``<spool_dir>/blobs/<digest>``; their ``put_blob`` entry comes
before the ``record_artifacts`` (or ``update_run``) entry that needs them. The end of a
run is one ``update_run`` entry carrying its last batch (with its ``batch_id``) and
artifact records, sent as one request; to a server that predates that, the client
sends it in parts (batch, artifacts, status), so older journals and servers keep working.

Replay sends the entries in order and records its progress (a byte offset) in
``<journal>.offset`` after each one; the journal is removed when all are sent.
Every entry is idempotent (``create_run`` by run id, ``log_batch`` by its
``batch_id``, chosen before the first send attempt; the others by nature), so a
crash mid-replay just resends an entry. ``fcntl.flock`` keeps two processes (say
``shipyard sync`` and the training process) from replaying one journal at once,
and appends take a short lock so a replayer never deletes a journal under a
writer. Entries the server refuses (say a param changed value) are moved to
``rejected/`` with the error instead of blocking the rest. When a replay stops
(no answer, or the server answers ``StoreUnavailable`` such as ``storage_full``:
retried later, in order) the reason is kept in ``<journal>.blocked`` until the
journal is sent, so ``shipyard sync`` and ``shipyard doctor`` can say why.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from shipyard.config import Settings, load_settings
from shipyard.entities import now_ms
from shipyard.errors import BlobNotFound, ConfigError, InvalidInput, ShipyardError, StoreUnavailable
from shipyard.store import open_store

__all__ = [
    "Journal",
    "ReplayResult",
    "ReplayTarget",
    "SpoolStatus",
    "SyncReport",
    "replay_journal",
    "replay_spools",
    "spool_status",
    "stash_blob",
]

log = logging.getLogger("shipyard.spool")

JOURNAL_SUFFIX = ".jsonl"
OFFSET_SUFFIX = ".offset"
BLOCKED_SUFFIX = ".blocked"
FORMAT_VERSION = 1


@runtime_checkable
class ReplayTarget(Protocol):
    """Where replayed entries go (``RestStore`` implements it).

    ``send_op`` and ``upload_blob`` raise ``StoreUnavailable`` when the server cannot be
    reached or cannot store right now (``storage_full``: replay stops and is retried later)
    and another ``ShipyardError`` when the server refuses the entry (it is set aside in
    ``rejected/``).
    """

    uri: str

    def send_op(self, op: dict[str, Any]) -> None: ...

    def upload_blob(self, path: Path, digest: str) -> None: ...

    def blob_exists(self, digest: str) -> bool: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SyncReport:
    """What :func:`replay_spools` did (see the module docstring)."""

    files: int = 0
    operations: int = 0
    failed: int = 0
    pending: int = 0
    problems: tuple[str, ...] = ()


@dataclass
class ReplayResult:
    """What one :func:`replay_journal` call did.

    ``done``: the journal is fully sent and removed (by this call when ``claimed``, else
    by another replayer before this one got to it).
    """

    done: bool = False
    operations: int = 0
    failed: int = 0
    error: StoreUnavailable | None = None
    claimed: bool = False
    refusals: list[str] = field(default_factory=list)


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, allow_nan=False, separators=(",", ":")).encode() + b"\n"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- the append side ---------------------------------------------------------------------------
class Journal:
    """The append side of a spool: one journal file per writer, rotated if a replayer removed it.

    Example:
        >>> import tempfile
        >>> journal = Journal(Path(tempfile.mkdtemp()), "http://127.0.0.1:5000")
        >>> journal.append({"op": "update_run", "run_id": "r1", "body": {"status": "finished"}})
        >>> journal.close()
    """

    def __init__(self, spool_dir: Path, server_uri: str) -> None:
        self.spool_dir = Path(spool_dir)
        self.server_uri = server_uri
        self.appended = 0
        self._mutex = threading.Lock()
        self._fd = -1
        self.path = self._open_new()

    def _open_new(self) -> Path:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        path = self.spool_dir / f"{os.getpid()}-{uuid.uuid4().hex}{JOURNAL_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        header = {"op": "header", "server": self.server_uri, "pid": os.getpid(), "created": now_ms()}
        os.write(fd, _dumps({**header, "version": FORMAT_VERSION}))
        os.fsync(fd)
        _fsync_dir(self.spool_dir)
        self._fd = fd
        self.path = path
        return path

    def append(self, op: dict[str, Any]) -> None:
        """Append one entry durably (fsynced before returning); ``StoreUnavailable`` if the disk fails."""
        line = _dumps(op)
        with self._mutex:
            try:
                self._append_locked(line)
            except OSError as exc:
                raise StoreUnavailable(
                    f"The Shipyard server is unreachable and the offline spool {self.path} cannot be "
                    f"written either: {exc}. Free disk space or set SHIPYARD_HOME to a writable folder."
                ) from exc
            self.appended += 1

    def _append_locked(self, line: bytes) -> None:
        while True:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            if os.fstat(self._fd).st_nlink > 0:
                break
            # A replayer sent everything and removed the file: start a fresh journal.
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._open_new()
        try:
            size = os.fstat(self._fd).st_size
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(self._fd, view) :]
                os.fsync(self._fd)
            except OSError:
                os.ftruncate(self._fd, size)  # never leave a torn line for the next append
                raise
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def gone(self) -> bool:
        """True when a replayer has sent every entry and removed the journal file."""
        with self._mutex:
            return self._fd < 0 or os.fstat(self._fd).st_nlink == 0

    def close(self) -> None:
        with self._mutex:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def stash_blob(spool_dir: Path, src: Path, digest: str, *, move: bool) -> Path:
    """Keep a blob's bytes in ``spool_dir/blobs/<digest>`` until a replay uploads them.

    With ``move`` the file is renamed in (it must be on the same file system, e.g.
    under ``spool_dir/tmp``); otherwise it is copied, atomically.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp()); (root / "f").write_bytes(b"x")
        1
        >>> stash_blob(root, root / "f", "ab" * 32, move=False).name == "ab" * 32
        True
    """
    blob_dir = spool_dir / "blobs"
    blob_dir.mkdir(parents=True, exist_ok=True)
    final = blob_dir / digest
    if final.exists():
        if move:
            src.unlink(missing_ok=True)
        return final
    if move:
        os.replace(src, final)
        return final
    tmp = blob_dir / f".{digest}.{uuid.uuid4().hex}.part"
    try:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
            fout.flush()
            os.fsync(fout.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


# -- the replay side ---------------------------------------------------------------------------
class _Progress:
    """The offset file of a journal, locked by its replayer: the byte offset of the next entry."""

    removed_by_other = False

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path

    def load(self) -> int:
        raw = os.pread(self.fd, 32, 0).strip()
        return int(raw) if raw.isdigit() else 0

    def save(self, offset: int) -> None:
        os.pwrite(self.fd, f"{offset:020d}".encode(), 0)  # fixed width: one small in-place write

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


@contextlib.contextmanager
def _claim(journal: Path) -> Iterator[_Progress | None]:
    """The exclusive right to replay ``journal``; None if another process has it or it is gone."""
    off_path = journal.with_name(journal.name + OFFSET_SUFFIX)
    try:
        fd = os.open(off_path, os.O_RDWR | os.O_CREAT, 0o600)
    except FileNotFoundError:  # the spool folder itself was removed
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        if os.fstat(fd).st_nlink == 0:  # a replayer finished and removed it while we opened it
            yield None
            return
        if not journal.exists():
            off_path.unlink(missing_ok=True)
            yield None
            return
        yield _Progress(fd, off_path)
    finally:
        os.close(fd)


def _read_ops(fh: IO[bytes], offset: int) -> Iterator[tuple[dict[str, Any] | None, int]]:
    """Complete entries from ``offset`` on, with the offset after each; None for an unreadable line."""
    fh.seek(offset)
    while True:
        line = fh.readline()
        if not line.endswith(b"\n"):  # end of file, or an append still in progress
            return
        try:
            op = json.loads(line)
        except ValueError:
            op = None
        yield (op if isinstance(op, dict) else None), fh.tell()


def _sidecar(journal: Path, suffix: str) -> Path:
    return journal.with_name(journal.name + suffix)


def _record_block(journal: Path, exc: StoreUnavailable) -> None:
    """Keep why the replay of ``journal`` stopped (shown by ``shipyard sync`` and ``doctor``)."""
    entry = {"error": exc.to_dict()["error"], "at": now_ms()}
    with contextlib.suppress(OSError):  # a full disk must not turn a pause into a crash
        _sidecar(journal, BLOCKED_SUFFIX).write_bytes(_dumps(entry))


def _read_block(journal: Path) -> str | None:
    try:
        entry = json.loads(_sidecar(journal, BLOCKED_SUFFIX).read_bytes())
        error = entry["error"]
        return f"{error['code']}: {error['message']}"
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable reason file ({exc})"


def _reject(journal: Path, op: dict[str, Any] | None, exc: ShipyardError) -> None:
    rejected = journal.parent / "rejected"
    rejected.mkdir(parents=True, exist_ok=True)
    entry = {"op": op, "error": exc.to_dict()["error"], "rejected_at": now_ms()}
    with open(rejected / journal.name, "ab") as fh:
        fh.write(_dumps(entry))
    log.warning("Shipyard server refused a spooled write (kept in %s): %s", rejected / journal.name, exc)


def _replay_blob(op: dict[str, Any], target: ReplayTarget, blob_dir: Path) -> None:
    digest = str(op.get("digest", ""))
    path = blob_dir / digest
    if path.is_file():
        target.upload_blob(path, digest)
        path.unlink(missing_ok=True)
    elif not target.blob_exists(digest):
        raise BlobNotFound(f"Spooled blob {digest} is missing from {blob_dir} and from the server")


def _apply(op: dict[str, Any] | None, target: ReplayTarget, journal: Path, result: ReplayResult) -> None:
    """Send one entry; a refusal is set aside, ``StoreUnavailable`` propagates (stop, retry later)."""
    kind = None if op is None else op.get("op")
    if kind == "header":
        return
    try:
        if op is None:
            raise InvalidInput(f"Unreadable line in spool journal {journal}")
        if kind == "put_blob":
            _replay_blob(op, target, journal.parent / "blobs")
        else:
            target.send_op(op)
    except StoreUnavailable:
        raise
    except ShipyardError as exc:
        _reject(journal, op, exc)
        result.failed += 1
        result.refusals.append(f"{kind or 'entry'} refused ({exc.code}): {exc.message}")
        return
    result.operations += 1


def _finish(journal: Path, fh: IO[bytes], offset: int, progress: _Progress) -> bool:
    """Remove the journal if every entry is sent; False when new entries arrived meanwhile."""
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # writers hold this lock while appending
    try:
        size = os.fstat(fh.fileno()).st_size
        if size > offset:
            fh.seek(offset)
            tail = fh.read(size - offset)
            if b"\n" in tail:
                return False
            log.warning("Dropping a torn last line of %s (its writer died mid-write)", journal)
        try:
            journal.unlink()
        except FileNotFoundError:  # another replayer got there first: not ours to count
            progress.removed_by_other = True
        progress.remove()
        _sidecar(journal, BLOCKED_SUFFIX).unlink(missing_ok=True)
        return True
    finally:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def replay_journal(journal: str | os.PathLike[str], target: ReplayTarget) -> ReplayResult:
    """Send a journal's entries in order from its saved offset; remove it when all are sent.

    Returns with ``done=False`` when the server is unreachable (``error`` says why)
    or another process is replaying the same journal.

    Example:
        >>> replay_journal("/nonexistent/1-abc.jsonl", target)  # doctest: +SKIP
        ReplayResult(done=True, operations=0, failed=0, error=None, claimed=False)
    """
    path = Path(journal)
    result = ReplayResult()
    with _claim(path) as progress:
        if progress is None:
            result.done = not path.exists()
            return result
        result.claimed = True
        try:
            with open(path, "rb") as fh:
                offset = progress.load()
                while not result.done:
                    for op, end in _read_ops(fh, offset):
                        _apply(op, target, path, result)
                        offset = end
                        progress.save(offset)
                    result.done = _finish(path, fh, offset, progress)
            result.claimed = not progress.removed_by_other
        except StoreUnavailable as exc:
            result.error = exc
            _record_block(path, exc)
        except FileNotFoundError:  # removed by another replayer between our claim and our open
            result.done, result.claimed = True, False
    return result


# -- shipyard sync -----------------------------------------------------------------------------
def _header_server(journal: Path) -> str | None:
    try:
        with open(journal, "rb") as fh:
            header = json.loads(fh.readline())
    except (OSError, ValueError):
        return None
    server = header.get("server") if isinstance(header, dict) else None
    return server if isinstance(server, str) and server else None


def _open_target(uri: str, settings: Settings) -> ReplayTarget:
    store = open_store(uri, settings)
    if not isinstance(store, ReplayTarget):
        store.close()
        raise ConfigError(
            f"Spooled writes can only be replayed to a Shipyard server (http(s)://…), not {uri!r}"
        )
    return store


def _journals(spool_dir: Path) -> list[Path]:
    if not spool_dir.is_dir():
        return []
    found = []
    for path in spool_dir.glob(f"*{JOURNAL_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            found.append((path.stat().st_mtime, path))
    return [p for _, p in sorted(found)]


def replay_spools(
    server_uri: str | None, spool_dir: str | os.PathLike[str], *, settings: Settings | None = None
) -> SyncReport:
    """Replay every journal in ``spool_dir`` (what ``shipyard sync`` runs); see the module docstring.

    Example:
        >>> report = replay_spools("http://127.0.0.1:5000", load_settings().spool_dir)  # doctest: +SKIP
        >>> report.pending == 0  # doctest: +SKIP
        True
    """
    settings = settings or load_settings()
    targets: dict[str, ReplayTarget | ShipyardError] = {}
    files = operations = failed = pending = 0
    problems: list[str] = []
    try:
        for journal in _journals(Path(spool_dir)):
            uri = server_uri or _header_server(journal)
            if uri is None:
                problems.append(f"{journal}: names no server; pass --server URL to replay it")
                pending += 1
                continue
            if uri not in targets:
                targets[uri] = _try_open_target(uri, settings)
            target = targets[uri]
            if isinstance(target, ShipyardError):
                problems.append(f"{journal}: cannot replay to {uri}: {target.message}")
                pending += 1
                continue
            result = replay_journal(journal, target)
            operations += result.operations
            failed += result.failed
            files += int(result.done and result.claimed)
            pending += int(not result.done)
            problems.extend(f"{journal}: {why}" for why in result.refusals)
            if result.error is not None:
                log.warning("Could not replay %s yet: %s", journal, result.error)
                problems.append(f"{journal}: not sent yet ({result.error.code}): {result.error.message}")
            elif not result.done:
                problems.append(f"{journal}: another process is replaying it right now")
    finally:
        for opened in targets.values():
            if not isinstance(opened, ShipyardError):
                opened.close()
    return SyncReport(files, operations, failed, pending, tuple(problems))


def _try_open_target(uri: str, settings: Settings) -> ReplayTarget | ShipyardError:
    try:
        return _open_target(uri, settings)
    except ShipyardError as exc:  # reported per journal, the others are still replayed
        return exc


@dataclass(frozen=True)
class SpoolStatus:
    """The spool as it stands, read without sending anything (``shipyard doctor``).

    ``journals``: (journal path, why its last replay stopped or None) per journal waiting;
    ``rejected``: entries the server refused, kept in ``spool_dir/rejected/``;
    ``last_rejection``: the error of the newest of them.
    """

    spool_dir: str
    journals: tuple[tuple[str, str | None], ...] = ()
    rejected: int = 0
    last_rejection: str | None = None

    @property
    def ok(self) -> bool:
        return not self.journals and not self.rejected


def spool_status(spool_dir: str | os.PathLike[str]) -> SpoolStatus:
    """What waits in ``spool_dir`` and why (no replay, no side effects).

    Example:
        >>> import tempfile
        >>> spool_status(tempfile.mkdtemp()).ok
        True
    """
    folder = Path(spool_dir)
    journals = tuple((str(j), _read_block(j)) for j in _journals(folder))
    rejected, last = 0, None
    rejected_dir = folder / "rejected"
    files = sorted(rejected_dir.glob(f"*{JOURNAL_SUFFIX}"), key=_mtime) if rejected_dir.is_dir() else []
    for path in files:
        with contextlib.suppress(OSError):
            lines = path.read_bytes().splitlines()
            rejected += len(lines)
            last = _rejection_text(lines[-1]) if lines else last
    return SpoolStatus(str(folder), journals, rejected, last)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _rejection_text(line: bytes) -> str:
    try:
        entry = json.loads(line)
        op = entry.get("op") or {}
        error = entry["error"]
        return f"{op.get('op', 'entry')} refused ({error['code']}): {error['message']}"
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return f"unreadable rejection entry ({exc})"
