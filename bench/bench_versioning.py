"""Dataset versioning throughput on a ~1 GB file: Shipyard's log_dataset vs `dvc add`, in one run.

Issue "Data", deliverable 8. Target: Shipyard >= 1 GB/s end to end and >= 5x DVC.

    .venv/bin/python bench/bench_versioning.py            # 1 GB Parquet + CSV, writes RESULTS.md (~5 min)
    .venv/bin/python bench/bench_versioning.py --quick    # 0.1 GB, prints only
    .venv/bin/python bench/bench_versioning.py --no-csv   # skip the CSV variant

Each measurement gets a fresh Shipyard store / fresh git+DVC repo, `sync` is called and the input file is
read once (like `cat file > /dev/null`) just before the clock starts, so both tools see a warm page cache
and no leftover dirty pages. Times are medians of --repeat repetitions, Shipyard and DVC alternating.
A breakdown of where Shipyard's time goes (hash, copy, fsync, Parquet metadata, profile) is printed and
written as notes.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_PATH, fmt_num, fmt_ratio, load_average, machine_info, machine_line  # noqa: E402

KEY = "versioning"
TARGET_RATE = 1.0  # GB/s
TARGET_RATIO = 5.0  # x DVC
DVC = Path(sys.executable).with_name("dvc")
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_TERMINAL_PROMPT": "0"}


# -- data ----------------------------------------------------------------------------------------
def make_parquet(path: Path, gb: float) -> int:
    """~gb GB of Parquet: 6 float64 (standard normal) + 4 int64 (uniform 0..2^62) columns, numpy seed 0,
    row groups of 1,000,000 rows, snappy (random numbers do not compress, so size ~= 80 bytes/row)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    total = int(gb * 1e9 / 80)
    fields = [(f"f{i}", pa.float64()) for i in range(6)] + [(f"i{i}", pa.int64()) for i in range(4)]
    schema = pa.schema(fields)
    with pq.ParquetWriter(path, schema, compression="snappy") as writer:
        done = 0
        while done < total:
            n = min(1_000_000, total - done)
            cols = [rng.standard_normal(n) for _ in range(6)] + [rng.integers(0, 2**62, n) for _ in range(4)]
            writer.write_table(pa.table(cols, schema=schema), row_group_size=1_000_000)
            done += n
    return total


def make_csv(parquet: Path, path: Path, gb: float) -> int:
    """The first rows of the Parquet file as CSV (pyarrow.csv, header), until ~gb GB."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(parquet)
    rows = 0
    with pcsv.CSVWriter(path, pf.schema_arrow) as writer:
        for batch in pf.iter_batches(batch_size=250_000):
            writer.write_batch(batch)
            rows += batch.num_rows
            if path.stat().st_size >= gb * 1e9:
                break
    return rows


def warm(path: Path) -> None:
    """sync (flush earlier repetitions' dirty pages), then read the file once: a warm page cache."""
    os.sync()
    with open(path, "rb", buffering=0) as fh:
        while fh.read(8 << 20):
            pass


# -- the two systems ---------------------------------------------------------------------------------
def shipyard_log(path: Path, work: Path, profile: bool, again: bool = False) -> tuple[float, float | None]:
    """Time log_dataset into a fresh store; with ``again`` also time a second log of the same file."""
    import shipyard as sy

    client = sy.Client(tracking_uri=f"sqlite:///{work}/sy.db", artifact_uri=f"{work}/artifacts")
    warm(path)
    start = time.perf_counter()
    v1 = sy.log_dataset(path, name="big", client=client, profile=profile)
    first = time.perf_counter() - start
    second = None
    if again:
        warm(path)
        start = time.perf_counter()
        v2 = sy.log_dataset(path, name="big", client=client, profile=profile)
        second = time.perf_counter() - start
        assert v2.digest == v1.digest, (v1, v2)
    client.close() if hasattr(client, "close") else None
    return first, second


def _run(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, env=ENV, check=True, capture_output=True)


def dvc_add(path: Path, work: Path, again: bool = False) -> tuple[float, float | None]:
    """git init + dvc init in a fresh dir, copy the file in (untimed), then time `dvc add <file>`."""
    _run(["git", "init", "-q"], work)
    _run(["git", "config", "user.email", "bench@example.com"], work)
    _run(["git", "config", "user.name", "bench"], work)
    _run([str(DVC), "init", "-q"], work)
    _run([str(DVC), "config", "core.analytics", "false"], work)
    target = work / path.name
    shutil.copyfile(path, target)
    warm(target)
    start = time.perf_counter()
    _run([str(DVC), "add", "-q", path.name], work)
    first = time.perf_counter() - start
    second = None
    if again:
        warm(target)
        start = time.perf_counter()
        _run([str(DVC), "add", "-q", path.name], work)
        second = time.perf_counter() - start
    return first, second


def fresh(root: Path, label: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=root))


