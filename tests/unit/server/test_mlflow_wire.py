"""``omit_empty`` (the fast walk MLflow's answers go through) against a plain statement of the rule:
empty fields (None, "", [], {}) left out recursively, non-finite floats as protobuf's strings."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from shipyard.server.mlflow.wire import omit_empty

_NAMES = {math.inf: "Infinity", -math.inf: "-Infinity"}


def reference(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: reference(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != "" and v != [] and v != {}}
    if isinstance(value, list):
        return [reference(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else _NAMES[value]
    return value


LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=3), st.just(""), st.just(-0.0)
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=2), inner, max_size=4)
    ),
    max_leaves=30,
)


def _same(a: Any, b: Any) -> bool:
    """Equal, with -0.0 told from 0.0 and bools from ints (JSON writes them differently)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return math.copysign(1.0, a) == math.copysign(1.0, b) and a == b
    return bool(a == b)


@given(VALUES)
def test_omit_empty_follows_the_rule(value: Any) -> None:
    assert _same(omit_empty(value), reference(value))


@given(st.dictionaries(st.text(max_size=2), VALUES, max_size=5))
def test_omit_empty_of_a_message(message: dict[str, Any]) -> None:
    assert _same(omit_empty(message), reference(message))
