"""Model signatures: the columns (name, type, nullability) a model takes and what ``predict`` returns.

A :class:`Signature` is stored in ``shipyard-model.yaml`` and checked on every prediction. The check is
built for serving: when a frame already matches (same columns in the same order, same dtypes) it costs a
few microseconds and returns the frame untouched; each distinct tuple of input dtypes is planned once and
the plan cached, so only columns that need a conversion or a null check are looked at per call. When
anything is off, the slow diagnostic path names every column and its problem in one
:class:`~shipyard.errors.SignatureMismatch`.

Types are pandas-style dtype names: ``int8``…``int64``, ``uint8``…``uint64``, ``float32``, ``float64``,
``bool``, ``string``, ``category``, ``datetime64[<unit>]`` (optionally with a time zone), ``date`` and
``object`` (anything goes). Conversions that lose nothing are made for the caller: ints into a float
column when the float holds them exactly (``shipyard.registry.exact``: 2**53 + 1 does not fit a float64
and is refused), a narrower int or float into a wider one, whole floats into an int column, decimals
that read back the same as floats, strings into a category column. A float64 column goes into a float32
one rounded (as the model computes), unless a value would become infinite.

Messages quote the caller's values cut short (:func:`shipyard.quoting.quoted`) and list at most
``MAX_LISTED_PROBLEMS`` problems in full.

pandas and numpy are imported at the top on purpose: ``import shipyard`` does not import this module.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from shipyard.errors import InvalidInput, SignatureMismatch
from shipyard.quoting import quoted, quoted_list
from shipyard.registry.exact import inexact_ints, narrowed_to_inf, object_numbers

if TYPE_CHECKING:
    from shipyard.data.contracts import Contract

__all__ = ["ColumnSpec", "OutputSpec", "Signature", "infer_signature", "signature_from_contract", "to_pandas"]

_INTS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
_FLOATS = ("float16", "float32", "float64")
_KINDS: dict[str, str] = {
    **dict.fromkeys(_INTS, "int"),
    **dict.fromkeys(_FLOATS, "float"),
    "bool": "bool",
    "string": "string",
    "category": "category",
    "date": "date",
    "object": "object",
}
_DATETIME_RE = re.compile(r"^datetime64\[(s|ms|us|ns)(, .+)?\]$")
_CONTRACT_TYPES = {
    "int": "int64",
    "float": "float64",
    "bool": "bool",
    "string": "string",
    "category": "category",
    "datetime": "datetime64[ns]",
    "date": "date",
}
_SAMPLE = 3
MAX_LISTED_PROBLEMS = 100
"""How many problems a ``SignatureMismatch`` lists in ``details["problems"]`` (its message: 10)."""
_MESSAGE_PROBLEMS = 10
_MESSAGE_NAMES = 20
_DETAIL_NAME = 200


def kind_of(type_name: str) -> str:
    """The family of a signature type: int, float, bool, string, category, datetime, date or object.

    Example:
        >>> kind_of("int32"), kind_of("datetime64[ns, UTC]")
        ('int', 'datetime')
    """
    kind = _KINDS.get(type_name)
    if kind is not None:
        return kind
    if _DATETIME_RE.match(type_name):
        return "datetime"
    raise InvalidInput(
        f"Unknown signature type {type_name!r}; use one of {', '.join(_KINDS)} or datetime64[ns] (etc.)"
    )


_NAME_CACHE: dict[Any, str] = {}


def dtype_name(dtype: Any) -> str:
    """The signature type of a pandas/numpy dtype (``Int64`` → ``int64``, any string dtype → ``string``).

    Example:
        >>> import numpy as np, pandas as pd
        >>> dtype_name(np.dtype("float32")), dtype_name(pd.StringDtype()), dtype_name(pd.Int64Dtype())
        ('float32', 'string', 'int64')
    """
    try:
        return _NAME_CACHE[dtype]
    except (KeyError, TypeError):
        pass
    name = _dtype_name(dtype)
    if not isinstance(dtype, pd.CategoricalDtype):  # their hash covers every category: not worth caching
        _NAME_CACHE[dtype] = name
    return name


def _dtype_name(dtype: Any) -> str:
    if isinstance(dtype, pd.StringDtype):
        return "string"
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return str(dtype)
    if isinstance(dtype, pd.ArrowDtype):
        return _dtype_name(dtype.numpy_dtype) if dtype.kind != "O" else "string"
    numpy_dtype = getattr(dtype, "numpy_dtype", None)  # pandas nullable Int64, Float64, boolean
    if numpy_dtype is not None:
        return _dtype_name(numpy_dtype)
    name = str(dtype)
    if name in _KINDS or _DATETIME_RE.match(name):
        return name
    return "object"


@dataclass(frozen=True)
class ColumnSpec:
    """One input column. Float columns are always nullable: NaN is a float value.

    Example:
        >>> ColumnSpec("age", "int64", nullable=False).to_dict()
        {'name': 'age', 'type': 'int64', 'nullable': False}
    """

    name: str
    type: str
    nullable: bool = True

    def __post_init__(self) -> None:
        if kind_of(self.type) == "float" and not self.nullable:
            object.__setattr__(self, "nullable", True)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "nullable": self.nullable}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnSpec:
        return cls(str(data["name"]), str(data["type"]), bool(data.get("nullable", True)))


@dataclass(frozen=True)
class OutputSpec:
    """What ``predict`` returns: a type and a shape (``-1`` for the number of rows).

    Example:
        >>> OutputSpec("int64", (-1,)).to_dict()
        {'type': 'int64', 'shape': [-1]}
    """

    type: str = "object"
    shape: tuple[int, ...] = (-1,)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutputSpec:
        return cls(str(data.get("type", "object")), tuple(int(n) for n in data.get("shape", [-1])))


@dataclass
class _Plan:
    """What to do for one tuple of input dtypes.

    ``convert``: positions whose dtype must change. ``verify``: positions whose dtype is right but whose
    values are checked each call, ``(position, strings)``: no nulls allowed, and with ``strings`` an
    object column that must hold only strings. Verification reads the column's array directly (~1 µs).
    """

    convert: list[int]
    verify: list[tuple[int, bool, bool]]  # (position, nullable, strings)

    @property
    def positions(self) -> list[int]:
        return sorted({*self.convert, *(v[0] for v in self.verify)})


@dataclass
class Signature:
    """The columns a model takes (in order), its output and whether it has ``predict_proba``.

    Example:
        >>> import pandas as pd
        >>> sig = Signature([ColumnSpec("x", "float64"), ColumnSpec("k", "string", nullable=False)])
        >>> sig.check(pd.DataFrame({"x": [1, 2], "k": ["a", "b"]})).dtypes["x"]  # ints made floats
        dtype('float64')
    """

    inputs: list[ColumnSpec]
    output: OutputSpec | None = None
    proba: bool = False
    _names: list[str] = field(init=False, repr=False, compare=False)
    _plans: dict[tuple[Any, ...], _Plan] = field(init=False, repr=False, compare=False)
    _ok_columns: Any = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        self.inputs = list(self.inputs)
        self._names = [c.name for c in self.inputs]
        dupes = sorted({n for n in self._names if self._names.count(n) > 1})
        if dupes:
            raise InvalidInput(f"A signature's column names must be unique; repeated: {dupes}")
        self._plans = {}

    @property
    def names(self) -> list[str]:
        """The input column names, in order."""
        return list(self._names)

    def to_dict(self) -> dict[str, Any]:
        """The YAML shape: ``{"inputs": [...], "output": {...} | None, "proba": bool}``."""
        return {
            "inputs": [c.to_dict() for c in self.inputs],
            "output": self.output.to_dict() if self.output else None,
            "proba": self.proba,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        """Inverse of :meth:`to_dict`.

        Example:
            >>> s = Signature([ColumnSpec("x", "int64", False)], OutputSpec("float64"), proba=False)
            >>> Signature.from_dict(s.to_dict()) == s
            True
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("inputs"), list):
            raise InvalidInput(f"A signature is a mapping with an 'inputs' list, got {quoted(data)}")
        output = data.get("output")
        return cls(
            [ColumnSpec.from_dict(c) for c in data["inputs"]],
            OutputSpec.from_dict(output) if output else None,
            bool(data.get("proba", False)),
        )

    # -- the check -------------------------------------------------------------------------------------
    def check(self, data: Any, *, extra: Literal["error", "drop"] = "error") -> pd.DataFrame:
        """The frame to hand the model: columns in signature order, dtypes converted where lossless.

        Accepts a pandas or polars DataFrame, a pyarrow Table, a dict of columns, a list of records or a
        2-D numpy array (columns taken in signature order). Returns ``data`` itself (no copy) when it
        already matches. ``extra="drop"`` ignores columns the model does not take.

        Raises:
            SignatureMismatch: listing every problem (missing or unexpected column, wrong type, nulls in a
                non-nullable column) in ``details["problems"]`` as ``{"column", "problem"}`` items.

        Example:
            >>> import pandas as pd
            >>> sig = Signature([ColumnSpec("x", "float64")])
            >>> sig.check(pd.DataFrame({"x": ["abc"]}))  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            shipyard.errors.SignatureMismatch: Input does not match the model signature: column 'x': ...
        """
        df = data if type(data) is pd.DataFrame else to_pandas(data, self._names)
        columns = df.columns
        if columns is not self._ok_columns:
            if columns.tolist() != self._names:
                return self._realign(df, extra)
            self._ok_columns = columns
        dtypes = _dtypes(df)
        plan = self._plans.get(dtypes)
        if plan is None:
            plan = self._plans[dtypes] = self._plan(dtypes)
        if plan.verify and not _verified(df, plan.verify):
            return self._convert(df, plan.positions, [])  # the slow path: converts or names each problem
        if plan.convert:
            return self._convert(df, plan.convert, [])
        return df

    def _plan(self, dtypes: tuple[Any, ...]) -> _Plan:
        if len(self._plans) > 64:  # a client sending ever-new categorical dtypes must not grow this forever
            self._plans.clear()
        convert: list[int] = []
        verify: list[tuple[int, bool, bool]] = []
        for i, (spec, dtype) in enumerate(zip(self.inputs, dtypes, strict=True)):
            extension = isinstance(dtype, pd.api.extensions.ExtensionDtype)
            kind = kind_of(spec.type)
            # nullable Int64/Float64/boolean columns are handed over as numpy ones
            exact = dtype_name(dtype) == spec.type and not (extension and kind in ("int", "float", "bool"))
            object_strings = kind == "string" and dtype == np.dtype("O")
            can_hold_nulls = extension or dtype.kind not in "iub"
            if object_strings:
                verify.append((i, spec.nullable, True))
            elif not exact:
                convert.append(i)
            elif can_hold_nulls and not spec.nullable:
                verify.append((i, False, False))
        return _Plan(convert, verify)

    def _convert(
        self, df: pd.DataFrame, positions: Sequence[int], problems: list[dict[str, str]]
    ) -> pd.DataFrame:
        fixed: dict[str, pd.Series] = {}
        for i in positions:
            spec = self.inputs[i]
            series, problem = _fix_column(spec, df.iloc[:, i])
            if problem:
                problems.append({"column": spec.name, "problem": problem})
            elif series is not None:
                fixed[spec.name] = series
        if problems:
            raise _mismatch(problems, self._names)
        if not fixed:
            return df
        out = df.copy(deep=False)
        for name, series in fixed.items():
            out[name] = series
        return out

    def _realign(self, df: pd.DataFrame, extra: str) -> pd.DataFrame:
        """Slow path for a frame whose columns differ from the signature's (order, missing, extra)."""
        present = {str(c) for c in df.columns}
        if len(present) != len(df.columns):
            seen: set[str] = set()
            dupes = [c for c in map(str, df.columns) if c in seen or seen.add(c)]  # type: ignore[func-returns-value]
            raise InvalidInput(
                f"The input has duplicate column names: {quoted_list(dict.fromkeys(dupes))}; "
                "every column needs a name of its own"
            )
        problems = [{"column": n, "problem": "missing column"} for n in self._names if n not in present]
        if extra == "error":
            expected = set(self._names)
            problems += [
                {"column": str(c), "problem": "unexpected column (pass extra='drop' to ignore it)"}
                for c in df.columns
                if str(c) not in expected
            ]
        df = df.set_axis([str(c) for c in df.columns], axis=1)
        specs = [(i, s) for i, s in enumerate(self.inputs) if s.name in present]
        if problems:  # still diagnose the columns that are there, so one error lists everything
            sub = Signature([s for _, s in specs])
            with contextlib.suppress(SignatureMismatch):  # it adds its problems to ours, then raises
                sub._convert(df[[s.name for _, s in specs]], range(len(specs)), problems)
            raise _mismatch(problems, self._names)
        return self.check(df[self._names])


