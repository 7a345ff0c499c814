"""Bad input never reaches a 500: every error answers the one JSON shape with a code and a message."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_harness import Borrowed, SyncASGITransport, make_settings

from shipyard.errors import ConfigError, DigestMismatch, RunNotFound, error_class_for_code
from shipyard.server import create_app
from shipyard.server.app import app_state
from shipyard.server.state import redact_uri
from shipyard.wire.handlers import error_response

API = "/api/v1"
ZERO = "0" * 64


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def run_id(transport: SyncASGITransport) -> str:
    with httpx.Client(transport=Borrowed(transport), base_url="http://t") as http:
        rid = uuid.uuid4().hex
        http.post(f"{API}/runs", json={"run_id": rid, "experiment_name": "errors", "start_time": 1})
    return rid


def test_error_shape_is_pinned() -> None:
    response = error_response(RunNotFound("Run 'x' not found", details={"run_id": "x"}))
    assert response.status_code == 404
    assert response.body == (
        b'{"error":{"code":"run_not_found","message":"Run \'x\' not found","details":{"run_id":"x"}}}'
    )


def test_malformed_json_is_400_with_position(http: httpx.Client, run_id: str) -> None:
    response = http.post(f"{API}/runs/{run_id}/batch", content=b'{"params": {', headers=_JSON)
    error = assert_error(response, 400, "invalid_json")
    assert "position" in error["message"]  # type: ignore[operator]


def test_missing_fields_are_422_naming_each_field(http: httpx.Client) -> None:
    error = assert_error(http.post(f"{API}/runs", json={"experiment_name": "e"}), 422, "invalid_request")
    assert "run_id is required" in error["message"]  # type: ignore[operator]
    assert "start_time is required" in error["message"]  # type: ignore[operator]
    fields = [e["field"] for e in error["details"]["errors"]]  # type: ignore[index]
    assert fields == ["run_id", "start_time"]


def test_missing_body_is_422(http: httpx.Client) -> None:
    error = assert_error(http.post(f"{API}/runs"), 422, "invalid_request")
    assert "request body is required" in error["message"]  # type: ignore[operator]


def test_unknown_field_is_refused(http: httpx.Client, run_id: str) -> None:
    error = assert_error(
        http.post(f"{API}/runs/{run_id}/batch", json={"metircs": {}}), 422, "invalid_request"
    )
    assert "metircs" in error["message"]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/runs/nope", "run_not_found"),
        ("/runs/nope/metrics/history?key=m", "run_not_found"),
        ("/runs/nope/artifacts", "run_not_found"),
        ("/experiments/999999", "experiment_not_found"),
        ("/experiments/by-name?name=nope", "experiment_not_found"),
        (f"/blobs/{ZERO}", "blob_not_found"),
    ],
)
def test_unknown_things_are_404(http: httpx.Client, path: str, code: str) -> None:
    assert_error(http.get(API + path), 404, code)


def test_writes_to_an_unknown_run_are_404(http: httpx.Client) -> None:
    metrics = {"keys": ["m"], "values": [1.0], "steps": [0], "timestamps": [1]}
    assert_error(http.post(f"{API}/runs/nope/batch", json={"metrics": metrics}), 404, "run_not_found")
    assert_error(http.patch(f"{API}/runs/nope", json={"status": "finished"}), 404, "run_not_found")
    assert_error(http.post(f"{API}/runs/delete", json={"run_ids": ["nope"]}), 404, "run_not_found")


def test_unknown_artifact_is_404(http: httpx.Client, run_id: str) -> None:
    assert_error(http.get(f"{API}/runs/{run_id}/artifacts/missing.bin"), 404, "artifact_not_found")


def test_bad_filter_is_400_with_position(http: httpx.Client) -> None:
    error = assert_error(
        http.post(f"{API}/runs/search", json={"filter": "metrics.auc >> 1"}), 400, "invalid_filter"
    )
    assert error["details"]["position"] == 13  # type: ignore[index]
    assert "position 13" in error["message"]  # type: ignore[operator]


def test_bad_order_by_and_page_token_are_400(http: httpx.Client) -> None:
    assert_error(http.post(f"{API}/runs/search", json={"order_by": ["metrics."]}), 400, "invalid_filter")
    assert_error(http.post(f"{API}/runs/search", json={"page_token": "%%%"}), 400, "invalid_input")


@pytest.mark.parametrize("value", ["abc", "1.5", True, None, [1], {"v": 1}, "nan"])
def test_non_numeric_metric_value_is_422(http: httpx.Client, run_id: str, value: object) -> None:
    metrics = {"keys": ["m"], "values": [value], "steps": [0], "timestamps": [1]}
    error = assert_error(
        http.post(f"{API}/runs/{run_id}/batch", json={"metrics": metrics}), 422, "invalid_request"
    )
    assert "metrics.values[0]" in error["message"]  # type: ignore[operator]


def test_metric_columns_of_different_lengths_are_422(http: httpx.Client, run_id: str) -> None:
    metrics = {"keys": ["m", "m"], "values": [1.0], "steps": [0, 1], "timestamps": [1, 2]}
    error = assert_error(
        http.post(f"{API}/runs/{run_id}/batch", json={"metrics": metrics}), 422, "invalid_request"
    )
    assert "equal lengths" in error["message"]  # type: ignore[operator]


def test_bad_status_and_bad_run_id_are_422(http: httpx.Client, run_id: str) -> None:
    assert_error(http.patch(f"{API}/runs/{run_id}", json={"status": "done"}), 422, "invalid_request")
    body = {"run_id": "../x", "experiment_name": "e", "start_time": 1}
    assert_error(http.post(f"{API}/runs", json=body), 422, "invalid_request")
    body = {"run_id": "x" * 33, "experiment_name": "e", "start_time": 1}
    assert_error(http.post(f"{API}/runs", json=body), 422, "invalid_request")


def test_changing_a_param_is_400(http: httpx.Client, run_id: str) -> None:
    http.post(f"{API}/runs/{run_id}/batch", json={"params": {"p": "1"}})
    error = assert_error(
        http.post(f"{API}/runs/{run_id}/batch", json={"params": {"p": "2"}}), 400, "invalid_input"
    )
    assert "immutable" in error["message"]  # type: ignore[operator]


def test_duplicate_experiment_is_409(http: httpx.Client) -> None:
    name = f"dup-{uuid.uuid4().hex[:6]}"
    http.post(f"{API}/experiments", json={"name": name})
    assert_error(http.post(f"{API}/experiments", json={"name": name}), 409, "already_exists")


def test_oversized_body_is_413_by_content_length(http: httpx.Client, run_id: str) -> None:
    big = b'{"params": {"p": "' + b"x" * (300 * 1024) + b'"}}'
    error = assert_error(
        http.post(f"{API}/runs/{run_id}/batch", content=big, headers=_JSON), 413, "payload_too_large"
    )
    assert error["details"]["limit"] == 256 * 1024  # type: ignore[index]


def test_oversized_chunked_body_is_413_while_streaming(http: httpx.Client, run_id: str) -> None:
    chunks: Iterator[bytes] = iter([b'{"params": {"p": "'] + [b"x" * 65536] * 5 + [b'"}}'])
    response = http.post(f"{API}/runs/{run_id}/batch", content=chunks, headers=_JSON)
    assert_error(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    "path",
    ["%2e%2e/%2e%2e/etc/passwd", "/etc/passwd", "a/%2E%2E/%2E%2E/b", "%2e%2e", "a%5Cb", "a%00b"],
)
def test_path_traversal_is_400(http: httpx.Client, run_id: str, path: str) -> None:
    assert_error(http.get(f"{API}/runs/{run_id}/artifacts/{path}"), 400, "unsafe_path")


def test_recording_an_unsafe_artifact_path_is_400(http: httpx.Client, run_id: str) -> None:
    row = {"path": "../../evil", "digest": ZERO, "size": 1}
    assert_error(http.post(f"{API}/runs/{run_id}/artifacts", json={"artifacts": [row]}), 400, "unsafe_path")
    row = {"path": "ok.txt", "digest": "not-a-digest", "size": 1}
    assert_error(
        http.post(f"{API}/runs/{run_id}/artifacts", json={"artifacts": [row]}), 422, "invalid_request"
    )


def test_digest_mismatch_on_put_is_400(http: httpx.Client) -> None:
    error = assert_error(http.put(f"{API}/blobs/{ZERO}", content=b"hello"), 400, "digest_mismatch")
    assert error["details"]["digest"] == ZERO  # type: ignore[index]
    assert error_class_for_code("digest_mismatch") is DigestMismatch


def test_invalid_digest_in_url_is_400(http: httpx.Client) -> None:
    assert_error(http.put(f"{API}/blobs/XYZ", content=b"x"), 400, "invalid_input")
    assert_error(http.get(f"{API}/blobs/XYZ"), 400, "invalid_input")


def test_unknown_route_and_method_are_json(http: httpx.Client) -> None:
    assert_error(http.get(f"{API}/nothing/here"), 404, "not_found")
    assert_error(http.get("/nothing/here"), 404, "not_found")  # "/" is the web UI
    assert_error(http.delete(f"{API}/experiments"), 405, "method_not_allowed")


def test_wrong_type_in_path_is_422(http: httpx.Client) -> None:
    error = assert_error(http.get(f"{API}/experiments/abc"), 422, "invalid_request")
    assert "experiment_id" in error["message"]  # type: ignore[operator]


def test_unexpected_exception_is_500_internal_error(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path))
    store = app_state(app).store

    def boom() -> list[object]:
        raise RuntimeError("kaboom")

    store.list_experiments = boom  # type: ignore[method-assign,assignment]
    transport = SyncASGITransport(app, raise_app_exceptions=False)
    with httpx.Client(transport=transport, base_url="http://t") as http:
        error = assert_error(http.get(f"{API}/experiments"), 500, "internal_error")
    assert "RuntimeError" in error["message"]  # type: ignore[operator]
    assert "kaboom" not in error["message"]  # type: ignore[operator]


def test_server_refuses_an_http_tracking_uri(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a SQL tracking URI"):
        create_app(make_settings(tmp_path, tracking_uri="http://user:pw@elsewhere:5000"))


def test_redact_uri_hides_passwords_only() -> None:
    assert redact_uri("postgresql+psycopg://u:secret@h:5432/db") == "postgresql+psycopg://u:***@h:5432/db"
    assert redact_uri("s3://key:sec@bucket/x") == "s3://key:***@bucket/x"
    assert redact_uri("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"
    assert redact_uri("/plain/folder") == "/plain/folder"


_JSON = {"content-type": "application/json"}
