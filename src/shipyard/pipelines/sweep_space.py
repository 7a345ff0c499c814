"""The sweep space DSL, and samplers and pruners by name (what :func:`shipyard.sweep` accepts).

A space maps parameter names to one of::

    ("float", low, high)        uniform float          ("float", low, high, step)  a float grid
    ("log", low, high)          log-uniform float, low > 0
    ("int", low, high)          integer, both ends included   ("int", low, high, step)
    ("logint", low, high)       log-uniform integer, low > 0
    ["rbf", "linear"]           a choice (also ("categorical", [...]))
    optuna.distributions.X(...) any optuna distribution, as is
    0.5, "adam", True, None     a fixed value: passed to every trial, not searched

optuna is imported only when a sweep runs (``import shipyard`` stays cheap).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput, MissingExtra

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.pruners import BasePruner
    from optuna.samplers import BaseSampler

__all__ = [
    "PRUNERS",
    "SAMPLERS",
    "grid_values",
    "make_pruner",
    "make_sampler",
    "parse_space",
    "require_optuna",
    "space_json",
]

SAMPLERS = ("tpe", "random", "grid", "cmaes", "qmc", "bruteforce")
PRUNERS = ("median", "hyperband", "successive_halving", "none")
_SYNTAX = (
    "write ('float', low, high), ('log', low, high), ('int', low, high), ('logint', low, high), "
    "an optional step as a 4th item for float/int, a list of choices, an optuna distribution, "
    "or a plain value to fix it"
)
_CHOICE_TYPES = (type(None), bool, int, float, str)


def require_optuna() -> None:
    """Raise a one-line install hint when optuna is missing."""
    try:
        import optuna  # noqa: F401
    except ModuleNotFoundError:
        raise MissingExtra("Sweeps need optuna: pip install 'shipyard[sweeps]'") from None


def _bad(name: str, spec: Any, why: str) -> InvalidInput:
    return InvalidInput(f"Sweep space entry {name!r} = {spec!r}: {why}; {_SYNTAX}")


def _number(name: str, spec: Any, value: Any, integer: bool) -> Any:
    ok = isinstance(value, int) if integer else isinstance(value, Real)
    if isinstance(value, bool) or not ok or not math.isfinite(float(value)):
        kind = "an integer" if integer else "a finite number"
        raise _bad(name, spec, f"{value!r} must be {kind}")
    return value


def _range(name: str, spec: tuple[Any, ...]) -> BaseDistribution:
    from optuna.distributions import FloatDistribution, IntDistribution

    kind, args = spec[0], spec[1:]
    if len(args) not in (2, 3):
        raise _bad(name, spec, f"a {kind!r} range takes low and high (and for float/int a step)")
    integer, log = kind in ("int", "logint"), kind in ("log", "logint")
    low, high = (_number(name, spec, v, integer) for v in args[:2])
    step = _number(name, spec, args[2], integer) if len(args) == 3 else None
    if not low < high:
        raise _bad(name, spec, f"low ({low}) must be below high ({high}); a fixed value is written plain")
    if log and low <= 0:
        raise _bad(name, spec, f"a log range needs low > 0, got {low}")
    if step is not None:
        if log:
            raise _bad(name, spec, "a log range takes no step")
        if step <= 0:
            raise _bad(name, spec, f"step must be > 0, got {step}")
        n = (high - low) / step
        if abs(n - round(n)) > 1e-9 * max(1.0, abs(n)):
            raise _bad(name, spec, f"high - low ({high - low}) must be a multiple of step ({step})")
    if integer:
        return IntDistribution(low, high, log=log, step=step or 1)
    return FloatDistribution(float(low), float(high), log=log, step=None if step is None else float(step))


def _choices(name: str, spec: Any, choices: Any) -> BaseDistribution:
    from optuna.distributions import CategoricalDistribution

    if not isinstance(choices, (list, tuple)) or not choices:
        raise _bad(name, spec, "a choice needs a non-empty list of values")
    bad = [c for c in choices if not isinstance(c, _CHOICE_TYPES)]
    if bad:
        raise _bad(name, spec, f"choices must be None, bool, int, float or str, got {bad[0]!r}")
    keys = [json.dumps(c) for c in choices]
    if len(set(keys)) != len(keys):
        raise _bad(name, spec, "choices must be distinct")
    return CategoricalDistribution(list(choices))


def _entry(name: str, spec: Any) -> BaseDistribution | None:
    """The distribution of one entry, or None for a fixed value."""
    from optuna.distributions import BaseDistribution

    if isinstance(spec, BaseDistribution):
        return spec
    if isinstance(spec, list):
        return _choices(name, spec, spec)
    if isinstance(spec, tuple):
        kind = spec[0] if spec else None
        if kind == "categorical" and len(spec) == 2:
            return _choices(name, spec, spec[1])
        if kind in ("float", "log", "int", "logint"):
            return _range(name, spec)
        raise _bad(name, spec, f"unknown kind {kind!r}")
    if isinstance(spec, _CHOICE_TYPES):
        return None
    raise _bad(name, spec, f"a {type(spec).__name__} is not a space entry")


def parse_space(space: Any) -> tuple[dict[str, BaseDistribution], dict[str, Any]]:
    """The searched distributions and the fixed values of a space; InvalidInput naming a bad entry.

    Example:
        >>> dists, fixed = parse_space({"C": ("log", 1e-3, 10), "kernel": ["rbf", "linear"], "seed": 0})
        >>> sorted(dists), fixed
        (['C', 'kernel'], {'seed': 0})
    """
    if not isinstance(space, Mapping) or not space:
        raise InvalidInput(
            f"A sweep space must be a non-empty dict of name -> entry, got {space!r:.80}; "
            "e.g. space={'C': ('log', 1e-3, 10), 'kernel': ['rbf', 'linear']}"
        )
    dists: dict[str, BaseDistribution] = {}
    fixed: dict[str, Any] = {}
    for name, spec in space.items():
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"Sweep space names must be non-empty strings, got {name!r}")
        dist = _entry(name, spec)
        if dist is None:
            fixed[name] = spec
        else:
            dists[name] = dist
    if not dists:
        raise InvalidInput(
            f"The sweep space {dict(space)!r:.120} only fixes values; give at least one range or "
            "list of choices to search"
        )
    return dists, fixed


def space_json(dists: Mapping[str, BaseDistribution], fixed: Mapping[str, Any]) -> str:
    """Canonical JSON of a space: a resumed sweep must search the same one."""
    from optuna.distributions import distribution_to_json

    body = {"search": {k: json.loads(distribution_to_json(d)) for k, d in sorted(dists.items())}}
    return json.dumps({**body, "fixed": dict(sorted(fixed.items()))}, sort_keys=True)


def grid_values(dists: Mapping[str, BaseDistribution]) -> dict[str, list[Any]]:
    """Every value of each distribution, for the grid sampler; InvalidInput for a continuous range."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    grid: dict[str, list[Any]] = {}
    for name, d in dists.items():
        if isinstance(d, CategoricalDistribution):
            grid[name] = list(d.choices)
        elif isinstance(d, IntDistribution):
            grid[name] = list(range(d.low, d.high + 1, d.step))
        elif isinstance(d, FloatDistribution) and d.step is not None:
            n = round((d.high - d.low) / d.step)
            grid[name] = [round(d.low + i * d.step, 12) for i in range(n + 1)]
        else:
            raise InvalidInput(
                f"The grid sampler needs a finite set of values for {name!r}, got the continuous "
                f"range {d!r}; give a list of values, an ('int', ...) range or ('float', low, high, step)"
            )
    return grid


