"""Dataset versions: content-addressed Parquet in the artifact store, recorded in the metadata store.

``log_dataset`` turns what the user holds (pandas, polars, pyarrow, a CSV or
Parquet file, a folder of them) into one Parquet file, streaming batch by batch
for files (a file larger than memory never has to fit in it), hashes it with
BLAKE3, stores it once and records a version: identical data gives the same
version. ``load_dataset("name@v3")`` (or ``@latest``, ``@<digest prefix>``)
verifies and reads it back.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shipyard.entities import DatasetVersion, DatasetVersionCreate
from shipyard.errors import InvalidInput, NotFound
from shipyard.tracking import Client
from shipyard.tracking.fluent import get_client

if TYPE_CHECKING:
    import pyarrow as pa

    from shipyard.data.contracts import Contract
    from shipyard.data.diff import DatasetDiff
    from shipyard.data.profiles import Profile

__all__ = ["diff_datasets", "load_dataset", "load_profile", "log_dataset", "parse_dataset_ref"]

Output = Literal["pandas", "polars", "arrow"]
_BATCH_ROWS = 65_536


def parse_dataset_ref(ref: str) -> tuple[str, str]:
    """Split ``name@v3`` / ``name@latest`` / ``name@<digest prefix>`` / ``name`` into (name, ref).

    Example:
        >>> parse_dataset_ref("flights@v2")
        ('flights', 'v2')
    """
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInput("A dataset reference must be a non-empty string such as 'flights@v2'")
    name, _, version = ref.strip().rpartition("@") if "@" in ref else (ref.strip(), "", "latest")
    if not name:
        raise InvalidInput(f"Dataset reference {ref!r} has no name before '@'")
    return name, version or "latest"


def _check_columns(names: list[str]) -> None:
    dupes = sorted(name for name, count in Counter(names).items() if count > 1)
    if dupes:
        raise InvalidInput(f"Duplicate column names {dupes}: rename them before logging the dataset")


def _to_table(data: Any) -> pa.Table:
    import pyarrow as pa

    if isinstance(data, pa.Table):
        _check_columns(data.column_names)
        return data
    module = type(data).__module__
    if module.startswith("polars"):
        _check_columns(list(data.columns))
        return data.to_arrow()
    if module.startswith("pandas") and hasattr(data, "columns"):
        _check_columns([str(c) for c in data.columns])
        try:
            return pa.Table.from_pandas(data, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidInput(
                f"Cannot store this DataFrame as Parquet: {exc} (mixed types in a column?)"
            ) from None
    raise InvalidInput(
        f"log_dataset takes a pandas or polars DataFrame, a pyarrow Table or a CSV/Parquet path, "
        f"got {type(data).__name__}"
    )


def _batches_from_path(path: Path) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Stream record batches out of a CSV/Parquet file or a folder of them."""
    import pyarrow.dataset as ds

    if not path.exists():
        raise InvalidInput(f"Cannot log dataset: {path} does not exist")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    kinds = {".parquet" if p.suffix.lower() == ".pq" else p.suffix.lower() for p in files}
    if len(kinds) != 1 or not kinds <= {".csv", ".parquet"}:
        raise InvalidInput(
            f"{path}: expected CSV or Parquet files of one kind, found {sorted(kinds) or 'none'}"
        )
    fmt = "csv" if ".csv" in kinds else "parquet"
    try:
        dataset = ds.dataset([str(f) for f in files], format=fmt)
        _check_columns(dataset.schema.names)
        return dataset.schema, dataset.to_batches(batch_size=_BATCH_ROWS)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"Cannot read {path} as {fmt.upper()}: {exc}") from None


@contextmanager
def _parquet_file(data: Any) -> Iterator[tuple[Path, str]]:
    """Yield a Parquet file holding ``data`` and a description of its source."""
    import pyarrow as pa

    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if path.is_file() and path.suffix.lower() in (".parquet", ".pq"):
            yield path, str(path.resolve())  # stored as it is: hashed and copied streaming
            return
        schema, batches = _batches_from_path(path)
    else:
        table = _to_table(data)
        schema, batches = table.schema, iter(table.to_batches(max_chunksize=_BATCH_ROWS))
    with tempfile.TemporaryDirectory(prefix="shipyard-dataset-") as tmp:
        out = Path(tmp) / "data.parquet"
        try:
            _write_canonical(out, schema, batches)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise InvalidInput(f"Cannot convert the data to Parquet: {exc}") from None
        yield out, str(Path(data).resolve()) if isinstance(data, (str, os.PathLike)) else type(data).__name__


