"""MLflow's search filters and ``order_by``, read with MLflow's grammar and meaning, into Shipyard's
query AST (:mod:`shipyard.store.query`).

The MLflow-compatible API of ``shipyard server`` takes the filters MLflow's client sends
(``mlflow.search_runs(filter_string=...)``) and answers what MLflow's own server would: this module
reads them as MLflow's ``SearchUtils`` does and translates each clause to Shipyard's
``Comparison`` / ``And`` / ``OrderKey``, which the store then runs.

Grammar (MLflow's; keywords are case-insensitive, entity names and attribute keys are not)::

    filter      = [ clause , { "AND" , clause } ] ;        (* AND only: no OR, NOT, parentheses *)
    clause      = identifier , comparator , value
                | identifier , "IS" , [ "NOT" ] , "NULL"    (* params and tags *)
                | identifier , [ "NOT" ] , "IN" , "(" , string , { "," , string } , [ "," ] , ")" ;
    identifier  = [ entity , "." ] , key ;                  (* no entity: an attribute *)
    entity      = "metric" | "metrics" | "parameter" | "parameters" | "param" | "params"
                | "tag" | "tags" | "attribute" | "attributes" | "attr" | "run" | "dataset" | "datasets" ;
    key         = word , { "." , word } | "`" , chars , "`" | '"' , chars , '"' ;
    comparator  = "=" | "!=" | "<" | "<=" | ">" | ">=" | "LIKE" | "ILIKE" ;
    value       = "'" , chars , "'" | '"' , chars , '"' | number ;

What each entity allows (MLflow's tracking store checks the same):

- ``metrics.<key>``: ``= != < <= > >=`` against a number.
- ``params.<key>``, ``tags.<key>``: ``= != LIKE ILIKE`` against a quoted string, ``IS [NOT] NULL``.
- attributes ``run_id`` (also ``IN``/``NOT IN`` a list of strings), ``run_name`` (also spelled
  ``run name``), ``status``, ``user_id``, ``artifact_uri``: ``= != LIKE ILIKE`` against a string;
  ``start_time``, ``end_time``, ``created`` (= ``start_time``): ``= != < <= > >=`` against a number.
- ``dataset.*`` filters (MLflow's dataset inputs) are refused: Shipyard has no such records to search.

String values are taken as written between their quotes (MLflow unescapes nothing; ``IN`` lists are
read as Python string literals, as MLflow does). ``LIKE`` is case-sensitive, ``ILIKE`` is not.

Where MLflow's meaning differs from Shipyard's own filter language, MLflow's is kept:

- ``attributes.run_name`` and the system tags ``mlflow.runName``, ``mlflow.user``,
  ``mlflow.source.name`` and ``mlflow.parentRunId`` are the run's ``name``, ``user``, ``source``
  and ``parent_run_id``, compared as tags are: a run whose field is empty does not have the tag
  (it never matches ``!=`` and it matches ``IS NULL``).
- ``status`` compares MLflow's upper-case names (``RUNNING`` … ``KILLED``, and ``SCHEDULED``,
  which no Shipyard run has) with MLflow's ``=``, ``!=``, ``LIKE`` and ``ILIKE``; the matching
  statuses become one ``status in (...)``.
- ``artifact_uri`` is ``mlflow-artifacts:/<experiment_id>/<run_id>/artifacts`` (what the server
  answers for every run): ``=`` and ``!=`` work, ``LIKE``/``ILIKE`` are refused.
- ``start_time > 1.5`` and the like compare with the whole milliseconds they bound.

Known differences: a ``NaN`` metric never matches (MLflow matches it with ``!=``); ``order_by`` a
param or tag whose values are numbers sorts them as numbers (MLflow sorts text); a filter MLflow's
SQL tokenizer mis-reads (a bare key that is an SQL keyword, a missing ``AND``) is read as written or
refused with a message.

Experiments (``search_experiments``) have their own filter over ``name``, ``experiment_id``,
``creation_time``, ``last_update_time`` and ``tags.<key>``, matched in memory with
:func:`experiment_matches` (the experiments of one server are few). MLflow 3's logged models
(``search_logged_models``) have theirs too (:func:`parse_logged_model_filter`), matched by the server.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NoReturn, TypeAlias

from shipyard.errors import FilterSyntaxError
from shipyard.store.query import And, Comparison, Expr, Field, Not, Or, OrderKey

__all__ = [
    "MLFLOW_STATUSES",
    "SYSTEM_TAGS",
    "ExperimentRecord",
    "MlflowComparison",
    "artifact_uri",
    "experiment_matches",
    "experiment_order",
    "parse_experiment_filter",
    "parse_logged_model_filter",
    "parse_run_filter",
    "run_filter",
    "run_order_by",
    "sort_experiments",
]

EntityType = Literal["metric", "parameter", "tag", "attribute", "dataset"]
Value: TypeAlias = str | int | float | tuple[str, ...] | None

MLFLOW_STATUSES: tuple[str, ...] = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
"""MLflow's run statuses; Shipyard's are the same lower-cased, without ``SCHEDULED``."""

SYSTEM_TAGS: Mapping[str, str] = {
    "mlflow.runName": "run_name",
    "mlflow.user": "user",
    "mlflow.source.name": "source",
    "mlflow.parentRunId": "parent_run_id",
}
"""MLflow's system tags that are fields of a Shipyard run (tag → attribute of the query language)."""

