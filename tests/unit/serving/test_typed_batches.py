"""The per-batch path (plain-Python check, one frame per batch typed from the signature) answers exactly
what the pandas path does — ``Signature.check`` on each request's own frame, then the model in process —
for every dtype a signature has: ints (with nulls), floats, bools, strings, categoricals, datetimes.

The model echoes every value it gets with its column's dtype, so any difference in what it was handed
(a value, a null, a dtype) shows in its answer. Refusals must be the pandas path's, word for word.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pandas as pd
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_harness import folder_app, served

from shipyard.errors import ShipyardError
from shipyard.registry.flavors import save_model_dir
from shipyard.registry.signature import ColumnSpec, Signature
from shipyard.serving.columns import TypedColumns, batch_frame, check_columns
from shipyard.serving.payload import parse_predict_request

SIGNATURE = Signature(
    [
        ColumnSpec("i", "int64", nullable=False),
        ColumnSpec("i_null", "int64"),
        ColumnSpec("i32", "int32", nullable=False),
        ColumnSpec("f", "float64"),
        ColumnSpec("b", "bool", nullable=False),
        ColumnSpec("s", "string"),
        ColumnSpec("c", "category"),
        ColumnSpec("t", "datetime64[ns]", nullable=False),
    ]
)


class Echo:
    """Answers, per row, every value it was handed and its column's dtype."""

    def predict(self, frame: pd.DataFrame) -> list[str]:
        dtypes = [str(frame[name].dtype) for name in frame.columns]
        return [
            "|".join(
                f"{name}:{dtype}:{_shown(value)}"
                for name, dtype, value in zip(frame.columns, dtypes, row, strict=True)
            )
            for row in frame.itertuples(index=False)
        ]


def _shown(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "null"
    return repr(value)


_BIG = 2**53
ints = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-1000, 1000),
    st.sampled_from([2**63, _BIG + 1, 3.0, 2.5, True, "7"]),
)
values = {
    "i": ints,
    "i_null": st.one_of(st.integers(-1000, 1000), st.none(), st.sampled_from([_BIG + 1, 1.5])),
    "i32": st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([2**31, -(2**31) - 1, None])),
    "f": st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(-1000, 1000),
        st.none(),
        st.sampled_from([_BIG, _BIG + 1, -(_BIG + 1), 2**64, 1e300, "1.5", False]),
    ),
    "b": st.one_of(st.booleans(), st.sampled_from([None, 0, 1, "true"])),
    "s": st.one_of(st.text(max_size=6), st.none(), st.sampled_from([3, 2.5, True])),
    "c": st.one_of(st.sampled_from(["x", "y", "z"]), st.none(), st.sampled_from([1, ""])),
    "t": st.one_of(
        st.datetimes().map(lambda d: d.isoformat()),
        st.dates().map(lambda d: d.isoformat()),
        st.sampled_from(["2026-12-05T10:00:00Z", "2026-12-05T10:00:00+02:00", "2026-13-01", "soon", None]),
    ),
}
# most requests should be good ones: a column is drawn from its good values unless the draw says not
good = {
    "i": st.integers(-(2**63), 2**63 - 1),
    "i_null": st.one_of(st.integers(-1000, 1000), st.none()),
    "i32": st.integers(-(2**31), 2**31 - 1),
    "f": st.one_of(st.floats(-1e9, 1e9), st.integers(-1000, 1000), st.none()),
    "b": st.booleans(),
    "s": st.one_of(st.text(max_size=6), st.none()),
    "c": st.sampled_from(["x", "y", "z"]),
    "t": st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1)).map(lambda d: d.isoformat()),
}


