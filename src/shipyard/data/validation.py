"""Validate a table against a :class:`~shipyard.data.contracts.Contract` and report every violation.

All rule checks are polars expressions evaluated in ONE ``select`` that sums the failure masks; only the
rules that failed are evaluated again, in one more ``select``, to fetch up to five example values and
their row positions. Nothing stops at the first failure.

Large inputs stream (:func:`validate` with a Parquet path, a folder, a dataset version, a pyarrow
Dataset, or ``batch_rows``): the same checks run batch by batch, counts and the first five examples are
accumulated, the newest timestamp is kept, and duplicate keys (``unique``, ``primary_key``) are found by a
:class:`~shipyard.data.duplicates.DuplicateFinder` that spills to hash partitions on disk past a memory
budget. The report is the same as the in-memory path's, violation for violation.

polars is imported at the top of this module on purpose: ``import shipyard`` does not import it.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import polars as pl

from shipyard.data.batches import BATCH_ROWS, Batches, is_in_memory, open_batches
from shipyard.data.contracts import ColumnSpec, Contract, column_type_of, to_polars
from shipyard.data.duplicates import DuplicateFinder
from shipyard.entities import DatasetVersion
from shipyard.errors import ValidationFailed

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from shipyard.tracking import Client

    Validatable: TypeAlias = (
        pl.DataFrame | pl.LazyFrame | pd.DataFrame | pa.Table | str | os.PathLike[str] | DatasetVersion | Any
    )

__all__ = ["BATCH_ROWS", "ValidationFailed", "ValidationReport", "Violation", "validate"]

Severity = Literal["error", "warning"]
_EXAMPLES = 5
_WINDOWS = (16_384, 262_144, None)  # prefixes searched for examples of row-wise rules
_NUMERIC = ("int", "float")
_TEXT = ("string", "category")


@dataclass(frozen=True)
class Violation:
    """One broken rule.

    ``count`` is the number of failing rows (None for rules about the whole table, such as freshness);
    ``examples`` are up to five failing values and ``rows`` their 0-based row positions in the input.
    """

    rule: str
    column: str | None
    severity: Severity
    message: str
    count: int | None = None
    examples: list[Any] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class ValidationReport:
    """The result of :func:`validate`: every violation found, errors and warnings."""

    contract: str
    contract_digest: str
    n_rows: int
    n_columns: int
    violations: list[Violation]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings, such as extra columns, do not count)."""
        return not self.errors

    @property
    def errors(self) -> list[Violation]:
        """The violations of severity ``"error"``."""
        return [v for v in self.violations if v.severity == "error"]

    @property
    def warnings(self) -> list[Violation]:
        """The violations of severity ``"warning"``."""
        return [v for v in self.violations if v.severity == "warning"]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (dates and other values become ISO strings or ``str``)."""
        data = asdict(self)
        data["ok"] = self.ok
        for violation in data["violations"]:
            violation["examples"] = [_jsonable(v) for v in violation["examples"]]
        return data

    def to_frame(self) -> pd.DataFrame:
        """One row per violation as a pandas DataFrame."""
        import pandas as pd

        columns = ["rule", "column", "severity", "count", "examples", "rows", "message"]
        return pd.DataFrame([asdict(v) for v in self.violations], columns=columns)

    def __str__(self) -> str:
        status = "OK" if self.ok else "FAILED"
        head = (
            f"Validation of {self.n_rows:,} rows × {self.n_columns} columns against contract "
            f"{self.contract!r}: {status} ({len(self.errors)} errors, {len(self.warnings)} warnings)"
        )
        lines = [head]
        for v in self.violations:
            where = f"[{v.column}] " if v.column is not None else ""
            lines.append(f"  {v.severity.upper():7} {where}{v.rule}: {v.message}")
            if v.examples:
                pairs = ", ".join(f"row {r}: {e!r}" for r, e in zip(v.rows, v.examples, strict=False))
                lines.append(f"          e.g. {pairs}")
        return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


@dataclass
class _Check:
    """A rule compiled to polars: ``mask`` is True on failing rows; ``values`` is what examples show."""

    rule: str
    column: str | None
    mask: pl.Expr
    values: pl.Expr
    describe: str
    rowwise: bool = True  # False when a row's verdict depends on other rows (duplicates)
    keys: tuple[str, ...] = ()  # for duplicate rules: the key columns (streaming finds them on disk)


def validate(
    data: Validatable,
    contract: Contract,
    strict: bool = False,
    *,
    now: dt.datetime | None = None,
    batch_rows: int | None = None,
    client: Client | None = None,
) -> ValidationReport:
    """Check ``data`` against ``contract`` and report every violation.

    Tables in memory are checked whole unless ``batch_rows`` is given and they are longer. Everything
    else streams in batches of ``batch_rows`` (default :data:`BATCH_ROWS`) with the same report: a
    Parquet file or folder path, a ``pyarrow.parquet.ParquetFile``, a ``pyarrow.dataset.Dataset``, or a
    dataset version (``"flights@v2"`` or a ``DatasetVersion``; its blob is verified into a temporary file).
    Memory then stays about one row group plus one batch, plus at most 64 MB per ``unique`` column or
    primary key (more keys spill to hash partitions on disk).

    Args:
        data: a pandas or polars DataFrame, a pyarrow Table, or one of the streamed inputs above.
        contract: the contract to check against.
        strict: raise :class:`ValidationFailed` (carrying ``.report``) if there is any error.
        now: the time freshness is measured from (default: the current UTC time).
        batch_rows: rows per batch when streaming.
        client: the client whose store holds a dataset reference (default: the current one).

    Example:
        >>> import polars as pl
        >>> c = Contract(name="t", columns=[{"name": "x", "type": "int", "min": 0}])
        >>> report = validate(pl.DataFrame({"x": [3, -1, 5]}), c)
        >>> report.ok, report.violations[0].rule, report.violations[0].rows
        (False, 'range', [1])
        >>> validate(pl.DataFrame({"x": [3, -1, 5]}), c, batch_rows=2) == report
        True
    """
    if is_in_memory(data) and (batch_rows is None or _height(data) <= batch_rows):
        report = _validate_frame(to_polars(data), contract, now)
    else:
        with open_batches(data, BATCH_ROWS if batch_rows is None else batch_rows, client=client) as source:
            report = _validate_batches(source, contract, now)
    if strict and not report.ok:
        raise ValidationFailed(report)
    return report


def _height(data: Any) -> int:
    if isinstance(data, pl.LazyFrame):
        return 0  # collected whole, as before: the plan is not split
    return int(data.num_rows if hasattr(data, "num_rows") else len(data))


def _validate_frame(df: pl.DataFrame, contract: Contract, now: dt.datetime | None) -> ValidationReport:
    """The in-memory path: one select for every rule, one or more for examples."""
    violations = _schema_violations(df, contract)
    checks = _column_checks(df, contract) + _table_checks(df, contract)
    fresh = contract.table.freshness_column
    fresh_expr = [pl.col(fresh).max().alias("__fresh")] if fresh in df.columns else []
    exprs = [c.mask.sum().alias(str(i)) for i, c in enumerate(checks)] + fresh_expr
    row = df.select(exprs).row(0, named=True) if exprs else {}
    failing = [(c, int(row[str(i)])) for i, c in enumerate(checks) if row[str(i)]]
    violations += _with_examples(df, failing)
    violations += _row_count_violations(df.height, contract)
    if fresh is not None and fresh in df.columns:
        violations += _freshness_violations(row["__fresh"], contract, now)
    return ValidationReport(contract.name, contract.digest, df.height, df.width, violations)


@dataclass
class _Tally:
    """What the streaming path accumulates for one rule: failing rows, first examples."""

    count: int = 0
    rows: list[int] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)


def _validate_batches(source: Batches, contract: Contract, now: dt.datetime | None) -> ValidationReport:
    """The streaming path: per batch, one select counts every row-wise rule and takes missing examples."""
    head = source.schema
    checks = _column_checks(head, contract) + _table_checks(head, contract)
    tallies = [_Tally() for _ in checks]
    finders = {
        i: DuplicateFinder(list(c.keys), unique_column=c.rule == "unique", expected_rows=source.rows)
        for i, c in enumerate(checks)
        if not c.rowwise
    }
    fresh = contract.table.freshness_column if contract.table.freshness_column in head.columns else None
    newest: list[pl.DataFrame] = []
    height = 0
    try:
        for batch in source.batches:
            _tally_batch(batch, height, checks, tallies)
            for finder in finders.values():
                finder.add(batch, height)
            if fresh is not None:
                newest.append(batch.select(pl.col(fresh).max()))
            height += batch.height
        for i, finder in finders.items():
            tallies[i] = _Tally(*finder.result())
    finally:
        for finder in finders.values():
            finder.close()
    violations = _schema_violations(head, contract)
    for check, tally in zip(checks, tallies, strict=True):
        if tally.count:
            message = f"{tally.count:,} of {height:,} rows: {check.describe}"
            violation = Violation(
                check.rule, check.column, "error", message, tally.count, tally.values, tally.rows
            )
            violations.append(violation)
    violations += _row_count_violations(height, contract)
    if fresh is not None:
        newest_value = pl.concat(newest).select(pl.col(fresh).max()).item() if newest else None
        violations += _freshness_violations(newest_value, contract, now)
    return ValidationReport(contract.name, contract.digest, height, head.width, violations)


def _tally_batch(batch: pl.DataFrame, offset: int, checks: list[_Check], tallies: list[_Tally]) -> None:
    exprs: list[pl.Expr] = []
    for i, check in enumerate(checks):
        if not check.rowwise:
            continue
        exprs.append(check.mask.sum().alias(f"n{i}"))
        if len(tallies[i].rows) < _EXAMPLES:
            exprs.append(pl.arg_where(check.mask).head(_EXAMPLES).implode().alias(f"r{i}"))
            exprs.append(check.values.filter(check.mask).head(_EXAMPLES).implode().alias(f"v{i}"))
    if not exprs:
        return
    row = batch.select(exprs).row(0, named=True)
    for i, tally in enumerate(tallies):
        if f"n{i}" not in row:
            continue
        tally.count += int(row[f"n{i}"])
        if f"r{i}" in row and row[f"n{i}"]:
            room = _EXAMPLES - len(tally.rows)
            tally.rows += [offset + int(r) for r in row[f"r{i}"]][:room]
            tally.values += list(row[f"v{i}"])[:room]


def _schema_violations(df: pl.DataFrame, contract: Contract) -> list[Violation]:
    """Missing columns, dtype mismatches (errors) and columns the contract does not name (warnings)."""
    out: list[Violation] = []
    for spec in contract.columns:
        if spec.name not in df.schema:
            out.append(Violation("missing_column", spec.name, "error", "column is missing from the data"))
            continue
        dtype = df.schema[spec.name]
        actual = column_type_of(dtype)
        if dtype != pl.Null and actual != spec.type:
            msg = f"expected type {spec.type!r}, data has {dtype} ({actual or 'no contract type'})"
            out.append(Violation("dtype", spec.name, "error", msg))
    known = set(contract.column_names)
    for col in df.columns:
        if col not in known:
            out.append(Violation("unexpected_column", col, "warning", "column is not in the contract"))
    return out


def _column_checks(df: pl.DataFrame, contract: Contract) -> list[_Check]:
    checks: list[_Check] = []
    for spec in contract.columns:
        if spec.name in df.schema:
            checks += _checks_for(spec, df.schema[spec.name])
    return checks


def _checks_for(spec: ColumnSpec, dtype: pl.DataType) -> list[_Check]:
    """The rules of one column as polars masks; value rules run only where the data's type allows them."""
    col, kind = spec.name, column_type_of(dtype)
    c = pl.col(col)
    checks: list[_Check] = []
    if not spec.nullable:
        checks.append(_Check("not_null", col, c.is_null(), c, "null values in a non-nullable column"))
    if kind in _NUMERIC and (spec.min is not None or spec.max is not None):
        low = c < spec.min if spec.min is not None else pl.lit(False)
        high = c > spec.max if spec.max is not None else pl.lit(False)
        bounds = f"[{'' if spec.min is None else spec.min}, {'' if spec.max is None else spec.max}]"
        checks.append(_Check("range", col, (low | high).fill_null(False), c, f"values outside {bounds}"))
    text = c.cast(pl.String) if kind == "category" else c
    if spec.allowed_values is not None and kind == spec.type:
        mask = (~text.is_in(spec.allowed_values)).fill_null(False)
        checks.append(_Check("allowed_values", col, mask, c, f"values not in {spec.allowed_values}"))
    if spec.regex is not None and kind in _TEXT:
        mask = (~text.str.contains(f"^(?:{spec.regex})$")).fill_null(False)
        checks.append(_Check("regex", col, mask, c, f"values not matching /{spec.regex}/"))
    if spec.unique:
        mask = c.is_duplicated() & c.is_not_null()
        checks.append(_Check("unique", col, mask, c, "duplicate values in a unique column", False, (col,)))
    return checks


