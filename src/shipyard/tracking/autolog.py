"""scikit-learn autologging: ``sy.autolog()`` records every top-level ``fit``.

Each fit logs the estimator's params, ``fit_time_s``, ``training_score`` (its
own ``score`` on the training data, when it has one and ``y`` was given) and the
fitted model as a skops artifact (``model/model.skops``; skops is safe to load,
unlike pickle). Inside an active run the fit logs to it (or to a child run when
the active run already holds another fit's params); otherwise autolog starts and
ends a run of its own. Logging problems become warnings: autolog never breaks
the user's ``fit``. Fits nested inside another fit (a pipeline's
steps, a search's candidates) are not logged separately.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from shipyard.errors import MissingExtra
from shipyard.tracking import fluent

__all__ = ["autolog", "disable_autolog"]

log = logging.getLogger("shipyard.autolog")
_STATE = threading.local()
_PATCHED: dict[type, Callable[..., Any]] = {}


def _estimator_classes() -> list[type]:
    try:
        from sklearn.utils import all_estimators
    except ModuleNotFoundError:
        raise MissingExtra(
            "Autologging scikit-learn needs it installed: pip install 'shipyard[sklearn]'"
        ) from None
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    from sklearn.pipeline import Pipeline

    classes = [cls for _, cls in all_estimators()]
    return [*classes, Pipeline, GridSearchCV, RandomizedSearchCV]


def _params_of(estimator: Any) -> dict[str, str]:
    out = {}
    for key, value in estimator.get_params(deep=False).items():
        text = (
            type(value).__name__
            if hasattr(value, "get_params")
            else repr(value)
            if isinstance(value, str)
            else str(value)
        )
        out[key] = text[:500]
    return out


def _log_fit(run: Any, estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any], seconds: float) -> None:
    run.log_params({"estimator": type(estimator).__name__, **_params_of(estimator)})
    run.log_metric("fit_time_s", seconds)
    X = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y")
    if y is not None and hasattr(estimator, "score"):
        try:
            run.log_metric("training_score", float(estimator.score(X, y)))
        except Exception as exc:  # some estimators cannot score their own input
            run.set_tag("sy.autolog.score_error", str(exc)[:500])
    import skops.io

    run.log_bytes(skops.io.dumps(estimator), "model/model.skops")
    run.set_tags({"sy.autolog": "sklearn", "sy.model.flavor": "sklearn"})


def _record(
    estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any], seconds: float, experiment: str
) -> None:
    """Log a finished fit; never let logging break the user's training."""
    run = fluent.active_run()
    try:
        if run is not None and _params_fit(run, estimator):
            _log_fit(run, estimator, args, kwargs, seconds)
            return
        # No run, or the active run already holds another fit's params: a run of its own
        # (a child of the active run, if any).
        with fluent.start_run(experiment=experiment, name=type(estimator).__name__) as own:
            _log_fit(own, estimator, args, kwargs, seconds)
    except Exception as exc:
        log.warning("Shipyard autolog could not record %s.fit: %s", type(estimator).__name__, exc)


def _params_fit(run: Any, estimator: Any) -> bool:
    """True when the run has none of this fit's params yet, or the same values."""
    logged = run.logged_params
    wanted = {"estimator": type(estimator).__name__, **_params_of(estimator)}
    return all(logged.get(k, v) == v for k, v in wanted.items())


def _wrap(original: Callable[..., Any], experiment: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_STATE, "depth", 0) > 0:
            return original(self, *args, **kwargs)
        _STATE.depth = 1
        try:
            start = time.perf_counter()
            result = original(self, *args, **kwargs)
            seconds = time.perf_counter() - start
        finally:
            _STATE.depth = 0
        _record(self, args, kwargs, seconds, experiment)
        return result

    fit.__shipyard_autolog__ = True  # type: ignore[attr-defined]
    return fit


def autolog(experiment: str = "default") -> int:
    """Patch every scikit-learn estimator's ``fit``; returns how many classes were patched.

    Example:
        >>> import shipyard as sy
        >>> sy.autolog()  # doctest: +SKIP
    """
    count = 0
    for cls in _estimator_classes():
        original = cls.__dict__.get("fit")
        if original is None or getattr(original, "__shipyard_autolog__", False):
            continue
        _PATCHED[cls] = original
        cls.fit = _wrap(original, experiment)  # type: ignore[attr-defined]
        count += 1
    return count


def disable_autolog() -> None:
    """Undo :func:`autolog`."""
    for cls, original in _PATCHED.items():
        cls.fit = original  # type: ignore[attr-defined]
    _PATCHED.clear()
