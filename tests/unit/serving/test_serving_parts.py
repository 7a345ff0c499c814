"""The serving engine's parts on their own: the log feed's policies, log row encoding, occlusion attributions
for multi-class and regression models, the router's refusals and command-line overrides."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from polling_helpers import await_until
from shipyard.errors import ConfigError, InvalidInput
from shipyard.registry.flavors import load_model_dir, save_model_dir
from shipyard.serving.app import apply_overrides
from shipyard.serving.deployment import single_model_deployment
from shipyard.serving.explain import explain_rows
from shipyard.serving.logfeed import LogFeed, encode_row
from shipyard.serving.router import Router
from shipyard.serving.slots import RegistrySource


class SlowSink:
    """A sink whose ``append`` blocks until released (a store that is slow to write)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.release = threading.Event()
        self.entered = threading.Event()  # an append is under way (and blocked until released)
        self.closed = False

    def append(self, rows: list[dict[str, Any]]) -> None:
        self.entered.set()
        self.release.wait(10)
        self.rows.extend(rows)

    def append_feedback(self, rows: list[dict[str, Any]]) -> None:
        self.rows.extend(rows)

    def stats(self) -> dict[str, int]:
        return {"buffered": 0, "written": len(self.rows), "dropped": 0}

    def close(self) -> None:
        self.closed = True


def row(i: int) -> dict[str, Any]:
    return {"request_id": f"r{i}", "inputs": [{"x": i}], "outputs": {"predictions": np.array([i])}}


@pytest.mark.parametrize("policy", ["drop", "block"])
def test_the_log_feed_drops_or_waits_when_the_sink_is_slow(policy: str) -> None:
    sink = SlowSink()
    feed = LogFeed(sink, max_pending=5, on_full=policy)

    async def main() -> tuple[dict[str, int], bool]:
        feed.start()
        await feed.put(row(0))
        await await_until(sink.entered.is_set, "row 0 handed over to the sink, which now blocks")
        puts = [asyncio.ensure_future(feed.put(row(i))) for i in range(1, 11)]
        # five rows fill the queue; the other five are dropped (drop) or wait for room (block)
        await await_until(lambda: feed.stats()["buffered"] == 5, "the queue to fill up")
        if policy == "drop":
            await await_until(lambda: all(p.done() for p in puts), "every put to return at once")
        all_done = all(p.done() for p in puts)
        stats = feed.stats()
        sink.release.set()
        await asyncio.gather(*puts)
        await feed.close()
        return stats, all_done

    stats, all_done = asyncio.run(main())
    assert sink.closed
    if policy == "drop":
        assert all_done and stats["dropped"] == 5 and stats["buffered"] == 5
        assert [r["request_id"] for r in sink.rows] == [f"r{i}" for i in range(6)]
    else:
        assert not all_done and stats["dropped"] == 0  # requests wait: nothing is lost
        assert [r["request_id"] for r in sink.rows] == [f"r{i}" for i in range(11)]


def test_log_rows_carry_inputs_and_outputs_as_json_text() -> None:
    columns = encode_row(
        {"inputs": {"columns": {"x": [1, 2], "k": ["a", "b"]}}, "outputs": {"predictions": [0, 1]}}
    )
    assert json.loads(columns["inputs"]) == [{"x": 1, "k": "a"}, {"x": 2, "k": "b"}]
    frame = encode_row({"inputs": pd.DataFrame({"x": [1.5]}), "outputs": {"predictions": np.array([1.0])}})
    assert json.loads(frame["inputs"]) == [{"x": 1.5}] and json.loads(frame["outputs"]) == {
        "predictions": [1.0]
    }
    odd = encode_row({"inputs": [{"x": 1}], "outputs": {"predictions": [object()]}})  # a shadow's nonsense
    assert "object" in odd["outputs"]


def test_occlusion_explains_multiclass_and_regression_models(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression, LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    labels = np.digitize(frame["a"], [-0.5, 0.5])  # three classes, decided by "a" alone
    save_model_dir(LogisticRegression().fit(frame, labels), tmp_path / "multi", input_example=frame)
    save_model_dir(LinearRegression().fit(frame, 3 * frame["b"]), tmp_path / "reg", input_example=frame)
    rows = pd.DataFrame({"a": [2.0, -2.0], "b": [0.0, 1.0]})

    multi = explain_rows(load_model_dir(tmp_path / "multi"), rows, frame)
    assert multi["method"] == "occlusion" and multi["target"] == "probability of the predicted class"
    assert all(abs(r["a"]) > abs(r["b"]) for r in multi["attributions"])

    reg = explain_rows(load_model_dir(tmp_path / "reg"), rows, frame)
    assert reg["target"] == "prediction"
    median_b = float(frame["b"].median())
    np.testing.assert_allclose(
        [r["b"] for r in reg["attributions"]], [3 * (0 - median_b), 3 * (1 - median_b)]
    )
    assert all(abs(r["a"]) < 1e-9 for r in reg["attributions"])


@pytest.mark.parametrize("shares", [{}, {"a": 0.0}, {"a": -1.0, "b": 2.0}])
def test_a_router_needs_positive_shares(shares: dict[str, float]) -> None:
    with pytest.raises(InvalidInput, match=r"cannot split traffic.*weight > 0"):
        Router(shares)


def test_a_registry_reference_without_a_client_says_how_to_serve_it() -> None:
    with pytest.raises(ConfigError, match=r"'models:/churn@prod' is a registry reference.*client="):
        RegistrySource(None).resolve("models:/churn@prod")


def test_overrides_replace_only_what_they_name() -> None:
    spec = single_model_deployment("models:/churn@champion", batching={"max_wait_ms": 3.0})
    changed = apply_overrides(
        spec, {"batching": {"max_batch_size": 512}, "prediction_log": {"enabled": False}}
    )
    assert (changed.batching.max_batch_size, changed.batching.max_wait_ms) == (512, 3.0)
    assert not changed.prediction_log.enabled and changed.variants == spec.variants
    assert apply_overrides(spec, None) is spec
