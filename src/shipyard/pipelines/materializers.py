"""Materializers: how a step output of each type becomes bytes in the blob store and comes back.

A materializer is chosen by the output's type (the most specific registered class in its MRO wins):
pandas / polars / Arrow → Parquet, numpy arrays → ``.npy`` (``allow_pickle=False``), JSON values →
JSON, scikit-learn / XGBoost / LightGBM models → the registry's flavors (skops or native files, a
tarball of the model directory). Anything else needs ``pickle=True`` on the step, and is read back
through the registry's restricted unpickler. :func:`register_materializer` adds your own.
"""

from __future__ import annotations

import io
import json
import pickle
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from shipyard.errors import InvalidInput

__all__ = [
    "Materializer",
    "MaterializerOptions",
    "StreamingMaterializer",
    "materializer_by_name",
    "materializer_for",
    "register_materializer",
]


@dataclass(frozen=True)
class MaterializerOptions:
    """What a materializer may need besides the value: the unpickle allowlist for reading back."""

    allowlist: tuple[str, ...] = ()


@runtime_checkable
class Materializer(Protocol):
    """Turns values of some types into bytes and back.

    ``name`` is stored with each output (it picks the loader); ``libraries`` are the distributions
    whose versions enter the cache key of steps that produce or consume such values.
    """

    name: str
    libraries: tuple[str, ...]

    def save(self, value: Any) -> bytes: ...

    def load(self, data: bytes, options: MaterializerOptions) -> Any: ...


@runtime_checkable
class StreamingMaterializer(Materializer, Protocol):
    """A materializer that can also write a value straight into a file object (the blob store's
    temporary file), so large outputs are not held twice in memory nor copied afterwards."""

    def save_to(self, value: Any, sink: IO[bytes]) -> None: ...


def parquet_options(schema: Any) -> dict[str, Any]:
    """How step outputs are written: float columns plain and uncompressed (random floats do not
    compress, and encoding them cost more than the step's work), other columns dictionary-encoded
    and LZ4-compressed (fast, and what makes integers and strings small).

    Example:
        >>> import pyarrow as pa
        >>> parquet_options(pa.schema([("x", pa.float64()), ("k", pa.string())]))["compression"]
        {'x': 'none', 'k': 'lz4'}
    """
    import pyarrow as pa

    fields = list(schema)
    names = [f.name for f in fields]
    nested = any(pa.types.is_nested(f.type) for f in fields)
    if nested or len(set(names)) != len(names):  # per-column options need unique, flat columns
        return {"compression": "lz4", "use_dictionary": True}
    floats = {f.name for f in fields if pa.types.is_floating(f.type)}
    return {
        "compression": {n: "none" if n in floats else "lz4" for n in names},
        "use_dictionary": [n for n in names if n not in floats],
    }


class ParquetMaterializer:
    """pandas, polars and pyarrow tables as Parquet; read back as the type that was written."""

    name: str = "parquet"
    libraries: tuple[str, ...] = ("pyarrow", "pandas", "polars")

    def save(self, value: Any) -> bytes:
        buf = io.BytesIO()
        self.save_to(value, buf)
        return buf.getvalue()

    def save_to(self, value: Any, sink: IO[bytes]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        kind = type(value).__module__.split(".")[0]
        table = value if isinstance(value, pa.Table) else value.to_arrow() if kind == "polars" else None
        if table is None:
            table = pa.Table.from_pandas(value)
        meta = dict(table.schema.metadata or {})
        meta[b"shipyard.kind"] = kind.encode()
        table = table.replace_schema_metadata(meta)
        pq.write_table(table, sink, **parquet_options(table.schema))

    def load(self, data: bytes, options: MaterializerOptions) -> Any:
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(data))
        kind = (table.schema.metadata or {}).get(b"shipyard.kind", b"pandas").decode()
        if kind == "pyarrow":
            return table
        if kind == "polars":
            import polars as pl

            return pl.from_arrow(table)
        return table.to_pandas()


class NumpyMaterializer:
    """numpy arrays as ``.npy``; object arrays are refused (they would need pickle)."""

    name: str = "npy"
    libraries: tuple[str, ...] = ("numpy",)

    def save(self, value: Any) -> bytes:
        import numpy as np

        buf = io.BytesIO()
        try:
            np.save(buf, value, allow_pickle=False)
        except ValueError as exc:
            raise InvalidInput(
                f"Cannot store a numpy array of dtype {value.dtype} as .npy ({exc}); "
                "use a numeric dtype or set pickle=True on the step"
            ) from None
        return buf.getvalue()

    def load(self, data: bytes, options: MaterializerOptions) -> Any:
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)


