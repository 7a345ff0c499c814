"""Both servers answer errors in one JSON shape, from one set of handlers (``shipyard.wire``).

Each test builds two minimal apps with the real installers of the tracking server
(``shipyard.server.errors`` + ``BodyLimitMiddleware``) and of the model server (``shipyard.serving.http``
+ ``RequestIdMiddleware`` + ``read_body``), provokes the same error on both, and pins the answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel

from shipyard.errors import PayloadTooLarge, RunNotFound
from shipyard.server.errors import ROUTES_HINT as SERVER_HINT
from shipyard.server.errors import install_error_handlers as install_server_handlers
from shipyard.serving.http import ROUTES_HINT as SERVING_HINT
from shipyard.serving.http import RequestIdMiddleware
from shipyard.serving.http import install_error_handlers as install_serving_handlers
from shipyard.wire import error_from_response
from shipyard.wire.handlers import error_response
from shipyard.wire.limits import BodyLimitMiddleware, read_body

LIMIT = 64


class Body(BaseModel):
    count: int


def _routes(app: FastAPI) -> FastAPI:
    @app.get("/missing-run")
    def missing_run() -> None:
        raise RunNotFound("Run 'x' not found", details={"run_id": "x"})

    @app.get("/crash")
    def crash() -> None:
        raise RuntimeError("boom")

    @app.get("/number")
    def number(n: int) -> int:
        return n

    @app.post("/typed")
    def typed(body: Body) -> int:
        return body.count

    @app.post("/raw")
    async def raw(request: Request) -> int:
        return len(await read_body(request, LIMIT))

    return app


def tracking_app() -> FastAPI:
    app = FastAPI()
    install_server_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=LIMIT, exempt=lambda scope: False)
    return _routes(app)


def serving_app() -> FastAPI:
    app = FastAPI()
    install_serving_handlers(app)
    app.add_middleware(RequestIdMiddleware)
    return _routes(app)


APPS = {"tracking": tracking_app, "serving": serving_app}


def call(app: FastAPI, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    assert list(body["error"]) == ["code", "message", "details"]
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]  # type: ignore[no-any-return]


def both(method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, httpx.Response]:
    return call(tracking_app(), method, path, **kwargs), call(serving_app(), method, path, **kwargs)


def test_error_response_bytes_are_pinned() -> None:
    response = error_response(RunNotFound("Run 'x' not found", details={"run_id": "x"}))
    assert response.status_code == 404
    assert response.body == (
        b'{"error":{"code":"run_not_found","message":"Run \'x\' not found","details":{"run_id":"x"}}}'
    )


def test_a_shipyard_error_is_the_same_bytes_from_both_servers() -> None:
    tracking, serving = both("GET", "/missing-run")
    error_of(tracking, 404, "run_not_found")
    assert (
        tracking.content
        == serving.content
        == (b'{"error":{"code":"run_not_found","message":"Run \'x\' not found","details":{"run_id":"x"}}}')
    )


@pytest.mark.parametrize(
    ("kind", "hint"), [("tracking", SERVER_HINT), ("serving", SERVING_HINT)], ids=["tracking", "serving"]
)
def test_unknown_route_is_404_with_each_servers_hint(kind: str, hint: str) -> None:
    error = error_of(call(APPS[kind](), "GET", "/nope"), 404, "not_found")
    assert error["message"] == f"No route GET /nope; {hint}"


def test_wrong_method_is_405_on_both() -> None:
    for response in both("DELETE", "/missing-run"):
        assert (
            "DELETE is not allowed on /missing-run"
            in error_of(response, 405, "method_not_allowed")["message"]
        )


def test_bad_query_is_the_same_422_on_both() -> None:
    tracking, serving = both("GET", "/number", params={"n": "many"})
    error = error_of(tracking, 422, "invalid_request")
    assert error["message"].startswith("Invalid request: n: ")
    assert [e["field"] for e in error["details"]["errors"]] == ["n"]
    assert serving.json() == tracking.json()


def test_malformed_json_is_the_same_400_on_both() -> None:
    tracking, serving = both(
        "POST", "/typed", content=b'{"count": ', headers={"content-type": "application/json"}
    )
    error = error_of(tracking, 400, "invalid_json")
    assert error["details"] == {"position": 10}
    assert serving.json() == tracking.json()


@pytest.mark.parametrize("kind", ["tracking", "serving"])
def test_a_crash_is_a_500_naming_the_exception_not_the_traceback(kind: str) -> None:
    response = call(APPS[kind](), "GET", "/crash")
    error = error_of(response, 500, "internal_error")
    assert error["message"].startswith("Internal server error (RuntimeError) on GET /crash; ")
    assert "boom" not in error["message"]
    if kind == "serving":  # the model server names the request id it also sends as a header
        assert f"(request id {response.headers['x-request-id']})" in error["message"]


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_is_the_same_413_on_both(declared: bool) -> None:
    def chunks() -> Any:
        async def gen() -> Any:
            for _ in range(4):
                yield b"x" * 40

        return gen()

    answers = []
    for app in (tracking_app(), serving_app()):
        content = b"x" * 160 if declared else chunks()
        answers.append(call(app, "POST", "/raw", content=content))
    error = error_of(answers[0], 413, "payload_too_large")
    assert error["details"]["limit"] == LIMIT
    assert ("declares 160 bytes" if declared else f"sent more than {LIMIT} bytes") in error["message"]
    assert "SHIPYARD_MAX_REQUEST_BYTES" in error["message"]
    assert answers[1].json() == answers[0].json()


def test_a_body_within_the_limit_reaches_the_route_on_both() -> None:
    for response in both("POST", "/raw", content=b"x" * LIMIT):
        assert response.status_code == 200 and response.json() == LIMIT


def test_payload_too_large_keeps_its_class_on_the_client() -> None:
    response = call(tracking_app(), "POST", "/raw", content=b"x" * 100)
    assert isinstance(error_from_response(response, "http://t"), PayloadTooLarge)
