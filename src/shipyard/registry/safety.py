"""Safe loading: one rule decides which globals a model artifact may import, on the resolved object.

Unpickling runs code: a pickle names callables by ``module`` + ``qualname`` (``GLOBAL``, ``INST``,
``STACK_GLOBAL``; ``EXT*`` through the copyreg registry) and calls them while it loads. Since protocol 4
the qualname may be dotted and the unpickler walks attributes, so ``uuid`` + ``os.system`` reaches
``os.system``. Deciding by name or by package is therefore unsound. :func:`resolve_global` is the only
rule, used both by the static scanner (:func:`scan_pickle`, which reads opcodes and runs nothing) and by
:class:`RestrictedUnpickler.find_class` (so what the scan let through is checked again at load time):

1. **Plain names only.** ``module`` and ``qualname`` are dotted identifiers; no ``__dunder__`` step
   unless the exact name is listed (``copyreg.__newobj__``).
2. **Import only what is listed.** The module is imported by its exact name only when it is the module
   of an allowlist entry, lies under a model package (``sklearn``, ``numpy``, ``scipy``, ``pandas``,
   ``xgboost``, ``lightgbm``; never their ``tests``/``testing``/``f2py``/``io``/``datasets``/...
   modules), or is a module the user allowlisted.
3. **No walk across modules.** The qualname is resolved with ``getattr`` one step at a time; every step
   but the last must be a class (a nested qualname), never a module or a function.
4. **Refused whatever any list says** (:func:`denied_reason`): modules, objects defined in ``os``,
   ``posix``, ``nt``, ``subprocess``, ``pty``, ``socket``, ``ctypes``, ``importlib``, ``runpy``,
   ``code``, ``pydoc``, ``webbrowser``, ``pickle``, ``marshal``, ``joblib``, ``io``, ``shutil``,
   ``sys``, ``operator``, ... (:data:`DENIED_MODULES`), builtins other than the listed constructors,
   and any function named like a loader or an executor (``load``, ``loads``, ``read_*``, ``eval``,
   ``exec``, ``compile``, ``__import__``, ``getattr``, ``system``, ``memmap``, ...).
5. **Allowed** when the resolved object *is* an audited object (:data:`DEFAULT_UNPICKLE_ALLOWLIST`, or
   a ``module.qualname`` the user listed; aliases such as ``numpy.core.multiarray._reconstruct``
   resolve to the same object), or it is a class defined in exactly that module under that qualname
   (``obj.__module__ == module`` and ``obj.__qualname__ == qualname``) which is a subclass of an audited
   base in its own package (:data:`CLASS_RULES`: ``sklearn.base.BaseEstimator``, scikit-learn's
   losses, links, kernels, splitters, scorers and distance metrics; ``numpy.generic``, ``numpy.dtype``,
   numpy bit generators; scipy sparse containers; pandas frames, indexes, arrays, dtypes, block
   managers and time types), a numpy/scipy ufunc, a scikit-learn scoring function, or a class or
   function defined in a module the user allowlisted (``mypkg.models``; ``mypkg.*`` for its
   submodules too).

Anything else is refused, naming the global and how to allow it.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import os
import pickle
import pickletools
import re
import sys
import types
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from shipyard.errors import UnsafeModel

__all__ = [
    "CLASS_RULES",
    "DANGEROUS_NAMES",
    "DEFAULT_UNPICKLE_ALLOWLIST",
    "DENIED_MODULES",
    "RestrictedUnpickler",
    "build_allowlist",
    "denied_reason",
    "is_allowed",
    "referenced_globals",
    "resolve_global",
    "safe_loads",
    "scan_pickle",
]


def _words(text: str) -> list[str]:
    return text.split()


#: Exact ``module.qualname`` objects a model pickle may reference: what pickle, numpy, pandas, pyarrow
#: and the model libraries emit for ordinary fitted models. Each was read and judged harmless to call
#: with any arguments (constructors and reconstructors that build data, never read files or run code).
DEFAULT_UNPICKLE_ALLOWLIST: frozenset[str] = frozenset(
    {
        # pickle's own plumbing
        "copyreg._reconstructor",
        "copyreg.__newobj__",
        "copyreg.__newobj_ex__",
        "_codecs.encode",
        # builtins: constructors of plain data and two constants
        *(
            f"builtins.{name}"
            for name in _words(
                "object dict list set frozenset tuple slice range complex bytearray bytes str int "
                "float bool NotImplemented Ellipsis"
            )
        ),
        # standard library value types
        "collections.OrderedDict",
        "collections.defaultdict",
        "collections.Counter",
        "collections.deque",
        "datetime.datetime",
        "datetime.date",
        "datetime.time",
        "datetime.timedelta",
        "datetime.timezone",
        "decimal.Decimal",
        "fractions.Fraction",
        "uuid.UUID",
        "functools.partial",
        # numpy: arrays, scalars, masked arrays, random state
        "numpy._core.multiarray._reconstruct",
        "numpy._core.multiarray.scalar",
        "numpy._core.numeric._frombuffer",
        "numpy.ndarray",
        "numpy.ma.core.MaskedArray",
        "numpy.ma.core._mareconstruct",
        "numpy.random._pickle.__randomstate_ctor",
        "numpy.random._pickle.__generator_ctor",
        "numpy.random._pickle.__bit_generator_ctor",
        "numpy.random.mtrand.RandomState",
        "numpy.random._generator.Generator",
        "numpy.random.bit_generator.SeedSequence",
        "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
        # pandas: reconstructors its objects pickle through
        "pandas.NA",
        "pandas._libs.internals._unpickle_block",
        "pandas._libs.arrays.__pyx_unpickle_NDArrayBacked",
        "pandas._libs.tslibs.nattype._nat_unpickle",
        "pandas._libs.tslibs.timestamps._unpickle_timestamp",
        "pandas._libs.tslibs.timedeltas._timedelta_unpickle",
        "pandas.core.indexes.base._new_Index",
        "pandas.core.indexes.datetimes._new_DatetimeIndex",
        "pandas.core.indexes.period._new_PeriodIndex",
        # pyarrow: what pandas' Arrow-backed string columns pickle through
        "pyarrow.lib._restore_array",
        "pyarrow.lib.py_buffer",
        "pyarrow.lib.type_for_alias",
        # scikit-learn: non-estimator parts of fitted models
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._kd_tree.newObj",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.neighbors._ball_tree.newObj",
        "sklearn.metrics._dist_metrics.newObj",
        "sklearn._loss.link.Interval",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.metrics._scorer._PassthroughScorer",
        "sklearn.utils._bunch.Bunch",
        "sklearn.utils.validation.check_array",
        # gradient boosting libraries' boosters (the estimators pass the class rule)
        "xgboost.core.Booster",
        "lightgbm.basic.Booster",
    }
)

#: Classes allowed by rule: a class defined in a module under ``package`` (``obj.__module__`` is the
#: pickle's module, ``obj.__qualname__`` its qualname) that subclasses one of the ``module:qualname`` bases.
CLASS_RULES: dict[str, tuple[str, ...]] = {
    "sklearn": (
        "sklearn.base:BaseEstimator",
        "sklearn._loss.loss:BaseLoss",
        "sklearn._loss.link:BaseLink",
        "sklearn._loss._loss:CyLossFunction",
        "sklearn.gaussian_process.kernels:Kernel",
        "sklearn.model_selection._split:BaseCrossValidator",
        "sklearn.model_selection._split:BaseShuffleSplit",
        "sklearn.metrics._scorer:_BaseScorer",
        "sklearn.metrics._dist_metrics:DistanceMetric",
        "sklearn.neural_network._stochastic_optimizers:BaseOptimizer",
    ),
    "xgboost": ("sklearn.base:BaseEstimator",),
    "lightgbm": ("sklearn.base:BaseEstimator",),
    "numpy": ("numpy:generic", "numpy:dtype", "numpy.random.bit_generator:BitGenerator"),
    "scipy": ("scipy.sparse._base:_spbase",),
    "pandas": (
        "pandas.core.generic:NDFrame",
        "pandas.core.indexes.base:Index",
        "pandas.core.arrays.base:ExtensionArray",
        "pandas.core.dtypes.base:ExtensionDtype",
        "pandas.core.internals.managers:BaseBlockManager",
        "pandas._libs.tslibs.offsets:BaseOffset",
        "pandas._libs.tslibs.timestamps:_Timestamp",
        "pandas._libs.tslibs.timedeltas:_Timedelta",
        "pandas._libs.tslibs.period:_Period",
        "pandas._libs.interval:Interval",
    ),
}

#: Objects defined in these modules (or their submodules) are refused whatever the allowlist says.
DENIED_MODULES: frozenset[str] = frozenset(
    _words(
        "os posix nt subprocess pty tty termios fcntl socket ssl select selectors signal ctypes _ctypes "
        "runpy code codeop pydoc webbrowser importlib pkgutil zipimport site sysconfig sys "
        "pickle _pickle pickletools copy marshal shelve dbm sqlite3 joblib cloudpickle dill "
        "io _io tempfile shutil glob pathlib posixpath ntpath genericpath fileinput zipfile tarfile "
        "gzip bz2 lzma mmap multiprocessing concurrent threading _thread asyncio subprocess inspect "
        "types gc operator _operator timeit trace pdb bdb profile cProfile ensurepip venv "
        "urllib http ftplib smtplib imaplib poplib telnetlib xmlrpc socketserver logging platform "
        "resource pwd grp numpy.f2py numpy.distutils numpy.testing numpy.lib.format numpy.lib.npyio "
        "numpy.lib._npyio_impl numpy.lib._datasource numpy._core.records numpy.ctypeslib pandas.io "
        "pandas.util pandas._testing scipy.io scipy._lib._testutils sklearn.utils._testing "
        "sklearn.datasets sklearn.externals sklearn.utils.parallel sklearn.utils._joblib "
        "xgboost.testing xgboost.tracker xgboost.collective lightgbm.callback pyarrow.parquet "
        "pyarrow.fs pyarrow.ipc pyarrow.feather pyarrow.dataset pyarrow.csv pyarrow.json"
    )
)
_DENIED_NAMES: frozenset[str] = frozenset(
    _words(
        "load loads eval exec execfile compile __import__ getattr setattr delattr open system popen "
        "spawn fork memmap fromfile tofile import_module reload run_path run_module read_pickle "
        "to_pickle _ufunc_reconstruct breakpoint input globals locals vars __build_class__ apply "
        "attrgetter methodcaller call check_call check_output Popen run"
    )
)
_DENIED_PREFIXES = ("load", "read_", "from_file", "exec", "spawn", "popen", "system", "import_")
#: Names that read as dangerous at a glance; every one is refused by :func:`denied_reason`.
DANGEROUS_NAMES: frozenset[str] = frozenset(
    {
        *(f"builtins.{n}" for n in _words("eval exec compile __import__ getattr setattr delattr open")),
        "joblib.load",
        "numpy.load",
        "pandas.read_pickle",
        "pickle.loads",
        "marshal.loads",
        "os.system",
        "subprocess.Popen",
        "importlib.import_module",
        "operator.attrgetter",
    }
)
# Module path components that mark test, build, IO or vendored code inside a model package.
_DENIED_COMPONENTS = frozenset(
    _words(
        "tests test testing _testing conftest f2py distutils _build_utils externals datasets io "
        "_pytesttester setup __main__ __init__"
    )
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_MODULE_ALIASES = (("numpy.core.", "numpy._core."), ("numpy.core", "numpy._core"))


class _Refused(Exception):
    """Why one global is refused (internal; surfaced as :class:`UnsafeModel`)."""


def build_allowlist(extra: Iterable[str] | str | None = None) -> frozenset[str]:
    """The default allowlist plus extra entries (an iterable, or one comma-separated string).

    An entry is an exact ``module.qualname`` (``mypkg.models.Churn``), a module whose own classes and
    functions are allowed (``mypkg.models``), or ``pkg.*`` for a package and all its submodules.
    Denied modules and functions stay refused whatever is listed.

    Example:
        >>> "mypkg.models" in build_allowlist("mypkg.models, other.Thing")
        True
    """
    if extra is None:
        return DEFAULT_UNPICKLE_ALLOWLIST
    items = extra.split(",") if isinstance(extra, str) else list(extra)
    return DEFAULT_UNPICKLE_ALLOWLIST | {item.strip() for item in items if item and item.strip()}


def _normalise(module: str, qualname: str) -> tuple[str, str]:
    """Python 2 names (``__builtin__``) and numpy 1's ``numpy.core`` map to where they live now."""
    module, qualname = NAME_MAPPING.get((module, qualname), (module, qualname))
    module = IMPORT_MAPPING.get(module, module)
    for old, new in _MODULE_ALIASES:
        if module == old.rstrip(".") or module.startswith(old):
            module = new.rstrip(".") if module == old.rstrip(".") else new + module[len(old) :]
            break
    return module, qualname


