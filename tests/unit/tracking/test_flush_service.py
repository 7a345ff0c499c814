"""One background flusher thread serves every open run of the process."""

from __future__ import annotations

import threading
import time

from shipyard import Client


def _flusher_threads() -> int:
    return sum(1 for th in threading.enumerate() if th.name == "shipyard-flusher")


def test_many_open_runs_share_one_flusher_thread(client: Client) -> None:
    runs = [client.start_run(log_environment=False) for _ in range(20)]
    try:
        assert _flusher_threads() == 1
        for i, run in enumerate(runs):
            run.log_metric("m", float(i))
        deadline = time.monotonic() + 5  # flush_interval is 0.05 s in this fixture
        while time.monotonic() < deadline:
            if all(client.get_run(r.id).metrics.get("m") == float(i) for i, r in enumerate(runs)):
                break
            time.sleep(0.05)
        # Durable without any flush() or end(): the shared thread wrote every run's buffer.
        assert [client.get_run(r.id).metrics.get("m") for r in runs] == [float(i) for i in range(20)]
    finally:
        for run in runs:
            run.end()
    assert _flusher_threads() == 1