_ENTITIES: Mapping[str, EntityType] = {
    "metric": "metric",
    "metrics": "metric",
    "parameter": "parameter",
    "parameters": "parameter",
    "param": "parameter",
    "params": "parameter",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
    "dataset": "dataset",
    "datasets": "dataset",
}
_IDENTIFIERS = ["metric", "parameter", "tag", "attribute", "dataset"]
_NUMERIC_ATTRIBUTES = frozenset({"start_time", "end_time", "created", "Created"})
_RUN_ATTRIBUTES = frozenset(
    {"artifact_uri", "end_time", "run_id", "run_name", "start_time", "status", "user_id"}
    | {"created", "Created", "run name", "Run name", "Run Name"}
)
_ORDER_ATTRIBUTES = frozenset(
    {
        "artifact_uri",
        "end_time",
        "run_id",
        "run_name",
        "start_time",
        "status",
        "user_id",
        "created",
        "Created",
    }
)
_ALIASES = {"created": "start_time", "Created": "start_time", "run name": "run_name", "Run name": "run_name"}
_ALIASES["Run Name"] = "run_name"
_METRIC_OPS = frozenset({">", ">=", "!=", "=", "<", "<="})
_TEXT_OPS = frozenset({"!=", "=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL"})
_STRING_ATTRIBUTE_OPS = frozenset({"!=", "=", "LIKE", "ILIKE", "IN", "NOT IN"})
_EXPERIMENT_ENTITIES: Mapping[str, EntityType] = {"attribute": "attribute", "tag": "tag", "tags": "tag"}
_EXPERIMENT_ATTRIBUTES = frozenset({"name", "experiment_id", "creation_time", "last_update_time"})
_EXPERIMENT_NUMERIC = frozenset({"creation_time", "last_update_time"})

# Tokens, as MLflow's SQL tokenizer (sqlparse) reads them.
_WS = re.compile(r"\s+")
_SINGLE = re.compile(r"'(''|\\'|[^'])*'")
_DOUBLE = re.compile(r'"(""|\\"|[^"])*"|(""|".*?[^\\]")')
_BACKTICK = re.compile(r"`(``|[^`])*`")
_NUMBER = re.compile(
    r"(?P<hex>-?0x[\dA-F]+)"
    r"|(?P<exp>-?\d+(\.\d+)?E-?\d+)"
    r"|(?P<float>(?![_A-ZÀ-Ü])-?(\d+(\.\d*)|\.\d+)(?![_A-ZÀ-Ü]))"
    r"|(?P<int>(?![_A-ZÀ-Ü])-?\d+(?![_A-ZÀ-Ü]))",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W\d]\w*")
_OPERATOR = re.compile(r"[<>=~!]+")
_KEYWORDS = frozenset({"AND", "OR", "NOT", "IS", "NULL", "IN", "LIKE", "ILIKE", "RLIKE", "ASC", "DESC"})


@dataclass(frozen=True)
class MlflowComparison:
    """One clause as MLflow reads it: entity ``type``, ``key`` (aliases kept: ``created``, ``run
    name``), ``comparator`` upper-cased, and ``value`` (a float for metrics; int or float for
    numeric attributes; a tuple for ``IN``; None for ``IS NULL``)."""

    type: EntityType
    key: str
    comparator: str
    value: Value


