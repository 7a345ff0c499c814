# mypy: warn-unused-ignores
"""The SDK's static types are the types users receive.

mypy checks this file in ``make lint`` (``assert_type`` fails type-checking when a call is ``Any`` or
drifts from its declared type, e.g. when a lazy export loses its ``TYPE_CHECKING`` mirror); pytest runs
it, so every ``assert_type`` is paired with an ``isinstance`` check of the value really returned.
Unused ``type: ignore`` comments are errors here: each one marks a call mypy must reject.
"""

from __future__ import annotations

from pathlib import Path
from typing import assert_type

import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier

import shipyard as sy

FRAME = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0], "y": [0, 1, 1, 0]})


@pytest.fixture
def sdk(client: sy.Client) -> sy.Client:
    """``client``, also made the default client of the module-level helpers."""
    sy.set_tracking_uri(client.settings.tracking_uri, client.settings.artifact_uri)
    return client


def test_runs_have_precise_types(sdk: sy.Client) -> None:
    with sy.start_run(experiment="typing", params={"C": 1}) as active:
        assert_type(active, sy.ActiveRun)
        sy.log_metric("loss", 0.5)
        artifact = assert_type(active.log_text("hi", "notes.txt"), sy.Artifact)
        assert isinstance(artifact, sy.Artifact)
    run = assert_type(sy.get_run(active), sy.Run)
    assert isinstance(run, sy.Run) and run.metrics == {"loss": 0.5}
    assert_type(sy.get_metric_history(run, "loss"), pd.DataFrame)
    assert_type(sy.compare_runs([run, active.id]), pd.DataFrame)
    audit = assert_type(sy.list_audit(limit=5), list[sy.AuditEntry])
    assert all(isinstance(e, sy.AuditEntry) for e in audit)
    chain = assert_type(sdk.verify_audit(), sy.ChainReport)
    assert isinstance(chain, sy.ChainReport) and chain.ok


def test_data_functions_have_precise_types(sdk: sy.Client) -> None:
    version = assert_type(sy.log_dataset(FRAME, "typed-data"), sy.DatasetVersion)
    versions = assert_type(sy.list_datasets("typed-data"), list[sy.DatasetVersion])
    assert versions == [version]
    assert isinstance(assert_type(sy.load_profile(version), sy.Profile), sy.Profile)
    contract = assert_type(sy.infer_contract(FRAME, name="typed"), sy.Contract)
    stored = assert_type(sy.register_contract(contract), sy.ContractVersion)
    assert assert_type(sy.list_contracts("typed"), list[sy.ContractVersion]) == [stored]
    assert assert_type(sy.get_contract("typed@v1"), sy.ContractVersion) == stored
    report = assert_type(sy.validate(FRAME, contract), sy.ValidationReport)
    assert isinstance(report, sy.ValidationReport) and report.ok
    pii = assert_type(sy.scan_pii(FRAME), sy.PiiReport)
    assert isinstance(pii, sy.PiiReport)
    masked = assert_type(sy.anonymize(FRAME, {"a": "drop"}), pd.DataFrame)
    assert list(masked.columns) == ["b", "y"]


def test_registry_and_deployment_functions_have_precise_types(sdk: sy.Client, tmp_path: Path) -> None:
    X = FRAME[["a", "b"]]
    model = DecisionTreeClassifier(random_state=0).fit(X, FRAME["y"])
    mv = assert_type(sy.register_model(model, "typed-model", input_example=X), sy.ModelVersion)
    assert isinstance(mv, sy.ModelVersion)
    assert assert_type(sy.get_model_version(mv.ref), sy.ModelVersion) == mv
    assert assert_type(sy.list_model_versions("typed-model"), list[sy.ModelVersion]) == [mv]
    registered = assert_type(sy.get_registered_model("typed-model"), sy.RegisteredModel)
    assert isinstance(registered, sy.RegisteredModel)
    assert_type(sy.list_models(), list[sy.RegisteredModel])
    loaded = assert_type(sy.load_model(mv.ref), sy.LoadedModel)
    assert isinstance(loaded, sy.LoadedModel)
    assert_type(sy.download_model(mv, tmp_path / "copy"), Path)
    assert assert_type(sy.get_promotion_policy("typed-model"), sy.PromotionPolicy | None) is None
    result = assert_type(sy.promote_model("typed-model", mv.version, alias="champion"), sy.PromotionResult)
    assert isinstance(result, sy.PromotionResult) and result.promoted
    assert all(isinstance(g, sy.GateResult) for g in result.gates)
    records = assert_type(sy.list_model_records("typed-model", kind="promotion"), list[sy.ModelRecord])
    assert [r.body["status"] for r in records] == ["promoted"]
    report = assert_type(sy.evaluate(mv.ref, FRAME, "y", explain=False, plots=False), sy.EvaluationReport)
    assert isinstance(report, sy.EvaluationReport)
    spec = f"name: typed\nvariants:\n  - {{name: main, model: '{mv.ref}'}}\n"
    record = assert_type(sy.deploy(spec, reason="typing"), sy.DeploymentRecord)
    assert isinstance(record, sy.DeploymentRecord)
    assert isinstance(assert_type(sy.get_deployment("typed"), sy.DeploymentSpec), sy.DeploymentSpec)
    assert assert_type(sy.get_deployment_record("typed"), sy.DeploymentRecord) == record
    assert assert_type(sy.list_deployments(), list[sy.DeploymentRecord]) == [record]
    assert assert_type(sy.deployment_history("typed"), list[sy.DeploymentRecord]) == [record]


def test_errors_users_catch_are_exported_and_typed(sdk: sy.Client) -> None:
    with pytest.raises(sy.NotFound) as caught:
        sy.get_model_version("models:/absent/1")
    assert_type(caught.value, sy.NotFound)
    with pytest.raises(sy.InvalidInput):
        sy.get_run(42)  # type: ignore[arg-type]  # the point: a clear error, not a SQL one


def test_a_misspelt_export_is_an_error_for_mypy_and_at_runtime() -> None:
    with pytest.raises(AttributeError, match="regster_model"):
        sy.regster_model  # type: ignore[attr-defined]  # noqa: B018
