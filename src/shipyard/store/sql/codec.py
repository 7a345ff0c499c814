"""Compact encoding of metric-history chunks.

A chunk holds ``n`` points of one (run, key) series as three columns: steps and
timestamps are delta-encoded int64 (training loops log steps +1 and timestamps
a few ms apart, so the deltas are nearly constant), values are float64 with
their bytes shuffled (all first bytes, then all second bytes, ...) so the
sign/exponent bytes of a smooth curve line up. The three columns are then
compressed together with zlib. Values keep every bit: NaN, ±inf and -0.0
round-trip exactly.

Layout: ``b"SYC1" | uint32 n | zlib(dsteps | dts | shuffled values)``.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import numpy.typing as npt

__all__ = ["decode_chunk", "encode_chunk", "encode_point"]

_MAGIC = b"SYC1"
_HEADER = struct.Struct("<4sI")
_POINT = struct.Struct("<qqd")  # a one-point body: its step and timestamp (deltas from 0), its value

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


def encode_chunk(steps: I64, timestamps: I64, values: F64, level: int = 6) -> bytes:
    """Encode one chunk; the three arrays have the same length.

    ``level`` is zlib's: the logger's frequent small flushes use a fast level, and compaction
    re-encodes merged chunks at the default.
    """
    n = len(steps)
    if n == 1:  # one point (a log_batch of many keys): the same bytes without numpy's overhead
        return encode_point(int(steps[0]), int(timestamps[0]), float(values[0]), level)
    return _HEADER.pack(_MAGIC, n) + zlib.compress(_columns(steps, timestamps, values), level)


def encode_point(step: int, timestamp: int, value: float, level: int = 6) -> bytes:
    """A one-point chunk: :func:`encode_chunk` of one-item arrays, byte for byte, from plain numbers.

    Example:
        >>> [c.tolist() for c in decode_chunk(encode_point(3, 1700000000000, 0.5))]
        [[3], [1700000000000], [0.5]]
    """
    return _HEADER.pack(_MAGIC, 1) + zlib.compress(_POINT.pack(step, timestamp, value), level)


def _columns(steps: I64, timestamps: I64, values: F64) -> bytes:
    """The chunk's body before compression: delta steps, delta timestamps, shuffled values."""
    n = len(steps)
    dsteps = np.diff(steps, prepend=np.int64(0)).astype("<i8", copy=False)
    dts = np.diff(timestamps, prepend=np.int64(0)).astype("<i8", copy=False)
    shuffled = np.ascontiguousarray(values.astype("<f8", copy=False).view(np.uint8).reshape(n, 8).T)
    return dsteps.tobytes() + dts.tobytes() + shuffled.tobytes()


def decode_chunk(data: bytes) -> tuple[I64, I64, F64]:
    """Decode a chunk made by :func:`encode_chunk`."""
    magic, n = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise ValueError(f"not a metric chunk (magic {magic!r})")
    raw = zlib.decompress(data[_HEADER.size :])
    if len(raw) != 24 * n:
        raise ValueError(f"metric chunk is {len(raw)} bytes, expected {24 * n}")
    buf = np.frombuffer(raw, dtype=np.uint8)
    steps = np.cumsum(buf[: 8 * n].view("<i8")).astype(np.int64)
    ts = np.cumsum(buf[8 * n : 16 * n].view("<i8")).astype(np.int64)
    values = np.ascontiguousarray(buf[16 * n :].reshape(8, n).T).view("<f8").reshape(n).astype(np.float64)
    return steps, ts, values
