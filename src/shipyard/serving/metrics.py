"""Prometheus metrics of one server application (``GET /metrics``), in its own ``CollectorRegistry``.

Every application has its own registry, so two apps in one process (tests, a bench) never share counts.
With ``--workers N`` each worker process has its own registry, and a scrape of ``/metrics`` reaches
whichever worker accepts the connection, so it shows that worker's counts only. For complete numbers run
one worker per process/port (or container) and scrape each. prometheus_client's multiprocess mode was
not used: it needs a shared directory set before import, and the live gauges here (prediction log stats,
served versions) do not aggregate across processes.

- ``shipyard_serving_requests_total{variant,status}``: answered prediction requests (``variant="none"``:
  refused before routing, e.g. malformed JSON);
- ``shipyard_serving_request_seconds{variant}``: request latency (histogram);
- ``shipyard_serving_batch_rows{variant}`` / ``_batch_requests{variant}``: rows and requests per model call;
- ``shipyard_serving_predict_seconds{variant}``: model call latency (histogram);
- ``shipyard_serving_shadow_errors_total{variant}``: failed (or skipped) shadow predictions;
- ``shipyard_serving_prediction_log_{buffered,written,dropped,flushes,feedback_written}``: the sink's stats;
- ``shipyard_serving_model_info{variant,model,version}``: 1 for each version served now.

:mod:`shipyard.serving.scrape` reads these back from a running server (the web UI's live panel).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = [
    "CONTENT_TYPE",
    "MODEL_INFO",
    "REQUESTS",
    "REQUEST_SECONDS",
    "SHADOW_ERRORS",
    "UNROUTED",
    "ServingMetrics",
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
    """The metric objects of one app; ``render()`` is the ``/metrics`` body.

    Example:
        >>> metrics = ServingMetrics()
        >>> metrics.request("main", 200, 0.004)
        >>> b"shipyard_serving_requests_total" in metrics.render()
        True
    """

    def __init__(self, sink_stats: Callable[[], dict[str, int]] | None = None) -> None:
        self.registry = CollectorRegistry()
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
        )
        self._info: dict[str, tuple[str, str]] = {}
        self._sink_stats: Callable[[], dict[str, int]] = sink_stats or dict
        reg.register(_SinkCollector(lambda: self._sink_stats()))

    def use_sink_stats(self, stats: Callable[[], dict[str, int]]) -> None:
        """Report these prediction log stats (called when the sink opens)."""
        self._sink_stats = stats

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
            self.model_info.remove(variant, *previous)
        self.model_info.labels(variant, model, version).set(1)
        self._info[variant] = (model, version)

    def forget(self, variant: str) -> None:
        """``variant`` left the deployment."""
        previous = self._info.pop(variant, None)
        if previous is not None:
            self.model_info.remove(variant, *previous)

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """One sample's current value (tests and ``/info``)."""
        value: Any = self.registry.get_sample_value(name, labels or {})
        return None if value is None else float(value)