@dataclass(frozen=True)
class _Token:
    kind: str  # ident, word, string, number, op, list, end
    text: str
    start: int
    value: Value = None
    number_kind: str = ""  # int, float, exp, hex


@dataclass(frozen=True)
class _Grammar:
    """What one search (runs or experiments) allows."""

    entities: Mapping[str, EntityType]
    attributes: frozenset[str]
    numeric: frozenset[str]
    list_keys: frozenset[str]
    null_types: tuple[str, ...]
    what: str = "runs"
    order_attributes: frozenset[str] = field(default_factory=frozenset)


_RUNS = _Grammar(
    _ENTITIES,
    _RUN_ATTRIBUTES,
    _NUMERIC_ATTRIBUTES,
    frozenset({"run_id"}),
    ("tag", "parameter"),
    "runs",
    _ORDER_ATTRIBUTES,
)
_EXPERIMENTS = _Grammar(
    _EXPERIMENT_ENTITIES,
    _EXPERIMENT_ATTRIBUTES,
    _EXPERIMENT_NUMERIC,
    frozenset({"experiment_id"}),
    ("tag",),
    "experiments",
    _EXPERIMENT_ATTRIBUTES,
)
_LOGGED_MODEL_NUMERIC = frozenset(
    {"creation_timestamp", "creation_time", "last_updated_timestamp", "last_updated_time"}
)
_LOGGED_MODEL_STRINGS = frozenset({"name", "model_id", "model_type", "status", "source_run_id"})
_LOGGED_MODELS = _Grammar(
    {k: v for k, v in _ENTITIES.items() if v != "dataset" and k != "run"},
    _LOGGED_MODEL_STRINGS | _LOGGED_MODEL_NUMERIC,
    _LOGGED_MODEL_NUMERIC,
    _LOGGED_MODEL_STRINGS,
    ("tag", "parameter"),
    "logged models",
    _LOGGED_MODEL_STRINGS | _LOGGED_MODEL_NUMERIC,
)


def _fail(message: str, text: str, position: int) -> NoReturn:
    raise FilterSyntaxError(message, text=text, position=position)


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def tokens(self) -> list[_Token]:
        out: list[_Token] = []
        while True:
            tok = self.next()
            out.append(tok)
            if tok.kind == "end":
                return out

    def next(self) -> _Token:
        text = self.text
        space = _WS.match(text, self.pos)
        if space:
            self.pos = space.end()
        start = self.pos
        if start >= len(text):
            return _Token("end", "", start)
        ch = text[start]
        if ch == "(":
            return self.parenthesis(start)
        if ch in '`"' or _WORD.match(text, start):
            return self.identifier(start)
        if ch == "'":
            found = _SINGLE.match(text, start)
            if not found:
                _fail("unterminated string: no closing '", text, start)
            self.pos = found.end()
            return _Token("string", found.group(), start, found.group()[1:-1])
        number = _NUMBER.match(text, start)
        if number:
            self.pos = number.end()
            return _Token("number", number.group(), start, None, number.lastgroup or "")
        operator = _OPERATOR.match(text, start)
        if operator:
            self.pos = operator.end()
            return _Token("op", operator.group(), start)
        _fail(f"unexpected character {ch!r}", text, start)

    def parenthesis(self, start: int) -> _Token:
        depth, pos, text = 0, start, self.text
        while pos < len(text):
            ch = text[pos]
            if ch in "'\"":
                found = (_SINGLE if ch == "'" else _DOUBLE).match(text, pos)
                if not found:
                    _fail(f"unterminated string: no closing {ch}", text, pos)
                pos = found.end()
                continue
            depth += {"(": 1, ")": -1}.get(ch, 0)
            pos += 1
            if depth == 0:
                self.pos = pos
                return _Token("list", text[start:pos], start)
        _fail("unmatched '(': no closing ')'", text, start)

    def identifier(self, start: int) -> _Token:
        text, pos = self.text, start
        while True:
            ch = text[pos] if pos < len(text) else ""
            part = (_BACKTICK if ch == "`" else _DOUBLE if ch == '"' else _WORD).match(text, pos)
            if not part:
                if ch in '`"':
                    _fail(f"unterminated quoted name: no closing {ch}", text, pos)
                _fail("expected a name after '.'", text, pos)
            pos = part.end()
            if not (
                pos < len(text) and text[pos] == "." and pos + 1 < len(text) and not text[pos + 1].isdigit()
            ):
                break
            pos += 1
        self.pos = pos
        raw = text[start:pos]
        if "." not in raw and raw.upper() in _KEYWORDS and raw[0] not in '`"':
            return _Token("word", raw, start)
        return _Token("ident", raw, start)


