"""Odd inputs never vanish from the prediction log (issue 10, "never lose data silently"): every answered
request's row is in the log afterwards, read back with ``read_prediction_log``, its values in the stated
encoding; inputs the log could not hold are refused before the answer (400) instead."""

from __future__ import annotations

import base64
import datetime
import decimal
import json
from pathlib import Path
from typing import Any

import anyio
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deployment_harness import running
from test_hostile_bodies import ARROW, arrow_bytes, good_table, nested_json

from shipyard.registry.flavors import save_model_dir
from shipyard.serving import ServeOptions, create_deployment_app, single_model_deployment
from shipyard.serving.logjson import ENCODING
from shipyard.serving.payload import MAX_NESTING
from shipyard.serving.predlog import PREDICTION_SCHEMA, read_prediction_log

JSON = {"Content-Type": "application/json"}


class BlobLength:
    """A python_function model taking a binary column (its ``object`` signature type lets bytes in)."""

    def predict(self, frame: pd.DataFrame) -> Any:
        return frame["blob"].map(len).to_numpy()


def logged_server(model_dir: Path, log: Path, *, trust: bool = False) -> Any:
    spec = single_model_deployment(
        str(model_dir),
        name="odd",
        prediction_log={"enabled": True, "path": str(log), "flush_interval_s": 0.05},
        reload={"poll_interval_s": 0},
    )
    return create_deployment_app(spec, ServeOptions(trust=trust))


def exchange(app: Any, requests: list[tuple[bytes | str, dict[str, str]]]) -> list[Any]:
    """Send each request to the started app; the app is shut down (its log flushed) before returning."""
    answers: list[Any] = []

    async def main() -> None:
        async with running(app) as http:
            for body, headers in requests:
                answers.append(await http.post("/predict", content=body, headers=headers))

    anyio.run(main)
    return answers


def logged(log: Path, request_id: str) -> dict[str, Any]:
    frame = read_prediction_log(log, deployment="odd")
    rows = frame[frame["request_id"] == request_id]
    assert len(rows) == 1, f"request {request_id} is not in the log ({len(frame)} rows there)"
    return dict(rows.iloc[0])


@pytest.fixture
def blob_dir(tmp_path: Path) -> Path:
    save_model_dir(BlobLength(), tmp_path / "blob", input_example=pd.DataFrame({"blob": [b"ab", b"c"]}))
    return tmp_path / "blob"


def test_binary_arrow_columns_are_logged_as_base64(blob_dir: Path, tmp_path: Path) -> None:
    blobs = [b"\xff\x00not utf-8", b"plain", b""]
    body = arrow_bytes(pa.table({"blob": pa.array(blobs, pa.binary())}))
    (answer,) = exchange(logged_server(blob_dir, tmp_path / "log", trust=True), [(body, ARROW)])
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == [len(b) for b in blobs]
    row = logged(tmp_path / "log", answer.json()["request_id"])
    assert row["status"] == 200
    inputs = json.loads(row["inputs"])
    assert [base64.b64decode(r["blob"]["$base64"]) for r in inputs] == blobs


def test_the_logged_schema_states_the_encoding(blob_dir: Path, tmp_path: Path) -> None:
    body = arrow_bytes(pa.table({"blob": pa.array([b"\x00"], pa.binary())}))
    exchange(logged_server(blob_dir, tmp_path / "log", trust=True), [(body, ARROW)])
    (part,) = (tmp_path / "log").rglob("part-*.parquet")
    schema = pq.read_schema(part)
    for name in ("inputs", "outputs"):
        assert schema.field(name).metadata == {b"encoding": ENCODING.encode()}
        assert PREDICTION_SCHEMA.field(name).metadata == {b"encoding": ENCODING.encode()}
    assert "$base64" in ENCODING


