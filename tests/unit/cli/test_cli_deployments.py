"""``shipyard deployments …`` and the SDK under it: create (model refs must resolve), ls, show, history,
promote a canary, roll back — each a new audited version."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier
from typer.testing import Result

from shipyard.registry import core
from shipyard.tracking import Client

Invoke = Callable[..., Result]


@pytest.fixture
def spec_file(client: Client, tmp_path: Path) -> Path:
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    for depth in (1, 2):
        model = DecisionTreeClassifier(max_depth=depth).fit(X, [0, 0, 1, depth % 2])
        core.register_model(model, "churn", input_example=X, client=client)
    client.store.set_model_alias("churn", "champion", 1, "alice")
    client.store.set_model_alias("churn", "challenger", 2, "alice")
    path = tmp_path / "churn.yaml"
    path.write_text(
        "name: churn\nvariants:\n"
        "  - {name: main, model: 'models:/churn@champion', weight: 90}\n"
        "  - {name: candidate, model: 'models:/churn@challenger', weight: 10, mode: canary}\n"
    )
    return path


def test_create_show_promote_history_rollback(cli: Invoke, spec_file: Path, client: Client) -> None:
    created = cli("deployments", "create", str(spec_file), "--reason", "canary 10%")
    assert created.exit_code == 0, created.output
    assert "version 1" in created.output
    listed = cli("deployments", "ls")
    assert "main (ab 90%)" in listed.output and "candidate (canary 10%)" in listed.output
    shown = cli("deployments", "show", "churn")
    assert "models:/churn@challenger" in shown.output and "10.0%" in shown.output
    promoted = cli("deployments", "promote", "churn", "candidate")
    assert promoted.exit_code == 0 and "version 2" in promoted.output
    spec = json.loads(cli("deployments", "show", "churn", "--json").output)["spec"]
    assert [(v["name"], v["weight"]) for v in spec["variants"]] == [("candidate", 100.0)]
    rolled = cli("deployments", "rollback", "churn", "--to", "1")
    assert rolled.exit_code == 0 and "as version 3" in rolled.output
    history = json.loads(cli("deployments", "history", "churn", "--json").output)
    assert [h["version"] for h in history] == [1, 2, 3]
    assert history[2]["spec_yaml"] == history[0]["spec_yaml"]
    reasons = [e.reason for e in client.list_audit(action="deployment.save")]
    assert reasons == ["canary 10%", "promote variant candidate", "rollback to version 1"]


def test_a_spec_naming_a_missing_model_is_refused(cli: Invoke, spec_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(spec_file.read_text().replace("@challenger", "@nosuchalias"))
    done = cli("deployments", "create", str(bad))
    assert done.exit_code == 1 and "no alias 'nosuchalias'" in done.output
    assert "Traceback" not in done.output


def test_bad_input_is_one_clear_line(cli: Invoke, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: churn\nvariants: [{name: a, model: m, weight: -5}]\n")
    done = cli("deployments", "create", str(bad))
    assert done.exit_code == 1 and "variant 'a' field 'weight'" in done.output
    missing = cli("deployments", "show", "ghost")
    assert missing.exit_code == 1 and "not found" in missing.output
