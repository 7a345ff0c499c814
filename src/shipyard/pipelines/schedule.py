"""Scheduled pipelines: ``schedule_pipeline`` stores a timetable; the Shipyard server runs it.

A schedule names a pipeline (``module:name``), its params and either a cron expression (five
fields, or six with seconds last, evaluated by ``croniter`` in the schedule's time zone) or a fixed
interval (``every="2s"``, ``"15m"``, ``"1h"``, ``"1d"``; fire times are ``created_at + k × every``).
Every server worker runs a :class:`Scheduler` loop; a due fire time is run by the one worker whose
claim of ``(schedule, fire_time)`` commits first in the database (``ClaimsScheduleFires``), so a
fire happens once however many workers there are. Fires missed while no server ran coalesce into
one run of the latest missed time. A fire runs in a subprocess of the worker (started in the
server's working directory) with the local executor; the pipeline run is tagged ``sy.schedule``
and ``sy.schedule.fire_time`` from its start, and the fire's outcome (run id, status, error) is
recorded on the fire.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shipyard.entities import PipelineSchedule, ScheduleFire, now_ms
from shipyard.errors import InvalidInput, MissingExtra
from shipyard.names import check_name
from shipyard.store import ClaimsScheduleFires, ScheduleStore, Store
from shipyard.tracking import ActiveRun, Client

if TYPE_CHECKING:
    from shipyard.config import Settings
    from shipyard.pipelines.pipeline import Pipeline

__all__ = [
    "Scheduler",
    "delete_schedule",
    "fire_main",
    "latest_due",
    "list_schedule_fires",
    "list_schedules",
    "parse_every",
    "run_fire",
    "schedule_pipeline",
]

log = logging.getLogger("shipyard.scheduler")

_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$")
_UNITS = {None: 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
MIN_EVERY_S = 1.0
TICK_S = 1.0
# ``-c``, not ``-m``: the working directory leads sys.path (pipelines import from it), and the
# module is not run twice (as __main__ and as itself).
_FIRE_MAIN = (
    "import sys; from shipyard.pipelines.schedule import fire_main; sys.exit(fire_main(sys.argv[1:]))"
)


def parse_every(every: str | float) -> float:
    """An interval as seconds: a number, or ``"2s"``, ``"15m"``, ``"1h"``, ``"1d"`` (at least 1 s).

    Example:
        >>> parse_every("15m")
        900.0
    """
    if isinstance(every, (int, float)) and not isinstance(every, bool):
        seconds = float(every)
    else:
        match = _EVERY.match(str(every))
        if match is None:
            raise InvalidInput(f"Interval {every!r} is not understood; use e.g. 30s, 15m, 1h or 1d")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not math.isfinite(seconds) or seconds < MIN_EVERY_S:
        raise InvalidInput(f"Interval {every!r} must be at least {MIN_EVERY_S:g} s")
    return seconds


def _croniter() -> Any:
    try:
        from croniter import croniter
    except ImportError:  # pragma: no cover - a core dependency
        raise MissingExtra("Cron schedules need croniter: pip install croniter") from None
    return croniter


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"Time zone {timezone!r} is not known; use an IANA name such as UTC or Europe/Berlin"
        ) from None


def _check_cron(cron: str) -> str:
    cron = " ".join(cron.split())
    if len(cron.split()) not in (5, 6) or not _croniter().is_valid(cron):
        raise InvalidInput(
            f"Cron expression {cron!r} is not valid; use five fields 'minute hour day month weekday' "
            "(e.g. '0 3 * * *': 03:00 every day) or six with seconds last ('* * * * * */10')"
        )
    return cron


def latest_due(schedule: PipelineSchedule, now: int) -> int | None:
    """The latest fire time (ms) at or before ``now`` that is after the schedule was saved and
    after its last fire; None when nothing is due.

    Example:
        >>> s = PipelineSchedule("n", "m:p", None, 2.0, "UTC", {}, "", created_at=1_000)
        >>> latest_due(s, 6_500)
        5000
    """
    anchor = max(schedule.created_at, schedule.last_fire_time or 0)
    if schedule.every_seconds is not None:
        step = int(schedule.every_seconds * 1000)
        due = schedule.created_at + (now - schedule.created_at) // step * step
    elif schedule.cron is not None:
        # get_prev is strictly before its start: start one second past ``now`` (floored to the
        # second, croniter's finest field) so that ``now`` itself can be the fire time.
        start = datetime.fromtimestamp(now // 1000 + 1, tz=UTC).astimezone(_zone(schedule.timezone))
        due = int(_croniter()(schedule.cron, start).get_prev(datetime).timestamp() * 1000)
    else:
        return None
    return due if anchor < due <= now else None


def schedule_pipeline(
    pipeline: Pipeline | str,
    *,
    cron: str | None = None,
    every: str | float | None = None,
    params: Mapping[str, Any] | None = None,
    name: str | None = None,
    timezone: str = "UTC",
    client: Client | None = None,
) -> PipelineSchedule:
    """Have the Shipyard server run ``pipeline`` on a timetable (replaces a schedule of that name).

    Give exactly one of ``cron`` (``"0 3 * * *"``; six fields add seconds last) and ``every``
    (``"2s"``, ``"15m"``, ``"1h"`` or seconds). The name defaults to the pipeline reference's name.
    The server imports the pipeline from its working directory (and ``sys.path``).

    Example:
        >>> sy.schedule_pipeline("pipelines.train:train", cron="0 3 * * *")  # doctest: +SKIP
    """
    from shipyard.pipelines.pipeline import Pipeline
    from shipyard.tracking.fluent import get_client

    ref = pipeline.ref if isinstance(pipeline, Pipeline) else str(pipeline)
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise InvalidInput(f"Pipeline reference {ref!r} must look like 'package.module:name'")
    if (cron is None) == (every is None):
        raise InvalidInput("Give a schedule exactly one of cron (e.g. '0 3 * * *') and every (e.g. '1h')")
    try:
        params_json = json.loads(json.dumps(dict(params or {})))
    except (TypeError, ValueError):
        raise InvalidInput("Schedule params must be JSON values (str, numbers, lists, dicts)") from None
    _zone(timezone)
    client = client or get_client()
    schedule = PipelineSchedule(
        name=check_name("Schedule name", name or attr.rsplit(".", 1)[-1]),
        ref=ref,
        cron=None if cron is None else _check_cron(cron),
        every_seconds=None if every is None else parse_every(every),
        timezone=timezone,
        params=params_json,
        created_by=client.settings.user,
        created_at=now_ms(),
    )
    return client.store.save_schedule(schedule)


def list_schedules(*, client: Client | None = None) -> list[PipelineSchedule]:
    """Every schedule with its latest fire (time, status, run).

    Example:
        >>> [(s.name, s.cron or f"every {s.every_seconds:g}s") for s in sy.list_schedules()]  # doctest: +SKIP
    """
    from shipyard.tracking.fluent import get_client

    return (client or get_client()).store.list_schedules()


def delete_schedule(name: str, *, client: Client | None = None) -> None:
    """Stop running a schedule and forget its fire history (the pipeline runs stay).

    Example:
        >>> sy.delete_schedule("nightly")  # doctest: +SKIP
    """
    from shipyard.tracking.fluent import get_client

    client = client or get_client()
    client.store.delete_schedule(name, actor=client.settings.user)


def list_schedule_fires(name: str, *, limit: int = 20, client: Client | None = None) -> list[ScheduleFire]:
    """A schedule's fires, newest first: time, worker, status and pipeline run.

    Example:
        >>> [(f.fire_time, f.status, f.run_id) for f in sy.list_schedule_fires("nightly")]  # doctest: +SKIP
    """
    from shipyard.tracking.fluent import get_client

    return (client or get_client()).store.list_schedule_fires(name, limit)


class _SchedulerStore(ScheduleStore, ClaimsScheduleFires, Protocol):
    """What the scheduler needs: the schedules and the fire claims (a ``SqlStore``)."""


Launcher = Callable[[PipelineSchedule, int], None]


class Scheduler:
    """The loop each server worker runs: every ``tick`` seconds, claim due fire times and run them.

    Example:
        >>> scheduler = Scheduler(state.store, state.settings).start()  # doctest: +SKIP
        >>> scheduler.stop()  # doctest: +SKIP
    """

    def __init__(
        self,
        store: _SchedulerStore,
        settings: Settings,
        *,
        tick: float = TICK_S,
        launch: Launcher | None = None,
    ) -> None:
        self.store, self.settings, self.tick_s = store, settings, tick
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._launch = launch or self._run_in_subprocess
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._children: dict[subprocess.Popen[bytes], tuple[str, int]] = {}
        self._waiters: set[threading.Thread] = set()
        self._lock = threading.Lock()

    @classmethod
    def for_server(cls, store: Store, settings: Settings) -> Scheduler | None:
        """The started scheduler of a server over ``store``; None when it cannot run fires: the
        store keeps no fire claims, or is an in-memory database a fire's subprocess cannot see."""
        uri = settings.tracking_uri
        in_memory = uri.startswith("sqlite") and (":memory:" in uri or uri.split("://", 1)[-1] in ("", "/"))
        if in_memory or not isinstance(store, ClaimsScheduleFires):
            return None
        return cls(store, settings).start()

    def start(self) -> Scheduler:
        self._thread = threading.Thread(target=self._loop, name="shipyard-scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop; end fires still running in subprocesses (recorded as failed)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            children = list(self._children)
        for proc in children:
            proc.terminate()
        for proc in children:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
        for thread in list(self._waiters):  # their outcomes are recorded before the store closes
            thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # a bad schedule or a busy database must not end the loop
                log.exception("Scheduler tick failed")
            # Ticks fall on the wall clock's tick boundaries, in every worker alike: a fire happens
            # within a tick of its time, and all workers contend for it at once (the claim decides).
            self._stop.wait(self.tick_s - time.time() % self.tick_s)

    def tick(self, now: int | None = None) -> list[tuple[str, int]]:
        """Claim and launch every due fire; the (schedule, fire_time) pairs this worker won."""
        now = now_ms() if now is None else now
        won = []
        for schedule in self.store.list_schedules():
            try:
                due = latest_due(schedule, now)
            except InvalidInput as exc:  # e.g. a time zone this machine does not know
                log.error("Schedule '%s' cannot be evaluated: %s", schedule.name, exc)
                continue
            if due is not None and self.store.claim_schedule_fire(schedule.name, due, self.worker):
                won.append((schedule.name, due))
                self._launch(schedule, due)
        return won

    def _run_in_subprocess(self, schedule: PipelineSchedule, fire_time: int) -> None:
        payload = json.dumps(
            {
                "schedule": schedule.name,
                "fire_time": fire_time,
                "ref": schedule.ref,
                "params": schedule.params,
            }
        )
        env = {
            **os.environ,
            "SHIPYARD_TRACKING_URI": self.settings.tracking_uri,
            "SHIPYARD_ARTIFACT_URI": self.settings.artifact_uri,
        }
        proc = subprocess.Popen(
            [sys.executable, "-c", _FIRE_MAIN, payload],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        with self._lock:
            self._children[proc] = (schedule.name, fire_time)
        waiter = threading.Thread(
            target=self._wait, args=(proc, schedule.name, fire_time), name="shipyard-fire", daemon=True
        )
        self._waiters.add(waiter)
        waiter.start()

    def _wait(self, proc: subprocess.Popen[bytes], name: str, fire_time: int) -> None:
        try:
            self._record(proc, name, fire_time)
        finally:
            self._waiters.discard(threading.current_thread())

    def _record(self, proc: subprocess.Popen[bytes], name: str, fire_time: int) -> None:
        out, err = proc.communicate()
        with self._lock:
            self._children.pop(proc, None)
        lines = out.decode("utf-8", "replace").strip().splitlines()
        try:
            outcome = json.loads(lines[-1]) if lines else {}
        except ValueError:
            outcome = {}
        if not outcome:
            tail = err.decode("utf-8", "replace").strip()[-4000:]
            outcome = {"status": "failed", "error": f"fire process exited with {proc.returncode}: {tail}"}
        try:
            self.store.finish_schedule_fire(
                name,
                fire_time,
                outcome.get("status", "failed"),
                outcome.get("run_id"),
                outcome.get("error", ""),
            )
        except Exception:
            log.exception("Recording the outcome of schedule '%s' at %s failed", name, fire_time)


class _FireClient(Client):
    """The fire's client: the pipeline run it starts carries the schedule and fire time from its
    first moment (so even a fire ended mid-run is attributable to its one fire time)."""

    def __init__(self, tags: dict[str, str]) -> None:
        super().__init__()
        self.fire_tags = tags
        self.pipeline_run_id: str | None = None

    def start_run(
        self,
        experiment: str = "default",
        name: str | None = None,
        params: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
        parent: ActiveRun | str | None = None,
        system_metrics: bool | None = None,
        log_environment: bool = True,
    ) -> ActiveRun:
        is_pipeline = (tags or {}).get("sy.run_type") == "pipeline" and self.pipeline_run_id is None
        if is_pipeline:
            tags = {**(tags or {}), **self.fire_tags}
        run = super().start_run(experiment, name, params, tags, parent, system_metrics, log_environment)
        if is_pipeline:
            self.pipeline_run_id = run.id
        return run


def run_fire(schedule: str, fire_time: int, ref: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Run one fire in this process (the server's subprocess): trigger with the local executor, report.

    Example:
        >>> run_fire("nightly", 1767232800000, "pipelines.train:train", {})  # doctest: +SKIP
        {'status': 'finished', 'run_id': '…', 'error': ''}
    """
    from shipyard.pipelines.pipeline import trigger_pipeline

    client = _FireClient({"sy.schedule": schedule, "sy.schedule.fire_time": str(fire_time)})
    try:
        run_id = trigger_pipeline(ref, params, executor="local", client=client).run_id
        return {"status": "finished", "run_id": run_id, "error": ""}
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        return {"status": "failed", "run_id": client.pipeline_run_id, "error": error}
    finally:
        client.close()


def fire_main(argv: list[str]) -> int:
    """Entry of a fire's subprocess: run the fire given as JSON, print its outcome as the last line."""
    payload = json.loads(argv[0])
    outcome = run_fire(payload["schedule"], int(payload["fire_time"]), payload["ref"], payload["params"])
    sys.stdout.write("\n" + json.dumps(outcome) + "\n")
    return 0
