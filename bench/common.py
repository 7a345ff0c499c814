"""Helpers shared by the benchmarks: timing, machine info, result rows, tables and RESULTS.md sections.

Nothing here imports Shipyard or MLflow, so a benchmark decides when (and whether) to pay their import cost.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = [
    "Result",
    "Section",
    "alternating_rounds",
    "fresh_dir",
    "interleaved_medians",
    "machine_info",
    "machine_line",
    "load_average",
    "median_time",
    "print_section",
    "rerun_at_commit",
    "sqlite_file_size",
    "update_results_file",
]

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_PATH = BENCH_DIR / "RESULTS.md"
_TEMP_DIRS: list[Path] = []


# -- timing ------------------------------------------------------------------------------------
def median_time(fn: Callable[[], object], repeat: int, warmup: int = 1) -> tuple[float, list[float]]:
    """Median wall time of ``fn`` in seconds over ``repeat`` calls after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def interleaved_medians(
    fns: dict[str, Callable[[], object]], repeat: int, warmup: int = 2
) -> dict[str, float]:
    """Median seconds of each function, timed in turn (a, b, c, a, b, c, ...) so that a burst of load on
    this shared machine hits all of them alike rather than whichever happened to be running."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def alternating_rounds(fns: dict[str, Callable[[int], T]], rounds: int) -> dict[str, list[T]]:
    """Call each function once per round, in turn, the order reversed every other round (A B, B A, A B,
    ...), and collect what each returned, by round. Each is passed the round's index.

    For comparing things whose figures drift with this shared machine's load: each round's figures were
    taken side by side, so a ratio per round (or medians over the same span) holds while the machine's
    speed does not; alternating the order keeps "always second" (warmer caches, a neighbour's burst)
    from favouring one of them.

        >>> order = []
        >>> alternating_rounds({"a": lambda r: order.append("a") or r, "b": lambda r: order.append("b")}, 3)
        {'a': [0, 1, 2], 'b': [None, None, None]}
        >>> order
        ['a', 'b', 'b', 'a', 'a', 'b']
    """
    names = list(fns)
    out: dict[str, list[T]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            out[name].append(fns[name](r))
    return out


# -- temp dirs and SQLite ----------------------------------------------------------------------
def fresh_dir(label: str, keep: bool = False) -> Path:
    """A new empty directory on local disk (under $TMPDIR), removed at exit unless ``keep``."""
    path = Path(tempfile.mkdtemp(prefix=f"bench-{label}-"))
    if not keep:
        _TEMP_DIRS.append(path)
    return path


def remove_temp_dirs() -> None:
    while _TEMP_DIRS:
        shutil.rmtree(_TEMP_DIRS.pop(), ignore_errors=True)


def sqlite_file_size(path: Path) -> int:
    """Bytes on disk of a SQLite database after folding its WAL back in (``wal_checkpoint(TRUNCATE)``)."""
    conn = sqlite3.connect(path)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise RuntimeError(f"could not checkpoint {path}: a reader or writer is still active")
    finally:
        conn.close()
    total = path.stat().st_size
    for suffix in ("-wal", "-journal"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            total += extra.stat().st_size
    return total


# -- measuring a commit -----------------------------------------------------------------------
def rerun_at_commit(rev: str, script: Path, argv: list[str]) -> int:
    """Run ``script argv`` against ``src/`` as of commit ``rev``, exported read-only to a temp dir.

    Others edit the working tree while benchmarks run; this measures a fixed, named state instead.
    The export goes first on PYTHONPATH, ahead of the editable install's path to the working tree.
    """
    repo = BENCH_DIR.parent
    sha = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short", rev], capture_output=True, text=True, check=True
    ).stdout.strip()
    root = Path(tempfile.mkdtemp(prefix=f"bench-src-{sha}-"))
    try:
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", sha, "src"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(root / "src"), os.environ.get("PYTHONPATH")])),
            "BENCH_CODE_STATE": f"{sha} (exported, clean)",
        }
        print(f"measuring src/ at {sha} (exported to {root})", file=sys.stderr, flush=True)
        return subprocess.call([sys.executable, str(script), *argv], env=env)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- machine info ------------------------------------------------------------------------------
def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _mem_gb() -> str:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024 / 1024:.0f} GB"
    return "?"


def _temp_fs() -> str:
    """Filesystem of the temp dir the stores live in (longest matching mount point)."""
    tmp = os.path.realpath(tempfile.gettempdir())
    best = ("", "?", "?")
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount, fstype = line.split()[:3]
            inside = tmp == mount or tmp.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) > len(best[0]):
                best = (mount, device, fstype)
    return f"{tmp} ({best[2]} on {best[1]})"


def _code_state() -> str:
    """The commit measured, and which files under src/ differed from it (others edit concurrently)."""
    if os.environ.get("BENCH_CODE_STATE"):
        return os.environ["BENCH_CODE_STATE"]

    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", "-C", str(BENCH_DIR.parent), *args], capture_output=True, text=True)
        except OSError:
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return "no git checkout"
    dirty = [line.split(maxsplit=1)[1] for line in git("status", "--porcelain", "--", "src").splitlines()]
    return f"{head} + uncommitted {', '.join(dirty)}" if dirty else f"{head} (src clean)"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def load_average() -> str:
    """The 1-minute load average: this machine is shared, so a figure is only as quiet as its load."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def machine_info() -> dict[str, str]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cores} cores, {_cpu_model()}",
        "memory": _mem_gb(),
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "shipyard": f"{_version('shipyard')} at git {_code_state()}",
        "mlflow": _version("mlflow"),
        "sqlalchemy": _version("sqlalchemy"),
        "numpy": _version("numpy"),
        "pandas": _version("pandas"),
        "sqlite": sqlite3.sqlite_version,
        "stores on": _temp_fs(),
    }


