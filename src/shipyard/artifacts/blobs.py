"""Blob stores addressed by BLAKE3 digest.

Writes go to a temporary name and are renamed into place once the digest is
known, so a crash never leaves a partial blob under a digest name. Reads hash
what they return and raise ``DigestMismatch`` naming the digest when the bytes
on disk are not the bytes that were written. Identical content is stored once.

Layout under the root: ``blobs/ab/cdef…`` (two-character fan-out) and ``tmp/``.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

import blake3

from shipyard.errors import (
    BlobNotFound,
    ConfigError,
    DigestMismatch,
    InvalidInput,
    StorageFull,
    StorageReadOnly,
    StoreUnavailable,
)

__all__ = [
    "BlobStore",
    "FsspecBlobStore",
    "HashingWriter",
    "check_digest",
    "hash_file",
    "open_blob_store",
    "storage_error",
]

CHUNK = 1 << 20
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")


def check_digest(digest: str) -> str:
    """Refuse anything but 64 lowercase hex characters (also keeps digests path-safe)."""
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise InvalidInput(f"Invalid blob digest {digest!r}: expected 64 lowercase hex characters")
    return digest


def hash_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """BLAKE3 digest and size of a local file, memory-mapped and multi-threaded."""
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    hasher.update_mmap(os.fspath(path))
    return hasher.hexdigest(), os.path.getsize(path)


_FULL = {errno.ENOSPC, errno.EDQUOT}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


def storage_error(exc: OSError, root: str) -> StoreUnavailable:
    """The Shipyard error for a failed write under the artifact root ``root`` (one mapping for all).

    A full disk or quota is ``StorageFull``, a read-only or unwritable one ``StorageReadOnly``,
    anything else ``StoreUnavailable``; each message names the root and the fix.

    Example:
        >>> storage_error(OSError(errno.ENOSPC, "No space left on device"), "/srv/artifacts").code
        'storage_full'
    """
    details = {"root": root, "errno": errno.errorcode.get(exc.errno or 0, str(exc.errno))}
    if exc.errno in _FULL:
        return StorageFull(
            f"The artifact store {root} is full ({exc.strerror or exc}); nothing was stored. "
            "Free space there (shipyard gc removes unreferenced blobs) or move SHIPYARD_ARTIFACT_URI "
            "to a larger volume, then log again.",
            details=details,
        )
    if exc.errno in _READ_ONLY:
        return StorageReadOnly(
            f"The artifact store {root} is not writable ({exc.strerror or exc}); nothing was stored. "
            "Remount it read-write or fix its permissions, or point SHIPYARD_ARTIFACT_URI elsewhere.",
            details=details,
        )
    return StoreUnavailable(f"Cannot write a blob to the artifact store {root}: {exc}", details=details)


@runtime_checkable
class BlobStore(Protocol):
    url: str

    def put_file(self, path: str | os.PathLike[str]) -> tuple[str, int]: ...

    def put_stream(self, stream: IO[bytes]) -> tuple[str, int]: ...

    def put_bytes(self, data: bytes) -> tuple[str, int]: ...

    def put_writer(self, write: Callable[[IO[bytes]], object]) -> tuple[str, int]: ...

    def exists(self, digest: str) -> bool: ...

    def iter_chunks(self, digest: str, chunk_size: int = CHUNK) -> Iterator[bytes]: ...

    def get_bytes(self, digest: str) -> bytes: ...

    def download(self, digest: str, dest: str | os.PathLike[str]) -> None: ...

    def delete(self, digest: str) -> None: ...

    def iter_digests(self) -> Iterator[tuple[str, float]]: ...


class HashingWriter:
    """A binary file object that hashes (BLAKE3) and counts the bytes it passes on to ``sink``.

    Example:
        >>> import io
        >>> out = HashingWriter(io.BytesIO())
        >>> out.write(b"hello"), out.size, out.hexdigest()[:8]
        (5, 5, 'ea8f163d')
    """

    closed = False

    def __init__(self, sink: IO[bytes]) -> None:
        self._sink = sink
        self._hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data).cast("B")
        self._hasher.update(view)
        self._sink.write(view)
        self.size += view.nbytes
        return view.nbytes

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._sink.flush()

    def hexdigest(self) -> str:
        return self._hasher.hexdigest()


class BlobStoreBase:
    """Template: public methods verify and wrap; subclasses implement the ``_do_*`` parts."""

    url: str

    def _do_open(self, digest: str) -> IO[bytes]:
        raise NotImplementedError

    def _do_put_stream(self, stream: IO[bytes]) -> tuple[str, int]:
        raise NotImplementedError

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        import io

        return self.put_stream(io.BytesIO(data))

    def put_stream(self, stream: IO[bytes]) -> tuple[str, int]:
        try:
            return self._do_put_stream(stream)
        except OSError as exc:
            raise storage_error(exc, self.url) from exc

    def put_writer(self, write: Callable[[IO[bytes]], object]) -> tuple[str, int]:
        """Store what ``write`` writes to the file object it is given (a serializer writing
        straight into the store: no copy of the whole content in memory where the store can).

        Example:
            >>> FsspecBlobStore("memory://doc-writer").put_writer(lambda fh: fh.write(b"hi"))[1]
            2
        """
        try:
            return self._do_put_writer(write)
        except OSError as exc:
            raise storage_error(exc, self.url) from exc

    def _do_put_writer(self, write: Callable[[IO[bytes]], object]) -> tuple[str, int]:
        # Default: spool (memory, then a local temporary file), then upload as a stream.
        with tempfile.SpooledTemporaryFile(max_size=CHUNK * 64) as spool:
            write(spool)  # type: ignore[arg-type]
            spool.seek(0)
            return self._do_put_stream(spool)  # type: ignore[arg-type]

    def iter_chunks(self, digest: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        """Yield the blob's bytes; raise ``DigestMismatch`` at the end if they do not hash right."""
        check_digest(digest)
        try:
            fh = self._do_open(digest)
        except FileNotFoundError:
            raise BlobNotFound(f"Blob {digest} not found in {self.url}") from None
        hasher = blake3.blake3()
        with fh:
            while chunk := fh.read(chunk_size):
                hasher.update(chunk)
                yield chunk
        actual = hasher.hexdigest()
        if actual != digest:
            raise DigestMismatch(
                f"Blob {digest} in {self.url} is corrupt or was tampered with: its content hashes "
                f"to {actual}. Restore it from a backup or log the artifact again.",
                details={"digest": digest, "actual": actual},
            )

    def get_bytes(self, digest: str) -> bytes:
        return b"".join(self.iter_chunks(digest))

    def download(self, digest: str, dest: str | os.PathLike[str]) -> None:
        """Write the verified blob to ``dest`` atomically (never a partial or bad file there)."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        try:
            with tmp.open("wb") as out:
                for chunk in self.iter_chunks(digest):
                    out.write(chunk)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)


class FsspecBlobStore(BlobStoreBase):
    """Blobs in a local folder or any fsspec URL (``memory://``, ``s3://``, ``gs://``, …).

    Example:
        >>> store = FsspecBlobStore("memory://doc-example")
        >>> digest, size = store.put_bytes(b"hello")
        >>> store.get_bytes(digest)
        b'hello'
    """

    def __init__(self, url: str) -> None:
        import fsspec

        self.url = url
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as exc:
            raise InvalidInput(f"Cannot open artifact store {url!r}: {exc}") from exc
        self.root = self.root.rstrip("/")
        self._local = "file" in (
            self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        )
        try:
            self.fs.makedirs(f"{self.root}/blobs", exist_ok=True)
            self.fs.makedirs(f"{self.root}/tmp", exist_ok=True)
            if self._local:
                _probe_writable(f"{self.root}/tmp")
        except OSError as exc:
            raise ConfigError(
                f"The artifact store {url!r} cannot be used: {exc.strerror or exc} "
                f"({getattr(exc, 'filename', None) or self.root}). Point SHIPYARD_ARTIFACT_URI (or "
                "artifact_uri in shipyard.toml) at a folder that can be created and written.",
                details={"root": url},
            ) from exc

    def _path(self, digest: str) -> str:
        return f"{self.root}/blobs/{digest[:2]}/{digest[2:]}"

    def exists(self, digest: str) -> bool:
        return bool(self.fs.exists(self._path(check_digest(digest))))

    def _do_open(self, digest: str) -> IO[bytes]:
        return self.fs.open(self._path(digest), "rb")  # type: ignore[no-any-return]

    def _commit(self, tmp: str, digest: str) -> None:
        final = self._path(digest)
        if self.fs.exists(final):
            self.fs.rm(tmp)  # identical content is stored once
            return
        self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
        self.fs.mv(tmp, final)  # a rename on local disks: atomic

    def _do_put_stream(self, stream: IO[bytes]) -> tuple[str, int]:
        tmp = f"{self.root}/tmp/{uuid.uuid4().hex}"
        hasher = blake3.blake3()
        size = 0
        try:
            with self.fs.open(tmp, "wb") as out:
                while chunk := stream.read(CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            digest = hasher.hexdigest()
            self._commit(tmp, digest)
        except BaseException:
            if self.fs.exists(tmp):
                self.fs.rm(tmp)
            raise
        return digest, size

    def _do_put_writer(self, write: Callable[[IO[bytes]], object]) -> tuple[str, int]:
        """Write into the store's own temporary file, hashing as the bytes pass, then rename."""
        tmp = f"{self.root}/tmp/{uuid.uuid4().hex}"
        try:
            with self.fs.open(tmp, "wb") as out:
                sink = HashingWriter(out)
                write(sink)  # type: ignore[arg-type]
            digest = sink.hexdigest()
            self._commit(tmp, digest)
        except BaseException:
            if self.fs.exists(tmp):
                self.fs.rm(tmp)
            raise
        return digest, sink.size

    def put_file(self, path: str | os.PathLike[str]) -> tuple[str, int]:
        """Store a local file; when the content is already stored, nothing is copied.

        On a local store the file is hashed once (memory-mapped, multi-threaded) and copied with
        the kernel's copy (``sendfile``), not re-hashed while copying; if the file changed while
        that happened (size or mtime moved), the copy itself is hashed and stored under its own
        digest, so a blob always holds the bytes its name says.
        """
        before = os.stat(path)
        digest, size = hash_file(path)
        if self.exists(digest):
            return digest, size
        if not self._local:
            with open(path, "rb") as fh:
                stored, stored_size = self.put_stream(fh)
            if stored != digest:
                raise DigestMismatch(f"File {path} changed while it was being stored ({digest} → {stored})")
            return stored, stored_size
        return self._copy_local(path, digest, size, before)

    def _copy_local(
        self, path: str | os.PathLike[str], digest: str, size: int, before: os.stat_result
    ) -> tuple[str, int]:
        tmp = f"{self.root}/tmp/{uuid.uuid4().hex}"
        try:
            shutil.copyfile(path, tmp)
            after = os.stat(path)
            moved = (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns)
            if moved or after.st_size != size:
                digest, size = hash_file(tmp)  # the source changed under us: name the copy by its content
            self._commit(tmp, digest)
        except OSError as exc:
            raise storage_error(exc, self.url) from exc
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return digest, size

    def _listing(self, folder: str, detail: bool) -> list[Any]:
        """``fs.ls(folder)`` as it is now, ``[]`` when nothing is under it (an object store has no empty
        folders); the listing is not cached, so later ``exists`` and reads in this process see blobs
        other processes (the server's other workers) write or delete afterwards."""
        try:
            return list(self.fs.ls(folder, detail=detail, refresh=True))
        except FileNotFoundError:
            return []
        finally:
            self.fs.invalidate_cache(folder)

    def delete(self, digest: str) -> None:
        path = self._path(check_digest(digest))
        if self.fs.exists(path):
            self.fs.rm(path)

    def iter_digests(self) -> Iterator[tuple[str, float]]:
        """Yield (digest, modified time as epoch seconds) for every stored blob."""
        base = f"{self.root}/blobs"
        for prefix in sorted(self._listing(base, detail=False)):
            for info in self._listing(prefix, detail=True):
                name = info["name"].rstrip("/")
                digest = name.rsplit("/", 2)[-2][-2:] + name.rsplit("/", 1)[-1]
                if _DIGEST_RE.match(digest):
                    yield digest, _mtime(info)

    def clean_tmp(self, older_than_s: float = 3600.0) -> int:
        """Remove temp files left by crashed writers."""
        removed = 0
        for info in self._listing(f"{self.root}/tmp", detail=True):
            if time.time() - _mtime(info) >= older_than_s:
                self.fs.rm(info["name"])
                removed += 1
        return removed


def _probe_writable(folder: str) -> None:
    """Create and remove an empty file in ``folder``: OSError unless files can be written there."""
    fd, probe = tempfile.mkstemp(prefix=".probe-", dir=folder)
    os.close(fd)
    os.unlink(probe)


def _mtime(info: dict[str, Any]) -> float:
    for key in ("mtime", "created", "LastModified", "last_modified", "updated"):
        value = info.get(key)
        if value is None:
            continue
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
        try:
            return float(value)
        except (TypeError, ValueError):
            continue
    return 0.0


def open_blob_store(url: str) -> FsspecBlobStore:
    """Open the blob store at a local folder or fsspec URL."""
    return FsspecBlobStore(url)
