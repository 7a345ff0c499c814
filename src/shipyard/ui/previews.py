"""What an artifact's preview page shows: an image, pretty JSON, a table's head, text, or its facts.

Images are recognised by their first bytes (PNG, JPEG, GIF, WebP), never by their name, and are
the only artifacts served with their own content type (see :func:`raw_headers`): anything else,
an SVG or an HTML file included, goes out as an ``application/octet-stream`` attachment under a
sandboxing content security policy, so an uploaded file never runs script on the UI's origin.
Previews read only the start of a blob (``HEAD_BYTES``); a Parquet file, whose schema is at its
end, is downloaded (verified) when it is at most ``MAX_PARQUET_BYTES`` and only its first rows are
read. Everything here is shown as text by the templates (autoescaped).
"""

from __future__ import annotations

import codecs
import io
import json
import posixpath
import tempfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from shipyard.artifacts import BlobStore
from shipyard.entities import Artifact

__all__ = [
    "HEAD_BYTES",
    "HEAD_ROWS",
    "MAX_PARQUET_BYTES",
    "TEXT_BYTES",
    "Preview",
    "TableHead",
    "image_type",
    "preview",
    "raw_chunks",
    "raw_headers",
    "read_head",
]

HEAD_BYTES = 256 * 1024
"""Bytes of a JSON or CSV artifact a preview reads (and the most any preview reads of a blob)."""
TEXT_BYTES = 64 * 1024
"""Bytes of a text artifact a preview shows."""
HEAD_ROWS = 20
"""Rows of a CSV or Parquet artifact a preview shows."""
MAX_PARQUET_BYTES = 128 * 2**20
"""Largest Parquet artifact previewed (its schema is in its footer: the file is downloaded first)."""
RAW_CSP = "sandbox; default-src 'none'"
"""The raw route's policy: even a document a browser renders from it runs no script and loads nothing."""

_IMAGES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_PARQUET_MAGIC = b"PAR1"
_SNIFF = 8192


def image_type(head: bytes) -> str | None:
    """The content type of a raster image (PNG, JPEG, GIF, WebP) starting with ``head``, else None.

    Example:
        >>> image_type(b"GIF89a..."), image_type(b"<svg onload=alert(1)>")
        ('image/gif', None)
    """
    for magic, media_type in _IMAGES:
        if head.startswith(magic):
            return media_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def read_head(blobs: BlobStore, digest: str, limit: int) -> bytes:
    """The first ``limit`` bytes of a blob (verified against its digest when that is all of it)."""
    out = bytearray()
    chunks = blobs.iter_chunks(digest, chunk_size=max(min(limit + 1, 1 << 20), 1))
    try:
        for chunk in chunks:
            out += chunk
            if len(out) > limit:
                break
    finally:  # close the blob's file now, not when the generator is collected
        if isinstance(chunks, Generator):
            chunks.close()
    return bytes(out[:limit])


@dataclass(frozen=True)
class TableHead:
    """The first rows of a table: column names and types, rows as text, and its row count if known."""

    columns: list[tuple[str, str]]
    rows: list[list[str]]
    total_rows: int | None


@dataclass(frozen=True)
class Preview:
    """How to show one artifact: ``kind`` is ``image``, ``json``, ``table``, ``text`` or ``binary``;
    ``note`` says what was left out or why it shows as it does."""

    kind: str
    media_type: str = ""
    text: str = ""
    table: TableHead | None = None
    notes: list[str] = field(default_factory=list)


def _kb(n: int) -> str:
    return f"{n // 1024} KB"


def _is_text(sample: bytes) -> bool:
    if b"\x00" in sample:
        return False
    try:  # not final: a character cut at the end of the sample is fine
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def _csv_head(data: bytes, whole: bool, delimiter: str) -> TableHead:
    import pyarrow.csv as pacsv

    if not whole:  # drop the last line: it may be cut
        data = data[: data.rfind(b"\n") + 1]
    table = pacsv.read_csv(io.BytesIO(data), parse_options=pacsv.ParseOptions(delimiter=delimiter))
    columns = [(f.name, str(f.type)) for f in table.schema]
    rows = [[_cell(v) for v in row.values()] for row in table.slice(0, HEAD_ROWS).to_pylist()]
    return TableHead(columns, rows, table.num_rows if whole else None)


