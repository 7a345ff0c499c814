"""Read tabular inputs as a stream of polars batches, for checks that must not hold a whole table.

:func:`open_batches` accepts what streaming validation accepts: a Parquet file or a folder of Parquet
files (a path), a ``pyarrow.parquet.ParquetFile``, a ``pyarrow.dataset.Dataset``, a dataset version
(a :class:`~shipyard.entities.DatasetVersion` or a ``"name@vN"`` / ``"name@DIGEST"`` reference, whose
blob is downloaded and verified to a temporary file first), or a table already in memory (sliced).
Memory is about one Parquet row group plus one batch.

polars is imported at the top of this module on purpose: ``import shipyard`` does not import it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from shipyard.data.contracts import to_polars
from shipyard.data.versions import parse_dataset_ref
from shipyard.entities import DatasetVersion
from shipyard.errors import InvalidInput
from shipyard.tracking import Client
from shipyard.tracking.fluent import get_client

__all__ = ["BATCH_ROWS", "Batches", "is_in_memory", "open_batches"]

BATCH_ROWS = 131_072  # rows per batch when streaming: ~10-50 MB for typical tables of 10-50 columns


@dataclass
class Batches:
    """An input as ``schema`` (an empty frame with the input's columns) and an iterator of batches."""

    schema: pl.DataFrame
    batches: Iterator[pl.DataFrame]
    rows: int | None  # the total when known up front (Parquet metadata), else None


def is_in_memory(data: Any) -> bool:
    """True for pandas / polars DataFrames, polars LazyFrames and pyarrow Tables."""
    if isinstance(data, pl.DataFrame | pl.LazyFrame | pa.Table):
        return True
    return type(data).__module__.split(".")[0] == "pandas"


@contextmanager
def open_batches(
    data: Any, batch_rows: int = BATCH_ROWS, *, client: Client | None = None
) -> Iterator[Batches]:
    """Open ``data`` as a stream of polars DataFrames of at most ``batch_rows`` rows.

    Example:
        >>> with open_batches(pl.DataFrame({"x": [1, 2, 3]}), batch_rows=2) as source:
        ...     [b.height for b in source.batches]
        [2, 1]
    """
    if batch_rows < 1:
        raise InvalidInput(f"batch_rows must be at least 1, got {batch_rows}")
    if is_in_memory(data):
        yield _frame_batches(to_polars(data), batch_rows)
    elif isinstance(data, DatasetVersion) or (isinstance(data, str) and not os.path.exists(data)):
        with _dataset_version_file(data, client) as path:
            yield _parquet_batches(path, batch_rows)
    elif isinstance(data, str | os.PathLike):
        yield _path_batches(Path(data), batch_rows)
    else:
        yield _arrow_batches(data, batch_rows)


def _frame_batches(frame: pl.DataFrame, batch_rows: int) -> Batches:
    return Batches(frame.clear(), frame.iter_slices(batch_rows), frame.height)


def _from_schema(schema: pa.Schema) -> pl.DataFrame:
    frame = pl.from_arrow(schema.empty_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def _converted(batches: Iterator[pa.RecordBatch]) -> Iterator[pl.DataFrame]:
    for batch in batches:
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        yield frame


def _parquet_batches(path: Path | Any, batch_rows: int) -> Batches:
    import pyarrow.parquet as pq

    try:
        # pre_buffer (pyarrow's default) reads ahead and keeps what it read: memory grows with the file
        parquet = path if isinstance(path, pq.ParquetFile) else pq.ParquetFile(path, pre_buffer=False)
    except (OSError, pa.ArrowException) as exc:
        raise InvalidInput(
            f"Cannot read {path} as Parquet: {exc}; validate Parquet files or folders"
        ) from None
    schema = parquet.schema_arrow
    batches = parquet.iter_batches(batch_size=batch_rows)
    return Batches(_from_schema(schema), _converted(batches), parquet.metadata.num_rows)


def _path_batches(path: Path, batch_rows: int) -> Batches:
    if path.is_file():
        return _parquet_batches(path, batch_rows)
    import pyarrow.dataset as ds

    files = sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".parquet", ".pq"))
    if not files:
        raise InvalidInput(f"Folder {path} holds no .parquet files; validate a Parquet file or folder")
    return _arrow_batches(ds.dataset(files, format="parquet"), batch_rows)


def _arrow_batches(data: Any, batch_rows: int) -> Batches:
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    if isinstance(data, pq.ParquetFile):
        return _parquet_batches(data, batch_rows)
    if isinstance(data, ds.Dataset):
        parquet = isinstance(data, ds.FileSystemDataset) and isinstance(data.format, ds.ParquetFileFormat)
        options = ds.ParquetFragmentScanOptions(pre_buffer=False) if parquet else None
        batches = data.to_batches(batch_size=batch_rows, fragment_scan_options=options)
        return Batches(_from_schema(data.schema), _converted(batches), None)
    raise InvalidInput(
        f"Cannot validate a {type(data).__module__}.{type(data).__name__}; pass a pandas or polars "
        "DataFrame, a pyarrow Table or Dataset, a Parquet path, or a dataset reference such as 'flights@v2'"
    )


@contextmanager
def _dataset_version_file(ref: str | DatasetVersion, client: Client | None) -> Iterator[Path]:
    """The version's blob, verified against its digest, as a temporary local Parquet file."""
    if isinstance(ref, str) and "@" not in ref:
        raise InvalidInput(
            f"{ref!r} is neither an existing file or folder nor a dataset reference such as 'flights@v2'"
        )
    client = client or get_client()
    version = (
        ref if isinstance(ref, DatasetVersion) else client.store.get_dataset_version(*parse_dataset_ref(ref))
    )
    with tempfile.TemporaryDirectory(prefix="shipyard-validate-") as tmp:
        local = Path(tmp) / "data.parquet"
        client.blobs.download(version.digest, local)
        yield local
