"""``shipyard import mlflow`` from a running MLflow server (issue 15, deliverable 4): a store written
through ``mlflow server``, its artifacts through the server's ``mlflow-artifacts`` proxy, imported
from the server's URL and checked against MLflow's own reads. (A module of its own: starting MLflow's
server takes seconds.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow_stores import (
    MlflowServer,
    assert_run_arrived,
    build_through_server,
    client_for,
    mlflow_env,
    mlflow_runs,
    read_mlflow,
    shipyard_client,
)

import shipyard as sy
from shipyard.importers import import_mlflow

mlflow = pytest.importorskip("mlflow")

# MLflow's digest of a pandas frame (mlflow.data.from_pandas) warns with pandas 3: MLflow's warning
pytestmark = pytest.mark.filterwarnings("ignore:Starting with pandas version 4.0 all arguments")


def test_a_running_mlflow_server_imports_with_artifacts_through_its_proxy(tmp_path: Path) -> None:
    server = MlflowServer(tmp_path).start()
    try:
        made = build_through_server(server.url, tmp_path)
        client = shipyard_client(tmp_path / "shipyard")
        report = import_mlflow(server.url, client=client)
        assert report.ok, report.problems
        assert report.entities["runs"].imported == 2 and report.entities["model versions"].imported == 1
        assert report.entities["run inputs"].imported == report.entities["run inputs"].target == 1
        with mlflow_env(server.url):
            mlclient = client_for(server.url)
            runs = mlflow_runs(server.url)
            assert {r.info.artifact_uri.split(":")[0] for r in runs} == {"mlflow-artifacts"}
            for mlrun in runs:
                assert_run_arrived(client, mlrun, *read_mlflow(mlclient, mlrun))
        weights = (made["folder"] / "data" / "weights.bin").read_bytes()
        assert client.read_artifact(made["parent"], "model/data/weights.bin") == weights
        version = sy.get_model_version("models:/served@champion", client=client)
        files = {f.path: f.digest for f in version.files}
        assert client.blobs.get_bytes(files["data/weights.bin"]) == weights
        client.close()
    finally:
        server.stop()