class JsonMaterializer:
    """dicts, lists, strings, numbers, booleans and None as JSON (keys must be strings)."""

    name: str = "json"
    libraries: tuple[str, ...] = ()

    def save(self, value: Any) -> bytes:
        try:
            return json.dumps(value, allow_nan=True, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            raise InvalidInput(
                f"Cannot store a {type(value).__name__} output as JSON ({exc}); return plain "
                "dict/list/str/int/float/bool/None values, or set pickle=True on the step"
            ) from None

    def load(self, data: bytes, options: MaterializerOptions) -> Any:
        return json.loads(data)


def _tar_directory(directory: Path) -> bytes:
    """A byte-stable tarball of ``directory`` (sorted names, zero times and owners)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            info = tarfile.TarInfo(path.relative_to(directory).as_posix())
            data = path.read_bytes()
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class ModelMaterializer:
    """scikit-learn, XGBoost and LightGBM models through the registry's flavors (never pickle).

    The model directory (library file + ``shipyard-model.yaml`` with file digests) is stored as one
    tarball; loading verifies every file and applies the unpickle allowlist, like ``sy.load_model``.
    """

    name: str = "model"
    libraries: tuple[str, ...] = ("scikit-learn", "skops", "xgboost", "lightgbm")

    def save(self, value: Any) -> bytes:
        from shipyard.registry.flavors import save_model_dir

        with tempfile.TemporaryDirectory(prefix="shipyard-step-model-") as tmp:
            directory = Path(tmp) / "model"
            save_model_dir(value, directory)
            return _tar_directory(directory)

    def load(self, data: bytes, options: MaterializerOptions) -> Any:
        from shipyard.registry.flavors import load_model_dir

        with tempfile.TemporaryDirectory(prefix="shipyard-step-model-") as tmp:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
                tar.extractall(tmp, filter="data")  # the data filter refuses links and escapes
            return load_model_dir(tmp, allowlist=list(options.allowlist)).raw


class PickleMaterializer:
    """Any object, only when the step says ``pickle=True``; read back by the restricted unpickler."""

    name: str = "pickle"
    libraries: tuple[str, ...] = ()

    def save(self, value: Any) -> bytes:
        return pickle.dumps(value, protocol=5)

    def load(self, data: bytes, options: MaterializerOptions) -> Any:
        from shipyard.registry.safety import build_allowlist, safe_loads

        return safe_loads(data, build_allowlist(options.allowlist))


_LOCK = threading.Lock()
_BY_TYPE: dict[type, Materializer] = {}
_BY_NAME: dict[str, Materializer] = {
    m.name: m for m in (ParquetMaterializer(), NumpyMaterializer(), JsonMaterializer(), ModelMaterializer())
}
PICKLE = PickleMaterializer()
_JSON_TYPES = (dict, list, str, int, float, bool, type(None))


def register_materializer(type_: type, materializer: Materializer) -> None:
    """Store outputs of ``type_`` (and its subclasses) with ``materializer``.

    Register at import time of the module that defines your steps, so worker processes see it too.

    Example:
        >>> class Text:
        ...     name, libraries = "text", ()
        ...     def save(self, value): return value.encode()
        ...     def load(self, data, options): return data.decode()
        >>> class Note(str): ...
        >>> register_materializer(Note, Text())
    """
    if not isinstance(type_, type):
        raise InvalidInput(f"register_materializer takes a class, got {type_!r}")
    if not isinstance(materializer, Materializer) or not materializer.name:
        raise InvalidInput(
            f"{materializer!r} is not a materializer: it needs name, libraries, save(value) -> bytes "
            "and load(data, options)"
        )
    with _LOCK:
        known = _BY_NAME.get(materializer.name)
        if known is not None and known is not materializer and type(known) is not type(materializer):
            raise InvalidInput(f"Materializer name {materializer.name!r} is taken by {known!r}; pick another")
        _BY_NAME[materializer.name] = materializer
        _BY_TYPE[type_] = materializer


def _builtin_for(value: Any) -> Materializer | None:
    module = type(value).__module__.split(".")[0]
    name = type(value).__name__
    if module in ("pandas", "polars", "pyarrow") and name in ("DataFrame", "Table"):
        return _BY_NAME["parquet"]
    if module == "numpy" and name == "ndarray":
        return _BY_NAME["npy"]
    if type(value) in _JSON_TYPES:
        return _BY_NAME["json"]
    if module in ("sklearn", "xgboost", "lightgbm") or _is_sklearn_estimator(value):
        return _BY_NAME["model"]
    return None


def _is_sklearn_estimator(value: Any) -> bool:
    import sys

    base = getattr(sys.modules.get("sklearn.base"), "BaseEstimator", None)
    return base is not None and isinstance(value, base)


def materializer_for(value: Any, *, allow_pickle: bool = False, step: str = "") -> Materializer:
    """The materializer that stores ``value`` (registered types first, then the built-ins).

    Example:
        >>> materializer_for({"auc": 0.9}).name
        'json'
    """
    with _LOCK:
        for cls in type(value).__mro__:
            if cls in _BY_TYPE:
                return _BY_TYPE[cls]
    found = _builtin_for(value)
    if found is not None:
        return found
    if allow_pickle:
        return PICKLE
    raise InvalidInput(
        f"Step '{step}' returned a {type(value).__module__}.{type(value).__qualname__}, which Shipyard "
        "has no safe format for; return a DataFrame, numpy array, JSON value or model, register one "
        "with sy.register_materializer(type, materializer), or opt in with @sy.step(pickle=True)"
    )


def materializer_by_name(name: str) -> Materializer:
    """The materializer stored with an output (``parquet``, ``npy``, ``json``, ``model``, ``pickle`` …)."""
    if name == PICKLE.name:
        return PICKLE
    with _LOCK:
        found = _BY_NAME.get(name)
    if found is None:
        raise InvalidInput(
            f"No materializer named {name!r} is registered in this process; import the module that "
            "calls sy.register_materializer for it"
        )
    return found


def libraries_for_annotation(annotation: Any) -> tuple[str, ...]:
    """Distributions whose versions matter for values of a type annotation (best effort)."""
    module = getattr(annotation, "__module__", "") or ""
    root = module.split(".")[0]
    if root in ("pandas", "polars", "pyarrow"):
        return ParquetMaterializer.libraries
    if root == "numpy":
        return NumpyMaterializer.libraries
    if root in ("sklearn", "xgboost", "lightgbm"):
        return ModelMaterializer.libraries
    with _LOCK:
        for cls in getattr(annotation, "__mro__", ()):
            if cls in _BY_TYPE:
                return _BY_TYPE[cls].libraries
    return ()