def _is_quoted(value: str, quote: str) -> bool:
    return len(value) >= 2 and value.startswith(quote) and value.endswith(quote)


def _strip_quotes(value: str) -> str:
    return value[1:-1] if _is_quoted(value, "'") or _is_quoted(value, '"') else value


def _trim_backticks(value: str) -> str:
    return value[1:-1] if _is_quoted(value, "`") else value


class _Parser:
    def __init__(self, text: str, grammar: _Grammar) -> None:
        self.text = text
        self.grammar = grammar
        self.tokens = _Lexer(text).tokens()
        self.index = 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        tok = self.tokens[self.index]
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return tok

    def fail(self, message: str, tok: _Token) -> NoReturn:
        _fail(message, self.text, tok.start)

    def is_word(self, tok: _Token, *words: str) -> bool:
        return tok.kind == "word" and tok.text.upper() in words

    def parse(self) -> list[MlflowComparison]:
        clauses: list[MlflowComparison] = []
        if self.peek().kind == "end":
            return clauses
        while True:
            clauses.append(self.clause())
            tok = self.peek()
            if tok.kind == "end":
                return clauses
            if not self.is_word(tok, "AND"):
                if self.is_word(tok, "OR"):
                    self.fail(
                        "Invalid clause(s) in filter string: 'OR'; MLflow's search joins clauses with AND",
                        tok,
                    )
                self.fail(f"Invalid clause(s) in filter string: expected AND, got {tok.text!r}", tok)
            self.advance()

    def identifier(self, raw: str, tok: _Token, attributes: frozenset[str]) -> tuple[EntityType, str]:
        """MLflow's ``_get_identifier``: split at the first dot, entity and key as MLflow reads them."""
        entity, dot, key = raw.partition(".")
        if not dot:
            entity, key = "attribute", raw
        entity = _trim_backticks(entity)
        kind = self.grammar.entities.get(entity)
        if kind is None:
            valid = _IDENTIFIERS if self.grammar is _RUNS else list(dict.fromkeys(self.grammar.entities))
            self.fail(f"Invalid entity type '{entity}'. Valid values are {valid}", tok)
        key = _trim_backticks(_strip_quotes(key))
        if kind == "attribute" and key not in attributes:
            self.fail(f"Invalid attribute key '{key}' specified. Valid keys are {sorted(attributes)}", tok)
        if kind == "dataset":
            self.fail(
                "Dataset filters (dataset.name, dataset.digest, dataset.context) are not supported by "
                "Shipyard's MLflow API: it keeps no searchable dataset inputs; filter on tags instead",
                tok,
            )
        return kind, key

    def clause(self) -> MlflowComparison:
        first = self.advance()
        if first.kind != "ident":
            got = repr(first.text) if first.text else "the end of the filter"
            self.fail(
                f"Invalid clause(s) in filter string: expected a key such as metrics.acc, got {got}", first
            )
        kind, key = self.identifier(first.text, first, self.grammar.attributes)
        comparator, op_tok = self.comparator()
        if comparator in ("IS NULL", "IS NOT NULL"):
            if kind not in self.grammar.null_types:
                what = "tags and params" if "parameter" in self.grammar.null_types else "tags"
                self.fail(
                    f"IS NULL / IS NOT NULL is only supported for {what}, not for '{kind}' '{key}'", op_tok
                )
            return MlflowComparison(kind, key, comparator, None)
        self.check_comparator(kind, key, comparator, op_tok)
        value_tok = self.advance()
        return MlflowComparison(kind, key, comparator, self.value(kind, key, comparator, value_tok))

    def comparator(self) -> tuple[str, _Token]:
        tok = self.advance()
        if tok.kind == "op":
            return tok.text, tok
        if self.is_word(tok, "LIKE", "ILIKE", "RLIKE", "IN"):
            return tok.text.upper(), tok
        if self.is_word(tok, "IS"):
            negated = self.is_word(self.peek(), "NOT")
            if negated:
                self.advance()
            if not self.is_word(self.peek(), "NULL"):
                self.fail(
                    "Invalid comparison clause: expected NULL after IS" + (" NOT" if negated else ""),
                    self.peek(),
                )
            self.advance()
            return ("IS NOT NULL" if negated else "IS NULL"), tok
        if self.is_word(tok, "NOT") and self.is_word(self.peek(), "IN", "LIKE", "ILIKE"):
            return "NOT " + self.advance().text.upper(), tok
        self.fail(
            f"Invalid comparison clause: expected a comparator after the key, got {tok.text or 'the end'!r}",
            tok,
        )

    def check_comparator(self, kind: EntityType, key: str, comparator: str, tok: _Token) -> None:
        if kind == "metric":
            allowed = _METRIC_OPS
        elif kind in ("parameter", "tag"):
            allowed = _TEXT_OPS
        elif key in self.grammar.numeric:
            allowed = _METRIC_OPS
        elif self.grammar is _EXPERIMENTS and key == "experiment_id":
            allowed = frozenset({"=", "!=", "IN", "NOT IN"})
        elif self.grammar is _EXPERIMENTS:
            allowed = frozenset({"=", "!=", "LIKE", "ILIKE"})
        else:
            allowed = _STRING_ATTRIBUTE_OPS
        if comparator not in allowed:
            self.fail(f"Invalid comparator '{comparator}' not one of '{set(sorted(allowed))}'", tok)

    def value(self, kind: EntityType, key: str, comparator: str, tok: _Token) -> Value:
        if comparator in ("IN", "NOT IN"):
            if tok.kind != "list":
                self.fail(
                    f"Invalid comparison clause: expected a list such as ('a', 'b') after {comparator}", tok
                )
            if kind != "attribute" or key not in self.grammar.list_keys:
                self.fail(
                    f"Only {sorted(self.grammar.list_keys)} attributes support comparison with a list "
                    "of quoted string values.",
                    tok,
                )
            return self.string_list(tok)
        if tok.kind == "list":
            self.fail(f"A list is only allowed after IN or NOT IN, not after '{comparator}'", tok)
        if kind == "metric" or (kind == "attribute" and key in self.grammar.numeric):
            if tok.kind != "number" or tok.number_kind == "hex":
                what = "metric" if kind == "metric" else f"numeric attribute: {key}"
                self.fail(f"Expected numeric value type for {what}. Found {tok.text or 'nothing'}", tok)
            return self.number(kind, key, tok)
        if tok.kind == "string" or (tok.kind == "ident" and _is_quoted(tok.text, '"')):
            return _strip_quotes(tok.text)
        if tok.kind == "ident" and tok.text[0] not in '`"':
            self.fail(
                f"Parameter value is either not quoted or unidentified quote types used for string value "
                f"{tok.text}. Use either single or double quotes.",
                tok,
            )
        what = {"parameter": "parameter", "tag": "tag"}.get(kind, "attributes")
        self.fail(
            f"Expected a quoted string value for {what} (e.g. 'my-value'). Got value {tok.text or 'nothing'}",
            tok,
        )

    def number(self, kind: EntityType, key: str, tok: _Token) -> int | float:
        value = float(tok.text) if kind == "metric" or tok.number_kind != "int" else int(tok.text)
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(f"Number {tok.text} is out of range", tok)
        return value

    def string_list(self, tok: _Token) -> tuple[str, ...]:
        try:
            parsed = ast.literal_eval(tok.text) if len(tok.text) <= 100_000 else None
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            parsed = None
        parsed = parsed if isinstance(parsed, tuple) else (parsed,)
        if not parsed or parsed == (None,) or not all(isinstance(v, str) for v in parsed):
            self.fail(
                "While parsing a list in the query, expected a non-empty list of string values, "
                "e.g. ('a', 'b')",
                tok,
            )
        return tuple(str(v) for v in parsed)


