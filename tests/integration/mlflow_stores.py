"""MLflow stores written by the real MLflow client, for the import tests (issue 15, deliverable 4).

:func:`build_store` fills one store (a ``mlruns`` folder or an MLflow SQLite database) through
``MlflowClient`` only: ``bulk`` short runs spread over a few experiments (``log_batch`` per run), and
a ``detailed`` experiment with what an import can get wrong — nested runs (one child started before
its parent), a 300-step history, NaN and ±inf values, params at MLflow's 6,000-character limit, runs
failed, killed, still running and deleted, artifacts in folders (one of 3 MiB, one empty), and a
registered model whose versions have a gap (version 2 deleted), descriptions, tags and aliases.
:func:`build_model_store` adds a run with dataset inputs (``mlflow.log_input`` of pandas frames,
with context tags) and two models logged with ``mlflow.sklearn.log_model`` (MLflow 3's logged
models, with params, tags and metrics), one registered (``models:/m-…``); the ``detailed``
experiment's model run has dataset inputs too; :func:`build_through_server` writes through a running
:class:`MlflowServer`. :func:`assert_run_arrived` checks a Shipyard run, read through the SDK,
against the MLflow run it came from.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shipyard import Client
from shipyard.config import load_settings

T0 = 1_650_000_000_000  # kept times are checked: none of them can be "now"
EXTRA_RUNS = 9
"""Runs a store holds besides its bulk runs: 7 in ``detailed``, 2 in the deleted ``retired``."""
INPUTS_TAG = "mlflow.inputs"
"""The run tag in which Shipyard keeps MLflow's dataset inputs (written here, not imported: a check)."""
SYSTEM_TAGS = ("mlflow.runName", "mlflow.user", "mlflow.source.name", "mlflow.parentRunId")
"""MLflow's tags that a Shipyard run holds as fields (name, user, source, parent), not as tags."""


