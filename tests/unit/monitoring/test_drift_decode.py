"""The prediction log's JSON decoded vectorised gives what the row-by-row decoder gives (the Python decoder
``read_window`` used before), on the shapes the log holds: mixed types, nulls, new categories, requests of
several rows, probabilities or none, and requests whose JSON is broken."""

from __future__ import annotations

import orjson
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from shipyard.monitoring import decode
from shipyard.monitoring.decode import decode_requests


def requests(inputs: list[str | None], outputs: list[str | None]) -> pl.DataFrame:
    return pl.DataFrame(
        {"inputs": inputs, "outputs": outputs}, schema={"inputs": pl.String, "outputs": pl.String}
    )


def row_by_row(frame: pl.DataFrame, schema: dict[str, pl.DataType] | None = None) -> decode.Decoded:
    return decode._row_by_row(frame, schema)


CASES = {
    "mixed types": requests(
        [
            '[{"x": 1, "c": "a", "k": 3}]',
            '[{"x": 2.5, "c": "b", "k": "seven"}]',
            '{"x": 3, "c": "a", "k": 1}',
        ],
        ['{"predictions": [1]}', '{"predictions": [0.5]}', '{"predictions": ["yes"]}'],
    ),
    "nulls": requests(
        [None, '[{"x": null, "c": "z"}]', "[]", '[{"x": 4.0}]'],
        [None, "[0]", '{"predictions": []}', '{"predictions": [null]}'],
    ),
    "several rows, probabilities": requests(
        ['[{"x": 1, "c": "a"}, {"x": 2, "c": "b"}]', '[{"x": 3, "c": "c"}, {"x": 4, "c": null}, {"x": 5}]'],
        [
            '{"predictions": [1, 0], "probabilities": [[0.2, 0.8], [0.7, 0.3]]}',
            '{"predictions": [2, 1, 0], "probabilities": [[0.1, 0.2, 0.7], [0.3, null, 0.4], []]}',
        ],
    ),
    "probabilities on some requests": requests(
        ['[{"x": 1}, {"x": 2}]', '[{"x": 3}]', '[{"x": 4}, {"x": 5}]'],
        [
            '{"predictions": [1, 0], "probabilities": [[0.4, 0.6], [0.9, 0.1]]}',
            '{"predictions": [1]}',
            '{"predictions": [0, 0], "probabilities": [[0.5, 0.5]]}',  # too few: no scores for it
        ],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_vectorised_decode_matches_the_row_by_row_decoder(name: str) -> None:
    frame = CASES[name]
    fast, slow = decode_requests(frame), row_by_row(frame)
    assert fast.method == "vectorised"  # the case must not silently fall back to Python
    assert_frame_equal(fast.features, slow.features)
    assert_frame_equal(fast.predictions, slow.predictions)


def test_values_and_types_are_the_logged_ones() -> None:
    fast = decode_requests(CASES["several rows, probabilities"])
    assert fast.features.to_dicts() == [
        {"x": 1, "c": "a"},
        {"x": 2, "c": "b"},
        {"x": 3, "c": "c"},
        {"x": 4, "c": None},
        {"x": 5, "c": None},
    ]
    assert fast.predictions.get_column("prediction").to_list() == [1, 0, 2, 1, 0]
    assert fast.predictions.get_column("score").to_list() == [0.8, 0.3, 0.7, None, None]
    mixed = decode_requests(CASES["mixed types"]).features
    assert mixed.schema == pl.Schema({"x": pl.Float64, "c": pl.String, "k": pl.String})
    assert mixed.get_column("k").to_list() == ["3", "seven", "1"]


def test_booleans_beside_floats_read_as_numbers_as_before() -> None:
    frame = requests(['[{"x": 2.5, "b": true}]', '[{"x": true, "b": false}]'], ["[1]", "[0]"])
    decoded = decode_requests(frame)
    assert decoded.features.to_dicts() == [{"x": 2.5, "b": True}, {"x": 1.0, "b": False}]
    assert_frame_equal(decoded.features, row_by_row(frame).features)


def test_types_inferred_per_slice_meet_in_their_supertype(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ints in the first slices and floats and text later: the result is typed as if decoded at once."""
    monkeypatch.setattr(decode, "_SLICE_BYTES", 200)
    inputs = [f'[{{"x": {i}, "c": "c{i % 3}"}}]' for i in range(40)]
    inputs += ['[{"x": 2.5, "c": 7}]', '[{"y": "new"}]']
    frame = requests(inputs, [f'{{"predictions": [{i % 2}]}}' for i in range(len(inputs))])
    fast, slow = decode_requests(frame), row_by_row(frame)
    assert len(decode._slices(frame)) > 5
    assert_frame_equal(fast.features, slow.features)
    assert_frame_equal(fast.predictions, slow.predictions)
    assert fast.features.schema["x"] == pl.Float64 and fast.features.columns == ["x", "c", "y"]


def test_a_request_with_broken_json_is_left_out_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode, "_SLICE_BYTES", 120)
    good = [f'[{{"x": {i}.5, "c": "a"}}]' for i in range(12)]
    inputs = [*good[:5], '[{"x": 1.5, "c": ', *good[5:], "not json"]
    outputs = ['{"predictions": [1]}'] * len(inputs)
    outputs[8] = '{"predictions": [1'  # a broken answer: the request is left out too
    decoded = decode_requests(requests(inputs, outputs))
    assert decoded.skipped == 3
    kept = [s for i, s in enumerate(inputs) if i not in (5, 8, len(inputs) - 1)]
    expected = [r for s in kept for r in orjson.loads(s)]
    assert decoded.features.to_dicts() == expected
    assert decoded.predictions.height == len(expected)
    assert "row by row" in decoded.method  # only the slices holding a broken request


def test_a_schema_decodes_only_its_features_with_its_types() -> None:
    frame = requests(
        ['[{"x": 1, "c": "a", "extra": [1, 2]}]', '[{"x": true, "c": "new"}]', '[{"c": 5}]'],
        ['{"predictions": [1]}'] * 3,
    )
    schema: dict[str, pl.DataType] = {"x": pl.Float64(), "c": pl.String(), "gone": pl.Float64()}
    fast = decode_requests(frame, schema)
    assert fast.method == "vectorised"
    assert fast.features.to_dicts() == [
        {"x": 1.0, "c": "a", "gone": None},
        {"x": 1.0, "c": "new", "gone": None},
        {"x": None, "c": "5", "gone": None},
    ]


def test_text_in_a_numeric_feature_falls_back_and_reads_numbers() -> None:
    frame = requests(
        ['[{"x": "7", "c": "a"}]', '[{"x": "n/a", "c": "b"}]', '[{"x": 2}]'], ["[1]", "[0]", "[1]"]
    )
    schema: dict[str, pl.DataType] = {"x": pl.Float64(), "c": pl.String()}
    decoded = decode_requests(frame, schema)
    assert decoded.method == "row by row"
    assert decoded.features.get_column("x").to_list() == [7.0, None, 2.0]
    assert decoded.features.get_column("c").to_list() == ["a", "b", None]


def test_a_columns_shaped_request_gives_one_row_per_value() -> None:
    frame = requests(
        ['{"columns": {"x": [1, 2, 3], "c": ["a", "b", "c"]}}', '[{"x": 4, "c": "d"}]'], ["[1, 0, 1]", "[0]"]
    )
    decoded = decode_requests(frame)
    assert decoded.features.to_dicts() == [
        {"x": 1, "c": "a"},
        {"x": 2, "c": "b"},
        {"x": 3, "c": "c"},
        {"x": 4, "c": "d"},
    ]
    assert decoded.predictions.get_column("prediction").to_list() == [1, 0, 1, 0]
