"""Deployment specs: parsing with precise errors, shares, promotion of a canary."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.errors import InvalidInput
from shipyard.serving.deployment import DeploymentSpec, parse_deployment, single_model_deployment

SPEC = """
name: churn
variants:
  - {name: main, model: "models:/churn@champion", weight: 90}
  - {name: candidate, model: "models:/churn@challenger", weight: 10, mode: canary}
  - {name: next, model: "models:/churn/9", mode: shadow}
sticky_key: customer_id
batching: {max_batch_size: 32, max_wait_ms: 1}
"""


def test_a_spec_parses_with_shares_live_variants_and_shadows() -> None:
    spec = parse_deployment(SPEC)
    assert spec.shares() == {"main": 0.9, "candidate": 0.1}
    assert [v.name for v in spec.live] == ["main", "candidate"]
    assert [v.name for v in spec.shadows] == ["next"]
    assert spec.batching.max_batch_size == 32 and spec.prediction_log.on_full == "block"
    assert parse_deployment(spec.to_yaml()) == spec


def test_a_spec_file_parses(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(SPEC)
    assert parse_deployment(path).name == "churn"
    assert parse_deployment(str(path)).name == "churn"
    with pytest.raises(InvalidInput, match="does not exist"):
        parse_deployment(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: churn\nvariants: []", "variants"),
        ("name: churn\nvariants: [{name: a, model: 'models:/churn@x', mode: shadow}]", "serve traffic"),
        ("name: churn\nvariants: [{name: a, model: m}, {name: a, model: n}]", "repeated: a"),
        ("name: churn\nvariants: [{name: a, model: 'models:/bad ref'}]", "not understood"),
        ("name: churn\nvariants: [{name: a, model: m, weight: -1}]", "variant 'a' field 'weight'"),
        ("name: churn\nvariants: [{name: a, model: m, mode: blue}]", "variant 'a' field 'mode'"),
        (
            "name: churn\nvariants: [{name: a, model: m}]\nbatching: {max_wait_ms: 5000}",
            "batching.max_wait_ms",
        ),
        ("name: churn\nvariants: [{name: a, model: m}]\nsurprise: 1", "surprise"),
        ("[1, 2]", "mapping"),
        ("name: [", r"does not parse \(line 1\)"),
    ],
)
def test_bad_specs_say_where(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_deployment(text)


def test_promoting_a_canary_gives_it_all_traffic_and_keeps_shadows() -> None:
    promoted = parse_deployment(SPEC).promote("candidate")
    assert promoted.shares() == {"candidate": 1.0}
    assert [(v.name, v.mode) for v in promoted.variants] == [("candidate", "ab"), ("next", "shadow")]
    with pytest.raises(InvalidInput, match="no variant 'ghost'"):
        parse_deployment(SPEC).promote("ghost")
    with pytest.raises(InvalidInput, match="is a shadow"):
        parse_deployment(SPEC).promote("next")


def test_single_model_deployment() -> None:
    spec = single_model_deployment("models:/churn@champion")
    assert isinstance(spec, DeploymentSpec) and spec.shares() == {"main": 1.0}