def _under(module: str, roots: Iterable[str]) -> str | None:
    return next((root for root in roots if module == root or module.startswith(root + ".")), None)


def _denied_module(module: str) -> str | None:
    if _under(module, DENIED_MODULES):
        return f"module {module} is never allowed (it runs code, reads files or loads pickles)"
    parts = module.split(".")
    if parts[0] in CLASS_RULES and _DENIED_COMPONENTS.intersection(parts[1:]):
        return f"module {module} is test, build, IO or vendored code"
    return None


def denied_reason(obj: Any) -> str | None:
    """Why ``obj`` may never be imported by a model artifact, or None when nothing denies it.

    Example:
        >>> import os, numpy
        >>> denied_reason(os.system) is not None, denied_reason(numpy.load) is not None
        (True, True)
        >>> denied_reason(numpy.ndarray) is None
        True
    """
    if isinstance(obj, types.ModuleType):
        return f"it is the module {obj.__name__}"
    module = getattr(obj, "__module__", None)
    if isinstance(module, str) and module != "builtins":
        problem = _denied_module(module)
        if problem:
            return problem
    name = getattr(obj, "__name__", None)
    callable_name = isinstance(name, str) and not isinstance(obj, type)
    if callable_name and (name in _DENIED_NAMES or str(name).startswith(_DENIED_PREFIXES)):
        return f"{name} loads data, imports or runs code"
    return None


