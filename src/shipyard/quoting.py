"""User values quoted in messages, cut to a readable size: one helper for every error that names a value.

A request can carry a 10 MB string, a million-item list or a list nested a thousand deep; an error message
that quotes it must stay short and must not recurse. :func:`quoted` shows a ``repr`` (so hidden characters
show as escapes) of at most ``limit`` characters, says how much was left out, and never walks deeper than
a few levels into a container.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Sized
from typing import Any

__all__ = ["QUOTE_LIMIT", "quoted", "quoted_list"]

QUOTE_LIMIT = 60
"""How many characters of a value a message shows by default."""

_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = _REPR.maxfrozenset = 4
_REPR.maxstring = _REPR.maxother = QUOTE_LIMIT
_REPR.maxlong = 40


def quoted(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` for a message, at most about ``limit`` characters, with a count of what was cut.

    Numpy scalars show as the Python values they hold. Containers show their first items only, a few levels
    deep (never a ``RecursionError``).

    Example:
        >>> quoted("abc")
        "'abc'"
        >>> quoted("x" * 10_000_000, limit=8)
        "'xxxxxxxx'… (10000000 characters)"
        >>> quoted(list(range(100)), limit=20)
        '[0, 1, 2, 3, ...]… (100 items)'
    """
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:  # a numpy scalar: its Python value
        value = item()
    if isinstance(value, str | bytes | bytearray):
        unit = "characters" if isinstance(value, str) else "bytes"
        if len(value) <= limit:
            return repr(value)
        return f"{repr(value[:limit])[: limit + 3]}… ({len(value)} {unit})"  # escapes make a repr longer
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        digits = len(str(abs(value))) if value.bit_length() < 13_000 else None  # str() stops at 4300 digits
        return f"an integer of {digits} digits" if digits else f"an integer of {value.bit_length()} bits"
    text = _REPR.repr(value)
    size = ""
    if isinstance(value, Sized):
        size = f" ({len(value)} item{'' if len(value) == 1 else 's'})"
    if len(text) > limit:
        return f"{text[:limit]}…{size or f' ({len(text)} characters)'}"
    return f"{text}…{size}" if size and "..." in text else text


def quoted_list(values: Iterable[Any], limit: int = 5) -> str:
    """The first ``limit`` values, each :func:`quoted`, and how many more there were.

    Example:
        >>> quoted_list(["a", "b", "c"], limit=2)
        "'a', 'b' (and 1 more)"
    """
    shown: list[str] = []
    more = 0
    for value in values:
        if len(shown) < limit:
            shown.append(quoted(value))
        else:
            more += 1
    return ", ".join(shown) + (f" (and {more} more)" if more else "")
