"""One YAML spec reader and one error format for contracts, promotion policies and deployments."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from shipyard.data.contracts import ColumnSpec, Contract
from shipyard.errors import InvalidInput
from shipyard.registry.policy import ApprovalRule, PromotionPolicy, parse_policy
from shipyard.serving.deployment import DeploymentSpec, VariantSpec, parse_deployment
from shipyard.specs import StrictModel, load_yaml, parse_spec

BROKEN = "name: churn\nvariants:\n  - {name: main, model: m\n"  # the flow mapping never closes


class Item(StrictModel):
    item_noun: ClassVar[str] = "item"
    name: str
    size: int = 0


class Box(StrictModel):
    label: str
    items: list[Item] = []


def test_every_spec_model_is_strict() -> None:
    for model in (ColumnSpec, Contract, PromotionPolicy, ApprovalRule, DeploymentSpec, VariantSpec):
        assert issubclass(model, StrictModel)
        assert model.model_config.get("extra") == "forbid"
        assert model.model_config.get("frozen") is True


def test_an_unknown_key_is_invalid_input_not_a_pydantic_error() -> None:
    with pytest.raises(InvalidInput, match="colour: Extra inputs are not permitted"):
        Box(label="b", colour="red")


def test_a_named_list_item_is_called_by_its_name() -> None:
    with pytest.raises(InvalidInput) as info:
        Box(label="b", items=[{"name": "lid", "size": "big"}])
    assert info.value.message.startswith("Box is not valid: item 'lid' field 'size': ")
    assert info.value.details["problems"] == [
        "item 'lid' field 'size': Input should be a valid integer, unable to parse string as an integer"
    ]


def test_an_unnamed_list_item_is_called_by_its_path() -> None:
    with pytest.raises(InvalidInput, match=r"items\.0\.name: Field required"):
        parse_spec({"label": "b", "items": [{"size": 1}]}, Box, noun="Box", shape="a mapping")


def test_an_item_built_on_its_own_is_named_too() -> None:
    with pytest.raises(InvalidInput, match="Item is not valid: item 'lid' field 'size'"):
        Item(name="lid", size="big")


def test_yaml_text_with_a_syntax_error_names_the_line() -> None:
    with pytest.raises(InvalidInput) as info:
        load_yaml(BROKEN, noun="Deployment")
    assert "Deployment YAML does not parse (line 4)" in info.value.message
    assert info.value.details == {"source": "text", "line": 4}


@pytest.mark.parametrize(
    ("read", "noun"),
    [
        (parse_deployment, "Deployment"),
        (parse_policy, "Promotion policy"),
        (Contract.from_yaml, "Contract"),
    ],
    ids=["deployment", "policy", "contract"],
)
def test_a_yaml_file_with_a_syntax_error_is_invalid_input_naming_file_and_line(
    tmp_path: Path, read: object, noun: str
) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    for source in (path, str(path)):
        with pytest.raises(InvalidInput) as info:
            read(source)  # type: ignore[operator]
        assert f"{noun} YAML does not parse ({path}, line 4)" in info.value.message
        assert isinstance(info.value.__cause__, yaml.YAMLError)


@pytest.mark.parametrize("read", [parse_deployment, parse_policy, Contract.from_yaml])
def test_a_missing_yaml_file_is_invalid_input(tmp_path: Path, read: object) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        read(tmp_path / "nope.yaml")  # type: ignore[operator]


def test_the_three_specs_format_field_errors_alike() -> None:
    messages = []
    for read, text in [
        (parse_deployment, "name: churn\nvariants: [{name: main, model: m, weight: -1}]"),
        (Contract.from_yaml, "name: t\ncolumns: [{name: main, type: int, max_length: -1}]"),
    ]:
        with pytest.raises(InvalidInput) as info:
            read(text)
        messages.append(info.value.message)
    assert "is not valid: variant 'main' field 'weight': " in messages[0]
    assert "is not valid: column 'main' field 'max_length': " in messages[1]
    with pytest.raises(InvalidInput, match=r"Promotion policy is not valid: approvals\.required: "):
        parse_policy("approvals: {required: 99}")