@lru_cache(maxsize=64)
def _policy(allowlist: frozenset[str]) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(exact names, modules of exact names, user modules and ``pkg.*`` roots) for one allowlist."""
    exact = frozenset(e for e in allowlist if not e.endswith(".*"))
    exact_modules = frozenset(_normalise(*e.rsplit(".", 1))[0] for e in exact if "." in e)
    trees = frozenset(e[:-2] for e in allowlist if e.endswith(".*"))
    return exact, exact_modules, trees


def _may_import(module: str, allowlist: frozenset[str]) -> bool:
    exact, exact_modules, trees = _policy(allowlist)
    if _denied_module(module):
        return False
    if module in exact_modules or module in exact or _under(module, trees):
        return True
    return module.split(".", 1)[0] in CLASS_RULES


def _walk(module: str, qualname: str, listed: bool) -> Any:
    """Import ``module`` by its exact name and resolve ``qualname`` through classes only."""
    try:
        obj: Any = importlib.import_module(module)
    except Exception as exc:  # ImportError, or whatever a broken module raises
        raise _Refused(f"module {module} cannot be imported ({type(exc).__name__})") from None
    parts = qualname.split(".")
    for index, part in enumerate(parts):
        if part.startswith("__") and part.endswith("__") and not listed:
            raise _Refused(f"it walks through the special attribute {part}")
        try:
            obj = getattr(obj, part)
        except Exception:
            raise _Refused(f"{module} has no attribute {'.'.join(parts[: index + 1])}") from None
        if isinstance(obj, types.ModuleType):
            raise _Refused(f"it crosses from module {module} into module {obj.__name__}")
        if index < len(parts) - 1 and not isinstance(obj, type):
            raise _Refused(f"it walks into an attribute of {'.'.join(parts[: index + 1])}, not a class")
    return obj


def _resolve_entry(entry: str) -> Any:
    """The object an allowlist entry names (longest importable module prefix), or None."""
    parts = entry.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module, qualname = _normalise(".".join(parts[:cut]), ".".join(parts[cut:]))
        if importlib.util.find_spec(module.split(".", 1)[0]) is None:
            return None  # its library is not installed
        try:
            return _walk(module, qualname, listed=True)
        except _Refused:
            continue
    return None


@lru_cache(maxsize=4096)
def _entry_object(entry: str) -> tuple[Any, bool]:
    try:
        obj = _resolve_entry(entry)
    except Exception:  # an entry whose library is broken allows nothing
        return None, False
    return obj, obj is not None


def _is_listed(obj: Any, module: str, qualname: str, allowlist: frozenset[str]) -> bool:
    """Whether ``obj`` is (identical to) an exact allowlist entry of the same top-level package."""
    exact, _, _ = _policy(allowlist)
    top = module.split(".", 1)[0]
    for entry in (e for e in exact if e.split(".", 1)[0] == top):
        target, found = _entry_object(entry)
        if found and (target is obj or (isinstance(obj, types.MethodType) and obj == target)):
            return True
    return False


def _canonical(obj: Any, module: str, qualname: str) -> bool:
    return getattr(obj, "__module__", None) == module and getattr(obj, "__qualname__", None) == qualname


@lru_cache(maxsize=64)
def _bases(package: str) -> tuple[type, ...]:
    found: list[type] = []
    for spec in CLASS_RULES.get(package, ()):
        module, _, name = spec.partition(":")
        try:
            base = getattr(importlib.import_module(module), name)
        except Exception:  # a library version without this base: nothing is allowed through it
            continue
        if isinstance(base, type):
            found.append(base)
    return tuple(found)


@lru_cache(maxsize=1)
def _scoring_functions() -> frozenset[int]:
    from sklearn.metrics import get_scorer, get_scorer_names

    return frozenset(id(getattr(get_scorer(name), "_score_func", None)) for name in get_scorer_names())


def _by_rule(obj: Any, module: str, qualname: str, allowlist: frozenset[str]) -> bool:
    """The class, ufunc, scorer and user-module rules (rule 5 beyond exact entries)."""
    _, _, trees = _policy(allowlist)
    user_module = module in allowlist or _under(module, trees)
    if user_module and _canonical(obj, module, qualname):
        return isinstance(obj, type) or callable(obj)
    top = module.split(".", 1)[0]
    if isinstance(obj, type):
        return _canonical(obj, module, qualname) and any(issubclass(obj, b) for b in _bases(top))
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(obj, numpy.ufunc) and top in ("numpy", "scipy"):
        return getattr(obj, "__name__", None) == qualname
    if top == "sklearn" and _canonical(obj, module, qualname) and module.startswith("sklearn.metrics."):
        return id(obj) in _scoring_functions()
    return False


def resolve_global(module: str, qualname: str, allowlist: Iterable[str] = DEFAULT_UNPICKLE_ALLOWLIST) -> Any:
    """The object ``module`` + ``qualname`` names, if the safe-loading rule allows it; else UnsafeModel.

    This is the one rule (see the module docstring) behind both :func:`scan_pickle` and
    :class:`RestrictedUnpickler`. Allowed modules are imported; refused ones never are.

    Example:
        >>> import numpy
        >>> resolve_global("numpy", "ndarray") is numpy.ndarray
        True
        >>> resolve_global("uuid", "os.system")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        shipyard.errors.UnsafeModel: Refusing uuid.os.system: it crosses from module uuid into module os
    """
    allowed = allowlist if isinstance(allowlist, frozenset) else frozenset(allowlist)
    try:
        return _decide(module, qualname, allowed)
    except _Refused as exc:
        raise UnsafeModel(
            f"Refusing {module}.{qualname}: {exc}. If it is one of your own classes or functions, allow "
            f"it with load_model(..., allowlist=['{module}.{qualname}']) or the unpickle_allowlist "
            "setting; to load this artifact regardless, pass trust=True (recorded in the audit log)",
            details={"global": f"{module}.{qualname}", "reason": str(exc)},
        ) from None


def _decide(module: str, qualname: str, allowlist: frozenset[str]) -> Any:
    if not (_NAME.match(module) and _NAME.match(qualname)):
        raise _Refused("it is not a plain dotted name")
    module, qualname = _normalise(module, qualname)
    exact, _, _ = _policy(allowlist)
    listed = f"{module}.{qualname}" in exact
    problem = _denied_module(module)
    if problem:
        raise _Refused(problem)
    if not listed and not _may_import(module, allowlist):
        raise _Refused(f"module {module} is not on the allowlist")
    obj = _walk(module, qualname, listed)
    problem = denied_reason(obj)
    if problem:
        raise _Refused(problem)
    if _is_listed(obj, module, qualname, allowlist):
        return obj
    if getattr(obj, "__module__", None) == "builtins":
        raise _Refused("builtins are allowed only as the listed constructors")
    if _by_rule(obj, module, qualname, allowlist):
        return obj
    raise _Refused("it is not on the allowlist")


def is_allowed(qualified: str, allowlist: Iterable[str] = DEFAULT_UNPICKLE_ALLOWLIST) -> bool:
    """Whether ``module.name`` (split at the last dot, as skops names types) passes :func:`resolve_global`.

    Example:
        >>> is_allowed("numpy._core.multiarray._reconstruct"), is_allowed("posix.system")
        (True, False)
        >>> is_allowed("builtins.dict"), is_allowed("builtins.eval", {"builtins.eval"})
        (True, False)
    """
    module, _, name = qualified.rpartition(".")
    if not module:
        return False
    try:
        resolve_global(module, name, allowlist)
    except UnsafeModel:
        return False
    return True


class RestrictedUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` whose ``find_class`` applies :func:`resolve_global`.

    Every global the stream imports (``GLOBAL``, ``INST``, ``STACK_GLOBAL``, extension codes) goes
    through ``find_class``; persistent ids and out-of-band buffers are refused by default.

    Example:
        >>> import io, pickle
        >>> RestrictedUnpickler(io.BytesIO(pickle.dumps({1, 2}))).load()
        {1, 2}
    """

    def __init__(self, file: Any, allowlist: Iterable[str] = DEFAULT_UNPICKLE_ALLOWLIST) -> None:
        super().__init__(file, fix_imports=False)
        self._allowlist = frozenset(allowlist)

    def find_class(self, module: str, name: str) -> Any:
        return resolve_global(module, name, self._allowlist)