@contextlib.contextmanager
def mlflow_env(uri: str) -> Iterator[None]:
    """MLflow's client writing the store at ``uri``: a file store too (MLflow 3 refuses one unless
    told), no telemetry, and ``uri`` as the default (some registry calls resolve runs through the
    default tracking URI, which would otherwise create ./mlflow.db)."""
    values = {
        "MLFLOW_ALLOW_FILE_STORE": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_REGISTRY_URI": uri,
    }
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def client_for(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def build_store(uri: str, work: Path, *, bulk: int, bulk_experiments: int) -> dict[str, Any]:
    """Fill the store at ``uri``; what was made for the tests: run ids by role, the model's name, and
    under ``bulk`` every bulk run's id with the points logged to it (``{key: [(step, ts, value)]}``)."""
    client = client_for(uri)
    made: dict[str, Any] = {"bulk": _bulk(client, bulk, bulk_experiments)}
    made.update(_detailed(client, work))
    made.update(_retired(client))
    made.update(_registry(client, work, made["model_run"]))
    return made


def _retired(client: Any) -> dict[str, Any]:
    """An experiment with two runs, deleted (MLflow deletes its runs with it)."""
    from mlflow.entities import Metric

    exp = client.create_experiment("retired", tags={"reason": "superseded"})
    runs = []
    for i in range(2):
        rid = client.create_run(exp, start_time=T0 + i, run_name=f"old-{i}").info.run_id
        client.log_batch(rid, metrics=[Metric("loss", 0.9, T0 + i, 0)])
        client.set_terminated(rid, "FINISHED", end_time=T0 + 10)
        runs.append(rid)
    client.delete_experiment(exp)
    return {"retired": runs}


def _bulk(client: Any, runs: int, experiments: int) -> dict[str, dict[str, list[tuple[int, int, float]]]]:
    from mlflow.entities import Metric, Param, RunTag

    logged = {}
    per = runs // experiments
    for e in range(experiments):
        exp = client.create_experiment(f"bulk-{e}", tags={"team": "core", "mlflow.note.content": f"bulk {e}"})
        for i in range(per):
            start = T0 + e * 1_000_000 + i * 100
            run = client.create_run(
                exp,
                start_time=start,
                run_name=f"bulk-{e}-{i}",
                tags={"mlflow.user": f"user{i % 3}", "mlflow.source.name": "train.py", "kind": "bulk"},
            )
            rid = run.info.run_id
            metrics = [Metric("loss", 1.0 / (i + s + 1), start + s, s) for s in range(3)]
            metrics.append(Metric("auc", 0.5 + i / (2 * per), start + 3, 0))
            params = [Param("lr", str(0.001 * (i + 1))), Param("depth", str(i % 7)), Param("seed", str(i))]
            client.log_batch(rid, metrics=metrics, params=params, tags=[RunTag("fold", str(i % 5))])
            client.set_terminated(rid, "FINISHED" if i % 10 else "FAILED", end_time=start + 50)
            logged[rid] = {
                key: [(m.step, m.timestamp, m.value) for m in metrics if m.key == key]
                for key in ("loss", "auc")
            }
    return logged


def _detailed(client: Any, work: Path) -> dict[str, Any]:
    from mlflow.entities import Metric, Param

    exp = client.create_experiment("detailed", tags={"mlflow.note.content": "runs an import can get wrong"})
    parent = client.create_run(exp, start_time=T0 + 10, run_name="parent").info.run_id
    early_child = client.create_run(
        exp, start_time=T0 + 5, run_name="early-child", tags={"mlflow.parentRunId": parent}
    ).info.run_id
    child = client.create_run(
        exp, start_time=T0 + 20, run_name="child", tags={"mlflow.parentRunId": parent}
    ).info.run_id
    grandchild = client.create_run(
        exp, start_time=T0 + 30, run_name="grandchild", tags={"mlflow.parentRunId": child}
    ).info.run_id
    history = [Metric("acc", step / 300, T0 + 100 + step, step) for step in range(300)]
    odd = [
        Metric("odd", float("nan"), T0 + 1, 0),
        Metric("odd", float("inf"), T0 + 2, 1),
        Metric("odd", float("-inf"), T0 + 3, 2),
        Metric("odd", -0.0, T0 + 4, 3),
        Metric("odd", 1e-300, T0 + 5, 3),  # two points at one step
    ]
    client.log_batch(parent, metrics=history + odd, params=[Param("long", "x" * 6000), Param("empty", "")])
    for rid in (early_child, child, grandchild):
        client.log_batch(rid, metrics=[Metric("loss", 0.25, T0 + 40, 0)], params=[Param("fold", rid[:4])])
    files = work / "files"
    (files / "plots" / "deep").mkdir(parents=True)
    (files / "plots" / "roc.txt").write_text("roc curve\n")
    (files / "plots" / "deep" / "pr.txt").write_text("pr curve\n")
    (files / "empty.txt").write_bytes(b"")
    big = work / "weights.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024))
    client.log_artifacts(parent, str(files))
    client.log_artifact(parent, str(big), "model")
    client.log_artifact(child, str(files / "plots" / "roc.txt"))
    ended = {parent: "FINISHED", child: "KILLED", early_child: "FAILED", grandchild: "FINISHED"}
    for rid, status in ended.items():
        client.set_terminated(rid, status, end_time=T0 + 1000)
    running = client.create_run(exp, start_time=T0 + 50, run_name="still-running").info.run_id
    client.log_batch(running, metrics=[Metric("loss", 0.5, T0 + 60, 0)])
    client.log_artifact(running, str(files / "plots" / "roc.txt"))
    deleted = client.create_run(exp, start_time=T0 + 70, run_name="deleted").info.run_id
    client.log_batch(deleted, params=[Param("why", "bad data")])
    client.set_terminated(deleted, "FINISHED", end_time=T0 + 80)
    client.delete_run(deleted)
    model_run = client.create_run(exp, start_time=T0 + 90, run_name="trains-the-model").info.run_id
    folder = work / "model"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: m\n")
    (folder / "model.pkl").write_bytes(b"not really a pickle")
    client.log_artifacts(model_run, str(folder), "model")
    client.log_inputs(model_run, datasets=_dataset_inputs())
    client.set_terminated(model_run, "FINISHED", end_time=T0 + 95)
    return {
        "detailed_experiment": exp,
        "parent": parent,
        "early_child": early_child,
        "child": child,
        "grandchild": grandchild,
        "running": running,
        "deleted": deleted,
        "model_run": model_run,
    }


def _datasets() -> list[tuple[Any, str]]:
    """Two datasets made from pandas frames, each with its ``mlflow.data.context``: a training set
    with a source and targets, and an evaluation set without either."""
    import mlflow.data
    import pandas as pd

    train = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]})
    return [
        (
            mlflow.data.from_pandas(train, source="s3://bucket/train.csv", name="train", targets="y"),
            "training",
        ),
        (mlflow.data.from_pandas(train.tail(2), name="holdout"), "evaluation"),
    ]


def _dataset_inputs() -> list[Any]:
    """:func:`_datasets` as the dataset inputs ``mlflow.log_input`` logs (two tags each)."""
    from mlflow.entities import DatasetInput, InputTag

    return [
        DatasetInput(
            dataset._to_mlflow_entity(),
            tags=[InputTag("mlflow.data.context", context), InputTag("split", context[:4])],
        )
        for dataset, context in _datasets()
    ]