def _parquet_head(blobs: BlobStore, digest: str) -> TableHead:
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="shipyard-preview-") as tmp:
        local = Path(tmp) / "artifact.parquet"
        blobs.download(digest, local)  # verified
        with pq.ParquetFile(local) as parquet:
            columns = [(f.name, str(f.type)) for f in parquet.schema_arrow]
            batch = next(parquet.iter_batches(batch_size=HEAD_ROWS), None)  # the first row group only
            rows = [] if batch is None else [[_cell(v) for v in r.values()] for r in batch.to_pylist()]
            return TableHead(columns, rows[:HEAD_ROWS], parquet.metadata.num_rows)


def preview(blobs: BlobStore, artifact: Artifact) -> Preview:
    """What the preview page shows of ``artifact`` (reads at most ``HEAD_BYTES`` of it, or a
    Parquet file whole up to ``MAX_PARQUET_BYTES``).

    Example:
        >>> preview(blobs, Artifact("metrics.json", digest, 12)).kind  # doctest: +SKIP
        'json'
    """
    import pyarrow as pa

    head = read_head(blobs, artifact.digest, HEAD_BYTES)
    whole = artifact.size <= HEAD_BYTES
    suffix = posixpath.splitext(artifact.path)[1].lower()
    media_type = image_type(head)
    if media_type is not None:
        return Preview("image", media_type=media_type)
    if head.startswith(_PARQUET_MAGIC) or suffix == ".parquet":
        if artifact.size > MAX_PARQUET_BYTES:
            too_big = f"Parquet files over {MAX_PARQUET_BYTES // 2**20} MB are not previewed."
            return Preview("binary", notes=[too_big])
        try:
            return Preview("table", table=_parquet_head(blobs, artifact.digest))
        except (pa.ArrowException, OSError) as exc:
            return Preview("binary", notes=[f"Not readable as Parquet: {exc}"])
    notes = [] if whole else [f"The first {_kb(HEAD_BYTES)} of {artifact.size:,} bytes."]
    if suffix == ".json":
        text = head.decode("utf-8", "replace")
        if not whole:
            return Preview("text", text=text, notes=[*notes, "Shown as text: cut there, so not parsed."])
        try:
            pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except (ValueError, RecursionError) as exc:
            return Preview("text", text=text, notes=[f"Shown as text: not valid JSON ({exc})."])
        return Preview("json", text=pretty)
    if suffix in (".csv", ".tsv"):
        try:
            table = _csv_head(head, whole, "\t" if suffix == ".tsv" else ",")
        except (pa.ArrowException, ValueError) as exc:
            text = head[:TEXT_BYTES].decode("utf-8", "replace")
            return Preview("text", text=text, notes=[*notes, f"Shown as text: not readable as CSV ({exc})."])
        if table.total_rows is None:
            notes.append(f"Rows counted in the first {_kb(HEAD_BYTES)} only.")
        return Preview("table", table=table, notes=notes)
    if _is_text(head[:_SNIFF]):
        cut = len(head) > TEXT_BYTES or not whole
        notes = [f"The first {_kb(TEXT_BYTES)} of {artifact.size:,} bytes."] if cut else []
        return Preview("text", text=head[:TEXT_BYTES].decode("utf-8", "replace"), notes=notes)
    return Preview("binary")


def raw_headers(artifact: Artifact, media_type: str | None) -> dict[str, str]:
    """The raw route's headers: an image inline, anything else an attachment; never sniffed,
    never run (``RAW_CSP``)."""
    name = quote(posixpath.basename(artifact.path))
    disposition = "inline" if media_type else "attachment"
    return {
        "Content-Type": media_type or "application/octet-stream",
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{name}",
        "Content-Length": str(artifact.size),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": RAW_CSP,
        "ETag": f'"{artifact.digest}"',
    }


def raw_chunks(blobs: BlobStore, digest: str) -> tuple[bytes, Iterator[bytes]]:
    """The blob's first chunk (to tell its type; a missing blob raises now, before any answer is
    sent) and an iterator over all of its bytes, verified as they stream (a blob of one chunk is
    verified before this returns)."""
    chunks = blobs.iter_chunks(digest)
    first = next(chunks, b"")
    second = next(chunks, None)

    def stream() -> Iterator[bytes]:
        if first:
            yield first
        if second is not None:
            yield second
            yield from chunks

    return first, stream()