def machine_line(info: dict[str, str]) -> str:
    return " · ".join(f"{k} {v}" for k, v in info.items())


# -- results -----------------------------------------------------------------------------------
@dataclass
class Result:
    """One compared figure; ``better`` says which way wins: "lower" (times, bytes) or "higher" (rates).

    ``peers`` holds the figures of the section's further peer columns (``Section.peers``), by name.

        >>> Result("1 row: requests/s", "req/s", 600.0, 70.0, better="higher", peers={"BentoML": 300.0}).ratio
        2.0
    """

    what: str
    unit: str
    shipyard: float | None
    mlflow: float | None = None
    better: str = "lower"
    target: str = ""
    met: bool | None = None
    note: str = ""
    peers: dict[str, float | None] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """How many times better Shipyard is than the best of the others (>1 means Shipyard wins)."""
        others = [v for v in (self.mlflow, *self.peers.values()) if v]
        if not self.shipyard or not others:
            return None
        if self.better == "lower":
            return min(others) / self.shipyard
        return self.shipyard / max(others)


@dataclass
class Section:
    key: str
    title: str
    results: list[Result] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    machine: dict[str, str] = field(default_factory=machine_info)
    load_start: str = field(default_factory=load_average)
    peers: list[str] = field(default_factory=list)  # peer columns after MLflow's (``Result.peers`` keys)

    def finish(self) -> Section:
        """Stamp the load average at the end next to the one at the start."""
        self.machine["load avg (1 min) start→end"] = f"{self.load_start}→{load_average()}"
        return self


def fmt_num(value: float | None) -> str:
    if value is None:
        return "—"
    magnitude = abs(value)
    if magnitude >= 100_000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}×" if value >= 100 else f"{value:.1f}×" if value >= 10 else f"{value:.2f}×"


def _status(result: Result) -> str:
    if result.met is None:
        return ""
    return "met" if result.met else "**MISSED**"


def _headers(peers: list[str]) -> list[str]:
    return ["Measure", "Unit", "Shipyard", "MLflow", *peers, "Shipyard advantage", "Target", "Status"]


def _cells(result: Result, peers: Sequence[str] = ()) -> list[str]:
    return [
        result.what,
        result.unit,
        fmt_num(result.shipyard),
        fmt_num(result.mlflow),
        *(fmt_num(result.peers.get(name)) for name in peers),
        fmt_ratio(result.ratio),
        result.target,
        _status(result),
    ]


