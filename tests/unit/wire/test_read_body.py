"""``read_body``: the whole body, refused past its size limit, and 408 once it stops arriving — the
time limit counts from the last part received, not from the first."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request

from shipyard.errors import PayloadTooLarge
from shipyard.wire.limits import BodyTimeout, read_body


def request_of(parts: list[bytes], gap: float, *, stall: bool = False) -> Request:
    """A request whose body comes in ``parts``, ``gap`` seconds apart; with ``stall`` the last never ends."""
    messages = [{"type": "http.request", "body": part, "more_body": True} for part in parts]
    messages.append({"type": "http.request", "body": b"", "more_body": False})

    async def receive() -> dict[str, object]:
        if len(messages) == 1 and stall:
            await asyncio.Event().wait()  # the client went quiet
        await asyncio.sleep(gap)
        return messages.pop(0)

    return Request({"type": "http", "method": "POST", "headers": []}, receive)


def test_a_body_in_parts_is_read_whole_even_past_the_timeout_in_total() -> None:
    parts = [b"a" * 10] * 6
    body = asyncio.run(read_body(request_of(parts, gap=0.1), 1024, timeout=0.4))  # 0.7 s in all
    assert body == b"a" * 60


def test_a_body_that_stops_arriving_is_a_body_timeout() -> None:
    with pytest.raises(BodyTimeout) as caught:
        asyncio.run(read_body(request_of([b"{"], gap=0.0, stall=True), 1024, timeout=0.2))
    assert caught.value.status == 408


def test_a_body_past_the_limit_is_refused_as_it_arrives() -> None:
    with pytest.raises(PayloadTooLarge):
        asyncio.run(read_body(request_of([b"x" * 600, b"x" * 600], gap=0.0, stall=True), 1000, timeout=5))


def test_other_timeouts_inside_are_not_mistaken_for_the_body_timeout() -> None:
    async def receive() -> dict[str, object]:
        raise TimeoutError("an upstream proxy's own timeout")

    request = Request({"type": "http", "method": "POST", "headers": []}, receive)
    with pytest.raises(TimeoutError, match="upstream"):
        asyncio.run(read_body(request, 1024, timeout=5))
