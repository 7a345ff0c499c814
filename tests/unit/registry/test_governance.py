"""Registration, safe loading, gated promotion, four-eyes approvals and rollback, on real models and
a real SQLite store (the same code runs over REST in tests/unit/server/test_models_api.py)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

import shipyard as sy
from shipyard.data.contracts import Contract
from shipyard.data.registry import register_contract
from shipyard.data.versions import log_dataset
from shipyard.errors import (
    DigestMismatch,
    InvalidInput,
    InvalidState,
    NotFound,
    PermissionDenied,
    SignatureMismatch,
    UnsafeModel,
)
from shipyard.registry import core, governance, supply
from shipyard.tracking import Client

FEATURES = 8


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :FEATURES]
    X.columns = [c.replace(" ", "_") for c in X.columns]
    df = X.assign(target=y)
    return df.iloc[:350].reset_index(drop=True), df.iloc[350:].reset_index(drop=True)


@pytest.fixture
def roles(tmp_path: Path) -> Path:
    path = tmp_path / "roles.yaml"
    path.write_text("approver: [bob, carol]\nadmin: [dave]\n")
    return path


@pytest.fixture
def alice(client: Client, roles: Path) -> Client:
    return _as(client, "alice", roles)


def _as(client: Client, user: str, roles: Path | None = None) -> Client:
    settings = client.settings.replace(
        user=user, roles_file=str(roles) if roles else client.settings.roles_file
    )
    return Client.from_stores(settings, client.store, client.blobs)


def _set_policy(client: Client, policy: str, name: str = "bc") -> None:
    """Attach a policy as dave, the roles file's admin (policy changes need the admin role)."""
    governance.set_policy(name, policy, client=_as(client, "dave", Path(client.settings.roles_file)))


def _register(client: Client, model: Any, train: pd.DataFrame, name: str = "bc") -> int:
    X = train.drop(columns=["target"])
    fitted = model.fit(X, train["target"])
    mv = core.register_model(fitted, name, input_example=X.head(3), client=client)
    return mv.version


def _policy(extra_gates: str = "", approvals: int = 0) -> str:
    return f"""
evaluation: {{dataset: "bc-eval@latest", target: target}}
gates:
  - {{metric: roc_auc, min: 0.80}}
  - {{metric: roc_auc, relative_to: champion, min_delta: -0.01}}
  - {{max_size_mb: 50}}
{extra_gates}
approvals: {{required: {approvals}, role: approver}}
"""


@pytest.fixture
def setup(alice: Client, frames: tuple[pd.DataFrame, pd.DataFrame]) -> Client:
    log_dataset(frames[1], name="bc-eval", client=alice)
    return alice


