"""Step cache keys and the cache index (tags on step runs, found with the store's run search).

A key is BLAKE3 over canonical JSON of: the step's code fingerprint (its source and the source of the
project-local functions and classes it refers to, or its explicit ``version=``), its parameters, the
digests of its inputs, and the versions of Shipyard and of the libraries that read and write its
inputs and outputs. A finished step run carries ``sy.cache_key`` and ``sy.outputs`` tags: that is the
index. :func:`clear_cache` overwrites the keys, so later runs miss.
"""

from __future__ import annotations

import functools
import importlib.metadata
import inspect
import json
import sysconfig
import textwrap
import types
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import blake3

from shipyard.entities import LogBatch, Run
from shipyard.errors import InvalidInput
from shipyard.version import __version__

if TYPE_CHECKING:
    from shipyard.tracking import Client

__all__ = [
    "CACHE_TAG",
    "OUTPUTS_TAG",
    "CacheIndex",
    "cache_key",
    "clear_cache",
    "code_fingerprint",
    "library_version",
]

CACHE_TAG = "sy.cache_key"
OUTPUTS_TAG = "sy.outputs"
CLEARED = "cleared"
_MAX_OBJECTS = 64  # bound on the project-local functions/classes followed from one step
# Shipyard's own package counts as a library (its version is in every key), not as project code, even
# when it is installed from a checkout (pip install -e): editing Shipyard must not invalidate user caches.
_SYSTEM_ROOTS = tuple(
    str(Path(p).resolve())
    for key in ("stdlib", "platstdlib", "purelib", "platlib")
    if (p := sysconfig.get_paths().get(key))
) + (str(Path(__file__).resolve().parents[1]) + "/",)


def library_version(dist: str) -> str:
    """The installed version of distribution ``dist`` ('' when absent); tests monkeypatch this."""
    return _installed(dist)


