"""A pipeline schedule held by a real ``shipyard server`` with two workers fires exactly once per fire
time, on SQLite and on PostgreSQL: both workers run the scheduler, and the database lets one claim win."""

from __future__ import annotations

import textwrap
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from server_process import LiveServer

import shipyard as sy
from shipyard import Client
from shipyard.config import load_settings
from shipyard.entities import ScheduleFire

pytestmark = pytest.mark.integration

PIPELINE = """
import os
import shipyard as sy

@sy.step(cache=False)
def stamp(n: int) -> dict:
    return {"n": n, "pid": os.getpid()}

@sy.pipeline
def tick(n: int = 1):
    return stamp(n)
"""
WANTED_FIRES = 3
EVERY_S = 2


def _finished(client: Client) -> list[ScheduleFire]:
    return [f for f in sy.list_schedule_fires("tick", limit=1000, client=client) if f.status == "finished"]


def _wait_for_fires(client: Client, server: LiveServer, timeout: float = 150.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(_finished(client)) >= WANTED_FIRES:
            return
        time.sleep(0.5)
    fires = sy.list_schedule_fires("tick", limit=1000, client=client)
    raise AssertionError(f"only {fires} after {timeout}s:\n{server.log_path.read_text()[-4000:]}")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_workers_fire_a_schedule_once_per_fire_time(
    backend: str, make_server: Callable[..., LiveServer], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "scheduled_pipe.py").write_text(textwrap.dedent(PIPELINE))
    uri = None if backend == "sqlite" else str(request.getfixturevalue("pg_uri"))
    server = make_server(tracking_uri=uri, workers=2, env={"PYTHONPATH": str(code)})
    remote = Client(settings=load_settings(tracking_uri=server.url, artifact_uri=str(tmp_path / "unused")))
    try:
        saved = sy.schedule_pipeline(
            "scheduled_pipe:tick", every=f"{EVERY_S}s", params={"n": 3}, client=remote
        )
        assert (saved.name, saved.every_seconds) == ("tick", float(EVERY_S))
        _wait_for_fires(remote, server)
    finally:
        remote.close()
    server.stop()  # no more fires; fires still running are ended and stay unfinished

    direct = Client(
        settings=load_settings(tracking_uri=server.tracking_uri, artifact_uri=server.artifact_uri)
    )
    try:
        fires = sy.list_schedule_fires("tick", limit=1000, client=direct)
        runs, _ = direct.search_runs_page(
            filter="tags.`sy.pipeline` = 'tick' and tags.`sy.run_type` = 'pipeline'", limit=1000
        )
    finally:
        direct.close()
    finished = [f for f in fires if f.status == "finished"]
    assert len(finished) >= WANTED_FIRES
    per_fire = Counter(r.tags.get("sy.schedule.fire_time") for r in runs)
    assert all(n == 1 for n in per_fire.values()), per_fire  # never two runs for one fire time
    assert len(runs) <= len(fires)  # every pipeline run came from one claimed fire
    by_id = {r.id: r for r in runs}
    for fire in finished:
        run = by_id[fire.run_id or ""]
        assert run.tags["sy.schedule"] == "tick"
        assert run.tags["sy.schedule.fire_time"] == str(fire.fire_time)
        assert run.params == {"n": "3"} and run.status == "finished"
        assert (fire.fire_time - saved.created_at) % (EVERY_S * 1000) == 0  # on the interval's grid
    assert all(f.claimed_by.rsplit(":", 1)[1].isdigit() for f in fires)  # host:pid of a worker
