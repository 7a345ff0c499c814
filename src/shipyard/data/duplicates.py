"""Find the rows whose key occurs more than once, over a stream of batches, in bounded memory.

Streaming validation feeds every batch's key columns (with global row positions) to a
:class:`DuplicateFinder`. While the keys seen so far fit in ``memory_bytes`` they stay in memory and the
answer is computed from them at the end, exactly as the in-memory path does. Past that, every key goes to
one of ``P`` partition files on disk chosen by its polars hash (equal keys share a hash, so they share a
partition), and each partition is read back on its own at the end: memory is about one partition, the
total key size over ``P``. Counts and examples are exact, never estimates; hash collisions only put
different keys in the same partition, where polars still tells them apart.

Limit: all rows of one key value land in one partition, so a key repeated in a large share of the rows
(a nullable primary key that is mostly null, say) makes that partition large. Nulls of a single unique
column are dropped before partitioning (nulls never count as duplicates there).

polars is imported at the top of this module on purpose: ``import shipyard`` does not import it.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

__all__ = ["MEMORY_BYTES", "DuplicateFinder"]

MEMORY_BYTES = 64 * 2**20  # keys held in memory before spilling; also the target size of a partition ×4
_ROW = "__sy_row"
_EXAMPLES = 5


class DuplicateFinder:
    """Rows whose key (one column, or several as a struct) is shared with another row.

    Args:
        columns: the key columns.
        unique_column: True for a column's ``unique`` rule (nulls are no duplicates, examples are the
            column's values); False for a primary key (nulls compare equal, examples are ``{col: value}``).
        memory_bytes: keys held in memory before they spill to partition files (default
            :data:`MEMORY_BYTES`).
        expected_rows: the input's row count when known (sizes the partitions), else None.

    Example:
        >>> finder = DuplicateFinder(["id"], unique_column=True)
        >>> finder.add(pl.DataFrame({"id": [1, 2]}), offset=0)
        >>> finder.add(pl.DataFrame({"id": [2, None]}), offset=2)
        >>> finder.result()
        (2, [1, 2], [2, 2])
    """

    def __init__(
        self,
        columns: list[str],
        *,
        unique_column: bool,
        memory_bytes: int | None = None,
        expected_rows: int | None = None,
    ) -> None:
        self.columns, self.unique_column = columns, unique_column
        self.memory_bytes = MEMORY_BYTES if memory_bytes is None else memory_bytes
        self.expected_rows = expected_rows
        self._held: list[pl.DataFrame] = []
        self._held_bytes = 0
        self._seen_rows = 0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._writers: dict[int, tuple[Any, pa.ipc.RecordBatchStreamWriter]] = {}
        self._parts = 0

    def add(self, batch: pl.DataFrame, offset: int) -> None:
        """Take the key columns of ``batch``, whose first row is row ``offset`` of the input."""
        keys = batch.select(_key_columns(batch, self.columns)).with_row_index(_ROW, offset)
        if self.unique_column:
            keys = keys.filter(pl.col(self.columns[0]).is_not_null())
        self._seen_rows += batch.height
        if self._tmp is None:
            self._held.append(keys)
            self._held_bytes += int(keys.estimated_size())
            if self._held_bytes > self.memory_bytes:
                self._start_spilling()
        else:
            self._spill(keys)

    def result(self) -> tuple[int, list[int], list[Any]]:
        """The number of duplicated rows, and the positions and values of the first five."""
        try:
            count, found = 0, list[tuple[int, Any]]()
            for frame in self._frames():
                n, pairs = self._duplicates(frame)
                count += n
                found = sorted(found + pairs, key=lambda p: p[0])[:_EXAMPLES]
            return count, [r for r, _ in found], [v for _, v in found]
        finally:
            self.close()

    def close(self) -> None:
        """Remove the partition files (``result`` does this too)."""
        for sink, writer in self._writers.values():
            writer.close()
            sink.close()
        self._writers.clear()
        self._held.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _duplicates(self, frame: pl.DataFrame) -> tuple[int, list[tuple[int, Any]]]:
        key = pl.col(self.columns[0]) if self.unique_column else pl.struct(self.columns)
        mask = key.is_duplicated()
        row = frame.select(
            mask.sum().alias("n"),
            pl.col(_ROW).filter(mask).head(_EXAMPLES).implode().alias("rows"),
            key.filter(mask).head(_EXAMPLES).implode().alias("values"),
        ).row(0, named=True)
        return int(row["n"]), list(zip([int(r) for r in row["rows"]], row["values"], strict=True))

    def _start_spilling(self) -> None:
        rows_per_byte = max(self._seen_rows, 1) / max(self._held_bytes, 1)
        expected = self.expected_rows or 0
        total = max(expected / rows_per_byte, self._held_bytes * 4)  # unknown size: assume 4× more
        self._parts = int(min(4096, max(8, math.ceil(total / (self.memory_bytes / 4)))))
        self._tmp = tempfile.TemporaryDirectory(prefix="shipyard-dupes-")
        held, self._held, self._held_bytes = self._held, [], 0
        for keys in held:
            self._spill(keys)

    def _spill(self, keys: pl.DataFrame) -> None:
        key = pl.col(self.columns[0]) if self.unique_column else pl.struct(self.columns)
        part = (key.hash(seed=0) % self._parts).alias("__sy_part")
        for (index,), frame in keys.with_columns(part).partition_by("__sy_part", as_dict=True).items():
            self._writer(int(index), frame.drop("__sy_part"))

    def _writer(self, index: int, frame: pl.DataFrame) -> None:
        table = frame.to_arrow()
        if index not in self._writers:
            assert self._tmp is not None
            sink = pa.OSFile(str(Path(self._tmp.name) / f"{index}.arrows"), "wb")
            self._writers[index] = (sink, pa.ipc.new_stream(sink, table.schema))
        self._writers[index][1].write_table(table)

    def _frames(self) -> Iterator[pl.DataFrame]:
        """The held keys as one frame, or each partition file read back in turn (one in memory)."""
        if self._tmp is None:
            if self._held:
                yield pl.concat(self._held)
            return
        for sink, writer in self._writers.values():
            writer.close()
            sink.close()
        indices = sorted(self._writers)
        self._writers.clear()
        for index in indices:
            with pa.OSFile(str(Path(self._tmp.name) / f"{index}.arrows"), "rb") as source:
                frame = pl.from_arrow(pa.ipc.open_stream(source).read_all())
            assert isinstance(frame, pl.DataFrame)
            yield frame


def _key_columns(batch: pl.DataFrame, columns: list[str]) -> list[pl.Expr]:
    """The key columns; categoricals as strings so partition files need no per-batch dictionaries."""
    out = []
    for name in columns:
        dtype = batch.schema[name]
        expr = pl.col(name)
        out.append(expr.cast(pl.String) if isinstance(dtype, pl.Categorical | pl.Enum) else expr)
    return out
