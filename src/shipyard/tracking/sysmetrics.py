"""Background sampling of the process's CPU %, RSS (and its peak), wall and CPU time."""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Callable

__all__ = ["SystemSampler"]


class SystemSampler:
    """Samples every ``interval`` seconds and once more at ``stop()``.

    ``emit`` receives a dict of ``system.*`` metrics and a step number.
    """

    def __init__(self, emit: Callable[[dict[str, float], int], None], interval: float) -> None:
        import psutil

        self._emit = emit
        self._interval = max(interval, 0.05)
        self._proc = psutil.Process()
        self._proc.cpu_percent(None)  # prime: the first call returns 0.0
        self._start_wall = time.monotonic()
        times = self._proc.cpu_times()
        self._start_cpu = times.user + times.system
        self._step = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="shipyard-sysmetrics", daemon=True)
        self._thread.start()

    def sample(self) -> dict[str, float]:
        times = self._proc.cpu_times()
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        rss_mb = self._proc.memory_info().rss / 2**20
        return {
            "system.cpu_percent": float(self._proc.cpu_percent(None)),
            "system.rss_mb": rss_mb,
            "system.rss_peak_mb": max(peak_kb / 1024, rss_mb),
            "system.wall_time_s": time.monotonic() - self._start_wall,
            "system.cpu_time_s": times.user + times.system - self._start_cpu,
        }

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._record()

    def _record(self) -> None:
        try:
            self._emit(self.sample(), self._step)
        except Exception:  # sampling must never break training
            return
        self._step += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._record()
