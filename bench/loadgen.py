"""A closed-loop HTTP/1.1 load generator on raw asyncio protocols, and a trivial server to measure it against.

``C`` keep-alive connections each send a request, wait for the whole answer, record its latency and send
the next, until ``N`` answers are in (closed loop: a slow server is not flooded, it makes the generator
wait). Requests are pre-encoded bytes taken in turn from a pool, so the per-request work of the generator
is one ``write`` and the parsing of one answer's head: no client library, no task per request. That keeps
it well below the servers it measures; :func:`trivial_server` (an answer of fixed bytes, no framework)
shows how far below, since there the generator is the only real cost.

    .venv/bin/python bench/loadgen.py http://127.0.0.1:8080/health -c 16 -n 20000
    .venv/bin/python bench/loadgen.py http://127.0.0.1:8080/predict -c 16 -n 5000 --body req.json
    .venv/bin/python bench/loadgen.py --serve 8099              # the trivial server, until interrupted
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "LoadResult",
    "combine_results",
    "encode_request",
    "fetch",
    "percentile",
    "run_load",
    "serve_trivial",
]

_HEAD_END = b"\r\n\r\n"


def encode_request(
    host: str, port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    """One HTTP/1.1 keep-alive request as bytes (JSON body when there is one), with any extra
    ``headers`` (an ``Authorization``, say).

    Example:
        >>> encode_request("127.0.0.1", 80, "GET", "/health", headers={"Authorization": "Bearer t"})[-27:]
        b'Authorization: Bearer t\\r\\n\\r\\n'
    """
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def percentile(sorted_values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of already sorted values, by linear interpolation."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass
class LoadResult:
    """What one closed-loop run measured; latencies in seconds, in completion order."""

    concurrency: int
    requests: int
    elapsed: float
    latencies: list[float]
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    server_cpu: float | None = None  # CPU seconds the server used meanwhile, when the caller measured it

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    @property
    def errors(self) -> int:
        return sum(n for code, n in self.statuses.items() if code != 200) + len(self.failures)

    def quantile(self, q: float) -> float:
        return percentile(sorted(self.latencies), q)

    @property
    def p50(self) -> float:
        return self.quantile(0.50)

    @property
    def p99(self) -> float:
        return self.quantile(0.99)

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.latencies)
        return {
            "concurrency": self.concurrency,
            "requests": len(ordered),
            "seconds": round(self.elapsed, 3),
            "rps": round(self.rate, 1),
            "p50_ms": round(percentile(ordered, 0.5) * 1e3, 3),
            "p90_ms": round(percentile(ordered, 0.9) * 1e3, 3),
            "p99_ms": round(percentile(ordered, 0.99) * 1e3, 3),
            "max_ms": round(ordered[-1] * 1e3, 3) if ordered else float("nan"),
            "mean_ms": round(statistics.fmean(ordered) * 1e3, 3) if ordered else float("nan"),
            "errors": self.errors,
        }


def combine_results(results: list[LoadResult]) -> LoadResult:
    """Several runs at the same concurrency as one: their latencies pooled, their times and the server
    CPU summed (None when any run has none), so the rate is answers over the time spent sending.

        >>> a = LoadResult(1, 2, 0.5, [0.1, 0.2], {200: 2}, server_cpu=0.1)
        >>> b = LoadResult(1, 1, 0.5, [0.3], {200: 1}, server_cpu=0.2)
        >>> both = combine_results([a, b])
        >>> both.rate, both.statuses, round(both.server_cpu, 3)
        (3.0, {200: 3}, 0.3)
    """
    statuses: dict[int, int] = {}
    for result in results:
        for code, n in result.statuses.items():
            statuses[code] = statuses.get(code, 0) + n
    cpus = [r.server_cpu for r in results]
    return LoadResult(
        results[0].concurrency,
        sum(r.requests for r in results),
        sum(r.elapsed for r in results),
        [t for r in results for t in r.latencies],
        statuses,
        [f for r in results for f in r.failures],
        None if any(c is None for c in cpus) else sum(c for c in cpus if c is not None),
    )


def _content_length(head: bytes, missing: int = 0) -> int:
    """The Content-Length of a lower-cased message head (``missing`` when it has none)."""
    at = head.find(b"content-length:")
    if at < 0:
        return missing
    stop = head.find(b"\r\n", at)
    return int(head[at + 15 : stop if stop >= 0 else len(head)])


class _Shared:
    """State the connections of one run share: what to send next, what came back."""

    def __init__(self, pool: list[bytes], total: int, loop: asyncio.AbstractEventLoop) -> None:
        self.pool = pool
        self.total = total
        self.sent = 0
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.failures: list[str] = []
        self.done: asyncio.Future[None] = loop.create_future()
        self.open = 0

    def next_request(self) -> bytes | None:
        if self.sent >= self.total:
            return None
        request = self.pool[self.sent % len(self.pool)]
        self.sent += 1
        return request

    def connection_finished(self) -> None:
        self.open -= 1
        if self.open == 0 and not self.done.done():
            self.done.set_result(None)


class _Client(asyncio.Protocol):
    """One keep-alive connection: send, read one whole answer (Content-Length framed), repeat."""

    def __init__(self, shared: _Shared) -> None:
        self.shared = shared
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.expected = -1  # total bytes of the answer in flight once its head is parsed
        self.status = 0
        self.started = 0.0
        self.finished = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.shared.open += 1
        self._send_next()

    def _send_next(self) -> None:
        request = self.shared.next_request()
        if request is None:
            self._finish()
            return
        assert self.transport is not None
        self.started = time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.expected < 0:
            end = self.buffer.find(_HEAD_END)
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            length = _content_length(head, missing=-1)
            if length < 0 or not head.startswith(b"http/1.1 "):
                self._fail(f"answer without content-length: {head[:200]!r}")
                return
            self.status = int(head[9:12])
            self.expected = end + 4 + length
        if len(self.buffer) < self.expected:
            return
        elapsed = time.perf_counter() - self.started
        shared = self.shared
        shared.latencies.append(elapsed)
        shared.statuses[self.status] = shared.statuses.get(self.status, 0) + 1
        del self.buffer[: self.expected]
        self.expected = -1
        self._send_next()

    def _fail(self, why: str) -> None:
        self.shared.failures.append(why)
        if self.transport is not None:
            self.transport.close()
        self._finish()

    def _finish(self) -> None:
        if not self.finished:
            self.finished = True
            if self.transport is not None:
                self.transport.close()
            self.shared.connection_finished()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished:
            self.shared.failures.append(f"connection lost: {exc or 'closed by the server'}")
            self._finish()


async def _run(
    host: str,
    port: int,
    pool: list[bytes],
    concurrency: int,
    total: int,
    on_connected: Callable[[], object] | None = None,
) -> LoadResult:
    loop = asyncio.get_running_loop()
    shared = _Shared(pool, total, loop)
    connections = []
    for _ in range(concurrency):  # connect all first, so connection setup is not timed
        transport, _ = await loop.create_connection(lambda: _Paused(), host, port)
        connections.append(transport)
    if on_connected is not None:  # every connection open, none used yet: not timed either
        on_connected()
    start = time.perf_counter()
    for transport in connections:
        client = _Client(shared)
        transport.set_protocol(client)
        client.connection_made(transport)
    await shared.done
    elapsed = time.perf_counter() - start
    return LoadResult(concurrency, total, elapsed, shared.latencies, shared.statuses, shared.failures)


class _Paused(asyncio.Protocol):
    """Holds a fresh connection until the run starts."""


def run_load(
    host: str,
    port: int,
    pool: list[bytes],
    concurrency: int,
    total: int,
    on_connected: Callable[[], object] | None = None,
) -> LoadResult:
    """Send ``total`` requests from ``pool`` (in turn) over ``concurrency`` keep-alive connections.

    ``on_connected`` is called once every connection is open and before the first request (and the
    clock): a caller can see, say, which server process accepted which connection.
    The garbage collector is off during the run: a collection in the generator would show up as a
    server latency spike.
    """
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        return asyncio.run(_run(host, port, pool, concurrency, total, on_connected))
    finally:
        if enabled:
            gc.enable()


def fetch(host: str, port: int, request: bytes, timeout: float = 30.0) -> tuple[int, bytes]:
    """One request on a new connection: (status, body). For checks, not for timing."""

    async def go() -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(request)
            head = await reader.readuntil(_HEAD_END)
            length = _content_length(head[:-4].lower())
            body = await reader.readexactly(length)
            return int(head[9:12]), body
        finally:
            writer.close()

    return asyncio.run(asyncio.wait_for(go(), timeout))


# -- the trivial server ---------------------------------------------------------------------------
_TRIVIAL_BODY = b'{"status":"ok"}'
_TRIVIAL_ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(_TRIVIAL_BODY)).encode()
    + b"\r\n\r\n"
    + _TRIVIAL_BODY
)


class _Trivial(asyncio.Protocol):
    """Answers every request (head plus Content-Length body) with the same fixed bytes."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(_HEAD_END)
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            size = end + 4 + _content_length(head)
            if len(self.buffer) < size:
                return
            del self.buffer[:size]
            assert self.transport is not None
            self.transport.write(_TRIVIAL_ANSWER)


def serve_trivial(port: int, host: str = "127.0.0.1") -> None:
    """Serve fixed answers on ``port`` until interrupted (the generator's own ceiling)."""

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Trivial, host, port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url", nargs="?", help="http://host:port/path")
    parser.add_argument("-c", "--concurrency", type=int, default=16)
    parser.add_argument("-n", "--requests", type=int, default=10_000)
    parser.add_argument("--body", type=Path, help="JSON body file: POST it (else GET)")
    parser.add_argument("--serve", type=int, metavar="PORT", help="run the trivial server on PORT instead")
    args = parser.parse_args(argv)
    if args.serve:
        serve_trivial(args.serve)
        return 0
    if not args.url:
        parser.error("a URL, or --serve PORT")
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    body = args.body.read_bytes() if args.body else b""
    request = encode_request(host, port, "POST" if args.body else "GET", url.path or "/", body)
    result = run_load(host, port, [request], args.concurrency, args.requests)
    print(result.summary(), result.statuses, result.failures[:3])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
