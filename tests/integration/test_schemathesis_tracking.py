"""Schemathesis against the tracking server's OpenAPI document, on SQLite and on PostgreSQL.

Every operation gets generated requests (valid and not); each answer must not be a 5xx, must use a
documented status and content type, and its body must match the documented schema. Bounded so the
whole run stays around a minute on two cores: ``SHIPYARD_FUZZ_EXAMPLES`` (default 6) examples per
operation and backend, and a time budget per backend; raise the variable for a deeper search.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shipyard.config import load_settings
from shipyard.entities import LogBatch, RunCreate
from shipyard.server import create_app
from shipyard.server.app import app_state

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("SHIPYARD_FUZZ_EXAMPLES", "6"))
BUDGET_S = 25.0 * max(1.0, EXAMPLES / 6)  # per backend
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(params=["sqlite", "postgresql"])
def tracking_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fuzz.db'}"
    else:
        yield str(request.getfixturevalue("pg_uri"))


def _seed(app: Any) -> None:
    """A run, an experiment and a metric, so generated ids sometimes hit something real."""
    store = app_state(app).store
    store.create_run(RunCreate("fuzzrun", "fuzz", "", 1, "u", params={"p": "1"}))
    store.log_batch("fuzzrun", LogBatch(metrics=[("m", 0.5, 0, 1)]))


def test_the_tracking_api_answers_as_documented(tracking_uri: str, tmp_path: Path) -> None:
    settings_ = load_settings(
        tracking_uri=tracking_uri, artifact_uri=str(tmp_path / "artifacts"), home=str(tmp_path / "home")
    )
    app = create_app(settings_)
    _seed(app)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    deadline = time.monotonic() + BUDGET_S
    failures: list[str] = []
    statuses: list[int] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    for operation in operations:
        if time.monotonic() > deadline:
            break

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            statuses.append(case.call_and_validate(checks=CHECKS).status_code)

        try:
            run()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - every operation's failures, reported together
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
    assert len(statuses) >= len(operations)  # every operation was called (none skipped by the budget)
    assert any(200 <= s < 300 for s in statuses) and any(400 <= s < 500 for s in statuses)
