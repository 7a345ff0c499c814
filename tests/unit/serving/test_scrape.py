"""Reading a model server's /metrics back: PromQL's histogram_quantile, counts and errors per variant
from a real ServingMetrics registry, rates between two scrapes, and the failures a scrape can meet."""

from __future__ import annotations

import math
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shipyard.errors import InvalidInput, ServerUnreachable
from shipyard.serving.metrics import UNROUTED, ServingMetrics
from shipyard.serving.scrape import histogram_quantile, parse_metrics, scrape, traffic

INF = math.inf


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.5, [(1.0, 10.0), (3.0, 30.0), (INF, 40.0)], 2.0),  # rank 20: 1 + (3 - 1) * (20 - 10) / 20
        (0.25, [(1.0, 10.0), (3.0, 30.0), (INF, 40.0)], 1.0),  # rank 10: the first bucket's top
        (0.1, [(1.0, 10.0), (3.0, 30.0), (INF, 40.0)], 0.4),  # the first bucket starts at 0
        (0.99, [(1.0, 10.0), (3.0, 30.0), (INF, 40.0)], 3.0),  # in +Inf: the highest finite bound
        (0.5, [(1.0, 0.0), (INF, 0.0)], None),  # no observations
        (0.5, [], None),
    ],
)
def test_quantiles_are_promqls_histogram_quantile(
    q: float, buckets: list[tuple[float, float]], expected: float | None
) -> None:
    assert histogram_quantile(q, buckets) == pytest.approx(expected)


def test_a_servers_own_metrics_read_back_per_variant() -> None:
    metrics = ServingMetrics()
    for _ in range(3):
        metrics.request("main", 200, 0.004)
    metrics.request("main", 422, 0.004)
    metrics.request("candidate", 503, 0.2)
    metrics.request(UNROUTED, 400, 0.001)
    metrics.served("main", "models:/churn/1", "1")
    metrics.shadow_error("next")
    seen = traffic(parse_metrics(metrics.render().decode(), url="http://x"))
    assert seen.window_s is None and set(seen.variants) == {"main", "candidate", UNROUTED, "next"}
    main = seen.variants["main"]
    assert (main.requests, main.client_errors, main.server_errors) == (4, 1, 0)
    assert (main.model, main.version, main.requests_per_s) == ("models:/churn/1", "1", None)
    # 4 observations of 4 ms, all in the (2.5 ms, 5 ms] bucket: the median is halfway through it
    assert main.latency[0.5] == pytest.approx(0.00375)
    assert seen.variants["candidate"].server_errors == 1
    assert seen.variants[UNROUTED].client_errors == 1
    assert seen.variants["next"].shadow_errors == 1


def _text(ok: int, slow: int) -> str:
    """A server's requests and latency: ``ok`` fast requests (≤ 0.1 s) and ``slow`` ones (≤ 1 s)."""
    total = ok + slow
    return (
        f'shipyard_serving_requests_total{{variant="main",status="200"}} {total}\n'
        f'shipyard_serving_request_seconds_bucket{{variant="main",le="0.1"}} {ok}\n'
        f'shipyard_serving_request_seconds_bucket{{variant="main",le="1.0"}} {total}\n'
        f'shipyard_serving_request_seconds_bucket{{variant="main",le="+Inf"}} {total}\n'
    )


def test_rates_and_latency_cover_the_time_between_two_scrapes() -> None:
    before = parse_metrics(_text(ok=100, slow=0), url="http://x", taken_at=100.0)
    now = parse_metrics(_text(ok=100, slow=50), url="http://x", taken_at=110.0)
    since_start = traffic(now).variants["main"]
    window = traffic(now, before)
    main = window.variants["main"]
    assert window.window_s == 10.0 and main.requests_per_s == 5.0 and main.requests == 150
    # since the start most requests were fast; in the window all 50 were slow
    assert since_start.latency[0.5] == pytest.approx(0.075)  # rank 75 of 100 in (0, 0.1]
    assert main.latency[0.5] == pytest.approx(0.1 + 0.9 * 25 / 50)  # rank 25 of 50 in (0.1, 1]


@pytest.mark.parametrize(
    ("before_url", "before_ok", "before_at"),
    [
        ("http://x", 500, 100.0),  # counters went down: the server restarted
        ("http://elsewhere", 10, 100.0),  # another server
        ("http://x", 10, 120.0),  # not earlier
    ],
)
def test_no_rate_without_an_earlier_scrape_of_the_same_server_run(
    before_url: str, before_ok: int, before_at: float
) -> None:
    before = parse_metrics(_text(ok=before_ok, slow=0), url=before_url, taken_at=before_at)
    now = parse_metrics(_text(ok=100, slow=0), url="http://x", taken_at=110.0)
    seen = traffic(now, before)
    assert seen.window_s is None and seen.variants["main"].requests_per_s is None


def test_text_that_is_not_prometheus_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="not Prometheus text"):
        parse_metrics("<html>hello</html>", url="http://x")


class _Answers(BaseHTTPRequestHandler):
    """``/big/metrics``: 1 MiB of comments; anything else: 404."""

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        if self.path == "/big/metrics":
            body = b"# padding\n" * 100_000
            self.send_response(200)
        else:
            body = b"not here"
            self.send_response(404)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the stdlib's name)
        pass


@pytest.fixture
def web() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_server_that_is_not_a_model_server_is_refused(web: str) -> None:
    with pytest.raises(ServerUnreachable, match="answered 404"):
        scrape(web)
    with pytest.raises(InvalidInput, match="larger than 65536 bytes"):
        scrape(f"{web}/big", max_bytes=65536)


def test_a_server_nobody_answers_at_is_unreachable() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(ServerUnreachable, match=f"127.0.0.1:{port}"):
        scrape(f"http://127.0.0.1:{port}", timeout=2.0)
