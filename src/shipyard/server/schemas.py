"""Request and response bodies of the REST API (pydantic models; they also feed ``/openapi.json``).

Floats that may be NaN or infinite (metric values) travel as JSON numbers when
finite and as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``
otherwise: JSON has no literal for them. :data:`WireFloat` decodes and encodes
that convention with :mod:`shipyard.wire.floats`, which the REST client uses too.

Response models that mirror an entity of ``shipyard.entities`` field for field are built from it
(:class:`RunOut` is the ``Run`` dataclass, validated by pydantic, with wire floats for metrics); the
others are kept in step by ``tests/unit/server/test_schemas_in_step.py``. The error shape lives in
``shipyard.wire`` with the handlers that send it.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import orjson
from fastapi import Path
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from shipyard.bounds import INT32_MAX, INT64_MAX, INT64_MIN
from shipyard.entities import MAX_KEY_LENGTH, Artifact, Experiment, MetricHistory, Run, RunStatus, RunView
from shipyard.wire.floats import decode_float, encode_float

__all__ = [
    "ArtifactIn",
    "ArtifactList",
    "ArtifactOut",
    "ArtifactsIn",
    "AuditList",
    "BlobOut",
    "ContractIn",
    "ContractList",
    "ContractOut",
    "CountOut",
    "DatasetUseIn",
    "DatasetUseList",
    "DatasetUseOut",
    "DatasetVersionIn",
    "DatasetVersionList",
    "DatasetVersionOut",
    "DigestsIn",
    "DigestsOut",
    "ExperimentIn",
    "ExperimentList",
    "ExperimentOut",
    "GcIn",
    "GcOut",
    "HealthOut",
    "InfoOut",
    "LogBatchIn",
    "MetricColumns",
    "MetricHistoryOut",
    "PurgeIn",
    "PurgeOut",
    "RunCreateIn",
    "RunDeletionIn",
    "RunIdsIn",
    "RunIdsOut",
    "RunOut",
    "RunPageOut",
    "RunUpdateIn",
    "SearchRunsIn",
    "ValidateIn",
    "WireFloat",
]

WireFloat = Annotated[
    float,
    BeforeValidator(decode_float),
    Field(strict=True),
    PlainSerializer(encode_float, return_type=float | str, when_used="json"),
]
"""A float on the wire: a JSON number, or ``"NaN"`` / ``"Infinity"`` / ``"-Infinity"``."""

Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY_LENGTH)]
"""A metric/param/tag key or a name: non-empty, at most ``MAX_KEY_LENGTH`` characters."""
ShortText = Annotated[str, Field(max_length=MAX_KEY_LENGTH)]
"""A user or a run name: at most ``MAX_KEY_LENGTH`` characters, may be empty."""
RunId = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")]
Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]

# Every integer a request carries is bounded by the store column it lands in (shipyard.bounds), and
# strict: JSON ``false`` or ``1.0`` is not an integer. tests/unit/server/test_integer_bounds.py walks
# the OpenAPI document to keep it so.
Millis = Annotated[int, Field(strict=True, ge=0, le=INT64_MAX)]
"""Epoch milliseconds (a ``BigInteger`` column)."""
Count = Annotated[int, Field(strict=True, ge=0, le=INT64_MAX)]
"""A size in bytes or a row count (a ``BigInteger`` column)."""
Step = Annotated[int, Field(strict=True, ge=INT64_MIN, le=INT64_MAX)]
"""A metric step (stored as 64-bit integers)."""
Int32Count = Annotated[int, Field(strict=True, ge=0, le=INT32_MAX)]
"""A small count or an id (an ``Integer`` column): experiment ids, column counts."""
Version = Annotated[int, Field(strict=True, ge=1, le=INT32_MAX)]
"""A version number (an ``Integer`` column)."""
VersionPath = Annotated[int, Path(ge=1, le=INT32_MAX, description="A version number")]
"""A version number in a URL path."""


class _In(BaseModel):
    """Request bodies refuse unknown fields: a typo should fail loudly, not be ignored."""

    model_config = ConfigDict(extra="forbid")


# -- experiments -------------------------------------------------------------------------------
class ExperimentIn(_In):
    name: Key
    description: str = ""


class ExperimentOut(BaseModel):
    id: int
    name: str
    created_at: int
    description: str = ""
    deleted: bool = False
    updated_at: int | None = None

    @classmethod
    def of(cls, exp: Experiment) -> ExperimentOut:
        return cls(
            id=exp.id,
            name=exp.name,
            created_at=exp.created_at,
            description=exp.description,
            deleted=exp.deleted,
            updated_at=exp.updated_at,
        )


class ExperimentList(BaseModel):
    experiments: list[ExperimentOut]


# -- runs --------------------------------------------------------------------------------------
class RunCreateIn(_In):
    """The fields of ``shipyard.entities.RunCreate``; creating an existing run id returns that run."""

    run_id: RunId
    experiment_name: Key
    name: ShortText = ""
    start_time: Millis
    user: ShortText = ""
    source: str = ""
    parent_run_id: RunId | None = None
    params: dict[Key, str] = Field(default_factory=dict)
    tags: dict[Key, str] = Field(default_factory=dict)


@pydantic_dataclass
class RunOut(Run):
    """A run on the wire: the fields of ``shipyard.entities.Run``, metrics as :data:`WireFloat`."""

    metrics: dict[str, WireFloat] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, run: Run) -> RunOut:
        return cls(**vars(run))


class MetricColumns(_In):
    """Metric points in columns: point ``i`` is ``(keys[i], values[i], steps[i], timestamps[i])``."""

    keys: list[Key] = Field(default_factory=list)
    values: list[WireFloat] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    timestamps: list[Millis] = Field(default_factory=list)

    @model_validator(mode="after")
    def _same_lengths(self) -> MetricColumns:
        sizes = {len(self.keys), len(self.values), len(self.steps), len(self.timestamps)}
        if len(sizes) > 1:
            raise ValueError(
                f"metric columns must have equal lengths, got keys={len(self.keys)} "
                f"values={len(self.values)} steps={len(self.steps)} timestamps={len(self.timestamps)}"
            )
        return self

    def rows(self) -> list[tuple[str, float, int, int]]:
        return list(zip(self.keys, self.values, self.steps, self.timestamps, strict=True))


class LogBatchIn(_In):
    """One batch of writes for a run; a ``batch_id`` seen before makes the call a no-op."""

    batch_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    params: dict[Key, str] = Field(default_factory=dict)
    tags: dict[Key, str] = Field(default_factory=dict)
    metrics: MetricColumns = Field(default_factory=MetricColumns)


class MetricHistoryOut(BaseModel):
    key: str
    steps: list[int]
    timestamps: list[int]
    values: list[WireFloat]

    @classmethod
    def of(cls, history: MetricHistory) -> MetricHistoryOut:
        return cls.model_construct(
            key=history.key, steps=history.steps, timestamps=history.timestamps, values=history.values
        )


class SearchRunsIn(_In):
    experiment_ids: list[Int32Count] | None = None
    filter: Annotated[str, Field(max_length=100_000)] | None = Field(
        default=None, examples=["metrics.auc > 0.9 and params.model = 'rf'"]
    )
    order_by: Annotated[list[str], Field(max_length=100)] | None = Field(
        default=None, examples=[["metrics.auc desc"]]
    )
    limit: Annotated[int, Field(strict=True, ge=1, le=INT32_MAX)] = 1000
    page_token: Annotated[str, Field(max_length=1000)] | None = None
    columns: list[str] | None = None
    view: RunView = Field(
        default=RunView.ACTIVE,
        description="Which runs are listed: `active` ones, `deleted` ones (not purged yet) or `all`.",
    )


class RunPageOut(BaseModel):
    runs: list[RunOut]
    next_page_token: str | None = None

    @staticmethod
    def json_of(runs: list[Run], next_page_token: str | None) -> bytes:
        """The JSON of ``RunPageOut(runs=[RunOut.of(r) …])``, written straight from the entities.

        A page of 100 runs costs about a tenth of what validating it into ``RunOut`` models and
        letting FastAPI validate and dump those again does (the search route returns these bytes;
        ``tests/unit/server/test_schemas_in_step.py`` checks both give the same JSON).
        """
        page = [{**r.to_dict(), "metrics": {k: encode_float(v) for k, v in r.metrics.items()}} for r in runs]
        return orjson.dumps({"runs": page, "next_page_token": next_page_token})


class RunIdsIn(_In):
    run_ids: list[Key]


class RunDeletionIn(RunIdsIn):
    """Runs to delete or restore, with who does it and why (audited with the change)."""

    actor: Annotated[str, Field(max_length=255)] = ""
    reason: str = ""


class CountOut(BaseModel):
    count: int


class RunIdsOut(BaseModel):
    run_ids: list[str]


# -- artifacts and blobs -----------------------------------------------------------------------
class ArtifactIn(_In):
    path: Annotated[str, Field(min_length=1, max_length=1024)]
    digest: Digest
    size: Count
    created_at: Millis = 0


class ArtifactsIn(_In):
    artifacts: list[ArtifactIn]


class RunUpdateIn(_In):
    """A status change; ending a run can carry its last batch and artifacts (one request, one transaction).

    ``batch`` is written as ``POST /runs/{id}/batch`` would write it (a ``batch_id`` seen before is
    skipped), ``artifacts`` as ``POST /runs/{id}/artifacts`` records them, and the status last; all or
    nothing. ``compact: false`` skips merging the run's metric chunks (the client knows it logged one
    batch only). Fields added in 0.1 after the first release: an older server refuses them (422), and
    the REST client then sends the three requests separately.
    """

    status: RunStatus
    end_time: Millis | None = None
    batch: LogBatchIn | None = None
    artifacts: list[ArtifactIn] = Field(default_factory=list)
    compact: bool = True


class RunRecordIn(RunCreateIn):
    """A run recorded whole, already ended: its create fields, end status, last batch and artifacts.

    Written in one transaction (``Store.log_run``). A run id that exists already is left as it is
    (the request is safe to retry). The SDK sends this for a run that ends before its start was sent.
    """

    status: RunStatus
    end_time: Millis
    batch: LogBatchIn | None = None
    artifacts: list[ArtifactIn] = Field(default_factory=list)


class ArtifactOut(BaseModel):
    path: str
    digest: str
    size: int
    created_at: int = 0

    @classmethod
    def of(cls, artifact: Artifact) -> ArtifactOut:
        return cls(
            path=artifact.path, digest=artifact.digest, size=artifact.size, created_at=artifact.created_at
        )


class ArtifactList(BaseModel):
    artifacts: list[ArtifactOut]


class BlobOut(BaseModel):
    digest: str
    size: int


# -- admin -------------------------------------------------------------------------------------
class GcIn(_In):
    grace_seconds: Annotated[float, Field(ge=0)] = 3600.0
    batch_size: Annotated[int, Field(strict=True, ge=1, le=10_000)] = 1000


class GcOut(BaseModel):
    runs_purged: int
    blobs_deleted: int
    blobs_kept: int
    temp_files_removed: int


class PurgeIn(_In):
    batch_size: Annotated[int, Field(strict=True, ge=1, le=10_000)] = 500


class PurgeOut(BaseModel):
    runs_purged: int


class DigestsIn(_In):
    digests: list[Digest]


class DigestsOut(BaseModel):
    digests: list[str]


class HealthOut(BaseModel):
    status: str = "ok"


class InfoOut(BaseModel):
    shipyard_version: str
    schema_version: str
    tracking_uri: str
    artifact_uri: str
    max_request_bytes: int


class DatasetVersionIn(_In):
    """A dataset version to record; the Parquet bytes are uploaded first as a blob."""

    name: Key
    digest: Digest
    rows: Count
    num_columns: Int32Count
    schema_: list[tuple[str, str]] = Field(alias="schema")
    size: Count
    source: str = ""
    created_by: ShortText = ""
    profile_digest: Digest | None = None
    contract_digest: Digest | None = None


class DatasetVersionOut(BaseModel):
    name: str
    version: int
    digest: str
    rows: int
    num_columns: int
    # [name, type] pairs as 2-item lists: schemathesis mis-reads prefixItems in response schemas.
    schema_: list[Annotated[list[str], Field(min_length=2, max_length=2)]] = Field(alias="schema")
    size: int
    source: str
    created_by: str
    created_at: int
    profile_digest: str | None = None
    contract_digest: str | None = None

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class DatasetVersionList(BaseModel):
    versions: list[DatasetVersionOut]


class DatasetUseIn(_In):
    name: Key
    version: Version
    role: Annotated[str, Field(min_length=1, max_length=64)] = "train"


class DatasetUseOut(BaseModel):
    run_id: str
    role: str
    dataset: DatasetVersionOut


class DatasetUseList(BaseModel):
    uses: list[DatasetUseOut]


class ContractIn(_In):
    name: Key
    yaml: Annotated[str, Field(min_length=1, max_length=1_000_000)]
    digest: Digest
    created_by: ShortText = ""


class ContractOut(BaseModel):
    name: str
    version: int
    digest: str
    yaml: str
    created_by: str
    created_at: int


class ContractList(BaseModel):
    contracts: list[ContractOut]


class ValidateIn(_In):
    """Validate a stored dataset version against a registered contract or one given as YAML."""

    dataset: Annotated[str, Field(min_length=1, max_length=300, examples=["flights@v2"])]
    contract: Annotated[str, Field(min_length=1, max_length=300, examples=["flights@latest"])] | None = None
    contract_yaml: Annotated[str, Field(min_length=1, max_length=1_000_000)] | None = None

    @model_validator(mode="after")
    def _one_contract(self) -> ValidateIn:
        if (self.contract is None) == (self.contract_yaml is None):
            raise ValueError("give exactly one of 'contract' (a registered name@ref) or 'contract_yaml'")
        return self


class AuditList(BaseModel):
    entries: list[dict[str, Any]]
