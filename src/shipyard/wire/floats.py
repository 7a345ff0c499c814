"""Floats on the wire: JSON has no literal for NaN or ±infinity, so they travel as the strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"``; finite floats travel as JSON numbers. The REST client
encodes with :func:`encode_float`; the server's schemas decode with :func:`decode_float`.
"""

from __future__ import annotations

import math
from typing import Any

from shipyard.quoting import quoted

__all__ = ["NON_FINITE", "decode_float", "encode_float"]

NON_FINITE: dict[str, float] = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
"""The three strings that stand for non-finite floats, and their values."""


def encode_float(value: float) -> float | str:
    """A float as JSON can carry it: itself when finite, else ``"NaN"``/``"Infinity"``/``"-Infinity"``.

    Example:
        >>> encode_float(0.5), encode_float(float("nan")), encode_float(float("-inf"))
        (0.5, 'NaN', '-Infinity')
    """
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def decode_float(value: Any) -> Any:
    """Undo :func:`encode_float` for one JSON value; other strings are refused (numbers pass through).

    Example:
        >>> decode_float("-Infinity"), decode_float(3)
        (-inf, 3)
    """
    if isinstance(value, str):
        try:
            return NON_FINITE[value]
        except KeyError:
            raise ValueError(
                f"{quoted(value, 40)} is not a number; metric values are JSON numbers or one of "
                "'NaN', 'Infinity', '-Infinity'"
            ) from None
    return value
