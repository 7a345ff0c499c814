"""Prometheus metrics of one server application (``GET /metrics``), in its own ``CollectorRegistry``.

Every application has its own registry, so two apps in one process (tests, a bench) never share counts.
A ``--workers N`` server runs prometheus_client's multiprocess mode instead: ``serve_deployment`` gives
the server a fresh directory in ``PROMETHEUS_MULTIPROC_DIR`` before its workers start (and removes it at
exit), each worker writes its values there, and a scrape of ``/metrics``, whichever worker answers it,
shows the totals of all of them (:func:`shared_metrics_dir`). There, counters and histograms add up
(those of a worker that died included), the prediction log's gauges add up too (``buffered`` over the
live workers only; the others are copied from each worker's sink once a second, so they may lag that
much), and ``model_info`` is 1 for a version any live worker serves.

- ``shipyard_serving_requests_total{variant,status}``: answered prediction requests (``variant="none"``:
  refused before routing, e.g. malformed JSON);
- ``shipyard_serving_request_seconds{variant}``: request latency (histogram);
- ``shipyard_serving_batch_rows{variant}`` / ``_batch_requests{variant}``: rows and requests per model call;
- ``shipyard_serving_predict_seconds{variant}``: model call latency (histogram);
- ``shipyard_serving_shadow_errors_total{variant}``: failed (or skipped) shadow predictions;
- ``shipyard_serving_prediction_log_{buffered,written,dropped,flushes,feedback_written}``: the sink's stats;
- ``shipyard_serving_model_info{variant,model,version}``: 1 for each version served now (0 for one no
  longer served, in multiprocess mode, where a series cannot be removed).

:mod:`shipyard.serving.scrape` reads these back from a running server (the web UI's live panel).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

__all__ = [
    "CONTENT_TYPE",
    "MODEL_INFO",
    "MULTIPROCESS_DIR_ENV",
    "REQUESTS",
    "REQUEST_SECONDS",
    "SHADOW_ERRORS",
    "UNROUTED",
    "ServingMetrics",
    "shared_metrics_dir",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST
_PREFIX = "shipyard_serving"
REQUESTS = f"{_PREFIX}_requests"
"""Counter family of answered prediction requests, labelled ``variant`` and ``status``."""
REQUEST_SECONDS = f"{_PREFIX}_request_seconds"
"""Histogram family of prediction request latency, labelled ``variant``."""
SHADOW_ERRORS = f"{_PREFIX}_shadow_errors"
"""Counter family of failed shadow predictions, labelled ``variant``."""
MODEL_INFO = f"{_PREFIX}_model_info"
"""Gauge family: 1 for each ``variant``, ``model``, ``version`` served now."""
UNROUTED = "none"
"""The ``variant`` label of requests refused before routing (unreadable body, wrong content type)."""
_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ROWS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 16384, 65536)
_STATS = ("buffered", "written", "dropped", "flushes", "feedback_written")
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's multiprocess mode: the directory the processes of one server share their values in."""
_SHARE_EVERY_S = 1.0  # how often a worker copies its prediction log stats into the shared directory
_LIVE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")


def shared_metrics_dir() -> Path | None:
    """The directory this process shares its metrics through, or None when they stay in memory.

    prometheus_client chooses when it is first imported: multiprocess mode if ``PROMETHEUS_MULTIPROC_DIR``
    is set then (what ``serve_deployment`` does for the workers of a ``--workers N`` server).

    Example:
        >>> shared_metrics_dir() is None  # a plain process: in memory
        True
    """
    if not getattr(values.ValueClass, "_multiprocess", False):
        return None
    found = os.environ.get(MULTIPROCESS_DIR_ENV)
    return Path(found) if found else None


def _forget_dead_workers(path: Path) -> None:
    """Drop the live-only gauges of processes that are gone (a worker killed and replaced, say)."""
    pids = {int(m.group(1)) for f in path.iterdir() if (m := _LIVE_FILE.fullmatch(f.name))}
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]  # untyped in prometheus_client
        except PermissionError:  # alive, someone else's
            continue


