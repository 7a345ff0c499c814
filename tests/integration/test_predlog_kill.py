"""A process writing the prediction log is killed -9: the log is never corrupt, loses at most one interval."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from server_process import child_env

from shipyard.serving.predlog import PREDICTION_SCHEMA, read_prediction_log

pytestmark = pytest.mark.integration

FLUSH_INTERVAL_S = 0.2
SLACK_S = 0.5  # time for one write (encode, fsync, rename) on a busy machine

# Appends about 20,000 rows/s in requests of 20 (a busy server); after each append it prints
# "<highest sequence number appended> <wall clock>" every few milliseconds, so the parent knows what
# had been handed to the log when.
_APPENDER = """
import sys, time
from shipyard.serving.predlog import ParquetPredictionLog
sink = ParquetPredictionLog(sys.argv[1], deployment="churn", flush_interval_s=float(sys.argv[2]))
seq = 0
last_print = 0.0
while True:
    rows = []
    for _ in range(20):
        rows.append({"request_id": str(seq), "ts": time.time_ns() // 1_000_000, "variant": "main",
                     "model": "models:/churn/1", "model_version": "1", "shadow": False, "latency_ms": 0.5,
                     "n_rows": 1, "inputs": '[{"x": %d}]' % seq, "outputs": "[0.5]", "status": 200})
        seq += 1
    sink.append(rows)
    now = time.time()
    if now - last_print >= 0.005:
        print(seq - 1, now, flush=True)
        last_print = now
    time.sleep(0.001)
"""

_EXITS_WITHOUT_CLOSE = """
import sys
from shipyard.serving.predlog import ParquetPredictionLog
sink = ParquetPredictionLog(sys.argv[1], deployment="churn", flush_interval_s=60.0)
sink.append([{"request_id": str(i), "ts": 1_764_226_800_000} for i in range(1000)])
print("appended", flush=True)
"""


def run_and_kill(root: Path, home: Path, run_for: float) -> int:
    """Run the appender, SIGKILL it after ``run_for`` s; the last seq appended by kill - interval - slack."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _APPENDER, str(root), str(FLUSH_INTERVAL_S)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(home),
        text=True,
    )
    assert proc.stdout is not None
    progress: list[tuple[int, float]] = []
    first = proc.stdout.readline()  # the first line: the child has imported and started appending
    assert first, proc.stderr.read() if proc.stderr else "appender died"
    deadline = time.time() + run_for
    for line in proc.stdout:
        seq, at = line.split()
        progress.append((int(seq), float(at)))
        if time.time() >= deadline:
            break
    killed_at = time.time()  # taken before the signal: every row counted as safe is at least that old
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    proc.stdout.close()
    if proc.stderr:
        proc.stderr.close()
    safe = [seq for seq, at in progress if at <= killed_at - FLUSH_INTERVAL_S - SLACK_S]
    assert safe, "the appender ran too briefly to test anything"
    return max(safe)


@pytest.mark.parametrize("run_for", [1.5, 2.37])
def test_killed_writer_loses_at_most_one_flush_interval_and_never_corrupts(
    tmp_path: Path, run_for: float
) -> None:
    root = tmp_path / "log"
    safe_seq = run_and_kill(root, tmp_path / "home", run_for)
    files = sorted(root.glob("predictions/deployment=churn/date=*/hour=*/part-*.parquet"))
    assert files
    for part in files:  # every finished part is a whole, readable Parquet file with the schema
        table = pq.read_table(part)
        assert table.schema == PREDICTION_SCHEMA and table.num_rows > 0
    seqs = read_prediction_log(root)["request_id"].astype(int)
    assert seqs.is_unique
    present = set(seqs.tolist())
    missing = [s for s in range(safe_seq + 1) if s not in present]
    assert not missing, (
        f"{len(missing)} rows appended before kill - interval - slack are missing: {missing[:5]}"
    )
    # what is there is a prefix of what was appended: the log is written in order
    assert present == set(range(len(present)))


def test_a_program_that_ends_without_close_still_flushes(tmp_path: Path) -> None:
    root = tmp_path / "log"
    result = subprocess.run(
        [sys.executable, "-c", _EXITS_WITHOUT_CLOSE, str(root)],
        capture_output=True,
        text=True,
        env=child_env(tmp_path / "home"),
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert read_prediction_log(root)["request_id"].astype(int).tolist() == list(range(1000))
