"""The run-search filter language: tokenizer, recursive-descent parser and renderer.

``parse_filter`` turns text such as
``metrics.auc > 0.9 and (params.model = 'rf' or tags.team like 'ri%')`` into a small,
validated AST (``Comparison`` / ``And`` / ``Or`` / ``Not``) that the store compiles to
SQL. Every malformed input raises ``FilterSyntaxError`` with a 0-based ``position``.

Grammar (EBNF; keywords are case-insensitive, whitespace separates tokens)::

    filter     = [ or_expr ] ;                    (* empty / blank text -> None *)
    or_expr    = and_expr , { "or" , and_expr } ;
    and_expr   = not_expr , { "and" , not_expr } ;
    not_expr   = { "not" } , primary ;
    primary    = "(" , or_expr , ")" | comparison ;
    comparison = field , ( cmp_op , value
                         | ( "like" | "ilike" ) , string
                         | [ "not" ] , "in" , "(" , value , { "," , value } , ")"
                         | "is" , [ "not" ] , "null" ) ;
    cmp_op     = "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">=" ;
    field      = group , "." , ( bare_key | quoted ) ;
    group      = "metrics" | "metric" | "m" | "params" | "param" | "p"
               | "tags" | "tag" | "t" | "attributes" | "attribute" | "attr" | "a" | "run" ;
    bare_key   = ( letter | "_" ) , { letter | digit | "_" | "." | "/" } ;
    quoted     = "`" , chars , "`" | string ;     (* quoted keys may hold anything *)
    value      = string | number ;
    string     = "'" , chars , "'" | '"' , chars , '"' ;  (* \\ and \\<quote> escape *)
    number     = [ "-" ] , ( digits , [ "." , [ digits ] ] | "." , digits ) ,
                 [ ( "e" | "E" ) , [ "+" | "-" ] , digits ] ;

Limits (so a search stays fast and fits every backend; past them a ``FilterSyntaxError`` names the
limit): at most :data:`MAX_KEYS` distinct metric/param/tag keys in a filter and its ``order_by``
together (each is one join; SQLite joins at most 64 tables), :data:`MAX_TERMS` comparisons and
:data:`MAX_VALUES` values in all; no NUL character anywhere in the text.

Precedence: ``not`` > ``and`` > ``or``. ``And``/``Or`` are flattened (``a and b and c``
is one ``And`` of three items). Values are checked against the field: metrics need
numbers; params/tags take strings or numbers (a number means a numeric comparison);
``attributes.start_time``/``end_time`` take epoch milliseconds or an ISO-8601 string
(converted to int epoch ms, naive times are UTC); ``attributes.status`` must be a run
status (normalised to lower case); ``attributes.experiment_id`` is an integer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, NoReturn, TypeAlias

from shipyard.errors import FilterSyntaxError

__all__ = [
    "ATTRIBUTES",
    "MAX_KEYS",
    "MAX_TERMS",
    "MAX_VALUES",
    "RUN_STATUSES",
    "And",
    "Comparison",
    "Expr",
    "Field",
    "FieldKind",
    "Not",
    "Or",
    "OrderKey",
    "parse_field",
    "parse_filter",
    "order_to_text",
    "parse_order_by",
    "to_text",
]

FieldKind = Literal["metrics", "params", "tags", "attributes"]
_Scalar: TypeAlias = str | int | float
_Value: TypeAlias = _Scalar | tuple[_Scalar, ...] | None


@dataclass(frozen=True)
class Field:
    """A column of a run: ``kind`` is the canonical group, ``key`` the name within it."""

    kind: FieldKind
    key: str


@dataclass(frozen=True)
class Comparison:
    """``field op value``; ``value`` is a tuple for ``in``/``not in``, None for null checks."""

    field: Field
    op: str  # =, !=, <, <=, >, >=, like, ilike, in, not in, is null, is not null
    value: _Value


@dataclass(frozen=True)
class And:
    """Conjunction of two or more expressions (never directly nested)."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    """Disjunction of two or more expressions (never directly nested)."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    """Negation of an expression."""

    item: Expr


Expr: TypeAlias = Comparison | And | Or | Not


@dataclass(frozen=True)
class OrderKey:
    """One ``order_by`` entry."""

    field: Field
    descending: bool


_NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=", "in", "not in")
_STRING_OPS = ("=", "!=", "like", "ilike", "in", "not in")
_ATTR_OPS: dict[str, tuple[str, ...]] = {  # operators allowed per attribute (besides null checks)
    "run_id": _STRING_OPS,
    "run_name": _STRING_OPS,
    "status": ("=", "!=", "in", "not in"),
    "start_time": _NUMERIC_OPS,
    "end_time": _NUMERIC_OPS,
    "user": _STRING_OPS,
    "experiment_id": _NUMERIC_OPS,
    "parent_run_id": _STRING_OPS,
    "source": _STRING_OPS,
}
ATTRIBUTES: frozenset[str] = frozenset(_ATTR_OPS)
RUN_STATUSES: tuple[str, ...] = ("running", "finished", "failed", "killed")

_GROUP_ALIASES: tuple[tuple[FieldKind, str], ...] = (
    ("metrics", "metrics metric m"),
    ("params", "params param p"),
    ("tags", "tags tag t"),
    ("attributes", "attributes attribute attr a run"),
)
_GROUPS = {alias: kind for kind, aliases in _GROUP_ALIASES for alias in aliases.split()}
_ATTR_ALIASES = {"name": "run_name", "id": "run_id"}
_KEYWORDS = frozenset(["and", "or", "not", "like", "ilike", "in", "is", "null", "asc", "desc"])
_OP_CANON = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_LIKE = ("like", "ilike")
_NULL_OPS = ("is null", "is not null")
_TIME_ATTRS = frozenset({"start_time", "end_time"})
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_MAX_DEPTH = 64
MAX_KEYS = 60
"""Most distinct metric/param/tag keys one search may name (filter and order_by together)."""
MAX_TERMS = 256
"""Most comparisons in one filter (``a = 1 or b = 2`` has two)."""
MAX_VALUES = 10_000
"""Most values in one filter, counting every item of every ``in (...)`` list."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_WS = re.compile(r"\s+")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_./]*")
_BARE_KEY = _WORD  # a bare key is spelled like a word
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_OP = re.compile(r"==|!=|<>|<=|>=|=|<|>")
_DIGITS = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True)
class _Token:
    kind: str  # "word" "string" "backtick" "number" "op" "(" ")" "," "eof"
    text: str  # the raw source slice
    value: _Scalar | None  # decoded string / number
    start: int
    end: int


