"""MLflow's limits on what its tracking API takes (``mlflow/utils/validation.py``), with its messages.

Keys (metric, param and tag names) may hold letters, digits, ``_ - . / :`` and spaces, at most
:data:`MAX_KEY_LENGTH` characters, and must not read as another path (``a/../b``, ``/a``); param
values hold at most :data:`MAX_PARAM_VALUE_LENGTH` characters, tag values
:data:`MAX_TAG_VALUE_LENGTH`; one ``log-batch`` carries at most :data:`MAX_METRICS_PER_BATCH`
metrics, :data:`MAX_PARAMS_TAGS_PER_BATCH` params and as many tags, :data:`MAX_ENTITIES_PER_BATCH`
in all. Past a limit the answer is ``INVALID_PARAMETER_VALUE``, as MLflow's server gives.
"""

from __future__ import annotations

import json
import math
import posixpath
import re
from collections.abc import Sequence
from typing import Any

from shipyard.server.mlflow.wire import MlflowApiError

__all__ = [
    "MAX_ENTITIES_PER_BATCH",
    "MAX_EXPERIMENT_TAG_VALUE_LENGTH",
    "MAX_KEY_LENGTH",
    "MAX_METRICS_PER_BATCH",
    "MAX_PARAMS_TAGS_PER_BATCH",
    "MAX_PARAM_VALUE_LENGTH",
    "MAX_TAG_VALUE_LENGTH",
    "check_batch_limits",
    "check_experiment_tag",
    "check_metric",
    "check_param",
    "check_params_unique",
    "check_tag",
]

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_TAG_KEY_LENGTH = 250
MAX_EXPERIMENT_TAG_VALUE_LENGTH = 20000
_NAME = re.compile(r"^[/\w.\- :]*$")


def _invalid(path: str, value: Any, message: str) -> MlflowApiError:
    shown = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return MlflowApiError(f"Invalid value {shown} for parameter '{path}' supplied: {message}")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _check_name(name: str | None, path: str, what: str) -> str:
    if name is None:
        raise MlflowApiError(f"Missing value for required parameter '{path}'.")
    if not _NAME.match(name):
        raise _invalid(
            path,
            name,
            "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), "
            "colon(:) and slashes (/).",
        )
    norm = posixpath.normpath(name)
    if norm != name or norm == "." or norm.startswith("..") or norm.startswith("/"):
        raise _invalid(
            path,
            name,
            "Names may be treated as files in certain cases, and must not resolve to other names when "
            f"treated as such. This name would resolve to {norm!r}",
        )
    _check_length(what, MAX_KEY_LENGTH, name)
    return name


def _check_length(what: str, limit: int, value: str | None) -> None:
    if value is not None and len(value) > limit:
        raise MlflowApiError(f"'{what}' exceeds the maximum length of {limit} characters")


def check_metric(key: str | None, value: float | None, timestamp: int | None, path: str = "") -> str:
    """A metric's key, value and timestamp as MLflow's server checks them (NaN and ±inf are values).

    Example:
        >>> check_metric("val/loss", 0.5, 1700000000000)
        'val/loss'
    """
    _check_name(key, _join(path, "key"), "Metric name")
    if value is None:
        raise MlflowApiError(f"Missing value for required parameter '{_join(path, 'value')}'.")
    if timestamp is None:
        raise MlflowApiError(f"Missing value for required parameter '{_join(path, 'timestamp')}'.")
    if timestamp < 0:
        raise _invalid(
            _join(path, "timestamp"),
            timestamp,
            f"metric '{key}' (value={value if math.isfinite(value) else repr(value)}). "
            "Timestamp must be a nonnegative long (64-bit integer) ",
        )
    assert key is not None
    return key


def check_param(key: str | None, value: str | None, path: str = "") -> tuple[str, str]:
    """A param's key and value (at most 6000 characters)."""
    name = _check_name(key, _join(path, "key"), "Param key")
    _check_length("Param value", MAX_PARAM_VALUE_LENGTH, value)
    return name, value or ""


def check_tag(key: str | None, value: str | None, path: str = "") -> tuple[str, str]:
    """A run tag's key and value (at most 8000 characters)."""
    name = _check_name(key, _join(path, "key"), _join(path, "key"))
    _check_length(_join(path, "value"), MAX_TAG_VALUE_LENGTH, value)
    return name, value or ""


def check_experiment_tag(key: str | None, value: str | None) -> tuple[str, str]:
    """An experiment tag's key (250 characters) and value (20000 characters)."""
    name = _check_name(key, "key", "key")
    _check_length("value", MAX_EXPERIMENT_TAG_VALUE_LENGTH, value)
    return name, value or ""


def check_batch_limits(metrics: int, params: int, tags: int) -> None:
    """What one ``log-batch`` may carry.

    Example:
        >>> check_batch_limits(1001, 0, 0)
        Traceback (most recent call last):
        shipyard.server.mlflow.wire.MlflowApiError: A batch logging request can contain at most 1000 ...
    """
    for what, limit, count in (
        ("metrics", MAX_METRICS_PER_BATCH, metrics),
        ("params", MAX_PARAMS_TAGS_PER_BATCH, params),
        ("tags", MAX_PARAMS_TAGS_PER_BATCH, tags),
        ("metrics, params, and tags", MAX_ENTITIES_PER_BATCH, metrics + params + tags),
    ):
        if count > limit:
            raise MlflowApiError(
                f"A batch logging request can contain at most {limit} {what}. Got {count} {what}. "
                f"Please split up {what} across multiple requests and try again."
            )


def check_params_unique(keys: Sequence[str]) -> None:
    """One value per param key in one batch."""
    seen: set[str] = set()
    dupes = [k for k in keys if k in seen or seen.add(k)]  # type: ignore[func-returns-value]
    if dupes:
        raise MlflowApiError(
            f"Duplicate parameter keys have been submitted: {dupes}. Please ensure the request contains only "
            "one param value per param key."
        )
