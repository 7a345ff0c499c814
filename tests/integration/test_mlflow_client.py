"""MLflow's own client against a live ``shipyard server`` (auth on): existing MLflow code logs to
Shipyard by changing its tracking URI, and what it logs is a normal Shipyard run (and back).

One server for the module, with authentication: MLflow's client sends the token it finds in
``MLFLOW_TRACKING_TOKEN`` as ``Authorization: Bearer``. Every call in ``docs/mlflow.md``'s table
marked "works" is exercised here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import LiveServer

from shipyard import Client
from shipyard.config import load_settings

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

pytestmark = [
    # MLflow's client warns about things of its own (pydantic, pkg_resources, signature inference)
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

ADMIN = "sy_" + "mlflow-client-admin-token-0123456789abcdef"
_MLFLOW_ENV = {
    "MLFLOW_TRACKING_TOKEN": ADMIN,
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",  # an error is an answer here, not a reason to wait
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("mlflow-client")
    live = LiveServer(root, env={"SHIPYARD_AUTH": "true", "SHIPYARD_ADMIN_TOKEN": ADMIN}).start()
    saved = {k: os.environ.get(k) for k in [*_MLFLOW_ENV, "MLFLOW_TRACKING_URI"]}
    os.environ.update(_MLFLOW_ENV)
    mlflow.set_tracking_uri(live.url)
    try:
        yield live
    finally:
        while mlflow.active_run():
            mlflow.end_run()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        live.stop()


@pytest.fixture
def shipyard_client(server: LiveServer, tmp_path: Path) -> Iterator[Client]:
    settings = load_settings(
        tracking_uri=server.url, token=ADMIN, home=str(tmp_path / "home"), system_metrics=False
    )
    client = Client(settings=settings)
    yield client
    client.close()


@pytest.fixture
def tracking(server: LiveServer) -> MlflowClient:
    mlflow.set_tracking_uri(server.url)
    return MlflowClient(server.url)


def test_mlflow_code_logs_a_normal_shipyard_run(tracking: MlflowClient, shipyard_client: Client) -> None:
    experiment = mlflow.set_experiment("mlflow-basics")
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_param("lr", 0.1)
        mlflow.log_params({"depth": 3, "model": "rf"})
        for step, loss in enumerate([0.9, 0.5, 0.3]):
            mlflow.log_metric("loss", loss, step=step)
        mlflow.log_metrics({"acc": 0.91, "f1": 0.8}, step=2)
        mlflow.set_tag("team", "risk")
        mlflow.set_tags({"stage": "dev"})
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("acc", 0.5)
    with mlflow.start_run(run_id=parent.info.run_id):  # resumed: running again, then finished again
        assert shipyard_client.get_run(parent.info.run_id).status.value == "running"
        mlflow.log_metric("resumed", 1.0)
    run = shipyard_client.get_run(parent.info.run_id)
    assert (run.name, run.status.value, run.experiment_name) == ("parent", "finished", "mlflow-basics")
    assert run.user == "admin"  # the token's user, whatever MLflow's client says
    assert run.params == {"lr": "0.1", "depth": "3", "model": "rf"}
    assert run.metrics == {"loss": 0.3, "acc": 0.91, "f1": 0.8, "resumed": 1.0}
    assert run.tags["team"] == "risk" and run.tags["stage"] == "dev" and "mlflow.runName" not in run.tags
    assert run.source  # mlflow.source.name: what ran (pytest's script here)
    nested = shipyard_client.get_run(child.info.run_id)
    assert nested.parent_run_id == parent.info.run_id and nested.experiment_id == int(
        experiment.experiment_id
    )
    got = tracking.get_run(parent.info.run_id)
    assert got.info.status == "FINISHED" and got.info.lifecycle_stage == "active"
    assert got.info.run_name == "parent" and got.data.tags["mlflow.runName"] == "parent"
    assert got.data.tags["mlflow.user"] == "admin" and got.data.params["depth"] == "3"
    history = tracking.get_metric_history(parent.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.9), (1, 0.5), (2, 0.3)]
    assert all(m.timestamp > 0 for m in history)


def test_artifacts_figures_and_tables_land_in_shipyards_store(
    tracking: MlflowClient, shipyard_client: Client, tmp_path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    (tmp_path / "out" / "sub").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "out" / "a.csv").write_text("x\n1\n")
    (tmp_path / "out" / "sub" / "b.json").write_text("{}")
    mlflow.set_experiment("mlflow-artifacts")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "notes.txt"))
        mlflow.log_artifacts(str(tmp_path / "out"), artifact_path="data")
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3])
        mlflow.log_figure(fig, "plots/line.png")
        plt.close(fig)
        mlflow.log_table(pd.DataFrame({"x": [1, 2]}), "tables/t.json")
        mlflow.log_table(pd.DataFrame({"x": [3]}), "tables/t.json")  # appends: reads the artifact back
    run_id = run.info.run_id
    stored = {a.path: a for a in shipyard_client.list_artifacts(run_id)}
    assert set(stored) == {"notes.txt", "data/a.csv", "data/sub/b.json", "plots/line.png", "tables/t.json"}
    assert all(len(a.digest) == 64 for a in stored.values())  # content-addressed (BLAKE3)
    assert sorted(f.path for f in tracking.list_artifacts(run_id)) == ["data", "notes.txt", "plots", "tables"]
    assert [f.path for f in tracking.list_artifacts(run_id, "data/sub")] == ["data/sub/b.json"]
    local = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="notes.txt", dst_path=str(tmp_path / "dl")
    )
    assert Path(local).read_text() == "hello"
    table = mlflow.load_table("tables/t.json", run_ids=[run_id])
    assert table["x"].tolist() == [1, 2, 3]
    assert Path(
        mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="data", dst_path=str(tmp_path / "d2")
        )
    ).is_dir()


def _search_fixture() -> str:
    experiment = mlflow.set_experiment("mlflow-search")
    for i, (model, acc) in enumerate([("rf", 0.7), ("xgb", 0.9), ("rf", 0.8), ("lin", 0.6)]):
        with mlflow.start_run(run_name=f"run-{i}"):
            mlflow.log_param("model", model)
            mlflow.log_metric("acc", acc)
            mlflow.set_tag("parity", "even" if i % 2 == 0 else "odd")
    return str(experiment.experiment_id)


def test_search_runs_filters_orders_and_pages(tracking: MlflowClient) -> None:
    exp_id = _search_fixture()
    frame = mlflow.search_runs(
        experiment_ids=[exp_id], filter_string="params.model = 'rf'", order_by=["metrics.acc DESC"]
    )
    assert list(frame["tags.mlflow.runName"]) == ["run-2", "run-0"]
    assert list(frame["metrics.acc"]) == [0.8, 0.7] and set(frame["status"]) == {"FINISHED"}
    assert {"run_id", "experiment_id", "start_time", "end_time", "params.model", "tags.parity"} <= set(
        frame.columns
    )
    by_name = mlflow.search_runs(
        experiment_names=["mlflow-search"], filter_string="tags.parity = 'odd' and metrics.acc > 0.5"
    )
    assert sorted(by_name["tags.mlflow.runName"]) == ["run-1", "run-3"]
    runs = mlflow.search_runs(
        [exp_id], "attributes.run_name LIKE 'run-%' AND attributes.status = 'FINISHED'", output_format="list"
    )
    assert len(runs) == 4
    pages, token = [], None
    while True:
        page = tracking.search_runs(
            [exp_id], order_by=["attributes.start_time ASC"], max_results=3, page_token=token
        )
        pages.append([r.info.run_name for r in page])
        token = page.token
        if not token:
            break
    assert pages == [["run-0", "run-1", "run-2"], ["run-3"]]
    assert len(mlflow.search_runs([exp_id], max_results=2)) == 2
    with pytest.raises(MlflowException) as err:
        mlflow.search_runs([exp_id], filter_string="metrics.acc > 0.5 OR params.model = 'rf'")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_search_runs_finds_deleted_runs_in_the_deleted_only_and_all_views(
    tracking: MlflowClient, shipyard_client: Client
) -> None:
    from mlflow.entities import ViewType

    exp_id = tracking.create_experiment("mlflow-views")
    ids = {}
    for name, acc in (("kept", 0.9), ("gone", 0.8), ("low", 0.1)):
        with mlflow.start_run(experiment_id=exp_id, run_name=name) as run:
            mlflow.log_metric("acc", acc)
        ids[name] = run.info.run_id
    tracking.delete_run(ids["gone"])

    def names(view: int, **kwargs: object) -> list[str]:
        frame = mlflow.search_runs([exp_id], run_view_type=view, order_by=["metrics.acc DESC"], **kwargs)
        return list(frame["tags.mlflow.runName"]) if len(frame) else []

    assert names(ViewType.ACTIVE_ONLY) == ["kept", "low"]
    assert names(ViewType.DELETED_ONLY) == ["gone"]
    assert names(ViewType.ALL) == ["kept", "gone", "low"]
    assert names(ViewType.ALL, filter_string="metrics.acc > 0.5") == ["kept", "gone"]
    deleted = tracking.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)
    assert [(r.info.run_id, r.info.lifecycle_stage) for r in deleted] == [(ids["gone"], "deleted")]
    pages, token = [], None
    while True:  # the ALL view pages like the others
        page = tracking.search_runs(
            [exp_id],
            run_view_type=ViewType.ALL,
            order_by=["metrics.acc ASC"],
            max_results=2,
            page_token=token,
        )
        pages.append([r.info.run_name for r in page])
        if not (token := page.token):
            break
    assert pages == [["low", "gone"], ["kept"]]
    assert [r.name for r in shipyard_client.search_runs_page(int(exp_id), view="deleted")[0]] == ["gone"]


def test_experiments_are_searched_renamed_deleted_and_restored(
    tracking: MlflowClient, shipyard_client: Client
) -> None:
    exp_id = tracking.create_experiment("mlflow-lifecycle", tags={"team": "risk"})
    tracking.set_experiment_tag(exp_id, "stage", "dev")
    found = tracking.search_experiments(filter_string="tags.team = 'risk' AND name LIKE 'mlflow-life%'")
    assert [e.experiment_id for e in found] == [exp_id] and found[0].tags["stage"] == "dev"
    tracking.rename_experiment(exp_id, "mlflow-lifecycle-2")
    assert shipyard_client.get_experiment(int(exp_id)).name == "mlflow-lifecycle-2"
    run_id = tracking.create_run(exp_id).info.run_id
    tracking.delete_experiment(exp_id)
    assert tracking.get_experiment(exp_id).lifecycle_stage == "deleted"
    assert tracking.get_run(run_id).info.lifecycle_stage == "deleted"
    with pytest.raises(MlflowException, match="deleted"):
        mlflow.set_experiment("mlflow-lifecycle-2")
    tracking.restore_experiment(exp_id)
    assert tracking.get_run(run_id).info.lifecycle_stage == "active"
    tracking.delete_run(run_id)
    runs, _ = shipyard_client.search_runs_page(int(exp_id))
    assert runs == []  # deleted through MLflow's API: gone from Shipyard's search too


def test_sklearn_autolog_logs_params_training_metrics_and_the_dataset(
    tracking: MlflowClient, shipyard_client: Client
) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True, as_frame=True)
    mlflow.set_experiment("mlflow-autolog")
    # log_models=False: the logged model autolog makes is tested in test_mlflow_models_client.py
    mlflow.sklearn.autolog(log_models=False, silent=True)
    try:
        with mlflow.start_run() as run:
            LogisticRegression(max_iter=500, C=0.5).fit(x, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    stored = shipyard_client.get_run(run.info.run_id)
    assert stored.params["C"] == "0.5" and stored.params["max_iter"] == "500"
    assert 0.9 < stored.metrics["training_accuracy_score"] <= 1.0
    assert stored.tags["estimator_name"] == "LogisticRegression"
    inputs = tracking.get_run(run.info.run_id).inputs.dataset_inputs
    assert [(i.dataset.name, {t.key: t.value for t in i.tags}) for i in inputs] == [
        ("dataset", {"mlflow.data.context": "train"})
    ]
    assert "sepal length (cm)" in inputs[0].dataset.schema


def test_log_input_keeps_the_dataset_on_the_run(tracking: MlflowClient) -> None:
    import pandas as pd

    frame = pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]})
    mlflow.set_experiment("mlflow-inputs")
    with mlflow.start_run() as run:
        mlflow.log_input(mlflow.data.from_pandas(frame, name="tiny", targets="y"), context="training")
    (given,) = tracking.get_run(run.info.run_id).inputs.dataset_inputs
    assert given.dataset.name == "tiny" and given.tags[0].value == "training"
    assert given.dataset.digest and '"num_rows": 2' in given.dataset.profile


def test_a_shipyard_sdk_run_is_visible_to_mlflow(tracking: MlflowClient, shipyard_client: Client) -> None:
    with shipyard_client.start_run(experiment="sdk-side", name="from-sdk", params={"lr": 0.01}) as active:
        active.log_metric("auc", 0.75, step=1)
        active.log_metric("auc", 0.8, step=2)
    got = tracking.get_run(active.id)
    assert got.info.run_name == "from-sdk" and got.info.status == "FINISHED"
    assert got.data.params == {"lr": "0.01"} and got.data.metrics["auc"] == 0.8
    assert got.data.tags["mlflow.runName"] == "from-sdk" and got.data.tags["mlflow.user"] == "admin"
    assert [m.value for m in tracking.get_metric_history(active.id, "auc")] == [0.75, 0.8]
    frame = mlflow.search_runs(experiment_names=["sdk-side"], filter_string="metrics.auc >= 0.8")
    assert list(frame["run_id"]) == [active.id]


def test_run_management_calls(tracking: MlflowClient, shipyard_client: Client) -> None:
    from mlflow.entities import Metric, Param, RunTag

    exp_id = tracking.create_experiment("mlflow-manage")
    tracking.set_experiment_tag(exp_id, "note", "x")
    tracking.delete_experiment_tag(exp_id, "note")
    assert "note" not in tracking.get_experiment(exp_id).tags
    run_id = tracking.create_run(exp_id, run_name="first", tags={"keep": "1", "drop": "1"}).info.run_id
    metrics = [Metric("loss", 1.0 / (i + 1), 1_700_000_000_000 + i, i) for i in range(50)]
    tracking.log_batch(run_id, metrics=metrics, params=[Param("p", "v")], tags=[RunTag("t", "v")])
    tracking.delete_tag(run_id, "drop")
    tracking.update_run(run_id, name="second")
    tracking.set_terminated(run_id, status="FAILED")
    stored = shipyard_client.get_run(run_id)
    assert (stored.name, stored.status.value) == ("second", "failed")
    assert stored.tags == {"keep": "1", "t": "v"} and stored.params == {"p": "v"}
    assert len(shipyard_client.get_metric_history(run_id, "loss")) == 50
    tracking.delete_run(run_id)
    tracking.restore_run(run_id)
    assert tracking.get_run(run_id).info.lifecycle_stage == "active"


def test_errors_are_mlflow_exceptions_with_mlflows_codes(tracking: MlflowClient) -> None:
    with pytest.raises(MlflowException) as missing:
        tracking.get_run("0" * 32)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert tracking.get_experiment_by_name("no-such-experiment") is None  # the client reads the 404 so
    with pytest.raises(MlflowException) as unknown:
        tracking.get_experiment("987654")
    assert unknown.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    run_id = tracking.create_run(mlflow.set_experiment("mlflow-errors").experiment_id).info.run_id
    tracking.log_param(run_id, "lr", "0.1")
    with pytest.raises(MlflowException) as changed:
        tracking.log_param(run_id, "lr", "0.2")
    assert changed.value.error_code == "INVALID_PARAMETER_VALUE"


def test_without_a_token_the_client_is_refused(server: LiveServer) -> None:
    token = os.environ.pop("MLFLOW_TRACKING_TOKEN")
    try:
        with pytest.raises(MlflowException) as refused:
            MlflowClient(server.url).search_experiments()
        assert refused.value.error_code == "UNAUTHENTICATED"
        os.environ["MLFLOW_TRACKING_TOKEN"] = "sy_" + "not-a-valid-token"
        with pytest.raises(MlflowException) as wrong:
            MlflowClient(server.url).search_experiments()
        assert wrong.value.error_code == "UNAUTHENTICATED"
    finally:
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
