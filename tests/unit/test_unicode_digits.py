"""Digits that are not ASCII ("9¹", "²") are not version numbers: every reader of a version
reference refuses them as it refuses any other bad reference, never with an int() crash
(str.isdigit() is true for "¹", int() raises ValueError on it)."""

from __future__ import annotations

import pytest

from shipyard import Client
from shipyard.errors import ShipyardError
from shipyard.registry.references import ModelRef
from shipyard.server.mlflow.registry import _number
from shipyard.server.mlflow.wire import MlflowApiError

SUPERSCRIPTS = ["¹", "9¹", "v²", "²³"]


@pytest.mark.parametrize("ref", SUPERSCRIPTS)
def test_the_store_refuses_superscript_versions(client: Client, ref: str) -> None:
    store = client.store
    for read in (
        lambda: store.get_model_version("m", ref),
        lambda: store.get_dataset_version("d", ref),
        lambda: store.get_deployment("dep", ref),
    ):
        with pytest.raises(ShipyardError):
            read()


@pytest.mark.parametrize("ref", SUPERSCRIPTS)
def test_a_model_reference_with_superscripts_has_no_version_number(ref: str) -> None:
    assert ModelRef("m", ref).version is None


@pytest.mark.parametrize("ref", SUPERSCRIPTS)
def test_mlflow_registry_refuses_superscript_versions(ref: str) -> None:
    with pytest.raises(MlflowApiError, match="whole number"):
        _number(ref)
