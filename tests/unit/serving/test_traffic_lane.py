"""The traffic routes (``POST /predict``, ``/explain``, ``/feedback``, ``/invocations``) through
:class:`~shipyard.serving.lane.TrafficLane` answer exactly as the FastAPI routes do.

Two servers on the same model folder, one as built and one without the lane (the routes alone), get
the same requests, good and bad; every answer (status, body, headers) must be the same, and the lane
must be the one answering them (FastAPI's router never sees them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from serving_harness import SyncASGITransport, client_of, flights, folder_app, served

from shipyard.serving import routes as routes_module
from shipyard.serving.lane import TrafficLane

JSON = {"Content-Type": "application/json"}
ROW = {"dep_delay": 5.0, "distance": 700, "carrier": "UA"}
# Headers an answer carries that are the same for the same request on two servers.
COMPARED = ("content-type", "content-length", "x-request-id", "x-shipyard-variant", "allow", "connection")


def _without_lane(app: FastAPI) -> FastAPI:
    app.user_middleware = [m for m in app.user_middleware if m.cls is not TrafficLane]
    return app


@pytest.fixture(scope="module")
def pair(classifier_dir: Path) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    apps = [folder_app(classifier_dir, "lane"), _without_lane(folder_app(classifier_dir, "lane"))]
    transports = [SyncASGITransport(app) for app in apps]
    clients = [httpx.Client(transport=t, base_url="http://testserver") for t in transports]
    try:
        yield clients[0], clients[1]
    finally:
        for client in clients:
            client.close()
        for transport in transports:
            transport.close()


@pytest.fixture
def router_saw(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each traffic request read: whether FastAPI's router matched it first."""
    seen: list[bool] = []
    for name in ("_read_call", "_read_invocation", "_feedback"):
        real = getattr(routes_module, name)

        async def spy(request: Any, *args: Any, _real: Any = real) -> Any:
            seen.append("endpoint" in request.scope)  # set by the router's route match
            return await _real(request, *args)

        monkeypatch.setattr(routes_module, name, spy)
    return seen


def _records(n: int) -> bytes:
    frame = flights(n, seed=3)
    rows = json.loads(frame.to_json(orient="records"))
    return json.dumps({"records": rows}).encode()


ARROW = "application/vnd.apache.arrow.stream"
LATIN_1 = "application/json; charset=latin-1"
SPLIT = json.dumps({"dataframe_split": {"columns": list(ROW), "data": [list(ROW.values())]}})
CSV_BODY = b"dep_delay,distance,carrier\n5.0,700,UA\n"
FEEDBACK = json.dumps({"feedback": [{"request_id": "r1", "label": 1}]})
REQUESTS: list[tuple[str, int, str, dict[str, Any]]] = [  # what, status, path, request
    ("good records", 200, "/predict", {"content": _records(3), "headers": JSON}),
    (
        "probabilities",
        200,
        "/predict",
        {"content": _records(2), "headers": JSON, "params": {"proba": "true"}},
    ),
    ("columns", 200, "/predict", {"content": json.dumps({"columns": {k: [v] for k, v in ROW.items()}})}),
    ("sticky header", 200, "/predict", {"content": _records(1), "headers": {**JSON, "x-shipyard-key": "k"}}),
    ("arrow answer", 200, "/predict", {"content": _records(2), "headers": {**JSON, "accept": ARROW}}),
    ("malformed JSON", 400, "/predict", {"content": b'{"records": [', "headers": JSON}),
    ("not JSON", 415, "/predict", {"content": b"a,b", "headers": {"Content-Type": "text/csv"}}),
    (
        "bad proba flag",
        400,
        "/predict",
        {"content": _records(1), "headers": JSON, "params": {"proba": "maybe"}},
    ),
    (
        "missing column",
        422,
        "/predict",
        {"content": json.dumps({"records": [{"distance": 1}]}), "headers": JSON},
    ),
    ("wrong type", 422, "/predict", {"content": json.dumps({"records": [{**ROW, "distance": "far"}]})}),
    ("empty", 400, "/predict", {"content": json.dumps({"records": []}), "headers": JSON}),
    ("too large", 413, "/predict", {"content": b"{}", "headers": {**JSON, "Content-Length": str(1 << 40)}}),
    ("invocations split", 200, "/invocations", {"content": SPLIT, "headers": JSON}),
    ("invocations CSV", 200, "/invocations", {"content": CSV_BODY, "headers": {"Content-Type": "text/csv"}}),
    (
        "invocations bad media",
        415,
        "/invocations",
        {"content": b"x", "headers": {"Content-Type": "text/plain"}},
    ),
    (
        "invocations bad charset",
        415,
        "/invocations",
        {"content": b"{}", "headers": {"Content-Type": LATIN_1}},
    ),
    ("invocations malformed", 400, "/invocations", {"content": b"{", "headers": JSON}),
    ("explain", 200, "/explain", {"content": _records(2), "headers": JSON}),
    ("explain malformed", 400, "/explain", {"content": b"[", "headers": JSON}),
    ("feedback without a log", 409, "/feedback", {"content": FEEDBACK, "headers": JSON}),
    ("feedback malformed", 400, "/feedback", {"content": b'{"feedback": []}', "headers": JSON}),
]


def _answer(response: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    return response.status_code, response.content, {h: response.headers.get(h, "") for h in COMPARED}


@pytest.mark.parametrize(("what", "status", "path", "request_kw"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_the_lane_answers_as_the_route_does(
    pair: tuple[httpx.Client, httpx.Client],
    router_saw: list[bool],
    what: str,
    status: int,
    path: str,
    request_kw: dict[str, Any],
) -> None:
    lane, route = pair
    headers = {**request_kw.get("headers", {}), "x-request-id": f"same-{what.replace(' ', '-')}"}
    kw = {**request_kw, "headers": headers}
    lane_answer = _answer(lane.post(path, **kw))
    assert router_saw == [False], "the lane did not answer"
    route_answer = _answer(route.post(path, **kw))
    assert router_saw == [False, True], "the server without the lane did not answer through the router"
    assert lane_answer[0] == status, lane_answer
    assert lane_answer == route_answer


def test_other_methods_and_near_paths_go_to_the_router(pair: tuple[httpx.Client, httpx.Client]) -> None:
    lane, route = pair
    for method, path in (
        ("GET", "/predict"),
        ("PUT", "/invocations"),
        ("POST", "/predict/"),
        ("POST", "/nope"),
    ):
        answers = [_answer(c.request(method, path, headers={"x-request-id": "r"})) for c in (lane, route)]
        assert answers[0] == answers[1]
        assert answers[0][0] in (404, 405, 307), answers[0]


def test_a_crash_in_the_lane_is_the_same_json_500(
    classifier_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    apps = [folder_app(classifier_dir, "crashy"), _without_lane(folder_app(classifier_dir, "crashy"))]

    def boom(*_args: Any, **_kw: Any) -> Any:
        raise RuntimeError("bug in the server")

    answers = []
    for app in apps:
        monkeypatch.setattr(served(app), "predict_checked", boom)
        for client in client_of(app):
            response = client.post("/predict", content=_records(1), headers={**JSON, "x-request-id": "r1"})
            answers.append(_answer(response))
    assert answers[0][0] == 500
    assert b"RuntimeError" in answers[0][1] and b"r1" in answers[0][1]
    assert answers[0] == answers[1]


def test_the_lane_is_the_innermost_middleware(classifier_dir: Path) -> None:
    """Inside access control, the crash handler and the request ids: they apply to the lane's answers."""
    app = folder_app(classifier_dir, "order")
    assert app.user_middleware[-1].cls is TrafficLane
