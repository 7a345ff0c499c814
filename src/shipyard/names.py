"""What names, keys and stored text may hold: one rule for the SDK, the stores and the server.

- **Text** (param and tag values, descriptions, any string a store keeps) must not hold a NUL
  character: PostgreSQL cannot store one, so SQLite refuses it too (:func:`check_text`). The SQL
  engine applies this to every bound parameter on both backends; the SDK and the REST schemas check
  earlier, with the field's name in the message.
- **Keys** (metric, param and tag names) are text of 1 to ``MAX_KEY_LENGTH`` characters
  (:func:`check_key`).
- **Names** of things that are referenced later (experiments, datasets, contracts, models,
  deployments) must be referencable: not blank, no leading or trailing space, no control,
  line-separator or bidirectional-override characters (they hide what a name says), and no ``@``
  where ``@`` separates a name from a version or alias (``flights@v2``, ``churn@champion``):
  :func:`check_name`. Names that exist already stay readable; the rule applies at creation.
- **Aliases** of model versions start with a letter (so ``churn@7`` can only mean version 7) and
  hold letters, digits, ``_``, ``-`` or ``.``, at most 64 characters; ``latest`` is reserved
  (:func:`check_alias`).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from shipyard.entities import MAX_KEY_LENGTH
from shipyard.errors import InvalidInput

__all__ = ["BIDI_CONTROLS", "check_alias", "check_key", "check_name", "check_text", "has_nul"]

BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""Bidirectional formatting characters: they reorder how a name displays (``Trojan Source``)."""

_HIDDEN_CATEGORIES = ("Cc", "Zl", "Zp")  # control characters, line and paragraph separators
_SHOWN = 60


def _show(value: str) -> str:
    """A value for a message: repr (so hidden characters show as escapes), cut to a readable size."""
    text = repr(value)
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}… ({len(value)} characters)"


def has_nul(value: str) -> bool:
    """True when ``value`` holds a NUL character (``\\x00``).

    Example:
        >>> has_nul("a\\x00b"), has_nul("ab")
        (True, False)
    """
    return "\x00" in value


def check_text(what: str, value: Any) -> Any:
    """``value`` unchanged, unless it is a string holding a NUL character (then ``InvalidInput``).

    Example:
        >>> check_text("Param 'lr'", "0.1")
        '0.1'
        >>> check_text("Param 'lr'", "0.1\\x00")
        Traceback (most recent call last):
        shipyard.errors.InvalidInput: Param 'lr' '0.1\\x00' holds a NUL character (\\x00) at position 3; ...
    """
    if value.__class__ is str and "\x00" in value:
        raise InvalidInput(
            f"{what} {_show(value)} holds a NUL character (\\x00) at position {value.index(chr(0))}; "
            "stores cannot keep it (PostgreSQL refuses it), remove it"
        )
    return value


def check_key(what: str, key: Any) -> str:
    """A metric, param or tag key: a string of 1 to ``MAX_KEY_LENGTH`` characters without NUL.

    Example:
        >>> check_key("Metric key", "val/auc")
        'val/auc'
        >>> check_key("Metric key", "")
        Traceback (most recent call last):
        shipyard.errors.InvalidInput: Metric key '' must be a non-empty string of at most 255 characters
    """
    if key.__class__ is not str or not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            f"{what} {_show(key) if isinstance(key, str) else repr(key)[:_SHOWN]} must be a non-empty "
            f"string of at most {MAX_KEY_LENGTH} characters"
        )
    return str(check_text(what, key))


def _hidden(name: str) -> str | None:
    for i, ch in enumerate(name):
        if ch in BIDI_CONTROLS:
            return f"a bidirectional formatting character (U+{ord(ch):04X}) at position {i}"
        if unicodedata.category(ch) in _HIDDEN_CATEGORIES:
            return f"a control character (U+{ord(ch):04X}) at position {i}"
    return None


def check_name(what: str, name: Any, *, at_sign: bool = False) -> str:
    """A name others will reference: :func:`check_key`, and nothing that hides or splits it.

    Args:
        what: What is named, for the message ("Dataset name").
        name: The proposed name.
        at_sign: Allow ``@`` (for names never written as ``name@ref``, such as experiments).

    Example:
        >>> check_name("Dataset name", "flights")
        'flights'
        >>> check_name("Dataset name", "flights@v1")
        Traceback (most recent call last):
        shipyard.errors.InvalidInput: Dataset name 'flights@v1' cannot hold '@': ...
    """
    check_key(what, name)
    problem = _hidden(name)
    if problem is None and not name.strip():
        problem = "only spaces"
    elif problem is None and name != name.strip():
        problem = "leading or trailing spaces"
    if problem is not None:
        raise InvalidInput(f"{what} {_show(name)} cannot be referenced: it holds {problem}; choose another")
    if not at_sign and "@" in name:
        raise InvalidInput(
            f"{what} {_show(name)} cannot hold '@': it separates a name from its version or alias "
            "(name@v2, name@latest); choose a name without '@'"
        )
    return str(name)


_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


def check_alias(alias: Any) -> str:
    """A model alias: a letter, then letters, digits, ``_``, ``-`` or ``.`` (64 at most), not ``latest``.

    Example:
        >>> check_alias("champion")
        'champion'
        >>> check_alias("7")
        Traceback (most recent call last):
        shipyard.errors.InvalidInput: Alias '7' is not valid: ...
    """
    if not isinstance(alias, str) or not _ALIAS.match(alias) or alias == "latest":
        raise InvalidInput(
            f"Alias {alias!r} is not valid: use a letter then letters, digits, '_', '-' or '.' "
            "(at most 64 characters; 'latest' is reserved), e.g. champion"
        )
    return alias
