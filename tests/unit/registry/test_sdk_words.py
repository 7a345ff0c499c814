"""One word per idea across models and deployments (``alias=``, ``to=`` a version, ``reason=``), the old
keywords still working for one release with a DeprecationWarning, and the read functions faces use."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier

import shipyard as sy
from shipyard import Client
from shipyard.errors import InvalidInput, NotFound
from shipyard.registry import governance

X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
Y = [0, 1, 1, 0]


def _version(client: Client, depth: int) -> int:
    model = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, Y)
    return sy.register_model(model, "words", input_example=X, client=client).version


@pytest.fixture
def roles(tmp_path: Path) -> Path:
    path = tmp_path / "roles.yaml"
    path.write_text("approver: [bob]\nadmin: [dave]\n")
    return path


def test_sdk_names_are_the_names_the_functions_are_defined_under() -> None:
    for name in ("promote_model", "approve_model", "reject_model", "rollback_model", "set_promotion_policy"):
        assert getattr(sy, name).__name__ == name


def test_promote_model_moves_the_alias_given_as_alias(client: Client) -> None:
    v1 = _version(client, 1)
    result = sy.promote_model("words", v1, alias="staging", reason="smoke", client=client)
    assert result.promoted and result.alias == "staging"
    assert sy.get_registered_model("words", client=client).aliases == {"staging": v1}


def test_promote_model_to_is_deprecated_and_does_the_same(client: Client) -> None:
    v1, v2 = _version(client, 1), _version(client, 2)
    new = sy.promote_model("words", v1, alias="staging", client=client)
    with pytest.deprecated_call(
        match=r"promote_model\(to=...\) is deprecated .* use promote_model\(alias=...\)"
    ):
        old = sy.promote_model("words", v2, to="staging", client=client)
    assert (old.alias, old.status, old.previous) == (new.alias, new.status, v1)
    assert sy.get_registered_model("words", client=client).aliases == {"staging": v2}


def test_both_spellings_with_different_values_is_an_error(client: Client) -> None:
    v1 = _version(client, 1)
    with pytest.deprecated_call(), pytest.raises(InvalidInput, match="both alias='prod' and to='staging'"):
        sy.promote_model("words", v1, alias="prod", to="staging", client=client)


def test_approve_and_reject_take_reason_and_comment_is_deprecated(client: Client, roles: Path) -> None:
    author = client.with_settings(user="alice", roles_file=str(roles))
    bob = client.with_settings(user="bob", roles_file=str(roles))
    v1, v2 = _version(author, 1), _version(author, 2)
    record = sy.approve_model("words", v1, reason="report read", client=bob)
    assert record.body["comment"] == "report read" and record.actor == "bob"
    with pytest.deprecated_call(match=r"approve_model\(comment=...\)"):
        old = sy.approve_model("words", v2, comment="report read", client=bob)
    assert old.body == record.body
    rejected = sy.reject_model("words", v1, reason="bias", client=bob)
    with pytest.deprecated_call(match=r"reject_model\(comment=...\)"):
        old_rejected = sy.reject_model("words", v2, comment="bias", client=bob)
    assert old_rejected.body == rejected.body == {"decision": "reject", "comment": "bias", "role": "approver"}
    with pytest.raises(InvalidInput, match="needs a reason"):
        sy.reject_model("words", v1, client=bob)


def test_rollback_model_takes_to_a_version_and_alias(client: Client) -> None:
    v1, v2 = _version(client, 1), _version(client, 2)
    sy.promote_model("words", v1, client=client)
    sy.promote_model("words", v2, client=client)
    assert sy.rollback_model("words", to=v1, alias="champion", reason="v2 misbehaves", client=client) == v1


def test_the_old_governance_names_are_the_same_functions() -> None:
    assert governance.promote is governance.promote_model
    assert governance.approve is governance.approve_model
    assert governance.set_policy is governance.set_promotion_policy


def test_model_reads(client: Client, roles: Path) -> None:
    v1 = _version(client, 1)
    assert [v.version for v in sy.list_model_versions("words", client=client)] == [v1]
    assert sy.get_promotion_policy("words", client=client) is None
    admin = client.with_settings(user="dave", roles_file=str(roles))  # policies may need the admin role
    sy.set_promotion_policy("words", {"approvals": {"required": 0}}, client=admin)
    policy = sy.get_promotion_policy("words", client=client)
    assert policy is not None and policy.approvals.required == 0
    sy.promote_model("words", v1, client=client)
    history = sy.list_model_records("words", kind="promotion", client=client)
    assert [(r.version, r.body["status"]) for r in history] == [(v1, "promoted")]
    assert sy.list_model_records("words", v1, kind="approval", client=client) == []
    with pytest.raises(NotFound):
        sy.get_registered_model("absent", client=client)


def test_deployment_reads(client: Client) -> None:
    v1 = _version(client, 1)
    first = sy.deploy(f"name: web\nvariants: [{{name: main, model: 'models:/words/{v1}'}}]", client=client)
    second = sy.deploy(f"name: web\nvariants: [{{name: b, model: 'models:/words/{v1}'}}]", client=client)
    sy.deploy(f"name: api\nvariants: [{{name: main, model: 'models:/words/{v1}'}}]", client=client)
    assert [(d.name, d.version) for d in sy.list_deployments(client=client)] == [("api", 1), ("web", 2)]
    assert sy.get_deployment_record("web", client=client) == second
    assert sy.get_deployment_record("web", 1, client=client) == first
    assert sy.rollback_deployment("web", 1, reason="back", client=client).version == 3


def test_contract_reads(client: Client) -> None:
    contract = sy.infer_contract(X, name="words-data")
    stored = sy.register_contract(contract, client=client)
    assert sy.list_contracts(client=client) == [stored] == sy.list_contracts("words-data", client=client)
    assert (
        sy.get_contract("words-data@v1", client=client)
        == stored
        == sy.get_contract("words-data", client=client)
    )
    assert sy.load_contract("words-data", client=client).digest == contract.digest
