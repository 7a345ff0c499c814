"""How runs start and end: statuses, failures, nesting, and the context-local active run."""

from __future__ import annotations

import asyncio
import threading

import pytest

import shipyard as sy
from shipyard import Client
from shipyard.entities import RunStatus
from shipyard.errors import InvalidInput, InvalidState


def test_run_used_as_a_context_manager_ends_finished(client: Client) -> None:
    with client.start_run(experiment="churn", name="baseline") as run:
        assert client.get_run(run.id).status is RunStatus.RUNNING
        run.log_metric("auc", 0.9)
    stored = client.get_run(run.id)
    assert stored.status is RunStatus.FINISHED
    assert stored.end_time is not None and stored.end_time >= stored.start_time
    assert (stored.experiment_name, stored.name) == ("churn", "baseline")
    assert run.ended


def test_unnamed_run_gets_a_name_from_its_id(client: Client) -> None:
    with client.start_run() as run:
        pass
    assert client.get_run(run.id).name == f"run-{run.id[:8]}"


def test_exception_inside_a_run_marks_it_failed_records_the_error_and_propagates(client: Client) -> None:
    with pytest.raises(ZeroDivisionError), client.start_run() as run:
        run.log_metric("loss", 0.5)
        1 / 0  # noqa: B018
    stored = client.get_run(run.id)
    assert stored.status is RunStatus.FAILED
    assert stored.tags["sy.error"] == "ZeroDivisionError: division by zero"
    assert stored.metrics == {"loss": 0.5}  # what was logged before the failure is kept
    traceback_text = client.read_artifact(run.id, "error/traceback.txt").decode()
    assert "Traceback (most recent call last)" in traceback_text
    assert "1 / 0" in traceback_text
    assert traceback_text.rstrip().endswith("ZeroDivisionError: division by zero")


def test_keyboard_interrupt_marks_the_run_killed_and_propagates(client: Client) -> None:
    with pytest.raises(KeyboardInterrupt), client.start_run() as run:
        raise KeyboardInterrupt
    stored = client.get_run(run.id)
    assert stored.status is RunStatus.KILLED
    assert stored.tags["sy.error"].startswith("KeyboardInterrupt")


def test_system_exit_marks_the_run_killed(client: Client) -> None:
    with pytest.raises(SystemExit), client.start_run() as run:
        raise SystemExit(3)
    assert client.get_run(run.id).status is RunStatus.KILLED


def test_end_is_idempotent_and_takes_a_status(client: Client) -> None:
    run = client.start_run()
    run.end("failed")
    run.end("finished")
    assert client.get_run(run.id).status is RunStatus.FAILED


def test_an_ended_run_cannot_be_entered_again(client: Client) -> None:
    run = client.start_run()
    run.end()
    with pytest.raises(InvalidState, match=run.id), run:
        pass


def test_child_run_started_with_a_parent_records_it(client: Client) -> None:
    with client.start_run() as parent:
        with client.start_run(parent=parent) as child:
            pass
        with client.start_run(parent=parent.id) as by_id:
            pass
    assert client.get_run(child.id).parent_run_id == parent.id
    assert client.get_run(by_id.id).parent_run_id == parent.id
    assert client.get_run(parent.id).parent_run_id is None


@pytest.mark.parametrize("experiment", ["", "x" * 256])
def test_invalid_experiment_name_is_refused_before_anything_is_created(
    client: Client, experiment: str
) -> None:
    with pytest.raises(InvalidInput):
        client.start_run(experiment=experiment)
    assert client.list_experiments() == []


def test_start_run_params_and_tags_are_stored_with_the_run(client: Client) -> None:
    with client.start_run(params={"C": 1.0, "kernel": "rbf"}, tags={"team": "risk"}) as run:
        pass
    stored = client.get_run(run.id)
    assert stored.params == {"C": "1.0", "kernel": "rbf"}
    assert stored.tags["team"] == "risk"


# ---------------------------------------------------------------------------------------------- fluent API


def test_module_level_run_logs_to_the_active_run(fluent_client: Client) -> None:
    with sy.start_run(experiment="churn", params={"C": 0.1}) as run:
        assert sy.active_run() is run
        sy.log_metric("auc", 0.9)
        sy.log_metrics({"loss": 0.1, "acc": 0.95})
        sy.log_param("depth", 3)
        sy.log_params({"trees": 100})
        sy.set_tag("team", "risk")
        sy.set_tags({"stage": "dev"})
    assert sy.active_run() is None
    stored = fluent_client.get_run(run.id)
    assert stored.status is RunStatus.FINISHED
    assert stored.metrics == {"auc": 0.9, "loss": 0.1, "acc": 0.95}
    assert stored.params == {"C": "0.1", "depth": "3", "trees": "100"}
    assert (stored.tags["team"], stored.tags["stage"]) == ("risk", "dev")


