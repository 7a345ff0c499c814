"""Pipelines: Shipyard vs Metaflow vs Prefect vs plain function calls, on the same work, in one run.

    (A) a 10-step no-op pipeline (each step returns its input + 1)
    (B) a 10-step pipeline passing a 1,000,000 × 10 float DataFrame from step to step (each step: df + 1)
    (C) the fully cached re-run of (A) and of (B)
    (D) a 1-step pipeline from a fresh process (interpreter start and imports included)

Shipyard and the plain baselines run in this interpreter (.venv); Metaflow and Prefect run in their own
virtualenv (bench/.venv-peers, see bench/README.md) as child processes, so their pins never meet ours.
Metaflow is timed as users run it (``python flow.py run``: a process per step); Prefect in-process
(timings printed by the flow script, its ephemeral API server already up) and, for (D), from a fresh
process. Everything is offline: local datastores and stores under a temp dir.

    .venv/bin/python bench/bench_pipelines.py             # issue sizes, writes RESULTS.md (~6 min)
    .venv/bin/python bench/bench_pipelines.py --quick     # 100,000-row frame, 1 repeat; writes nothing
    .venv/bin/python bench/bench_pipelines.py --no-peers  # Shipyard and plain only
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_PATH, fmt_num, fmt_ratio, load_average, machine_info, machine_line  # noqa: E402

KEY = "pipelines"
PEERS_PYTHON = Path(__file__).resolve().parent / ".venv-peers" / "bin" / "python"
STEPS = 10
TARGETS = {"overhead_ms": 5.0, "b_vs_pickle": 2.0, "c_overhead_s": 0.100, "d_s": 1.0}


# -- the work, as plain functions (shared by every system) ---------------------------------------------
def make_frame(rows: int, seed: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.standard_normal((rows, 10)), columns=[f"c{i}" for i in range(10)])


def plain_a(start: int) -> int:
    x = start
    for _ in range(STEPS):
        x = x + 1
    return x


def plain_b(rows: int, seed: int) -> Any:
    df = make_frame(rows, seed)
    for _ in range(STEPS - 1):
        df = df + 1.0
    return df


def plain_b_pickled(rows: int, seed: int, folder: Path) -> Any:
    """Each step reads its input from the previous step's pickle file and writes its own, as a file-based
    orchestrator without a cache would."""
    path = folder / "0.pkl"
    path.write_bytes(pickle.dumps(make_frame(rows, seed), protocol=5))
    for i in range(1, STEPS):
        df = pickle.loads(path.read_bytes())
        path = folder / f"{i}.pkl"
        path.write_bytes(pickle.dumps(df + 1.0, protocol=5))
    return pickle.loads(path.read_bytes())


# -- Shipyard ----------------------------------------------------------------------------------------
SHIPYARD_MODULE = """
import numpy as np
import pandas as pd
import shipyard as sy

@sy.step
def inc(x: int) -> int:
    return x + 1

@sy.step
def make(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.standard_normal((rows, 10)), columns=[f"c{i}" for i in range(10)])

@sy.step
def add_one(df: pd.DataFrame) -> pd.DataFrame:
    return df + 1.0

@sy.pipeline
def noop(start: int = 0):
    x = inc(start)
    for _ in range(9):
        x = inc(x)
    return x

@sy.pipeline
def frames(rows: int = 1000, seed: int = 0):
    df = make(rows, seed)
    for _ in range(9):
        df = add_one(df)
    return df

"""

# (D) imports only what a 1-step pipeline needs (the frame steps above would add numpy + pandas imports)
SHIPYARD_ONE = """
import shipyard as sy

@sy.step
def inc(x: int) -> int:
    return x + 1

@sy.pipeline
def one(start: int = 0):
    return inc(start)
