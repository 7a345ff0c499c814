"""Artifact paths a run can hold: never a file and a folder of the same name.

A run holding ``m`` (a file) and ``m/n`` (which needs ``m`` to be a folder) could be logged
but never downloaded. :func:`check_path_conflicts` refuses such a record — within the batch
and against the run's recorded artifacts — before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select

from shipyard.errors import UnsafePath
from shipyard.store.sql import schema as t

__all__ = ["check_path_conflicts"]

_A = t.artifacts.c


def _folders(path: str) -> list[str]:
    """The folders a file path needs: ``a/b/c`` → ``a``, ``a/b``."""
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _refuse(run_id: str, file: str, child: str) -> UnsafePath:
    return UnsafePath(
        f"Run '{run_id}' cannot hold both the file '{file}' and '{child}' (which needs '{file}' to be "
        "a folder): no download could hold both. Log one of them under another path.",
        details={"run_id": run_id, "file": file, "path": child},
    )


def check_path_conflicts(conn: Connection, run_id: str, paths: Sequence[str]) -> None:
    """Raise ``UnsafePath`` if the clean ``paths`` clash as file and folder, among themselves or
    with the run's recorded artifacts (re-recording the same path is an overwrite, allowed).

    Example:
        >>> check_path_conflicts(conn, "r1", ["model", "model/weights.bin"])  # doctest: +SKIP
        Traceback (most recent call last):
        UnsafePath: Run 'r1' cannot hold both the file 'model' and 'model/weights.bin' ...
    """
    new = set(paths)
    needed: dict[str, str] = {}
    for path in paths:
        for folder in _folders(path):
            if folder in new:
                raise _refuse(run_id, folder, path)
            needed.setdefault(folder, path)
    if conn.execute(select(_A.path).where(_A.run_id == run_id).limit(1)).first() is None:
        return  # a run without artifacts yet (a new run): only the batch itself can clash
    folders = sorted(needed)
    for i in range(0, len(folders), 500):
        clash = conn.execute(
            select(_A.path).where(_A.run_id == run_id, _A.path.in_(folders[i : i + 500])).limit(1)
        ).scalar()
        if clash is not None:
            raise _refuse(run_id, clash, needed[clash])
    # A recorded file below a new file path: in byte order '/' < '0', so this range is "path/…"
    # (PostgreSQL compares with the database's collation unless told to use "C").
    col = _A.path if conn.dialect.name == "sqlite" else _A.path.collate("C")
    for path in new:
        below = select(_A.path).where(_A.run_id == run_id, col > path + "/", col < path + "0")
        clash = conn.execute(below.limit(1)).scalar()
        if clash is not None:
            raise _refuse(run_id, path, clash)
