"""Hostile and careless request bodies (issue 10, "no 500s"): garbage Arrow, deep nesting, 10 MB values,
and integers a float column cannot hold. Each answers a 4xx in the shared error shape with a short message,
or (for a conversion that loses nothing) the model's own prediction."""

from __future__ import annotations

import decimal
import json
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_model_server import FUZZ_EXAMPLES, GOOD, JSON, assert_error, post

from shipyard.errors import InvalidInput
from shipyard.serving.payload import ARROW_STREAM, MAX_NESTING, parse_predict_request

ARROW = {"Content-Type": ARROW_STREAM}
TEN_MB = 10_000_000
MAX_MESSAGE = 2_000


def arrow_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def good_table(**columns: Any) -> pa.Table:
    """One good row per value of the given columns (one row without any)."""
    n = len(next(iter(columns.values()))) if columns else 1
    base: dict[str, Any] = {
        "dep_delay": pa.array([3.0] * n, pa.float64()),
        "distance": pa.array([500] * n, pa.int64()),
        "carrier": pa.array(["UA"] * n),
    }
    return pa.table({**base, **columns})


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def nested_json(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


# -- garbage Arrow --------------------------------------------------------------------------------------
GOOD_ARROW = arrow_bytes(good_table())


def file_format() -> bytes:
    sink = pa.BufferOutputStream()
    table = good_table()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xff\xff\xff\x10\x00\x00\x00garbage" * 3,  # OSError: Invalid flatbuffers message
        b"\xff\xff\xff\xff\xf0\xff\xff\xff" + b"\x00" * 16,  # OSError: Invalid IPC message
        b"\xff\xff\xff\xff\x10\x00\x00\x00garbagegarbage",
        b"\x00" * 64,
        b"not arrow at all",
        GOOD_ARROW[: len(GOOD_ARROW) // 2],  # truncated mid-batch
        GOOD_ARROW[:12],
        file_format(),
        bytes(range(256)) * 4,
    ],
    ids=[
        "flatbuffers",
        "ipc message",
        "short",
        "zeros",
        "text",
        "truncated",
        "header",
        "file format",
        "bytes",
    ],
)
def test_a_garbage_arrow_body_is_a_400(http: httpx.Client, body: bytes) -> None:
    response = http.post("/predict", content=body, headers=ARROW)
    assert_error(response, 400, "invalid_input", "Arrow")


@settings(
    max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    flips=st.lists(
        st.tuples(st.integers(0, len(GOOD_ARROW) - 1), st.integers(0, 255)), min_size=1, max_size=4
    )
)
def test_no_damaged_arrow_stream_makes_the_server_fail(
    http: httpx.Client, flips: list[tuple[int, int]]
) -> None:
    body = bytearray(GOOD_ARROW)
    for position, value in flips:
        body[position] = value
    response = http.post("/predict", content=bytes(body), headers=ARROW)
    assert response.status_code in (200, 400, 422), response.text


def test_a_good_arrow_body_still_predicts(http: httpx.Client, classifier: Any) -> None:
    response = http.post("/predict", content=GOOD_ARROW, headers=ARROW)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == classifier.predict(good_table().to_pandas()).tolist()


def test_duplicate_arrow_column_names_are_a_400(http: httpx.Client) -> None:
    table = pa.Table.from_arrays(
        [pa.array([3.0]), pa.array([500]), pa.array(["UA"]), pa.array(["AA"])],
        names=["dep_delay", "distance", "carrier", "carrier"],
    )
    response = http.post("/predict", content=arrow_bytes(table), headers=ARROW)
    assert_error(response, 400, "invalid_input", "duplicate column names", "'carrier'")


def test_an_arrow_column_nested_too_deep_is_a_400(http: httpx.Client) -> None:
    table = good_table(carrier=pa.array([nested(MAX_NESTING + 1)]))
    response = http.post("/predict", content=arrow_bytes(table), headers=ARROW)
    assert_error(response, 400, "invalid_input", "deeper than 32")


# -- deep nesting ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 200, 1000])
@pytest.mark.parametrize("shape", ["records", "columns", "bare"])
def test_values_nested_too_deep_are_a_400(http: httpx.Client, depth: int, shape: str) -> None:
    cell = nested_json(depth)
    body = {
        "records": '{"records": [{"dep_delay": 1.0, "distance": 5, "carrier": %s}]}',
        "columns": '{"columns": {"dep_delay": [1.0], "distance": [5], "carrier": [%s]}}',
        "bare": '[{"dep_delay": %s, "distance": 5, "carrier": "UA"}]',
    }[shape] % cell
    error = assert_error(http.post("/predict", content=body, headers=JSON), 400, "invalid_input", "deeper")
    assert error["details"]["limit"] == MAX_NESTING


def test_nesting_within_the_limit_reaches_the_signature_check(http: httpx.Client) -> None:
    cell = nested_json(MAX_NESTING)
    body = '{"records": [{"dep_delay": 1.0, "distance": 5, "carrier": CELL}]}'.replace("CELL", cell)
    assert_error(http.post("/predict", content=body, headers=JSON), 422, "signature_mismatch", "carrier")


def test_a_deep_routing_key_is_refused() -> None:
    body = '{"records": [{"x": 1}], "customer": CELL}'.replace("CELL", nested_json(1000)).encode()
    with pytest.raises(InvalidInput, match="routing key 'customer' must be a string or a number"):
        parse_predict_request(body, sticky_key="customer")