def _column_values(df: pd.DataFrame, position: int) -> Any:
    try:  # the column's array without building a Series (~0.4 µs instead of ~20 µs)
        return df._mgr.iget_values(position)
    except AttributeError:  # pragma: no cover - a pandas without the private accessor
        return df.iloc[:, position].array


def _verified(df: pd.DataFrame, verify: list[tuple[int, bool, bool]]) -> bool:
    """Whether the columns to verify hold no nulls (when not nullable) and only strings (when asked)."""
    for position, nullable, strings in verify:
        values = _column_values(df, position)
        if strings and pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
            return False
        if not nullable and pd.isna(values).any():
            return False
    return True


def _dtypes(df: pd.DataFrame) -> tuple[Any, ...]:
    try:  # the block manager's array of dtypes: 0.3 µs where ``df.dtypes`` builds a Series (~15 µs)
        return tuple(df._mgr.get_dtypes())
    except AttributeError:  # pragma: no cover - a pandas without the private accessor
        return tuple(df.dtypes)


def _mismatch(problems: list[dict[str, str]], names: list[str]) -> SignatureMismatch:
    listed = "; ".join(f"column {quoted(p['column'])}: {p['problem']}" for p in problems[:_MESSAGE_PROBLEMS])
    if len(problems) > _MESSAGE_PROBLEMS:
        listed += f"; and {len(problems) - _MESSAGE_PROBLEMS} more problems (see details.problems)"
    takes = ", ".join(repr(n) for n in names[:_MESSAGE_NAMES])
    takes += f", ... ({len(names)} columns)" if len(names) > _MESSAGE_NAMES else ""
    details: dict[str, Any] = {
        "problems": [{**p, "column": p["column"][:_DETAIL_NAME]} for p in problems[:MAX_LISTED_PROBLEMS]]
    }
    if len(problems) > MAX_LISTED_PROBLEMS:
        details["more_problems"] = len(problems) - MAX_LISTED_PROBLEMS
    return SignatureMismatch(
        f"Input does not match the model signature: {listed} (the model takes columns [{takes}])",
        details=details,
    )