def parse_run_filter(text: str | None) -> list[MlflowComparison]:
    """Read a run filter as MLflow does (``SearchUtils.parse_search_filter`` and its store's checks).

    Example:
        >>> parse_run_filter("metrics.acc > 0.9 and params.`max depth` = '3'")
        [MlflowComparison(type='metric', key='acc', comparator='>', value=0.9), \
MlflowComparison(type='parameter', key='max depth', comparator='=', value='3')]

    Raises:
        FilterSyntaxError: the text does not parse, or a clause compares a key in a way MLflow refuses.
    """
    if not text:
        return []
    if not text.strip():
        _fail(f"Invalid filter {text!r}. Could not be parsed.", text, 0)
    return _Parser(text, _RUNS).parse()


def parse_experiment_filter(text: str | None) -> list[MlflowComparison]:
    """Read an experiment filter as MLflow does (``SearchExperimentsUtils``).

    Example:
        >>> parse_experiment_filter("name LIKE 'churn%' AND tags.team = 'risk'")
        [MlflowComparison(type='attribute', key='name', comparator='LIKE', value='churn%'), \
MlflowComparison(type='tag', key='team', comparator='=', value='risk')]
    """
    if not text or not text.strip():
        return []
    clauses = _Parser(text, _EXPERIMENTS).parse()
    for c in clauses:
        if c.type == "attribute" and c.key in _EXPERIMENT_NUMERIC and isinstance(c.value, float):
            _fail(f"Invalid value for numeric attribute '{c.key}': {str(c.value)!r}", text, 0)
        if c.type == "attribute" and c.key == "experiment_id":
            values = c.value if isinstance(c.value, tuple) else (c.value,)
            for v in values:
                if not isinstance(v, str) or not re.fullmatch(r"-?\d+", v.strip()):
                    _fail(f"Invalid experiment ID '{v}'. Experiment ID must be a valid integer.", text, 0)
    return clauses


