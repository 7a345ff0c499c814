"""Data contracts: the shared, versionable description of a table.

A :class:`Contract` names every column (type, description, unit, owner, nullability, range, allowed
values, regex, uniqueness, PII flag) and the table-level rules (row-count bounds, primary key, freshness
of a timestamp column). It is written in YAML or Python, serializes to YAML and back losslessly, and has
a BLAKE3 :attr:`Contract.digest` of its canonical YAML. :func:`infer_contract` drafts one from a DataFrame.

polars is imported at the top of this module on purpose: ``import shipyard`` does not import it.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import polars as pl
import yaml
from pydantic import Field, field_validator, model_validator

from shipyard.errors import InvalidInput
from shipyard.specs import StrictModel, parse_spec

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "COLUMN_TYPES",
    "ColumnSpec",
    "ColumnType",
    "Contract",
    "TableRules",
    "column_type_of",
    "infer_contract",
    "to_polars",
]

ColumnType = Literal["int", "float", "bool", "string", "datetime", "date", "category"]
COLUMN_TYPES: tuple[str, ...] = ("int", "float", "bool", "string", "datetime", "date", "category")
_NUMERIC = ("int", "float")
_TEXT = ("string", "category")
_MAX_ALLOWED_INFERRED = 20
_DURATION_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_RE = re.compile(r"^\s*(?:(\d+)w)?\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*$")

Scalar = bool | int | float | str


def _parse_duration(value: object) -> timedelta:
    """``"1d12h"``, ``"90m"``, ``"2w"``, a number of seconds, or a timedelta → timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    match = _DURATION_RE.match(value) if isinstance(value, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"{value!r} is not a duration; write e.g. '90s', '15m', '24h', '7d' or '1d12h'")
    units = zip(match.groups(), _DURATION_UNITS.values(), strict=True)
    return timedelta(seconds=sum(int(n) * mult for n, mult in units if n))


def _format_duration(value: timedelta) -> str:
    """The compact form :func:`_parse_duration` reads back: ``timedelta(days=1, hours=12)`` → ``"1d12h"``."""
    seconds = int(value.total_seconds())
    if seconds != value.total_seconds() or seconds <= 0:
        raise ValueError(f"max_age must be a positive whole number of seconds, got {value}")
    parts = []
    for unit, mult in _DURATION_UNITS.items():
        count, seconds = divmod(seconds, mult)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