def _sample(values: Any) -> str:
    first = values.iloc[:_SAMPLE] if isinstance(values, pd.Series) else values[:_SAMPLE]
    return quoted_list(first, _SAMPLE)


def _fix_column(spec: ColumnSpec, s: pd.Series) -> tuple[pd.Series | None, str | None]:
    """Convert one column to the spec's type when lossless; return ``(new_series_or_None, problem)``."""
    got = dtype_name(s.dtype)
    want = kind_of(spec.type)
    series: pd.Series | None = None
    if got != spec.type or isinstance(s.dtype, pd.api.extensions.ExtensionDtype) or got == "object":
        if s.dtype == np.dtype("O") and want in ("int", "float", "bool"):
            s, problem = _object_to_scalar(s, spec, want)
            if problem:
                return None, problem
            got = dtype_name(s.dtype)
            series = s
        converter = _CONVERTERS.get(want)
        if converter is not None:
            converted, problem = converter(spec, s, got)
            if problem:
                return None, problem
            series = converted if converted is not None else series
    target = series if series is not None else s
    if not spec.nullable:
        nulls = target.isna()
        if nulls.any():
            rows = np.flatnonzero(nulls.to_numpy())[:_SAMPLE].tolist()
            return None, f"{int(nulls.sum())} null value(s) in a non-nullable column (rows {rows})"
    return series, None


