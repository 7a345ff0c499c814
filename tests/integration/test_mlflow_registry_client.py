"""The real MLflow client against a live Shipyard server: its model registry calls land in Shipyard's
registry (the versions and aliases are Shipyard's, read back through the Shipyard SDK), aliases move
through the promotion policy, and what Shipyard refuses raises ``MlflowException`` with the reason.

The MLflow model folder is written by ``mlflow.sklearn.save_model`` itself and logged to a run with the
Shipyard SDK; registering it with ``mlflow.register_model("runs:/…")`` and loading it with
``mlflow.pyfunc.load_model`` need MLflow's tracking API on the server too (get-run, the artifact proxy).
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Callable, Iterator

import pandas as pd
import pytest
from server_process import LiveServer
from sklearn.linear_model import LogisticRegression

import shipyard as sy
from shipyard import Client
from shipyard.config import load_settings
from shipyard.registry import governance

with warnings.catch_warnings():  # MLflow warns about its own type hints while it imports: not ours
    warnings.simplefilter("ignore")
    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn
    from mlflow.exceptions import MlflowException
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.integration

X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
Y = [0, 0, 1, 1]
SERVER_USER = "registry-server"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("mlflow-registry")
    roles = root / "roles.yaml"
    roles.write_text("admin: [dave]\napprover: [bob]\n")
    live = LiveServer(root, env={"SHIPYARD_ROLES_FILE": str(roles), "SHIPYARD_USER": SERVER_USER}).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def mlflow_client(server: LiveServer) -> Iterator[MlflowClient]:
    saved = {k: os.environ.get(k) for k in ("MLFLOW_DISABLE_TELEMETRY", "MLFLOW_TRACKING_URI")}
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"  # the client stays on this machine
    os.environ["MLFLOW_TRACKING_URI"] = server.url
    mlflow.set_tracking_uri(server.url)
    yield MlflowClient(tracking_uri=server.url, registry_uri=server.url)
    mlflow.set_tracking_uri(None)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def shipyard(server: LiveServer) -> Iterator[Callable[[str], Client]]:
    """Shipyard SDK clients of the server, one per user (``shipyard("dave")``), closed at the end."""
    clients: dict[str, Client] = {}

    def client(user: str = "alice") -> Client:
        if user not in clients:
            clients[user] = Client(
                settings=load_settings(tracking_uri=server.url, user=user, system_metrics=False)
            )
        return clients[user]

    yield client
    for c in clients.values():
        c.close()


@pytest.fixture(scope="module")
def logged(shipyard: Callable[[str], Client], tmp_path_factory: pytest.TempPathFactory) -> str:
    """A run (logged with the Shipyard SDK) whose artifacts hold a folder written by
    ``mlflow.sklearn.save_model(..., serialization_format="skops")`` under ``model``; its id."""
    folder = tmp_path_factory.mktemp("folder") / "model"
    model = LogisticRegression().fit(X, Y)
    signature = infer_signature(X, model.predict(X))  # (an input_example trips a pandas warning in MLflow)
    mlflow.sklearn.save_model(model, folder, serialization_format="skops", signature=signature)
    client = shipyard("alice")
    with client.start_run(experiment="mlflow-registry", log_environment=False) as run:
        client.log_artifact(run.id, folder, "model")
    return run.id


@pytest.fixture
def name(mlflow_client: MlflowClient) -> str:
    created = mlflow_client.create_registered_model(f"reg-{uuid.uuid4().hex[:10]}", description="by mlflow")
    return str(created.name)


def test_a_version_created_by_the_mlflow_client_is_a_shipyard_version(
    mlflow_client: MlflowClient, shipyard: Callable[[str], Client], logged: str, name: str
) -> None:
    mv = mlflow_client.create_model_version(
        name, f"runs:/{logged}/model", run_id=logged, tags={"team": "risk"}, description="first"
    )
    assert (mv.version, mv.status, mv.current_stage, mv.run_id) == ("1", "READY", "None", logged)
    assert (mv.tags, mv.description, mv.source) == ({"team": "risk"}, "first", f"runs:/{logged}/model")
    assert mv.user_id == SERVER_USER  # no auth on this server: it acts as its own user
    client = shipyard("alice")
    version = sy.get_model_version(f"models:/{name}/1", client=client)
    assert (version.flavor, version.run_id, version.tags) == ("sklearn", logged, {"team": "risk"})
    assert {"MLmodel", "model.skops", "shipyard-model.yaml"} <= {f.path for f in version.files}
    loaded = sy.load_model(f"models:/{name}/1", client=client)  # the MLflow folder, Shipyard's safe loading
    assert list(loaded.predict(X)) == list(LogisticRegression().fit(X, Y).predict(X))
    assert mlflow_client.get_model_version_download_uri(name, "1") == f"runs:/{logged}/model"


def test_aliases_are_shared_both_ways(
    mlflow_client: MlflowClient, shipyard: Callable[[str], Client], logged: str, name: str
) -> None:
    mlflow_client.create_model_version(name, f"runs:/{logged}/model", run_id=logged)
    mlflow_client.set_registered_model_alias(name, "champion", "1")
    client = shipyard("alice")
    assert sy.get_registered_model(name, client=client).aliases == {"champion": 1}
    (record,) = sy.list_model_records(name, kind="promotion", client=client)
    assert record.body["status"] == "promoted" and record.actor == SERVER_USER
    sy.promote_model(name, 1, alias="challenger", client=client)
    by_alias = mlflow_client.get_model_version_by_alias(name, "challenger")
    assert by_alias.version == "1" and sorted(by_alias.aliases) == ["challenger", "champion"]
    assert mlflow_client.get_registered_model(name).aliases == {"challenger": "1", "champion": "1"}
    mlflow_client.delete_registered_model_alias(name, "challenger")
    assert sy.get_registered_model(name, client=client).aliases == {"champion": 1}


def test_a_failing_gate_refuses_the_alias_with_the_gates_reason(
    mlflow_client: MlflowClient, shipyard: Callable[[str], Client], logged: str, name: str
) -> None:
    mlflow_client.create_model_version(name, f"runs:/{logged}/model", run_id=logged)
    policy = {"gates": [{"max_size_mb": 0.000001}]}
    governance.set_promotion_policy(name, policy, reason="tiny models only", client=shipyard("dave"))
    with pytest.raises(MlflowException, match=r"gate failed: model size ≤ 1e-06 MB \(size_mb=") as info:
        mlflow_client.set_registered_model_alias(name, "champion", "1")
    assert info.value.error_code == "INVALID_STATE"
    client = shipyard("alice")
    assert sy.get_registered_model(name, client=client).aliases == {}
    assert [r.body["status"] for r in sy.list_model_records(name, kind="promotion", client=client)] == [
        "blocked"
    ]
    governance.set_promotion_policy(name, None, client=shipyard("dave"))
    mlflow_client.set_registered_model_alias(name, "champion", "1")
    assert mlflow_client.get_model_version_by_alias(name, "champion").version == "1"


def test_search_tags_and_descriptions_through_the_mlflow_client(
    mlflow_client: MlflowClient, shipyard: Callable[[str], Client], logged: str, name: str
) -> None:
    mlflow_client.create_model_version(name, f"runs:/{logged}/model", run_id=logged)
    mlflow_client.update_registered_model(name, description="predicts churn")
    mlflow_client.set_registered_model_tag(name, "domain", "churn")
    mlflow_client.update_model_version(name, "1", description="v1 by mlflow")
    mlflow_client.set_model_version_tag(name, "1", "validated", "yes")
    model = mlflow_client.get_registered_model(name)
    assert (model.description, model.tags) == ("predicts churn", {"domain": "churn"})
    assert [v.version for v in model.latest_versions] == ["1"]
    found = mlflow_client.search_registered_models(
        filter_string=f"name LIKE '{name[:8]}%' AND tags.domain = 'churn'"
    )
    assert name in [m.name for m in found]
    versions = mlflow_client.search_model_versions(f"name = '{name}' AND tags.validated = 'yes'")
    assert [(v.version, v.description) for v in versions] == [("1", "v1 by mlflow")]
    assert [v.name for v in mlflow_client.search_model_versions(f"run_id = '{logged}'")].count(name) == 1
    mlflow_client.delete_model_version_tag(name, "1", "validated")
    mlflow_client.delete_registered_model_tag(name, "domain")
    client = shipyard("alice")
    assert sy.get_registered_model(name, client=client).tags == {}
    assert sy.get_model_version(f"models:/{name}/1", client=client).description == "v1 by mlflow"
    with pytest.warns(FutureWarning, match="stages"):  # MLflow deprecates stages; Shipyard answers its way
        assert [v.version for v in mlflow_client.get_latest_versions(name, stages=["None"])] == ["1"]
        assert mlflow_client.get_latest_versions(name, stages=["Production"]) == []


def test_search_pages_through_every_model(mlflow_client: MlflowClient) -> None:
    prefix = f"page-{uuid.uuid4().hex[:6]}"
    for i in range(5):
        mlflow_client.create_registered_model(f"{prefix}-{i}")
    first = mlflow_client.search_registered_models(
        f"name LIKE '{prefix}%'", max_results=2, order_by=["name DESC"]
    )
    names = [m.name for m in first]
    token = first.token
    while token:
        page = mlflow_client.search_registered_models(
            f"name LIKE '{prefix}%'", max_results=2, order_by=["name DESC"], page_token=token
        )
        names += [m.name for m in page]
        token = page.token
    assert names == [f"{prefix}-{i}" for i in (4, 3, 2, 1, 0)]


def _staged(client: MlflowClient, name: str) -> None:
    with pytest.warns(FutureWarning, match="stages"):
        client.transition_model_version_stage(name, "1", "Production")


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda c, n: c.rename_registered_model(n, n + "-renamed"), "does not rename"),
        (lambda c, n: c.delete_registered_model(n), "does not delete registered models"),
        (lambda c, n: c.delete_model_version(n, "1"), "does not delete model versions"),
        (lambda c, n: _staged(c, n), "set_registered_model_alias"),
        (lambda c, n: c.create_registered_model(n), "already exists"),
    ],
)
def test_what_shipyard_refuses_raises_mlflow_exception_with_the_reason(
    mlflow_client: MlflowClient, logged: str, name: str, call: object, reason: str
) -> None:
    mlflow_client.create_model_version(name, f"runs:/{logged}/model", run_id=logged)
    with pytest.raises(MlflowException, match=reason):
        call(mlflow_client, name)  # type: ignore[operator]
    assert mlflow_client.get_model_version(name, "1").version == "1"
