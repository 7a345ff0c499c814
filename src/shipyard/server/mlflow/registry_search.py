"""MLflow's search grammar for the model registry, with MLflow's semantics: filters, order_by, pages.

A filter is comparisons joined by ``AND`` (``name LIKE 'churn%' AND tags.team = 'risk'``), as MLflow's
``SearchModelUtils`` and ``SearchModelVersionUtils`` read them:

- registered models: ``name`` (``=``, ``!=``, ``LIKE``, ``ILIKE``, ``IN``, ``NOT IN``) and tags
  (``tags.k`` / ``tag.k``, key optionally in backticks or quotes: ``=``, ``!=``, ``LIKE``, ``ILIKE``);
- model versions: also ``run_id`` (string comparators, lists too), ``source_path`` and
  ``version_number`` (``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``).

``LIKE`` is case-sensitive (``%`` any run, ``_`` one character), ``ILIKE`` is not; a tag that is not
set matches nothing, except MLflow's ``mlflow.prompt.is_prompt`` tag, which MLflow's client adds to
every model search (``!= 'true'``) and which models without it match. Anything else is refused with
:class:`~shipyard.errors.FilterSyntaxError` naming the clause. Pages are offsets in MLflow's token
shape (base64 of ``{"offset": n}``).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from shipyard.errors import FilterSyntaxError, InvalidInput

__all__ = [
    "IS_PROMPT_TAG",
    "Clause",
    "Target",
    "matches",
    "next_page_token",
    "order_key",
    "page_offset",
    "parse_filter",
]

IS_PROMPT_TAG = "mlflow.prompt.is_prompt"
Target = Literal["registered_models", "model_versions"]

_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_TAG_OPS = ("=", "!=", "LIKE", "ILIKE")
_NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=")
_ATTRIBUTES: dict[Target, dict[str, tuple[str, ...]]] = {
    "registered_models": {"name": _STRING_OPS},
    "model_versions": {
        "name": _STRING_OPS,
        "run_id": _STRING_OPS,
        "source_path": ("=", "!=", "LIKE", "ILIKE"),
        "version_number": _NUMERIC_OPS,
    },
}
_LISTS = {"name", "run_id"}  # the attributes IN and NOT IN apply to
_ORDER_KEYS: dict[Target, tuple[str, ...]] = {
    "registered_models": ("name", "creation_timestamp", "last_updated_timestamp"),
    "model_versions": ("name", "version_number", "creation_timestamp", "last_updated_timestamp"),
}
_ALIASES = {"timestamp": "creation_timestamp"}  # MLflow's short name for ordering models

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<op>!=|<=|>=|=|<|>)
    | (?P<punct>[(),])
    | (?P<ident>(?:[A-Za-z_][A-Za-z0-9_]*\.)?(?:`[^`]+`|"[^"]+"|[A-Za-z_][A-Za-z0-9_.]*))
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Clause:
    """One comparison: ``kind`` ``attribute`` or ``tag``, the key, the operator and the value."""

    kind: Literal["attribute", "tag"]
    key: str
    op: str
    value: str | int | tuple[str, ...]


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"`":
        return text[1:-1].replace(text[0] * 2, text[0])
    return text


def parse_filter(text: str | None, target: Target) -> list[Clause]:
    """The clauses of an MLflow registry filter (an empty list for no filter).

    Example:
        >>> [(c.kind, c.key, c.op, c.value)
        ...  for c in parse_filter("name LIKE 'churn%' AND tags.`team` = 'risk'", "registered_models")]
        [('attribute', 'name', 'LIKE', 'churn%'), ('tag', 'team', '=', 'risk')]
    """
    if not text or not text.strip():
        return []
    return _Parser(text, target).clauses()


class _Parser:
    """Reads a filter token by token; every error names the position it stopped at."""

    def __init__(self, text: str, target: Target) -> None:
        self.text, self.target = text, target
        self.tokens: list[tuple[str, str, int]] = []  # (kind, text, position)
        source, pos = text.rstrip(), 0
        while pos < len(source):
            m = _TOKEN.match(source, pos)
            if m is None:
                start = len(source) - len(source[pos:].lstrip())
                raise FilterSyntaxError("Invalid filter: cannot read it from here", text=text, position=start)
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind), m.start(kind)))
            pos = m.end()
        self.i = 0

    def fail(self, message: str) -> FilterSyntaxError:
        at = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text.rstrip())
        return FilterSyntaxError(f"Invalid filter: {message}", text=self.text, position=at)

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.i][:2] if self.i < len(self.tokens) else ("", "")

    def clauses(self) -> list[Clause]:
        found = [self.clause()]
        while self.i < len(self.tokens):
            kind, word = self.peek()
            if kind != "ident" or word.upper() != "AND":
                raise self.fail(
                    f"expected AND after a comparison, got {word!r} (MLflow joins them with AND only)"
                )
            self.i += 1
            found.append(self.clause())
        return found

    def clause(self) -> Clause:
        kind, word = self.peek()
        if kind != "ident":
            raise self.fail("expected an attribute or tags.<key>")
        what, key = self.identifier(word)
        self.i += 1
        op = self.operator()
        allowed = _TAG_OPS if what == "tag" else _ATTRIBUTES[self.target][key]
        if op not in allowed:
            self.i -= 1
            raise self.fail(f"{key} takes the comparators {', '.join(allowed)}, not {op}")
        return Clause(what, key, op, self.value(key if what == "attribute" else "tag", op))

    def identifier(self, word: str) -> tuple[Literal["attribute", "tag"], str]:
        prefix, dot, rest = word.partition(".")
        if dot and prefix in ("tag", "tags"):
            return "tag", _unquote(rest)
        key = _unquote(rest) if dot and prefix in ("attribute", "attributes", "attr") else _unquote(word)
        if key not in _ATTRIBUTES[self.target]:
            valid = ", ".join(sorted(_ATTRIBUTES[self.target]))
            raise self.fail(f"{word!r} is not a searchable attribute here; use {valid} or tags.<key>")
        return "attribute", key

    def operator(self) -> str:
        kind, word = self.peek()
        if kind == "op":
            self.i += 1
            return word
        upper = word.upper() if kind == "ident" else ""
        if upper in ("LIKE", "ILIKE", "IN"):
            self.i += 1
            return upper
        if upper == "NOT" and self.i + 1 < len(self.tokens) and self.tokens[self.i + 1][1].upper() == "IN":
            self.i += 2
            return "NOT IN"
        raise self.fail("expected a comparator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN)")

    def value(self, key: str, op: str) -> str | int | tuple[str, ...]:
        if op in ("IN", "NOT IN"):
            if key not in _LISTS:
                raise self.fail("IN lists apply to name and run_id only")
            return self.string_list()
        kind, word = self.peek()
        if key == "version_number":
            if kind == "number" and "." not in word:
                number = int(word)
            elif kind == "string" and _unquote(word).isascii() and _unquote(word).isdigit():
                number = int(_unquote(word))
            else:
                raise self.fail("version_number is compared with a whole number")
            self.i += 1
            return number
        if kind != "string":
            raise self.fail(f"the value for {key} must be a quoted string (e.g. 'my-value')")
        self.i += 1
        return _unquote(word)

    def string_list(self) -> tuple[str, ...]:
        if self.peek() != ("punct", "("):
            raise self.fail("IN takes a list such as ('a', 'b')")
        self.i += 1
        items: list[str] = []
        while self.peek()[0] == "string":
            items.append(_unquote(self.peek()[1]))
            self.i += 1
            if self.peek() == ("punct", ","):
                self.i += 1
        if self.peek() != ("punct", ")") or not items:
            raise self.fail("IN takes a list of quoted strings such as ('a', 'b')")
        self.i += 1
        return tuple(items)


@functools.lru_cache(maxsize=256)
def _like(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _compare(lhs: Any, op: str, rhs: Any) -> bool:
    if op == "LIKE":
        return _like(rhs, False).fullmatch(lhs) is not None
    if op == "ILIKE":
        return _like(rhs, True).fullmatch(lhs) is not None
    if op == "IN":
        return bool(lhs in rhs)
    if op == "NOT IN":
        return bool(lhs not in rhs)
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return compare[op](lhs, rhs)


def matches(clauses: Sequence[Clause], attributes: dict[str, Any], tags: dict[str, str]) -> bool:
    """Whether an object with these attributes and tags satisfies every clause (MLflow's rules).

    Example:
        >>> matches(parse_filter("tags.`mlflow.prompt.is_prompt` != 'true'", "registered_models"), {}, {})
        True
    """
    for c in clauses:
        lhs = tags.get(c.key) if c.kind == "tag" else attributes.get(c.key)
        if lhs is None:
            not_a_prompt = (c.op, c.value) in (("=", "false"), ("!=", "true"))
            if c.kind == "tag" and c.key == IS_PROMPT_TAG and not_a_prompt:  # a model is not a prompt
                continue
            return False
        if not _compare(lhs, c.op, c.value):
            return False
    return True


def order_key(order_by: Sequence[str], target: Target) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A sort key over attribute dicts for MLflow's ``order_by`` (``"name ASC"``, ``"version_number
    DESC"``), with MLflow's tie-breakers: name ascending, then (versions) version descending.

    Example:
        >>> rows = [{"name": "b", "creation_timestamp": 1}, {"name": "a", "creation_timestamp": 1}]
        >>> [r["name"] for r in sorted(rows, key=order_key(["creation_timestamp DESC"], "registered_models"))]
        ['a', 'b']
    """
    keys: list[tuple[str, bool]] = []
    for item in order_by:
        parts = item.strip().split()
        if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1].upper() not in ("ASC", "DESC")):
            raise InvalidInput(f"Invalid order_by {item!r}: use '<key> [ASC|DESC]'")
        key = _ALIASES.get(parts[0], parts[0]) if target == "registered_models" else parts[0]
        key = key.removeprefix("attribute.")
        if key not in _ORDER_KEYS[target]:
            raise InvalidInput(
                f"Invalid order_by key {parts[0]!r}; valid keys are {', '.join(_ORDER_KEYS[target])}"
            )
        if any(k == key for k, _ in keys):
            raise InvalidInput(f"order_by names {key!r} twice: {list(order_by)}")
        keys.append((key, len(parts) == 1 or parts[1].upper() == "ASC"))
    if not any(k == "name" for k, _ in keys):
        keys.append(("name", True))
    if target == "model_versions" and not any(k == "version_number" for k, _ in keys):
        keys.append(("version_number", False))

    def key_of(row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(_Ordered(row.get(k), ascending) for k, ascending in keys)

    return key_of


class _Ordered:
    """A sort key part: None last whatever the direction, the rest ascending or descending."""

    __slots__ = ("ascending", "value")

    def __init__(self, value: Any, ascending: bool) -> None:
        self.value, self.ascending = value, ascending

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Ordered) and self.value == other.value

    def __lt__(self, other: _Ordered) -> bool:
        if self.value is None or other.value is None:
            return self.value is not None and other.value is None
        return bool(self.value < other.value) if self.ascending else bool(self.value > other.value)

    __hash__ = None  # type: ignore[assignment]


def page_offset(token: str | None) -> int:
    """The offset a page token (from :func:`next_page_token`) stands for; 0 without one."""
    if not token:
        return 0
    try:
        offset = json.loads(base64.b64decode(token, validate=True))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidInput(
            f"Invalid page_token {token[:40]!r}: pass the next_page_token of an earlier answer"
        ) from None
    if not isinstance(offset, int) or offset < 0:
        raise InvalidInput(
            f"Invalid page_token {token[:40]!r}: its offset is not a non-negative whole number"
        )
    return offset


def next_page_token(offset: int, page: int, total: int) -> str | None:
    """The token of the page after ``[offset, offset + page)``, or None when that was the last."""
    end = offset + page
    return base64.b64encode(json.dumps({"offset": end}).encode()).decode() if end < total else None
