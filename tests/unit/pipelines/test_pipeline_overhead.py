"""What keeps a pipeline's per-step overhead small: store writes and searches per step, blob reads of
a cached re-run, and what a fresh process imports. Counts, never timings."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

import shipyard as sy
from shipyard.artifacts.blobs import BlobStoreBase


@sy.step
def inc(x: int) -> int:
    return x + 1


@sy.step
def add(x: int, k: int) -> int:
    return x + k


@sy.pipeline
def chain(start: int = 0):  # type: ignore[no-untyped-def]
    x = inc(start)
    for _ in range(9):
        x = inc(x)
    return x


@sy.pipeline
def three(start: int = 0, k: int = 1):  # type: ignore[no-untyped-def]
    return add(inc(inc(start)), k)


@pytest.fixture(autouse=True)
def client(tmp_path: Path) -> Iterator[sy.Client]:
    sy.set_tracking_uri(f"sqlite:///{tmp_path / 'sy.db'}", str(tmp_path / "artifacts"))
    yield sy.get_client()
    sy.set_tracking_uri(None)


class _Statements:
    """SQL statements the driver thread runs: writes (BEGIN IMMEDIATE) and searches (run look-ups)."""

    def __init__(self, client: sy.Client) -> None:
        self.writes = self.searches = self.total = 0
        self._engine: Any = client.store._engine  # type: ignore[attr-defined]
        event.listen(self._engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # the flush thread's heartbeats and the pipeline run's package list
        self.total += 1
        self.writes += statement == "BEGIN IMMEDIATE"
        self.searches += " ".join(statement.split()).startswith("SELECT runs.id FROM runs JOIN tags")

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._seen)


def test_an_executed_step_costs_two_writes_and_few_statements(client: sy.Client) -> None:
    chain.run(start=-1000)  # the store's experiment and first writes
    seen = _Statements(client)
    try:
        result = chain.run(start=10_000)
    finally:
        seen.close()
    assert len(result.steps) == 10 and not result.cache_hits
    # per step: its run created, then ended with its tags, metrics and artifacts; plus the pipeline run
    assert seen.writes == 2 * 10 + 2
    # outputs never stored before cannot have been anyone's input: only the first step is looked up
    assert seen.searches == 1
    assert seen.total <= 16 * 10 + 20
    runs, _ = client.search_runs_page(filter=f"tags.`sy.pipeline.run` = '{result.run_id}'")
    assert sorted(r.params.get("x", "") for r in runs) == ["", "", "", "", "", "", "", "", "", "10000"]
    for run in runs:  # still everything a step run records
        assert run.status == sy.RunStatus.FINISHED and run.tags["sy.cache"] == "miss"
        assert {"sy.outputs", "sy.cache_key", "sy.step_status"} <= set(run.tags)
        assert "cost.cpu_seconds" in run.metrics
        assert [a.path for a in client.list_artifacts(run.id)][-1] == "outputs/0"


def test_a_cached_rerun_writes_each_step_once_and_searches_twice(client: sy.Client) -> None:
    chain.run(start=20_000)
    seen = _Statements(client)
    try:
        again = chain.run(start=20_000)
    finally:
        seen.close()
    assert len(again.cache_hits) == 10
    assert seen.writes == 10 + 2  # each hit recorded whole in one write; the pipeline run
    assert seen.searches == 2  # the first key, then the step runs of the pipeline run it came from
    runs, _ = client.search_runs_page(filter=f"tags.`sy.pipeline.run` = '{again.run_id}'")
    assert {r.tags["sy.cache"] for r in runs} == {"hit"}
    assert all(r.status == sy.RunStatus.FINISHED for r in runs)
    assert all(client.list_artifacts(r.id)[-1].path == "outputs/0" for r in runs)


def test_a_rerun_reads_only_the_cached_outputs_a_rerun_step_needs(
    client: sy.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = three.run(start=1, k=1)
    nodes, _, _ = three.trace(start=1, k=1)
    last = next(n for n in nodes.values() if n.step.name == "add")
    needed = first.steps[last.upstream[0]].outputs[0].digest
    read: list[str] = []
    original = BlobStoreBase.iter_chunks

    def counting(self: BlobStoreBase, digest: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        read.append(digest)
        return original(self, digest, chunk_size)

    monkeypatch.setattr(BlobStoreBase, "iter_chunks", counting)
    all_cached = three.run(start=1, k=1)
    assert len(all_cached.cache_hits) == 3 and read == []  # nothing loaded
    changed = three.run(start=1, k=5)  # only the last step runs again: it needs its one input
    assert sorted(changed.cache_hits) == sorted(n for n in nodes if n != last.id)
    assert read == [needed]


def test_a_fresh_process_one_step_run_imports_no_migrations_or_frame_libraries(tmp_path: Path) -> None:
    (tmp_path / "one_step.py").write_text(
        textwrap.dedent(
            """
            import shipyard as sy

            @sy.step
            def inc(x: int) -> int:
                return x + 1

            @sy.pipeline
            def one(start: int = 0):
                return inc(start)
            """
        )
    )
    code = (
        "import sys, one_step; one_step.one.run(start=int(sys.argv[1])); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('alembic', 'pandas', 'pyarrow', 'httpx', 'polars') or m == 'sqlalchemy.dialects.postgresql'))"
    )
    env = {
        "SHIPYARD_TRACKING_URI": f"sqlite:///{tmp_path / 'sy.db'}",
        "SHIPYARD_ARTIFACT_URI": str(tmp_path / "artifacts"),
        "SHIPYARD_CONFIG": str(tmp_path / "absent.toml"),
        "SHIPYARD_HOME": str(tmp_path / "home"),
        "PYTHONPATH": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    runs = [
        subprocess.run(
            [sys.executable, "-c", code, str(i)], env=env, capture_output=True, text=True, timeout=120
        )
        for i in range(2)
    ]
    assert [r.returncode for r in runs] == [0, 0], runs[-1].stderr
    assert runs[1].stdout.strip() == "[]"  # the schema is current: no migration code, no frames


def test_frames_are_written_into_the_blob_store_floats_plain(
    client: sy.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    from shipyard.pipelines.materializers import ParquetMaterializer
    from shipyard.pipelines.runner import OutputRef, load_output

    frame = pd.DataFrame({"f": np.linspace(0, 1, 1000), "k": ["a", "b"] * 500})
    whole: list[int] = []
    monkeypatch.setattr(type(client.blobs), "put_bytes", lambda self, data: whole.append(len(data)))
    digest, size = client.blobs.put_writer(lambda sink: ParquetMaterializer().save_to(frame, sink))
    assert whole == []  # streamed, never handed over as one bytes object
    local = Path(client.settings.artifact_uri) / "check.parquet"
    client.blobs.download(digest, local)
    meta = pq.ParquetFile(local).metadata.row_group(0)
    chunks = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    assert chunks["f"].compression == "UNCOMPRESSED" and not chunks["f"].has_dictionary_page
    assert chunks["k"].compression == "LZ4" and chunks["k"].has_dictionary_page
    back = load_output(client, OutputRef(digest, "parquet", "pandas.DataFrame", size))
    pd.testing.assert_frame_equal(back, frame)


def test_a_failed_writer_leaves_no_blob_and_no_temporary_file(client: sy.Client) -> None:
    def broken(sink: Any) -> None:
        sink.write(b"partial")
        raise RuntimeError("serializer failed")

    with pytest.raises(RuntimeError, match="serializer failed"):
        client.blobs.put_writer(broken)
    root = Path(client.settings.artifact_uri)
    assert list((root / "tmp").iterdir()) == []
    assert client.blobs.put_writer(lambda sink: sink.write(b"abc")) == client.blobs.put_bytes(b"abc")