def make_sampler(
    sampler: str | BaseSampler, dists: Mapping[str, BaseDistribution], seed: int | None
) -> BaseSampler:
    """An optuna sampler from a name in :data:`SAMPLERS` (seeded) or the sampler object itself."""
    import optuna
    from optuna.exceptions import ExperimentalWarning

    if isinstance(sampler, optuna.samplers.BaseSampler):
        return sampler
    key = sampler.lower() if isinstance(sampler, str) else None
    if key == "cmaes":
        try:
            import cmaes  # noqa: F401
        except ModuleNotFoundError:
            raise MissingExtra("The cmaes sampler needs the cmaes package: pip install cmaes") from None
    with warnings.catch_warnings():  # some samplers are marked experimental; choosing one is deliberate
        warnings.simplefilter("ignore", ExperimentalWarning)
        if key == "tpe":
            return optuna.samplers.TPESampler(seed=seed)
        if key == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if key == "grid":
            return _grid_sampler(grid_values(dists), seed)
        if key == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed)
        if key == "qmc":
            return optuna.samplers.QMCSampler(seed=seed)
        if key == "bruteforce":
            return optuna.samplers.BruteForceSampler(seed=seed)
    raise InvalidInput(
        f"Unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)} or an optuna sampler object"
    )


def _grid_sampler(values: dict[str, list[Any]], seed: int | None) -> BaseSampler:
    """optuna's grid sampler without its ``study.stop()`` once the grid is done: that call only
    works inside ``study.optimize``, and the sweep driver counts trials itself (ask and tell)."""
    from optuna.samplers import GridSampler

    class AskTellGridSampler(GridSampler):
        def after_trial(self, *args: Any, **kwargs: Any) -> None:
            return None

    return AskTellGridSampler(values, seed=seed)


def make_pruner(pruner: str | BasePruner | None) -> BasePruner:
    """An optuna pruner from a name in :data:`PRUNERS`, None (never prune) or the pruner object."""
    import optuna

    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    key = "none" if pruner is None else pruner.lower() if isinstance(pruner, str) else None
    if key == "median":
        return optuna.pruners.MedianPruner()
    if key == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if key == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if key == "none":
        return optuna.pruners.NopPruner()
    raise InvalidInput(
        f"Unknown pruner {pruner!r}; use one of {', '.join(PRUNERS)}, None or an optuna pruner object"
    )


def grid_size(dists: Mapping[str, BaseDistribution]) -> int:
    """How many points the grid sampler visits."""
    return math.prod(len(v) for v in grid_values(dists).values())


def describe(obj: Any) -> str:
    """A short name for a sampler or pruner (for tags)."""
    return obj if isinstance(obj, str) else type(obj).__name__ if obj is not None else "none"


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise InvalidInput(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return str(value)