def test_registered_version_carries_signature_lineage_metrics_and_requirements(
    client: Client, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train = frames[0]
    log_dataset(train, name="bc-train", client=client)
    X = train.drop(columns=["target"])
    with client.start_run("bc") as run:
        run.use_dataset("bc-train@v1", role="train")
        core.log_model(
            RandomForestClassifier(n_estimators=5, random_state=0).fit(X, train["target"]), run=run
        )
        run.log_metric("val_auc", 0.97)
    mv = core.register_model(run, "bc", client=client, training_data=train, target="target", description="rf")
    assert mv.version == 1 and mv.flavor == "sklearn" and mv.run_id == run.id
    assert mv.datasets == [("bc-train", 1, "train")]
    assert [c["name"] for c in mv.signature["inputs"]] == list(X.columns)
    assert mv.metadata["metrics"]["val_auc"] == pytest.approx(0.97)
    assert not any(k.startswith("system.") for k in mv.metadata["metrics"])
    assert any(r.startswith("scikit-learn==") for r in mv.metadata["requirements"])
    assert [v.version for v in client.store.models_for_run(run.id)] == [1]
    again = core.register_model(run, "bc", client=client)
    assert again.version == 1, "the same model folder is the same version"


def test_signature_comes_from_the_training_datas_contract(
    client: Client, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train = frames[0]
    contract = Contract.from_dict(
        {
            "name": "bc",
            "columns": [{"name": c, "type": "float", "nullable": False} for c in train.columns[:-1]]
            + [{"name": "target", "type": "int"}],
        }
    )
    register_contract(contract, client=client)
    log_dataset(train, name="bc-train", contract="bc@v1", client=client)
    X = train.drop(columns=["target"])
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, train["target"])
    mv = core.register_model(model, "bc", client=client, training_data="bc-train@v1", target="target")
    assert mv.datasets == [("bc-train", 1, "train")]
    assert {c["name"] for c in mv.signature["inputs"]} == set(X.columns)
    assert mv.signature["source"] == "contract bc"
    assert {c["type"] for c in mv.signature["inputs"]} == {"float64"}
    loaded = core.load_model(mv, client=client)
    bad = X.head(2).astype({X.columns[0]: str}).assign(**{X.columns[0]: ["a", "b"]})
    with pytest.raises(SignatureMismatch) as err:
        loaded.predict(bad)
    assert X.columns[0] in str(err.value)


def test_load_model_predicts_like_the_original_and_checks_its_input(
    client: Client, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = frames
    X = train.drop(columns=["target"])
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, train["target"])
    core.register_model(model, "bc", input_example=X.head(), client=client)
    client.store.set_model_alias("bc", "champion", 1, "alice")
    loaded = core.load_model("models:/bc@champion", client=client)
    Xt = test.drop(columns=["target"])
    assert (loaded.predict(Xt) == model.predict(Xt)).all()
    assert loaded.predict_proba(Xt).shape == (len(Xt), 2)
    with pytest.raises(SignatureMismatch) as err:
        loaded.predict(Xt.drop(columns=[X.columns[2]]))
    assert err.value.details["problems"][0]["column"] == X.columns[2]


def test_a_tampered_blob_is_refused_naming_the_file(
    client: Client, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train = frames[0]
    X = train.drop(columns=["target"])
    mv = core.register_model(
        DecisionTreeClassifier(max_depth=2).fit(X, train["target"]),
        "bc",
        input_example=X.head(),
        client=client,
    )
    blob = next(f for f in mv.files if f.path.endswith(".skops"))
    path = Path(client.settings.artifact_uri) / "blobs" / blob.digest[:2] / blob.digest[2:]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))
    with pytest.raises(DigestMismatch, match="model.skops"):
        core.load_model("bc/1", client=client)