def _registry(client: Any, work: Path, model_run: str) -> dict[str, Any]:
    source = f"runs:/{model_run}/model"
    client.create_registered_model("churn model", tags={"team": "ml"}, description="predicts churn")
    for i in range(1, 4):
        client.create_model_version(
            "churn model",
            source,
            run_id=model_run,
            description=f"version {i}",
            tags={"validated": str(i % 2 == 1).lower()},
        )
    client.delete_model_version("churn model", "2")
    client.set_registered_model_alias("churn model", "champion", "3")
    client.set_registered_model_alias("churn model", "challenger", "1")
    client.update_model_version("churn model", "1", description="the first one")
    return {"model": "churn model"}


def build_model_store(uri: str) -> dict[str, str]:
    """A run (``fit_run``) with dataset inputs and two models logged with ``mlflow.sklearn.log_model``
    (MLflow 3's logged models), the first (``model_id``) registered as ``sk-model`` version 1, the
    second (``other_model_id``) not registered."""
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():  # MLflow's own warnings as it imports its model code
        warnings.simplefilter("ignore")
        return _log_sklearn_model(mlflow, np, LogisticRegression, uri)


def _log_sklearn_model(mlflow: Any, np: Any, estimator: Any, uri: str) -> dict[str, str]:
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        mlflow.set_experiment("sklearn")
        x = np.array([[0.0], [1.0], [2.0], [3.0]])
        with mlflow.start_run(run_name="fit") as run:
            for dataset, context in _datasets():
                mlflow.log_input(dataset, context=context, tags={"split": context[:4]})
            model = estimator().fit(x, [0, 0, 1, 1])
            mlflow.log_metric("train_acc", 1.0, step=3)
            # Requirements given: inferring them starts a subprocess that takes seconds
            info = mlflow.sklearn.log_model(
                model, name="clf", pip_requirements=["scikit-learn"], params={"C": "1.0", "solver": "lbfgs"}
            )
            mlflow.log_metric("val_acc", 0.75, step=3, model_id=info.model_id)
            other = mlflow.sklearn.log_model(
                estimator(C=0.5).fit(x, [0, 1, 0, 1]), name="clf-b", pip_requirements=["scikit-learn"]
            )
        mlflow.MlflowClient().set_logged_model_tags(info.model_id, {"stage": "candidate"})
        mlflow.register_model(info.model_uri, "sk-model")
        return {
            "model_id": str(info.model_id),
            "other_model_id": str(other.model_id),
            "fit_run": run.info.run_id,
        }
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


