"""``shipyard data …``: add, ls, show, get, diff, pii — tables, --json and clear errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from typer.testing import Result

Invoke = Callable[..., Result]


def _csv(tmp_path: Path, name: str, rows: int, shift: float = 0.0) -> Path:
    path = tmp_path / name
    pd.DataFrame({"x": [i * 0.1 + shift for i in range(rows)], "g": ["a", "b"] * (rows // 2)}).to_csv(
        path, index=False
    )
    return path


def test_add_ls_show_get_round_trip(cli: Invoke, tmp_path: Path) -> None:
    added = cli("data", "add", str(_csv(tmp_path, "d.csv", 100)), "--name", "d", "--json")
    assert added.exit_code == 0, added.output
    version = json.loads(added.output)
    assert (version["name"], version["version"], version["rows"]) == ("d", 1, 100)
    listed = cli("data", "ls")
    assert listed.exit_code == 0 and "d@v1" in listed.output
    shown = cli("data", "show", "d@latest")
    assert shown.exit_code == 0 and "schema" in shown.output and version["digest"] in shown.output
    out = tmp_path / "back.parquet"
    got = cli("data", "get", "d@v1", "-o", str(out))
    assert got.exit_code == 0, got.output
    assert pq.read_table(out).num_rows == 100


def test_diff_reports_a_shift_with_a_verdict(cli: Invoke, tmp_path: Path) -> None:
    cli("data", "add", str(_csv(tmp_path, "a.csv", 1000)), "--name", "s")
    cli("data", "add", str(_csv(tmp_path, "b.csv", 1000, shift=50.0)), "--name", "s")
    result = cli("data", "diff", "s@v1", "s@v2")
    assert result.exit_code == 0, result.output
    assert "x: major shift" in result.output


def test_pii_masks_what_it_finds(cli: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("email,n\nann.lee@example.com,1\nbob@corp.org,2\n")
    result = cli("data", "pii", str(path), "--json")
    assert result.exit_code == 0, result.output
    findings = json.loads(result.output)["findings"]
    assert [f["column"] for f in findings] == ["email"]
    assert "ann.lee@example.com" not in result.output


def test_unknown_version_is_one_clear_error_line(cli: Invoke) -> None:
    result = cli("data", "show", "nothing@v3")
    assert result.exit_code == 1
    assert "not found" in result.output and "Traceback" not in result.output


def test_contract_infer_then_validate_passes_and_fails_with_exit_codes(cli: Invoke, tmp_path: Path) -> None:
    good = _csv(tmp_path, "good.csv", 100)
    contract = tmp_path / "c.yaml"
    inferred = cli("data", "contract", "infer", str(good), "--name", "things", "-o", str(contract))
    assert inferred.exit_code == 0, inferred.output
    assert "name: things" in contract.read_text()
    ok = cli("data", "validate", str(good), "--contract", str(contract))
    assert ok.exit_code == 0, ok.output
    assert "satisfy" in ok.output
    bad = _csv(tmp_path, "bad.csv", 100, shift=1000.0)
    failed = cli("data", "validate", str(bad), "--contract", str(contract), "--json")
    assert failed.exit_code == 1
    rules = {(v["column"], v["rule"]) for v in json.loads(failed.output)["violations"]}
    assert ("x", "range") in rules
    refused = cli("data", "add", str(bad), "--name", "things", "--contract", str(contract))
    assert refused.exit_code == 1 and "range" in refused.output
    assert cli("data", "add", str(good), "--name", "things", "-c", str(contract)).exit_code == 0


def test_contracts_register_list_show_and_validate_by_reference(cli: Invoke, tmp_path: Path) -> None:
    good = _csv(tmp_path, "good.csv", 50)
    path = tmp_path / "c.yaml"
    cli("data", "contract", "infer", str(good), "--name", "reg", "-o", str(path))
    added = cli("data", "contract", "add", str(path), "--json")
    assert added.exit_code == 0, added.output
    assert json.loads(added.output)["version"] == 1
    listed = cli("data", "contract", "ls")
    assert listed.exit_code == 0 and "reg@v1" in listed.output
    shown = cli("data", "contract", "show", "reg@v1")
    assert shown.exit_code == 0 and shown.output == path.read_text()
    assert cli("data", "validate", str(good), "-c", "reg@latest").exit_code == 0
    missing = cli("data", "contract", "show", "reg@v5")
    assert missing.exit_code == 1 and "not found" in missing.output


def test_audit_ls_and_verify_detect_tampering(cli: Invoke, tmp_path: Path, sqlite_uri: str) -> None:
    from sqlalchemy import create_engine, text

    cli("data", "add", str(_csv(tmp_path, "a.csv", 10)), "--name", "aud")
    listed = cli("audit", "ls", "--json")
    assert listed.exit_code == 0 and json.loads(listed.output)[0]["action"] == "dataset.version.create"
    assert cli("audit", "verify").exit_code == 0
    engine = create_engine(sqlite_uri)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1"))
    engine.dispose()
    broken = cli("audit", "verify")
    assert broken.exit_code == 1 and "entry 1" in broken.output