def section_markdown(section: Section) -> str:
    lines = [f"## ({section.key}) {section.title}", "", f"_{machine_line(section.machine)}_", ""]
    lines.append("| " + " | ".join(_headers(section.peers)) + " |")
    numbers = ["---:"] * (3 + len(section.peers))
    lines.append("|" + "|".join(["---", "---", *numbers, "---", "---"]) + "|")
    for result in section.results:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in _cells(result, section.peers)) + " |")
    if section.notes:
        lines.append("")
        lines.extend(f"- {n}" for n in section.notes)
    return "\n".join(lines) + "\n"


def print_section(section: Section) -> None:
    """Print one benchmark's table (rich when installed, plain text otherwise)."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ModuleNotFoundError:
        print(section_markdown(section))
        return
    table = Table(title=f"({section.key}) {section.title}", title_justify="left")
    headers = _headers(section.peers)
    for i, header in enumerate(headers):
        table.add_column(header, justify="right" if 2 <= i < len(headers) - 2 else "left")
    for result in section.results:
        cells = _cells(result, section.peers)
        cells[-1] = {"met": "[green]met[/]", "**MISSED**": "[red]MISSED[/]"}.get(cells[-1], cells[-1])
        table.add_row(*cells)
    console = Console(width=160 + 12 * len(section.peers))
    console.print(table)
    for note in section.notes:
        console.print(f"  • {note}", highlight=False, soft_wrap=True)
    console.print()


_HEADER = """# Shipyard vs MLflow: tracking benchmarks

Produced by `bench/bench_tracking.py` (how to run it: `bench/README.md`); the raw figures are in
`bench/results.json`. Each benchmark's section is replaced by the run that last measured it, so sections can
come from different runs: each carries its own machine line, including the load average, because this
2-core machine is shared. "Shipyard advantage" is how many times better Shipyard is (MLflow time ÷
Shipyard time, or Shipyard rate ÷ MLflow rate); below 1× MLflow wins. Where a section has more peer
columns (serving: BentoML, MLServer), it is against the best of MLflow and those peers.
"""
_ORDER = "abcde"
RESULTS_JSON = BENCH_DIR / "results.json"


def _section_from_dict(d: dict[str, Any]) -> Section:
    results = [Result(**r) for r in d.pop("results")]
    return Section(results=results, **d)


def summary_markdown(sections: list[Section]) -> str:
    lines = ["## Summary: the issue's targets", ""]
    lines.append("| Benchmark | Measure | Shipyard | MLflow | Shipyard advantage | Target | Status |")
    lines.append("|---|---|---:|---:|---:|---|---|")
    for section in sections:
        for r in section.results:
            if r.target:
                cells = [f"({section.key})", f"{r.what} ({r.unit})", *_cells(r)[2:]]
                lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def update_results_file(sections: list[Section], path: Path = RESULTS_PATH) -> None:
    """Record these sections in results.json (keeping other benchmarks') and regenerate RESULTS.md from it."""
    stored: dict[str, Any] = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    for section in sections:
        stored[section.key] = asdict(section)
    keys = sorted(stored, key=lambda k: _ORDER.index(k) if k in _ORDER else len(_ORDER))
    RESULTS_JSON.write_text(json.dumps({k: stored[k] for k in keys}, indent=1, ensure_ascii=False) + "\n")
    ordered = [_section_from_dict(dict(stored[k])) for k in keys]
    parts = [_HEADER, summary_markdown(ordered)]
    parts += [f"<!-- bench:{s.key} -->\n{section_markdown(s)}<!-- /bench:{s.key} -->\n" for s in ordered]
    parts += _foreign_sections(path, set(keys))
    path.write_text("\n".join(parts))


def _foreign_sections(path: Path, known: set[str]) -> list[str]:
    """Sections other scripts wrote (e.g. bench_validation.py): kept as they are."""
    if not path.exists():
        return []
    found = re.findall(r"(<!-- bench:([\w-]+) -->.*?<!-- /bench:\2 -->\n?)", path.read_text(), re.DOTALL)
    return [text if text.endswith("\n") else text + "\n" for text, key in found if key not in known]
