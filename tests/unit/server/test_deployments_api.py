"""Deployments through the REST API: the SDK works unchanged, specs are validated on the server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pandas as pd
import pytest
from server_harness import make_settings
from sklearn.tree import DecisionTreeClassifier

from shipyard.errors import NotFound
from shipyard.registry import core
from shipyard.serving import manage
from shipyard.store.rest import RestStore
from shipyard.tracking import Client


def test_deploy_promote_and_read_back_over_rest(rest_store: RestStore, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, tracking_uri="http://testserver", user="alice")
    client = Client.from_stores(settings, rest_store, rest_store.blob_store())
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0]})
    core.register_model(
        DecisionTreeClassifier().fit(X, [0, 1, 1]), "dep-model", input_example=X, client=client
    )
    spec = (
        "name: dep-rest\nvariants:\n"
        "  - {name: main, model: 'models:/dep-model/1', weight: 95}\n"
        "  - {name: canary, model: 'models:/dep-model/1', weight: 5, mode: canary}\n"
    )
    record = manage.deploy(spec, reason="first", client=client)
    assert record.version == 1 and record.created_by == "alice"
    assert manage.get_deployment("dep-rest", client=client).shares() == {"main": 0.95, "canary": 0.05}
    manage.promote_variant("dep-rest", "canary", client=client)
    assert [d.version for d in manage.deployment_history("dep-rest", client=client)] == [1, 2]
    with pytest.raises(NotFound):
        rest_store.get_deployment("nope")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "x", "spec_yaml": "name: x\nvariants: []", "actor": "a"}, 400),
        ({"name": "y", "spec_yaml": "name: x\nvariants: [{name: a, model: m}]", "actor": "a"}, 400),
        ({"name": "x", "spec_yaml": "name: [", "actor": "a"}, 400),
        ({"name": "x", "spec_yaml": "name: x", "actor": ""}, 400),  # no actor and no auth
    ],
)
def test_bad_specs_get_a_json_4xx(http: httpx.Client, body: dict[str, str], status: int) -> None:
    response = http.post("/api/v1/deployments", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]