"""


def shipyard_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update(
        SHIPYARD_TRACKING_URI=f"sqlite:///{root / 'sy.db'}",
        SHIPYARD_ARTIFACT_URI=str(root / "artifacts"),
        SHIPYARD_SYSTEM_METRICS="false",
        SHIPYARD_CONFIG=str(root / "absent.toml"),
        SHIPYARD_HOME=str(root / "home"),
        PYTHONPATH=str(root),
    )
    return env


def measure_shipyard(root: Path, rows: int, repeat: int) -> dict[str, float]:
    (root / "sybench_pipes.py").write_text(SHIPYARD_MODULE)
    (root / "sybench_one.py").write_text(SHIPYARD_ONE)
    os.environ.update(shipyard_env(root))
    sys.path.insert(0, str(root))
    import sybench_pipes as p  # type: ignore[import-not-found]

    import shipyard as sy

    sy.set_tracking_uri(os.environ["SHIPYARD_TRACKING_URI"], os.environ["SHIPYARD_ARTIFACT_URI"])
    p.noop.run(start=-(10**6))  # warm: the store's schema, imports
    a, c_a, b, c_b = [], [], [], []
    for i in range(repeat):
        a.append(timed(lambda i=i: p.noop.run(start=i * 1000)))  # inputs never seen before: all misses
        c_a.append(timed(lambda i=i: _all_cached(p.noop.run(start=i * 1000))))
    for i in range(max(1, repeat // 2)):
        b.append(timed(lambda i=i: p.frames.run(rows=rows, seed=i)))
        c_b.append(timed(lambda i=i: _all_cached(p.frames.run(rows=rows, seed=i))))
    code = "import shipyard, sybench_one as p; p.one.run(start={})"
    d = [
        timed(lambda i=i: fresh_process([sys.executable, "-c", code.format(i)], shipyard_env(root)))
        for i in range(3)
    ]
    return {"a": med(a), "b": med(b), "c_a": med(c_a), "c_b": med(c_b), "d": med(d)}


def _all_cached(result: Any) -> None:
    if len(result.cache_hits) != STEPS:
        raise AssertionError(f"expected {STEPS} cache hits, got {result.cache_hits}")


# -- plain -------------------------------------------------------------------------------------------
def measure_plain(root: Path, rows: int, repeat: int) -> dict[str, float]:
    folder = root / "pickles"
    folder.mkdir()
    a = [timed(lambda: plain_a(0)) for _ in range(repeat)]
    b = [timed(lambda i=i: plain_b(rows, i)) for i in range(max(1, repeat // 2))]
    bp = [timed(lambda i=i: plain_b_pickled(rows, i, folder)) for i in range(max(1, repeat // 2))]
    code = "def step(x):\n    return x + 1\nstep(0)"
    d = [timed(lambda: fresh_process([sys.executable, "-c", code], dict(os.environ))) for _ in range(3)]
    return {"a": med(a), "b": med(b), "b_pickle": med(bp), "d": med(d)}


# -- Metaflow ----------------------------------------------------------------------------------------
def metaflow_flow(name: str, steps: int, frame_rows: int | None) -> str:
    """A linear flow: start → s1 … → end, ``steps`` steps in all, each +1 on its input."""
    names = ["start", *[f"s{i}" for i in range(1, steps - 1)], "end"]
    body = []
    for i, step in enumerate(names):
        nxt = f"        self.next(self.{names[i + 1]})\n" if i + 1 < len(names) else ""
        if i == 0:
            work = (
                "        import numpy as np, pandas as pd\n"
                "        rng = np.random.default_rng(self.seed)\n"
                f"        self.x = pd.DataFrame(rng.standard_normal(({frame_rows}, 10)))\n"
                if frame_rows
                else "        self.x = self.seed\n"
            )
        else:
            work = "        self.x = self.x + 1\n"
        body.append(f"    @step\n    def {step}(self):\n{work}{nxt}")
    return (
        "from metaflow import FlowSpec, Parameter, step\n\n\n"
        f"class {name}(FlowSpec):\n    seed = Parameter('seed', default=0)\n\n"
        + "\n".join(body)
        + f"\n\nif __name__ == '__main__':\n    {name}()\n"
    )


def measure_metaflow(root: Path, rows: int, repeat: int) -> dict[str, float]:
    env = peer_env(root)
    env.update(
        METAFLOW_DEFAULT_DATASTORE="local",
        METAFLOW_DATASTORE_SYSROOT_LOCAL=str(root / "mf"),
        METAFLOW_DEFAULT_METADATA="local",
        USERNAME="bench",
    )
    flows = {"a": ("NoopFlow", STEPS, None), "b": ("FramesFlow", STEPS, rows), "d": ("OneFlow", 2, None)}
    for key, (name, steps, frame_rows) in flows.items():
        (root / f"mf_{key}.py").write_text(metaflow_flow(name, steps, frame_rows))

    def run(key: str, seed: int, id_file: Path | None = None) -> None:
        cmd = [str(PEERS_PYTHON), str(root / f"mf_{key}.py"), "--quiet", "run", "--seed", str(seed)]
        fresh_process(cmd + (["--run-id-file", str(id_file)] if id_file else []), env, cwd=root)

    def resume(key: str, id_file: Path) -> None:
        cmd = [str(PEERS_PYTHON), str(root / f"mf_{key}.py"), "--quiet", "resume", "end"]
        fresh_process(cmd + ["--origin-run-id", id_file.read_text().strip()], env, cwd=root)

    run("a", -1)  # warm: the datastore folders, .pyc files
    out: dict[str, float] = {}
    for key, n in (("a", repeat), ("b", 1)):
        times, resumes = [], []
        for i in range(max(1, min(n, 3))):
            id_file = root / f"mf_{key}_{i}.id"
            times.append(timed(lambda k=key, i=i, f=id_file: run(k, i, f)))
            resumes.append(timed(lambda k=key, f=id_file: resume(k, f)))
        out[key], out[f"c_{key}"] = med(times), med(resumes)
    out["d"] = med([timed(lambda i=i: run("d", i)) for i in range(3)])
    return out


# -- Prefect -----------------------------------------------------------------------------------------
PREFECT_SCRIPT = """
import json, sys, time
import numpy as np, pandas as pd
from prefect import flow, task
from prefect.cache_policies import INPUTS, NO_CACHE