@pytest.mark.parametrize(
    "call",
    [
        lambda: sy.log_metric("auc", 0.9),
        lambda: sy.log_metrics({"auc": 0.9}),
        lambda: sy.log_param("C", 1),
        lambda: sy.log_params({"C": 1}),
        lambda: sy.set_tag("a", "b"),
        lambda: sy.set_tags({"a": "b"}),
        lambda: sy.log_dict({"a": 1}, "a.json"),
        lambda: sy.log_artifact("whatever.txt"),
        lambda: sy.log_figure(object(), "f.png"),
        lambda: sy.end_run(),
    ],
    ids=[
        "log_metric",
        "log_metrics",
        "log_param",
        "log_params",
        "set_tag",
        "set_tags",
        "log_dict",
        "log_artifact",
        "log_figure",
        "end_run",
    ],
)
def test_module_level_helpers_outside_a_run_raise_invalid_state(fluent_client: Client, call: object) -> None:
    with pytest.raises(InvalidState, match="start_run"):
        call()  # type: ignore[operator]


def test_nested_module_level_runs_get_the_outer_run_as_parent(fluent_client: Client) -> None:
    with sy.start_run(name="outer") as outer:
        with sy.start_run(name="inner") as inner:
            assert sy.active_run() is inner
            sy.log_metric("x", 1.0)
        assert sy.active_run() is outer
        sy.log_metric("y", 2.0)
    assert sy.active_run() is None
    assert fluent_client.get_run(inner.id).parent_run_id == outer.id
    assert fluent_client.get_run(inner.id).metrics == {"x": 1.0}
    assert fluent_client.get_run(outer.id).metrics == {"y": 2.0}


def test_nested_false_starts_an_independent_run(fluent_client: Client) -> None:
    with sy.start_run() as outer, sy.start_run(nested=False) as other:
        pass
    assert fluent_client.get_run(other.id).parent_run_id is None
    assert outer.ended and other.ended


def test_end_run_ends_the_active_run_and_reactivates_its_parent(fluent_client: Client) -> None:
    outer = sy.start_run()
    inner = sy.start_run()
    sy.end_run("failed")
    assert sy.active_run() is outer
    sy.end_run()
    assert sy.active_run() is None
    assert fluent_client.get_run(inner.id).status is RunStatus.FAILED
    assert fluent_client.get_run(outer.id).status is RunStatus.FINISHED


def test_a_failing_module_level_run_is_marked_failed(fluent_client: Client) -> None:
    with pytest.raises(ValueError, match="bad data"), sy.start_run() as run:
        raise ValueError("bad data")
    assert fluent_client.get_run(run.id).status is RunStatus.FAILED
    assert sy.active_run() is None


def test_each_thread_has_its_own_active_run(fluent_client: Client) -> None:
    seen: dict[str, object] = {}
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            seen["before"] = sy.active_run()
            with sy.start_run(name="worker") as run:
                seen["worker_run"] = run
                sy.log_metric("w", 1.0)
            seen["after"] = sy.active_run()
        except BaseException as exc:  # surface in the main thread
            errors.append(exc)

    with sy.start_run(name="main") as main_run:
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        assert sy.active_run() is main_run  # the worker's run did not replace ours
        sy.log_metric("m", 1.0)
    assert not errors
    assert seen["before"] is None and seen["after"] is None
    worker_run = seen["worker_run"]
    stored = fluent_client.get_run(worker_run.id)  # type: ignore[attr-defined]
    assert stored.parent_run_id is None  # a thread's run is not a child of another thread's run
    assert stored.metrics == {"w": 1.0}
    assert fluent_client.get_run(main_run.id).metrics == {"m": 1.0}


def test_each_asyncio_task_has_its_own_active_run(fluent_client: Client) -> None:
    async def task(name: str) -> str:
        with sy.start_run(name=name, nested=False) as run:
            await asyncio.sleep(0.01)
            assert sy.active_run() is run
            sy.log_metric(name, 1.0)
            await asyncio.sleep(0.01)
            return run.id

    async def main() -> list[str]:
        return list(await asyncio.gather(task("a"), task("b")))

    ids = asyncio.run(main())
    assert [fluent_client.get_run(i).metrics for i in ids] == [{"a": 1.0}, {"b": 1.0}]
    assert sy.active_run() is None


def test_set_tracking_uri_points_the_helpers_at_another_store(
    fluent_client: Client, tmp_path: object
) -> None:
    other_uri = f"sqlite:///{tmp_path}/other.db"  # type: ignore[str-bytes-safe]
    sy.set_tracking_uri(other_uri, f"{tmp_path}/other-artifacts")
    try:
        with sy.start_run(experiment="elsewhere") as run:
            pass
        assert sy.get_client().settings.tracking_uri == other_uri
        assert sy.get_client().get_run(run.id).experiment_name == "elsewhere"
        assert fluent_client.list_experiments() == []
    finally:
        sy.get_client().close()
