"""``shipyard demo`` runs the stages in order on the configured store; a missing extra is one clean line."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest
from typer.testing import Result

from shipyard.demo import DemoContext, Stage, default_stages, run_demo

Invoke = Callable[..., Result]


def test_demo_runs_every_stage_in_order_on_the_configured_store(
    cli: Invoke, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str
) -> None:
    seen: list[tuple[str, bool, str]] = []

    def record(name: str) -> Callable[[DemoContext], None]:
        return lambda ctx: seen.append((name, ctx.quick, ctx.client.settings.tracking_uri))

    stages = (
        Stage("one", "First", "the first stage", record("one")),
        Stage("two", "Second", "…", record("two")),
    )
    monkeypatch.setattr("shipyard.demo.runner.default_stages", lambda: stages)
    result = cli("demo", "--quick")
    assert result.exit_code == 0, result.output
    assert seen == [("one", True, sqlite_uri), ("two", True, sqlite_uri)]
    assert "1/2 · First" in result.stdout and "2/2 · Second" in result.stdout
    assert "Demo finished" in result.stdout


def test_stages_share_one_context(sqlite_uri: str, tmp_path: object) -> None:
    from shipyard import Client

    def produce(ctx: DemoContext) -> None:
        ctx.extras["answer"] = 42

    def consume(ctx: DemoContext) -> None:
        ctx.extras["doubled"] = ctx.extras["answer"] * 2

    client = Client(tracking_uri=sqlite_uri, artifact_uri=f"{tmp_path}/artifacts")
    try:
        ctx = run_demo(client, stages=[Stage("a", "A", "", produce), Stage("b", "B", "", consume)])
    finally:
        client.close()
    assert ctx.extras == {"answer": 42, "doubled": 84}
    assert set(ctx.timings) == {"a", "b", "total"}


def test_default_stages_run_from_data_to_serving() -> None:
    assert [s.name for s in default_stages()] == [
        "data",
        "version",
        "train",
        "compare",
        "registry",
        "serve",
        "monitor",
        "next",
    ]


def test_a_missing_demo_extra_is_a_clean_error(cli: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "shipyard.demo.stages", None)  # importing it now fails
    result = cli("demo")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: The demo needs")
    assert "pip install 'shipyard[demo]'" in result.stderr
    assert "Traceback" not in result.output


def test_stages_fail_clearly_when_run_out_of_order(cli: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    compare = next(s for s in default_stages() if s.name == "compare")
    monkeypatch.setattr("shipyard.demo.runner.default_stages", lambda: (compare,))
    result = cli("demo")
    assert result.exit_code == 1
    assert "stages must run in order" in result.stderr
