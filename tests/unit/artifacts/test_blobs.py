"""Content-addressed blob store: verified reads, atomic writes, stored-once content."""

from __future__ import annotations

import io
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest

from shipyard.artifacts import FsspecBlobStore, hash_file, open_blob_store
from shipyard.artifacts.blobs import BlobStore
from shipyard.errors import BlobNotFound, DigestMismatch, InvalidInput


@pytest.fixture(params=["memory", "local"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FsspecBlobStore]:
    if request.param == "memory":
        store = FsspecBlobStore(f"memory://blobs-{uuid.uuid4().hex}")
        yield store
        store.fs.rm(store.root, recursive=True)
    else:
        yield FsspecBlobStore(str(tmp_path / "artifacts"))


def _blob_files(store: FsspecBlobStore) -> list[str]:
    return [p for p in store.fs.find(f"{store.root}/blobs")]


def _tmp_files(store: FsspecBlobStore) -> list[str]:
    return list(store.fs.find(f"{store.root}/tmp"))


def _tamper(store: FsspecBlobStore, digest: str, data: bytes) -> None:
    store.fs.pipe_file(store._path(digest), data)


def test_store_satisfies_the_blob_store_protocol(blobs: FsspecBlobStore) -> None:
    assert isinstance(blobs, BlobStore)


def test_put_then_get_returns_the_same_bytes_under_their_blake3_digest(blobs: FsspecBlobStore) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # spans several read chunks
    digest, size = blobs.put_bytes(data)
    assert digest == blake3.blake3(data).hexdigest()
    assert size == len(data)
    assert blobs.exists(digest)
    assert blobs.get_bytes(digest) == data


def test_empty_blob_round_trips(blobs: FsspecBlobStore) -> None:
    digest, size = blobs.put_bytes(b"")
    assert size == 0
    assert blobs.get_bytes(digest) == b""


def test_identical_content_is_stored_once(blobs: FsspecBlobStore) -> None:
    first = blobs.put_bytes(b"same bytes")
    second = blobs.put_stream(io.BytesIO(b"same bytes"))
    assert first == second
    assert len(_blob_files(blobs)) == 1
    assert _tmp_files(blobs) == []


def test_blobs_fan_out_under_a_two_character_prefix(blobs: FsspecBlobStore) -> None:
    digest, _ = blobs.put_bytes(b"layout")
    (path,) = _blob_files(blobs)
    assert path.endswith(f"blobs/{digest[:2]}/{digest[2:]}")


def test_tampered_blob_raises_digest_mismatch_naming_the_digest_on_get(blobs: FsspecBlobStore) -> None:
    digest, _ = blobs.put_bytes(b"original content")
    _tamper(blobs, digest, b"evil content")
    with pytest.raises(DigestMismatch) as info:
        blobs.get_bytes(digest)
    assert digest in str(info.value)
    assert info.value.details["digest"] == digest
    assert info.value.details["actual"] == blake3.blake3(b"evil content").hexdigest()


def test_tampered_blob_download_raises_and_leaves_no_file_at_dest(
    blobs: FsspecBlobStore, tmp_path: Path
) -> None:
    digest, _ = blobs.put_bytes(b"original content")
    _tamper(blobs, digest, b"evil content")
    dest = tmp_path / "out" / "model.bin"
    with pytest.raises(DigestMismatch, match=digest):
        blobs.download(digest, dest)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # no partial ".part" file either


def test_download_writes_the_verified_bytes(blobs: FsspecBlobStore, tmp_path: Path) -> None:
    digest, _ = blobs.put_bytes(b"weights")
    dest = tmp_path / "a" / "b" / "w.bin"
    blobs.download(digest, dest)
    assert dest.read_bytes() == b"weights"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["w.bin"]


def test_truncated_blob_is_detected(blobs: FsspecBlobStore) -> None:
    digest, _ = blobs.put_bytes(b"0123456789" * 1000)
    _tamper(blobs, digest, b"0123456789" * 999)
    with pytest.raises(DigestMismatch):
        blobs.get_bytes(digest)


@pytest.mark.parametrize(
    "bad",
    ["abc", "A" * 64, "g" * 64, "../" + "a" * 61, "a" * 63 + "/", "a" * 65, "", None],
)
def test_invalid_digest_string_raises_invalid_input(blobs: FsspecBlobStore, bad: object) -> None:
    with pytest.raises(InvalidInput, match="Invalid blob digest"):
        blobs.get_bytes(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        blobs.exists(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        blobs.delete(bad)  # type: ignore[arg-type]


def test_missing_blob_raises_blob_not_found(blobs: FsspecBlobStore, tmp_path: Path) -> None:
    digest = blake3.blake3(b"never stored").hexdigest()
    assert not blobs.exists(digest)
    with pytest.raises(BlobNotFound, match=digest):
        blobs.get_bytes(digest)
    with pytest.raises(BlobNotFound):
        blobs.download(digest, tmp_path / "x")
    assert not (tmp_path / "x").exists()


class _CrashingStream(io.RawIOBase):
    """A source that yields some bytes, then fails (a dying network read, a killed producer)."""

    def __init__(self, good: bytes) -> None:
        self._good = good
        self._sent = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if not self._sent:
            self._sent = True
            return self._good
        raise RuntimeError("source died mid-write")


def test_writer_crashing_mid_write_leaves_no_blob_and_no_temp_file(blobs: FsspecBlobStore) -> None:
    with pytest.raises(RuntimeError, match="mid-write"):
        blobs.put_stream(_CrashingStream(b"partial " * 1000))  # type: ignore[arg-type]
    assert _blob_files(blobs) == []
    assert _tmp_files(blobs) == []
    assert not blobs.exists(blake3.blake3(b"partial " * 1000).hexdigest())
    assert list(blobs.iter_digests()) == []


class _CountingStore(FsspecBlobStore):
    """Our own seam: counts the byte copies the store makes."""

    copies = 0

    def _do_put_stream(self, stream):  # type: ignore[no-untyped-def]
        self.copies += 1
        return super()._do_put_stream(stream)

    def _copy_local(self, *args):  # type: ignore[no-untyped-def]
        self.copies += 1
        return super()._copy_local(*args)


def test_a_file_that_changes_while_stored_is_named_by_what_was_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    store = FsspecBlobStore(str(tmp_path / "artifacts"))
    src = tmp_path / "growing.log"
    src.write_bytes(b"first part\n")
    real_copy = shutil.copyfile

    def append_then_copy(a: str, b: str) -> str:
        with open(a, "ab") as fh:  # another process writes to the file between hash and copy
            fh.write(b"second part\n")
        return real_copy(a, b)

    monkeypatch.setattr("shipyard.artifacts.blobs.shutil.copyfile", append_then_copy)
    digest, size = store.put_file(src)
    assert store.get_bytes(digest) == b"first part\nsecond part\n"  # verified: name matches content
    assert size == len(b"first part\nsecond part\n")


def test_put_file_of_already_stored_content_copies_nothing(tmp_path: Path) -> None:
    store = _CountingStore(str(tmp_path / "artifacts"))
    src = tmp_path / "model.bin"
    src.write_bytes(os.urandom(10_000))
    first = store.put_file(src)
    other = tmp_path / "copy.bin"
    other.write_bytes(src.read_bytes())
    second = store.put_file(other)
    assert first == second == hash_file(src)
    assert store.copies == 1
    assert len(_blob_files(store)) == 1


def test_put_file_stores_the_file_content(blobs: FsspecBlobStore, tmp_path: Path) -> None:
    src = tmp_path / "data.csv"
    src.write_bytes(b"a,b\n1,2\n")
    digest, size = blobs.put_file(src)
    assert (digest, size) == (blake3.blake3(b"a,b\n1,2\n").hexdigest(), 8)
    assert blobs.get_bytes(digest) == b"a,b\n1,2\n"


def test_iter_digests_lists_every_stored_blob(blobs: FsspecBlobStore) -> None:
    stored = {blobs.put_bytes(f"blob {i}".encode())[0] for i in range(12)}
    listed = dict(blobs.iter_digests())
    assert set(listed) == stored
    now = time.time()
    assert all(now - 3600 < mtime <= now + 5 for mtime in listed.values())


def test_delete_removes_a_blob_and_is_idempotent(blobs: FsspecBlobStore) -> None:
    keep, _ = blobs.put_bytes(b"keep")
    gone, _ = blobs.put_bytes(b"gone")
    blobs.delete(gone)
    blobs.delete(gone)
    assert not blobs.exists(gone)
    assert {d for d, _ in blobs.iter_digests()} == {keep}


def test_clean_tmp_removes_only_stale_temp_files(tmp_path: Path) -> None:
    store = FsspecBlobStore(str(tmp_path / "artifacts"))
    stale = tmp_path / "artifacts" / "tmp" / "stale"
    fresh = tmp_path / "artifacts" / "tmp" / "fresh"
    stale.write_bytes(b"left by a crashed writer")
    fresh.write_bytes(b"a writer still at work")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    assert store.clean_tmp(older_than_s=3600) == 1
    assert not stale.exists()
    assert fresh.exists()


def test_clean_tmp_with_no_grace_removes_every_temp_file_in_memory() -> None:
    store = FsspecBlobStore(f"memory://blobs-{uuid.uuid4().hex}")
    store.fs.pipe_file(f"{store.root}/tmp/abandoned", b"x")
    digest, _ = store.put_bytes(b"kept")
    assert store.clean_tmp(older_than_s=0) == 1
    assert _tmp_files(store) == []
    assert store.exists(digest)


def test_open_blob_store_accepts_a_local_folder(tmp_path: Path) -> None:
    store = open_blob_store(str(tmp_path / "a"))
    digest, _ = store.put_bytes(b"x")
    assert (tmp_path / "a" / "blobs" / digest[:2] / digest[2:]).read_bytes() == b"x"


def test_unknown_fsspec_protocol_raises_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="nosuchproto"):
        FsspecBlobStore("nosuchproto://bucket/x")
