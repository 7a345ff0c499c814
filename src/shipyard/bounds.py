"""The integer ranges the metadata stores keep, defined once.

The SQL columns (``shipyard.store.sql.schema``) are 32-bit ``Integer`` (ids, versions, the audit
sequence, column counts) or 64-bit ``BigInteger`` (times in milliseconds, sizes, row counts, steps).
A number outside its column's range is refused before it reaches a store: SQLite raises
``OverflowError`` past 64 bits and PostgreSQL ``integer out of range`` past 32, and neither is the
caller's answer. The REST schemas bound every integer with these limits (a test walks the OpenAPI
document to keep it so); the SQL engine refuses any bound parameter outside 64 bits on both backends.
"""

from __future__ import annotations

from typing import Any

from shipyard.errors import InvalidInput

__all__ = ["INT32_MAX", "INT32_MIN", "INT64_MAX", "INT64_MIN", "check_int"]

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
"""Range of an ``Integer`` column: ids, versions, audit sequence numbers, column counts."""
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""Range of a ``BigInteger`` column: epoch milliseconds, sizes in bytes, row counts, metric steps."""


def check_int(what: str, value: Any, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
    """``value`` when it is an integer (not a bool) within ``[low, high]``; else ``InvalidInput``.

    Example:
        >>> check_int("version", 3, 1, INT32_MAX)
        3
        >>> check_int("version", 2**40, 1, INT32_MAX)
        Traceback (most recent call last):
        shipyard.errors.InvalidInput: version must be a whole number from 1 to 2147483647, got 1099511627776
    """
    if value.__class__ is not int or not low <= value <= high:
        shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:40]}… ({len(repr(value))} chars)"
        raise InvalidInput(f"{what} must be a whole number from {low} to {high}, got {shown}")
    return int(value)