def _table_checks(df: pl.DataFrame, contract: Contract) -> list[_Check]:
    key = contract.table.primary_key
    if not key or any(k not in df.schema for k in key):
        return []
    row = pl.struct([pl.col(k) for k in key])
    nulls = pl.any_horizontal([pl.col(k).is_null() for k in key])
    return [
        _Check(
            "primary_key",
            None,
            row.is_duplicated(),
            row,
            f"rows sharing a primary key {key}",
            False,
            tuple(key),
        ),
        _Check("primary_key_null", None, nulls, row, f"rows with a null in primary key {key}"),
    ]


def _with_examples(df: pl.DataFrame, failing: list[tuple[_Check, int]]) -> list[Violation]:
    """Up to five example values and row positions for each failing rule.

    Row-wise rules are first looked for in growing prefixes: failures are usually spread out, so a short
    prefix nearly always holds five, and the masks need not be computed again over the whole table.
    """
    found: dict[int, tuple[list[int], list[Any]]] = {}
    for window in _WINDOWS:
        frame = df if window is None or window >= df.height else df.head(window)
        full = frame is df
        todo = [i for i, (c, _) in enumerate(failing) if i not in found and (c.rowwise or full)]
        for i, (rows, values) in _examples(frame, [failing[i][0] for i in todo], todo).items():
            if full or len(rows) >= min(_EXAMPLES, failing[i][1]):
                found[i] = (rows, values)
        if full:
            break
    out = []
    for i, (check, count) in enumerate(failing):
        message = f"{count:,} of {df.height:,} rows: {check.describe}"
        rows, values = found[i]
        out.append(Violation(check.rule, check.column, "error", message, count, values, rows))
    return out