# -- 10 MB values are never echoed ----------------------------------------------------------------------
HUGE = "x" * TEN_MB
HUGE_BODIES: list[Any] = [
    ("string in a float column", {"records": [{**GOOD, "dep_delay": HUGE}]}, 422),
    ("huge column name", {"records": [{**GOOD, HUGE: 1}]}, 422),
    ("huge unknown key", {"records": [GOOD], HUGE: 1}, 400),
    ("huge proba", {"records": [GOOD], "proba": HUGE}, 400),
    ("huge column of a columns body", {"columns": {HUGE: 1}}, 400),
    ("ragged records", {"records": [GOOD, {**GOOD, HUGE: 1}]}, 400),
    ("ragged columns", {"columns": {"a": [1], HUGE: [1, 2]}}, 400),
    ("many unexpected columns", {"records": [{**GOOD, **{f"c{i}": i for i in range(50_000)}}]}, 422),
]


@pytest.mark.parametrize(("case", "body", "status"), HUGE_BODIES, ids=[c[0] for c in HUGE_BODIES])
def test_error_messages_never_echo_a_huge_value(
    classifier_dir: Any, case: str, body: Any, status: int
) -> None:
    from serving_harness import client_of, folder_app

    for big in client_of(folder_app(classifier_dir, "big")):  # the default 64 MiB body limit
        response = big.post("/predict", content=json.dumps(body), headers=JSON)
        error = assert_error(response, status, response.json()["error"]["code"])
        assert len(response.content) < 20_000, case
        assert len(error["message"]) < MAX_MESSAGE, error["message"][:300]
        assert "characters)" in error["message"] or "more" in error["message"], error["message"]


# -- integers a float cannot hold -----------------------------------------------------------------------
LOSSY_FLOATS: list[Any] = [
    ("2**53 + 1", [2**53 + 1]),
    ("uint64 max", [2**64 - 1]),
    ("2**53 + 1 beside a float", [2**53 + 1, 0.5]),
    ("2**53 + 1 beside a null", [2**53 + 1, None]),
    ("past 64 bits", [10**30 + 1]),
    ("negative past 64 bits", [-(2**64) - 1]),
]


@pytest.mark.parametrize(("case", "values"), LOSSY_FLOATS, ids=[c[0] for c in LOSSY_FLOATS])
@pytest.mark.parametrize("shape", ["records", "columns"])
def test_integers_a_float_column_cannot_hold_are_refused(
    http: httpx.Client, case: str, values: list[Any], shape: str
) -> None:
    rows = [{**GOOD, "dep_delay": v} for v in values]
    body: Any = (
        {"records": rows} if shape == "records" else {"columns": {k: [r[k] for r in rows] for k in GOOD}}
    )
    error = assert_error(post(http, body), 422, "signature_mismatch", "'dep_delay'", "cannot hold exactly")
    assert error["details"]["problems"][0]["column"] == "dep_delay"


@pytest.mark.parametrize("value", [2**53, 2**63, -(2**63), 2**60])
def test_integers_a_float_holds_exactly_are_accepted(http: httpx.Client, classifier: Any, value: int) -> None:
    response = post(http, {"records": [{**GOOD, "dep_delay": value}]})
    assert response.status_code == 200, response.text
    expected = classifier.predict(pd.DataFrame([{**GOOD, "dep_delay": float(value)}]))
    assert response.json()["predictions"] == expected.tolist()


def test_a_large_integer_in_an_int_column_stays_exact(tmp_path: Any) -> None:
    from serving_harness import client_of, folder_app

    from shipyard.registry.flavors import save_model_dir

    save_model_dir(Echo(), tmp_path / "echo", input_example=pd.DataFrame({"n": [1, 2]}))
    for http in client_of(folder_app(tmp_path / "echo", "echo", trust=True)):
        for value in (2**53 + 1, 2**63 - 1, -(2**63)):
            response = post(http, {"records": [{"n": value}, {"n": 0.0}]})  # 0.0 would make pandas use float
            assert response.status_code == 200, response.text
            assert response.json()["predictions"] == [str(value), "0"]
        assert_error(post(http, {"records": [{"n": 2**63}]}), 422, "signature_mismatch", "out of range")


class Echo:
    """A python_function model answering its integer input as text (to see exactly what it got)."""

    def predict(self, frame: pd.DataFrame) -> Any:
        return np.array([str(int(v)) for v in frame["n"]])


def test_arrow_integers_and_decimals_convert_only_when_exact(http: httpx.Client) -> None:
    def send(values: pa.Array) -> httpx.Response:
        table = good_table(dep_delay=values)
        return http.post("/predict", content=arrow_bytes(table), headers=ARROW)

    for lossy in (
        pa.array([2**53 + 1], pa.int64()),
        pa.array([2**64 - 1], pa.uint64()),
        pa.array([2**53 + 1, None], pa.int64()),
        pa.array([decimal.Decimal("0.12345678901234567890")], pa.decimal128(38, 20)),
    ):
        assert_error(send(lossy), 422, "signature_mismatch", "cannot hold exactly")
    for exact in (
        pa.array([2**53], pa.int64()),
        pa.array([decimal.Decimal("0.1")], pa.decimal128(10, 2)),
        pa.array([decimal.Decimal("12.5")], pa.decimal128(10, 1)),
    ):
        assert send(exact).status_code == 200, exact


def test_an_error_answer_is_bounded_whatever_raised_it(classifier_dir: Any) -> None:
    from serving_harness import client_of, folder_app

    from shipyard.errors import InvalidInput as Invalid

    app = folder_app(classifier_dir, "bounded")

    async def careless() -> None:  # a message built without shipyard.quoting, and bulky details
        raise Invalid("bad value " + HUGE, details={"values": [HUGE]})

    app.add_api_route("/careless", careless, methods=["POST"])
    for http in client_of(app):
        response = http.post("/careless")
        error = assert_error(response, 400, "invalid_input", "bad value", "(10000010 characters)")
        assert len(response.content) < 10_000
        assert "truncated" in error["details"]