class ColumnSpec(StrictModel):
    """One column of a contract.

    Example:
        >>> ColumnSpec(name="age", type="int", unit="years", nullable=False, min=0, max=130).type
        'int'
    """

    item_noun: ClassVar[str] = "column"

    name: str = Field(min_length=1)
    type: ColumnType
    description: str = ""
    unit: str | None = None
    owner: str | None = None
    nullable: bool = True
    min: int | float | None = None
    max: int | float | None = None
    allowed_values: list[Scalar] | None = None
    regex: str | None = None
    unique: bool = False
    pii: bool = False

    @field_validator("min", "max")
    @classmethod
    def _no_nan(cls, value: float | None) -> float | None:
        if value is not None and isinstance(value, float) and math.isnan(value):
            raise ValueError("NaN is not a bound")
        return value

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"regex {value!r} does not compile: {exc}") from None
        return value

    @model_validator(mode="after")
    def _rules_fit_type(self) -> ColumnSpec:
        if (self.min is not None or self.max is not None) and self.type not in _NUMERIC:
            raise ValueError(f"min/max apply to int and float columns, not {self.type!r}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.regex is not None and self.type not in _TEXT:
            raise ValueError(f"regex applies to string and category columns, not {self.type!r}")
        for value in self.allowed_values or []:
            if not _value_fits(value, self.type):
                raise ValueError(f"allowed value {value!r} is not a {self.type} value")
        return self


def _value_fits(value: Scalar, type_: str) -> bool:
    if type_ in _TEXT:
        return isinstance(value, str)
    if type_ == "bool":
        return isinstance(value, bool)
    if type_ == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_ == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return False  # allowed values on datetime/date columns are not supported


class TableRules(StrictModel):
    """Rules about the whole table.

    Example:
        >>> TableRules(min_rows=1, primary_key=["id"], freshness_column="ts", max_age="24h").max_age
        datetime.timedelta(days=1)
    """

    min_rows: int | None = Field(default=None, ge=0)
    max_rows: int | None = Field(default=None, ge=0)
    primary_key: list[str] = Field(default_factory=list)
    freshness_column: str | None = None
    max_age: timedelta | None = None

    @field_validator("primary_key", mode="before")
    @classmethod
    def _one_key_as_list(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("max_age", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta | None:
        return None if value is None else _parse_duration(value)

    @model_validator(mode="after")
    def _consistent(self) -> TableRules:
        if self.min_rows is not None and self.max_rows is not None and self.min_rows > self.max_rows:
            raise ValueError(f"min_rows ({self.min_rows}) is greater than max_rows ({self.max_rows})")
        if (self.freshness_column is None) != (self.max_age is None):
            raise ValueError("freshness_column and max_age go together: set both or neither")
        if self.max_age is not None:
            _format_duration(self.max_age)
        return self


class Contract(StrictModel):
    """A table's contract: its columns and table-level rules.

    Example:
        >>> c = Contract(name="users", columns=[{"name": "id", "type": "int", "unique": True}])
        >>> Contract.from_yaml(c.to_yaml()) == c
        True
    """

    name: str = Field(min_length=1)
    description: str = ""
    owner: str | None = None
    columns: list[ColumnSpec]
    table: TableRules = Field(default_factory=TableRules)

    @model_validator(mode="after")
    def _names_resolve(self) -> Contract:
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"column names must be unique; repeated: {dupes}")
        for key in self.table.primary_key:
            if key not in names:
                raise ValueError(f"primary_key column {key!r} is not a column of the contract")
        fresh = self.table.freshness_column
        if fresh is not None:
            if fresh not in names:
                raise ValueError(f"freshness_column {fresh!r} is not a column of the contract")
            if self.column(fresh).type not in ("datetime", "date"):
                raise ValueError(f"freshness_column {fresh!r} must be a datetime or date column")
        return self

    @property
    def column_names(self) -> list[str]:
        """The contract's column names, in order."""
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec:
        """The spec of column ``name``; raises :class:`InvalidInput` if there is none."""
        for col in self.columns:
            if col.name == name:
                return col
        raise InvalidInput(f"Contract {self.name!r} has no column {name!r} (columns: {self.column_names})")

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (defaults left out, ``max_age`` as ``"1d12h"``), the shape of the YAML.

        Example:
            >>> Contract(name="t", columns=[{"name": "x", "type": "float"}]).to_dict()
            {'name': 't', 'columns': [{'name': 'x', 'type': 'float'}]}
        """
        data = self.model_dump(exclude_defaults=True)
        table = data.get("table")
        if table is not None and "max_age" in table:
            table["max_age"] = _format_duration(table["max_age"])
        if table == {}:
            data.pop("table")
        return data

    def to_yaml(self) -> str:
        """Canonical YAML text (fields in declaration order, defaults left out).

        Example:
            >>> print(Contract(name="t", columns=[{"name": "x", "type": "int"}]).to_yaml(), end="")
            name: t
            columns:
            - name: x
              type: int
        """
        return _dump_yaml(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Contract:
        """Build from a plain dict; raises :class:`InvalidInput` naming the column and field at fault."""
        if not isinstance(data, Mapping):
            raise InvalidInput(
                f"A contract is a mapping with 'name' and 'columns', got {type(data).__name__}"
            )
        return cls(**dict(data))

    @classmethod
    def from_yaml(cls, text_or_path: str | Path) -> Contract:
        """Read a contract from YAML text or a ``.yaml``/``.yml`` file path.

        Example:
            >>> Contract.from_yaml("name: t\\ncolumns:\\n- {name: x, type: int, min: 0}").columns[0].min
            0
        """
        return parse_spec(text_or_path, cls, noun="Contract", shape="a mapping with 'name' and 'columns'")

    @property
    def digest(self) -> str:
        """BLAKE3 hex digest of :meth:`to_yaml`: equal contracts have equal digests."""
        return _digest(json.dumps(self.to_dict(), ensure_ascii=False))


def _dump_yaml(data: dict[str, Any]) -> str:
    # Pure-Python dumper, not libyaml's: the text is hashed, so it must not depend on how PyYAML was built.
    text: str = yaml.dump(data, Dumper=yaml.SafeDumper, sort_keys=False, allow_unicode=True, width=100)
    if not text.isascii() and yaml.safe_load(text) != data:
        # PyYAML writes some characters (e.g. U+0085) raw that it then reads as line breaks: escape them all
        text = yaml.dump(data, Dumper=yaml.SafeDumper, sort_keys=False, allow_unicode=False, width=100)
    return text


@functools.lru_cache(maxsize=256)
def _digest(canonical_json: str) -> str:
    """Cached by the contract's JSON (cheap to build) because validation reports carry the digest."""
    import blake3

    text = _dump_yaml(json.loads(canonical_json))
    return str(blake3.blake3(text.encode("utf-8")).hexdigest())


# -- DataFrame conversion and inference --------------------------------------------------------------------


def to_polars(data: pl.DataFrame | pd.DataFrame | pa.Table | pl.LazyFrame) -> pl.DataFrame:
    """Convert a pandas or polars DataFrame or a pyarrow Table to polars, zero-copy where possible.

    Raises :class:`InvalidInput` for duplicate column names or a column polars cannot hold (e.g. a pandas
    object column mixing ints and strings), naming the column.

    Example:
        >>> import pandas as pd
        >>> to_polars(pd.DataFrame({"a": [1, 2]})).shape
        (2, 1)
    """
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pl.LazyFrame):
        return data.collect()
    module = type(data).__module__.split(".")[0]
    if module == "pyarrow":
        _check_unique_names([str(n) for n in data.column_names])
        result = pl.from_arrow(data)
        assert isinstance(result, pl.DataFrame)
        return result
    if module == "pandas":
        return _from_pandas(data)
    raise InvalidInput(
        f"Expected a pandas or polars DataFrame or a pyarrow Table, got {type(data).__module__}."
        f"{type(data).__name__}"
    )


def _check_unique_names(names: list[str]) -> None:
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInput(f"The data has duplicate column names {dupes}; rename them so each is unique")


def _from_pandas(frame: pd.DataFrame) -> pl.DataFrame:
    names = [str(n) for n in frame.columns]
    _check_unique_names(names)
    try:
        return pl.from_pandas(frame.set_axis(names, axis=1))
    except (ValueError, TypeError) as exc:  # pyarrow's ArrowInvalid/ArrowTypeError subclass these
        bad = _first_unconvertible(frame, names)
        raise InvalidInput(
            f"Column {bad!r} cannot be converted to a typed column ({exc}); "
            "it probably mixes value types in one object column: cast it to one type first",
            details={"column": bad},
        ) from exc


def _first_unconvertible(frame: pd.DataFrame, names: list[str]) -> str:
    for position, name in enumerate(names):
        try:
            pl.from_pandas(frame.iloc[:, [position]].set_axis([name], axis=1))
        except (ValueError, TypeError):
            return name
    return "?"


def column_type_of(dtype: pl.DataType) -> str | None:
    """The contract type of a polars dtype, or None when no contract type fits (lists, structs, ...).

    Example:
        >>> import polars as pl
        >>> column_type_of(pl.Int32), column_type_of(pl.Utf8), column_type_of(pl.List(pl.Int8))
        ('int', 'string', None)
    """
    if dtype.is_integer():
        return "int"
    if dtype.is_float() or isinstance(dtype, pl.Decimal):
        return "float"
    if dtype == pl.Boolean:
        return "bool"
    if dtype == pl.String:
        return "string"
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return "category"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    if dtype == pl.Date:
        return "date"
    return None


def infer_contract(data: pl.DataFrame | pd.DataFrame | pa.Table, *, name: str) -> Contract:
    """Draft a contract from data: a starting point meant to be edited, not a finished contract.

    Infers each column's type; ``nullable`` if it holds a null; ``min``/``max`` for numbers; allowed
    values for string/category columns with at most 20 distinct values; ``unique`` if all values are
    distinct (and there are at least two). ``pii`` is always False: review it by hand.

    Example:
        >>> import polars as pl
        >>> c = infer_contract(pl.DataFrame({"id": [1, 2, 3], "k": ["a", "b", "a"]}), name="t")
        >>> c.column("id").unique, c.column("k").allowed_values
        (True, ['a', 'b'])
    """
    df = to_polars(data)
    types: dict[str, str] = {}
    for col, dtype in df.schema.items():
        kind = column_type_of(dtype) if dtype != pl.Null else "string"
        if kind is None:
            raise InvalidInput(f"Column {col!r} has dtype {dtype}, which no contract type describes")
        types[col] = kind
    stats = _column_stats(df, types)
    columns = [_draft_column(col, kind, stats, df.height) for col, kind in types.items()]
    return Contract(name=name, columns=columns)


def _column_stats(df: pl.DataFrame, types: dict[str, str]) -> dict[str, Any]:
    """Null counts, distinct counts, min/max and small value sets of every column, in two passes."""
    exprs: list[pl.Expr] = []
    for i, (col, kind) in enumerate(types.items()):
        c = pl.col(col).cast(pl.String) if kind == "category" else pl.col(col)
        exprs += [c.null_count().alias(f"null{i}"), c.drop_nulls().n_unique().alias(f"uniq{i}")]
        if kind in _NUMERIC:
            finite = c.drop_nulls().drop_nans() if df.schema[col].is_float() else c.drop_nulls()
            exprs += [finite.min().alias(f"min{i}"), finite.max().alias(f"max{i}")]
    row = df.select(exprs).row(0, named=True) if exprs else {}
    small = [
        (pl.col(col).cast(pl.String).drop_nulls().unique().sort().implode().alias(f"vals{i}"))
        for i, (col, kind) in enumerate(types.items())
        if kind in _TEXT and 0 < row[f"uniq{i}"] <= _MAX_ALLOWED_INFERRED
    ]
    if small:
        row.update(df.select(small).row(0, named=True))
    return {"by_index": row, "index": {col: i for i, col in enumerate(types)}}


def _draft_column(col: str, kind: str, stats: dict[str, Any], height: int) -> ColumnSpec:
    i = stats["index"][col]
    row = stats["by_index"]
    nulls, distinct = row[f"null{i}"], row[f"uniq{i}"]
    spec: dict[str, Any] = {"name": col, "type": kind, "nullable": nulls > 0}
    if kind in _NUMERIC:
        low, high = row[f"min{i}"], row[f"max{i}"]
        if low is not None:
            spec["min"], spec["max"] = _plain_number(low, kind), _plain_number(high, kind)
    if f"vals{i}" in row:
        spec["allowed_values"] = list(row[f"vals{i}"])
    spec["unique"] = height >= 2 and nulls == 0 and distinct == height
    return ColumnSpec(**spec)


def _plain_number(value: Any, kind: str) -> int | float:
    return int(value) if kind == "int" else float(value)