mode, rows, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def build(policy):
    @task(cache_policy=policy, persist_result=policy is INPUTS)
    def inc(x):
        return x + 1

    @task(cache_policy=policy, persist_result=policy is INPUTS)
    def make(rows, seed):
        rng = np.random.default_rng(seed)
        return pd.DataFrame(rng.standard_normal((rows, 10)), columns=[f"c{i}" for i in range(10)])

    @task(cache_policy=policy, persist_result=policy is INPUTS)
    def add_one(df):
        return df + 1.0

    @flow(persist_result=policy is INPUTS)
    def noop(start: int):
        x = inc(start)
        for _ in range(9):
            x = inc(x)
        return x

    @flow(persist_result=policy is INPUTS)
    def frames(rows: int, seed: int):
        df = make(rows, seed)
        for _ in range(9):
            df = add_one(df)
        return df

    return noop, frames, inc

if mode == "one":
    noop, frames, inc = build(NO_CACHE)
    flow(name="one")(lambda: inc(0))()
    sys.exit(0)

def timed(fn):
    t = time.perf_counter(); fn(); return time.perf_counter() - t

noop, frames, _ = build(NO_CACHE)
noop(-1)  # the ephemeral API server starts here
cnoop, cframes, _ = build(INPUTS)
out = {"a": [], "b": [], "c_a": [], "c_b": []}
for i in range(repeat):
    out["a"].append(timed(lambda: noop(i * 1000)))
    cnoop(10**6 + i * 1000)
    out["c_a"].append(timed(lambda: cnoop(10**6 + i * 1000)))