def parse_logged_model_filter(text: str | None) -> list[MlflowComparison]:
    """Read a logged-model filter as MLflow does (``mlflow.search_logged_models``): attributes
    ``name``, ``model_id``, ``model_type``, ``status``, ``source_run_id`` (``= != LIKE ILIKE IN
    NOT IN``) and ``creation_timestamp`` / ``last_updated_timestamp`` (numbers), ``metrics.<key>``,
    ``params.<key>`` and ``tags.<key>``.

    Example:
        >>> parse_logged_model_filter("name = 'model' AND metrics.acc >= 0.9")
        [MlflowComparison(type='attribute', key='name', comparator='=', value='model'), \
MlflowComparison(type='metric', key='acc', comparator='>=', value=0.9)]
    """
    if not text or not text.strip():
        return []
    return _Parser(text, _LOGGED_MODELS).parse()


# -- runs: MLflow's clauses as Shipyard's query AST -----------------------------------------------
_NEVER = Comparison(Field("attributes", "run_id"), "is null", None)  # no run matches
_ARTIFACT_URI = re.compile(r"mlflow-artifacts:/(\d{1,10})/([0-9A-Za-z_\-]{1,32})/artifacts")


def artifact_uri(experiment_id: int, run_id: str) -> str:
    """The artifact URI the server answers for a run: its artifacts through the server's proxy.

    Example:
        >>> artifact_uri(3, "a1b2")
        'mlflow-artifacts:/3/a1b2/artifacts'
    """
    return f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"


def _like(value: str, pattern: str, ignore_case: bool) -> bool:
    regex = re.escape(pattern).replace("%", ".*").replace("_", ".")
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def _matches(lhs: str, comparator: str, value: Value) -> bool:
    """MLflow's comparison of two strings (or a string and a list)."""
    if comparator in ("IN", "NOT IN"):
        assert isinstance(value, tuple)
        return (lhs in value) == (comparator == "IN")
    assert isinstance(value, str)
    if comparator in ("LIKE", "ILIKE"):
        return _like(lhs, value, comparator == "ILIKE")
    return (lhs == value) if comparator == "=" else (lhs != value)


def _attr(key: str) -> Field:
    return Field("attributes", key)


def _as_tag(name: str, comparator: str, value: Value) -> Expr:
    """A run field that MLflow holds as a tag: an empty field is an absent tag."""
    f = _attr(name)
    if comparator == "IS NULL":
        return Or((Comparison(f, "is null", None), Comparison(f, "=", "")))
    present = Comparison(f, "!=", "")
    if comparator == "IS NOT NULL":
        return present
    if comparator == "=" and value != "":
        return Comparison(f, "=", value)
    if comparator == "=":
        return _NEVER
    return And((Comparison(f, comparator.lower(), value), present))


def _status(comparator: str, value: Value) -> Expr | None:
    statuses = tuple(
        s.lower() for s in MLFLOW_STATUSES if s != "SCHEDULED" and _matches(s, comparator, value)
    )
    if not statuses:
        return _NEVER
    return None if len(statuses) == 4 else Comparison(_attr("status"), "in", statuses)


