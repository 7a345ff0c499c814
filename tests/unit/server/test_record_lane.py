"""``POST /api/v1/runs/record`` through the fast lane answers exactly as the FastAPI route does.

Two apps on one kind of store, one with :class:`~shipyard.server.lanes.RecordLane` and one without
(the route alone), get the same requests; every answer (status, error body) must be the same, and the
lane must be the one answering the valid ones.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from server_harness import SyncASGITransport, make_settings

from shipyard.server import create_app
from shipyard.server import lanes as lanes_module
from shipyard.server.app import app_state
from shipyard.server.lanes import RecordLane
from shipyard.store.sql import SqlStore

URL = "/api/v1/runs/record"


def _without_lane(app: FastAPI) -> FastAPI:
    app.user_middleware = [m for m in app.user_middleware if m.cls is not RecordLane]
    return app


def _pair(root: Path, **settings: Any) -> Iterator[tuple[httpx.Client, httpx.Client, SqlStore, SqlStore]]:
    apps = [create_app(make_settings(root / "lane", **settings))]
    apps.append(_without_lane(create_app(make_settings(root / "route", **settings))))
    transports = [SyncASGITransport(a) for a in apps]
    clients = [httpx.Client(transport=tr, base_url="http://testserver") for tr in transports]
    stores = [app_state(a).store for a in apps]
    assert all(isinstance(s, SqlStore) for s in stores)
    try:
        yield clients[0], clients[1], stores[0], stores[1]  # type: ignore[misc]
    finally:
        for c in clients:
            c.close()
        for tr in transports:
            tr.close()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[httpx.Client, httpx.Client, SqlStore, SqlStore]]:
    yield from _pair(tmp_path)


@pytest.fixture
def lane_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = lanes_module.record

    def counted(body: Any, *args: Any) -> None:
        calls.append(body.run_id)
        real(body, *args)

    monkeypatch.setattr(lanes_module, "record", counted)
    return calls


def _body(rid: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "run_id": rid,
        "experiment_name": "lane",
        "name": "r",
        "start_time": 1_000,
        "user": "claimed",
        "params": {"lr": "0.1"},
        "tags": {"t": "v"},
        "status": "finished",
        "end_time": 2_000,
        "batch": {"metrics": {"keys": ["auc"], "values": ["NaN"], "steps": [0], "timestamps": [1_500]}},
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


CASES: list[tuple[str, Any]] = [
    ("valid", {}),
    ("valid again (a retry)", {}),
    ("a live status", {"status": "running"}),
    ("no experiment", {"experiment_name": ...}),
    ("a bad run id", {"run_id": "not/an id"}),
    ("a string for a time", {"start_time": "soon"}),
    ("an unknown field", {"colour": "red"}),
    ("an unknown artifact blob", {"artifacts": [{"path": "m.bin", "digest": "a" * 64, "size": 3}]}),
    (
        "a huge step",
        {"batch": {"metrics": {"keys": ["k"], "values": [1], "steps": [2**70], "timestamps": [0]}}},
    ),
    ("an unknown parent", {"parent_run_id": "f" * 32}),
]


@pytest.mark.parametrize(("label", "changes"), CASES, ids=[c[0] for c in CASES])
def test_the_lane_answers_as_the_route(
    pair: tuple[httpx.Client, httpx.Client, SqlStore, SqlStore],
    lane_calls: list[str],
    label: str,
    changes: dict[str, Any],
) -> None:
    lane, route, lane_store, route_store = pair
    run_id = uuid.uuid4().hex
    for http in (lane, route):  # the experiment exists in both, as the second record of a client sees it
        assert http.post(URL, json=_body(uuid.uuid4().hex)).status_code == 204
    lane_calls.clear()
    body = _body(run_id, **changes)
    answers = [http.post(URL, json=body) for http in (lane, route)]
    if label.startswith("valid again"):
        answers = [http.post(URL, json=body) for http in (lane, route)]
    assert answers[0].status_code == answers[1].status_code, (answers[0].text, answers[1].text)
    # the same, but for where each store lives (error messages name it)
    assert answers[0].text.replace("/lane/", "/…/") == answers[1].text.replace("/route/", "/…/")
    if answers[0].status_code == 204:
        assert run_id in lane_calls  # answered by the lane, not passed on
        got = [s.get_run(run_id) for s in (lane_store, route_store)]
        assert repr(got[0]) == repr(got[1])  # NaN included: the metric was sent as "NaN"
        assert got[0].user == "claimed" and got[0].tags == {"t": "v"} and math.isnan(got[0].metrics["auc"])


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("application/json", b"{not json"),
        ("application/json", b"[1, 2]"),
        ("application/json", b"9" * 5000),
        ("text/plain", b'{"run_id": "x"}'),
        ("application/json; charset=utf-8", b"{}"),
    ],
)
def test_bodies_the_lane_cannot_read_get_the_routes_answer(
    pair: tuple[httpx.Client, httpx.Client, SqlStore, SqlStore],
    lane_calls: list[str],
    content_type: str,
    raw: bytes,
) -> None:
    lane, route, _, _ = pair
    answers = [http.post(URL, content=raw, headers={"content-type": content_type}) for http in (lane, route)]
    assert answers[0].status_code == answers[1].status_code and answers[0].status_code >= 400
    assert answers[0].content == answers[1].content
    assert lane_calls == []


def test_with_auth_the_author_is_the_token_s_user_and_a_viewer_is_refused(
    tmp_path: Path, lane_calls: list[str]
) -> None:
    for lane, route, lane_store, route_store in _pair(tmp_path, auth=True):
        for store in (lane_store, route_store):
            store.create_user("sam", ["scientist"], "test")
            store.create_user("vic", ["viewer"], "test")
        for who in ("sam", "vic"):
            keys = [s.create_token(who, "unit", "test")[1] for s in (lane_store, route_store)]
            run_id = uuid.uuid4().hex
            answers = [
                http.post(URL, json=_body(run_id), headers={"Authorization": f"Bearer {key}"})
                for http, key in zip((lane, route), keys, strict=True)
            ]
            assert answers[0].status_code == answers[1].status_code == (204 if who == "sam" else 403)
            if who == "sam":
                assert lane_store.get_run(run_id).user == route_store.get_run(run_id).user == "sam"
                assert run_id in lane_calls
        anonymous = lane.post(URL, json=_body(uuid.uuid4().hex))
        assert anonymous.status_code == 401 and lane_calls == [lane_calls[0]]