def _fail(message: str, text: str, position: int) -> NoReturn:
    raise FilterSyntaxError(message, text=text, position=position)


def _tokenize(text: str) -> list[_Token]:
    if "\x00" in text:
        _fail("the text holds a NUL character (\\x00); remove it", text, text.index("\x00"))
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        space = _WS.match(text, pos)
        if space:
            pos = space.end()
            continue
        tokens.append(_next_token(text, pos, tokens[-1] if tokens else None))
        pos = tokens[-1].end
    tokens.append(_Token("eof", "", None, len(text), len(text)))
    return tokens


def _next_token(text: str, pos: int, prev: _Token | None) -> _Token:
    ch = text[pos]
    if ch in "(),":
        return _Token(ch, ch, None, pos, pos + 1)
    if ch in "'\"`":
        return _quoted(text, pos)
    number = _NUMBER.match(text, pos)
    if number:
        return _number(text, number.group(), pos)
    for kind, pattern in (("op", _OP), ("word", _WORD)):
        found = pattern.match(text, pos)
        if found:
            return _Token(kind, found.group(), None, pos, found.end())
    hint = ""
    if prev is not None and prev.kind == "word" and prev.end == pos:
        hint = "; quote keys with special characters in backticks, e.g. metrics.`val-auc`"
    _fail(f"unexpected character {ch!r}{hint}", text, pos)