ODD_ARROW: list[Any] = [
    ("binary in a string column", {"carrier": pa.array([b"\xff\xfe"], pa.binary())}, 422),
    ("decimal", {"dep_delay": pa.array([decimal.Decimal("1.25")], pa.decimal128(6, 2))}, 200),
    ("time of day", {"carrier": pa.array([datetime.time(8, 15)], pa.time64("us"))}, 422),
    ("duration", {"distance": pa.array([5], pa.duration("s"))}, 422),
    ("struct", {"carrier": pa.array([{"code": "UA", "raw": b"\x01"}])}, 422),
    ("map", {"carrier": pa.array([[("k", 1)]], pa.map_(pa.string(), pa.int64()))}, 422),
    ("nested lists", {"carrier": pa.array([[[1, 2], [3]]])}, 422),
    ("uint64 max", {"distance": pa.array([2**64 - 1], pa.uint64())}, 422),
    ("int with null", {"distance": pa.array([2**53 + 1, None], pa.int64())}, 422),
]


@pytest.mark.parametrize(("case", "columns", "status"), ODD_ARROW, ids=[c[0] for c in ODD_ARROW])
def test_odd_arrow_columns_are_logged(
    classifier_dir: Path, tmp_path: Path, case: str, columns: dict[str, Any], status: int
) -> None:
    body = arrow_bytes(good_table(**columns))
    (answer,) = exchange(logged_server(classifier_dir, tmp_path / "log"), [(body, ARROW)])
    assert answer.status_code == status, answer.text
    rid = answer.headers["x-request-id"]
    row = logged(tmp_path / "log", rid)
    assert row["status"] == status
    inputs = json.loads(row["inputs"])
    assert len(inputs) == row["n_rows"] and set(inputs[0]) == {"dep_delay", "distance", "carrier"}


ODD_JSON: list[Any] = [
    (
        "past 64 bits",
        '{"records": [{"dep_delay": 1000000000000000000000000000001, "distance": 5, "carrier": "UA"}]}',
    ),
    ("nested to the limit", '{"records": [{"dep_delay": 1.0, "distance": 5, "carrier": CELL}]}'),
    ("columns with a nested cell", '{"columns": {"dep_delay": [1.0], "distance": [5], "carrier": [CELL]}}'),
    ("unicode escapes", '{"records": [{"dep_delay": 1.0, "distance": 5, "carrier": "\\u0000\\u202e"}]}'),
]


@pytest.mark.parametrize(("case", "body"), ODD_JSON, ids=[c[0] for c in ODD_JSON])
def test_odd_json_values_are_logged(classifier_dir: Path, tmp_path: Path, case: str, body: str) -> None:
    body = body.replace("CELL", nested_json(MAX_NESTING))
    (answer,) = exchange(logged_server(classifier_dir, tmp_path / "log"), [(body, JSON)])
    assert answer.status_code in (200, 422), answer.text
    row = logged(tmp_path / "log", answer.headers["x-request-id"])
    assert row["status"] == answer.status_code
    assert json.loads(row["inputs"])[0]["distance"] == 5


def test_inputs_the_log_cannot_hold_are_refused_before_the_answer(
    classifier_dir: Path, tmp_path: Path
) -> None:
    duplicate = pa.Table.from_arrays(
        [pa.array([1.0]), pa.array([5]), pa.array(["UA"]), pa.array(["AA"])],
        names=["dep_delay", "distance", "carrier", "carrier"],
    )
    deep = '{"records": [{"dep_delay": 1.0, "distance": 5, "carrier": CELL}]}'.replace(
        "CELL", nested_json(1000)
    )
    good = json.dumps({"records": [{"dep_delay": 1.0, "distance": 5, "carrier": "UA"}]})
    answers = exchange(
        logged_server(classifier_dir, tmp_path / "log"),
        [(arrow_bytes(duplicate), ARROW), (deep, JSON), (good, JSON)],
    )
    assert [a.status_code for a in answers] == [400, 400, 200], [a.text for a in answers]
    frame = read_prediction_log(tmp_path / "log", deployment="odd")
    assert frame["request_id"].tolist() == [answers[2].headers["x-request-id"]]
