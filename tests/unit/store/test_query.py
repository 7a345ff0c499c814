"""Unit tests for the search-filter language (shipyard.store.query)."""

from __future__ import annotations

import pytest

from shipyard.errors import FilterSyntaxError, InvalidInput
from shipyard.store.query import (
    ATTRIBUTES,
    RUN_STATUSES,
    And,
    Comparison,
    Field,
    Not,
    Or,
    OrderKey,
    parse_field,
    parse_filter,
    parse_order_by,
    to_text,
)


def cmp(kind: str, key: str, op: str, value: object) -> Comparison:
    return Comparison(Field(kind, key), op, value)  # type: ignore[arg-type]


def m(key: str, op: str, value: object) -> Comparison:
    return cmp("metrics", key, op, value)


# --------------------------------------------------------------------------- basics


@pytest.mark.parametrize("text", [None, "", "   ", "\t\n "])
def test_empty_filter_is_none(text: str | None) -> None:
    assert parse_filter(text) is None


def test_brief_example_one() -> None:
    text = (
        "metrics.auc > 0.9 and params.model = 'rf' and tags.team = 'risk' and attributes.status = 'finished'"
    )
    assert parse_filter(text) == And(
        (
            m("auc", ">", 0.9),
            cmp("params", "model", "=", "rf"),
            cmp("tags", "team", "=", "risk"),
            cmp("attributes", "status", "=", "finished"),
        )
    )


def test_brief_example_two() -> None:
    text = '(metrics.loss < 0.1 or metrics.acc >= 0.95) and not tags.skip = "yes"'
    assert parse_filter(text) == And(
        (
            Or((m("loss", "<", 0.1), m("acc", ">=", 0.95))),
            Not(cmp("tags", "skip", "=", "yes")),
        )
    )


def test_public_constants() -> None:
    assert RUN_STATUSES == ("running", "finished", "failed", "killed")
    assert (
        frozenset(
            {
                "run_id",
                "run_name",
                "status",
                "start_time",
                "end_time",
                "user",
                "experiment_id",
                "parent_run_id",
                "source",
            }
        )
        == ATTRIBUTES
    )


# --------------------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("op_text", "op"),
    [("=", "="), ("==", "="), ("!=", "!="), ("<>", "!="), ("<", "<"), ("<=", "<="), (">", ">"), (">=", ">=")],
)
def test_comparison_operators(op_text: str, op: str) -> None:
    assert parse_filter(f"metrics.auc {op_text} 1") == m("auc", op, 1)
    assert parse_filter(f"metrics.auc{op_text}-1") == m("auc", op, -1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tags.owner like 'al%'", cmp("tags", "owner", "like", "al%")),
        ("tags.owner ILIKE 'AL%'", cmp("tags", "owner", "ilike", "AL%")),
        ("tags.t in ('a','b')", cmp("tags", "t", "in", ("a", "b"))),
        ("tags.t IN ( 'a' )", cmp("tags", "t", "in", ("a",))),
        ("params.p not in (1, 2)", cmp("params", "p", "not in", (1, 2))),
        ("params.p NOT IN (1, 2.5e0)", cmp("params", "p", "not in", (1, 2.5))),
        ("metrics.a in (1, 2.5)", m("a", "in", (1, 2.5))),
        ("tags.t is null", cmp("tags", "t", "is null", None)),
        ("tags.t IS NOT NULL", cmp("tags", "t", "is not null", None)),
        ("metrics.a is null", m("a", "is null", None)),
        ("attributes.end_time is null", cmp("attributes", "end_time", "is null", None)),
        ("attributes.run_name like 'x%'", cmp("attributes", "run_name", "like", "x%")),
        (
            "attributes.status in ('RUNNING', 'failed')",
            cmp("attributes", "status", "in", ("running", "failed")),
        ),
        ("attributes.status != 'Killed'", cmp("attributes", "status", "!=", "killed")),
    ],
)
def test_other_operators(text: str, expected: Comparison) -> None:
    assert parse_filter(text) == expected


