"""Every page of the web UI answers hostile addresses with a page, never a 500, on SQLite and PostgreSQL.

Each GET route of ``shipyard.ui`` is requested with generated path values (huge and negative numbers,
NUL, markup, quotes, unicode, empty) and generated query parameters (its own names and strangers with
the same kind of values). Whatever comes back must be below 500, HTML, and must never carry a
generated value unescaped (markup in a value never comes back as markup).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_harness import SyncASGITransport, make_settings

from pg_helpers import pg_database
from shipyard import Client
from shipyard.server import create_app
from shipyard.server.app import app_state
from shipyard.ui import build_router

MARKUP = "<b>x</b>"
NASTY = st.sampled_from(
    [
        "0",
        "-1",
        "1",
        str(2**31),
        str(10**30),
        "1e309",
        "nan",
        "",
        " ",
        "%00",
        "\x00",
        MARKUP,
        "'\"",
        "..",
        "../../etc/passwd",
        "v1",
        "latest",
        "é✓",
        "a" * 3000,
    ]
)
VALUES = st.one_of(NASTY, st.text(max_size=40), st.integers(min_value=-(2**70), max_value=2**70).map(str))
QUERY_NAMES = st.sampled_from(
    [
        "filter",
        "order",
        "cols",
        "col",
        "page",
        "limit",
        "run",
        "only_diff",
        "metric",
        "a",
        "b",
        "report",
        "variant",
        "before",
        "actor",
        "event",
        "subject",
        "path",
        "next",
        "message",
        "zzz",
    ]
)


def _get_routes() -> list[str]:
    """The UI's GET routes (path templates), read from its router."""
    paths = set()
    for route in build_router(_DummyStore()).routes:  # type: ignore[arg-type]
        if isinstance(route, APIRoute) and "GET" in (route.methods or set()):
            paths.add(route.path)
    return sorted(paths)


class _DummyStore:
    """Only for listing routes: building the router reads nothing from its store."""


ROUTES = _get_routes()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def http(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The server on each backend with a run (two metric points), so pages have something to show."""
    tmp_path = tmp_path_factory.mktemp("ui-fuzz")
    with contextlib.ExitStack() as stack:
        uri = (
            f"sqlite:///{tmp_path / 'shipyard.db'}"
            if request.param == "sqlite"
            else stack.enter_context(pg_database())
        )
        yield from _site(uri, tmp_path)


def _site(uri: str, tmp_path: Path) -> Iterator[httpx.Client]:
    app = create_app(make_settings(tmp_path, tracking_uri=uri))
    client = Client.from_stores(app_state(app).settings, app_state(app).store, app_state(app).blobs)
    with client.start_run(experiment="fuzz", name=MARKUP) as run:
        run.log_param("p", MARKUP)
        run.log_metric("m", 1.0, step=0)
        run.log_metric("m", 2.0, step=1)
    transport = SyncASGITransport(app)
    with httpx.Client(transport=transport, base_url="http://t") as http_client:
        yield http_client
    transport.close()
    client.close()


def test_the_routes_were_found() -> None:
    assert {"/", "/experiments/{experiment_id}", "/runs/{run_id}", "/models/{name}", "/audit"} <= set(ROUTES)
    assert len(ROUTES) >= 20


@pytest.mark.parametrize("route", ROUTES)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(VALUES, min_size=4, max_size=4),
    query=st.lists(st.tuples(QUERY_NAMES, VALUES), max_size=4),
)
def test_hostile_addresses_get_a_page_not_a_500(
    http: httpx.Client, route: str, values: list[str], query: list[tuple[str, str]]
) -> None:
    names = re.findall(r"\{([^}:]+)(?::path)?\}", route)
    path = route
    for name, value in zip(names, values, strict=False):
        path = re.sub(r"\{" + re.escape(name) + r"(?::path)?\}", quote(value, safe="") or "x", path)
    answer = http.get(path, params=[(k, v) for k, v in query], follow_redirects=False)
    assert answer.status_code < 500, (path, query, answer.text[:500])
    slashed = any("/" in v or v in (".", "..") for v in values[: len(names)])  # no route matches
    if (answer.status_code < 300 or answer.status_code >= 400) and not (
        slashed and answer.status_code == 404
    ):
        kind = answer.headers.get("content-type", "")
        assert kind.startswith(("text/html", "image/", "application/octet-stream")), (path, kind)
    if answer.headers.get("content-type", "").startswith("text/html"):
        assert MARKUP not in answer.text, (path, query)  # a generated or stored "<b>" came back as markup
