"""The micro-batcher on its own: one event-loop wake-up per batch, grouping by columns and dtypes."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.serving import batching
from shipyard.serving.batching import BatchItem, MicroBatcher, PredictorOutput


class Doubler:
    """Predicts twice column ``x``; refuses a row whose ``x`` is negative (so that row fails alone)."""

    def __init__(self) -> None:
        self.frames: list[pd.DataFrame] = []

    def predict_checked(self, frame: pd.DataFrame, *, proba: bool) -> PredictorOutput:
        self.frames.append(frame)
        if (frame["x"] < 0).any():
            raise ValueError("negative x")
        return PredictorOutput(frame["x"].to_numpy() * 2)


def _count_wakeups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = asyncio.BaseEventLoop.call_soon_threadsafe

    def counting(self: Any, callback: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(callback, "__module__", None) == batching.__name__:  # not asyncio.to_thread's own
            calls.append(1)
        return original(self, callback, *args, **kwargs)

    monkeypatch.setattr(asyncio.BaseEventLoop, "call_soon_threadsafe", counting)
    return calls


def _frame(x: float) -> pd.DataFrame:
    return pd.DataFrame({"x": [x]})


def test_a_batch_wakes_the_event_loop_once_and_each_request_gets_its_own_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = Doubler()

    async def main() -> list[Any]:
        batcher = MicroBatcher(max_batch_size=64, max_wait_ms=0)
        loop = asyncio.get_running_loop()
        batch = [BatchItem(service, _frame(float(i)), False, loop.create_future()) for i in range(8)]
        wakeups = _count_wakeups(monkeypatch)
        await asyncio.to_thread(batcher._predict_batch, batch)
        await asyncio.sleep(0)
        assert len(wakeups) == 1  # not one per request
        return [item.future.result().predictions.tolist() for item in batch]

    assert asyncio.run(main()) == [[2.0 * i] for i in range(8)]
    assert len(service.frames) == 1  # one model call for the whole batch


def test_a_failing_row_fails_alone_and_cancelled_requests_are_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = Doubler()

    async def main() -> None:
        batcher = MicroBatcher(max_batch_size=64, max_wait_ms=0)
        loop = asyncio.get_running_loop()
        batch = [BatchItem(service, _frame(x), False, loop.create_future()) for x in (1.0, -1.0, 3.0, 4.0)]
        batch[3].future.cancel()  # the client went away
        wakeups = _count_wakeups(monkeypatch)
        await asyncio.to_thread(batcher._predict_batch, batch)
        await asyncio.sleep(0)
        assert len(wakeups) == 1
        assert batch[0].future.result().predictions.tolist() == [2.0]
        with pytest.raises(ValueError, match="negative x"):
            batch[1].future.result()
        assert batch[2].future.result().predictions.tolist() == [6.0]
        assert batch[3].future.cancelled()

    asyncio.run(main())


def test_requests_submitted_together_share_calls_and_get_their_own_rows() -> None:
    service = Doubler()

    async def main() -> list[Any]:
        batcher = MicroBatcher(max_batch_size=64, max_wait_ms=0)
        outputs = await asyncio.gather(
            *(batcher.submit(service, _frame(float(i)), proba=False) for i in range(20))
        )
        await batcher.close()
        return [o.predictions.tolist() for o in outputs]

    assert asyncio.run(main()) == [[2.0 * i] for i in range(20)]
    assert sum(len(f) for f in service.frames) == 20


def test_groups_split_by_model_columns_and_dtypes() -> None:
    a, b = Doubler(), Doubler()
    future: Any = None
    floats = BatchItem(a, _frame(1.0), False, future)
    floats2 = BatchItem(a, _frame(2.0), False, future)
    ints = BatchItem(a, pd.DataFrame({"x": np.array([1], dtype="int64")}), False, future)
    other_columns = BatchItem(a, pd.DataFrame({"x": [1.0], "y": [2.0]}), False, future)
    other_model = BatchItem(b, _frame(3.0), False, future)
    items = [floats, ints, floats2, other_columns, other_model]
    groups = batching._groups(items)
    assert groups == [[floats, floats2], [ints], [other_columns], [other_model]]
    assert batching._groups([ints]) == [[ints]]  # a lone request is its own group, no keys built
    for item in items:
        assert batching._dtypes(item.checked) == tuple(item.checked.dtypes)