def test_params_and_tags_compare_with_numbers_or_strings() -> None:
    assert parse_filter("params.lr > 0.001") == cmp("params", "lr", ">", 0.001)
    assert parse_filter("tags.n = 3") == cmp("tags", "n", "=", 3)
    assert parse_filter("params.d >= '2026'") == cmp("params", "d", ">=", "2026")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("-7", -7),
        ("1.5", 1.5),
        ("-0.25", -0.25),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("1E-3", 0.001),
        ("-2.5e+2", -250.0),
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
    ],
)
def test_numbers(text: str, value: float) -> None:
    parsed = parse_filter(f"metrics.x = {text}")
    assert parsed == m("x", "=", value)
    assert isinstance(parsed, Comparison)
    assert type(parsed.value) is type(value)


# --------------------------------------------------------------------------- fields


@pytest.mark.parametrize(
    ("group", "kind"),
    [
        ("metrics", "metrics"),
        ("metric", "metrics"),
        ("m", "metrics"),
        ("METRICS", "metrics"),
        ("params", "params"),
        ("param", "params"),
        ("p", "params"),
        ("tags", "tags"),
        ("tag", "tags"),
        ("t", "tags"),
        ("attributes", "attributes"),
        ("attribute", "attributes"),
        ("attr", "attributes"),
        ("a", "attributes"),
        ("run", "attributes"),
        ("Run", "attributes"),
    ],
)
def test_group_aliases(group: str, kind: str) -> None:
    key = "user" if kind == "attributes" else "k"
    assert parse_field(f"{group}.{key}") == Field(kind, key)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("attributes.name", "run_name"),
        ("attributes.id", "run_id"),
        ("attributes.RUN_ID", "run_id"),
        ("a.`status`", "status"),
        ('a."Start_Time"', "start_time"),
    ],
)
def test_attribute_aliases_and_case(text: str, key: str) -> None:
    assert parse_field(text) == Field("attributes", key)


@pytest.mark.parametrize("attr", sorted(ATTRIBUTES))
def test_every_attribute_is_a_field(attr: str) -> None:
    assert parse_field(f"attributes.{attr}") == Field("attributes", attr)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("metrics.val.auc", "val.auc"),
        ("metrics.a/b_c.9", "a/b_c.9"),
        ("metrics.`val-auc`", "val-auc"),
        ('metrics."my metric"', "my metric"),
        ("metrics.'single'", "single"),
        ("metrics.`a\\`b`", "a`b"),
        ("metrics.`a\\\\b`", "a\\b"),
        ("metrics.`été`", "été"),
        ("metrics.`1st`", "1st"),
        ("metrics.`and`", "and"),
        ("metrics.and", "and"),
        ("Metrics.CaseKept", "CaseKept"),
    ],
)
def test_keys_and_quoting(text: str, key: str) -> None:
    assert parse_field(text) == Field("metrics", key)
    assert parse_filter(f"{text} > 1") == m(key, ">", 1)


# --------------------------------------------------------------------------- strings


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'rf'", "rf"),
        ('"rf"', "rf"),
        ("''", ""),
        ("'it\\'s'", "it's"),
        ('"say \\"hi\\""', 'say "hi"'),
        ("'a\"b'", 'a"b'),
        ("'back\\\\slash'", "back\\slash"),
        ("'50\\%'", "50\\%"),  # a backslash before anything else is kept
        ("'  spaced  '", "  spaced  "),
        ("'and or not'", "and or not"),
    ],
)
def test_string_literals(literal: str, value: str) -> None:
    assert parse_filter(f"params.x = {literal}") == cmp("params", "x", "=", value)


# --------------------------------------------------------------------------- precedence


def test_and_binds_tighter_than_or() -> None:
    a, b, c = m("a", "=", 1), m("b", "=", 2), m("c", "=", 3)
    assert parse_filter("metrics.a = 1 or metrics.b = 2 and metrics.c = 3") == Or((a, And((b, c))))
    assert parse_filter("metrics.a = 1 and metrics.b = 2 or metrics.c = 3") == Or((And((a, b)), c))
    assert parse_filter("(metrics.a = 1 or metrics.b = 2) and metrics.c = 3") == And((Or((a, b)), c))