def _artifact_uri(comparator: str, value: Value, text: str) -> Expr | None:
    if comparator not in ("=", "!="):
        _fail("attributes.artifact_uri supports = and != on Shipyard (not LIKE or ILIKE)", text, 0)
    found = _ARTIFACT_URI.fullmatch(str(value))
    if found is None:
        return _NEVER if comparator == "=" else None
    same = And(
        (
            Comparison(_attr("experiment_id"), "=", int(found.group(1))),
            Comparison(_attr("run_id"), "=", found.group(2)),
        )
    )
    return same if comparator == "=" else Not(same)


def _time(key: str, comparator: str, value: int | float) -> Expr | None:
    """A time bound in whole milliseconds (Shipyard keeps integer times)."""
    if isinstance(value, int) or value.is_integer():
        return Comparison(_attr(key), comparator, int(value))
    if comparator in ("<", "<="):
        return Comparison(_attr(key), "<=", math.floor(value))
    if comparator in (">", ">="):
        return Comparison(_attr(key), ">=", math.ceil(value))
    if comparator == "=":
        return _NEVER
    return None if key == "start_time" else Comparison(_attr(key), "is not null", None)


def _translate(c: MlflowComparison, text: str) -> Expr | None:
    """One MLflow clause as a Shipyard expression (None: every run matches)."""
    op = c.comparator.lower()
    if c.type == "metric":
        return Comparison(Field("metrics", c.key), op, c.value)
    if c.type in ("parameter", "tag"):
        if c.type == "tag" and c.key in SYSTEM_TAGS:
            return _as_tag(SYSTEM_TAGS[c.key], c.comparator, c.value)
        kind: Literal["params", "tags"] = "params" if c.type == "parameter" else "tags"
        return Comparison(Field(kind, c.key), op, c.value)
    key = _ALIASES.get(c.key, c.key)
    if key in ("start_time", "end_time"):
        assert isinstance(c.value, (int, float))
        return _time(key, c.comparator, c.value)
    if key == "run_name":
        return _as_tag("run_name", c.comparator, c.value)
    if key == "status":
        return _status(c.comparator, c.value)
    if key == "artifact_uri":
        return _artifact_uri(c.comparator, c.value, text)
    if key == "user_id":
        return Comparison(_attr("user"), op, c.value)
    return Comparison(_attr("run_id"), op, c.value)


def run_filter(text: str | None) -> Expr | None:
    """An MLflow run filter as a Shipyard expression (None: no condition), with MLflow's meaning.

    Example:
        >>> run_filter("tags.mlflow.user = 'ann' AND attributes.status != 'RUNNING'")
        And(items=(Comparison(field=Field(kind='attributes', key='user'), op='=', value='ann'), \
Comparison(field=Field(kind='attributes', key='status'), op='in', value=('finished', 'failed', 'killed'))))

    Raises:
        FilterSyntaxError: the text does not parse or asks what MLflow (or Shipyard) refuses.
    """
    items: list[Expr] = []
    for clause in parse_run_filter(text):
        expr = _translate(clause, text or "")
        if expr is not None:
            items.extend(expr.items if isinstance(expr, And) else (expr,))
    if not items:
        return None
    return items[0] if len(items) == 1 else And(tuple(items))


def _order_entry(item: str, grammar: _Grammar) -> tuple[EntityType, str, bool]:
    """MLflow's ``_parse_order_by_string``: a key, then ``ASC`` or ``DESC`` (ascending by default)."""
    parser = _Parser(item, grammar)
    tok = parser.advance()
    if tok.kind != "ident":
        parser.fail(f"Invalid order_by clause '{item}'. Could not be parsed.", tok)
    kind, key = parser.identifier(tok.text, tok, grammar.order_attributes)
    ascending = True
    if parser.is_word(parser.peek(), "ASC", "DESC"):
        ascending = parser.advance().text.upper() == "ASC"
    if parser.peek().kind != "end":
        parser.fail(f"Invalid order_by clause '{item}'. Could not be parsed.", parser.peek())
    return kind, key, ascending