@functools.lru_cache(maxsize=256)
def _installed(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _is_project_local(obj: Any) -> bool:
    """Defined in a source file outside the standard library, site-packages and Shipyard itself."""
    try:
        file = inspect.getsourcefile(obj)
    except TypeError:
        return False
    if not file:
        return False
    resolved = str(Path(file).resolve())
    return not resolved.startswith(_SYSTEM_ROOTS) and "site-packages" not in resolved


def _source(obj: Any) -> str:
    try:
        return textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        return code.co_code.hex() if code is not None else repr(obj)


def _names(code: types.CodeType) -> Iterable[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


def _referenced(obj: Any) -> list[Any]:
    """Functions and classes that ``obj``'s code names through its module globals."""
    func = getattr(obj, "fn", obj)  # a Step: follow its function
    code = getattr(func, "__code__", None)
    if code is None:
        if inspect.isclass(func):
            return [m for m in vars(func).values() if inspect.isfunction(m)]
        return []
    found = []
    for name in dict.fromkeys(_names(code)):
        value = func.__globals__.get(name)
        value = getattr(value, "fn", value)
        if inspect.isfunction(value) or inspect.isclass(value):
            found.append(value)
    return found


def code_fingerprint(func: Callable[..., Any]) -> str:
    """BLAKE3 of ``func``'s source and of the project-local code it calls (bounded, recursive).

    Example:
        >>> def double(x): return 2 * x
        >>> len(code_fingerprint(double))
        64
    """
    seen: dict[str, str] = {}
    queue: list[Any] = [func]
    while queue and len(seen) < _MAX_OBJECTS:
        obj = queue.pop(0)
        key = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
        if key in seen:
            continue
        seen[key] = _source(obj)
        queue.extend(o for o in _referenced(obj) if _is_project_local(o))
    return blake3.blake3(json.dumps(seen, sort_keys=True).encode()).hexdigest()


def canonical_params(step: str, params: Mapping[str, Any]) -> str:
    """Parameters as canonical JSON (sorted keys); a value JSON cannot hold is a clear error."""
    try:
        return json.dumps(dict(params), sort_keys=True, separators=(",", ":"), allow_nan=True)
    except (TypeError, ValueError):
        bad = next(k for k, v in params.items() if not _jsonable(v))
        raise InvalidInput(
            f"Step '{step}' parameter '{bad}' is a {type(params[bad]).__name__}, which cannot be part "
            "of a cache key; pass JSON values (str, numbers, lists, dicts) as parameters and data as "
            "the output of another step"
        ) from None


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def cache_key(
    *,
    step: str,
    code: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, str],
    libraries: Iterable[str],
) -> str:
    """The cache key of one step execution (see the module docstring for what it covers).

    Example:
        >>> len(cache_key(step="s", code="v1", params={}, inputs={}, libraries=["numpy"]))
        64
    """
    body = {
        "step": step,
        "code": code,
        "params": canonical_params(step, params),
        "inputs": dict(sorted(inputs.items())),
        "shipyard": __version__,
        "libraries": {d: library_version(d) for d in sorted(set(libraries))},
    }
    return blake3.blake3(json.dumps(body, sort_keys=True).encode()).hexdigest()


_COLUMNS = [f"tags.`{CACHE_TAG}`", f"tags.`{OUTPUTS_TAG}`", "tags.`sy.pipeline.run`"]


SOURCE_STEP_RUN = "sy.cache_source_step_run"  # the step run whose outputs a hit reuses (tag and lookup key)


def _entries(runs: Iterable[Run], wanted: Collection[str] | None = None) -> dict[str, dict[str, str]]:
    """Cache key → tags of the first run (newest first) holding the key and its outputs."""
    found: dict[str, dict[str, str]] = {}
    for run in runs:
        key = run.tags.get(CACHE_TAG, "")
        usable = key and key != CLEARED and key not in found and OUTPUTS_TAG in run.tags
        if usable and (wanted is None or key in wanted):
            found[key] = {**run.tags, SOURCE_STEP_RUN: run.id}
    return found


def lookup(client: Client, keys: Iterable[str]) -> dict[str, dict[str, str]]:
    """Cache key → tags of the newest finished step run holding it (one search for all keys)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    quoted = ", ".join(f"'{k}'" for k in wanted)
    runs, _ = client.search_runs_page(
        filter=f"tags.`{CACHE_TAG}` in ({quoted}) and attributes.status = 'finished'",
        order_by=["attributes.start_time desc"],
        limit=max(len(wanted) * 4, 100),
        columns=_COLUMNS,
    )
    return _entries(runs, set(wanted))


class CacheIndex:
    """The cache as one pipeline run sees it: searched once per set of new keys, and on a hit
    the other steps of the pipeline run that hit came from are read at once (one search), so a
    chain of unchanged steps costs two searches, not one per step.

    A key found among those siblings is the same key (same code, params, inputs and versions),
    so its outputs are as valid as the newest run's.

    Example:
        >>> index = CacheIndex(client, nodes=10)  # doctest: +SKIP
        >>> index.find([key]).get(key, {}).get("sy.outputs")  # doctest: +SKIP
    """

    def __init__(self, client: Client, nodes: int) -> None:
        self._client = client
        self._limit = max(100, 2 * nodes)
        self._known: dict[str, dict[str, str]] = {}
        self._searched: set[str] = set()
        self._read_runs: set[str] = set()
        self.searches = 0  # how many store searches this index made (tests read it)

    def find(self, keys: Iterable[str]) -> dict[str, dict[str, str]]:
        """Cache key → tags of a finished step run holding it, for the keys that hit."""
        keys = list(dict.fromkeys(keys))
        new = [k for k in keys if k not in self._known and k not in self._searched]
        if new:
            self.searches += 1
            found = lookup(self._client, new)
            self._searched.update(new)
            self._known.update(found)
            for tags in found.values():
                self._read_siblings(tags.get("sy.pipeline.run", ""))
        return {k: self._known[k] for k in keys if k in self._known}

    def _read_siblings(self, pipeline_run: str) -> None:
        if not pipeline_run or pipeline_run in self._read_runs or "'" in pipeline_run:
            return
        self._read_runs.add(pipeline_run)
        self.searches += 1
        runs, _ = self._client.search_runs_page(
            filter=f"tags.`sy.pipeline.run` = '{pipeline_run}' and attributes.status = 'finished'",
            order_by=["attributes.start_time desc"],
            limit=self._limit,
            columns=_COLUMNS,
        )
        for key, tags in _entries(runs).items():
            self._known.setdefault(key, tags)


def clear_cache(pipeline: str | None = None, *, client: Client | None = None) -> int:
    """Forget cached step results (of one pipeline, or all); returns how many step runs were cleared.

    The runs stay; their ``sy.cache_key`` tag becomes ``cleared``, so the next run executes again.

    Example:
        >>> sy.clear_cache("train")  # doctest: +SKIP
        7
    """
    from shipyard.tracking.fluent import get_client

    client = client or get_client()
    where = f"tags.`{CACHE_TAG}` != '{CLEARED}'"
    if pipeline is not None:
        where += f" and tags.`sy.pipeline` = '{pipeline.replace(chr(39), '')}'"
    count = 0
    while True:  # cleared runs drop out of the filter, so the first page is always the next one
        runs, _ = client.search_runs_page(filter=where, limit=500)
        for run in runs:
            client.store.log_batch(run.id, LogBatch(tags={CACHE_TAG: CLEARED}))
        count += len(runs)
        if len(runs) < 500:
            return count
