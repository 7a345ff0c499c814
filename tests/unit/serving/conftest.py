"""Fixtures: real scikit-learn models saved as model directories, and the model server on them in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from serving_harness import (
    MAX_REQUEST_BYTES,
    client_of,
    flights,
    folder_app,
    make_classifier,
    make_regressor,
)

from shipyard.registry.flavors import save_model_dir


@pytest.fixture(scope="session")
def train_frame() -> pd.DataFrame:
    return flights(400)


@pytest.fixture(scope="session")
def classifier(train_frame: pd.DataFrame) -> Any:
    return make_classifier(train_frame)


@pytest.fixture(scope="session")
def classifier_dir(
    tmp_path_factory: pytest.TempPathFactory, classifier: Any, train_frame: pd.DataFrame
) -> Path:
    path = tmp_path_factory.mktemp("models") / "flights-late"
    save_model_dir(classifier, path, input_example=train_frame.head(5))
    return path


@pytest.fixture(scope="session")
def regressor_dir(tmp_path_factory: pytest.TempPathFactory, train_frame: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("models") / "distance-reg"
    save_model_dir(make_regressor(train_frame), path, input_example=train_frame[["distance"]].head(3))
    return path


@pytest.fixture(scope="module")
def http(classifier_dir: Path) -> Iterator[httpx.Client]:
    """A client of the model server on the classifier folder (requests up to 64 KiB)."""
    yield from client_of(folder_app(classifier_dir, "flights-late", max_request_bytes=MAX_REQUEST_BYTES))


@pytest.fixture(scope="module")
def regressor_http(regressor_dir: Path) -> Iterator[httpx.Client]:
    yield from client_of(folder_app(regressor_dir, "distance-reg"))
