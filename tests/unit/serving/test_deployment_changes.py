"""What changed between two versions of a deployment, the model server's recorded address (``url``),
and a rollback that brings back an old version's traffic but keeps the server's current address."""

from __future__ import annotations

import pytest

from shipyard.errors import InvalidInput
from shipyard.serving import manage
from shipyard.serving.deployment import SpecChange, parse_deployment, spec_changes
from shipyard.tracking import Client

ONE = "name: churn\nvariants: [{name: main, model: /models/a}]\n"
TWO = (
    "name: churn\nvariants:\n"
    "  - {name: main, model: /models/a, weight: 80}\n"
    "  - {name: canary, model: /models/b, weight: 20, mode: canary}\n"
    "  - {name: next, model: /models/c, mode: shadow}\n"
)


def test_the_first_version_adds_every_variant() -> None:
    assert spec_changes(None, parse_deployment(TWO)) == [
        SpecChange("main", "added", after="/models/a (ab, 80.0%)"),
        SpecChange("canary", "added", after="/models/b (canary, 20.0%)"),
        SpecChange("next", "added", after="/models/c (shadow copy)"),
    ]


def test_weights_shares_models_modes_and_removals_are_changes() -> None:
    one, two = parse_deployment(ONE), parse_deployment(TWO)
    assert spec_changes(one, two) == [
        SpecChange("main", "changed", "weight", "100", "80"),
        SpecChange("main", "changed", "share", "100.0%", "80.0%"),
        SpecChange("canary", "added", after="/models/b (canary, 20.0%)"),
        SpecChange("next", "added", after="/models/c (shadow copy)"),
    ]
    promoted = two.promote("canary")
    assert spec_changes(two, promoted) == [
        SpecChange("canary", "changed", "mode", "canary", "ab"),
        SpecChange("canary", "changed", "weight", "20", "100"),
        SpecChange("canary", "changed", "share", "20.0%", "100.0%"),
        SpecChange("main", "removed", before="/models/a (ab, 80.0%)"),
    ]
    swapped = parse_deployment(ONE.replace("/models/a", "/models/z"))
    assert spec_changes(one, swapped) == [SpecChange("main", "changed", "model", "/models/a", "/models/z")]
    assert spec_changes(two, two) == []


def test_settings_changes_name_the_setting() -> None:
    one = parse_deployment(ONE)
    tuned = parse_deployment(ONE + "batching: {max_batch_size: 64}\nurl: http://serving:8080\n")
    assert spec_changes(one, tuned) == [
        SpecChange("", "changed", "batching.max_batch_size", "1024", "64"),
        SpecChange("", "changed", "url", "", "http://serving:8080"),
    ]


@pytest.mark.parametrize(
    "url",
    ["ftp://serving:8080", "serving:8080", "http://", "http://user:pw@serving:8080", "http://s:1/?next=x"],
)
def test_a_url_must_be_a_plain_http_address(url: str) -> None:
    with pytest.raises(InvalidInput, match="url"):
        parse_deployment(f"{ONE}url: '{url}'\n")


def test_a_spec_without_a_url_keeps_its_yaml() -> None:
    assert "url" not in parse_deployment(ONE).to_yaml()
    with_url = parse_deployment(ONE + "url: https://serving.example:8443/\n")
    assert with_url.url == "https://serving.example:8443"  # trailing slash dropped
    assert parse_deployment(with_url.to_yaml()) == with_url


def test_a_rollback_brings_back_the_traffic_and_keeps_the_current_address(client: Client) -> None:
    manage.deploy(ONE, client=client)
    manage.deploy(TWO + "url: http://serving:8080\n", client=client)
    back = manage.rollback_deployment("churn", 1, reason="bad canary", client=client)
    assert back.version == 3
    spec = parse_deployment(back.spec_yaml)
    assert spec.shares() == {"main": 1.0} and spec.url == "http://serving:8080"
    # version 1 plus the address is what version 3 already is: nothing to change, no new version
    assert manage.rollback_deployment("churn", 1, client=client).version == 3
