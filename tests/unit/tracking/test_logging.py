"""Logging metrics, params and tags through an ``ActiveRun``: validation at the call, async durability."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from shipyard import Client
from shipyard.entities import LogBatch, RunStatus
from shipyard.errors import InvalidInput, InvalidMetricValue
from shipyard.store import Store


def history(client: Client, run_id: str, key: str) -> tuple[list[int], list[float]]:
    h = client.store.get_metric_history(run_id, key)
    return h.steps, h.values


# ---------------------------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    "value",
    [1, 0.5, np.float64(0.25), np.float32(0.5), np.int64(3), np.array(2.0), Fraction(1, 4)],
    ids=["int", "float", "np.float64", "np.float32", "np.int64", "0-d array", "Fraction"],
)
def test_numbers_and_numpy_scalars_are_accepted_as_metric_values(client: Client, value: Any) -> None:
    with client.start_run(log_environment=False) as run:
        run.log_metric("m", value)
    assert client.get_run(run.id).metrics == {"m": float(value)}


@pytest.mark.parametrize(
    "value",
    ["0.5", None, True, np.bool_(True), Decimal("0.5"), [1.0], np.array([1.0, 2.0]), {"a": 1}],
    ids=["str", "None", "bool", "np.bool_", "Decimal", "list", "1-d array", "dict"],
)
def test_non_numeric_metric_value_raises_invalid_metric_value_at_the_call(client: Client, value: Any) -> None:
    """Booleans are refused too: True is not a measurement, and silently logging 1.0 hides a bug."""
    with client.start_run(log_environment=False) as run:
        with pytest.raises(InvalidMetricValue) as info:
            run.log_metric("acc", value)
        assert "'acc'" in str(info.value)
        with pytest.raises(InvalidMetricValue):
            run.log_metrics({"acc": value})
    assert client.get_run(run.id).metrics == {}


def test_nan_and_infinities_are_accepted_and_stored(client: Client) -> None:
    with client.start_run(log_environment=False) as run:
        for v in (1.0, math.nan, math.inf, -math.inf):
            run.log_metric("loss", v)
    steps, values = history(client, run.id, "loss")
    assert steps == [0, 1, 2, 3]
    assert values[0] == 1.0 and math.isnan(values[1]) and values[2:] == [math.inf, -math.inf]


@pytest.mark.parametrize("key", ["", "k" * 256, 3, None])
def test_invalid_metric_key_raises_invalid_input_at_the_call(client: Client, key: Any) -> None:
    with client.start_run(log_environment=False) as run:
        with pytest.raises(InvalidInput):
            run.log_metric(key, 1.0)
        with pytest.raises(InvalidInput):
            run.log_metrics({key: 1.0})


def test_a_bad_key_never_costs_the_other_points_of_its_batch(client: Client) -> None:
    """Regression: an over-long key used to pass log_metric, then fail the background write and
    take every other point of that flush with it."""
    with client.start_run(log_environment=False) as run:
        run.log_metric("ok", 1.0)
        with pytest.raises(InvalidInput):
            run.log_metric("x" * 300, 2.0)
        run.log_metric("ok", 2.0)
    assert history(client, run.id, "ok") == ([0, 1], [1.0, 2.0])


@pytest.mark.parametrize("step", [1.5, "3", True, None.__class__])
def test_non_integer_step_raises_invalid_input(client: Client, step: Any) -> None:
    with client.start_run(log_environment=False) as run, pytest.raises(InvalidInput, match="step"):
        run.log_metric("m", 1.0, step=step)


def test_integral_float_and_numpy_steps_are_accepted(client: Client) -> None:
    with client.start_run(log_environment=False) as run:
        run.log_metric("m", 1.0, step=np.int64(4))
        run.log_metric("m", 2.0, step=7.0)  # type: ignore[arg-type]
    assert history(client, run.id, "m") == ([4, 7], [1.0, 2.0])


# ---------------------------------------------------------------------------------------------- steps


def test_default_steps_auto_increment_per_key(client: Client) -> None:
    with client.start_run(log_environment=False) as run:
        run.log_metric("a", 1.0)
        run.log_metric("a", 2.0)
        run.log_metric("b", 10.0)
        run.log_metric("a", 3.0)
        run.log_metrics({"a": 4.0, "b": 20.0})
    assert history(client, run.id, "a") == ([0, 1, 2, 3], [1.0, 2.0, 3.0, 4.0])
    assert history(client, run.id, "b") == ([0, 1], [10.0, 20.0])


def test_default_step_continues_after_an_explicit_step(client: Client) -> None:
    with client.start_run(log_environment=False) as run:
        run.log_metric("m", 1.0, step=10)
        run.log_metric("m", 2.0)
        run.log_metrics({"m": 3.0}, step=100)
        run.log_metric("m", 4.0)
    assert history(client, run.id, "m")[0] == [10, 11, 100, 101]


def test_log_metrics_share_one_step_and_timestamp(client: Client) -> None:
    with client.start_run(log_environment=False) as run:
        run.log_metrics({"p": 0.1, "r": 0.2}, step=5, timestamp=1_700_000_000_123)
    for key in ("p", "r"):
        h = client.store.get_metric_history(run.id, key)
        assert (h.steps, h.timestamps) == ([5], [1_700_000_000_123])


def test_log_metrics_takes_only_a_mapping(client: Client) -> None:
    with client.start_run(log_environment=False) as run, pytest.raises(InvalidInput, match="mapping"):
        run.log_metrics([("a", 1.0)])  # type: ignore[arg-type]


def test_latest_metric_is_the_last_step(client: Client) -> None:
    with client.start_run(log_environment=False) as run:
        for i in range(100):
            run.log_metric("loss", 1.0 / (i + 1))
    assert client.get_run(run.id).metrics["loss"] == 1.0 / 100


# ---------------------------------------------------------------------------------------------- params, tags


def test_params_are_stored_as_text(client: Client) -> None:
    with client.start_run(log_environment=False, params={"C": 0.1}) as run:
        run.log_params({"layers": [64, 32], "opt": {"name": "adam"}, "name": "rf", "n": 3, "flag": None})
    assert client.get_run(run.id).params == {
        "C": "0.1",
        "layers": "[64, 32]",
        "opt": '{"name": "adam"}',
        "name": "rf",
        "n": "3",
        "flag": "None",
    }


def test_logging_a_param_again_with_the_same_value_is_fine(client: Client) -> None:
    with client.start_run(log_environment=False, params={"C": 0.1}) as run:
        run.log_param("C", 0.1)
        run.log_param("depth", 3)
        run.log_param("depth", "3")
    assert client.get_run(run.id).params == {"C": "0.1", "depth": "3"}


def test_changing_a_param_raises_invalid_input_at_the_call(client: Client) -> None:
    with client.start_run(log_environment=False, params={"C": 0.1}) as run:
        with pytest.raises(InvalidInput, match="immutable") as info:
            run.log_param("C", 0.2)
        assert "'0.1'" in str(info.value) and "'0.2'" in str(info.value)
        run.log_param("depth", 3)
        with pytest.raises(InvalidInput):
            run.log_params({"depth": 4, "other": 1})
    assert client.get_run(run.id).params == {"C": "0.1", "depth": "3"}


def test_too_long_param_is_refused_at_the_call(client: Client) -> None:
    with client.start_run(log_environment=False) as run, pytest.raises(InvalidInput, match="6000"):
        run.log_param("blob", "x" * 6001)


def test_tags_can_change(client: Client) -> None:
    with client.start_run(log_environment=False, tags={"stage": "dev"}) as run:
        run.set_tag("stage", "prod")
        run.set_tags({"n": 3})
    tags = client.get_run(run.id).tags
    assert (tags["stage"], tags["n"]) == ("prod", "3")


# ---------------------------------------------------------------------------------------------- durability


def test_flush_makes_data_visible_to_another_client_before_the_run_ends(
    client: Client, make_client: Callable[..., Client]
) -> None:
    reader = make_client()
    with client.start_run(log_environment=False) as run:
        run.log_metric("loss", 0.5)
        run.log_param("lr", 0.1)
        run.set_tag("phase", "warmup")
        run.flush()
        seen = reader.get_run(run.id)
        assert seen.status is RunStatus.RUNNING
        assert seen.metrics == {"loss": 0.5}
        assert seen.params == {"lr": "0.1"}
        assert seen.tags["phase"] == "warmup"


def test_background_flusher_writes_without_an_explicit_flush(client: Client) -> None:
    with client.start_run(log_environment=False) as run:
        run.log_metric("loss", 0.5)
        deadline = time.monotonic() + 5
        while client.get_run(run.id).metrics == {} and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.get_run(run.id).metrics == {"loss": 0.5}


def test_every_point_of_a_fast_loop_arrives_by_the_end_of_the_run(client: Client) -> None:
    with client.start_run(log_environment=False) as run:
        for i in range(20_000):
            run.log_metric("loss", float(i))
    steps, values = history(client, run.id, "loss")
    assert steps == list(range(20_000))
    assert values == [float(i) for i in range(20_000)]


class SlowStore:
    """A test double of our own ``Store`` seam: every batch write takes a while, and is measured."""

    def __init__(self, inner: Store, delay: float) -> None:
        self._inner = inner
        self._delay = delay
        self.batch_sizes: list[int] = []

    def log_batch(self, run_id: str, batch: LogBatch) -> None:
        self.batch_sizes.append(sum(1 for _ in batch.metric_rows()))
        time.sleep(self._delay)
        self._inner.log_batch(run_id, batch)

    def update_run(self, run_id: str, *, final_batch: LogBatch | None = None, **kwargs: Any) -> None:
        if final_batch:  # the run's last batch travels with its end
            self.batch_sizes.append(sum(1 for _ in final_batch.metric_rows()))
        self._inner.update_run(run_id, final_batch=final_batch, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_slow_store_applies_backpressure_and_loses_nothing(make_client: Callable[..., Client]) -> None:
    client = make_client(buffer_size=100, flush_interval=0.05)
    slow = SlowStore(client.store, delay=0.02)
    client.store = slow  # type: ignore[assignment]
    with client.start_run(log_environment=False) as run:
        started = time.monotonic()
        for i in range(1_000):
            run.log_metric("loss", float(i))
        producer_seconds = time.monotonic() - started
    assert max(slow.batch_sizes) <= 100  # never more than the buffer held
    assert sum(slow.batch_sizes) == 1_000
    # With at most 100 buffered and 100 in flight, >= 8 slow writes must finish before the loop can.
    assert producer_seconds >= 7 * 0.02
    assert history(client, run.id, "loss")[0] == list(range(1_000))


def test_logging_from_several_threads_into_one_run_loses_nothing(client: Client) -> None:
    with client.start_run(log_environment=False) as run:

        def work(key: str) -> None:
            for i in range(2_000):
                run.log_metric(key, float(i), step=i)

        threads = [threading.Thread(target=work, args=(f"t{n}",)) for n in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    for n in range(4):
        assert history(client, run.id, f"t{n}")[0] == list(range(2_000))


def test_a_store_error_surfaces_at_flush_not_in_the_training_loop(client: Client) -> None:
    class RefusingStore(SlowStore):
        def log_batch(self, run_id: str, batch: LogBatch) -> None:
            raise InvalidInput("refused")

    run = client.start_run(log_environment=False)
    run._logger._store = RefusingStore(client.store, 0)  # type: ignore[assignment]
    run.log_metric("loss", 1.0)  # never raises in the loop
    with pytest.raises(InvalidInput, match="refused"):
        run.flush()
    run.end()
    assert client.get_run(run.id).status is RunStatus.FINISHED


# ---------------------------------------------------------------------------------------------- series


def test_log_metric_series_stores_a_whole_curve_with_default_steps(client: Client) -> None:
    with client.start_run(log_environment=False) as run:
        run.log_metric("loss", 9.0)  # step 0
        run.log_metric_series("loss", np.array([3.0, 2.0, math.nan, 1.0]))  # steps 1..4
        run.log_metric("loss", 0.5)  # step 5 continues after the series
    steps, values = history(client, run.id, "loss")
    assert steps == [0, 1, 2, 3, 4, 5]
    assert values[:3] == [9.0, 3.0, 2.0] and math.isnan(values[3]) and values[4:] == [1.0, 0.5]
    assert client.get_run(run.id).metrics["loss"] == 0.5


def test_log_metric_series_takes_explicit_steps_and_timestamps(client: Client) -> None:
    with client.start_run(log_environment=False) as run:
        run.log_metric_series(
            "acc", [0.1, 0.2], steps=[10, 20], timestamps=[1_700_000_000_000, 1_700_000_000_500]
        )
    h = client.store.get_metric_history(run.id, "acc")
    assert (h.steps, h.timestamps, h.values) == ([10, 20], [1_700_000_000_000, 1_700_000_000_500], [0.1, 0.2])


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"values": ["a", "b"]}, InvalidMetricValue),
        ({"values": [[1.0, 2.0]]}, InvalidInput),
        ({"values": [1.0, 2.0], "steps": [1]}, InvalidInput),
        ({"values": [1.0, 2.0], "steps": [1.5, 2.0]}, InvalidInput),
        ({"values": [1.0], "timestamps": ["x"]}, InvalidInput),
    ],
    ids=["strings", "2-d", "short steps", "fractional step", "bad timestamp"],
)
def test_log_metric_series_refuses_bad_columns_at_the_call(
    client: Client, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with client.start_run(log_environment=False) as run, pytest.raises(error):
        run.log_metric_series("m", **kwargs)
