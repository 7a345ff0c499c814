"""Deployment-server harness: the app with its lifespan on one event loop, an async client, a registry of
real scikit-learn models in a temporary SQLite store, and an in-memory prediction sink."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pandas as pd
from fastapi import FastAPI
from serving_harness import flights, late

from polling_helpers import await_until
from shipyard.registry import core
from shipyard.tracking import Client

FEATURES = ["dep_delay", "distance", "carrier"]


class MemorySink:
    """A prediction sink that keeps rows in memory (the predlog protocol)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.feedback: list[dict[str, Any]] = []
        self.closed = False
        self._lock = threading.Lock()

    def append(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            self.rows.extend(rows)

    def append_feedback(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            self.feedback.extend(rows)

    def stats(self) -> dict[str, int]:
        return {"buffered": 0, "written": len(self.rows), "dropped": 0, "flushes": 0}

    def close(self) -> None:
        self.closed = True


@asynccontextmanager
async def running(app: FastAPI, wait_ready: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """The app started (lifespan) and ready, a client of it, and a graceful shutdown at the end."""
    async with app.router.lifespan_context(app):
        if wait_ready:
            await await_until(app.state.engine.ready, "the deployment to load", timeout=30)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON carries them (NaN → null)."""
    return [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in frame.astype(object).to_dict(orient="records")
    ]


class Raises:
    """A shadow model that always fails."""

    def predict(self, frame: pd.DataFrame) -> Any:
        raise RuntimeError("shadow model exploded")


class Garbage:
    """A shadow model that answers nonsense (strings, the wrong number of them)."""

    def predict(self, frame: pd.DataFrame) -> Any:
        return np.array(["garbage"] * (len(frame) + 1))


class PicksyModel:
    """A model that refuses negative distances at predict time (the signature allows them)."""

    def predict(self, frame: pd.DataFrame) -> Any:
        if (frame["distance"] < 0).any():
            raise ValueError("negative distance")
        return frame["distance"].to_numpy() * 2


@dataclass
class Registry:
    client: Client
    v1: int  # the classifier
    v2: int  # the same pipeline trained on flipped labels: it answers the opposite
    frame: pd.DataFrame
    models: dict[int, Any]

    def alias(self, alias: str, version: int) -> str:
        self.client.store.set_model_alias("flights", alias, version, "tests")
        return f"models:/flights@{alias}"


def make_registry(root: Any, make_classifier: Any) -> Registry:
    client = Client(tracking_uri=f"sqlite:///{root / 'reg.db'}", artifact_uri=str(root / "artifacts"))
    frame = flights(400)
    first = make_classifier(frame)
    second = make_classifier(frame.assign(dep_delay=-frame["dep_delay"]))
    v1 = core.register_model(first, "flights", input_example=frame.head(5), client=client)
    v2 = core.register_model(second, "flights", input_example=frame.head(5), client=client)
    for name, model in (("raises", Raises()), ("garbage", Garbage())):
        core.register_model(model, name, input_example=frame.head(5), client=client)
    return Registry(client, v1.version, v2.version, frame, {v1.version: first, v2.version: second})


def expected(model: Any, rows: list[dict[str, Any]]) -> list[Any]:
    return list(model.predict(pd.DataFrame(rows, columns=FEATURES).astype({"carrier": object})).tolist())


__all__ = [
    "FEATURES",
    "Garbage",
    "MemorySink",
    "PicksyModel",
    "Raises",
    "Registry",
    "expected",
    "late",
    "make_registry",
    "records",
    "running",
]
