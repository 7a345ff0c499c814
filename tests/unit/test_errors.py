"""The exception tree: stable codes, HTTP statuses, one JSON error shape, code -> class mapping."""

from __future__ import annotations

import re

import pytest

from shipyard import errors
from shipyard.errors import (
    FilterSyntaxError,
    InvalidInput,
    RunNotFound,
    ShipyardError,
    StepContractViolation,
    ValidationFailed,
    error_class_for_code,
)


def _all_error_classes() -> list[type[ShipyardError]]:
    found: list[type[ShipyardError]] = []
    stack = [ShipyardError]
    while stack:
        cls = stack.pop()
        found.append(cls)
        stack.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: c.__name__)


ERROR_CLASSES = _all_error_classes()


def test_every_exported_error_class_is_in_the_tree() -> None:
    exported = {
        name
        for name in errors.__all__
        if isinstance(getattr(errors, name), type) and issubclass(getattr(errors, name), Exception)
    }
    assert exported == {c.__name__ for c in ERROR_CLASSES}
    assert all(issubclass(getattr(errors, n), ShipyardError) for n in exported)


def test_every_error_class_has_a_unique_code() -> None:
    codes = [c.code for c in ERROR_CLASSES]
    assert len(codes) == len(set(codes)), sorted(codes)
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", c) for c in codes), codes


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_http_status_is_a_client_or_server_error(cls: type[ShipyardError]) -> None:
    assert 400 <= cls.http_status <= 599


@pytest.mark.parametrize(
    "cls",
    [c for c in ERROR_CLASSES if c is not ShipyardError and c.__mro__[1] is not ShipyardError],
    ids=lambda c: c.__name__,
)
def test_grandchildren_answer_with_the_status_of_their_parent(cls: type[ShipyardError]) -> None:
    """Catching ``NotFound`` must mean 404 whatever the subclass (direct children pick their own).

    One refinement is allowed: bad input that parsed but does not fit (a model signature) answers
    422 Unprocessable Content, still a client error of the same family as its parent's 400.
    """
    if cls.__mro__[1] is InvalidInput and cls.http_status == 422:
        return
    assert cls.http_status == cls.__mro__[1].http_status


def test_docstring_tree_matches_the_classes() -> None:
    """The tree drawn in errors.py is documentation users read; it must not drift from the code."""
    doc = errors.__doc__ or ""
    drawn = {
        m.group(1): (int(m.group(2)), m.group(3))
        for m in re.finditer(r"(\w+)\s+(\d{3}) (\w+)\s*$", doc, re.MULTILINE)
    }
    actual = {c.__name__: (c.http_status, c.code) for c in ERROR_CLASSES}
    assert drawn == actual


def test_to_dict_has_the_pinned_json_shape() -> None:
    err = RunNotFound("Run 'abc' not found", details={"run_id": "abc"})
    assert err.to_dict() == {
        "error": {"code": "run_not_found", "message": "Run 'abc' not found", "details": {"run_id": "abc"}}
    }
    assert str(err) == "Run 'abc' not found"


def test_to_dict_details_default_to_an_empty_dict() -> None:
    assert ShipyardError("boom").to_dict() == {
        "error": {"code": "internal_error", "message": "boom", "details": {}}
    }


def test_filter_syntax_error_points_at_the_position_with_a_caret() -> None:
    err = FilterSyntaxError("unexpected token", text="metrics.a >> 1", position=12)
    assert isinstance(err, InvalidInput)
    assert err.position == 12
    assert err.reason == "unexpected token"
    assert err.to_dict()["error"]["details"] == {
        "text": "metrics.a >> 1",
        "position": 12,
        "reason": "unexpected token",
    }
    caret_line = str(err).splitlines()[-1]
    assert caret_line.index("^") - 2 == 12


@pytest.mark.parametrize(
    "cls",
    [c for c in ERROR_CLASSES if c not in (FilterSyntaxError, ValidationFailed, StepContractViolation)],
    ids=lambda c: c.__name__,
)
def test_error_class_for_code_round_trips(cls: type[ShipyardError]) -> None:
    assert error_class_for_code(cls.code) is cls


def test_errors_built_from_a_report_come_back_as_their_parent_class() -> None:
    # ValidationFailed is built from a report object, which a JSON body does not carry.
    rebuilt = error_class_for_code("validation_failed")("bad data", details={"violations": []})
    assert type(rebuilt) is InvalidInput


def test_error_class_for_code_rebuilds_an_error_from_its_json_body() -> None:
    body = RunNotFound("gone", details={"run_id": "r1"}).to_dict()["error"]
    rebuilt = error_class_for_code(body["code"])(body["message"], details=body["details"])
    assert isinstance(rebuilt, RunNotFound)
    assert rebuilt.http_status == 404
    assert rebuilt.details == {"run_id": "r1"}


def test_unknown_code_maps_to_the_root_error() -> None:
    assert error_class_for_code("no_such_code") is ShipyardError
