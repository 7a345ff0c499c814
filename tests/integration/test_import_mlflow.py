"""``shipyard import mlflow`` on stores the real MLflow client wrote (issue 15, deliverable 4).

A ``mlruns`` folder with 2,000 short runs plus the hard cases (``mlflow_stores``), and an MLflow
SQLite database with a version logged by ``mlflow.sklearn.log_model``. Every check of what arrived
reads MLflow through its own client and Shipyard through the SDK, independently of the importer's
report; the report is then checked against those reads. A second import adds nothing; an import
killed with SIGKILL and run again completes without duplicates.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow_stores import (
    EXTRA_RUNS,
    INPUTS_TAG,
    assert_run_arrived,
    build_model_store,
    build_store,
    client_for,
    dataset_inputs_json,
    mlflow_env,
    mlflow_runs,
    read_mlflow,
    shipyard_client,
)
from server_process import LiveServer
from typer.testing import CliRunner

import shipyard as sy
from shipyard import Client
from shipyard.cli.main import app
from shipyard.config import load_settings
from shipyard.entities import LogBatch
from shipyard.importers import ImportReport, import_mlflow

mlflow = pytest.importorskip("mlflow")

# MLflow's SQL store uses an ORM option SQLAlchemy 2.1 deprecates: MLflow's warning, not ours
pytestmark = [
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated"),
    # so does its digest of a pandas frame (mlflow.data.from_pandas) with pandas 3
    pytest.mark.filterwarnings("ignore:Starting with pandas version 4.0 all arguments"),
]

BULK = 2000
BULK_EXPERIMENTS = 4
SQLITE_BULK = 120


@dataclass
class Source:
    uri: str
    made: dict[str, Any]
    work: Path


@contextlib.contextmanager
def _ram_folder(fallback: Path) -> Iterator[Path]:
    """A folder in RAM where there is one: MLflow's file store writes ~30 small files per run, which
    on a shared CI disk takes longer than the rest of this module together."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        with tempfile.TemporaryDirectory(dir=shm, prefix="shipyard-mlflow-") as tmp:
            yield Path(tmp)
    else:
        yield fallback


@pytest.fixture(scope="module")
def file_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    work = tmp_path_factory.mktemp("file-source")
    with _ram_folder(work) as root:
        uri = (root / "mlruns").as_uri()
        with mlflow_env(uri):
            made = build_store(uri, work, bulk=BULK, bulk_experiments=BULK_EXPERIMENTS)
        yield Source(str(root / "mlruns"), made, work)


@pytest.fixture(scope="module")
def sqlite_source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    work = tmp_path_factory.mktemp("sqlite-source")
    uri = f"sqlite:///{work / 'mlflow.db'}"
    with mlflow_env(uri), pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)  # MLflow's SQLite store puts artifacts under ./mlruns
        made = build_store(uri, work, bulk=SQLITE_BULK, bulk_experiments=2)
        made.update(build_model_store(uri))
    return Source(uri, made, work)


@pytest.fixture(scope="module")
def imported(
    file_source: Source, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Client, ImportReport]]:
    client = shipyard_client(tmp_path_factory.mktemp("shipyard"))
    report = import_mlflow(file_source.uri, client=client)
    yield client, report
    client.close()


