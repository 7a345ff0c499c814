"""Cost and energy of one step: wall time, CPU seconds, peak memory, GPU seconds, energy, money.

CPU seconds are the process's user + system time (all its threads) plus that of children it waited
for. Peak memory is the resident-set high-water mark during the step (Linux: ``VmHWM`` after
resetting it through ``/proc/self/clear_refs``; elsewhere the process's lifetime peak). Energy comes
from Intel RAPL counters (``/sys/class/powercap/intel-rapl*/energy_uj``, whole package) when they
are readable, else from the model ``cpu_seconds × watts_per_core`` (as codecarbon does without
RAPL). GPU seconds are the wall time × the GPUs the step asked for, only when NVML reports GPUs;
without pynvml or GPUs they are 0 and ``cost.gpu_source`` says ``none``. The price is
``cpu_hours × price_cpu_hour + gpu_hours × price_gpu_hour + kWh × price_kwh`` (settings).
"""

from __future__ import annotations

import functools
import glob
import os
import resource
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.config import Settings

__all__ = ["CostMeter", "StepCost", "sum_costs"]

_RAPL_GLOB = "/sys/class/powercap/intel-rapl:*/energy_uj"


@dataclass(frozen=True)
class StepCost:
    """What one step (or a whole pipeline, summed) used and cost."""

    wall_seconds: float
    cpu_seconds: float
    peak_memory_mb: float
    gpu_seconds: float
    energy_kwh: float
    usd: float
    energy_source: str  # "rapl" or "model"
    gpu_source: str  # "nvml" or "none"

    def metrics(self) -> dict[str, float]:
        """The figures as metrics (``cost.usd``, ``cost.cpu_seconds`` …), searchable on runs."""
        return {
            "cost.wall_seconds": self.wall_seconds,
            "cost.cpu_seconds": self.cpu_seconds,
            "cost.peak_memory_mb": self.peak_memory_mb,
            "cost.gpu_seconds": self.gpu_seconds,
            "cost.energy_kwh": self.energy_kwh,
            "cost.usd": self.usd,
        }

    def tags(self) -> dict[str, str]:
        return {"sy.cost.energy_source": self.energy_source, "sy.cost.gpu_source": self.gpu_source}


def _cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _peak_mb(reset_worked: bool) -> float:
    if reset_worked:
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _rapl_uj() -> int | None:
    total = 0
    files = glob.glob(_RAPL_GLOB)
    if not files:
        return None
    try:
        for path in files:
            with open(path) as fh:
                total += int(fh.read().strip())
    except (OSError, ValueError):  # not readable (recent kernels restrict it to root)
        return None
    return total


@functools.lru_cache(maxsize=1)
def gpu_count() -> int:
    """GPUs NVML reports (0 without pynvml, drivers or GPUs)."""
    try:
        import pynvml
    except ImportError:
        return 0
    try:
        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # NVML present but no driver/GPU
        return 0


class CostMeter:
    """Measure one step: ``start()`` before it, ``stop()`` after; cheap (a few syscalls).

    Example:
        >>> from shipyard.config import load_settings
        >>> meter = CostMeter(load_settings(env={})).start()
        >>> meter.stop().wall_seconds >= 0
        True
    """

    def __init__(self, settings: Settings, gpus: float = 0.0) -> None:
        self._settings = settings
        self._gpus = gpus
        self._t0 = self._cpu0 = 0.0
        self._rapl0: int | None = None
        self._reset = False

    def start(self) -> CostMeter:
        self._reset = _reset_peak()
        self._rapl0 = _rapl_uj()
        self._cpu0 = _cpu_seconds()
        self._t0 = time.perf_counter()
        return self

    def stop(self) -> StepCost:
        wall = time.perf_counter() - self._t0
        cpu = max(0.0, _cpu_seconds() - self._cpu0)
        rapl1 = _rapl_uj() if self._rapl0 is not None else None
        s = self._settings
        if self._rapl0 is not None and rapl1 is not None and rapl1 >= self._rapl0:
            kwh, energy_source = (rapl1 - self._rapl0) / 3.6e12, "rapl"
        else:
            kwh, energy_source = cpu * s.watts_per_core / 3.6e6, "model"
        gpus = self._gpus if self._gpus and gpu_count() else 0.0
        gpu_seconds = wall * gpus
        usd = cpu / 3600 * s.price_cpu_hour + gpu_seconds / 3600 * s.price_gpu_hour + kwh * s.price_kwh
        return StepCost(
            wall_seconds=wall,
            cpu_seconds=cpu,
            peak_memory_mb=_peak_mb(self._reset),
            gpu_seconds=gpu_seconds,
            energy_kwh=kwh,
            usd=usd,
            energy_source=energy_source,
            gpu_source="nvml" if gpus else "none",
        )


def sum_costs(costs: list[StepCost], wall_seconds: float) -> StepCost:
    """A pipeline's total: sums of CPU, GPU, energy and money; the peak of peaks; its own wall time."""
    sources = {c.energy_source for c in costs}
    return StepCost(
        wall_seconds=wall_seconds,
        cpu_seconds=sum(c.cpu_seconds for c in costs),
        peak_memory_mb=max((c.peak_memory_mb for c in costs), default=0.0),
        gpu_seconds=sum(c.gpu_seconds for c in costs),
        energy_kwh=sum(c.energy_kwh for c in costs),
        usd=sum(c.usd for c in costs),
        energy_source=sources.pop() if len(sources) == 1 else "mixed" if sources else "model",
        gpu_source="nvml" if any(c.gpu_source == "nvml" for c in costs) else "none",
    )


def cores() -> int:
    """CPU cores this process may use (for the wall × cores sanity bound)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
