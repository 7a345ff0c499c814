"""Waiting for something to happen in tests: poll a condition until a deadline, never sleep a fixed time.

A fixed sleep is either too short on a busy machine (a flaky test) or too long everywhere (a slow one);
polling returns as soon as the condition holds and fails with a message naming what never happened.
Importable from every test folder (``tests/`` is on ``sys.path`` through ``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["await_until", "wait_until"]

T = TypeVar("T")


def _describe(what: str | Callable[[], str]) -> str:
    return what() if callable(what) else what


def wait_until(
    condition: Callable[[], T],
    what: str | Callable[[], str],
    *,
    timeout: float = 10.0,
    interval: float = 0.01,
) -> T:
    """Call ``condition`` until it returns something truthy, and return that; fail after ``timeout`` s.

    Example:
        >>> wait_until(lambda: 42, "the answer")
        42
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"after {timeout} s still waiting for: {_describe(what)}")
        time.sleep(interval)


async def await_until(
    condition: Callable[[], T | Awaitable[T]],
    what: str | Callable[[], str],
    *,
    timeout: float = 10.0,
    interval: float = 0.005,
) -> T:
    """:func:`wait_until` on a running event loop: ``condition`` may be a coroutine function.

    Example:
        >>> asyncio.run(await_until(lambda: "ready", "readiness"))
        'ready'
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(f"after {timeout} s still waiting for: {_describe(what)}")
        await asyncio.sleep(interval)
