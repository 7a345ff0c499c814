"""The Shipyard exception tree.

Every error a user can see is a ``ShipyardError``. Each class carries a stable
``code`` (machine-readable, used in REST error bodies) and the ``http_status``
the server answers with. The server maps them to one JSON shape in one place
(``shipyard.server.errors``)::

    ShipyardError                       500 internal_error
    ├── InvalidInput                    400 invalid_input
    │   ├── FilterSyntaxError           400 invalid_filter
    │   ├── InvalidMetricValue          400 invalid_metric_value
    │   ├── SignatureMismatch           422 signature_mismatch
    │   ├── UnsafePath                  400 unsafe_path
    │   └── ValidationFailed            400 validation_failed
    │       └── StepContractViolation   400 step_contract_violation
    ├── NotFound                        404 not_found
    │   ├── ExperimentNotFound          404 experiment_not_found
    │   ├── RunNotFound                 404 run_not_found
    │   ├── ModelNotFound               404 model_not_found
    │   ├── ArtifactNotFound            404 artifact_not_found
    │   └── BlobNotFound                404 blob_not_found
    ├── PermissionDenied                403 permission_denied
    │   └── UnsafeModel                 403 unsafe_model
    ├── Unauthenticated                 401 unauthenticated
    ├── RateLimited                     429 rate_limited
    ├── AlreadyExists                   409 already_exists
    ├── InvalidState                    409 invalid_state
    ├── PayloadTooLarge                 413 payload_too_large
    ├── IntegrityError                  500 integrity_error
    │   └── DigestMismatch              500 digest_mismatch
    ├── SchemaError                     500 schema_error
    │   └── SchemaTooNew                500 schema_too_new
    ├── ConfigError                     500 config_error
    ├── MissingExtra                    500 missing_extra
    ├── StoreUnavailable                503 store_unavailable
    │   ├── ServerUnreachable           503 server_unreachable
    │   ├── StorageFull                 503 storage_full
    │   └── StorageReadOnly             503 storage_read_only
    ├── PipelineFailed                  500 pipeline_failed
    └── NotReady                        503 not_ready
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AlreadyExists",
    "ArtifactNotFound",
    "BlobNotFound",
    "ConfigError",
    "DigestMismatch",
    "ExperimentNotFound",
    "FilterSyntaxError",
    "IntegrityError",
    "InvalidInput",
    "InvalidMetricValue",
    "InvalidState",
    "MissingExtra",
    "ModelNotFound",
    "NotFound",
    "NotReady",
    "PayloadTooLarge",
    "PermissionDenied",
    "PipelineFailed",
    "RateLimited",
    "RunNotFound",
    "SchemaError",
    "SchemaTooNew",
    "ServerUnreachable",
    "SignatureMismatch",
    "ShipyardError",
    "StepContractViolation",
    "StorageFull",
    "StorageReadOnly",
    "StoreUnavailable",
    "Unauthenticated",
    "UnsafeModel",
    "UnsafePath",
    "ValidationFailed",
    "error_class_for_code",
]


class ShipyardError(Exception):
    """Root of every error Shipyard raises on purpose."""

    code: ClassVar[str] = "internal_error"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.remote_code = ""  # the code of the server answer it was raised from (REST clients)
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body the server sends: ``{"error": {"code", "message", "details"}}``."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidInput(ShipyardError):
    code = "invalid_input"
    http_status = 400


class FilterSyntaxError(InvalidInput):
    """A search filter or order-by clause that does not parse; ``position`` is 0-based."""

    code = "invalid_filter"

    def __init__(self, message: str, *, text: str, position: int) -> None:
        caret = f"\n  {text}\n  {' ' * position}^"
        super().__init__(
            f"{message} at position {position}{caret}",
            details={"text": text, "position": position, "reason": message},
        )
        self.text = text
        self.position = position
        self.reason = message


class InvalidMetricValue(InvalidInput):
    code = "invalid_metric_value"


class UnsafePath(InvalidInput):
    code = "unsafe_path"


class SignatureMismatch(InvalidInput):
    """Model input that does not match the model's signature; ``details["problems"]`` names each column."""

    code = "signature_mismatch"
    http_status = 422


class ValidationFailed(InvalidInput):
    """Data broke its contract (``validate(..., strict=True)``); ``.report`` lists every violation."""

    code = "validation_failed"

    def __init__(self, report: Any) -> None:
        super().__init__(str(report), details=report.to_dict())
        self.report = report