def _object_to_scalar(s: pd.Series, spec: ColumnSpec, want: str) -> tuple[pd.Series, str | None]:
    """An object column holding numbers or booleans (e.g. from JSON with nulls) made a typed column."""
    inferred = pd.api.types.infer_dtype(s, skipna=True)
    if want == "bool" and inferred in ("boolean", "empty"):
        return (s.astype("boolean") if s.isna().any() else s.astype(bool)), None
    if want != "bool" and inferred in ("integer", "floating", "mixed-integer-float", "decimal", "empty"):
        numbers, problem = object_numbers(s, spec.type, want)  # value by value: nothing rounded away
        return (numbers if numbers is not None else s), problem
    if want == "bool":
        fits = s.map(lambda v: isinstance(v, bool | np.bool_)).astype(bool)
    else:
        fits = pd.to_numeric(s, errors="coerce").notna()
    bad = s[s.notna() & ~fits]
    what = "strings" if inferred in ("string", "mixed") else inferred
    return s, f"expected {spec.type}, got object ({what} like {_sample(bad)})"


def _to_float(spec: ColumnSpec, s: pd.Series, got: str) -> tuple[pd.Series | None, str | None]:
    kind = kind_of(got)
    if kind not in ("int", "float"):
        return None, _wrong_type(spec, s, got)
    if kind == "int":
        inexact = inexact_ints(s.dropna().to_numpy(dtype=np.dtype(got)), spec.type)
        if inexact.size:
            return None, (
                f"expected {spec.type}, got {got} (integers that {spec.type} cannot hold exactly like "
                f"{_sample(inexact)}; send floats if that rounding is acceptable)"
            )
    if isinstance(s.dtype, pd.api.extensions.ExtensionDtype):  # nullable Int64/Float64: NA -> NaN
        converted = pd.Series(s.to_numpy(dtype=spec.type, na_value=np.nan), index=s.index, name=s.name)
    else:
        with np.errstate(over="ignore"):  # a float64 past the float32 range: refused just below
            converted = s.astype(spec.type)
    if kind == "float" and converted.dtype.itemsize < np.dtype(got).itemsize:
        overflow = narrowed_to_inf(s.to_numpy(dtype="float64", na_value=np.nan), converted.to_numpy())
        if overflow.size:
            return None, f"expected {spec.type}, got {got} (values out of range like {_sample(overflow)})"
    return converted, None


