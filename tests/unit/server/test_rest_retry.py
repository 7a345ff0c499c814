"""The REST client sends an idempotent request once more when its kept-alive connection was reset,
instead of calling the server unreachable and spooling every later write."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_harness import Borrowed, SyncASGITransport, make_settings

from shipyard.entities import LogBatch, RunCreate
from shipyard.errors import ServerUnreachable
from shipyard.store.rest import RestStore


class ResetOnce(httpx.BaseTransport):
    """Fails the next request of ``method`` like a connection the server closed, then passes."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.armed: str | None = None
        self.seen: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(f"{request.method} {request.url.path}")
        if self.armed == request.method:
            self.armed = None
            raise httpx.RemoteProtocolError("Server disconnected without a response", request=request)
        return self.inner.handle_request(request)


@pytest.fixture
def flaky(transport: SyncASGITransport) -> ResetOnce:
    return ResetOnce(Borrowed(transport))


@pytest.fixture
def store(flaky: ResetOnce, tmp_path: Path) -> Iterator[RestStore]:
    s = RestStore("http://testserver", make_settings(tmp_path), transport=flaky)
    yield s
    s.close()


def test_a_write_after_a_reset_is_sent_again_not_spooled(store: RestStore, flaky: ResetOnce) -> None:
    store.create_run(RunCreate("retry1", "retries", "", 1, "u"))
    flaky.armed = "POST"
    store.log_batch("retry1", LogBatch(params={"lr": "0.1"}))
    assert not store.spooling
    assert flaky.seen[-2:] == ["POST /api/v1/runs/retry1/batch"] * 2
    flaky.armed = "GET"
    assert store.get_run("retry1").params == {"lr": "0.1"}


def test_a_post_that_is_not_idempotent_is_not_repeated(store: RestStore, flaky: ResetOnce) -> None:
    flaky.armed = "POST"
    with pytest.raises(ServerUnreachable):
        store.create_experiment("only-once")
    assert flaky.seen == ["POST /api/v1/experiments"]


def test_a_second_reset_is_an_unreachable_server(store: RestStore, flaky: ResetOnce) -> None:
    class Down(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            raise httpx.ReadError("Connection reset by peer", request=request)

    flaky.inner = Down()
    with pytest.raises(ServerUnreachable):
        store.get_run("retry1")
    store.log_batch("retry1", LogBatch(params={"lr": "0.2"}))
    assert store.spooling  # no answer at all: the write is kept for later
