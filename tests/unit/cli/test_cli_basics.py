"""The command line as a whole: version, help on every command, exit codes, plain output off a TTY."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

import shipyard
from shipyard.cli.gendocs import command_paths

Invoke = Callable[..., Result]

ALL_COMMANDS = [" ".join(path) for path in command_paths()]


def test_version_prints_the_package_version(cli: Invoke) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"shipyard {shipyard.__version__}"


def test_every_documented_command_exists() -> None:
    expected = {
        "experiments ls",
        "runs ls",
        "runs show",
        "runs search",
        "runs compare",
        "runs delete",
        "runs restore",
        "runs history",
        "artifacts ls",
        "artifacts get",
        "server",
        "sync",
        "gc",
        "demo",
        "doctor",
    }
    assert expected <= set(ALL_COMMANDS)


@pytest.mark.parametrize("command", ["", *ALL_COMMANDS])
def test_every_command_has_help_with_examples(cli: Invoke, command: str) -> None:
    result = cli(*command.split(), "--help")
    assert result.exit_code == 0, result.output
    assert "Usage: shipyard" in result.stdout
    groups = {
        "experiments",
        "runs",
        "artifacts",
        "data",
        "data contract",
        "audit",
        "models",
        "models policy",
        "deployments",
        "monitor",
        "monitor alerts",
        "pipelines",
        "pipelines cache",
        "pipelines schedules",
        "users",
        "tokens",
        "import",
    }
    if command and command not in groups:
        assert "Examples" in result.stdout, f"`shipyard {command} --help` shows no examples"


def test_no_arguments_shows_help(cli: Invoke) -> None:
    result = cli()
    assert "Usage: shipyard" in result.output


def test_unknown_command_is_a_usage_error(cli: Invoke) -> None:
    assert cli("nonsense").exit_code == 2


def test_bad_option_value_is_a_usage_error(cli: Invoke) -> None:
    assert cli("runs", "ls", "--limit", "zero").exit_code == 2
    assert cli("runs", "ls", "--limit", "0").exit_code == 2


def test_output_off_a_terminal_has_no_colour_codes(cli: Invoke, seeded: object) -> None:
    for args in (["runs", "ls"], ["runs", "search", "-f", "metrics.auc > 0"], ["doctor"]):
        result = cli(*args)
        assert result.exit_code == 0, result.output
        assert "\x1b[" not in result.output


def test_bad_settings_are_one_clean_error(cli: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_FLUSH_INTERVAL", "soon")
    result = cli("runs", "ls")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: Setting 'flush_interval'")
    assert "Traceback" not in result.output


def test_global_tracking_uri_option_beats_the_environment(
    cli: Invoke, tmp_path: Path, seeded: object
) -> None:
    elsewhere = f"sqlite:///{tmp_path}/elsewhere.db"
    result = cli("--tracking-uri", elsewhere, "runs", "ls", "--json")
    assert result.exit_code == 0, result.output
    assert '"runs": []' in result.stdout
