"""Schedules: which fire time is due (intervals, cron with seconds and time zones, coalescing), and one
claim per fire time however many schedulers contend for it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

import shipyard as sy
from shipyard import Client
from shipyard.entities import PipelineSchedule
from shipyard.errors import InvalidInput
from shipyard.pipelines.schedule import Scheduler, latest_due, parse_every


def _ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def _schedule(
    cron: str | None = None, every: float | None = None, tz: str = "UTC", **kw: int
) -> PipelineSchedule:
    created = kw.get("created_at", _ms(2026, 1, 1))
    return PipelineSchedule("s", "m:p", cron, every, tz, {}, "", created, last_fire_time=kw.get("last"))


def test_interval_fire_times_sit_on_a_grid_from_the_schedules_creation() -> None:
    s = _schedule(every=2.0, created_at=1_000)
    assert latest_due(s, 2_999) is None  # nothing before the first interval has passed
    assert latest_due(s, 3_000) == 3_000
    assert latest_due(s, 6_500) == 5_000  # missed fires coalesce into the latest one
    assert latest_due(_schedule(every=2.0, created_at=1_000, last=5_000), 6_500) is None


def test_cron_is_evaluated_in_the_schedules_time_zone() -> None:
    daily = _schedule(cron="0 3 * * *", tz="Europe/Berlin", created_at=_ms(2025, 12, 30))
    assert latest_due(daily, _ms(2026, 1, 2, 2, 30)) == _ms(2026, 1, 2, 2)  # 03:00 Berlin = 02:00 UTC
    assert (
        latest_due(_schedule(cron="0 3 * * *", created_at=_ms(2026, 1, 2, 2, 10)), _ms(2026, 1, 2, 2, 30))
        is None
    )


def test_a_cron_fire_time_is_due_at_its_own_second_and_a_sixth_field_counts_seconds() -> None:
    s = _schedule(cron="* * * * * */2", created_at=_ms(2026, 1, 1))
    at = _ms(2026, 1, 1, 0, 0, 4)
    assert latest_due(s, at) == at
    assert latest_due(s, at + 1_999) == at
    assert latest_due(_schedule(cron="* * * * * */2", last=at), at + 1_999) is None
    sunday = _schedule(cron="0 3 * * 0", created_at=_ms(2025, 12, 1))
    assert latest_due(sunday, _ms(2026, 1, 5, 12)) == _ms(2026, 1, 4, 3)  # 0 is Sunday, as in cron


@pytest.mark.parametrize(
    ("text", "seconds"), [("2s", 2.0), ("15m", 900.0), ("1h", 3600.0), ("1d", 86400.0), (5, 5.0)]
)
def test_intervals_parse(text: str | int, seconds: float) -> None:
    assert parse_every(text) == seconds


@pytest.mark.parametrize("bad", ["0.5s", "soon", "-1s", 0])
def test_bad_intervals_are_refused(bad: str | int) -> None:
    with pytest.raises(InvalidInput):
        parse_every(bad)


def test_concurrent_schedulers_claim_each_fire_time_once(client: Client) -> None:
    sy.schedule_pipeline("m:p", every="1s", name="fast", client=client)
    created = sy.list_schedules(client=client)[0].created_at
    launched: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    def scheduler(worker: str) -> Scheduler:
        def launch(schedule: PipelineSchedule, fire_time: int) -> None:
            with lock:
                launched.append((schedule.name, fire_time, worker))

        s = Scheduler(client.store, client.settings, launch=launch)  # type: ignore[arg-type]
        s.worker = worker
        return s

    workers = [scheduler(f"w{i}") for i in range(6)]
    for now in (created + 1_000, created + 1_500, created + 5_200):  # all six tick at the same moment
        barrier = threading.Barrier(len(workers))

        def tick(s: Scheduler, at: int = now, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            s.tick(at)

        threads = [threading.Thread(target=tick, args=(s,)) for s in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(f for _, f, _ in launched) == [created + 1_000, created + 5_000]  # once each; coalesced
    fires = sy.list_schedule_fires("fast", client=client)
    assert [(f.fire_time, f.status) for f in fires] == [
        (created + 5_000, "running"),
        (created + 1_000, "running"),
    ]
    assert {f.claimed_by for f in fires} <= {w.worker for w in workers}


def test_the_fire_outcome_is_recorded_and_shown_as_the_schedules_last_fire(client: Client) -> None:
    sy.schedule_pipeline("m:p", cron="0 3 * * *", name="nightly", params={"month": 7}, client=client)
    assert client.store.claim_schedule_fire("nightly", 1_000, "w1")  # type: ignore[attr-defined]
    client.store.finish_schedule_fire("nightly", 1_000, "failed", "r1", "boom")  # type: ignore[attr-defined]
    (s,) = sy.list_schedules(client=client)
    assert (s.params, s.last_fire_time, s.last_status, s.last_run_id) == ({"month": 7}, 1_000, "failed", "r1")
    assert sy.list_schedule_fires("nightly", client=client)[0].error == "boom"
    sy.delete_schedule("nightly", client=client)
    assert sy.list_schedules(client=client) == []
    assert not client.store.claim_schedule_fire("nightly", 2_000, "w1")  # type: ignore[attr-defined]
    actions = [e.action for e in client.list_audit() if e.object_type == "schedule"]
    assert actions == ["schedule.save", "schedule.delete"]
