"""Signatures: inference, the fast check's conversions, and one error that lists every problem."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from shipyard.data.contracts import Contract
from shipyard.errors import InvalidInput, SignatureMismatch
from shipyard.registry.signature import (
    ColumnSpec,
    OutputSpec,
    Signature,
    infer_signature,
    signature_from_contract,
)


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "n": np.array([1, 2, 3], dtype="int64"),
            "x": [0.5, np.nan, 2.0],
            "s": ["a", None, "c"],
            "k": pd.Categorical(["u", "v", "u"]),
            "t": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]).astype("datetime64[ns]"),
            "b": [True, False, True],
        }
    )


@pytest.fixture
def sig() -> Signature:
    return infer_signature(_frame(), np.array([0, 1, 0]))


def _problems(exc: pytest.ExceptionInfo[SignatureMismatch]) -> dict[str, str]:
    return {p["column"]: p["problem"] for p in exc.value.details["problems"]}


def test_inferred_types_and_nullability_follow_the_data(sig: Signature) -> None:
    got = {c.name: (c.type, c.nullable) for c in sig.inputs}
    assert got == {
        "n": ("int64", False),
        "x": ("float64", True),
        "s": ("string", True),
        "k": ("category", False),
        "t": ("datetime64[ns]", False),
        "b": ("bool", False),
    }
    assert sig.output == OutputSpec("int64", (-1,))


def test_float_columns_are_always_nullable() -> None:
    spec = infer_signature(pd.DataFrame({"x": [1.0, 2.0]})).inputs[0]
    assert spec.nullable
    assert ColumnSpec("x", "float32", nullable=False).nullable


def test_signature_round_trips_through_its_dict(sig: Signature) -> None:
    assert Signature.from_dict(sig.to_dict()) == sig
    assert sig.to_dict()["inputs"][0] == {"name": "n", "type": "int64", "nullable": False}


def test_a_matching_frame_is_returned_untouched(sig: Signature) -> None:
    df = _frame().fillna({"s": "z"})
    assert sig.check(df) is df
    assert sig.check(df) is df  # the cached plan too


def test_ints_given_for_a_float_column_become_floats() -> None:
    sig = Signature([ColumnSpec("x", "float64"), ColumnSpec("y", "float32")])
    out = sig.check(pd.DataFrame({"x": [1, 2], "y": np.array([3, 4], dtype="int32")}))
    assert out["x"].dtype == np.float64 and out["y"].dtype == np.float32
    assert out["x"].tolist() == [1.0, 2.0]


def test_whole_floats_fit_an_int_column_and_fractions_do_not() -> None:
    sig = Signature([ColumnSpec("n", "int64", nullable=False)])
    assert sig.check(pd.DataFrame({"n": [1.0, 2.0]}))["n"].dtype == np.int64
    with pytest.raises(SignatureMismatch, match="non-integer values like 1.5"):
        sig.check(pd.DataFrame({"n": [1.5, 2.0]}))


def test_every_problem_is_listed_in_one_error(sig: Signature) -> None:
    df = _frame().drop(columns=["k"]).assign(extra=1)
    df["x"] = ["abc", "1.0", "zz"]
    df["n"] = pd.array([1, None, 3], dtype="Int64")
    with pytest.raises(SignatureMismatch) as exc:
        sig.check(df)
    problems = _problems(exc)
    assert problems["k"] == "missing column"
    assert problems["extra"].startswith("unexpected column")
    assert problems["x"].startswith("expected float64, got string") and "'abc'" in problems["x"]
    assert "null" in problems["n"] and "non-nullable" in problems["n"]
    assert exc.value.http_status == 422
    assert "column 'k': missing column" in exc.value.message


def test_nulls_in_a_non_nullable_int_column_name_the_rows() -> None:
    sig = Signature([ColumnSpec("n", "int64", nullable=False)])
    with pytest.raises(SignatureMismatch) as exc:
        sig.check(pd.DataFrame({"n": [1.0, np.nan, np.nan]}))
    assert _problems(exc)["n"] == "2 null value(s) in a non-nullable column (rows [1, 2])"


def test_nulls_in_a_non_nullable_string_column_are_found_every_call(sig: Signature) -> None:
    strict = Signature([ColumnSpec("s", "string", nullable=False)])
    assert strict.check(pd.DataFrame({"s": ["a"]}))["s"].tolist() == ["a"]
    with pytest.raises(SignatureMismatch, match="1 null value"):
        strict.check(pd.DataFrame({"s": ["a", None]}))


def test_strings_in_an_object_column_are_verified() -> None:
    sig = Signature([ColumnSpec("s", "string")])
    with pytest.raises(SignatureMismatch, match=r"expected string, got object \(integer values like 1, 2"):
        sig.check(pd.DataFrame({"s": pd.Series([1, 2], dtype=object)}))


def test_extra_columns_can_be_dropped_and_order_is_restored() -> None:
    sig = Signature([ColumnSpec("a", "int64", False), ColumnSpec("b", "float64")])
    out = sig.check(pd.DataFrame({"b": [1.5], "zz": ["x"], "a": [1]}), extra="drop")
    assert list(out.columns) == ["a", "b"]


@pytest.mark.parametrize(
    "data",
    [
        pl.DataFrame({"a": [1, 2], "s": ["x", "y"]}),
        pa.table({"a": [1, 2], "s": ["x", "y"]}),
        {"a": [1, 2], "s": ["x", "y"]},
        [{"a": 1, "s": "x"}, {"a": 2, "s": "y"}],
    ],
    ids=["polars", "arrow", "dict", "records"],
)
def test_what_users_hold_is_accepted(data: object) -> None:
    sig = Signature([ColumnSpec("a", "int64", False), ColumnSpec("s", "string", False)])
    out = sig.check(data)
    assert isinstance(out, pd.DataFrame) and out["a"].tolist() == [1, 2] and out["s"].tolist() == ["x", "y"]


def test_numpy_rows_take_the_signature_column_names() -> None:
    sig = Signature([ColumnSpec("a", "float64"), ColumnSpec("b", "float64")])
    assert list(sig.check(np.array([[1.0, 2.0]])).columns) == ["a", "b"]
    assert sig.check({"a": 1.0, "b": 2.0}).shape == (1, 2)


def test_json_numbers_with_nulls_fit_a_float_column() -> None:
    sig = Signature([ColumnSpec("x", "float64")])
    out = sig.check(pd.DataFrame({"x": pd.Series([1, None, 2.5], dtype=object)}))
    assert out["x"].dtype == np.float64 and np.isnan(out["x"][1])


def test_strings_fit_a_category_column_and_datetimes_change_unit() -> None:
    sig = Signature([ColumnSpec("k", "category"), ColumnSpec("t", "datetime64[ns]")])
    out = sig.check(pd.DataFrame({"k": ["u"], "t": pd.to_datetime(["2024-01-01"]).astype("datetime64[us]")}))
    assert out["k"].dtype == "category" and str(out["t"].dtype) == "datetime64[ns]"
    with pytest.raises(SignatureMismatch, match="pandas.to_datetime"):
        sig.check(pd.DataFrame({"k": ["u"], "t": ["2024-01-01"]}))


def test_signature_from_contract_leaves_out_the_target() -> None:
    contract = Contract(
        name="flights",
        columns=[
            {"name": "dep_delay", "type": "float", "nullable": False},
            {"name": "carrier", "type": "string", "nullable": False},
            {"name": "distance", "type": "int", "nullable": False},
            {"name": "late", "type": "bool"},
        ],
    )
    sig = signature_from_contract(contract, "late")
    assert [c.to_dict() for c in sig.inputs] == [
        {"name": "dep_delay", "type": "float64", "nullable": True},
        {"name": "carrier", "type": "string", "nullable": False},
        {"name": "distance", "type": "int64", "nullable": False},
    ]
    assert sig.output == OutputSpec("bool")
    with pytest.raises(InvalidInput, match="Target 'nope' is not a column"):
        signature_from_contract(contract, "nope")


def test_unknown_types_and_duplicate_names_are_refused() -> None:
    with pytest.raises(InvalidInput, match="Unknown signature type 'decimal'"):
        ColumnSpec("a", "decimal")
    with pytest.raises(InvalidInput, match="repeated"):
        Signature([ColumnSpec("a", "int64"), ColumnSpec("a", "int64")])


def test_the_error_for_a_missing_column_names_every_expected_column() -> None:
    sig = Signature([ColumnSpec("a", "int64", False), ColumnSpec("b", "float64")])
    with pytest.raises(SignatureMismatch, match=r"takes columns \['a', 'b'\]") as exc:
        sig.check(pd.DataFrame({"a": ["x"]}))
    assert _problems(exc) == {"b": "missing column", "a": "expected int64, got string (values like 'x')"}


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        ("int64", 9.223372036854776e18),
        ("int64", -9.3e18),
        ("int32", 2**31),
        ("int32", 2.0**31),
        ("int8", -129),
    ],
)
def test_integers_out_of_range_are_a_clear_mismatch_not_a_wrapped_value(type_: str, value: float) -> None:
    """Found by the serving fuzz test: 2**63 as a float wrapped around (and warned) in the int64 cast."""
    sig = Signature.from_dict({"inputs": [{"name": "d", "type": type_, "nullable": False}]})
    with pytest.raises(SignatureMismatch) as err:
        sig.check(pd.DataFrame({"d": [value]}))
    (problem,) = err.value.details["problems"]
    assert problem["column"] == "d" and "out of range" in problem["problem"]
