"""``shipyard demo --stop-after STAGE`` runs the stages up to that one; bad options are one clean line."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from typer.testing import Result

from shipyard.demo import DemoContext, Stage

Invoke = Callable[..., Result]


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str | None]]:
    ran: list[tuple[str, str, str | None]] = []

    def record(name: str) -> Callable[[DemoContext], None]:
        return lambda ctx: ran.append((name, ctx.executor, ctx.ray_address))

    stages = tuple(Stage(n, n.title(), "", record(n)) for n in ("data", "train", "serve"))
    monkeypatch.setattr("shipyard.demo.runner.default_stages", lambda: stages)
    return ran


def test_stop_after_runs_the_stages_up_to_and_including_that_one(
    cli: Invoke, seen: list[tuple[str, str, str | None]]
) -> None:
    result = cli("demo", "--quick", "--stop-after", "train")
    assert result.exit_code == 0, result.output
    assert [name for name, _, _ in seen] == ["data", "train"]
    assert "2/2 · Train" in result.stdout and "Demo finished" in result.stdout


def test_the_executor_and_ray_address_reach_the_stages(
    cli: Invoke, seen: list[tuple[str, str, str | None]]
) -> None:
    result = cli("demo", "--executor", "ray", "--ray-address", "127.0.0.1:6379", "--stop-after", "data")
    assert result.exit_code == 0, result.output
    assert seen == [("data", "ray", "127.0.0.1:6379")]
    header = " ".join(result.stdout.replace("│", " ").split())  # the panel wraps its text
    assert "pipeline on Ray at 127.0.0.1:6379" in header


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stop-after", "trian"], "No demo stage 'trian' to stop after; the stages: data, train, serve"),
        (["--executor", "dask"], "executor 'local' or 'ray', not 'dask'"),
        (["--ray-address", "127.0.0.1:6379"], "needs executor 'ray'"),
    ],
)
def test_bad_options_fail_before_any_stage_with_one_line(
    cli: Invoke, seen: list[tuple[str, str, str | None]], args: list[str], message: str
) -> None:
    result = cli("demo", *args)
    assert result.exit_code == 1
    assert message in result.stderr.replace("\n", " ") and "Traceback" not in result.output
    assert seen == []
