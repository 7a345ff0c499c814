"""MLflow 3's model logging against a live Shipyard server (auth on), with MLflow's own client:
``mlflow.sklearn.log_model`` and ``autolog()`` log *logged models* whose files are their run's
artifacts, ``mlflow.register_model`` registers them into Shipyard's registry, and the registered
version loads through MLflow (``mlflow.pyfunc.load_model``) and through Shipyard's safe loading, or
is refused by it with the reason.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from server_process import LiveServer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

import shipyard as sy
from shipyard import Client
from shipyard.config import load_settings
from shipyard.errors import UnsafeModel

with warnings.catch_warnings():  # MLflow warns about its own type hints while it imports: not ours
    warnings.simplefilter("ignore")
    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModelStatus
    from mlflow.exceptions import MlflowException

pytestmark = [
    # MLflow's client warns about things of its own (pydantic, pkg_resources, signature inference)
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

ADMIN = "sy_" + "mlflow-models-admin-token-0123456789abcdef"
_MLFLOW_ENV = {
    "MLFLOW_TRACKING_TOKEN": ADMIN,
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",  # an error is an answer here, not a reason to wait
}
X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "b": [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]})
Y = np.array([0, 0, 0, 1, 1, 1])
REQUIREMENTS = ["scikit-learn", "skops"]  # given: MLflow would infer them in a subprocess (seconds)


def _double(frame: pd.DataFrame) -> pd.DataFrame:
    """Code inside a pickled pipeline: what Shipyard's safe loading refuses to import."""
    return frame * 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("mlflow-models")
    live = LiveServer(root, env={"SHIPYARD_AUTH": "true", "SHIPYARD_ADMIN_TOKEN": ADMIN}).start()
    saved = {k: os.environ.get(k) for k in [*_MLFLOW_ENV, "MLFLOW_TRACKING_URI"]}
    os.environ.update(_MLFLOW_ENV)
    mlflow.set_tracking_uri(live.url)
    try:
        yield live
    finally:
        while mlflow.active_run():
            mlflow.end_run()
        mlflow.set_tracking_uri(None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        live.stop()


@pytest.fixture
def tracking(server: LiveServer) -> MlflowClient:
    mlflow.set_tracking_uri(server.url)
    return MlflowClient(tracking_uri=server.url, registry_uri=server.url)


@pytest.fixture
def shipyard_client(server: LiveServer, tmp_path: Path) -> Iterator[Client]:
    settings = load_settings(
        tracking_uri=server.url, token=ADMIN, home=str(tmp_path / "home"), system_metrics=False
    )
    client = Client(settings=settings)
    yield client
    client.close()


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_log_model_then_register_alias_and_load_through_mlflow_and_shipyard(
    tracking: MlflowClient, shipyard_client: Client
) -> None:
    model = LogisticRegression().fit(X, Y)
    expected = list(model.predict(X))
    mlflow.set_experiment("mlflow-models")
    with mlflow.start_run() as run:
        mlflow.log_metric("val_acc", 0.75)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format="skops",
            input_example=X.head(2),
            pip_requirements=REQUIREMENTS,
        )
    run_id = run.info.run_id
    logged = tracking.get_logged_model(info.model_id)
    assert (logged.name, logged.source_run_id, logged.status) == ("model", run_id, LoggedModelStatus.READY)
    assert logged.artifact_location.endswith(f"/{run_id}/artifacts/models/{info.model_id}")
    assert [(m.key, m.value, m.model_id) for m in logged.metrics] == [("val_acc", 0.75, info.model_id)]
    assert [m.value for m in tracking.get_metric_history(run_id, "val_acc")] == [0.75]  # not logged twice
    outputs = tracking.get_run(run_id).outputs.model_outputs
    assert [(o.model_id, o.step) for o in outputs] == [(info.model_id, 0)]
    files = {a.path for a in shipyard_client.list_artifacts(run_id)}  # the run's own artifacts
    assert {f"models/{info.model_id}/MLmodel", f"models/{info.model_id}/model.skops"} <= files

    name = _name("churn")
    version = mlflow.register_model(f"runs:/{run_id}/model", name)
    assert (version.version, version.run_id) == ("1", run_id)  # (MLflow's client drops model_id)
    assert tracking.get_logged_model(info.model_id).tags["mlflow.modelVersions"]  # the client's link
    again = mlflow.register_model(f"models:/{info.model_id}", name)
    assert again.version == "1"  # the same files: Shipyard's versions are content-addressed
    tracking.set_registered_model_alias(name, "champion", version.version)

    loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert list(loaded.predict(X)) == expected
    assert list(mlflow.pyfunc.load_model(f"models:/{info.model_id}").predict(X)) == expected
    assert list(mlflow.pyfunc.load_model(f"runs:/{run_id}/model").predict(X)) == expected
    ours = sy.load_model(f"models:/{name}@champion", client=shipyard_client)
    assert list(ours.predict(X)) == expected
    mv = sy.get_model_version(f"models:/{name}/1", client=shipyard_client)
    assert (mv.flavor, mv.run_id, mv.metadata["artifact"]) == ("sklearn", run_id, f"models/{info.model_id}")