def run_order_by(items: Sequence[str] | None) -> list[OrderKey]:
    """MLflow's ``order_by`` of a run search as Shipyard order keys (MLflow then orders by
    ``start_time DESC, run_id``, which Shipyard's search appends too).

    Example:
        >>> run_order_by(["metrics.`val loss` ASC", "tags.mlflow.runName DESC"])
        [OrderKey(field=Field(kind='metrics', key='val loss'), descending=False), \
OrderKey(field=Field(kind='attributes', key='run_name'), descending=True)]

    Raises:
        FilterSyntaxError: an entry does not parse, orders by a dataset, or repeats a key.
    """
    keys: list[OrderKey] = []
    seen: set[tuple[str, str]] = set()
    for item in items or ():
        kind, key, ascending = _order_entry(item, _RUNS)
        if (kind, key) in seen:
            _fail(f"`order_by` contains duplicate fields: {list(items or ())}", item, 0)
        seen.add((kind, key))
        desc = not ascending
        if kind == "metric":
            keys.append(OrderKey(Field("metrics", key), desc))
        elif kind == "parameter":
            keys.append(OrderKey(Field("params", key), desc))
        elif kind == "tag":
            field_ = _attr(SYSTEM_TAGS[key]) if key in SYSTEM_TAGS else Field("tags", key)
            keys.append(OrderKey(field_, desc))
        else:
            key = _ALIASES.get(key, key)
            if key == "artifact_uri":
                keys += [OrderKey(_attr("experiment_id"), desc), OrderKey(_attr("run_id"), desc)]
            else:
                keys.append(OrderKey(_attr({"user_id": "user"}.get(key, key)), desc))
    return keys


# -- experiments ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExperimentRecord:
    """What an experiment search sees of one experiment (tags include ``mlflow.note.content``)."""

    experiment_id: int
    name: str
    creation_time: int
    last_update_time: int
    tags: Mapping[str, str] = field(default_factory=dict)


def _experiment_clause(record: ExperimentRecord, c: MlflowComparison) -> bool:
    if c.type == "tag":
        if c.comparator in ("IS NULL", "IS NOT NULL"):
            return (c.key in record.tags) == (c.comparator == "IS NOT NULL")
        found = record.tags.get(c.key)
        return found is not None and _matches(found, c.comparator, c.value)
    if c.key == "experiment_id":
        values = c.value if isinstance(c.value, tuple) else (c.value,)
        hit = record.experiment_id in {int(str(v)) for v in values}
        return hit == (c.comparator in ("=", "IN"))
    if c.key == "name":
        return _matches(record.name, c.comparator, c.value)
    lhs = record.creation_time if c.key == "creation_time" else record.last_update_time
    assert isinstance(c.value, (int, float))
    return {
        "=": lhs == c.value,
        "!=": lhs != c.value,
        "<": lhs < c.value,
        "<=": lhs <= c.value,
        ">": lhs > c.value,
        ">=": lhs >= c.value,
    }[c.comparator]


def experiment_matches(record: ExperimentRecord, clauses: Sequence[MlflowComparison]) -> bool:
    """Whether an experiment matches every clause of :func:`parse_experiment_filter`.

    Example:
        >>> churn = ExperimentRecord(1, "churn", 5, 5)
        >>> experiment_matches(churn, parse_experiment_filter("name ILIKE 'CH%'"))
        True
    """
    return all(_experiment_clause(record, c) for c in clauses)


def experiment_order(order_by: Sequence[str] | None) -> list[tuple[str, bool]]:
    """MLflow's order of an experiment search as (attribute, ascending) pairs: by default
    ``creation_time DESC, experiment_id ASC``; ``experiment_id DESC`` breaks ties otherwise.

    Example:
        >>> experiment_order(["name"])
        [('name', True), ('experiment_id', False)]
    """
    keys: list[tuple[str, bool]] = []
    for item in order_by or ["creation_time DESC", "experiment_id ASC"]:
        kind, key, ascending = _order_entry(item, _EXPERIMENTS)
        if kind != "attribute":
            _fail(f"Invalid order_by entity: {kind}", item, 0)
        keys.append((key, ascending))
    if not any(key == "experiment_id" for key, _ in keys):
        keys.append(("experiment_id", False))
    return keys


def sort_experiments(
    records: Sequence[ExperimentRecord], order: Sequence[tuple[str, bool]]
) -> list[ExperimentRecord]:
    """``records`` in the order :func:`experiment_order` gives (stable sorts, last key first)."""
    out = list(records)
    for key, ascending in reversed(order):
        out.sort(key=lambda r: getattr(r, key), reverse=not ascending)  # noqa: B023 - used at once
    return out