def test_not_binds_tighter_than_and() -> None:
    a, b = m("a", "=", 1), m("b", "=", 2)
    assert parse_filter("not metrics.a = 1 and metrics.b = 2") == And((Not(a), b))
    assert parse_filter("NOT (metrics.a = 1 and metrics.b = 2)") == Not(And((a, b)))
    assert parse_filter("not not metrics.a = 1") == Not(Not(a))


def test_flattening() -> None:
    a, b, c, d = (m(k, "=", 1) for k in "abcd")
    assert parse_filter("metrics.a = 1 and metrics.b = 1 and metrics.c = 1") == And((a, b, c))
    assert parse_filter("(metrics.a = 1 and metrics.b = 1) and (metrics.c = 1 and metrics.d = 1)") == And(
        (a, b, c, d)
    )
    assert parse_filter("metrics.a = 1 or (metrics.b = 1 or metrics.c = 1)") == Or((a, b, c))
    assert parse_filter("((metrics.a = 1))") == a


def test_keywords_are_case_insensitive() -> None:
    assert parse_filter("metrics.a = 1 AND NOT metrics.b = 2 Or metrics.c Is Not Null") == Or(
        (And((m("a", "=", 1), Not(m("b", "=", 2)))), m("c", "is not null", None))
    )


# --------------------------------------------------------------------------- attributes & dates


@pytest.mark.parametrize(
    ("literal", "millis"),
    [
        ("'2026-01-01'", 1767225600000),
        ("'2026-01-01T00:00:01'", 1767225601000),
        ("'2026-01-01T00:00:00.250Z'", 1767225600250),
        ("'2026-01-01 02:00:00+02:00'", 1767225600000),
        ("'1970-01-01'", 0),
        ("'1969-12-31T23:59:59Z'", -1000),
        ("1767225600000", 1767225600000),
        ("1767225600000.0", 1767225600000),
    ],
)
def test_time_attributes_become_epoch_millis(literal: str, millis: int) -> None:
    parsed = parse_filter(f"attributes.start_time >= {literal}")
    assert parsed == cmp("attributes", "start_time", ">=", millis)
    assert isinstance(parsed, Comparison)
    assert type(parsed.value) is int


def test_time_in_list_is_converted() -> None:
    assert parse_filter("a.end_time in ('1970-01-01', 5)") == cmp("attributes", "end_time", "in", (0, 5))


def test_experiment_id_is_an_integer() -> None:
    assert parse_filter("attributes.experiment_id = 3") == cmp("attributes", "experiment_id", "=", 3)
    assert parse_filter("attributes.experiment_id in ('3', 4)") == cmp(
        "attributes", "experiment_id", "in", (3, 4)
    )


def test_status_is_normalised() -> None:
    for status in RUN_STATUSES:
        assert parse_filter(f"run.status = '{status.upper()}'") == cmp("attributes", "status", "=", status)


# --------------------------------------------------------------------------- errors