def safe_loads(data: bytes, allowlist: Iterable[str] = DEFAULT_UNPICKLE_ALLOWLIST) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (raises UnsafeModel on a refused global).

    Example:
        >>> import pickle, numpy
        >>> safe_loads(pickle.dumps(numpy.arange(3))).tolist()
        [0, 1, 2]
    """
    return RestrictedUnpickler(io.BytesIO(data), allowlist).load()


_STRING_OPS = frozenset(
    {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}
)
_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_EXT_OPS = frozenset({"EXT1", "EXT2", "EXT4"})


class _Mark:
    """The stack marker MARK pushes."""


_MARK = _Mark()
_UNKNOWN = object()  # any stack value that is not a constant string
_Ref = tuple[str, str] | str  # (module, qualname), or a "<...>" placeholder for what cannot be read


def _read(path_or_bytes: str | os.PathLike[str] | bytes | bytearray | memoryview) -> bytes:
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        return bytes(path_or_bytes)
    return Path(path_or_bytes).read_bytes()


def _npy_payload(data: bytes) -> bytes | None:
    """The pickle inside a ``.npy`` file of object dtype (None when it holds plain numbers)."""
    from numpy.lib import format as npy_format

    stream = io.BytesIO(data)
    version = npy_format.read_magic(stream)
    read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
    _shape, _order, dtype = read_header(stream)  # a version-3 header fails here: refused as malformed
    return data[stream.tell() :] if dtype.hasobject else None


def _references(data: bytes) -> list[_Ref]:
    """Every global the first pickle in ``data`` would import, without running it."""
    if data.startswith(b"\x93NUMPY"):
        try:
            payload = _npy_payload(data)
        except Exception as exc:
            return [f"<malformed .npy file: {exc}>"]
        return [] if payload is None else _references(payload)
    found: list[_Ref] = []
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    try:
        for op, arg, _pos in pickletools.genops(io.BytesIO(data)):
            _step(op, arg, stack, memo, found)
    except (ValueError, IndexError, KeyError) as exc:  # truncated or hand-made nonsense
        found.append(f"<malformed pickle: {exc}>")
    return found


def referenced_globals(data: bytes) -> list[str]:
    """Every ``module.name`` the first pickle in ``data`` would import, in order, without running it.

    Names that cannot be resolved statically (a ``STACK_GLOBAL`` fed by computed values, an extension
    code, a malformed stream) come back as ``"<...>"`` placeholders so that callers refuse them.

    Example:
        >>> import pickle, collections
        >>> referenced_globals(pickle.dumps(collections.OrderedDict()))
        ['collections.OrderedDict']
    """
    return [ref if isinstance(ref, str) else f"{ref[0]}.{ref[1]}" for ref in _references(data)]


def _step(
    op: pickletools.OpcodeInfo, arg: Any, stack: list[Any], memo: dict[int, Any], found: list[_Ref]
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
            found.append((module, qualname))
        else:
            found.append("<STACK_GLOBAL with a computed module or name>")
        stack.append(_UNKNOWN)
        return
    if name in ("GLOBAL", "INST"):
        module, _, qualname = str(arg).partition(" ")
        found.append((module, qualname))
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
    """The globals a pickle references that :func:`resolve_global` refuses (empty when it may load).

    Nothing is unpickled: the opcodes are only read (a ``.npy`` file's embedded pickle too), and only
    modules the rule allows are imported to resolve names. Use :func:`build_allowlist` to extend it.

    Example:
        >>> scan_pickle(b"\\x80\\x04\\x8c\\x04uuid\\x8c\\x09os.system\\x93\\x8c\\x04true\\x85R.")
        ['uuid.os.system']
        >>> import pickle
        >>> scan_pickle(pickle.dumps({"a": [1, 2.0]}))
        []
    """
    allowed = frozenset(allowlist)
    bad: list[str] = []
    for ref in _references(_read(path_or_bytes)):
        if isinstance(ref, str):
            refused = ref
        else:
            try:
                resolve_global(ref[0], ref[1], allowed)
                continue
            except UnsafeModel:
                refused = f"{ref[0]}.{ref[1]}"
        if refused not in bad:
            bad.append(refused)
    return bad
