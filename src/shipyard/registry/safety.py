"""Safe loading: which code a pickled artifact would import, checked before anything is unpickled.

Unpickling runs code: a pickle names callables by ``module.name`` (``GLOBAL``, ``STACK_GLOBAL`` and
``INST`` opcodes) and calls them while it loads. :func:`scan_pickle` walks the opcodes with
:func:`pickletools.genops` *without executing anything*, resolves every global the pickle references
(including names built on the stack from memoized strings), and returns those outside an allowlist.

An allowlist entry is either a top-level module (``"numpy"`` allows ``numpy.core.multiarray._reconstruct``)
or one qualified name (``"builtins.dict"``). Some names are refused even under an allowed module because
they run code or load further pickles (``builtins.eval``, ``os.system``, ``joblib.load``, ...).
"""

from __future__ import annotations

import io
import os
import pickletools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "DANGEROUS_NAMES",
    "DEFAULT_UNPICKLE_ALLOWLIST",
    "build_allowlist",
    "is_allowed",
    "scan_pickle",
]

#: Modules (whole top-level packages) and single qualified names a model pickle may reference.
DEFAULT_UNPICKLE_ALLOWLIST: frozenset[str] = frozenset(
    {
        # whole packages: the libraries models are made of
        "numpy",
        "scipy",
        "sklearn",
        "pandas",
        "xgboost",
        "lightgbm",
        "skops",
        "joblib",
        "collections",
        "datetime",
        "decimal",
        "fractions",
        "uuid",
        "zoneinfo",
        # single names: the plumbing pickle itself emits for ordinary objects
        "copyreg._reconstructor",
        "copyreg.__newobj__",
        "copyreg.__newobj_ex__",
        "_codecs.encode",
        "builtins.object",
        "builtins.dict",
        "builtins.list",
        "builtins.set",
        "builtins.frozenset",
        "builtins.tuple",
        "builtins.slice",
        "builtins.range",
        "builtins.complex",
        "builtins.bytearray",
        "builtins.bytes",
        "builtins.str",
        "builtins.int",
        "builtins.float",
        "builtins.bool",
        "builtins.NotImplemented",
        "builtins.Ellipsis",
        "functools.partial",
    }
)

#: Refused whatever the allowlist says: they execute code, import modules or load another pickle.
DANGEROUS_NAMES: frozenset[str] = frozenset(
    {
        "builtins.eval",
        "builtins.exec",
        "builtins.compile",
        "builtins.__import__",
        "builtins.getattr",
        "builtins.setattr",
        "builtins.delattr",
        "builtins.open",
        "builtins.input",
        "builtins.breakpoint",
        "builtins.globals",
        "builtins.locals",
        "builtins.vars",
        "builtins.__build_class__",
        "joblib.load",
        "joblib.numpy_pickle.load",
        "pandas.read_pickle",
        "pandas.io.pickle.read_pickle",
        "numpy.load",
        "numpy.lib.npyio.load",
        "numpy.fromfile",
        "operator.attrgetter",
        "operator.methodcaller",
    }
)
# Whole namespaces refused at any depth (``os.system``, ``posix.system``, ``subprocess.Popen``, ...).
_DANGEROUS_MODULES: tuple[str, ...] = (
    "os",
    "posix",
    "nt",
    "subprocess",
    "runpy",
    "importlib",
    "sys",
    "shutil",
    "socket",
    "pty",
    "code",
    "codeop",
    "pickle",
    "_pickle",
    "marshal",
    "ctypes",
    "webbrowser",
    "multiprocessing",
    "asyncio",
    "numpy.testing",
    "numpy.f2py",
    "numpy.distutils",
    "sklearn.utils._testing",
)

_STRING_OPS = frozenset(
    {
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "UNICODE",
        "BINUNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE8",
    }
)
_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_EXT_OPS = frozenset({"EXT1", "EXT2", "EXT4"})


class _Mark:
    """The stack marker MARK pushes."""


_MARK = _Mark()
_UNKNOWN = object()  # any stack value that is not a constant string


def build_allowlist(extra: Iterable[str] | str | None = None) -> frozenset[str]:
    """The default allowlist plus extra entries (an iterable, or one comma-separated string).

    Example:
        >>> "mypkg" in build_allowlist("mypkg, other")
        True
    """
    if extra is None:
        return DEFAULT_UNPICKLE_ALLOWLIST
    items = extra.split(",") if isinstance(extra, str) else list(extra)
    return DEFAULT_UNPICKLE_ALLOWLIST | {item.strip() for item in items if item and item.strip()}


def _is_dangerous(qualified: str) -> bool:
    if qualified in DANGEROUS_NAMES:
        return True
    return any(qualified == m or qualified.startswith(m + ".") for m in _DANGEROUS_MODULES)