def _to_int(spec: ColumnSpec, s: pd.Series, got: str) -> tuple[pd.Series | None, str | None]:
    kind = kind_of(got)
    if kind not in ("int", "float"):
        return None, _wrong_type(spec, s, got)
    has_nulls = bool(s.isna().any())
    if kind == "int" and not has_nulls:
        values: np.ndarray[Any, Any] = s.to_numpy(dtype=np.dtype(got))
    else:
        values = s.to_numpy(dtype="float64", na_value=np.nan)
        present = values[~np.isnan(values)]
        bad = present[~np.isfinite(present) | (present != np.round(present))]
        if bad.size:
            return None, f"expected {spec.type}, got {got} (non-integer values like {_sample(bad)})"
        if has_nulls:
            if not spec.nullable:
                return None, _nulls_problem(values)
            return pd.Series(values, index=s.index, name=s.name), None  # NaN kept: the model saw nulls
    info = np.iinfo(np.dtype(spec.type))
    if values.dtype.kind == "f":  # float(max) rounds up (2**63 for int64): compare with max + 1 in float
        outside = (values < float(info.min)) | (values >= float(info.max) + 1.0)
    else:
        outside = (values < info.min) | (values > info.max)
    if outside.any():  # checked before the cast, which would wrap around (and warn)
        return None, f"expected {spec.type}, got {got} (values out of range like {_sample(values[outside])})"
    converted = values.astype(spec.type)
    if not np.can_cast(values.dtype, converted.dtype) and not np.array_equal(converted, values):
        out = values[converted != values]
        return None, f"expected {spec.type}, got {got} (values out of range like {_sample(out)})"
    return pd.Series(converted, index=s.index, name=s.name), None


