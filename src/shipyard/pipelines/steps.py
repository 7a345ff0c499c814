"""``@step``: a typed function that a pipeline runs, caches and records; and the tracing that builds DAGs.

Outside a pipeline a step is its plain function. While a pipeline function is being traced, calling
a step records a node and returns :class:`Placeholder` outputs; passing a placeholder to another step
makes an edge. Arguments that are not placeholders are the step's parameters.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from shipyard.data.contracts import Contract

__all__ = ["Node", "Placeholder", "Step", "StepOptions", "Trace", "step"]


@dataclass(frozen=True)
class StepOptions:
    """How a step runs; see :func:`step` for each option."""

    contracts: Mapping[str, Contract | str] = field(default_factory=dict)
    cache: bool = True
    version: str | None = None
    retries: int = 0
    retry_backoff: float = 1.0
    timeout: float | None = None
    resources: Mapping[str, float] = field(default_factory=dict)
    dataset: str | None = None
    pickle: bool = False


class Placeholder:
    """A step output that does not exist yet (pipelines are traced before they run).

    Pass it to another step; anything else (``len``, attributes, ``if``) is a mistake and says so.
    """

    __slots__ = ("index", "node")

    def __init__(self, node: str, index: int | None) -> None:
        self.node = node
        self.index = index

    def __repr__(self) -> str:
        return f"<output of step {self.node!r}{'' if self.index is None else f' [{self.index}]'}>"

    def __bool__(self) -> bool:
        raise InvalidInput(
            f"{self!r} has no value while the pipeline is being traced: do not branch on step "
            "outputs in a pipeline function; move the decision into a step"
        )

    def __iter__(self) -> Any:
        raise InvalidInput(
            f"{self!r} is one value: annotate the step's return as tuple[A, B] to get several outputs"
        )


@dataclass
class Node:
    """One call of a step in a pipeline."""

    id: str
    step: Step
    inputs: dict[str, Placeholder]
    params: dict[str, Any]
    n_outputs: int | None  # None: one output; n: a tuple of n

    @property
    def upstream(self) -> list[str]:
        return sorted({p.node for p in self.inputs.values()})


class Trace:
    """The nodes recorded while a pipeline function runs."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}

    def add(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            bound = step.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput(f"Step '{step.name}' called with the wrong arguments: {exc}") from None
        bound.apply_defaults()
        inputs, params = {}, {}
        for name, value in bound.arguments.items():
            if isinstance(value, Placeholder):
                inputs[name] = value
            elif _holds_placeholder(value):
                raise InvalidInput(
                    f"Step '{step.name}' argument '{name}' holds step outputs inside a "
                    f"{type(value).__name__}; pass each output as its own argument"
                )
            else:
                params[name] = value
        node_id = step.name
        n = 2
        while node_id in self.nodes:
            node_id, n = f"{step.name}_{n}", n + 1
        node = Node(node_id, step, inputs, params, step.n_outputs)
        self.nodes[node_id] = node
        if node.n_outputs is None:
            return Placeholder(node_id, None)
        return tuple(Placeholder(node_id, i) for i in range(node.n_outputs))


def _holds_placeholder(value: Any) -> bool:
    if isinstance(value, (list, tuple, set)):
        return any(isinstance(v, Placeholder) for v in value)
    if isinstance(value, dict):
        return any(isinstance(v, Placeholder) for v in value.values())
    return False


TRACE: contextvars.ContextVar[Trace | None] = contextvars.ContextVar("shipyard_pipeline_trace", default=None)


def _import_step(module: str, qualname: str) -> Step:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, Step):
        raise InvalidInput(f"{module}:{qualname} is not a step (decorate it with @sy.step)")
    return obj


