"""``shipyard models …``: register, ls, versions, show, lineage, evaluate, policy, promote, approve,
reject, rollback, audit and package, as a user types them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from typer.testing import Result

from shipyard.data.versions import log_dataset
from shipyard.registry import core
from shipyard.tracking import Client

Invoke = Callable[..., Result]


@pytest.fixture
def registered(client: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """One run with a logged model on 'bc-train@v1', an eval dataset, and a roles file for bob."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :5]
    X.columns = [c.replace(" ", "_") for c in X.columns]
    data = X.assign(target=y)
    log_dataset(data.iloc[:300], name="bc-train", client=client)
    log_dataset(data.iloc[300:], name="bc-eval", client=client)
    with client.start_run("bc", system_metrics=False, log_environment=False) as run:
        run.use_dataset("bc-train@v1", role="train")
        model = RandomForestClassifier(n_estimators=8, random_state=0).fit(X.iloc[:300], y.iloc[:300])
        core.log_model(model, run=run, input_example=X.head())
    roles = tmp_path / "roles.yaml"
    roles.write_text("approver: [bob]\nadmin: [alice]\n")
    monkeypatch.setenv("SHIPYARD_ROLES_FILE", str(roles))
    monkeypatch.setenv("SHIPYARD_USER", "alice")
    return run.id


def test_register_list_show_and_lineage(cli: Invoke, registered: str) -> None:
    done = cli("models", "register", registered, "--name", "bc", "--target", "target")
    assert done.exit_code == 0, done.output
    assert "Registered models:/bc/1 (sklearn, 5 inputs)" in done.output
    listed = cli("models", "ls", "--json")
    assert json.loads(listed.output)[0]["latest_version"] == 1
    versions = cli("models", "versions", "bc")
    assert versions.exit_code == 0 and "sklearn" in versions.output and registered in versions.output
    shown = cli("models", "show", "bc/1")
    assert shown.exit_code == 0 and "mean_radius" in shown.output and "bc-train@v1 (train)" in shown.output
    lineage = json.loads(cli("models", "lineage", "models:/bc/1", "--json").output)
    assert lineage["datasets"] == [{"dataset": "bc-train@v1", "role": "train"}]
    assert lineage["run"]["id"] == registered


def test_policy_promote_approve_rollback_flow(
    cli: Invoke, registered: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("models", "register", registered, "--name", "bc").exit_code == 0
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "evaluation: {dataset: bc-eval@v1, target: target}\n"
        "gates: [{metric: roc_auc, min: 0.8}]\napprovals: {required: 1}\n"
    )
    assert cli("models", "policy", "set", "bc", str(policy)).exit_code == 0
    assert "roc_auc" in cli("models", "policy", "show", "bc").output
    blocked = cli("models", "promote", "bc", "1", "--to", "champion")
    assert blocked.exit_code == 1
    assert "needs 1 more approval" in blocked.output and "pass" in blocked.output
    own = cli("models", "approve", "bc", "1", "-m", "mine")
    assert own.exit_code == 1 and "four eyes" in own.output
    monkeypatch.setenv("SHIPYARD_USER", "bob")
    assert cli("models", "approve", "bc", "1", "-m", "reviewed").exit_code == 0
    monkeypatch.setenv("SHIPYARD_USER", "alice")
    promoted = cli("models", "promote", "bc", "1")
    assert promoted.exit_code == 0, promoted.output
    assert "bc@champion → v1" in promoted.output
    shown = cli("models", "show", "bc@champion", "--json")
    kinds = [r["kind"] for r in json.loads(shown.output)["records"]]
    assert kinds == ["evaluation", "promotion", "approval", "promotion"]
    missing = cli("models", "rollback", "bc")
    assert missing.exit_code == 1 and "no earlier version" in missing.output


def test_evaluate_prints_metrics(cli: Invoke, registered: str) -> None:
    assert cli("models", "register", registered, "--name", "bc").exit_code == 0
    done = cli("models", "evaluate", "bc", "1", "--data", "bc-eval@v1", "--target", "target")
    assert done.exit_code == 0, done.output
    assert "roc_auc" in done.output and "accuracy" in done.output


def test_audit_against_an_allowlist_exits_1_on_unlisted_packages(
    cli: Invoke, registered: str, tmp_path: Path
) -> None:
    assert cli("models", "register", registered, "--name", "bc").exit_code == 0
    allow = tmp_path / "allow.txt"
    allow.write_text("numpy\nscipy\n")
    done = cli("models", "audit", "bc/1", "--allowlist", str(allow))
    assert done.exit_code == 1 and "NOT_LISTED" in done.output and "scikit-learn" in done.output
    no_file = cli("models", "audit", "bc/1")
    assert no_file.exit_code == 1 and "--allowlist" in no_file.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("models", "show", "ghost"), "Registered model 'ghost' not found"),
        (("models", "show", "bad ref!"), "not understood"),
        (("models", "promote", "ghost", "1"), "not found"),
        (("models", "register", "nosuchrun", "--name", "bc"), "not found"),
    ],
)
def test_bad_input_is_one_clear_line(cli: Invoke, args: tuple[str, ...], message: str) -> None:
    done = cli(*args)
    assert done.exit_code != 0
    assert message in done.output and "Traceback" not in done.output


def test_package_writes_a_build_context(cli: Invoke, registered: str, tmp_path: Path) -> None:
    assert cli("models", "register", registered, "--name", "bc").exit_code == 0
    out = tmp_path / "ctx"
    done = cli("models", "package", "bc/1", "-o", str(out))
    assert done.exit_code == 0, done.output
    assert (out / "Dockerfile").is_file() and (out / "requirements.txt").is_file()
    again = cli("models", "package", "bc/1", "-o", str(out))
    assert again.exit_code == 1 and "overwrite" in again.output