def _quoted(text: str, start: int) -> _Token:
    quote, chars, pos = text[start], [], start + 1
    while pos < len(text):
        ch = text[pos]
        if ch == "\\" and pos + 1 < len(text) and text[pos + 1] in (quote, "\\"):
            chars.append(text[pos + 1])
            pos += 2
        elif ch == quote:
            kind = "backtick" if quote == "`" else "string"
            return _Token(kind, text[start : pos + 1], "".join(chars), start, pos + 1)
        else:
            chars.append(ch)
            pos += 1
    what = "quoted key" if quote == "`" else "string"
    _fail(f"unterminated {what}: no closing {quote}", text, start)


def _number(text: str, raw: str, pos: int) -> _Token:
    value: int | float
    if any(c in raw for c in ".eE"):
        value = float(raw)
        if not math.isfinite(value):
            _fail(f"number {raw} is out of range", text, pos)
    else:
        digits = raw.lstrip("-").lstrip("0") or "0"
        value = int(digits) if len(digits) <= 19 else _INT_MAX + 1
        value = -value if raw.startswith("-") else value
        if not _INT_MIN <= value <= _INT_MAX:
            _fail(f"integer {raw} is out of range (64-bit)", text, pos)
    return _Token("number", raw, value, pos, pos + len(raw))


def _describe(tok: _Token) -> str:
    return "the end of the text" if tok.kind == "eof" else repr(tok.text)


def _combine(cls: type[And | Or], items: list[Expr]) -> Expr:
    if len(items) == 1:
        return items[0]
    flat: list[Expr] = []
    for item in items:
        flat.extend(item.items if isinstance(item, cls) else (item,))
    return cls(tuple(flat))