def test_an_edited_cached_copy_is_refused_too(
    client: Client, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train = frames[0]
    X = train.drop(columns=["target"])
    core.register_model(
        DecisionTreeClassifier().fit(X, train["target"]), "bc", input_example=X.head(), client=client
    )
    folder = core.download_model("bc/1", client=client)
    target = next(folder.glob("*.skops"))
    target.write_bytes(target.read_bytes()[:-10])
    with pytest.raises(DigestMismatch, match="skops"):
        core.load_model("bc/1", client=client)


class _Payload:
    """Unpickling this runs a shell command: what a malicious model file does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


class _Model:
    def __init__(self, marker: Path) -> None:
        self.payload = _Payload(marker)

    def predict(self, df: pd.DataFrame) -> Any:
        return df.iloc[:, 0]


def test_a_malicious_pickle_is_refused_and_never_runs(client: Client, tmp_path: Path) -> None:
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    example = pd.DataFrame({"x": [1.0, 2.0]})
    core.register_model(
        _Model(marker), "evil", input_example=example, flavor="python_function", client=client
    )
    with pytest.raises(UnsafeModel, match="system"):
        core.load_model("evil", client=client)
    assert not marker.exists()
    assert client.list_audit(action="model.load_trusted") == []


def test_trust_true_is_audited(client: Client) -> None:
    example = pd.DataFrame({"x": [1.0, 2.0]})
    core.register_model(_Echo(), "echo", input_example=example, flavor="python_function", client=client)
    model = core.load_model("echo", trust=True, client=client)
    assert list(model.predict(example)) == [1.0, 2.0]
    (entry,) = client.list_audit(action="model.load_trusted")
    assert entry.object_id == "echo/1" and entry.actor == client.settings.user


class _Echo:
    def predict(self, df: pd.DataFrame) -> Any:
        return df["x"].to_numpy()


def test_gates_pass_and_the_alias_moves(setup: Client, frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    v = _register(setup, RandomForestClassifier(n_estimators=20, random_state=0), frames[0])
    _set_policy(setup, _policy())
    result = governance.promote("bc", v, client=setup)
    assert result.promoted, result.reasons
    assert [g.passed for g in result.gates] == [True, True, True]
    assert result.gates[0].evidence["value"] > 0.8
    assert "nothing to compare" in result.gates[1].evidence["note"]
    assert setup.store.get_model_version("bc", "champion").version == v
    (record,) = setup.store.list_model_records("bc", v, "promotion")
    assert record.body["status"] == "promoted"
    assert len(setup.store.list_model_records("bc", v, "evaluation")) == 1
    assert setup.verify_audit().ok


def test_an_absolute_gate_failure_blocks_and_records_the_evidence(
    setup: Client, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    v = _register(setup, DecisionTreeClassifier(max_depth=1, random_state=0), frames[0])
    _set_policy(setup, _policy().replace("min: 0.80", "min: 0.99"))
    result = governance.promote("bc", v, client=setup)
    assert result.status == "blocked"
    assert not result.gates[0].passed and result.gates[0].evidence["min"] == 0.99
    assert "roc_auc ≥ 0.99" in result.reasons[0]
    with pytest.raises(NotFound):
        setup.store.get_model_version("bc", "champion")


def test_relative_gate_compares_with_the_champion_on_the_same_data(
    setup: Client, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    good = _register(setup, RandomForestClassifier(n_estimators=30, random_state=0), frames[0])
    _set_policy(setup, _policy())
    assert governance.promote("bc", good, client=setup).promoted
    worse = _register(setup, DecisionTreeClassifier(max_depth=1, random_state=0), frames[0])
    result = governance.promote("bc", worse, client=setup)
    relative = result.gates[1]
    assert result.status == "blocked" and not relative.passed
    assert relative.evidence["baseline_version"] == good
    assert relative.evidence["delta"] == pytest.approx(
        relative.evidence["value"] - relative.evidence["baseline"]
    )
    assert relative.evidence["delta"] < -0.01
    assert setup.store.get_model_version("bc", "champion").version == good


def test_four_eyes_the_author_cannot_approve_and_approvers_need_the_role(
    setup: Client, frames: tuple[pd.DataFrame, pd.DataFrame], roles: Path
) -> None:
    v = _register(setup, RandomForestClassifier(n_estimators=10, random_state=0), frames[0])
    _set_policy(setup, _policy(approvals=1))
    blocked = governance.promote("bc", v, client=setup)
    assert blocked.status == "blocked"
    assert "needs 1 more approval(s) from role 'approver'" in blocked.reasons[-1]
    with pytest.raises(PermissionDenied, match="four eyes"):
        governance.approve("bc", v, client=setup)
    with pytest.raises(PermissionDenied, match="does not hold the role 'approver'"):
        governance.approve("bc", v, client=_as(setup, "mallory", roles))
    governance.approve_model("bc", v, reason="looked at the report", client=_as(setup, "bob", roles))
    result = governance.promote("bc", v, client=setup)
    assert result.promoted and result.approvals["approved_by"] == ["bob"]
    actions = [e.action for e in setup.list_audit(object_type="model_version")]
    assert "model_version.approve" in actions


def test_a_standing_rejection_blocks_promotion(
    setup: Client, frames: tuple[pd.DataFrame, pd.DataFrame], roles: Path
) -> None:
    v = _register(setup, RandomForestClassifier(n_estimators=10, random_state=0), frames[0])
    _set_policy(setup, _policy(approvals=1))
    governance.approve("bc", v, client=_as(setup, "bob", roles))
    with pytest.raises(InvalidInput, match="needs a reason"):
        governance.reject("bc", v, client=_as(setup, "carol", roles))
    governance.reject_model("bc", v, reason="bias on small tumours", client=_as(setup, "carol", roles))
    result = governance.promote("bc", v, client=setup)
    assert result.status == "blocked" and "rejected by carol" in result.reasons


def test_fairness_contract_and_latency_gates(
    setup: Client, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = frames
    sens = (test["mean_radius"] > test["mean_radius"].median()).map({True: "large", False: "small"})
    log_dataset(test.assign(size=sens), name="bc-eval", client=setup)
    X = train.drop(columns=["target"])
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, train["target"])
    v = core.register_model(model, "bc", input_example=X.head(), client=setup).version
    strict = Contract.from_dict(
        {"name": "strict", "columns": [{"name": "mean_radius", "type": "float", "max": 1.0}]}
    )
    register_contract(strict, client=setup)
    policy = _policy(
        extra_gates="  - {fairness: demographic_parity_difference, column: size, max: 0.01}\n"
        "  - {contract: strict@v1}\n"
        "  - {max_latency_ms: 0.000001, rows: 1}\n"
    ).replace("target: target}", "target: target, sensitive: [size]}")
    _set_policy(setup, policy)
    result = governance.promote("bc", v, client=setup)
    fairness, contract, latency = result.gates[3:]
    assert not fairness.passed and fairness.evidence["value"] > 0.01
    assert not contract.passed and contract.evidence["contract"] == "strict"
    assert not latency.passed and latency.evidence["median_ms"] > 0
    assert result.status == "blocked" and len(result.reasons) == 3


def test_rollback_only_to_a_former_holder(setup: Client, frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    v1 = _register(setup, RandomForestClassifier(n_estimators=10, random_state=0), frames[0])
    v2 = _register(setup, RandomForestClassifier(n_estimators=11, random_state=1), frames[0])
    v3 = _register(setup, RandomForestClassifier(n_estimators=12, random_state=2), frames[0])
    assert governance.promote("bc", v1, client=setup).promoted
    assert governance.promote("bc", v2, client=setup).promoted
    with pytest.raises(InvalidState, match="already holds"):
        governance.promote("bc", v2, client=setup)
    with pytest.raises(InvalidInput, match="never held alias 'champion'"):
        governance.rollback("bc", to=v3, client=setup)
    assert governance.rollback("bc", reason="v2 misbehaves", client=setup) == v1
    assert setup.store.get_model_version("bc", "champion").version == v1
    last = setup.list_audit(object_type="model_alias")[-1]
    assert (last.before, last.after, last.reason) == (
        {"version": v2},
        {"version": v1},
        "rollback: v2 misbehaves",
    )


def test_package_audit_against_an_allowlist(
    client: Client, frames: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    train = frames[0]
    X = train.drop(columns=["target"])
    mv = core.register_model(
        DecisionTreeClassifier().fit(X, train["target"]), "bc", input_example=X, client=client
    )
    names = [r.split("==")[0] for r in mv.metadata["requirements"]]
    allow = tmp_path / "allow.txt"
    allow.write_text(
        "# approved by security\n" + "\n".join(n for n in names if n != "skops") + "\nscikit-learn<1.0\n"
    )
    checks = {c.package: c.status for c in supply.check_packages(mv, allow)}
    assert checks["skops"] == "not_listed"
    assert checks["scikit-learn"] == "version_not_allowed"
    assert all(s == "allowed" for p, s in checks.items() if p not in ("skops", "scikit-learn"))


def test_module_level_helpers_use_the_default_client(
    client: Client, frames: tuple[pd.DataFrame, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    sy.set_tracking_uri(client.settings.tracking_uri, client.settings.artifact_uri)
    try:
        train = frames[0]
        X = train.drop(columns=["target"])
        mv = sy.register_model(DecisionTreeClassifier().fit(X, train["target"]), "bc", input_example=X.head())
        assert sy.get_model_version("models:/bc/1").digest == mv.digest
        assert [m.name for m in sy.list_models()] == ["bc"]
        assert len(sy.load_model("bc").predict(X.head(4))) == 4
    finally:
        sy.set_tracking_uri()


def test_concurrent_loads_share_one_cached_copy(
    client: Client, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    """Several threads (or server workers) loading the same version at once all get a verified model."""
    from concurrent.futures import ThreadPoolExecutor

    train = frames[0]
    X = train.drop(columns=["target"])
    core.register_model(
        DecisionTreeClassifier().fit(X, train["target"]), "bc", input_example=X.head(), client=client
    )
    with ThreadPoolExecutor(6) as pool:
        models = list(pool.map(lambda _: core.load_model("bc/1", client=client), range(6)))
    assert {len(m.predict(X.head(3))) for m in models} == {3}
    cache = Path(client.settings.home) / "models"
    assert [p.name for p in cache.iterdir() if not p.name.startswith(".")] == [
        client.store.get_model_version("bc", 1).digest
    ]
    assert not [p for p in cache.iterdir() if p.name.startswith(".")], "no staging folder left behind"
