"""Schemathesis against the model server's own OpenAPI document (issue 10): requests generated from what
the document says every endpoint takes (JSON records, columns and bare records typed by the served
scikit-learn model's signature, Arrow streams, feedback items, query flags), and some that break it. No
answer may be a 5xx, and every answer must match what the document says (status, content type, body).

The run is bounded: ``SHIPYARD_FUZZ_EXAMPLES`` examples per operation and generation mode (default 25,
about 20 s on two cores); raise it for a deeper search."""

from __future__ import annotations

import datetime
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from serving_harness import client_of, folder_app

from shipyard.serving.payload import ARROW_STREAM

EXAMPLES = int(os.environ.get("SHIPYARD_FUZZ_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schemathesis.serializer("text/csv")
def _csv_text(ctx: Any, value: Any) -> dict[str, Any]:
    """Generated CSV bodies (``/invocations``) are text: sent as UTF-8."""
    return {"data": value if isinstance(value, bytes) else str(value).encode()}


@schemathesis.serializer(ARROW_STREAM)
def _arrow_bytes(ctx: Any, value: Any) -> dict[str, Any]:
    """Generated Arrow bodies are bytes (``format: binary``): sent as they are."""
    return {"data": value if isinstance(value, bytes) else str(value).encode()}


@pytest.fixture(scope="module")
def served(classifier_dir: Path) -> Iterator[tuple[httpx.Client, dict[str, Any]]]:
    app = folder_app(classifier_dir, "flights-late", max_request_bytes=1 << 20)
    for http in client_of(app):
        yield http, http.get("/openapi.json").json()


def send(http: httpx.Client, case: Any) -> httpx.Response:
    """The generated request, sent to the in-process app through httpx."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    content: Any = None
    if "json" in kwargs:
        content = json.dumps(kwargs["json"], allow_nan=False).encode()
    elif "data" in kwargs:
        data = kwargs["data"]
        content = data if isinstance(data, bytes) else str(data).encode()
    started = time.perf_counter()
    response = http.request(
        kwargs["method"],
        kwargs["url"],
        params=kwargs.get("params"),
        headers={k: str(v) for k, v in (kwargs.get("headers") or {}).items()},
        content=content,
    )
    response.elapsed = datetime.timedelta(seconds=time.perf_counter() - started)  # the in-process transport
    return response


OPERATIONS = [
    ("POST", "/predict"),
    ("POST", "/explain"),
    ("POST", "/feedback"),
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/info"),
    ("GET", "/metrics"),
    ("POST", "/admin/reload"),
    ("POST", "/invocations"),
    ("GET", "/ping"),
    ("GET", "/version"),
]
WITH_INPUT = {"/predict", "/explain", "/feedback", "/invocations"}  # the operations a negative case can break
CASES = [(m, p, "positive") for m, p in OPERATIONS] + [
    (m, p, "negative") for m, p in OPERATIONS if p in WITH_INPUT
]


@pytest.fixture(scope="module")
def api_schema(served: tuple[httpx.Client, dict[str, Any]]) -> Any:
    # A body that breaks the document may also be refused for its size (413): a rejection all the same.
    rejections = {"negative_data_rejection": {"expected-statuses": [400, 409, 413, 415, 422]}}
    config = schemathesis.config.SchemathesisConfig.from_dict({"checks": rejections})
    return schemathesis.openapi.from_dict(served[1], config=config)


def test_every_operation_is_fuzzed(api_schema: Any) -> None:
    found = {(r.ok().method.upper(), r.ok().path) for r in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {g}" for m, p, g in CASES])
def test_the_model_server_answers_as_its_openapi_document_says(
    served: tuple[httpx.Client, dict[str, Any]], api_schema: Any, method: str, path: str, mode: str
) -> None:
    negative = mode == "negative"
    generation = schemathesis.GenerationMode.NEGATIVE if negative else schemathesis.GenerationMode.POSITIVE
    strategy = api_schema[path][method].as_strategy(generation_mode=generation)
    checks = [*CHECKS, negative_data_rejection] if negative else CHECKS
    sent: list[int] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def answers_as_documented(case: Any) -> None:
        try:
            response = send(served[0], case)
        except ValueError:  # JSON cannot carry what was generated (NaN): nothing to send
            return
        sent.append(response.status_code)
        case.validate_response(response, checks=checks)

    answers_as_documented()
    assert sent, "no request was sent"


def test_the_document_describes_bodies_errors_and_metrics(
    served: tuple[httpx.Client, dict[str, Any]],
) -> None:
    paths = served[1]["paths"]
    predict = paths["/predict"]["post"]
    body = predict["requestBody"]["content"]
    assert set(body) == {"application/json", ARROW_STREAM}
    shapes = body["application/json"]["schema"]["oneOf"]
    record = shapes[0]["properties"]["records"]["items"]
    assert (
        record["required"] == ["dep_delay", "distance", "carrier"] and record["additionalProperties"] is False
    )
    assert record["properties"]["dep_delay"]["type"] == ["number", "null"]
    assert record["properties"]["distance"]["type"] == "integer"
    assert set(shapes[1]["properties"]["columns"]["properties"]) == {"dep_delay", "distance", "carrier"}
    assert {"200", "400", "413", "415", "422", "500", "503"} <= set(predict["responses"])
    error = predict["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
    assert error == "#/components/schemas/ErrorOut"
    assert set(predict["responses"]["200"]["content"]) == {"application/json", ARROW_STREAM}
    assert {p["name"] for p in predict["parameters"]} == {"proba"}
    assert set(paths["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    assert "202" in paths["/feedback"]["post"]["responses"]
    assert "requestBody" in paths["/feedback"]["post"]
