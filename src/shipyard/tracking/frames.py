"""Runs and metric histories as pandas DataFrames (pandas is imported only here, lazily)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.entities import MetricHistory, Run

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["compare_frame", "history_frame", "runs_frame"]

ATTRIBUTE_COLUMNS = [
    "run_id",
    "experiment",
    "run_name",
    "status",
    "user",
    "start_time",
    "end_time",
    "duration_s",
    "parent_run_id",
]


def _row(run: Run) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": run.id,
        "experiment": run.experiment_name,
        "run_name": run.name,
        "status": str(run.status),
        "user": run.user,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "duration_s": None if run.end_time is None else (run.end_time - run.start_time) / 1000,
        "parent_run_id": run.parent_run_id,
    }
    row.update({f"params.{k}": v for k, v in run.params.items()})
    row.update({f"metrics.{k}": v for k, v in run.metrics.items()})
    row.update({f"tags.{k}": v for k, v in run.tags.items()})
    return row


def runs_frame(runs: list[Run], next_page_token: str | None) -> pd.DataFrame:
    import pandas as pd

    rows = [_row(r) for r in runs]
    extra = sorted({k for r in rows for k in r} - set(ATTRIBUTE_COLUMNS))
    groups = {"params": 0, "metrics": 1, "tags": 2}
    extra.sort(key=lambda c: (groups.get(c.split(".", 1)[0], 3), c))
    df = pd.DataFrame(rows, columns=ATTRIBUTE_COLUMNS + extra)
    for col in ("start_time", "end_time"):
        df[col] = pd.to_datetime(df[col], unit="ms", utc=True)
    df.attrs["next_page_token"] = next_page_token
    return df


def history_frame(history: MetricHistory) -> pd.DataFrame:
    import pandas as pd

    df = pd.DataFrame({"step": history.steps, "timestamp": history.timestamps, "value": history.values})
    df = df.astype({"step": "int64", "timestamp": "int64", "value": "float64"})
    df["timestamp"] = pd.to_datetime(df["timestamp"], unit="ms", utc=True)
    df.attrs["key"] = history.key
    return df


def compare_frame(runs: list[Run]) -> pd.DataFrame:
    """Rows are fields (params.*, metrics.*, tags.*), columns are runs, plus ``differs``."""
    import pandas as pd

    counts: dict[str, int] = {}
    for run in runs:
        counts[run.name] = counts.get(run.name, 0) + 1
    labels = {r.id: r.name if r.name and counts[r.name] == 1 else f"{r.name} ({r.id[:8]})" for r in runs}
    fields: dict[str, dict[str, Any]] = {}
    for run in runs:
        for group in ("params", "metrics"):
            for key, value in getattr(run, group).items():
                fields.setdefault(f"{group}.{key}", {})[labels[run.id]] = value
        for key, value in run.tags.items():
            if not key.startswith("sy."):
                fields.setdefault(f"tags.{key}", {})[labels[run.id]] = value
    names = [labels[r.id] for r in runs]
    df = pd.DataFrame.from_dict(fields, orient="index").reindex(columns=names).sort_index()
    df["differs"] = df.apply(lambda row: len({repr(v) for v in row.tolist()}) > 1, axis=1) if len(df) else []
    return df