# -- where Shipyard's time goes ------------------------------------------------------------------------
def breakdown(path: Path, root: Path) -> dict[str, float]:
    """Time the pieces of log_dataset(path, profile=...) one by one (median of 3 each, warm cache)."""
    import blake3
    import polars as pl
    import pyarrow.parquet as pq

    from shipyard.artifacts.blobs import CHUNK, FsspecBlobStore, hash_file
    from shipyard.data.profiles import profile

    def timed(fn, setup=None) -> float:  # noqa: ANN001
        ts = []
        for _ in range(3):
            arg = setup() if setup else None
            warm(path)
            start = time.perf_counter()
            fn(arg) if setup else fn()
            ts.append(time.perf_counter() - start)
            if arg is not None:
                shutil.rmtree(arg)  # copies left behind would slow the next writes down
        return statistics.median(ts)

    def read_hash() -> None:
        hasher = blake3.blake3()
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                hasher.update(chunk)

    def copy_no_fsync(out_dir: Path) -> None:
        with open(path, "rb") as fh, open(out_dir / "x", "wb") as out:
            while chunk := fh.read(CHUNK):
                out.write(chunk)

    def copy_fsync(out_dir: Path) -> None:
        with open(path, "rb") as fh, open(out_dir / "x", "wb") as out:
            while chunk := fh.read(CHUNK):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())

    def put_file(out_dir: Path) -> None:
        FsspecBlobStore(str(out_dir / "store")).put_file(path)

    def put_stream(out_dir: Path) -> None:
        with open(path, "rb") as fh:
            FsspecBlobStore(str(out_dir / "store")).put_stream(fh)

    def meta() -> tuple[object, int]:
        return pq.ParquetFile(path).schema_arrow, pq.ParquetFile(path).metadata.num_rows

    def new_dir() -> Path:
        return fresh(root, "piece")

    return {
        "hash_file (mmap, multi-threaded BLAKE3)": timed(lambda: hash_file(path)),
        "read + BLAKE3 single-threaded, 1 MiB chunks (what put_stream hashes)": timed(read_hash),
        "copy, 1 MiB chunks, no fsync": timed(copy_no_fsync, new_dir),
        "copy, 1 MiB chunks + fsync": timed(copy_fsync, new_dir),
        "put_stream (read + hash + write via fsspec + fsync + rename)": timed(put_stream, new_dir),
        "put_file, new content (hash_file + exists + put_stream)": timed(put_file, new_dir),
        "Parquet metadata (ParquetFile opened twice)": timed(meta),
        "profile (polars lazy scan, JSON)": timed(lambda: profile(pl.scan_parquet(path)).to_json()),
    }


# -- report ----------------------------------------------------------------------------------------------
def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine(load_start: str) -> str:
    info = machine_info()
    for k in ("mlflow", "sqlalchemy", "pandas", "sqlite"):
        info.pop(k, None)
    stores = info.pop("stores on")
    info.update(
        {
            "dvc": _version("dvc"),
            "pyarrow": _version("pyarrow"),
            "polars": _version("polars"),
            "blake3": _version("blake3"),
            "stores on": stores,
            "load avg (1 min) start→end": f"{load_start}→{load_average()}",
        }
    )
    return machine_line(info)


def _row(
    what: str, unit: str, sy: float, dvc: float | None, better: str, target: str = "", met: bool | None = None
) -> str:
    ratio = None if dvc is None else (dvc / sy if better == "lower" else sy / dvc)
    status = "" if met is None else ("met" if met else "**MISSED**")
    dvc_cell = "—" if dvc is None else fmt_num(dvc)
    cells = [what, unit, fmt_num(sy), dvc_cell, fmt_ratio(ratio), target, status]
    return "| " + " | ".join(cells) + " |"