ERRORS = [
    # (text, position, fragment of the reason)
    ("metrics.auc >", 13, "expected a value after '>'"),
    ("metrics.auc > ", 14, "expected a value after '>'"),
    ("metrics.auc > and", 14, "expected a value after '>'"),
    ("metricz.auc > 1", 0, "unknown field group 'metricz'; use metrics., params., tags. or attributes."),
    ("x.auc > 1", 0, "unknown field group 'x'"),
    ("auc > 1", 0, "needs a group"),
    ("metrics > 1", 7, "expected '.' and a key after 'metrics'"),
    ("tags.x = 'abc", 9, "unterminated string"),
    ('tags.x = "abc', 9, "unterminated string"),
    ("tags.x = 'abc\\'", 9, "unterminated string"),
    ("metrics.`abc > 1", 8, "unterminated quoted key"),
    ("metrics.a = 'x'", 12, "metrics can only be compared with numbers"),
    ("metrics.a in (1, 'x')", 17, "metrics can only be compared with numbers"),
    ("metrics.a like 'x%'", 10, "metrics can only be compared with numbers"),
    ("attributes.foo = 1", 11, "unknown attribute 'foo'; allowed: end_time, experiment_id"),
    ("run.`nope` = 1", 4, "unknown attribute 'nope'"),
    ("attributes.status = 'done'", 20, "must be one of running, finished, failed, killed"),
    ("attributes.status = 1", 20, "must be one of"),
    ("attributes.status > 'running'", 18, "does not support '>'"),
    ("attributes.status like 'r%'", 18, "does not support 'like'"),
    ("attributes.run_name < 'b'", 20, "does not support '<'"),
    ("attributes.start_time like '2026%'", 22, "does not support 'like'"),
    ("attributes.start_time > 'yesterday'", 24, "ISO date"),
    ("attributes.start_time > 1.5", 24, "whole number"),
    ("attributes.experiment_id = 'abc'", 27, "whole number"),
    ("attributes.user = 1", 18, "is a string"),
    ("metrics.val-auc > 1", 11, "quote keys with special characters"),
    ("metrics.1st > 1", 8, "must be quoted"),
    ("metrics..a > 1", 8, "must be quoted"),
    ("metrics.`` > 1", 8, "empty key"),
    ("metrics. > 1", 9, "expected a key after 'metrics.'"),
    ("(metrics.a > 1", 14, "to close the '(' at position 0"),
    ("(metrics.a > 1 metrics.b > 2)", 15, "expected 'and', 'or' or ')'"),
    ("metrics.a > 1)", 13, "unmatched ')'"),
    ("metrics.a > 1 metrics.b > 2", 14, "expected 'and' or 'or'"),
    ("metrics.a > 1 and", 17, "expected a field such as metrics.auc after 'and'"),
    ("metrics.a > 1 or or metrics.b > 1", 17, "expected a field"),
    ("and metrics.a > 1", 0, "expected a field"),
    ("()", 1, "expected a field"),
    (")", 0, "expected a field"),
    ("not", 3, "expected a field"),
    ("metrics.a", 9, "expected an operator"),
    ("metrics.a 1", 10, "expected an operator"),
    ("metrics.a ! 1", 10, "unexpected character '!'"),
    ("metrics.a = 1 ; drop table runs", 14, "unexpected character ';'"),
    ("metrics.a ~ 1", 10, "unexpected character '~'"),
    ("tags.a not like 'x'", 11, "expected 'in' after 'not'"),
    ("tags.a is nul", 10, "expected 'null' after 'is'"),
    ("tags.a is not", 13, "expected 'null' after 'not'"),
    ("tags.a = null", 9, "use 'is null'"),
    ("tags.a in ()", 11, "must not be empty"),
    ("tags.a in 'a'", 10, "expected '(' after 'in'"),
    ("tags.a in ('a' 'b')", 15, "expected ',' or ')'"),
    ("tags.a in ('a',)", 15, "expected a value after ','"),
    ("tags.a in ('a'", 14, "expected ',' or ')'"),
    ("tags.a in ('a', 1)", 16, "mixes strings and numbers"),
    ("tags.a like 1", 12, "'like' needs a string pattern"),
    ("tags.a ilike 1", 13, "'ilike' needs a string pattern"),
    ("tags.a = rf", 9, "quote strings"),
    ("tags.a = `rf`", 9, "backticks quote keys"),
    ("metrics.a = nan", 12, "nan and inf are not supported"),
    ("metrics.a = inf", 12, "nan and inf are not supported"),
    ("metrics.a = -inf", 12, "unexpected character '-'"),
    ("metrics.a = 99999999999999999999", 12, "out of range"),
    ("metrics.a = 9223372036854775808", 12, "out of range"),
    ("metrics.a = 1e999", 12, "out of range"),
    ("metrics.a = 1" + "0" * 5000, 12, "out of range"),
    ("(" * 100 + "metrics.a = 1" + ")" * 100, 64, "nested too deeply"),
    ("not " * 100 + "metrics.a = 1", 256, "nested too deeply"),
]


@pytest.mark.parametrize(("text", "position", "reason"), ERRORS)
def test_malformed_filters(text: str, position: int, reason: str) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter(text)
    err = info.value
    assert reason in err.reason
    assert err.position == position
    assert err.text == text
    assert f"at position {position}" in str(err)