def _same_value(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


# -- the mlruns folder ------------------------------------------------------------------------------
def test_every_run_arrives_with_its_fields_params_tags_histories_and_files(
    file_source: Source, imported: tuple[Client, ImportReport]
) -> None:
    client, _ = imported
    runs = mlflow_runs(file_source.uri)
    assert len(runs) == BULK + EXTRA_RUNS
    bulk = file_source.made["bulk"]
    with mlflow_env(file_source.uri):
        mlclient = client_for(file_source.uri)
        for mlrun in runs:
            # MLflow's file store finds a run by listing every run folder: the bulk runs' histories
            # are checked against what the builder logged instead (and they have no artifacts)
            logged = bulk.get(mlrun.info.run_id)
            histories, files = (logged, []) if logged is not None else read_mlflow(mlclient, mlrun)
            assert_run_arrived(client, mlrun, histories, files)


def test_experiments_keep_their_names_descriptions_tags_times_and_deletion(
    file_source: Source, imported: tuple[Client, ImportReport]
) -> None:
    from mlflow.entities import ViewType

    client, report = imported
    with mlflow_env(file_source.uri):
        source = client_for(file_source.uri).search_experiments(view_type=ViewType.ALL)
    assert "retired" in {e.name for e in source}
    ours = {e.name: client.get_experiment(e.name) for e in source}
    tags = client.store.experiment_tags([e.id for e in ours.values()])
    for exp in source:
        mine = ours[exp.name]
        assert (mine.created_at, mine.deleted) == (exp.creation_time, exp.lifecycle_stage == "deleted")
        assert mine.description == exp.tags.get("mlflow.note.content", "")
        assert tags.get(mine.id, {}) == {k: v for k, v in exp.tags.items() if k != "mlflow.note.content"}
    assert all(client.get_run(r).deleted for r in file_source.made["retired"])
    mapping = {m["mlflow_id"]: m["shipyard_id"] for m in report.mapping["experiments"]}
    assert mapping == {e.experiment_id: ours[e.name].id for e in source}
    recorded = client.list_audit(action="experiment.import", limit=100)
    assert {e.after["origin"]["id"]: e.after["id"] for e in recorded} == mapping


def test_the_hard_runs_keep_what_an_import_gets_wrong(
    file_source: Source, imported: tuple[Client, ImportReport]
) -> None:
    client, _ = imported
    made = file_source.made
    assert client.get_run(made["early_child"]).parent_run_id == made["parent"]  # started before its parent
    assert client.get_run(made["grandchild"]).parent_run_id == made["child"]
    assert str(client.get_run(made["running"]).status) == "running"
    assert client.get_run(made["deleted"]).deleted
    odd = client.get_metric_history(made["parent"], "odd")["value"].tolist()
    want = [float("nan"), float("inf"), float("-inf"), -0.0, 1e-300]
    assert len(odd) == len(want) and all(_same_value(a, b) for a, b in zip(odd, want, strict=True))
    assert len(client.get_metric_history(made["parent"], "acc")) == 300
    assert client.get_run(made["parent"]).params["long"] == "x" * 6000
    work = file_source.work
    assert client.read_artifact(made["parent"], "model/weights.bin") == (work / "weights.bin").read_bytes()
    assert client.read_artifact(made["parent"], "plots/deep/pr.txt") == b"pr curve\n"
    assert client.read_artifact(made["parent"], "empty.txt") == b""


def test_the_registered_model_keeps_its_version_numbers_aliases_descriptions_and_times(
    file_source: Source, imported: tuple[Client, ImportReport]
) -> None:
    client, report = imported
    assert report.mapping["models"] == {"churn model": "churn-model"}
    with mlflow_env(file_source.uri):
        mlclient = client_for(file_source.uri)
        source = mlclient.get_registered_model("churn model")
        source_versions = {int(v.version): v for v in mlclient.search_model_versions("name = 'churn model'")}
    model = sy.get_registered_model("churn-model", client=client)
    assert (model.description, model.created_at) == (source.description, source.creation_timestamp)
    assert model.tags == source.tags == {"team": "ml"}
    assert model.aliases == {"champion": 3, "challenger": 1}
    versions = sy.list_model_versions("churn-model", client=client)
    assert [v.version for v in versions] == [1, 3]  # MLflow's numbers: the deleted 2 stays a gap
    for v in versions:
        mv = source_versions[v.version]
        assert (v.description, v.created_at, v.run_id) == (mv.description, mv.creation_timestamp, mv.run_id)
        assert v.tags == mv.tags
        files = {f.path: f for f in v.files}
        added = {
            "shipyard-model.yaml",
            "records/mlflow/model-version.json",
        }  # how Shipyard loads it; MLflow's record
        assert set(files) == {"MLmodel", "model.pkl", *added}
        assert client.blobs.get_bytes(files["model.pkl"].digest) == b"not really a pickle"
        record = json.loads(client.blobs.get_bytes(files["records/mlflow/model-version.json"].digest))
        assert (record["name"], record["version"], record["source"]) == ("churn model", v.version, mv.source)


def test_the_report_matches_on_both_sides_and_counts_what_was_read(
    file_source: Source, imported: tuple[Client, ImportReport]
) -> None:
    client, report = imported
    assert report.ok, report.problems
    runs = report.entities["runs"]
    assert (runs.source, runs.imported, runs.existing, runs.target) == (
        BULK + EXTRA_RUNS,
        BULK + EXTRA_RUNS,
        0,
        BULK + EXTRA_RUNS,
    )
    assert runs.source_checksum == runs.target_checksum
    # 4 points per bulk run; the parent's 300-step history and 5 odd values; 1 point in 6 others
    assert report.entities["metric points"].source == 4 * BULK + 300 + 5 + 4 + 2
    assert report.entities["model versions"].imported == 2
    assert report.entities["aliases"].imported == 2
    # the model run's two dataset inputs, checked as one item (the run's inputs)
    inputs = report.entities["run inputs"]
    assert (inputs.source, inputs.imported, inputs.target, inputs.mismatched) == (1, 1, 1, [])
    assert report.entities["dataset inputs"].target == 2
    assert report.not_imported == {}
    assert report.runs_per_second > 0


def test_a_second_import_adds_nothing_and_checks_everything_again(
    file_source: Source, imported: tuple[Client, ImportReport]
) -> None:
    client, first = imported
    audit_before = len(client.list_audit(limit=10_000))
    blobs_before = sorted(client.blobs.iter_digests())
    again = import_mlflow(file_source.uri, client=client)
    assert again.ok, again.problems
    for name, row in again.entities.items():
        assert row.imported == 0, name
        assert row.existing == row.source == first.entities[name].source, name
        assert row.target_checksum == first.entities[name].target_checksum, name
    assert len(client.list_audit(limit=10_000)) == audit_before
    assert sorted(client.blobs.iter_digests()) == blobs_before


def test_a_dry_run_reports_what_would_move_and_writes_nothing(file_source: Source, tmp_path: Path) -> None:
    client = shipyard_client(tmp_path)
    report = import_mlflow(file_source.uri, client=client, dry_run=True, experiments=["detailed"])
    assert report.entities["runs"].imported == 7 and report.entities["runs"].target == 0
    assert not report.ok  # a dry run never says everything arrived
    assert client.list_experiments() == [] and sy.list_models(client=client) == []
    assert list(client.blobs.iter_digests()) == []
    client.close()


def test_one_experiment_can_be_imported_alone(file_source: Source, tmp_path: Path) -> None:
    client = shipyard_client(tmp_path)
    report = import_mlflow(file_source.uri, client=client, experiments=["detailed"], models=False)
    assert report.ok, report.problems
    assert [e.name for e in client.list_experiments()] == ["detailed"]
    assert report.entities["runs"].imported == 7
    client.close()


def test_runs_whose_files_are_missing_from_the_blob_store_are_reported(
    file_source: Source, tmp_path: Path
) -> None:
    first = shipyard_client(tmp_path)
    assert import_mlflow(file_source.uri, client=first, experiments=["detailed"], models=False).ok
    first.close()
    elsewhere = load_settings(
        tracking_uri=f"sqlite:///{tmp_path / 'shipyard.db'}",
        artifact_uri=str(tmp_path / "other"),
        home=str(tmp_path),
    )
    client = Client(settings=elsewhere)  # the same records, another (empty) artifact store
    report = import_mlflow(file_source.uri, client=client, experiments=["detailed"], models=False)
    made = file_source.made
    assert not report.ok
    # recorded is not enough: the ended runs with files differ; the running one had its steps replayed,
    # which put roc.txt back (the child's only file, the same bytes: content-addressed)
    assert sorted(report.entities["runs"].mismatched) == sorted([made["parent"], made["model_run"]])
    assert client.read_artifact(made["running"], "roc.txt") == b"roc curve\n"
    client.close()


# -- the MLflow database ----------------------------------------------------------------------------
def test_an_mlflow_database_imports_through_the_cli_with_a_logged_model_version(
    sqlite_source: Source, tmp_path: Path
) -> None:
    target = tmp_path / "shipyard"
    target.mkdir()
    args = [
        "--tracking-uri",
        f"sqlite:///{target / 'shipyard.db'}",
        "--artifact-uri",
        str(target / "artifacts"),
    ]
    result = CliRunner().invoke(
        app, [*args, "import", "mlflow", "--from", sqlite_source.uri, "--report", str(tmp_path / "r.json")]
    )
    assert result.exit_code == 0, result.output
    assert "every record matches" in result.output
    written = json.loads((tmp_path / "r.json").read_text())
    assert written["ok"] and {e["entity"] for e in written["entities"]} >= {"runs", "model versions"}
    client = shipyard_client(target)
    with mlflow_env(sqlite_source.uri):
        mlclient = client_for(sqlite_source.uri)
        runs = mlflow_runs(sqlite_source.uri)
        assert len(runs) == SQLITE_BULK + EXTRA_RUNS + 1
        for mlrun in runs:
            assert_run_arrived(client, mlrun, *read_mlflow(mlclient, mlrun))
        source = mlclient.get_model_version("sk-model", "1")
    version = sy.get_model_version("models:/sk-model/1", client=client)
    model_id = sqlite_source.made["model_id"]
    assert version.metadata["mlflow"]["model_id"] == model_id and source.source == f"models:/{model_id}"
    assert "MLmodel" in {f.path for f in version.files} and version.run_id == source.run_id
    # Shipyard's own loader reads the imported MLflow folder (its safe-loading rules apply)
    model = sy.load_model("models:/sk-model/1", client=client)
    assert list(model.predict(pd.DataFrame({"x": [0.0, 3.0]}))) == [0, 1]
    client.close()


def test_an_import_killed_midway_completes_when_run_again_without_duplicates(
    sqlite_source: Source, tmp_path: Path
) -> None:
    target = tmp_path / "shipyard"
    target.mkdir()
    uris = [
        "--tracking-uri",
        f"sqlite:///{target / 'shipyard.db'}",
        "--artifact-uri",
        str(target / "artifacts"),
    ]
    command = [sys.executable, "-m", "shipyard.cli", *uris, "import", "mlflow", "--from", sqlite_source.uri]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = []
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        if line.strip() == "runs: 50":  # 50 runs written; more than 70 and the models still to go
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    client = shipyard_client(target)
    partial = len(client.search_runs(limit=1000))
    assert 50 <= partial < SQLITE_BULK + EXTRA_RUNS + 1
    report = import_mlflow(sqlite_source.uri, client=client)
    assert report.ok, report.problems
    runs = report.entities["runs"]
    assert (
        runs.existing >= 50 and runs.imported + runs.existing == runs.source == SQLITE_BULK + EXTRA_RUNS + 1
    )
    deleted = sum(r.info.lifecycle_stage == "deleted" for r in mlflow_runs(sqlite_source.uri))
    assert len(client.search_runs(limit=1000)) + deleted == runs.source  # deleted runs are not listed
    assert [v.version for v in sy.list_model_versions("churn-model", client=client)] == [1, 3]
    client.close()


def test_an_import_into_postgresql_matches_as_into_sqlite(
    sqlite_source: Source, pg_uri: str, tmp_path: Path
) -> None:
    settings = load_settings(
        tracking_uri=pg_uri, artifact_uri=str(tmp_path / "artifacts"), home=str(tmp_path)
    )
    client = Client(settings=settings)
    try:
        report = import_mlflow(sqlite_source.uri, client=client)
        assert report.ok, report.problems
        again = import_mlflow(sqlite_source.uri, client=client)
        assert again.ok and all(row.imported == 0 for row in again.entities.values())
        local = shipyard_client(tmp_path / "sqlite")
        on_sqlite = import_mlflow(sqlite_source.uri, client=local)
        local.close()
        for name, row in report.entities.items():
            assert row.target_checksum == on_sqlite.entities[name].target_checksum, name
        runs = mlflow_runs(sqlite_source.uri)
        with mlflow_env(sqlite_source.uri):
            mlclient = client_for(sqlite_source.uri)
            for mlrun in runs[:20]:
                assert_run_arrived(client, mlrun, *read_mlflow(mlclient, mlrun))
    finally:
        client.close()


# -- dataset inputs and logged models (MLflow 3) --------------------------------------------------
def _logged_model_view(model: Any) -> dict[str, Any]:
    """What MLflow's client says of a logged model, less where its files are."""
    return {
        "model_id": model.model_id,
        "name": model.name,
        "status": str(model.status),
        "source_run_id": model.source_run_id,
        "creation_timestamp": model.creation_timestamp,
        "params": model.params,
        "tags": model.tags,
        "metrics": sorted((m.key, m.value, m.step, m.timestamp, m.run_id) for m in model.metrics or []),
    }


def _logged_model_files(mlclient: Any, model_id: str, folder: str | None = None) -> dict[str, int]:
    out = {}
    for info in mlclient.list_logged_model_artifacts(model_id, folder):
        if info.is_dir:
            out.update(_logged_model_files(mlclient, model_id, info.path))
        else:
            out[info.path] = info.file_size
    return out


def _read_source(uri: str, made: dict[str, Any]) -> dict[str, Any]:
    with mlflow_env(uri):
        mlclient = client_for(uri)
        run = mlclient.get_run(made["fit_run"])
        ids = [made["model_id"], made["other_model_id"]]
        return {
            "inputs": dataset_inputs_json(run),
            "outputs": sorted((o.model_id, o.step) for o in run.outputs.model_outputs),
            "models": {i: _logged_model_view(mlclient.get_logged_model(i)) for i in ids},
            "files": {i: _logged_model_files(mlclient, i) for i in ids},
            "bytes": {
                i: (Path(mlclient.get_logged_model(i).artifact_location) / "MLmodel").read_bytes()
                for i in ids
            },
        }


def test_dataset_inputs_and_logged_models_arrive_and_read_back_through_shipyards_mlflow_api(
    sqlite_source: Source, tmp_path: Path
) -> None:
    made = sqlite_source.made
    source = _read_source(sqlite_source.uri, made)
    assert len(source["inputs"]) == 2 and len(source["outputs"]) == 2  # the fixture is what it says
    target = tmp_path / "shipyard"
    client = shipyard_client(target)
    report = import_mlflow(sqlite_source.uri, client=client)
    assert report.ok, report.problems
    models = report.entities["logged models"]
    assert (models.source, models.imported, models.target, models.mismatched) == (2, 2, 2, [])
    assert models.source_checksum == models.target_checksum
    files = report.entities["logged model files"]
    assert files.source == files.target == sum(len(f) for f in source["files"].values()) > 0
    assert report.entities["run inputs"].imported == 2  # the fit run and the detailed model run
    assert report.not_imported == {}
    # through the SDK and the store: the run keeps the inputs; each model its fields and files
    run = client.get_run(made["fit_run"])
    assert json.loads(run.tags[INPUTS_TAG])["datasets"] == source["inputs"]
    for model_id, view in source["models"].items():
        ours = client.store.get_logged_model(model_id)
        assert (ours.run_id, ours.name, ours.created_at) == (
            view["source_run_id"],
            view["name"],
            view["creation_timestamp"],
        )
        assert (ours.params, ours.tags) == (view["params"], view["tags"])
        held = {a.path: a.size for a in client.list_artifacts(run.id, f"models/{model_id}")}
        assert held == {f"models/{model_id}/{p}": n for p, n in source["files"][model_id].items()}
        assert client.read_artifact(run.id, f"models/{model_id}/MLmodel") == source["bytes"][model_id]
    version = sy.get_model_version("models:/sk-model/1", client=client)
    assert version.metadata["artifact"] == f"models/{made['model_id']}"  # the model's folder in its run
    # a second import adds nothing
    audit_before = len(client.list_audit(limit=10_000))
    again = import_mlflow(sqlite_source.uri, client=client)
    assert again.ok, again.problems
    assert all(row.imported == 0 for row in again.entities.values())
    assert again.entities["logged models"].target_checksum == models.target_checksum
    assert len(client.list_audit(limit=10_000)) == audit_before
    client.close()
    # MLflow's own client, against a Shipyard server on the imported store, reads back the same
    server = LiveServer(target, tracking_uri=f"sqlite:///{target / 'shipyard.db'}")
    server.artifact_uri = str(target / "artifacts")
    server.start()
    try:
        with mlflow_env(server.url):
            mlclient = client_for(server.url)
            got = mlclient.get_run(made["fit_run"])
            assert dataset_inputs_json(got) == source["inputs"]
            assert sorted((o.model_id, o.step) for o in got.outputs.model_outputs) == source["outputs"]
            for model_id, view in source["models"].items():
                assert _logged_model_view(mlclient.get_logged_model(model_id)) == view
                assert _logged_model_files(mlclient, model_id) == source["files"][model_id]
            import mlflow.sklearn

            loaded = mlflow.sklearn.load_model(f"models:/{made['model_id']}")
            assert list(loaded.predict([[0.0], [3.0]])) == [0, 1]
    finally:
        server.stop()


def test_a_changed_logged_model_or_run_input_in_shipyard_is_found_by_the_next_import(
    sqlite_source: Source, tmp_path: Path
) -> None:
    made = sqlite_source.made
    client = shipyard_client(tmp_path)
    assert import_mlflow(sqlite_source.uri, client=client).ok
    client.store.set_logged_model_tags(made["other_model_id"], {"stage": "tampered"})
    kept = json.loads(client.get_run(made["fit_run"]).tags[INPUTS_TAG])
    kept["datasets"][0]["dataset"]["digest"] = "00000000"
    client.store.log_batch(made["fit_run"], LogBatch(tags={INPUTS_TAG: json.dumps(kept)}))
    report = import_mlflow(sqlite_source.uri, client=client)
    assert not report.ok
    assert report.entities["logged models"].mismatched == [made["other_model_id"]]
    assert report.entities["run inputs"].mismatched == [made["fit_run"]]
    assert report.entities["runs"].mismatched == []  # the run's own record is unchanged
    client.close()


def test_a_dataset_input_naming_a_shipyard_dataset_version_becomes_a_use_of_it(tmp_path: Path) -> None:
    """As Shipyard's MLflow API records one: the run's lineage, in the role of its context."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    client = shipyard_client(tmp_path / "shipyard")
    version = sy.log_dataset(pd.DataFrame({"x": [1.0, 2.0]}), name="churn-train", client=client)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with mlflow_env(uri), pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        mlclient = client_for(uri)
        exp = mlclient.create_experiment("lineage")
        run_id = mlclient.create_run(exp, start_time=1_650_000_000_000).info.run_id
        named = Dataset("churn-train", version.digest[:12], "local", '{"uri": "churn-train@v1"}')
        other = Dataset("elsewhere", "0123abcd", "local", '{"uri": "/data/x.csv"}')
        tags = [InputTag("mlflow.data.context", "training")]
        mlclient.log_inputs(run_id, datasets=[DatasetInput(named, tags), DatasetInput(other, tags)])
        mlclient.set_terminated(run_id, "FINISHED", end_time=1_650_000_000_100)
    report = import_mlflow(uri, client=client, models=False)
    assert report.ok, report.problems
    assert report.entities["run inputs"].imported == 1
    (use,) = client.store.list_run_datasets(run_id)
    assert (use.dataset.name, use.dataset.version, use.role) == ("churn-train", version.version, "training")
    kept = json.loads(client.get_run(run_id).tags[INPUTS_TAG])["datasets"]
    assert [d["dataset"]["name"] for d in kept] == ["elsewhere"]  # only the one Shipyard does not hold
    again = import_mlflow(uri, client=client, models=False)
    assert again.ok and again.entities["run inputs"].existing == 1
    assert len(client.store.list_run_datasets(run_id)) == 1
    client.close()