class MlflowServer:
    """``mlflow server`` over a SQLite store on a free port of 127.0.0.1, artifacts proxied through it
    (``mlflow-artifacts:/``), health-checked; stopped with its whole process group."""

    def __init__(self, root: Path) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.root = root
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "mlflow-server.log"
        self.proc: Any = None

    def start(self, timeout: float = 90.0) -> MlflowServer:
        import subprocess
        import sys
        import time

        import httpx

        command = [
            *(sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port)),
            *("--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}", "--workers", "1"),
            *("--artifacts-destination", str(self.root / "artifacts")),
        ]
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                command, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = self.log.read_text()
                raise RuntimeError(f"mlflow server exited with {self.proc.returncode}:\n{log}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"mlflow server not healthy after {timeout}s:\n{self.log.read_text()}")

    def stop(self) -> None:
        import signal
        import subprocess

        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def build_through_server(url: str, work: Path) -> dict[str, Any]:
    """A small store written through a running MLflow server: its artifacts go through the server's
    proxy (``mlflow-artifacts:/``), as a team's do; the child run has dataset inputs."""
    from mlflow.entities import Metric, Param

    client = client_for(url)
    exp = client.create_experiment("served", tags={"mlflow.note.content": "through the server"})
    parent = client.create_run(exp, start_time=T0, run_name="parent").info.run_id
    child = client.create_run(exp, start_time=T0 + 1, tags={"mlflow.parentRunId": parent}).info.run_id
    client.log_batch(parent, metrics=[Metric("loss", 1 / (s + 1), T0 + s, s) for s in range(50)])
    client.log_batch(child, params=[Param("lr", "0.1")], metrics=[Metric("odd", float("nan"), T0, 0)])
    folder = work / "served-model"
    (folder / "data").mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: m\n")
    (folder / "data" / "weights.bin").write_bytes(os.urandom(200_000))
    client.log_artifacts(parent, str(folder), "model")
    client.log_inputs(child, datasets=_dataset_inputs())
    for rid in (child, parent):
        client.set_terminated(rid, "FINISHED", end_time=T0 + 100)
    client.create_registered_model("served")
    client.create_model_version("served", f"runs:/{parent}/model", run_id=parent, description="first")
    client.set_registered_model_alias("served", "champion", "1")
    return {"parent": parent, "child": child, "folder": folder}


def shipyard_client(root: Path) -> Client:
    """A Shipyard client on a SQLite store and artifact folder under ``root``."""
    settings = load_settings(
        tracking_uri=f"sqlite:///{root / 'shipyard.db'}", artifact_uri=str(root / "artifacts"), home=str(root)
    )
    return Client(settings=settings)


def mlflow_runs(uri: str) -> list[Any]:
    """Every run of the MLflow store at ``uri`` (deleted ones too), read through MLflow's client."""
    from mlflow.entities import ViewType

    with mlflow_env(uri):
        client = client_for(uri)
        ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
        runs, token = [], None
        while True:
            page = client.search_runs(ids, run_view_type=ViewType.ALL, max_results=1000, page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs


def expected_tags(mlrun: Any) -> dict[str, str]:
    """MLflow's tags less those Shipyard keeps as the run's fields."""
    return {k: v for k, v in mlrun.data.tags.items() if k not in SYSTEM_TAGS}


Points = dict[str, list[tuple[int, int, float]]]


def dataset_inputs_json(mlrun: Any) -> list[dict[str, Any]]:
    """The run's dataset inputs as MLflow's client sends them (protobuf JSON)."""
    from google.protobuf.json_format import MessageToDict

    return [
        MessageToDict(d.to_proto(), preserving_proto_field_name=True) for d in mlrun.inputs.dataset_inputs
    ]


def model_folders(mlrun: Any) -> tuple[str, ...]:
    """Where Shipyard keeps the files of the run's logged models: its artifacts under models/<id>/."""
    return tuple(f"models/{m.model_id}/" for m in mlrun.outputs.model_outputs)


def assert_run_arrived(client: Client, mlrun: Any, histories: Points, files: list[tuple[str, int]]) -> None:
    """The Shipyard run (read through the SDK) is the MLflow run: fields, params, tags, dataset
    inputs (kept in the ``mlflow.inputs`` tag), every point of every metric (``histories``) and every
    artifact file (``files``: path, size) besides its logged models' folders."""
    info = mlrun.info
    run = client.get_run(info.run_id)
    status = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed", "RUNNING": "running"}
    assert (run.name, run.user, str(run.status)) == (info.run_name, info.user_id, status[info.status])
    assert (run.start_time, run.end_time) == (info.start_time, info.end_time)
    assert run.deleted == (info.lifecycle_stage == "deleted")
    assert run.parent_run_id == mlrun.data.tags.get("mlflow.parentRunId")
    assert run.source == mlrun.data.tags.get("mlflow.source.name", "")
    assert run.params == mlrun.data.params
    tags = dict(run.tags)
    kept = json.loads(tags.pop(INPUTS_TAG, "{}"))
    assert tags == expected_tags(mlrun)
    assert kept.get("datasets", []) == dataset_inputs_json(mlrun)
    assert set(run.metrics) == set(mlrun.data.metrics) == set(histories)
    for key, points in histories.items():
        got = client.get_metric_history(run.id, key)
        stamps = [t.value // 1_000_000 for t in got["timestamp"]]  # ns since the epoch
        want = sorted((int(s), int(t), repr(float(v))) for s, t, v in points)
        assert sorted(zip(got["step"], stamps, map(repr, got["value"]), strict=True)) == want
    listed = [(a.path, a.size) for a in client.list_artifacts(run.id)]
    assert sorted(x for x in listed if not x[0].startswith(model_folders(mlrun))) == sorted(files)


def read_mlflow(mlclient: Any, mlrun: Any) -> tuple[dict[str, list[Any]], list[tuple[str, int]]]:
    """A run's metric histories and artifact files, read through MLflow's public client."""
    run_id = mlrun.info.run_id
    histories = {
        key: [(m.step, m.timestamp, m.value) for m in mlclient.get_metric_history(run_id, key)]
        for key in mlrun.data.metrics
    }
    return histories, mlflow_files(mlclient, run_id)


def mlflow_files(mlclient: Any, run_id: str, folder: str | None = None) -> list[tuple[str, int]]:
    out = []
    for info in mlclient.list_artifacts(run_id, folder):
        if info.is_dir:
            out.extend(mlflow_files(mlclient, run_id, info.path))
        else:
            out.append((info.path, info.file_size))
    return out