def test_error_is_invalid_input_with_details() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_filter("metrics.auc >")
    assert info.value.code == "invalid_filter"
    assert info.value.details == {
        "text": "metrics.auc >",
        "position": 13,
        "reason": info.value.details["reason"],
    }


# --------------------------------------------------------------------------- order by / fields


def test_parse_order_by() -> None:
    assert parse_order_by(None) == []
    assert parse_order_by([]) == []
    assert parse_order_by(["metrics.auc desc", "attributes.start_time", "params.lr ASC", "m.`a b` Desc"]) == [
        OrderKey(Field("metrics", "auc"), True),
        OrderKey(Field("attributes", "start_time"), False),
        OrderKey(Field("params", "lr"), False),
        OrderKey(Field("metrics", "a b"), True),
    ]
    assert parse_order_by("run.name desc") == [OrderKey(Field("attributes", "run_name"), True)]


@pytest.mark.parametrize(
    ("item", "position", "reason"),
    [
        ("", 0, "expected a field"),
        ("  ", 2, "expected a field"),
        ("metrics.auc up", 12, "expected 'asc', 'desc'"),
        ("metrics.auc desc desc", 17, "expected 'asc', 'desc'"),
        ("auc desc", 0, "needs a group"),
        ("attributes.bogus", 11, "unknown attribute"),
        ("metrics.auc, metrics.loss", 11, "expected 'asc', 'desc'"),
    ],
)
def test_parse_order_by_errors(item: str, position: int, reason: str) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_order_by(["metrics.ok", item])
    assert info.value.text == item
    assert info.value.position == position
    assert reason in info.value.reason


def test_parse_field() -> None:
    assert parse_field("metrics.auc") == Field("metrics", "auc")
    assert parse_field("  p.model ") == Field("params", "model")
    assert parse_field("tags.`mlflow.user`") == Field("tags", "mlflow.user")
    for bad in ("", "metrics.auc desc", "metrics", "metricz.a", "metrics.a = 1"):
        with pytest.raises(FilterSyntaxError):
            parse_field(bad)


# --------------------------------------------------------------------------- rendering


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        (m("auc", ">", 0.9), "metrics.auc > 0.9"),
        (m("val-auc", ">=", 1), "metrics.`val-auc` >= 1"),
        (m("a`b\\", "=", 1), "metrics.`a\\`b\\\\` = 1"),
        (cmp("tags", "q", "=", "it's \\"), "tags.q = 'it\\'s \\\\'"),
        (cmp("tags", "t", "not in", ("a", "b")), "tags.t not in ('a', 'b')"),
        (cmp("tags", "t", "is not null", None), "tags.t is not null"),
        (Not(And((m("a", "<", 1), m("b", "<", 2)))), "not (metrics.a < 1 and metrics.b < 2)"),
        (
            Or((And((m("a", "<", 1), m("b", "<", 2))), Not(m("c", "=", 3)))),
            "(metrics.a < 1 and metrics.b < 2) or not metrics.c = 3",
        ),
        (
            And((Or((m("a", "<", 1), m("b", "<", 2))), m("c", "=", 3))),
            "(metrics.a < 1 or metrics.b < 2) and metrics.c = 3",
        ),
    ],
)
def test_to_text(expr: And | Or | Not | Comparison, text: str) -> None:
    assert to_text(expr) == text
    assert parse_filter(text) == expr


def test_to_text_rejects_empty_groups() -> None:
    with pytest.raises(ValueError):
        to_text(And(()))


def test_round_trip_of_examples() -> None:
    for text in [
        "metrics.auc > 0.9 and params.model = 'rf' and tags.team = 'risk' and attributes.status = 'finished'",
        '(metrics.loss < 0.1 or metrics.acc >= 0.95) and not tags.skip = "yes"',
        "attributes.start_time >= '2026-01-01' and a.experiment_id in (1, 2)",
        "metrics.x = -1.5e-300 or tags.`a b` ilike '%\\'%'",
    ]:
        expr = parse_filter(text)
        assert expr is not None
        assert parse_filter(to_text(expr)) == expr