def section_markdown(m: dict, machine_text: str) -> str:
    gb = m["parquet_gb"]
    lines = [
        f"## (versioning) Versioning a {gb:.2f} GB file: `log_dataset` vs `dvc add`",
        "",
        f"_{machine_text}_",
        "",
        "| Measure | Unit | Shipyard | DVC | Shipyard advantage | Target | Status |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    target = f"≥ {TARGET_RATE:g} GB/s and ≥ {TARGET_RATIO:g}× DVC"
    dvc_t = m["dvc_first"]
    for label, key in (("profile=False", "sy_first"), ("profile=True (default)", "sy_profile")):
        t = m[key]
        rate, ratio = gb / t, dvc_t / t
        met = rate >= TARGET_RATE and ratio >= TARGET_RATIO
        lines.append(_row(f"Parquet, first version, {label}", "s", t, dvc_t, "lower"))
        lines.append(
            _row(f"Parquet, first version, {label}", "GB/s", rate, gb / dvc_t, "higher", target, met)
        )
    lines.append(
        _row(
            "Parquet, same file again (dedup; DVC: unchanged re-add)",
            "s",
            m["sy_again"],
            m["dvc_again"],
            "lower",
        )
    )
    if "csv_sy" in m:
        cgb = m["csv_gb"]
        lines.append(
            _row(
                f"CSV {cgb:.2f} GB, first version, profile=False (converted to Parquet)",
                "s",
                m["csv_sy"],
                m["csv_dvc"],
                "lower",
            )
        )
        lines.append(
            _row(
                f"CSV {cgb:.2f} GB, first version, profile=False (converted to Parquet)",
                "GB/s",
                cgb / m["csv_sy"],
                cgb / m["csv_dvc"],
                "higher",
            )
        )
    lines += ["", *(f"- {n}" for n in notes(m))]
    return "\n".join(lines) + "\n"


def _ts(ts: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in ts)


def notes(m: dict) -> list[str]:
    out = [
        f"Data: {m['parquet_rows']:,} rows × 10 columns (6 float64 standard normal, 4 int64 uniform in "
        f"[0, 2^62)), numpy seed 0, written with pyarrow `ParquetWriter` (snappy, row groups of 1,000,000 "
        f"rows): {m['parquet_bytes']:,} bytes. GB = 10^9 bytes. Everything on the same disk (/tmp).",
        f"Shipyard: `sy.log_dataset(path, name='big', client=client, profile=...)` on a fresh "
        f"`sy.Client(tracking_uri='sqlite:///…/sy.db', artifact_uri='…/artifacts')` (client built and "
        f"`shipyard` imported before the clock starts). A Parquet file is stored as it is: BLAKE3 "
        f"(mmap, multi-threaded), then a kernel copy (sendfile) into the content-addressed store and a "
        f"rename; with profile=True the profile (evenly spaced row groups, about 1 M rows) is computed "
        f"while the bytes are hashed and copied. Times (s): profile=False {_ts(m['sy_first_ts'])}; "
        "profile=True "
        f"{_ts(m['sy_profile_ts'])}; same file again {_ts(m['sy_again_ts'])}.",
        f"DVC: `dvc add -q big.parquet` as a subprocess (CLI start-up included, as a user sees it) in a "
        f"fresh `git init` + `dvc init` repo, the file copied in untimed; analytics off. MD5 + copy into "
        f".dvc/cache (ext4: no reflink, so a copy) + .dvc file + .gitignore. DVC does not fsync. Times (s): "
        f"{_ts(m['dvc_first_ts'])}; unchanged re-add (its state DB skips rehashing) "
        f"{_ts(m['dvc_again_ts'])}.",
        f"Median of {m['repeat']} repetitions, Shipyard and DVC alternating, each on a fresh store/repo, "
        f"after `sync` and one full read of the input (warm page cache for both; dropping caches is not "
        f"possible here).",
    ]
    if "csv_sy" in m:
        out.append(
            f"CSV: the first {m['csv_rows']:,} rows of the same data written with `pyarrow.csv` "
            f"({m['csv_bytes']:,} bytes). Shipyard must convert it (stream → canonical zstd Parquet, "
            f"65,536-row groups, in a temp dir) before hashing and storing, DVC stores it as is: no target. "
            f"Median of {m['csv_repeat']}: Shipyard {_ts(m['csv_sy_ts'])} s, DVC {_ts(m['csv_dvc_ts'])} s."
        )
    if m.get("pieces"):
        gb = m["parquet_gb"]
        parts = "; ".join(f"{k}: {v:.2f} s ({gb / v:.2f} GB/s)" for k, v in m["pieces"].items())
        out.append(f"Where Shipyard's time goes (each piece alone, warm cache, median of 3): {parts}.")
    return out


def write_section(markdown: str, path: Path = RESULTS_PATH) -> None:
    """Replace the ``bench:versioning`` section of RESULTS.md, or append it; other sections are kept."""
    block = f"<!-- bench:{KEY} -->\n{markdown}<!-- /bench:{KEY} -->\n"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    pattern = re.compile(rf"<!-- bench:{KEY} -->\n.*?<!-- /bench:{KEY} -->\n?", re.DOTALL)
    found = pattern.search(text)
    text = pattern.sub(lambda _: block, text) if found else text.rstrip("\n") + "\n\n" + block
    path.write_text(text, encoding="utf-8")


# -- main ------------------------------------------------------------------------------------------------
def measure(root: Path, gb: float, repeat: int, csv: bool, csv_repeat: int, pieces: bool) -> dict:
    m: dict = {"repeat": repeat, "csv_repeat": csv_repeat}
    data = root / "data"
    data.mkdir()
    pq_path = data / "big.parquet"
    print(f"Writing ~{gb:g} GB of Parquet ...", flush=True)
    m["parquet_rows"] = make_parquet(pq_path, gb)
    m["parquet_bytes"] = pq_path.stat().st_size
    m["parquet_gb"] = m["parquet_bytes"] / 1e9
    import shipyard  # noqa: F401  (import cost is not part of the figure)

    keys = ("sy_first", "sy_profile", "sy_again", "dvc_first", "dvc_again")
    ts: dict[str, list[float]] = {k: [] for k in keys}
    for i in range(repeat):
        for label, fn in (
            ("sy_first", lambda w: shipyard_log(pq_path, w, profile=False, again=True)),
            ("dvc_first", lambda w: dvc_add(pq_path, w, again=True)),
            ("sy_profile", lambda w: shipyard_log(pq_path, w, profile=True)),
        ):
            work = fresh(root, label)
            first, second = fn(work)
            ts[label].append(first)
            if second is not None:
                ts[label.replace("_first", "_again")].append(second)
            shutil.rmtree(work)
            print(
                f"  [{i + 1}/{repeat}] {label}: {first:.2f} s"
                + (f", again {second:.2f} s" if second is not None else ""),
                flush=True,
            )
    for k, v in ts.items():
        m[k], m[f"{k}_ts"] = statistics.median(v), v
    if pieces:
        print("Timing the pieces of log_dataset ...", flush=True)
        m["pieces"] = breakdown(pq_path, root)
        for k, v in m["pieces"].items():
            print(f"  {k}: {v:.3f} s ({m['parquet_gb'] / v:.2f} GB/s)", flush=True)
    if csv:
        csv_path = data / "big.csv"
        print(f"Writing ~{gb:g} GB of CSV ...", flush=True)
        m["csv_rows"] = make_csv(pq_path, csv_path, gb)
        pq_path.unlink()
        m["csv_bytes"] = csv_path.stat().st_size
        m["csv_gb"] = m["csv_bytes"] / 1e9
        sy_ts, dvc_ts = [], []
        for i in range(csv_repeat):
            work = fresh(root, "csv-sy")
            sy_ts.append(shipyard_log(csv_path, work, profile=False)[0])
            shutil.rmtree(work)
            work = fresh(root, "csv-dvc")
            dvc_ts.append(dvc_add(csv_path, work)[0])
            shutil.rmtree(work)
            print(
                f"  [{i + 1}/{csv_repeat}] CSV: shipyard {sy_ts[-1]:.2f} s, dvc {dvc_ts[-1]:.2f} s",
                flush=True,
            )
        m["csv_sy"], m["csv_sy_ts"] = statistics.median(sy_ts), sy_ts
        m["csv_dvc"], m["csv_dvc_ts"] = statistics.median(dvc_ts), dvc_ts
    return m


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0, help="file size in GB (default 1)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--csv-repeat", type=int, default=3)
    parser.add_argument("--no-csv", action="store_true", help="skip the CSV variant")
    parser.add_argument("--no-pieces", action="store_true", help="skip the breakdown of Shipyard's time")
    parser.add_argument("--quick", action="store_true", help="0.1 GB, 1 repetition; prints only")
    parser.add_argument("--write", action="store_true", help="with --quick, still write RESULTS.md")
    args = parser.parse_args(argv)
    if not DVC.exists():
        print(f"{DVC} not found: pip install dvc (the bench extra)", file=sys.stderr)
        return 1
    gb, repeat, csv_repeat = (0.1, 1, 1) if args.quick else (args.gb, args.repeat, args.csv_repeat)
    load_start = load_average()
    root = Path(tempfile.mkdtemp(prefix="bench-versioning-"))
    try:
        m = measure(root, gb, repeat, not args.no_csv, csv_repeat, not args.no_pieces)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    markdown = section_markdown(m, machine(load_start))
    print(markdown)
    if not args.quick or args.write:
        write_section(markdown)
        print(f"Wrote the bench:{KEY} section of {RESULTS_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
