"""Local files in and out of a run's artifacts: which files a folder logs, and downloads that never
leave a partial folder.

Logging a folder walks it without following symbolic links out of it: a link whose target lies
outside the folder (or nowhere) is refused with ``UnsafePath`` naming the link and its target —
nothing is uploaded — because silently skipping it would lose data and following it could
publish files the user never meant to (``~/.ssh`` via a stray link). A link to a file inside the
folder is logged with that file's content; a link to a folder inside it is not descended (its
files are logged under their real path).

A download writes into a temporary folder beside the destination and moves the finished,
verified files into place at the end; on any error the temporary folder is removed, so the
destination never holds a partial download.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

from shipyard.artifacts import BlobStore
from shipyard.entities import Artifact, clean_artifact_path
from shipyard.errors import InvalidInput, ShipyardError, StorageFull, UnsafePath

__all__ = ["download_tree", "folder_files"]


def _inside(target: Path, root: Path) -> bool:
    return target == root or root in target.parents


def _check_link(link: Path, root: Path, folder: Path) -> None:
    target = link.resolve()
    if not _inside(target, root):
        raise UnsafePath(
            f"Cannot log folder {folder}: {link} is a symbolic link to {target}, outside the folder; "
            "nothing was logged. Copy the target into the folder or remove the link.",
            details={"link": str(link), "target": str(target)},
        )
    if not target.exists():
        raise UnsafePath(
            f"Cannot log folder {folder}: {link} is a broken symbolic link (to {target}); "
            "nothing was logged. Remove the link or restore its target.",
            details={"link": str(link), "target": str(target)},
        )


def folder_files(folder: Path, base: str) -> list[tuple[Path, str]]:
    """The files of ``folder`` to log, each with its artifact path under ``base``, sorted by path.

    Example:
        >>> folder_files(Path("model"), "model")  # doctest: +SKIP
        [(PosixPath('model/weights.bin'), 'model/weights.bin')]
    """
    root = folder.resolve()
    found: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        for name in dirnames:  # links to folders are listed here and not descended
            if (here / name).is_symlink():
                _check_link(here / name, root, folder)
        for name in filenames:
            path = here / name
            if path.is_symlink():
                _check_link(path, root, folder)
            if path.is_file():  # sockets and pipes are not files to log
                found.append((path, clean_artifact_path(f"{base}/{path.relative_to(folder).as_posix()}")))
    return sorted(found, key=lambda item: item[1])


def _move_into(src: Path, dest: Path) -> None:
    """Move ``src`` to ``dest``; a folder onto an existing folder merges (files replace files)."""
    if src.is_dir() and dest.is_dir() and not dest.is_symlink():
        for child in src.iterdir():
            _move_into(child, dest / child.name)
        src.rmdir()
        return
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)  # a file replaces a folder of the same name from an older download
    os.replace(src, dest)


def download_tree(blobs: BlobStore, artifacts: Sequence[Artifact], dest: Path, run_id: str) -> None:
    """Download ``artifacts`` to ``dest/<path>`` through a temporary folder beside them; all or nothing.

    Raises a ``ShipyardError`` (never a bare ``OSError``) naming ``dest`` when it cannot be written.

    Example:
        >>> download_tree(client.blobs, client.list_artifacts(run_id), Path("out"), run_id)  # doctest: +SKIP
    """
    try:
        dest.mkdir(parents=True, exist_ok=True)
        staging = dest / f".shipyard-download-{uuid.uuid4().hex}"
        staging.mkdir()
    except OSError as exc:
        raise _dest_error(exc, dest, run_id) from exc
    try:
        for artifact in artifacts:
            target = (staging / artifact.path).resolve()
            if not _inside(target, staging.resolve()) or target == staging.resolve():
                raise InvalidInput(f"Artifact path {artifact.path!r} of run '{run_id}' escapes {dest}")
            blobs.download(artifact.digest, target)
        for child in sorted(staging.iterdir()):
            _move_into(child, dest / child.name)
    except OSError as exc:
        raise _dest_error(exc, dest, run_id) from exc
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)


def _dest_error(exc: OSError, dest: Path, run_id: str) -> ShipyardError:
    where = exc.filename or dest
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(
            f"Cannot download the artifacts of run '{run_id}' to {dest}: the disk is full ({where}); "
            "nothing was left there. Free space or choose another destination.",
            details={"dest": str(dest)},
        )
    return InvalidInput(
        f"Cannot download the artifacts of run '{run_id}' to {dest}: {exc.strerror or exc} ({where}); "
        "nothing was left there. Choose a destination folder you can write.",
        details={"dest": str(dest)},
    )