@st.composite
def requests(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A records list of 1-3 rows; each column good or hostile, sometimes missing or with an extra."""
    n = draw(st.integers(1, 3))
    hostile = draw(st.sets(st.sampled_from(sorted(values)), max_size=2))
    rows = [
        {name: draw(values[name] if name in hostile else good[name]) for name in SIGNATURE.names}
        for _ in range(n)
    ]
    change = draw(st.sampled_from(["none"] * 8 + ["drop", "extra"]))
    for row in rows:
        if change == "drop":
            row.pop("c")
        elif change == "extra":
            row["unexpected"] = 1
    return rows


def pandas_path(body: bytes, service: Any) -> pd.DataFrame | ShipyardError:
    """What the server did before the per-batch path: a frame per request, ``Signature.check`` on it."""
    try:
        return service.check(parse_predict_request(body).frame, proba=False)
    except ShipyardError as exc:
        return exc


@pytest.fixture(scope="module")
def echo_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("models") / "echo-dtypes"
    save_model_dir(Echo(), path, signature=SIGNATURE)
    return folder_app(path, "echo", trust=True)


@pytest.fixture(scope="module")
def portal() -> Iterator[BlockingPortal]:
    """One event loop for the module's requests: the server's batcher lives on it."""
    with start_blocking_portal() as portal:
        yield portal


def send_at_once(portal: BlockingPortal, app: Any, bodies: list[bytes]) -> list[httpx.Response]:
    """POST every body to /predict at the same time (so they share batches)."""

    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            headers = {"content-type": "application/json"}
            posts = (client.post("/predict", content=body, headers=headers) for body in bodies)
            return list(await asyncio.gather(*posts))

    return portal.call(send_all)


def agree(service: Any, batch: list[list[dict[str, Any]]]) -> int:
    """Check the typed path against the pandas path on each request and on their batch; how many
    requests the typed path took."""
    accepted: list[tuple[TypedColumns, pd.DataFrame]] = []
    for records in batch:
        body = _json({"records": records})
        request = parse_predict_request(body)
        assert request.columns is not None  # plain JSON values stay plain columns
        typed = check_columns(request.columns, request.rows, SIGNATURE)
        reference = pandas_path(body, service)
        if typed is None:
            continue  # the pandas path decides (and names the problem)
        try:
            alone = batch_frame(SIGNATURE, [typed])
        except ValueError:  # a date the pattern let through: the batcher falls back to the pandas path
            assert isinstance(reference, ShipyardError)
            continue
        assert isinstance(reference, pd.DataFrame), f"the typed path took {records}: {reference}"
        pd.testing.assert_frame_equal(alone, reference)
        accepted.append((typed, reference))
    if len(accepted) > 1:  # one frame for the batch: each request's rows as its own frame had them
        together = batch_frame(SIGNATURE, [typed for typed, _ in accepted])
        expected = pd.concat([frame for _, frame in accepted], ignore_index=True)
        expected["c"] = expected["c"].astype("str").astype("category")  # categories: the batch's values
        pd.testing.assert_frame_equal(together, expected, check_categorical=False)
        assert together["c"].astype("str").tolist() == expected["c"].astype("str").tolist()
    return len(accepted)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(requests(), min_size=1, max_size=4))
def test_typed_columns_are_accepted_only_as_the_pandas_path_takes_them(
    echo_app: Any, batch: list[Any]
) -> None:
    agree(served(echo_app), batch)


GOOD_ROW = {
    "i": 1,
    "i_null": 2,
    "i32": 3,
    "f": 1.5,
    "b": True,
    "s": "a",
    "c": "x",
    "t": "2026-12-05T10:00:00",
}
HOSTILE = [
    ("i", [3.0, 2.5, True, "7", None, 2**63, -(2**63) - 1]),
    ("i_null", [None, 1.5, 2**53 + 1]),
    ("i32", [2**31, -(2**31) - 1, None, 2.0]),
    ("f", [None, 2**53, 2**53 + 1, -(2**53) - 1, 2**64, 1e300, "1.5", False, 0]),
    ("b", [None, 0, 1, "true"]),
    ("s", [None, 3, 2.5, True, ""]),
    ("c", [None, 1, ""]),
    (
        "t",
        [
            "2026-12-05",
            "2026-12-05 10:00",
            "2026-12-05T10:00:00Z",
            "2026-12-05T10:00:00+02:00",
            "2026-13-01",
            "1600-01-01",
            "soon",
            None,
            20261205,
        ],
    ),
]


@pytest.mark.parametrize(("column", "hostile"), HOSTILE, ids=[c for c, _ in HOSTILE])
def test_each_odd_value_goes_where_the_pandas_path_sends_it(
    echo_app: Any, column: str, hostile: list[Any]
) -> None:
    service = served(echo_app)
    for value in hostile:  # alone, beside a good row, and in a batch with a good request
        agree(service, [[{**GOOD_ROW, column: value}]])
        agree(service, [[{**GOOD_ROW, column: value}, GOOD_ROW]])
        agree(service, [[GOOD_ROW], [{**GOOD_ROW, column: value}], [GOOD_ROW]])
    assert agree(service, [[GOOD_ROW], [GOOD_ROW]]) == 2


def test_every_signature_type_has_a_typed_path() -> None:
    row = GOOD_ROW
    typed = check_columns({k: [v] for k, v in row.items()}, 1, SIGNATURE)
    assert typed is not None
    frame = batch_frame(SIGNATURE, [typed])
    assert [str(d) for d in frame.dtypes] == [
        "int64",
        "int64",
        "int32",
        "float64",
        "bool",
        "str",
        "category",
        "datetime64[ns]",
    ]
    # the sticky-key column may ride along; any other extra column sends the request the pandas way
    assert check_columns({**{k: [v] for k, v in row.items()}, "key": ["k"]}, 1, SIGNATURE, ignore=("key",))
    assert (
        check_columns({**{k: [v] for k, v in row.items()}, "other": ["k"]}, 1, SIGNATURE, ignore=("key",))
        is None
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(requests(), min_size=2, max_size=10))
def test_concurrent_requests_answer_as_each_alone_in_process(
    echo_app: Any, portal: BlockingPortal, batch: list[Any]
) -> None:
    """Sent at once (so they share batches), every request gets what the in-process model says on its
    own frame, or the pandas path's refusal word for word."""
    service = served(echo_app)
    bodies = [_json({"records": records}) for records in batch]

    answers = send_at_once(portal, echo_app, bodies)
    for body, answer in zip(bodies, answers, strict=True):
        reference = pandas_path(body, service)
        if isinstance(reference, ShipyardError):
            assert answer.status_code == reference.http_status, answer.text
            assert answer.json()["error"]["message"] == reference.message
        else:
            assert answer.status_code == 200, answer.text
            assert answer.json()["predictions"] == Echo().predict(reference)


def test_a_batch_mixing_typed_and_pandas_path_requests_answers_each(
    echo_app: Any, portal: BlockingPortal, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = served(echo_app)
    batches: list[int] = []
    build = service.batch_frame

    def counted(parts: Any) -> pd.DataFrame:  # the real builder, counting requests per typed frame
        batches.append(len(parts))
        return build(parts)

    monkeypatch.setattr(service, "batch_frame", counted)
    typed_row = {"i": 1, "i_null": 2, "i32": 3, "f": 1.5, "b": True, "s": "a", "c": "x", "t": "2026-12-05"}
    pandas_row = {**typed_row, "i_null": None, "f": 2**60, "c": "y"}  # nulls in an int column; a big int
    bodies = [_json({"records": [row]}) for row in (typed_row, pandas_row, typed_row, pandas_row)]
    request = parse_predict_request(bodies[1])
    assert request.columns is not None and check_columns(request.columns, 1, SIGNATURE) is None

    for body, answer in zip(bodies, send_at_once(portal, echo_app, bodies), strict=True):
        reference = pandas_path(body, service)
        assert isinstance(reference, pd.DataFrame)
        assert answer.status_code == 200 and answer.json()["predictions"] == Echo().predict(reference)
    assert sum(batches) == 2 and max(batches) == 2  # both typed requests in one frame


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()  # the standard library: integers past 64 bits too