def test_autolog_with_defaults_logs_params_metrics_and_the_model(
    tracking: MlflowClient, shipyard_client: Client
) -> None:
    experiment = mlflow.set_experiment("mlflow-models-autolog")
    mlflow.sklearn.autolog(silent=True)  # log_models=True by default: the model is a logged model
    try:
        with mlflow.start_run() as run:
            model = LogisticRegression(C=0.5).fit(X, Y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    run_id = run.info.run_id
    stored = shipyard_client.get_run(run_id)
    assert stored.params["C"] == "0.5"
    assert stored.metrics["training_accuracy_score"] == pytest.approx(model.score(X, Y))
    assert [m.step for m in tracking.get_metric_history(run_id, "training_accuracy_score")] == [0]
    (logged,) = mlflow.search_logged_models(
        experiment_ids=[experiment.experiment_id],
        filter_string=f"source_run_id = '{run_id}'",
        output_format="list",
    )
    assert (logged.name, logged.status) == ("model", LoggedModelStatus.READY)
    assert logged.params["C"] == "0.5"
    metrics = {m.key: (m.value, m.dataset_name) for m in logged.metrics}
    assert metrics["training_accuracy_score"] == (stored.metrics["training_accuracy_score"], "dataset")

    name = _name("autologged")
    version = mlflow.register_model(f"runs:/{run_id}/model", name)
    ours = sy.load_model(f"models:/{name}/{version.version}", client=shipyard_client)
    assert list(ours.predict(X)) == list(model.predict(X))


def test_a_pickled_model_with_code_loads_in_mlflow_and_is_refused_by_shipyard(
    tracking: MlflowClient, shipyard_client: Client
) -> None:
    pipeline = make_pipeline(FunctionTransformer(_double), LogisticRegression()).fit(X, Y)
    mlflow.set_experiment("mlflow-models")
    name = _name("pickled")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            serialization_format="cloudpickle",
            input_example=X.head(2),
            pip_requirements=REQUIREMENTS,
            registered_model_name=name,  # log and register in one call
        )
    assert info.registered_model_version == "1"
    assert list(mlflow.pyfunc.load_model(f"models:/{name}/1").predict(X)) == list(pipeline.predict(X))
    mv = sy.get_model_version(f"models:/{name}/1", client=shipyard_client)
    assert mv.flavor == "python_function"  # a pickle: scanned, then only the restricted unpickler
    with pytest.raises(UnsafeModel, match="_double"):
        sy.load_model(f"models:/{name}/1", client=shipyard_client)


def test_logged_models_are_searched_tagged_and_deleted_with_the_client(tracking: MlflowClient) -> None:
    experiment = mlflow.set_experiment("mlflow-models-client")
    with mlflow.start_run() as run:
        first = mlflow.initialize_logged_model(name="first", model_type="agent", params={"lr": "0.1"})
        second = mlflow.initialize_logged_model(name="second", tags={"team": "risk"})
    tracking.finalize_logged_model(first.model_id, LoggedModelStatus.READY)
    tracking.set_logged_model_tags(first.model_id, {"stage": "dev"})
    tracking.delete_logged_model_tag(second.model_id, "team")
    found = tracking.search_logged_models(
        [experiment.experiment_id], filter_string="params.lr = '0.1' AND status = 'READY'"
    )
    assert [m.model_id for m in found] == [first.model_id]
    assert found[0].tags["stage"] == "dev" and found[0].model_type == "agent"
    ordered = tracking.search_logged_models(
        [experiment.experiment_id], order_by=[{"field_name": "name", "ascending": False}], max_results=1
    )
    assert [m.name for m in ordered] == ["second"] and ordered.token
    tracking.delete_logged_model(second.model_id)
    with pytest.raises(MlflowException, match="not found") as info:
        tracking.get_logged_model(second.model_id)
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert run.info.run_id == first.source_run_id


def test_a_logged_model_without_a_run_is_refused_with_the_reason(tracking: MlflowClient) -> None:
    mlflow.set_experiment("mlflow-models-client")
    with pytest.raises(MlflowException, match=r"needs a source run: log it inside mlflow.start_run\(\)"):
        mlflow.initialize_logged_model(name="orphan")
