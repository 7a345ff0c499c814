"""Backends implement the ``Store`` protocols exactly: checked statically by mypy, and here.

``shipyard.store._conformance`` makes ``make lint`` fail when ``SqlStore`` or ``RestStore``
drifts from a protocol; the first test proves that mechanism catches each kind of drift (on a
small stand-alone copy of the shape, so it stays fast and does not change when the protocols
grow). mypy ignores the names of positional parameters and the values of defaults, so the
second test compares those at runtime for every protocol method.
"""

from __future__ import annotations

import inspect
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
from mypy import api as mypy_api

import shipyard.store.base as base
from shipyard.store import LocalGovernance, RemoteGovernance, ServesBlobs, Store
from shipyard.store.rest import RestStore
from shipyard.store.sql import SqlStore

# The same shape as shipyard.store.base: capability protocols, a runtime-checkable union, and a
# ``def _(store: Backend) -> Protocol: return store`` check as in shipyard.store._conformance.
_PROTOCOLS = """
from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

class Purging(Protocol):
    def purge_deleted_runs(self, batch_size: int = 500) -> int: ...
    def referenced_digests(self, digests: Sequence[str]) -> set[str]: ...

class Listing(Protocol):
    def iter_run_ids(self, batch_size: int = 1000) -> Iterator[list[str]]: ...

@runtime_checkable
class Union(Purging, Listing, Protocol):
    uri: str
"""

_CONFORMING = {
    "uri": "uri: str = ''",
    "purge_deleted_runs": "def purge_deleted_runs(self, batch_size: int = 500) -> int",
    "referenced_digests": "def referenced_digests(self, digests: Sequence[str]) -> set[str]",
    "iter_run_ids": "def iter_run_ids(self, batch_size: int = 1000) -> Iterator[list[str]]",
}

# each drift: a class name, the member it changes, and its new form (None: the member is missing)
_DRIFTS: list[tuple[str, str, str | None]] = [
    ("MissingMethod", "iter_run_ids", None),
    ("MissingAttribute", "uri", None),
    ("LostDefault", "purge_deleted_runs", "def purge_deleted_runs(self, batch_size: int) -> int"),
    (
        "ExtraParameter",
        "referenced_digests",
        "def referenced_digests(self, digests: Sequence[str], strict: bool) -> set[str]",
    ),
    ("WrongReturnType", "purge_deleted_runs", "def purge_deleted_runs(self, batch_size: int = 500) -> str"),
    ("WrongParameterType", "referenced_digests", "def referenced_digests(self, digests: int) -> set[str]"),
    (
        "KeywordOnlyNow",
        "iter_run_ids",
        "def iter_run_ids(self, *, batch_size: int = 1000) -> Iterator[list[str]]",
    ),
]


def _drifting_module() -> tuple[str, dict[int, str]]:
    """Protocols, one conforming and several drifting classes; the line of each class's check."""
    lines = textwrap.dedent(_PROTOCOLS).splitlines()
    checks: dict[int, str] = {}
    for name, changed, form in [("Conforming", "", None), *_DRIFTS]:
        members = {**_CONFORMING, changed: form} if changed else dict(_CONFORMING)
        lines.append(f"class {name}:")
        for member in members.values():
            if member is not None:
                lines.append(
                    f"    {member}" + (": raise NotImplementedError" if member.startswith("def") else "")
                )
        lines.append(f"def _{name.lower()}(store: {name}) -> Union:")
        lines.append("    return store")
        checks[len(lines)] = name
    return "\n".join(lines) + "\n", checks


def test_mypy_fails_when_a_class_drifts_from_its_store_protocol(tmp_path: Path) -> None:
    source, checks = _drifting_module()
    module = tmp_path / "drifting.py"
    module.write_text(source)
    out, err, status = mypy_api.run(
        [str(module), "--strict", "--config-file", os.devnull, "--cache-dir", os.devnull]
    )
    errors = {int(line.split(":")[1]) for line in out.splitlines() if ": error:" in line}
    flagged = {checks[n] for n in errors if n in checks}
    assert status == 1, out + err
    assert flagged == {name for name, _, _ in _DRIFTS}, out
    assert errors <= set(checks), out  # nothing else went wrong in the file
    assert "Conforming" not in flagged


def _protocol_methods(*protocols: type) -> dict[str, Any]:
    """Every method the protocols declare (including those inherited from capability protocols)."""
    found: dict[str, Any] = {}
    for proto in protocols:
        for cls in reversed(proto.__mro__):
            if cls.__module__ == base.__name__:
                found.update(
                    {k: v for k, v in vars(cls).items() if inspect.isfunction(v) and not k.startswith("__")}
                )
    return found


def _shape(function: Any) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize(
    ("backend", "protocols"),
    [(SqlStore, (Store, LocalGovernance)), (RestStore, (Store, ServesBlobs, RemoteGovernance))],
    ids=["SqlStore", "RestStore"],
)
def test_backends_match_the_protocol_names_kinds_and_defaults(
    backend: type, protocols: tuple[type, ...]
) -> None:
    methods = _protocol_methods(*protocols)
    assert {"create_run", "get_deployment", "list_audit", "referenced_digests", "close"} <= set(methods)
    mismatched = {
        name: (_shape(getattr(backend, name, None)) if hasattr(backend, name) else "missing", _shape(fn))
        for name, fn in methods.items()
        if not hasattr(backend, name) or _shape(getattr(backend, name)) != _shape(fn)
    }
    assert mismatched == {}


def test_signature_comparison_sees_a_renamed_parameter_and_a_changed_default() -> None:
    class Renamed(SqlStore):
        def get_run(self, run: str) -> Any:  # type: ignore[override]
            raise NotImplementedError

        def list_audit(self, after_seq: int = 0, limit: int = 10, **kw: Any) -> Any:  # type: ignore[override]
            raise NotImplementedError

    methods = _protocol_methods(Store)
    assert _shape(Renamed.get_run) != _shape(methods["get_run"])
    assert _shape(Renamed.list_audit) != _shape(methods["list_audit"])
    assert _shape(SqlStore.get_run) == _shape(methods["get_run"])


def test_only_the_rest_store_has_the_optional_capabilities(tmp_path: Path) -> None:
    sql = SqlStore(f"sqlite:///{tmp_path / 'c.db'}")
    rest = RestStore("http://127.0.0.1:9")  # never contacted
    try:
        assert isinstance(sql, Store) and isinstance(rest, Store)
        assert not isinstance(sql, ServesBlobs) and not isinstance(sql, RemoteGovernance)
        assert isinstance(rest, ServesBlobs) and isinstance(rest, RemoteGovernance)
        # raw alias moves, record writes and policy writes exist only where the database is
        assert isinstance(sql, LocalGovernance) and not isinstance(rest, LocalGovernance)
    finally:
        sql.close()
        rest.close()