def is_allowed(qualified: str, allowlist: Iterable[str] = DEFAULT_UNPICKLE_ALLOWLIST) -> bool:
    """Whether ``module.name`` may be imported by an unpickler under ``allowlist``.

    Allowed when its top-level module or the exact qualified name is listed, and it is not one of the
    names refused everywhere (:data:`DANGEROUS_NAMES`, ``os.*``, ``subprocess.*``, ...).

    Example:
        >>> is_allowed("numpy.core.multiarray._reconstruct"), is_allowed("posix.system")
        (True, False)
        >>> is_allowed("builtins.dict"), is_allowed("builtins.eval", {"builtins"})
        (True, False)
    """
    if _is_dangerous(qualified):
        return False
    allowed = allowlist if isinstance(allowlist, frozenset | set) else frozenset(allowlist)
    return qualified in allowed or qualified.split(".", 1)[0] in allowed


def _read(path_or_bytes: str | os.PathLike[str] | bytes | bytearray | memoryview) -> bytes:
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        return bytes(path_or_bytes)
    return Path(path_or_bytes).read_bytes()


def referenced_globals(data: bytes) -> list[str]:
    """Every ``module.name`` the first pickle in ``data`` would import, in order, without running it.

    Names that cannot be resolved statically (a ``STACK_GLOBAL`` fed by computed values, an extension
    code, a malformed stream) come back as ``"<...>"`` placeholders so that callers refuse them.

    Example:
        >>> import pickle, collections
        >>> referenced_globals(pickle.dumps(collections.OrderedDict()))
        ['collections.OrderedDict']
    """
    found: list[str] = []
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    try:
        for op, arg, _pos in pickletools.genops(io.BytesIO(data)):
            _step(op, arg, stack, memo, found)
    except (ValueError, IndexError, KeyError) as exc:  # truncated or hand-made nonsense
        found.append(f"<malformed pickle: {exc}>")
    return found


def _step(
    op: pickletools.OpcodeInfo, arg: Any, stack: list[Any], memo: dict[int, Any], found: list[str]
) -> None:
    """Simulate one opcode's effect on the stack and memo, recording imported globals."""
    name = op.name
    if name in _STRING_OPS:
        stack.append(arg.decode("latin-1") if isinstance(arg, bytes) else arg)
        return
    if name in _PUT_OPS:
        memo[arg] = stack[-1] if stack else _UNKNOWN
        return
    if name == "MEMOIZE":
        memo[len(memo)] = stack[-1] if stack else _UNKNOWN
        return
    if name in _GET_OPS:
        stack.append(memo.get(arg, _UNKNOWN))
        return
    if name == "STACK_GLOBAL":
        qualname = stack.pop() if stack else _UNKNOWN
        module = stack.pop() if stack else _UNKNOWN
        if isinstance(module, str) and isinstance(qualname, str):
            found.append(f"{module}.{qualname}")
        else:
            found.append("<STACK_GLOBAL with a computed module or name>")
        stack.append(_UNKNOWN)
        return
    if name in ("GLOBAL", "INST"):
        module, _, qualname = str(arg).partition(" ")
        found.append(f"{module}.{qualname}")
    elif name in _EXT_OPS:
        found.append(f"<extension code {arg}>")
    _generic_stack_effect(op, stack)


def _generic_stack_effect(op: pickletools.OpcodeInfo, stack: list[Any]) -> None:
    before = op.stack_before
    if pickletools.markobject in before:
        while stack and stack[-1] is not _MARK:
            stack.pop()
        if stack:
            stack.pop()
        below_mark = before.index(pickletools.markobject)
        del stack[max(0, len(stack) - below_mark) :]
    else:
        del stack[max(0, len(stack) - len(before)) :]
    for item in op.stack_after:
        stack.append(_MARK if item is pickletools.markobject else _UNKNOWN)


def scan_pickle(
    path_or_bytes: str | os.PathLike[str] | bytes | bytearray | memoryview,
    allowlist: Iterable[str] = DEFAULT_UNPICKLE_ALLOWLIST,
) -> list[str]:
    """The globals a pickle references that ``allowlist`` does not allow (empty when it is safe to load).

    Nothing is unpickled: the opcodes are only read. Use :func:`build_allowlist` to extend the default.

    Example:
        >>> import os, pickle
        >>> class Evil:
        ...     def __reduce__(self):
        ...         return (os.system, ("echo pwned",))
        >>> scan_pickle(pickle.dumps(Evil()))  # doctest: +ELLIPSIS
        ['...system']
        >>> scan_pickle(pickle.dumps({"a": [1, 2.0]}))
        []
    """
    allowed = frozenset(allowlist)
    bad: list[str] = []
    for qualified in referenced_globals(_read(path_or_bytes)):
        if (qualified.startswith("<") or not is_allowed(qualified, allowed)) and qualified not in bad:
            bad.append(qualified)
    return bad
