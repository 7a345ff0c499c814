"""Metric-chunk codec: every bit survives, and a realistic curve costs well under 12 bytes a point."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from shipyard.store.sql import codec
from shipyard.store.sql.codec import decode_chunk, encode_chunk

I64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@st.composite
def chunks(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(min_value=0, max_value=300))
    steps = draw(hnp.arrays(np.int64, n, elements=I64))
    stamps = draw(hnp.arrays(np.int64, n, elements=I64))
    values = draw(
        hnp.arrays(
            np.float64,
            n,
            elements=st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True)
            | st.sampled_from([float("nan"), float("inf"), float("-inf"), -0.0, 0.0]),
        )
    )
    return steps, stamps, values


@settings(max_examples=300, deadline=None)
@given(chunks())
def test_encode_decode_round_trips_every_bit(chunk: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    steps, stamps, values = chunk
    got_steps, got_stamps, got_values = decode_chunk(encode_chunk(steps, stamps, values))
    assert got_steps.dtype == np.int64 and got_stamps.dtype == np.int64 and got_values.dtype == np.float64
    assert np.array_equal(got_steps, steps)
    assert np.array_equal(got_stamps, stamps)
    # Bitwise: NaN payloads, -0.0 and ±inf are kept exactly.
    assert got_values.view(np.uint64).tolist() == values.view(np.uint64).tolist()


def test_nan_payload_and_negative_zero_survive_exactly() -> None:
    odd_nan = np.array([0x7FF8_0000_DEAD_BEEF], dtype=np.uint64).view(np.float64)[0]
    values = np.array([odd_nan, -0.0, np.inf, -np.inf, np.nan])
    steps = np.arange(5, dtype=np.int64)
    _, _, got = decode_chunk(encode_chunk(steps, steps, values))
    assert got.view(np.uint64).tolist() == values.view(np.uint64).tolist()
    assert np.signbit(got[1])


def test_extreme_steps_round_trip_through_the_delta_encoding() -> None:
    steps = np.array([2**63 - 1, -(2**63), 0, 2**63 - 1], dtype=np.int64)
    got, _, _ = decode_chunk(encode_chunk(steps, steps, np.zeros(4)))
    assert got.tolist() == steps.tolist()


def _realistic_curve(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    steps = np.arange(n, dtype=np.int64)
    stamps = 1_767_225_600_000 + np.cumsum(rng.integers(3, 9, size=n)).astype(np.int64)
    loss = 2.5 * np.exp(-steps / 20_000) + 0.1 + rng.normal(0, 0.01, size=n)
    return steps, stamps, loss.astype(np.float64)


def test_a_realistic_100k_point_curve_costs_under_12_bytes_per_point() -> None:
    steps, stamps, values = _realistic_curve(100_000)
    data = encode_chunk(steps, stamps, values)
    assert len(data) / 100_000 < 12
    # ... and it is lossless.
    _, _, got = decode_chunk(data)
    assert np.array_equal(got, values)


def test_decoding_something_that_is_not_a_chunk_raises_value_error() -> None:
    with pytest.raises(ValueError, match="magic"):
        decode_chunk(b"NOPE" + b"\x00" * 16)


def test_decoding_a_chunk_with_a_wrong_point_count_raises_value_error() -> None:
    data = bytearray(encode_chunk(np.arange(3), np.arange(3), np.zeros(3)))
    data[4] = 4  # header says 4 points, body holds 3
    with pytest.raises(ValueError, match="expected"):
        decode_chunk(bytes(data))


def test_decoding_a_truncated_chunk_raises() -> None:
    data = encode_chunk(np.arange(100), np.arange(100), np.linspace(0, 1, 100))
    with pytest.raises((ValueError, zlib.error)):
        decode_chunk(data[:-5])


@given(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.one_of(st.floats(), st.just(-0.0), st.just(math.nan), st.just(-math.inf)),
    st.integers(min_value=0, max_value=9),
)
def test_a_one_point_chunk_is_the_general_encoding_byte_for_byte(
    step: int, ts: int, value: float, level: int
) -> None:
    steps, stamps = np.array([step], dtype=np.int64), np.array([ts], dtype=np.int64)
    values = np.array([value], dtype=np.float64)
    general = codec._HEADER.pack(b"SYC1", 1) + zlib.compress(codec._columns(steps, stamps, values), level)
    assert encode_chunk(steps, stamps, values, level) == general
    assert codec.encode_point(step, ts, value, level) == general  # the log_batch path, from plain numbers
    s, t, v = decode_chunk(general)
    assert (s[0], t[0]) == (step, ts) and np.float64(v[0]).tobytes() == np.float64(value).tobytes()