def _nulls_problem(values: np.ndarray[Any, Any]) -> str:
    rows = np.flatnonzero(np.isnan(values))
    return f"{rows.size} null value(s) in a non-nullable column (rows {rows[:_SAMPLE].tolist()})"


def _to_bool(spec: ColumnSpec, s: pd.Series, got: str) -> tuple[pd.Series | None, str | None]:
    if got != "bool":
        return None, _wrong_type(spec, s, got)
    return (None if s.isna().any() else s.astype(bool)), None


def _to_string(spec: ColumnSpec, s: pd.Series, got: str) -> tuple[pd.Series | None, str | None]:
    if got in ("string", "category"):
        return None, None
    if got == "object":
        inferred = pd.api.types.infer_dtype(s, skipna=True)
        if inferred in ("string", "empty"):
            return None, None
        bad = s[s.notna() & ~s.map(lambda v: isinstance(v, str))]
        return None, f"expected string, got object ({inferred} values like {_sample(bad)})"
    return None, _wrong_type(spec, s, got)


def _to_category(spec: ColumnSpec, s: pd.Series, got: str) -> tuple[pd.Series | None, str | None]:
    if got == "category":
        return None, None
    if got == "string" or (
        got == "object" and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty")
    ):
        return s.astype("category"), None
    return None, _wrong_type(spec, s, got)


def _to_datetime(spec: ColumnSpec, s: pd.Series, got: str) -> tuple[pd.Series | None, str | None]:
    if kind_of(got) == "datetime" and ("," in got) == ("," in spec.type):
        return s.astype(spec.type), None
    problem = _wrong_type(spec, s, got)
    if got in ("string", "object"):
        problem += "; parse it first with pandas.to_datetime"
    return None, problem


def _passthrough(spec: ColumnSpec, s: pd.Series, got: str) -> tuple[pd.Series | None, str | None]:
    if spec.type == "date" and kind_of(got) not in ("datetime", "object"):
        return None, _wrong_type(spec, s, got)
    return None, None


_CONVERTERS = {
    "float": _to_float,
    "int": _to_int,
    "bool": _to_bool,
    "string": _to_string,
    "category": _to_category,
    "datetime": _to_datetime,
    "date": _passthrough,
    "object": _passthrough,
}


def _wrong_type(spec: ColumnSpec, s: pd.Series, got: str) -> str:
    values = s.dropna()
    return f"expected {spec.type}, got {got} (values like {_sample(values)})"