for i in range(max(1, repeat // 2)):
    out["b"].append(timed(lambda: frames(rows, i)))
    cframes(rows, 10**6 + i)
    out["c_b"].append(timed(lambda: cframes(rows, 10**6 + i)))
print("BENCH " + json.dumps(out))
"""


def measure_prefect(root: Path, rows: int, repeat: int) -> dict[str, float]:
    env = peer_env(root)
    env.update(
        PREFECT_HOME=str(root / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="ERROR",
        PREFECT_LOCAL_STORAGE_PATH=str(root / "prefect" / "results"),
    )
    env.pop("PREFECT_API_URL", None)
    script = root / "pf_bench.py"
    script.write_text(PREFECT_SCRIPT)
    done = subprocess.run(
        [str(PEERS_PYTHON), str(script), "all", str(rows), str(max(2, min(repeat, 3)))],
        env=env, cwd=root, capture_output=True, text=True, check=True, timeout=1800,
    )  # fmt: skip
    line = next(x for x in done.stdout.splitlines() if x.startswith("BENCH "))
    out = {k: med(v) for k, v in json.loads(line[6:]).items()}
    out["d"] = med(
        [
            timed(lambda: fresh_process([str(PEERS_PYTHON), str(script), "one", "0", "0"], env))
            for _ in range(2)
        ]
    )
    return out


# -- helpers -----------------------------------------------------------------------------------------
def peer_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "VIRTUAL_ENV"))}
    env["HOME"] = str(root / "home")  # peers write their config/state under $HOME: keep it in the temp dir
    Path(env["HOME"]).mkdir(exist_ok=True)
    return env


def fresh_process(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        )


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def med(values: list[float]) -> float:
    return statistics.median(values)


# -- report ------------------------------------------------------------------------------------------
def rows_of(m: dict[str, dict[str, float]]) -> list[list[str]]:
    """Table rows: one per measure, Shipyard / Metaflow / Prefect / plain, ratios vs the best peer."""
    sy, plain = m["shipyard"], m["plain"]
    mf, pf = m.get("metaflow", {}), m.get("prefect", {})
    per_step = {k: (v["a"] - plain["a"]) / STEPS * 1000 for k, v in (("sy", sy), ("mf", mf), ("pf", pf)) if v}

    def best(*values: float | None) -> float | None:
        found = [v for v in values if v]
        return min(found) if found else None

    def row(
        what: str,
        unit: str,
        s: float,
        f: float | None,
        p: float | None,
        base: str,
        target: str,
        met: bool | None,
    ) -> list[str]:
        peer = best(f, p)
        status = "" if met is None else ("met" if met else "**MISSED**")
        return [
            what,
            unit,
            fmt_num(s),
            fmt_num(f),
            fmt_num(p),
            base,
            fmt_ratio(peer / s if peer else None),
            target,
            status,
        ]

    b_ratio = sy["b"] / plain["b_pickle"]
    in_memory = f"{fmt_num(plain['a'])} (in memory)"
    b_plain = f"{fmt_num(plain['b'])} in memory, {fmt_num(plain['b_pickle'])} via pickle files"
    return [
        row("(A) 10-step no-op pipeline", "s", sy["a"], mf.get("a"), pf.get("a"), in_memory, "", None),
        row(
            "(A) per-step overhead", "ms", per_step["sy"], per_step.get("mf"), per_step.get("pf"),
            "0 by definition", "≤ 5 ms", per_step["sy"] <= TARGETS["overhead_ms"],
        ),
        row(
            "(B) 10 steps passing a 1,000,000 × 10 float DataFrame", "s", sy["b"], mf.get("b"), pf.get("b"),
            b_plain, f"≤ 2× plain + pickle files (here {b_ratio:.2f}×)", b_ratio <= TARGETS["b_vs_pickle"],
        ),
        row(
            "(C) fully cached re-run of (A)", "s", sy["c_a"], mf.get("c_a"), pf.get("c_a"),
            "—", "≤ 0.1 s", sy["c_a"] <= TARGETS["c_overhead_s"],
        ),
        row(
            "(C) fully cached re-run of (B)", "s", sy["c_b"], mf.get("c_b"), pf.get("c_b"),
            "—", "≤ 0.1 s", sy["c_b"] <= TARGETS["c_overhead_s"],
        ),
        row(
            "(D) 1-step pipeline from a fresh process", "s", sy["d"], mf.get("d"), pf.get("d"),
            f"{fmt_num(plain['d'])} (python -c)", "≤ 1 s incl. import shipyard", sy["d"] <= TARGETS["d_s"],
        ),
    ]  # fmt: skip


HEADERS = [
    "Measure",
    "Unit",
    "Shipyard",
    "Metaflow",
    "Prefect",
    "Plain functions",
    "Shipyard advantage over the best peer",
    "Target",
    "Status",
]


def section_markdown(m: dict[str, dict[str, float]], rows: int, machine: str) -> str:
    lines = [
        f"## ({KEY}) Pipelines: Shipyard vs Metaflow vs Prefect vs plain function calls",
        "",
        f"_{machine}_",
        "",
    ]
    lines.append("| " + " | ".join(HEADERS) + " |")
    lines.append("|---|---|---:|---:|---:|---|---:|---|---|")
    lines += ["| " + " | ".join(cells) + " |" for cells in rows_of(m)]
    lines += [
        "",
        "- Same work everywhere: (A) each step returns its input + 1; (B) step 1 draws a "
        f"{rows:,} × 10 float DataFrame (numpy, seeded), steps 2–10 return `df + 1.0`. "
        "Shipyard: `@sy.step`/`@sy.pipeline`, local "
        "executor, SQLite + local blob folder, every step a tracked child run and every output a "
        "content-addressed blob (Parquet for frames); timed in-process, fresh inputs each repetition so "
        "every step misses the cache. Metaflow: a linear `FlowSpec` run as `python flow.py run` (a process "
        "per step, local datastore). Prefect 3: `@flow` of `@task`s in-process against its ephemeral API "
        "server (started before timing). Plain: the same functions called in a loop, and through pickle "
        "files (each step reads the previous step's file and writes its own).",
        "- (A) per-step overhead = (pipeline time − plain in-memory time) / 10. (C): Shipyard re-runs the "
        "same params (every step a cache hit, recorded as a child run, no output loaded); Metaflow "
        "`resume end --origin-run-id` (clones every step, runs `end`); Prefect tasks with "
        "`cache_policy=INPUTS, persist_result=True` (results read back from its local storage). (D): wall "
        "time of a new interpreter running a 1-step pipeline (Metaflow: `start` + `end`, its minimum; "
        "Prefect: a flow of one task, its ephemeral server started in that process).",
        "- Medians: Shipyard and plain over 5 repetitions of (A)/(C-A), 2 of (B)/(C-B), 3 of (D); Metaflow 3 "
        "of (A), 1 of (B); Prefect 3 of (A), 1 of (B). Peers run from bench/.venv-peers (their pins clash "
        "with ours; bench/README.md).",
        "- Prefect's (A)/(B) tasks run without result persistence (its default): a frame passes in memory, "
        "as in the plain in-memory loop, and nothing is stored; Shipyard and Metaflow store every output. "
        "Its (C) needs persisted results, and (C-B) then reads every pickled frame back.",
        "- Where Shipyard's time goes: **(A)** per executed step two store transactions (the step run "
        "created; then its tags, `cost.*` metrics and `inputs/`/`outputs/` artifact records written with "
        "its end), the flush thread's first heartbeat of the run, and a cache look-up only for the first "
        "step of a chain (an input blob this run stored first cannot hit); **(B)** `df + 1.0`, Arrow "
        "conversion and Parquet written straight into the blob store's temporary file, hashed as written "
        "(float columns plain and uncompressed), the next step taking the frame from memory; **(C)** two "
        "searches (the first key, then the step runs of the pipeline run it came from) and one write per "
        "cached step, no output loaded; **(D)** mostly imports (`import shipyard`, SQLAlchemy and numpy "
        "for the SQLite store), no Alembic unless the schema needs migrating. Regression tests count "
        "these (tests/unit/pipelines/test_pipeline_overhead.py).",
    ]
    return "\n".join(lines) + "\n"


def write_section(markdown: str, path: Path = RESULTS_PATH) -> None:
    """Replace the ``bench:pipelines`` section of RESULTS.md, or append it; other sections are kept."""
    block = f"<!-- bench:{KEY} -->\n{markdown}<!-- /bench:{KEY} -->\n"
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(rf"<!-- bench:{KEY} -->\n.*?<!-- /bench:{KEY} -->\n?", re.DOTALL)
    path.write_text(
        pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    )


def print_table(m: dict[str, dict[str, float]]) -> None:
    for cells in rows_of(m):
        print("  ".join(f"{h}: {c}" for h, c in zip(HEADERS, cells, strict=True) if c))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="100,000-row frames, fewer repeats; writes nothing"
    )
    parser.add_argument("--write", action="store_true", help="with --quick, still write RESULTS.md")
    parser.add_argument("--no-peers", action="store_true", help="skip Metaflow and Prefect")
    args = parser.parse_args()
    rows, repeat = (100_000, 2) if args.quick else (1_000_000, 5)
    peers = not args.no_peers and PEERS_PYTHON.exists()
    if not args.no_peers and not peers:
        print(f"No {PEERS_PYTHON}: measuring Shipyard and plain only (bench/README.md: how to add the peers)")
    machine = machine_info()
    load_start = load_average()
    measured: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-pipelines-") as tmp:
        root = Path(tmp)
        jobs: list[tuple[str, Callable[[Path, int, int], dict[str, float]]]] = [("plain", measure_plain)]
        if peers:
            jobs += [("metaflow", measure_metaflow), ("prefect", measure_prefect)]
        jobs.append(("shipyard", measure_shipyard))  # last: it changes this process's environment
        for name, fn in jobs:
            folder = root / name
            folder.mkdir()
            started = time.perf_counter()
            measured[name] = fn(folder, rows, repeat)
            print(f"{name}: {json.dumps({k: round(v, 4) for k, v in measured[name].items()})} "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
    if peers:
        machine["metaflow"] = peer_version("metaflow")
        machine["prefect"] = peer_version("prefect")
    machine.pop("mlflow", None)
    machine["load avg (1 min) start→end"] = f"{load_start}→{load_average()}"
    print_table(measured)
    if not args.quick or args.write:
        write_section(section_markdown(measured, rows, machine_line(machine)))
        print(f"Wrote the bench:{KEY} section of {RESULTS_PATH}")


def peer_version(dist: str) -> str:
    code = f"from importlib.metadata import version; print(version({dist!r}))"
    return (
        subprocess.run([str(PEERS_PYTHON), "-c", code], capture_output=True, text=True).stdout.strip() or "?"
    )


if __name__ == "__main__":
    main()