class _Parser:
    """Recursive-descent parser over the token list of one text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0
        self.terms = 0
        self.values = 0
        self.keys: set[Field] = set()

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        tok = self.tokens[self.index]
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return tok

    def after(self) -> str:
        return f" after {self.tokens[self.index - 1].text!r}" if self.index else ""

    def fail(self, message: str, position: int) -> NoReturn:
        _fail(message, self.text, position)

    def is_kw(self, tok: _Token, *words: str) -> bool:
        return tok.kind == "word" and tok.text.lower() in words

    def nest(self, levels: int, tok: _Token) -> None:
        self.depth += levels
        if self.depth > _MAX_DEPTH:
            self.fail(f"filter is nested too deeply (more than {_MAX_DEPTH} levels)", tok.start)

    def parse_or(self) -> Expr:
        items = [self.parse_and()]
        while self.is_kw(self.peek(), "or"):
            self.advance()
            items.append(self.parse_and())
        return _combine(Or, items)

    def parse_and(self) -> Expr:
        items = [self.parse_not()]
        while self.is_kw(self.peek(), "and"):
            self.advance()
            items.append(self.parse_not())
        return _combine(And, items)

    def parse_not(self) -> Expr:
        count = 0
        while self.is_kw(self.peek(), "not"):
            self.nest(1, self.advance())
            count += 1
        expr = self.parse_primary()
        for _ in range(count):
            expr = Not(expr)
        self.depth -= count
        return expr

    def parse_primary(self) -> Expr:
        opening = self.peek()
        if opening.kind != "(":
            return self.parse_comparison()
        self.advance()
        self.nest(1, opening)
        expr = self.parse_or()
        closing = self.peek()
        if closing.kind != ")":
            self.fail(
                f"expected 'and', 'or' or ')' to close the '(' at position {opening.start}, "
                f"got {_describe(closing)}",
                closing.start,
            )
        self.advance()
        self.depth -= 1
        return expr

    def expect_end(self, expected: str) -> None:
        tok = self.peek()
        if tok.kind == ")":
            self.fail("unmatched ')'", tok.start)
        if tok.kind != "eof":
            self.fail(f"expected {expected}, got {_describe(tok)}", tok.start)

    def parse_field(self) -> Field:
        tok = self.peek()
        if tok.kind != "word" or ("." not in tok.text and tok.text.lower() in _KEYWORDS):
            self.fail(f"expected a field such as metrics.auc{self.after()}, got {_describe(tok)}", tok.start)
        self.advance()
        group, dot, key = tok.text.partition(".")
        if not dot and group.lower() in _GROUPS:
            self.fail(f"expected '.' and a key after {group!r}, e.g. {group}.auc", tok.end)
        if not dot:
            self.fail(
                f"field {tok.text!r} needs a group, e.g. metrics.{tok.text} or params.{tok.text}", tok.start
            )
        kind = _GROUPS.get(group.lower())
        if kind is None:
            self.fail(
                f"unknown field group {group!r}; use metrics., params., tags. or attributes.", tok.start
            )
        key_pos = tok.start + len(group) + 1
        if not key:
            key, key_pos = self.quoted_key(tok)
        elif not _BARE_KEY.fullmatch(key):
            self.fail(f"key {key!r} must be quoted, e.g. {group}.`{key}`", key_pos)
        if kind == "attributes":
            key = self.attribute(key, key_pos)
        return Field(kind, key)

    def quoted_key(self, group_tok: _Token) -> tuple[str, int]:
        tok = self.peek()
        if tok.kind not in ("backtick", "string"):
            self.fail(
                f"expected a key after {group_tok.text!r}, e.g. {group_tok.text}auc or "
                f"{group_tok.text}`my-key`",
                tok.start,
            )
        self.advance()
        if not tok.value:
            self.fail("empty key", tok.start)
        return str(tok.value), tok.start

    def attribute(self, key: str, position: int) -> str:
        name = _ATTR_ALIASES.get(key.lower(), key.lower())
        if name not in ATTRIBUTES:
            allowed = ", ".join(sorted(ATTRIBUTES))
            self.fail(f"unknown attribute {key!r}; allowed: {allowed}", position)
        return name

    def count(self, field: Field, values: int, tok: _Token) -> None:
        """Keep the filter within :data:`MAX_TERMS`, :data:`MAX_VALUES` and :data:`MAX_KEYS`."""
        self.terms += 1
        self.values += values
        if field.kind != "attributes":
            self.keys.add(field)
        for used, limit, what in (
            (self.terms, MAX_TERMS, "comparisons"),
            (self.values, MAX_VALUES, "values"),
            (len(self.keys), MAX_KEYS, "distinct metric, param and tag keys"),
        ):
            if used > limit:
                self.fail(f"the filter has more than {limit} {what}, the most a search takes", tok.start)

    def parse_comparison(self) -> Comparison:
        start = self.peek()
        field = self.parse_field()
        op_tok = self.peek()
        op = self.parse_operator()
        self.check_operator(field, op, op_tok)
        if op in _NULL_OPS:
            self.count(field, 0, start)
            return Comparison(field, op, None)
        if op in ("in", "not in"):
            values = self.parse_list(field, op)
            self.count(field, len(values), start)
            return Comparison(field, op, values)
        value_tok = self.parse_value()
        self.count(field, 1, start)
        return Comparison(field, op, self.normalize(field, op, value_tok))

    def parse_operator(self) -> str:
        tok = self.advance()
        if tok.kind == "op":
            return _OP_CANON[tok.text]
        word = tok.text.lower() if tok.kind == "word" else ""
        if word in ("like", "ilike", "in"):
            return word
        if word == "not":
            return self.expect_keyword("in", "not in", "; to negate a condition write 'not <condition>'")
        if word == "is":
            if self.is_kw(self.peek(), "not"):
                self.advance()
                return self.expect_keyword("null", "is not null", "")
            return self.expect_keyword("null", "is null", "")
        self.fail(
            "expected an operator (=, !=, <, <=, >, >=, like, ilike, in, not in, is null) "
            f"after the field, got {_describe(tok)}",
            tok.start,
        )

    def expect_keyword(self, word: str, op: str, hint: str) -> str:
        tok = self.peek()
        if not self.is_kw(tok, word):
            self.fail(f"expected '{word}'{self.after()}, got {_describe(tok)}{hint}", tok.start)
        self.advance()
        return op

    def parse_value(self) -> _Token:
        tok = self.peek()
        if tok.kind in ("string", "number"):
            return self.advance()
        after = self.after()
        if self.is_kw(tok, "null"):
            self.fail("use 'is null' or 'is not null' to test for null", tok.start)
        if tok.kind == "backtick":
            self.fail(
                f"expected a value{after}; backticks quote keys, use 'single quotes' for strings", tok.start
            )
        hint = ""
        if tok.kind == "word":
            hint = f"; quote strings, e.g. '{tok.text}'"
            if tok.text.lower() in ("nan", "inf", "infinity"):
                hint = "; nan and inf are not supported"
        self.fail(f"expected a value{after}, got {_describe(tok)}{hint}", tok.start)

    def parse_list(self, field: Field, op: str) -> tuple[_Scalar, ...]:
        opening = self.advance()
        if opening.kind != "(":
            self.fail(f"expected '(' after '{op}', e.g. {op} ('a', 'b')", opening.start)
        if self.peek().kind == ")":
            self.fail(f"the list after '{op}' must not be empty", self.peek().start)
        values: list[_Scalar] = []
        while True:
            tok = self.parse_value()
            value = self.normalize(field, op, tok)
            if values and isinstance(value, str) != isinstance(values[0], str):
                self.fail("the list mixes strings and numbers", tok.start)
            values.append(value)
            sep = self.advance()
            if sep.kind == ")":
                return tuple(values)
            if sep.kind != ",":
                self.fail(f"expected ',' or ')' in the list, got {_describe(sep)}", sep.start)

    def check_operator(self, field: Field, op: str, tok: _Token) -> None:
        if field.kind == "metrics" and op in _LIKE:
            self.fail(f"metrics can only be compared with numbers; '{op}' needs a string field", tok.start)
        if field.kind == "attributes" and op not in _NULL_OPS and op not in _ATTR_OPS[field.key]:
            ops = ", ".join(_ATTR_OPS[field.key] + _NULL_OPS)
            self.fail(f"attributes.{field.key} does not support '{op}'; use {ops}", tok.start)

    def normalize(self, field: Field, op: str, tok: _Token) -> _Scalar:
        value = tok.value
        assert value is not None  # strings and numbers always carry a value
        if op in _LIKE and not isinstance(value, str):
            self.fail(f"'{op}' needs a string pattern, e.g. tags.owner {op} 'al%'", tok.start)
        if field.kind == "metrics" and isinstance(value, str):
            self.fail("metrics can only be compared with numbers", tok.start)
        if field.kind != "attributes":
            return value
        return self.attribute_value(field.key, value, tok)

    def attribute_value(self, key: str, value: _Scalar, tok: _Token) -> _Scalar:
        if key == "status":
            if not isinstance(value, str) or value.lower() not in RUN_STATUSES:
                self.fail(f"attributes.status must be one of {', '.join(RUN_STATUSES)}", tok.start)
            return value.lower()
        if key in _TIME_ATTRS:
            return self.epoch_ms(key, value, tok)
        if key == "experiment_id":
            if isinstance(value, str) and _DIGITS.fullmatch(value):
                return int(value)
            return self.whole_number(key, value, tok)
        if not isinstance(value, str):
            self.fail(f"attributes.{key} is a string; quote the value, e.g. '{tok.text}'", tok.start)
        return value

    def whole_number(self, key: str, value: _Scalar, tok: _Token) -> int:
        if isinstance(value, float) and value.is_integer() and _INT_MIN <= value < _INT_MAX:
            return int(value)
        if not isinstance(value, int):
            self.fail(f"attributes.{key} must be a whole number", tok.start)
        return value

    def epoch_ms(self, key: str, value: _Scalar, tok: _Token) -> int:
        if not isinstance(value, str):
            return self.whole_number(key, value, tok)
        try:
            moment = datetime.fromisoformat(value.strip())
        except (ValueError, OverflowError):
            self.fail(
                f"attributes.{key} needs epoch milliseconds or an ISO date such as "
                "'2026-01-01' or '2026-01-01T12:00:00Z'",
                tok.start,
            )
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return (moment - _EPOCH) // timedelta(milliseconds=1)


def parse_filter(text: str | None) -> Expr | None:
    """Parse a search filter into an AST; blank or None text gives None.

    Example:
        >>> parse_filter("metrics.auc > 0.9 and not tags.skip = 'yes'")
        And(items=(Comparison(field=Field(kind='metrics', key='auc'), op='>', value=0.9), \
Not(item=Comparison(field=Field(kind='tags', key='skip'), op='=', value='yes'))))

    Raises:
        FilterSyntaxError: the text is malformed; ``position`` points at the bad token.
    """
    if text is None or not text.strip():
        return None
    parser = _Parser(text)
    expr = parser.parse_or()
    parser.expect_end("'and' or 'or'")
    return expr


def parse_field(text: str) -> Field:
    """Parse one field reference such as ``metrics.auc`` or ``attributes.start_time``.

    Example:
        >>> parse_field("m.`val-auc`")
        Field(kind='metrics', key='val-auc')

    Raises:
        FilterSyntaxError: the text is not exactly one valid field.
    """
    parser = _Parser(text)
    field = parser.parse_field()
    parser.expect_end("the end of the field")
    return field


def parse_order_by(items: Sequence[str] | None) -> list[OrderKey]:
    """Parse ``order_by`` entries of the form ``<field> [asc|desc]`` (ascending by default).

    Example:
        >>> parse_order_by(["metrics.auc DESC", "attributes.start_time"])
        [OrderKey(field=Field(kind='metrics', key='auc'), descending=True), \
OrderKey(field=Field(kind='attributes', key='start_time'), descending=False)]

    Raises:
        FilterSyntaxError: an entry is malformed; ``text`` is that entry.
    """
    if items is None:
        return []
    if isinstance(items, str):
        items = [items]
    keys: list[OrderKey] = []
    for item in items:
        parser = _Parser(item)
        field = parser.parse_field()
        descending = parser.is_kw(parser.peek(), "desc")
        if parser.is_kw(parser.peek(), "asc", "desc"):
            parser.advance()
        parser.expect_end("'asc', 'desc' or the end of the order-by entry")
        keys.append(OrderKey(field, descending))
    return keys


def to_text(expr: Expr) -> str:
    """Render an AST as canonical filter text that ``parse_filter`` reads back unchanged.

    Example:
        >>> to_text(Or((Comparison(Field("metrics", "val-auc"), ">", 0.5),
        ...             Not(Comparison(Field("tags", "team"), "in", ("a", "b"))))))
        "metrics.`val-auc` > 0.5 or not tags.team in ('a', 'b')"

    Raises:
        ValueError: an ``And``/``Or`` has no items.
    """
    if isinstance(expr, Comparison):
        return _comparison_text(expr)
    if isinstance(expr, Not):
        return f"not {_operand_text(expr.item)}"
    if not expr.items:
        raise ValueError(f"{type(expr).__name__} needs at least one item")
    joiner = " and " if isinstance(expr, And) else " or "
    return joiner.join(_operand_text(item) for item in expr.items)


def order_to_text(keys: Sequence[OrderKey]) -> list[str]:
    """Render ``order_by`` entries that :func:`parse_order_by` reads back unchanged.

    Example:
        >>> order_to_text([OrderKey(Field("metrics", "val-auc"), descending=True)])
        ['metrics.`val-auc` desc']
    """
    return [f"{_field_text(k.field)} {'desc' if k.descending else 'asc'}" for k in keys]


def _field_text(field: Field) -> str:
    key = field.key
    if not _BARE_KEY.fullmatch(key):
        key = "`" + key.replace("\\", "\\\\").replace("`", "\\`") + "`"
    return f"{field.kind}.{key}"


def _operand_text(expr: Expr) -> str:
    return f"({to_text(expr)})" if isinstance(expr, And | Or) else to_text(expr)


def _comparison_text(comp: Comparison) -> str:
    field = _field_text(comp.field)
    if comp.value is None:
        return f"{field} {comp.op}"
    if isinstance(comp.value, tuple):
        return f"{field} {comp.op} ({', '.join(_scalar_text(v) for v in comp.value)})"
    return f"{field} {comp.op} {_scalar_text(comp.value)}"


def _scalar_text(value: _Scalar) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return repr(value)
