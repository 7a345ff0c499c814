"""shipyard.quoting: the one helper every message uses to quote a user's value, short and safe."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from shipyard.quoting import QUOTE_LIMIT, quoted, quoted_list


def deep(levels: int) -> Any:
    value: Any = []
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "count"),
    [
        ("x" * 10_000_000, "(10000000 characters)"),
        (b"\x00" * 5_000_000, "(5000000 bytes)"),
        (list(range(1_000_000)), "(1000000 items)"),
        ({f"k{i}": i for i in range(100_000)}, "(100000 items)"),
        (deep(100_000), "(1 item)"),
    ],
    ids=["string", "bytes", "list", "dict", "nested 100,000 deep"],
)
def test_huge_values_are_cut_with_a_count(value: Any, count: str) -> None:
    shown = quoted(value)
    assert len(shown) < QUOTE_LIMIT + 40, shown
    assert shown.endswith(count), shown


def test_short_values_are_their_repr() -> None:
    assert quoted("a\x00b") == repr("a\x00b")
    assert quoted(np.int64(7)) == "7"
    assert quoted(None) == "None"


def test_integers_of_any_size_are_named_by_their_digits() -> None:
    assert quoted(10**3000) == "an integer of 3001 digits"
    assert quoted(10**5000) == f"an integer of {(10**5000).bit_length()} bits"
    assert quoted(2**53 + 1) == "9007199254740993"


def test_a_list_of_values_shows_the_first_and_counts_the_rest() -> None:
    assert quoted_list(["a", "b", "c"], limit=2) == "'a', 'b' (and 1 more)"
    assert quoted_list(["x" * 1000]).endswith("(1000 characters)")
