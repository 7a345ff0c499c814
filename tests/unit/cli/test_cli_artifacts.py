"""``shipyard artifacts ls|get``: listings, verified downloads, clean errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import Result

Invoke = Callable[..., Result]


def test_artifacts_ls_shows_paths_sizes_and_digests(cli: Invoke, seeded: Any) -> None:
    result = cli("artifacts", "ls", seeded.forest)
    assert result.exit_code == 0, result.output
    assert "model/model.bin" in result.stdout and "7 B" in result.stdout


def test_artifacts_ls_json_under_a_prefix(cli: Invoke, seeded: Any) -> None:
    result = cli("artifacts", "ls", seeded.forest, "model", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [a["path"] for a in data] == ["model/model.bin"]
    assert data[0]["size"] == 7


def test_artifacts_ls_of_a_run_without_artifacts(cli: Invoke, seeded: Any) -> None:
    result = cli("artifacts", "ls", seeded.linear)
    assert result.exit_code == 0
    assert "no artifacts" in result.stdout


def test_artifacts_get_downloads_everything(cli: Invoke, seeded: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli("artifacts", "get", seeded.forest, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "model" / "model.bin").read_bytes() == b"weights"
    assert (out / "notes.txt").read_text() == "hello"
    assert "Downloaded 2 file(s)" in result.stdout


def test_artifacts_get_one_folder_json(cli: Invoke, seeded: Any, tmp_path: Path) -> None:
    result = cli("artifacts", "get", seeded.forest, "model", "-o", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["path"] == str(tmp_path / "model")
    assert [f["path"] for f in data["files"]] == ["model/model.bin"]
    assert not (tmp_path / "notes.txt").exists()


def test_artifacts_get_unknown_path_is_a_clean_error(cli: Invoke, seeded: Any, tmp_path: Path) -> None:
    result = cli("artifacts", "get", seeded.forest, "nothing/here", "-o", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "nothing/here" in result.stderr
    assert "Traceback" not in result.output


def test_artifacts_of_an_unknown_run_is_a_clean_error(cli: Invoke, seeded: Any) -> None:
    result = cli("artifacts", "ls", "0000")
    assert result.exit_code == 1
    assert "0000" in result.stderr and "Traceback" not in result.output