def _examples(
    frame: pl.DataFrame, checks: list[_Check], keys: list[int]
) -> dict[int, tuple[list[int], list[Any]]]:
    """For each check, the positions and values of its first five failing rows in ``frame``, one select."""
    if not checks:
        return {}
    exprs = []
    for key, check in zip(keys, checks, strict=True):
        exprs.append(pl.arg_where(check.mask).head(_EXAMPLES).implode().alias(f"r{key}"))
        exprs.append(check.values.filter(check.mask).head(_EXAMPLES).implode().alias(f"v{key}"))
    row = frame.select(exprs).row(0, named=True)
    return {key: ([int(r) for r in row[f"r{key}"]], list(row[f"v{key}"])) for key in keys}


def _row_count_violations(n_rows: int, contract: Contract) -> list[Violation]:
    low, high = contract.table.min_rows, contract.table.max_rows
    if (low is not None and n_rows < low) or (high is not None and n_rows > high):
        bounds = f"[{'' if low is None else low}, {'' if high is None else high}]"
        return [Violation("row_count", None, "error", f"{n_rows:,} rows, outside {bounds}", n_rows)]
    return []


def _freshness_violations(newest: Any, contract: Contract, now: dt.datetime | None) -> list[Violation]:
    """The newest timestamp must be at most ``max_age`` old (naive timestamps are taken as UTC)."""
    col, max_age = contract.table.freshness_column, contract.table.max_age
    assert max_age is not None
    if newest is None:
        return [Violation("freshness", col, "error", "no timestamps: the column is empty or all null")]
    if not isinstance(newest, dt.datetime):
        newest = dt.datetime.combine(newest, dt.time())
    if newest.tzinfo is None:
        newest = newest.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    now = now if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)
    age = now - newest
    if age <= max_age:
        return []
    message = f"newest value {newest.isoformat()} is {age} old, more than max_age {max_age}"
    return [Violation("freshness", col, "error", message, examples=[newest])]
