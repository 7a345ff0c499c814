"""Property tests for the search-filter language (shipyard.store.query)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.errors import FilterSyntaxError
from shipyard.store.query import (
    RUN_STATUSES,
    And,
    Comparison,
    Expr,
    Field,
    Not,
    Or,
    parse_field,
    parse_filter,
    parse_order_by,
    to_text,
)

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_STORABLE = st.characters(exclude_characters="\x00")  # filters refuse NUL (stores cannot keep it)
NUMBERS = st.one_of(INT64, st.floats(allow_nan=False, allow_infinity=False))
KEYS = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_./]{0,8}", fullmatch=True), st.text(_STORABLE, min_size=1, max_size=8)
)
ORDERING = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])
LISTS = st.sampled_from(["in", "not in"])
NULLS = st.sampled_from(["is null", "is not null"])


def _comparisons(
    field: Field, scalar_ops: list[str], values: st.SearchStrategy[object]
) -> st.SearchStrategy[Comparison]:
    single = st.tuples(st.sampled_from(scalar_ops), values)
    many = st.tuples(LISTS, st.lists(values, min_size=1, max_size=4).map(tuple))
    null = st.tuples(NULLS, st.none())
    return st.one_of(single, many, null).map(lambda pair: Comparison(field, pair[0], pair[1]))  # type: ignore[arg-type]


@st.composite
def comparisons(draw: st.DrawFn) -> Comparison:
    kind = draw(st.sampled_from(["metrics", "params", "tags", "attributes"]))
    numeric_ops = ["=", "!=", "<", "<=", ">", ">="]
    if kind == "metrics":
        return draw(_comparisons(Field("metrics", draw(KEYS)), numeric_ops, NUMBERS))
    if kind in ("params", "tags"):
        field = Field(kind, draw(KEYS))  # type: ignore[arg-type]
        as_text = _comparisons(field, [*numeric_ops, "like", "ilike"], st.text(_STORABLE, max_size=10))
        return draw(st.one_of(as_text, _comparisons(field, numeric_ops, NUMBERS)))
    attr = draw(
        st.sampled_from(
            [
                "start_time",
                "end_time",
                "experiment_id",
                "status",
                "run_id",
                "run_name",
                "user",
                "parent_run_id",
                "source",
            ]
        )
    )
    if attr in ("start_time", "end_time", "experiment_id"):
        return draw(_comparisons(Field("attributes", attr), numeric_ops, INT64))
    if attr == "status":
        return draw(_comparisons(Field("attributes", attr), ["=", "!="], st.sampled_from(RUN_STATUSES)))
    return draw(
        _comparisons(Field("attributes", attr), ["=", "!=", "like", "ilike"], st.text(_STORABLE, max_size=10))
    )


def _flat(cls: type[And] | type[Or], items: list[Expr]) -> Expr:
    out: list[Expr] = []
    for item in items:
        out.extend(item.items if isinstance(item, cls) else (item,))
    return cls(tuple(out))


EXPRS: st.SearchStrategy[Expr] = st.recursive(
    comparisons(),
    lambda children: st.one_of(
        st.lists(children, min_size=2, max_size=4).map(lambda items: _flat(And, items)),
        st.lists(children, min_size=2, max_size=4).map(lambda items: _flat(Or, items)),
        children.map(Not),
    ),
    max_leaves=12,
)


@settings(max_examples=400)
@given(EXPRS)
def test_to_text_round_trips(expr: Expr) -> None:
    text = to_text(expr)
    assert parse_filter(text) == expr
    assert to_text(parse_filter(text)) == text  # type: ignore[arg-type]


FRAGMENTS = st.sampled_from(
    [
        "metrics.auc",
        "m.`a b`",
        'p."x"',
        "tags.t",
        "attributes.status",
        "a.start_time",
        "run.id",
        "x.y",
        "and",
        "or",
        "not",
        "in",
        "like",
        "ilike",
        "is",
        "null",
        "(",
        ")",
        ",",
        "=",
        "!=",
        "<>",
        "<",
        ">=",
        "==",
        "'finished'",
        "'2026-01-01'",
        "'abc",
        '"q"',
        "`k`",
        "1",
        "-2.5",
        "1e9",
        "nan",
        "-",
        ".",
        "'",
        "`",
        "\\",
        "desc",
        "asc",
        "",
    ]
)
TEXTS = st.one_of(st.text(), st.lists(FRAGMENTS, max_size=12).map(" ".join), st.lists(FRAGMENTS).map("".join))


def _check(call: object, text: str) -> None:
    try:
        call(text)  # type: ignore[operator]
    except FilterSyntaxError as err:
        assert 0 <= err.position <= len(err.text)
        assert err.text == text
        assert f"at position {err.position}" in str(err)


@settings(max_examples=1000)
@given(TEXTS)
def test_parse_filter_only_raises_filter_syntax_error(text: str) -> None:
    _check(parse_filter, text)


@settings(max_examples=300)
@given(TEXTS)
def test_parse_field_and_order_by_only_raise_filter_syntax_error(text: str) -> None:
    _check(parse_field, text)
    _check(lambda item: parse_order_by([item]), text)


@given(EXPRS, st.integers(min_value=0, max_value=200), st.text(min_size=1, max_size=3))
def test_corrupted_filters_fail_cleanly(expr: Expr, cut: int, junk: str) -> None:
    text = to_text(expr)
    cut = min(cut, len(text))
    _check(parse_filter, text[:cut] + junk + text[cut:])
    _check(parse_filter, text[:cut])
