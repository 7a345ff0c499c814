"""What a run records about where it ran: git state, command, interpreter, host, user, packages,
and (when enabled) system metrics."""

from __future__ import annotations

import platform
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shipyard import Client
from shipyard.config import default_user
from shipyard.tracking import environment

SYSTEM_METRICS = {
    "system.cpu_percent",
    "system.rss_mb",
    "system.rss_peak_mb",
    "system.wall_time_s",
    "system.cpu_time_s",
}


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        [
            "git",
            "-c",
            "user.email=t@example.com",
            "-c",
            "user.name=Test",
            "-c",
            "init.defaultBranch=main",
            *args,
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@pytest.fixture
def git_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    repo = tmp_path / "project"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "train.py").write_text("print('train')\n")
    git(repo, "add", "train.py")
    git(repo, "commit", "-q", "-m", "first")
    monkeypatch.chdir(repo)
    environment.git_info.cache_clear()
    yield repo
    environment.git_info.cache_clear()


def test_run_records_the_git_commit_and_a_clean_tree(client: Client, git_repo: Path) -> None:
    with client.start_run(log_environment=True) as run:
        pass
    tags = client.get_run(run.id).tags
    assert tags["sy.git.commit"] == git(git_repo, "rev-parse", "HEAD")
    assert tags["sy.git.dirty"] == "false"
    assert tags["sy.git.branch"] == "main"


def test_run_records_a_dirty_tree_when_tracked_files_changed(client: Client, git_repo: Path) -> None:
    (git_repo / "train.py").write_text("print('changed')\n")
    environment.git_info.cache_clear()
    with client.start_run() as run:
        pass
    tags = client.get_run(run.id).tags
    assert tags["sy.git.dirty"] == "true"
    assert tags["sy.git.commit"] == git(git_repo, "rev-parse", "HEAD")


def test_untracked_files_do_not_make_the_tree_dirty(client: Client, git_repo: Path) -> None:
    (git_repo / "scratch.txt").write_text("notes")
    environment.git_info.cache_clear()
    with client.start_run() as run:
        pass
    assert client.get_run(run.id).tags["sy.git.dirty"] == "false"


def test_run_outside_a_git_checkout_has_no_git_tags(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # do not find a repo above tmp
    environment.git_info.cache_clear()
    with client.start_run() as run:
        pass
    environment.git_info.cache_clear()
    assert not [k for k in client.get_run(run.id).tags if k.startswith("sy.git.")]


def test_run_records_command_line_python_host_and_platform(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["train.py", "--lr", "0.1", "--name", "my model"])
    with client.start_run() as run:
        pass
    tags = client.get_run(run.id).tags
    assert tags["sy.command"] == "train.py --lr 0.1 --name 'my model'"
    assert shlex.split(tags["sy.command"])[-1] == "my model"
    assert tags["sy.python"] == platform.python_version()
    assert tags["sy.host"] == socket.gethostname()
    assert tags["sy.platform"]


def test_run_records_the_user_from_settings(make_client: Callable[..., Client]) -> None:
    with make_client(user="ada").start_run() as run:
        pass
    assert make_client().get_run(run.id).user == "ada"


def test_run_user_defaults_to_the_os_user(client: Client) -> None:
    with client.start_run() as run:
        pass
    assert client.get_run(run.id).user == default_user()


def test_run_records_its_source_script(client: Client) -> None:
    with client.start_run() as run:
        pass
    assert client.get_run(run.id).source == environment.source_of_run() != ""


def test_run_stores_installed_packages_as_a_requirements_artifact(client: Client) -> None:
    with client.start_run() as run:
        pass
    text = client.read_artifact(run.id, "environment/requirements.txt").decode()
    lines = text.splitlines()
    assert "shipyard==0.1.0" in lines
    assert any(line.lower().startswith("pytest==") for line in lines)
    assert lines == sorted(lines, key=lambda line: line.split("==")[0].lower())


def test_log_environment_false_records_neither_tags_nor_packages(client: Client) -> None:
    with client.start_run(log_environment=False) as run:
        pass
    stored = client.get_run(run.id)
    assert not [k for k in stored.tags if k.startswith("sy.")]
    assert client.list_artifacts(run.id) == []


def test_system_metrics_are_sampled_when_enabled(make_client: Callable[..., Client]) -> None:
    client = make_client(system_metrics_interval=0.05)
    with client.start_run(system_metrics=True, log_environment=False) as run:
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:  # some CPU work to measure
            sum(i * i for i in range(10_000))
    metrics = client.get_run(run.id).metrics
    assert set(metrics) >= SYSTEM_METRICS
    assert metrics["system.rss_mb"] > 1
    assert metrics["system.rss_peak_mb"] >= metrics["system.rss_mb"]
    assert metrics["system.wall_time_s"] >= 0.25
    assert metrics["system.cpu_time_s"] > 0
    assert metrics["system.cpu_percent"] >= 0
    wall = client.get_metric_history(run.id, "system.wall_time_s")
    assert len(wall) >= 2
    assert wall["value"].is_monotonic_increasing
    assert wall["step"].tolist() == list(range(len(wall)))


def test_system_metrics_follow_the_setting(make_client: Callable[..., Client]) -> None:
    on = make_client(system_metrics=True, system_metrics_interval=5.0)
    with on.start_run(log_environment=False) as run:
        pass
    assert set(on.get_run(run.id).metrics) >= SYSTEM_METRICS  # sampled once more at the end


def test_system_metrics_are_off_when_disabled(client: Client) -> None:
    assert client.settings.system_metrics is False  # the test environment turns them off
    with client.start_run(log_environment=False) as run:
        pass
    assert client.get_run(run.id).metrics == {}