class _SinkCollector(Collector):
    def __init__(self, stats: Callable[[], dict[str, int]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        values = self._stats()
        for name in _STATS:
            yield GaugeMetricFamily(
                f"{_PREFIX}_prediction_log_{name}", f"Prediction log: {name} rows", value=values.get(name, 0)
            )


class ServingMetrics:
    """The metric objects of one app; ``render()`` is the ``/metrics`` body (every worker's totals in
    multiprocess mode, see the module docstring).

    Example:
        >>> metrics = ServingMetrics()
        >>> metrics.request("main", 200, 0.004)
        >>> b"shipyard_serving_requests_total" in metrics.render()
        True
    """

    def __init__(self, sink_stats: Callable[[], dict[str, int]] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.shared_dir = shared_metrics_dir()
        reg = self.registry
        self.requests = Counter(REQUESTS, "Prediction requests answered", ["variant", "status"], registry=reg)
        self.latency = Histogram(
            REQUEST_SECONDS,
            "Prediction request latency",
            ["variant"],
            buckets=_LATENCY,
            registry=reg,
        )
        self.batch_rows = Histogram(
            f"{_PREFIX}_batch_rows", "Rows per model call", ["variant"], buckets=_ROWS, registry=reg
        )
        self.batch_requests = Histogram(
            f"{_PREFIX}_batch_requests", "Requests per model call", ["variant"], buckets=_ROWS, registry=reg
        )
        self.predict_latency = Histogram(
            f"{_PREFIX}_predict_seconds", "Model call latency", ["variant"], buckets=_LATENCY, registry=reg
        )
        self.shadow_errors = Counter(SHADOW_ERRORS, "Failed shadow predictions", ["variant"], registry=reg)
        self.model_info = Gauge(
            MODEL_INFO,
            "Served model versions (1 each)",
            ["variant", "model", "version"],
            registry=reg,
            multiprocess_mode="livemax",
        )
        self._info: dict[str, tuple[str, str]] = {}
        self._sink_stats: Callable[[], dict[str, int]] = sink_stats or dict
        self._sink_gauges: dict[str, Gauge] = {}
        self._sharing: threading.Thread | None = None
        if self.shared_dir is None:
            reg.register(_SinkCollector(lambda: self._sink_stats()))
        else:  # other workers read these from the shared directory: copied there, not computed at scrape
            self._sink_gauges = {
                name: Gauge(
                    f"{_PREFIX}_prediction_log_{name}",
                    f"Prediction log: {name} rows",
                    registry=reg,
                    multiprocess_mode="livesum" if name == "buffered" else "sum",
                )
                for name in _STATS
            }

    def use_sink_stats(self, stats: Callable[[], dict[str, int]]) -> None:
        """Report these prediction log stats (called when the sink opens)."""
        self._sink_stats = stats
        if self.shared_dir is not None and self._sharing is None:
            share = threading.Thread(target=self._share_sink_stats, name="shipyard-metrics", daemon=True)
            share.start()
            self._sharing = share

    def _share_sink_stats(self) -> None:
        while True:  # a daemon thread: it ends with the worker process
            time.sleep(_SHARE_EVERY_S)
            self._copy_sink_stats()

    def _copy_sink_stats(self) -> None:
        found = self._sink_stats()
        for name, gauge in self._sink_gauges.items():
            gauge.set(found.get(name, 0))

    def request(self, variant: str, status: int, seconds: float) -> None:
        self.requests.labels(variant, str(status)).inc()
        self.latency.labels(variant).observe(seconds)

    def batch_observer(self, variant: str) -> Callable[[int, int, float], None]:
        """The batcher hook for ``variant``: (requests, rows, seconds) per model call."""
        rows = self.batch_rows.labels(variant)
        requests = self.batch_requests.labels(variant)
        latency = self.predict_latency.labels(variant)

        def observe(n_requests: int, n_rows: int, seconds: float) -> None:
            requests.observe(n_requests)
            rows.observe(n_rows)
            latency.observe(seconds)

        return observe

    def shadow_error(self, variant: str) -> None:
        self.shadow_errors.labels(variant).inc()

    def served(self, variant: str, model: str, version: str) -> None:
        """Record that ``variant`` now serves ``model`` ``version`` (the previous one's series removed)."""
        previous = self._info.get(variant)
        if previous == (model, version):
            return
        if previous is not None:
            self._unserve(variant, previous)
        self.model_info.labels(variant, model, version).set(1)
        self._info[variant] = (model, version)

    def forget(self, variant: str) -> None:
        """``variant`` left the deployment."""
        previous = self._info.pop(variant, None)
        if previous is not None:
            self._unserve(variant, previous)

    def _unserve(self, variant: str, served: tuple[str, str]) -> None:
        if self.shared_dir is None:
            self.model_info.remove(variant, *served)
        else:  # a shared series cannot be removed: 0 says "no longer served" (and max() over workers holds)
            self.model_info.labels(variant, *served).set(0)

    def render(self) -> bytes:
        return bytes(generate_latest(self._collected()))

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """One sample's current value, every worker's total in multiprocess mode (tests and ``/info``)."""
        value: Any = self._collected().get_sample_value(name, labels or {})
        return None if value is None else float(value)

    def _collected(self) -> CollectorRegistry:
        """This app's registry, or in multiprocess mode one reading every worker's values."""
        if self.shared_dir is None:
            return self.registry
        if self._sink_gauges:
            self._copy_sink_stats()  # the answering worker's own stats are current
        _forget_dead_workers(self.shared_dir)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=str(self.shared_dir))  # type: ignore[no-untyped-call]
        return merged
