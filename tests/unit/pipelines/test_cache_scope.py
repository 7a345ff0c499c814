"""What the code fingerprint follows: project code, never the standard library, site-packages or Shipyard."""

from __future__ import annotations

import json

import pytest

from shipyard.entities import now_ms
from shipyard.pipelines import cache


def _helper(x: int) -> int:
    return x + 1


def test_project_code_is_followed_but_shipyard_and_libraries_are_not() -> None:
    assert cache._is_project_local(_helper)
    assert not cache._is_project_local(now_ms)  # Shipyard itself, even installed from a checkout
    assert not cache._is_project_local(json.dumps)


def test_editing_shipyard_does_not_change_a_steps_fingerprint() -> None:
    def step_body() -> int:
        return _helper(now_ms())

    before = cache.code_fingerprint(step_body)
    original = cache._source

    def edited(obj: object) -> str:  # as if Shipyard's now_ms had been edited in the checkout
        return original(obj) + ("# edited" if obj is now_ms else "")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cache, "_source", edited)
        assert cache.code_fingerprint(step_body) == before

        def edited_helper(obj: object) -> str:
            return original(obj) + ("# edited" if obj is _helper else "")

        mp.setattr(cache, "_source", edited_helper)
        assert cache.code_fingerprint(step_body) != before
