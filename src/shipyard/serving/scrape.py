"""A model server's ``GET /metrics`` read back: per-variant traffic, as the web UI's live panel shows it.

:func:`scrape` reads one server's Prometheus text (directly, not through a proxy; no redirects; a 2 s
deadline; at most 4 MiB) into a :class:`Scrape`. :func:`traffic` turns a scrape into each variant's
requests, client and server errors, and latency quantiles; given the previous scrape of the same address,
also requests per second, with the quantiles over the time between the two — what PromQL's ``rate`` and
``histogram_quantile`` compute over that window. The metric names are :mod:`shipyard.serving.metrics`'s.

A server run with ``--workers N`` answers a scrape from whichever worker accepts it, so the numbers are
that worker's (see :mod:`shipyard.serving.metrics`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

from shipyard.errors import InvalidInput, ServerUnreachable
from shipyard.serving.metrics import MODEL_INFO, REQUEST_SECONDS, REQUESTS, SHADOW_ERRORS

__all__ = [
    "MAX_SCRAPE_BYTES",
    "QUANTILES",
    "SCRAPE_TIMEOUT_S",
    "Scrape",
    "Traffic",
    "VariantTraffic",
    "histogram_quantile",
    "parse_metrics",
    "scrape",
    "traffic",
]

SCRAPE_TIMEOUT_S = 2.0
"""How long a scrape may take in all (connecting and reading) before the server counts as unreachable."""
MAX_SCRAPE_BYTES = 4 * 1024 * 1024
"""A longer ``/metrics`` answer is refused: a model server's is a few kilobytes."""
QUANTILES = (0.5, 0.95, 0.99)
"""The latency quantiles :func:`traffic` reports."""

Buckets = tuple[tuple[float, float], ...]
"""A histogram's cumulative buckets: (upper bound, count) by bound, the last one +Inf."""


