"""Hostile values answer the same 4xx on SQLite and PostgreSQL, never a 500.

Oversized integers (SQLite ``OverflowError``, PostgreSQL ``integer out of range``), NUL characters
(PostgreSQL ``DataError``, SQLite stored them), names that cannot be referenced, filters past the
search limits and forged page tokens. Each test runs on both backends (``store_uri``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_harness import SyncASGITransport, make_settings

from shipyard.server import create_app
from shipyard.store.query import MAX_KEYS, MAX_TERMS

API = "/api/v1"
BIG = 10**30
ZERO = "0" * 64
RUN = "r1"


@pytest.fixture
def http(store_uri: str, tmp_path: Path) -> Iterator[httpx.Client]:
    """The tracking server on this backend, with one run (``r1``) in experiment ``e``."""
    transport = SyncASGITransport(create_app(make_settings(tmp_path, tracking_uri=store_uri)))
    with httpx.Client(transport=transport, base_url="http://t") as client:
        created = client.post(f"{API}/runs", json={"run_id": RUN, "experiment_name": "e", "start_time": 1})
        assert created.status_code == 200, created.text
        yield client
    transport.close()


def _token(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


# (method, path, json body, expected status) — the ~17 routes that answered 500 before.
OVERSIZED: list[tuple[str, str, Any, int]] = [
    ("GET", f"{API}/experiments/{BIG}", None, 422),
    ("GET", f"{API}/experiments/{2**31}", None, 422),  # past the 32-bit id column
    ("POST", f"{API}/runs", {"run_id": "r2", "experiment_name": "e", "start_time": BIG}, 422),
    ("PATCH", f"{API}/runs/{RUN}", {"status": "finished", "end_time": BIG}, 422),
    (
        "POST",
        f"{API}/runs/{RUN}/batch",
        {"metrics": {"keys": ["a"], "values": [1], "steps": [BIG], "timestamps": [1]}},
        422,
    ),  # noqa: E501
    (
        "POST",
        f"{API}/runs/{RUN}/batch",
        {"metrics": {"keys": ["a"], "values": [1], "steps": [1], "timestamps": [BIG]}},
        422,
    ),  # noqa: E501
    ("POST", f"{API}/runs/search", {"experiment_ids": [BIG]}, 422),
    ("POST", f"{API}/runs/search", {"limit": BIG}, 422),
    ("POST", f"{API}/runs/search", {"page_token": _token({"offset": BIG})}, 400),
    ("POST", f"{API}/runs/search", {"filter": f"attributes.start_time > {BIG}"}, 400),
    ("POST", f"{API}/runs/{RUN}/artifacts", {"artifacts": [{"path": "a", "digest": ZERO, "size": BIG}]}, 422),
    (
        "POST",
        f"{API}/runs/{RUN}/artifacts",
        {"artifacts": [{"path": "a", "digest": ZERO, "size": 1, "created_at": BIG}]},
        422,
    ),  # noqa: E501
    (
        "POST",
        f"{API}/datasets/versions",
        {"name": "d", "digest": ZERO, "rows": BIG, "num_columns": 1, "schema": [], "size": 1},
        422,
    ),  # noqa: E501
    (
        "POST",
        f"{API}/datasets/versions",
        {"name": "d", "digest": ZERO, "rows": 1, "num_columns": 2**31, "schema": [], "size": 1},
        422,
    ),  # noqa: E501
    (
        "POST",
        f"{API}/datasets/versions",
        {"name": "d", "digest": ZERO, "rows": 1, "num_columns": 1, "schema": [], "size": BIG},
        422,
    ),  # noqa: E501
    ("POST", f"{API}/runs/{RUN}/datasets", {"name": "d", "version": BIG}, 422),
    ("GET", f"{API}/audit?after_seq={BIG}", None, 422),
    ("GET", f"{API}/datasets/resolve?name=d&ref=v{BIG}", None, 400),
    ("GET", f"{API}/contracts/resolve?name=d&ref=v{BIG}", None, 400),
    ("GET", f"{API}/deployments/d/versions/{BIG}", None, 400),
    ("GET", f"{API}/models/m/records?version={BIG}", None, 422),
]


def _check(http: httpx.Client, cases: list[tuple[str, str, Any, int]]) -> None:
    wrong = []
    for method, path, body, status in cases:
        response = http.request(method, path, json=body)
        if response.status_code != status or set(response.json()) != {"error"}:
            wrong.append(
                f"{method} {path[:70]} {str(body)[:80]} -> {response.status_code} {response.text[:200]}"
            )
    assert not wrong, "\n".join(wrong)


def test_oversized_integers_answer_the_same_4xx_on_both_backends(http: httpx.Client) -> None:
    _check(http, OVERSIZED)


def test_false_and_floats_are_not_integers(http: httpx.Client) -> None:
    _check(
        http,
        [
            ("POST", f"{API}/runs", {"run_id": "r3", "experiment_name": "e", "start_time": False}, 422),
            ("POST", f"{API}/runs", {"run_id": "r3", "experiment_name": "e", "start_time": 1.0}, 422),
            ("POST", f"{API}/runs/search", {"limit": True}, 422),
            ("POST", f"{API}/runs/{RUN}/datasets", {"name": "d", "version": True}, 422),
        ],
    )


def test_nul_characters_are_refused_with_400_on_both_backends(http: httpx.Client) -> None:
    batch = f"{API}/runs/{RUN}/batch"
    _check(
        http,
        [
            ("POST", f"{API}/experiments", {"name": "a\x00b"}, 400),
            ("POST", f"{API}/experiments", {"name": "ok", "description": "a\x00"}, 400),
            ("GET", f"{API}/experiments/by-name?name=a%00b", None, 400),
            ("POST", f"{API}/runs", {"run_id": "r4", "experiment_name": "e\x00", "start_time": 1}, 400),
            (
                "POST",
                f"{API}/runs",
                {"run_id": "r4", "experiment_name": "e", "start_time": 1, "params": {"a": "x\x00"}},
                400,
            ),  # noqa: E501
            ("POST", batch, {"params": {"p\x00": "1"}}, 400),
            ("POST", batch, {"tags": {"t": "v\x00"}}, 400),
            (
                "POST",
                batch,
                {"metrics": {"keys": ["m\x00"], "values": [1], "steps": [0], "timestamps": [1]}},
                400,
            ),
            ("POST", f"{API}/runs/search", {"filter": "params.a = 'x\x00'"}, 400),
            ("POST", f"{API}/runs/search", {"order_by": ["params.`a\x00`"]}, 400),
            ("GET", f"{API}/runs/{RUN}/metrics/history?key=a%00", None, 400),
            ("GET", f"{API}/datasets/resolve?name=d%00", None, 400),
        ],
    )
    assert [e["name"] for e in http.get(f"{API}/experiments").json()["experiments"]] == ["e"]


def test_names_that_cannot_be_referenced_are_refused_at_creation(http: httpx.Client) -> None:
    _check(
        http,
        [
            ("POST", f"{API}/experiments", {"name": "   "}, 400),
            ("POST", f"{API}/experiments", {"name": " padded "}, 400),
            ("POST", f"{API}/experiments", {"name": "line\nbreak"}, 400),
            ("POST", f"{API}/experiments", {"name": "evil\u202etxt.exe"}, 400),
            ("POST", f"{API}/runs", {"run_id": "r5", "experiment_name": "tab\there", "start_time": 1}, 400),
        ],
    )
    assert http.post(f"{API}/experiments", json={"name": "team@proj"}).status_code == 201  # '@' is fine here


def test_search_limits_answer_400_naming_the_limit(http: httpx.Client) -> None:
    search = f"{API}/runs/search"
    many_keys = " or ".join(f"metrics.m{i} > 0" for i in range(MAX_KEYS + 5))
    many_terms = " or ".join("m.a>0" for _ in range(10_000))  # 10,000 terms in 90 kB
    with_order = " and ".join(f"params.p{i} = 'x'" for i in range(MAX_KEYS - 2))
    for body, limit in (
        ({"filter": many_keys}, MAX_KEYS),
        ({"filter": many_terms}, MAX_TERMS),
        ({"filter": with_order, "order_by": [f"metrics.o{i}" for i in range(5)]}, MAX_KEYS),
    ):
        response = http.post(search, json=body)
        assert response.status_code == 400, response.text
        assert str(limit) in response.json()["error"]["message"]
    at_limit = " or ".join(f"metrics.m{i} > 0" for i in range(MAX_KEYS))
    assert http.post(search, json={"filter": at_limit}).status_code == 200  # fits SQLite's 64-table join


@pytest.mark.parametrize(
    "token",
    [
        _token({"offset": -1}),
        _token({"offset": True}),
        _token({"offset": 2**63}),
        _token({"offset": "1"}),
        _token([1]),
        _token({"x": 1}),
        base64.urlsafe_b64encode(b"[" * 100_000).decode()[:900],
        "not base64 ☃",
        "@@@@",
        "",
    ],
)
def test_forged_page_tokens_are_400(store_uri: str, tmp_path: Path, token: str) -> None:
    from shipyard.store import open_store

    store = open_store(store_uri)
    try:
        from shipyard.errors import InvalidInput

        if token == "":  # an empty token means the first page
            assert store.search_runs(page_token=token).runs == []
            return
        with pytest.raises(InvalidInput, match="page token"):
            store.search_runs(page_token=token)
    finally:
        store.close()
