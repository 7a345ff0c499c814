"""In-process model server harness and test data: the app behind ``httpx.ASGITransport``, driven
synchronously (as in tests/unit/server: ``starlette.testclient`` warns with httpx), and a flights-like
table with the scikit-learn models trained on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import numpy as np
import pandas as pd
from fastapi import FastAPI

from shipyard.serving import ServeOptions, create_deployment_app, single_model_deployment

MAX_REQUEST_BYTES = 64 * 1024


class SyncASGITransport(httpx.BaseTransport):
    """A synchronous httpx transport that calls an ASGI app in-process."""

    def __init__(self, app: FastAPI) -> None:
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        # Crashes must come back as the app's own 500 answer, as a real server would send it.
        self._inner = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        inner = httpx.Request(request.method, request.url, headers=request.headers, content=body)
        if "transfer-encoding" in request.headers:  # keep a chunked upload chunked (no length)
            del inner.headers["content-length"]

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            response = await self._inner.handle_async_request(inner)
            content = await response.aread()
            return response.status_code, response.headers.raw, content

        status, headers, content = self._portal.call(call)
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        self._portal_cm.__exit__(None, None, None)


def flights(n: int, seed: int = 0) -> pd.DataFrame:
    """A small flights-like table: a float with nulls, an int and a string column."""
    rng = np.random.default_rng(seed)
    delay = rng.normal(10, 20, n).round(1)
    delay[::17] = np.nan
    return pd.DataFrame(
        {
            "dep_delay": delay,
            "distance": rng.integers(100, 3000, n),
            "carrier": rng.choice(["UA", "AA", "DL", "B6"], n),
        }
    )


def late(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    return ((frame["dep_delay"].fillna(0) > 15) | (frame["carrier"] == "B6")).to_numpy().astype(int)


def make_classifier(frame: pd.DataFrame) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["dep_delay", "distance"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["carrier"]),
        ]
    )
    model = Pipeline([("features", features), ("clf", LogisticRegression(max_iter=1000))])
    return model.fit(frame, late(frame))


def make_regressor(frame: pd.DataFrame) -> Any:
    from sklearn.linear_model import LinearRegression

    numbers = frame[["distance"]]
    return LinearRegression().fit(numbers, frame["distance"] * 0.1 + 3)


def served(app: FastAPI, variant: str = "main") -> Any:
    """The ModelService a variant of the app serves right now."""
    return app.state.engine.plan.variants[variant].slot.current.service


def folder_app(
    path: Path, label: str = "", *, trust: bool = False, max_request_bytes: int | None = None
) -> FastAPI:
    """The server ``shipyard serve DIR`` runs (one folder as a one-variant deployment; no store, no
    prediction log, no polling), answering under ``label``, its model loaded (no lifespan needed)."""
    spec = single_model_deployment(
        str(path), name=path.name, prediction_log={"enabled": False}, reload={"poll_interval_s": 0}
    )
    labels = {str(path): label} if label else {}
    options = ServeOptions(trust=trust, labels=labels, max_request_bytes=max_request_bytes)
    app = create_deployment_app(spec, options)
    app.state.engine.preload()
    return app


def client_of(app: FastAPI) -> Iterator[httpx.Client]:
    transport = SyncASGITransport(app)
    try:
        with httpx.Client(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        transport.close()