class Step:
    """A function made a pipeline step by :func:`step`; call it in a pipeline, or directly."""

    def __init__(self, fn: Callable[..., Any], options: StepOptions) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name: str = fn.__name__
        self.options = options
        self.signature = inspect.signature(fn)
        self._fingerprint: str | None = None
        self._hints: dict[str, Any] | None = None
        unknown = set(options.contracts) - set(self.signature.parameters) - {"return"}
        if unknown:
            raise InvalidInput(
                f"Step '{self.name}' has contracts for {sorted(unknown)}, which are not its parameters; "
                f"use parameter names ({', '.join(self.signature.parameters)}) or 'return'"
            )

    def __repr__(self) -> str:
        return f"<Step {self.fn.__module__}.{self.fn.__qualname__}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        trace = TRACE.get()
        if trace is None:
            return self.fn(*args, **kwargs)
        return trace.add(self, args, kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_import_step, (self.fn.__module__, self.fn.__qualname__))

    @property
    def importable(self) -> bool:
        """Whether a worker process can import this step by module and name (not ``__main__``, not local)."""
        if self.fn.__module__ == "__main__" or "<locals>" in self.fn.__qualname__:
            return False
        try:
            return _import_step(self.fn.__module__, self.fn.__qualname__) is self
        except Exception:
            return False

    @property
    def hints(self) -> dict[str, Any]:
        if self._hints is None:
            try:
                self._hints = typing.get_type_hints(self.fn)
            except Exception:  # unresolvable forward references: annotations are hints only
                self._hints = {}
        return self._hints

    @property
    def n_outputs(self) -> int | None:
        ret = self.hints.get("return")
        if typing.get_origin(ret) is tuple:
            args = typing.get_args(ret)
            if args and Ellipsis not in args:
                return len(args)
        return None

    @property
    def code_version(self) -> str:
        """The explicit ``version=``, or the fingerprint of the step's code (computed once)."""
        if self.options.version is not None:
            return f"version:{self.options.version}"
        if self._fingerprint is None:
            from shipyard.pipelines.cache import code_fingerprint

            self._fingerprint = code_fingerprint(self.fn)
        return self._fingerprint


@overload
def step(fn: Callable[..., Any], /) -> Step: ...


@overload
def step(
    *,
    contracts: Mapping[str, Contract | str] | None = None,
    cache: bool = True,
    version: str | None = None,
    retries: int = 0,
    retry_backoff: float = 1.0,
    timeout: float | None = None,
    resources: Mapping[str, float] | None = None,
    dataset: str | None = None,
    pickle: bool = False,
) -> Callable[[Callable[..., Any]], Step]: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    contracts: Mapping[str, Contract | str] | None = None,
    cache: bool = True,
    version: str | None = None,
    retries: int = 0,
    retry_backoff: float = 1.0,
    timeout: float | None = None,
    resources: Mapping[str, float] | None = None,
    dataset: str | None = None,
    pickle: bool = False,
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make a typed function a pipeline step.

    Args:
        contracts: parameter name (or ``"return"``) → contract (``"flights@v1"``, a YAML path or a
            ``Contract``), checked on the data at run time.
        cache: reuse the outputs of an earlier run with the same cache key.
        version: a version string that replaces the code fingerprint in the cache key.
        retries: extra attempts after a failure; ``retry_backoff`` seconds, doubled each time.
        timeout: seconds per attempt; the step then runs in its own process (killed when done).
        resources: ``{"cpus": 2, "memory": 4e9, "gpus": 1}``, hints for executors such as Ray.
        dataset: store a frame output as a version of this dataset (lineage, profile).
        pickle: allow outputs of types with no safe materializer (stored with pickle).

    Example:
        >>> import shipyard as sy
        >>> @sy.step(cache=True)
        ... def double(x: int) -> int:
        ...     return 2 * x
        >>> double(3)  # outside a pipeline it is the plain function
        6
    """
    if retries < 0 or retry_backoff < 0 or (timeout is not None and timeout <= 0):
        raise InvalidInput(
            f"retries ({retries}) and retry_backoff ({retry_backoff}) must be >= 0 and timeout "
            f"({timeout}) > 0 or None"
        )
    options = StepOptions(
        contracts=dict(contracts or {}),
        cache=cache,
        version=version,
        retries=retries,
        retry_backoff=retry_backoff,
        timeout=timeout,
        resources=dict(resources or {}),
        dataset=dataset,
        pickle=pickle,
    )
    if fn is not None:
        return Step(fn, options)
    return lambda f: Step(f, options)
