"""Validation: every rule kind is caught with exact counts and example rows; inputs and edge cases."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import polars as pl
import pytest

from shipyard.data.contracts import Contract
from shipyard.data.validation import ValidationFailed, ValidationReport, Violation, validate
from shipyard.errors import InvalidInput

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)

CONTRACT = Contract.from_yaml(
    """
name: orders
columns:
- {name: id, type: int, nullable: false, unique: true}
- {name: amount, type: float, min: 0, max: 100}
- {name: status, type: string, allowed_values: [new, paid]}
- {name: code, type: string, regex: '[A-Z]{2}\\d'}
- {name: ts, type: datetime}
table: {min_rows: 1, max_rows: 100, primary_key: [id], freshness_column: ts, max_age: 1d}
"""
)


def _good() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6],
            "amount": [0.0, 10.5, 100.0, 50.0, None, 1.0],
            "status": ["new", "paid", "new", None, "paid", "new"],
            "code": ["AB1", "CD2", None, "EF3", "GH4", "IJ5"],
            "ts": [dt.datetime(2024, 6, 1, 0, 0)] * 6,
        }
    )


def _bad() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [1, 2, 2, None, 5, 2],
            "amount": [-1.0, 10.5, 100.5, 50.0, None, 1000.0],
            "status": ["new", "lost", "new", None, "gone", "new"],
            "code": ["AB1", "ab1", None, "EF3x", "GH4", "IJ5"],
            "ts": [dt.datetime(2024, 5, 1)] * 6,
        }
    )


def _by_rule(report: ValidationReport) -> dict[tuple[str, str | None], Violation]:
    return {(v.rule, v.column): v for v in report.violations}


def test_clean_data_passes() -> None:
    report = validate(_good(), CONTRACT, now=NOW)
    assert report.ok and report.violations == []
    assert "OK" in str(report)


def test_every_rule_kind_is_reported_with_exact_counts_and_example_rows() -> None:
    found = _by_rule(validate(_bad(), CONTRACT, now=NOW))
    expected = {
        ("not_null", "id"): (1, [None], [3]),
        ("unique", "id"): (3, [2, 2, 2], [1, 2, 5]),
        ("range", "amount"): (3, [-1.0, 100.5, 1000.0], [0, 2, 5]),
        ("allowed_values", "status"): (2, ["lost", "gone"], [1, 4]),
        ("regex", "code"): (2, ["ab1", "EF3x"], [1, 3]),
        ("primary_key", None): (3, [{"id": 2}] * 3, [1, 2, 5]),
        ("primary_key_null", None): (1, [{"id": None}], [3]),
    }
    for key, (count, examples, rows) in expected.items():
        violation = found.pop(key)
        assert (violation.count, violation.examples, violation.rows) == (count, examples, rows), key
        assert violation.severity == "error"
    freshness = found.pop(("freshness", "ts"))
    assert "31 days" in freshness.message and freshness.count is None
    assert found == {}


def test_examples_stop_at_five() -> None:
    df = pl.DataFrame({"x": list(range(-20, 0))})
    contract = Contract(name="t", columns=[{"name": "x", "type": "int", "min": 0}])
    (violation,) = validate(df, contract).violations
    assert violation.count == 20
    assert violation.rows == [0, 1, 2, 3, 4] and violation.examples == [-20, -19, -18, -17, -16]


def test_schema_problems_missing_extra_and_dtype() -> None:
    df = pl.DataFrame({"id": ["1"], "amount": [1.0], "extra": [0], "ts": [dt.datetime(2024, 6, 1)]})
    report = validate(df, CONTRACT, now=NOW)
    found = _by_rule(report)
    assert found[("missing_column", "status")].severity == "error"
    assert found[("missing_column", "code")].severity == "error"
    assert found[("unexpected_column", "extra")].severity == "warning"
    assert "expected type 'int'" in found[("dtype", "id")].message
    assert not report.ok and len(report.warnings) == 1


def test_warnings_alone_keep_the_report_ok() -> None:
    report = validate(_good().with_columns(note=pl.lit("x")), CONTRACT, now=NOW)
    assert report.ok and [v.rule for v in report.violations] == ["unexpected_column"]


def test_row_count_bounds() -> None:
    contract = Contract(name="t", columns=[{"name": "x", "type": "int"}], table={"min_rows": 3})
    (violation,) = validate(pl.DataFrame({"x": [1]}), contract).violations
    assert violation.rule == "row_count" and violation.count == 1 and "outside [3, ]" in violation.message


def test_composite_primary_key() -> None:
    contract = Contract(
        name="t",
        columns=[{"name": "a", "type": "int"}, {"name": "b", "type": "string"}],
        table={"primary_key": ["a", "b"]},
    )
    df = pl.DataFrame({"a": [1, 1, 1, 2], "b": ["x", "y", "x", "x"]})
    (violation,) = validate(df, contract).violations
    assert violation.rows == [0, 2] and violation.examples == [{"a": 1, "b": "x"}] * 2


def test_freshness_with_a_date_column_and_timezones() -> None:
    contract = Contract(
        name="t", columns=[{"name": "d", "type": "date"}], table={"freshness_column": "d", "max_age": "2d"}
    )
    df = pl.DataFrame({"d": [dt.date(2024, 5, 30), dt.date(2024, 5, 31)]})
    assert validate(df, contract, now=NOW).ok
    assert not validate(df, contract, now=NOW + dt.timedelta(days=2)).ok
    aware = pl.DataFrame({"d": [dt.datetime(2024, 6, 1, tzinfo=dt.UTC)]})
    assert _by_rule(validate(aware, contract, now=NOW))[("dtype", "d")]


def test_all_null_column() -> None:
    contract = Contract(
        name="t",
        columns=[
            {"name": "x", "type": "float", "nullable": False, "min": 0},
            {"name": "ts", "type": "datetime"},
        ],
        table={"freshness_column": "ts", "max_age": "1h"},
    )
    df = pl.DataFrame({"x": [None, None, None]}, schema={"x": pl.Null}).with_columns(
        ts=pl.lit(None, dtype=pl.Datetime)
    )
    found = _by_rule(validate(df, contract, now=NOW))
    assert found.pop(("not_null", "x")).count == 3
    assert "all null" in found.pop(("freshness", "ts")).message
    assert found == {}


def test_empty_frame() -> None:
    empty = _good().clear()
    found = _by_rule(validate(empty, CONTRACT, now=NOW))
    assert set(found) == {("row_count", None), ("freshness", "ts")}
    assert found[("row_count", None)].count == 0


def test_unicode_column_names() -> None:
    contract = Contract(name="t", columns=[{"name": "température °C", "type": "float", "max": 50}])
    report = validate(pd.DataFrame({"température °C": [20.0, 60.0]}), contract)
    assert report.violations[0].column == "température °C" and report.violations[0].rows == [1]
    assert Contract.from_yaml(contract.to_yaml()) == contract


def test_duplicate_column_names_are_a_clear_error() -> None:
    frame = pd.DataFrame([[1, 2]], columns=["id", "id"])
    with pytest.raises(InvalidInput, match="duplicate column names"):
        validate(frame, CONTRACT)


def test_mixed_type_object_column_is_a_clear_error() -> None:
    frame = pd.DataFrame({"id": [1, 2], "status": ["new", 3]})
    with pytest.raises(InvalidInput, match="Column 'status' cannot be converted"):
        validate(frame, CONTRACT)


def test_category_columns_check_allowed_values_and_regex() -> None:
    contract = Contract(
        name="t", columns=[{"name": "c", "type": "category", "allowed_values": ["a", "b"], "regex": "[ab]"}]
    )
    df = pl.DataFrame({"c": pl.Series(["a", "z", "b"], dtype=pl.Categorical)})
    found = _by_rule(validate(df, contract))
    assert found[("allowed_values", "c")].rows == [1] and found[("regex", "c")].examples == ["z"]


@pytest.mark.parametrize("kind", ["pandas", "arrow", "lazy"])
def test_pandas_polars_and_arrow_inputs_give_the_same_report(kind: str) -> None:
    bad = _bad()
    frame = bad.to_pandas()
    frame["id"] = frame["id"].astype("Int64")  # numpy int64 cannot hold the null: keep the dtype nullable
    data = {"pandas": frame, "arrow": bad.to_arrow(), "lazy": bad.lazy()}[kind]
    assert validate(data, CONTRACT, now=NOW) == validate(bad, CONTRACT, now=NOW)  # type: ignore[arg-type]


def test_strict_raises_with_the_report() -> None:
    with pytest.raises(ValidationFailed) as info:
        validate(_bad(), CONTRACT, strict=True, now=NOW)
    assert info.value.code == "validation_failed" and info.value.http_status == 400
    assert isinstance(info.value, InvalidInput)
    assert info.value.report == validate(_bad(), CONTRACT, now=NOW)
    assert info.value.details["ok"] is False
    validate(_good(), CONTRACT, strict=True, now=NOW)  # no raise


def test_report_serializes_to_json_frame_and_text() -> None:
    report = validate(_bad(), CONTRACT, now=NOW)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False and data["n_rows"] == 6 and len(data["violations"]) == len(report.violations)
    assert data["contract_digest"] == CONTRACT.digest
    fresh = next(v for v in data["violations"] if v["rule"] == "freshness")
    assert fresh["examples"] == ["2024-05-01T00:00:00+00:00"]
    frame = report.to_frame()
    assert list(frame.columns) == ["rule", "column", "severity", "count", "examples", "rows", "message"]
    assert len(frame) == len(report.violations)
    text = str(report)
    assert "FAILED" in text and "[amount] range" in text and "row 0: -1.0" in text


def test_nan_is_a_value_not_a_null() -> None:
    contract = Contract(name="t", columns=[{"name": "x", "type": "float", "nullable": False, "max": 1}])
    (violation,) = validate(pl.DataFrame({"x": [0.5, float("nan")]}), contract).violations
    assert violation.rule == "range" and violation.rows == [1]


def test_examples_are_the_first_failing_rows_even_far_into_a_large_table() -> None:
    n = 300_000
    values = pl.int_range(0, n, eager=True)
    x = pl.select(pl.when(values.is_in([5, 20_000, 290_000, 299_999])).then(-1).otherwise(values)).to_series()
    df = pl.DataFrame({"x": x, "k": values % 299_998})  # k repeats only at rows 299,998 and 299,999
    contract = Contract(
        name="t",
        columns=[{"name": "x", "type": "int", "min": 0}, {"name": "k", "type": "int", "unique": True}],
    )
    found = _by_rule(validate(df, contract))
    assert found[("range", "x")].rows == [5, 20_000, 290_000, 299_999]
    assert found[("unique", "k")].rows == [0, 1, 299_998, 299_999]