class StepContractViolation(ValidationFailed):
    """A pipeline step's input or output broke its contract; the pipeline stopped before the next step.

    ``.report`` is the validation report, ``.step`` the step, ``.boundary`` the input name or
    ``"return"``, ``.run_id`` the step's run (its ``contracts/`` artifact holds the report too).
    """

    code = "step_contract_violation"

    def __init__(self, report: Any, *, step: str, boundary: str, run_id: str) -> None:
        where = "its output" if boundary == "return" else f"input '{boundary}'"
        ShipyardError.__init__(
            self,
            f"Step '{step}' stopped the pipeline: {where} broke its contract (step run {run_id}; "
            f"fix the data or the contract, then re-run: finished steps come from the cache)\n{report}",
            details={"step": step, "boundary": boundary, "run_id": run_id, "report": report.to_dict()},
        )
        self.report = report
        self.step = step
        self.boundary = boundary
        self.run_id = run_id


class NotFound(ShipyardError):
    code = "not_found"
    http_status = 404


class ExperimentNotFound(NotFound):
    code = "experiment_not_found"


class RunNotFound(NotFound):
    code = "run_not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class ArtifactNotFound(NotFound):
    code = "artifact_not_found"


class BlobNotFound(NotFound):
    code = "blob_not_found"


class PermissionDenied(ShipyardError):
    """The actor may not do this (four-eyes rule, missing role, untrusted model)."""

    code = "permission_denied"
    http_status = 403


class Unauthenticated(ShipyardError):
    """No valid credential: a missing, malformed, unknown, expired or revoked token (HTTP 401)."""

    code = "unauthenticated"
    http_status = 401


class RateLimited(ShipyardError):
    """Too many failed sign-ins from one client; retry after the time the answer names (HTTP 429)."""

    code = "rate_limited"
    http_status = 429


class UnsafeModel(PermissionDenied):
    """A model artifact refused at load: it would import code outside the allowlist."""

    code = "unsafe_model"


class AlreadyExists(ShipyardError):
    code = "already_exists"
    http_status = 409


class InvalidState(ShipyardError):
    code = "invalid_state"
    http_status = 409


class PayloadTooLarge(ShipyardError):
    code = "payload_too_large"
    http_status = 413


class IntegrityError(ShipyardError):
    code = "integrity_error"


class DigestMismatch(IntegrityError):
    code = "digest_mismatch"


class SchemaError(ShipyardError):
    code = "schema_error"


class SchemaTooNew(SchemaError):
    code = "schema_too_new"


class ConfigError(ShipyardError):
    code = "config_error"


class MissingExtra(ShipyardError):
    code = "missing_extra"


class StoreUnavailable(ShipyardError):
    code = "store_unavailable"
    http_status = 503


class ServerUnreachable(StoreUnavailable):
    """No answer from a Shipyard server (connection refused or reset, timeout, a gateway's 502-504).

    The only failure the REST client spools writes for: a server that answers with an error
    refused the write, and that error is raised instead.
    """

    code = "server_unreachable"


class StorageFull(StoreUnavailable):
    """The disk (or quota) under an artifact or metadata store is full (``ENOSPC``, ``EDQUOT``)."""

    code = "storage_full"


class StorageReadOnly(StoreUnavailable):
    """The file system under an artifact or metadata store is read-only (``EROFS``) or not writable."""

    code = "storage_read_only"


class PipelineFailed(ShipyardError):
    """A pipeline step failed (after its retries); its downstream steps were skipped.

    ``details`` names the pipeline run, the failed step, its run and the error; the step run holds
    the full traceback as its ``error/traceback.txt`` artifact.
    """

    code = "pipeline_failed"


class NotReady(ShipyardError):
    """A model server's variant is still loading its model (``GET /ready`` says when it is done)."""

    code = "not_ready"
    http_status = 503


def _all_subclasses(cls: type[ShipyardError]) -> list[type[ShipyardError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_all_subclasses(sub))
    return out


def error_class_for_code(code: str) -> type[ShipyardError]:
    """Map a REST error ``code`` back to its exception class (used by the REST client)."""
    for cls in _all_subclasses(ShipyardError):
        if cls.code == code:
            # These two are built from richer objects than a JSON body: rebuild as their parent.
            rebuilt_as_parent = (FilterSyntaxError, ValidationFailed, StepContractViolation)
            return InvalidInput if cls in rebuilt_as_parent else cls
    return ShipyardError