@dataclass(frozen=True)
class Scrape:
    """What one read of a model server's ``/metrics`` held.

    ``taken_at`` is ``time.monotonic()`` when it was read (rates are measured between two scrapes);
    ``requests`` counts answered requests by (variant, status); ``latency`` holds each variant's
    request-latency buckets; ``serving`` the (model, version) each variant serves now.
    """

    url: str
    taken_at: float
    requests: Mapping[tuple[str, str], float] = field(default_factory=dict)
    latency: Mapping[str, Buckets] = field(default_factory=dict)
    shadow_errors: Mapping[str, float] = field(default_factory=dict)
    serving: Mapping[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class VariantTraffic:
    """One variant's traffic: counts since the server started; the rate and the latency quantiles
    (seconds, by quantile) over the window of :class:`Traffic` (rate None without a window)."""

    variant: str
    model: str
    version: str
    requests: float
    client_errors: float
    server_errors: float
    shadow_errors: float
    requests_per_s: float | None
    latency: Mapping[float, float | None]


@dataclass(frozen=True)
class Traffic:
    """Every variant's traffic; ``window_s`` is the time since the previous scrape the rates and
    quantiles cover (None: no usable previous scrape, so quantiles cover the server's whole life)."""

    url: str
    window_s: float | None
    variants: dict[str, VariantTraffic]


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The ``q``-quantile of a histogram from its cumulative buckets, as PromQL's ``histogram_quantile``:
    linear within the bucket the rank falls in (the first bucket starting at 0); a rank in the +Inf
    bucket gives the highest finite bound. None when the histogram is empty.

    Example:
        >>> histogram_quantile(0.5, [(1.0, 10.0), (3.0, 30.0), (math.inf, 40.0)])  # rank 20: 1 + 2 * 10/20
        2.0
        >>> histogram_quantile(0.99, [(1.0, 10.0), (3.0, 30.0), (math.inf, 40.0)])  # in +Inf: last bound
        3.0
    """
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def parse_metrics(text: str, *, url: str = "", taken_at: float = 0.0) -> Scrape:
    """A :class:`Scrape` from Prometheus text exposition (other metrics are ignored).

    Raises:
        InvalidInput: the text is not Prometheus text exposition.

    Example:
        >>> text = 'shipyard_serving_requests_total{variant="main",status="200"} 3.0\\n'
        >>> parse_metrics(text).requests
        {('main', '200'): 3.0}
    """
    requests: dict[tuple[str, str], float] = {}
    buckets: dict[str, list[tuple[float, float]]] = {}
    shadow_errors: dict[str, float] = {}
    serving: dict[str, tuple[str, str]] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels, variant = sample.labels, sample.labels.get("variant", "")
                if sample.name == f"{REQUESTS}_total":
                    requests[(variant, labels.get("status", ""))] = sample.value
                elif sample.name == f"{REQUEST_SECONDS}_bucket":
                    buckets.setdefault(variant, []).append((float(labels["le"]), sample.value))
                elif sample.name == f"{SHADOW_ERRORS}_total":
                    shadow_errors[variant] = sample.value
                elif sample.name == MODEL_INFO and sample.value:
                    serving[variant] = (labels.get("model", ""), labels.get("version", ""))
    except (ValueError, KeyError, IndexError) as exc:
        where = f" from {url}/metrics" if url else ""
        raise InvalidInput(f"The answer{where} is not Prometheus text ({exc})") from exc
    latency = {variant: tuple(sorted(found)) for variant, found in buckets.items()}
    return Scrape(url, taken_at, requests, latency, shadow_errors, serving)


def scrape(url: str, *, timeout: float = SCRAPE_TIMEOUT_S, max_bytes: int = MAX_SCRAPE_BYTES) -> Scrape:
    """Read the model server at ``url`` (``http(s)://host:port``): ``GET {url}/metrics``.

    Raises:
        ServerUnreachable: no answer within ``timeout`` seconds, or an answer other than 200.
        InvalidInput: the answer is larger than ``max_bytes`` or not Prometheus text.

    Example:
        >>> scrape("http://churn-serving:8080").requests  # doctest: +SKIP
        {('main', '200'): 1204.0, ('candidate', '200'): 131.0}
    """
    base = url.rstrip("/")
    deadline = time.monotonic() + timeout
    body = bytearray()
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as http,
            http.stream("GET", f"{base}/metrics") as answer,
        ):
            if answer.status_code != 200:
                raise ServerUnreachable(
                    f"The model server at {base} answered {answer.status_code} to GET /metrics "
                    "(is the recorded address a Shipyard model server?)"
                )
            for chunk in answer.iter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise InvalidInput(f"The answer from {base}/metrics is larger than {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("the answer took too long", request=answer.request)
    except httpx.HTTPError as exc:
        raise ServerUnreachable(
            f"No answer from the model server at {base} ({type(exc).__name__}: {exc}; waited at most "
            f"{timeout:g} s); is it running (shipyard serve --deployment NAME) and is its address right?"
        ) from exc
    return parse_metrics(body.decode("utf-8", "replace"), url=base, taken_at=time.monotonic())


def _minus(now: Buckets, before: Buckets | None) -> Buckets:
    if not before:
        return now
    earlier = dict(before)
    return tuple((bound, count - earlier.get(bound, 0.0)) for bound, count in now)


def _window(current: Scrape, previous: Scrape | None) -> float | None:
    """Seconds between two scrapes of the same server with no counter reset between (else None)."""
    if previous is None or previous.url != current.url or current.taken_at <= previous.taken_at:
        return None
    if any(count < previous.requests.get(key, 0.0) for key, count in current.requests.items()):
        return None  # the server restarted: its counters began again
    if any(key not in current.requests for key in previous.requests):
        return None
    return current.taken_at - previous.taken_at


def traffic(current: Scrape, previous: Scrape | None = None) -> Traffic:
    """Each variant's traffic in ``current``; with ``previous`` (an earlier scrape of the same server),
    requests per second and latency quantiles over the time between them.

    Example:
        >>> before = parse_metrics('shipyard_serving_requests_total{variant="main",status="200"} 10\\n')
        >>> now = parse_metrics('shipyard_serving_requests_total{variant="main",status="200"} 30\\n',
        ...                     taken_at=10.0)
        >>> traffic(now, before).variants["main"].requests_per_s
        2.0
    """
    window = _window(current, previous)
    names = {v for v, _ in current.requests} | set(current.latency) | set(current.shadow_errors)
    names |= set(current.serving)
    found: dict[str, VariantTraffic] = {}
    for name in sorted(names):
        by_status = {s: n for (v, s), n in current.requests.items() if v == name}
        total = sum(by_status.values())
        rate, buckets = None, current.latency.get(name, ())
        if window is not None and previous is not None:
            earlier = sum(n for (v, _), n in previous.requests.items() if v == name)
            rate = (total - earlier) / window
            buckets = _minus(buckets, previous.latency.get(name))
        model, version = current.serving.get(name, ("", ""))
        found[name] = VariantTraffic(
            variant=name,
            model=model,
            version=version,
            requests=total,
            client_errors=sum(n for s, n in by_status.items() if s.startswith("4")),
            server_errors=sum(n for s, n in by_status.items() if s.startswith("5")),
            shadow_errors=current.shadow_errors.get(name, 0.0),
            requests_per_s=rate,
            latency={q: histogram_quantile(q, buckets) for q in QUANTILES},
        )
    return Traffic(current.url, window, found)