def _canonical_schema(schema: pa.Schema) -> pa.Schema:
    """The schema without writer metadata, large/view string types folded into plain ones."""
    import pyarrow as pa

    fold = {pa.large_string(): pa.string(), pa.string_view(): pa.string(), pa.large_binary(): pa.binary()}
    fields = [pa.field(f.name, fold.get(f.type, f.type), f.nullable) for f in schema]
    return pa.schema(fields)


def _write_canonical(out: Path, schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> None:
    """Write Parquet whose bytes depend on the data only, not on where it came from.

    pandas metadata, polars' large strings and the source's batch sizes would otherwise change
    the bytes (and the digest) of identical data: the schema is canonicalised and row groups are
    cut at exactly ``_BATCH_ROWS`` rows.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = _canonical_schema(schema)
    pending: list[pa.RecordBatch] = []
    rows = 0
    with pq.ParquetWriter(out, target, compression="zstd") as writer:
        for batch in batches:
            pending.append(batch.cast(target) if batch.schema != target else batch)
            rows += batch.num_rows
            while rows >= _BATCH_ROWS:
                table = pa.Table.from_batches(pending, target)
                writer.write_table(table.slice(0, _BATCH_ROWS), row_group_size=_BATCH_ROWS)
                rest = table.slice(_BATCH_ROWS)
                pending, rows = rest.to_batches(), rest.num_rows
        if rows:
            writer.write_table(pa.Table.from_batches(pending, target), row_group_size=_BATCH_ROWS)


def log_dataset(
    data: Any,
    name: str,
    *,
    source: str | None = None,
    client: Client | None = None,
    profile: bool = True,
    contract: Contract | str | os.PathLike[str] | None = None,
) -> DatasetVersion:
    """Store ``data`` as a new version of dataset ``name`` (or return the version holding it).

    Example:
        >>> import shipyard as sy, pandas as pd
        >>> v = sy.log_dataset(pd.DataFrame({"a": [1, 2]}), name="toy")  # doctest: +SKIP
        >>> v.ref  # doctest: +SKIP
        'toy@v1'
    """
    import pyarrow.parquet as pq

    client = client or get_client()
    checked = None
    if contract is not None:
        from shipyard.data.registry import register_contract, resolve_contract  # polars: only when used

        checked = resolve_contract(contract, client)
    with _parquet_file(data) as (path, described):
        if checked is not None:
            _enforce(checked, path)
        meta = pq.ParquetFile(path).schema_arrow
        rows = pq.ParquetFile(path).metadata.num_rows
        with ThreadPoolExecutor(max_workers=1) as pool:  # profile while the bytes are hashed and copied
            profiled = pool.submit(_store_profile, client, path, rows) if profile else None
            digest, size = client.blobs.put_file(path)
            profile_digest = profiled.result() if profiled is not None else None
    spec = DatasetVersionCreate(
        name=name,
        digest=digest,
        rows=rows,
        num_columns=len(meta.names),
        schema=[(f.name, str(f.type)) for f in meta],
        size=size,
        source=source if source is not None else described,
        created_by=client.settings.user,
        profile_digest=profile_digest,
        contract_digest=register_contract(checked, client=client).digest if checked is not None else None,
    )
    try:
        return client.store.get_dataset_version(name, digest)  # the same data: the version it already is
    except NotFound:
        pass
    return client.store.create_dataset_version(spec)  # audited by the store, in the same transaction


def _enforce(contract: Contract, path: Path) -> None:
    """Validate the data against its contract (strict) and refuse raw PII in columns marked PII."""
    import polars as pl

    from shipyard.data.pii import find_raw_pii
    from shipyard.data.validation import validate

    validate(path, contract, strict=True)  # streams the file: a large input is checked in bounded memory
    names = set(pl.read_parquet_schema(path))
    pii_columns = [c.name for c in contract.columns if c.pii and c.name in names]
    raw = find_raw_pii(pl.read_parquet(path, columns=pii_columns), pii_columns) if pii_columns else []
    if raw:
        raise InvalidInput(
            f"Columns {raw} are marked PII in contract '{contract.name}' and hold raw personal data; "
            "anonymize them first (shipyard.data.pii.anonymize(df, {column: 'hash'}, salt=...))",
            details={"columns": raw},
        )


PROFILE_ROWS = 1_000_000


def _store_profile(client: Client, path: Path, rows: int) -> str:
    """Profile the Parquet file and store the profile JSON as a blob.

    Above ``PROFILE_ROWS`` rows the profile is computed on evenly spaced row groups holding about
    that many rows, so a big file is not decompressed in full just to be profiled; distributions,
    quantiles and histograms of a million rows spread across the file are as good a drift
    reference as the full data. The version's row count stays exact.
    """
    import polars as pl
    import pyarrow.parquet as pq

    from shipyard.data.profiles import profile

    if rows <= PROFILE_ROWS:
        data: Any = pl.scan_parquet(path)
    else:
        parquet = pq.ParquetFile(path)
        sizes = [parquet.metadata.row_group(i).num_rows for i in range(parquet.metadata.num_row_groups)]
        picks: list[int] = []
        for wanted in range(1, len(sizes) + 1):  # fewest evenly spaced groups holding enough rows
            picks = sorted({round(i * (len(sizes) - 1) / max(wanted - 1, 1)) for i in range(wanted)})
            if sum(sizes[i] for i in picks) >= PROFILE_ROWS:
                break
        data = pl.from_arrow(parquet.read_row_groups(picks))
    digest, _ = client.blobs.put_bytes(profile(data).to_json().encode())
    return digest


def _resolve(ref: str | DatasetVersion, client: Client) -> DatasetVersion:
    return (
        ref if isinstance(ref, DatasetVersion) else client.store.get_dataset_version(*parse_dataset_ref(ref))
    )


def load_profile(ref: str | DatasetVersion, *, client: Client | None = None) -> Profile:
    """The profile stored with a version (counts, quantiles, histograms: a drift reference).

    Example:
        >>> sy.load_profile("flights@v1").columns["dep_delay"].mean  # doctest: +SKIP
    """
    from shipyard.data.profiles import Profile

    client = client or get_client()
    version = _resolve(ref, client)
    if version.profile_digest is None:
        raise NotFound(f"{version.ref} was logged without a profile (log it again with profile=True)")
    return Profile.from_json(client.blobs.get_bytes(version.profile_digest).decode())


def diff_datasets(
    a: str | DatasetVersion, b: str | DatasetVersion, *, client: Client | None = None
) -> DatasetDiff:
    """What changed from version ``a`` to version ``b``: schema, rows, per-column distribution shift.

    ``b``'s data is binned into ``a``'s stored reference edges (exact PSI), the KS statistic of numeric and
    datetime columns is computed exactly from both versions' data (scipy's ``ks_2samp`` statistic), and each
    column gets a verdict in plain words.

    Example:
        >>> print(sy.diff_datasets("flights@v1", "flights@v2"))  # doctest: +SKIP
    """
    from shipyard.data.diff import diff_data

    client = client or get_client()
    return diff_data(
        load_profile(a, client=client),
        load_dataset(_resolve(b, client), output="polars", client=client),
        reference_data=load_dataset(_resolve(a, client), output="polars", client=client),
    )


def load_dataset(
    ref: str | DatasetVersion, *, output: Output = "pandas", client: Client | None = None
) -> Any:
    """Read a dataset version back (verified against its digest) as pandas, polars or pyarrow.

    Example:
        >>> df = sy.load_dataset("flights@v2")  # doctest: +SKIP
    """
    import pyarrow.parquet as pq

    client = client or get_client()
    version = (
        ref if isinstance(ref, DatasetVersion) else client.store.get_dataset_version(*parse_dataset_ref(ref))
    )
    if output not in ("pandas", "polars", "arrow"):
        raise InvalidInput(f"output must be 'pandas', 'polars' or 'arrow', got {output!r}")
    with tempfile.TemporaryDirectory(prefix="shipyard-load-") as tmp:
        local = Path(tmp) / "data.parquet"
        client.blobs.download(version.digest, local)
        table = pq.read_table(local)
    if output == "arrow":
        return table
    if output == "polars":
        import polars as pl

        return pl.from_arrow(table)
    return table.to_pandas()