# -- conversion and inference ----------------------------------------------------------------------------
def to_pandas(data: Any, names: Sequence[str] | None = None) -> pd.DataFrame:
    """A pandas DataFrame from what users hold: pandas, polars (eager or lazy), pyarrow, a dict of columns
    (or of scalars: one row), a list of records, or a numpy array (columns named by ``names``).

    Example:
        >>> to_pandas([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]).shape
        (2, 2)
    """
    if isinstance(data, pd.DataFrame):
        return data
    module = type(data).__module__.split(".")[0]
    if module == "polars":
        frame = data.collect() if hasattr(data, "collect") else data
        return frame.to_pandas()  # type: ignore[no-any-return]
    if module == "pyarrow" and hasattr(data, "to_pandas"):
        return data.to_pandas()  # type: ignore[no-any-return]
    if isinstance(data, pd.Series):
        return data.to_frame().T if names and list(data.index) == list(names) else data.to_frame()
    if isinstance(data, Mapping):
        if all(np.ndim(v) == 0 for v in data.values()):
            return pd.DataFrame({k: [v] for k, v in data.items()})
        return pd.DataFrame(dict(data))
    if isinstance(data, np.ndarray):
        array = data.reshape(1, -1) if data.ndim == 1 else data
        if array.ndim != 2:
            raise InvalidInput(f"Expected a 2-D array of rows, got an array of shape {data.shape}")
        cols = list(names) if names is not None and len(names) == array.shape[1] else None
        return pd.DataFrame(array, columns=cols)
    if isinstance(data, list) and (not data or isinstance(data[0], Mapping)):
        return pd.DataFrame.from_records(data)
    raise InvalidInput(
        f"Expected a pandas or polars DataFrame, a pyarrow Table, a dict of columns, a list of records or "
        f"a numpy array, got {type(data).__module__}.{type(data).__name__}"
    )


def _column_type(s: pd.Series) -> str:
    name = dtype_name(s.dtype)
    if name != "object":
        return name
    inferred = pd.api.types.infer_dtype(s, skipna=True)
    return {"string": "string", "empty": "string", "boolean": "bool", "date": "date"}.get(inferred, "object")


def _output_spec(y_pred: Any) -> OutputSpec:
    array = np.asarray(y_pred)
    kind = array.dtype.kind
    type_name = "string" if kind in "OUS" and pd.api.types.infer_dtype(array.ravel()) == "string" else None
    return OutputSpec(type_name or _dtype_name(array.dtype), (-1, *array.shape[1:]))


def infer_signature(X: Any, y_pred: Any = None, *, proba: bool = False) -> Signature:
    """A signature from example input (pandas, polars, pyarrow, numpy, ...) and optionally its predictions.

    A column is nullable when the example has a null in it; float columns always are. A numpy array's
    columns are named ``"0"``, ``"1"``, ...

    Example:
        >>> import pandas as pd
        >>> sig = infer_signature(pd.DataFrame({"n": [1, 2], "s": ["a", None]}), [0.5, 1.5])
        >>> [(c.name, c.type, c.nullable) for c in sig.inputs], sig.output
        ([('n', 'int64', False), ('s', 'string', True)], OutputSpec(type='float64', shape=(-1,)))
    """
    df = to_pandas(X)
    if isinstance(X, np.ndarray):
        df = df.set_axis([str(i) for i in range(df.shape[1])], axis=1)
    inputs = []
    for position, name in enumerate(df.columns):
        s = df.iloc[:, position]
        inputs.append(ColumnSpec(str(name), _column_type(s), bool(s.isna().any())))
    return Signature(inputs, _output_spec(y_pred) if y_pred is not None else None, proba)


def signature_from_contract(contract: Contract, target: str | None, *, proba: bool = False) -> Signature:
    """The signature of a model trained on data under ``contract``: every column but ``target``.

    Example:
        >>> from shipyard.data.contracts import Contract
        >>> c = Contract(name="t", columns=[{"name": "x", "type": "int", "nullable": False},
        ...                                 {"name": "y", "type": "bool"}])
        >>> sig = signature_from_contract(c, "y")
        >>> [c.to_dict() for c in sig.inputs], sig.output
        ([{'name': 'x', 'type': 'int64', 'nullable': False}], OutputSpec(type='bool', shape=(-1,)))
    """
    if target is not None and target not in contract.column_names:
        raise InvalidInput(
            f"Target {target!r} is not a column of contract {contract.name!r} "
            f"(columns: {contract.column_names})"
        )
    inputs = [
        ColumnSpec(c.name, _CONTRACT_TYPES[c.type], c.nullable) for c in contract.columns if c.name != target
    ]
    output = OutputSpec(_CONTRACT_TYPES[contract.column(target).type]) if target is not None else None
    return Signature(inputs, output, proba)
