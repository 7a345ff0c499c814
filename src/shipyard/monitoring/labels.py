"""Labels that arrive after the predictions: write them, read them, join them to logged predictions.

Labels come from three places, all ending in the same rows:

- ``POST /feedback`` on the model server (``{request_id, label, row?}``), appended to the feedback log;
- :func:`log_feedback` from Python (by request id, or by a user key), written to the same feedback log in
  the same format (``shipyard.serving.predlog.FEEDBACK_SCHEMA``) by the same writer;
- a labelled file or frame (CSV, Parquet or pandas) with a request-id or key column and a label column.

:func:`join_labels` joins them to the logged predictions exploded to one row per predicted row
(:func:`prediction_rows`): by ``(request_id, row)``, where a label without ``row`` names row 0 of a
one-row request (on a request of several rows it is ambiguous, counted and left out), or by a user key
column of the logged inputs (every prediction of that key gets the label). When a row is labelled more
than once, the label with the latest ``ts`` wins and the others are counted as ``duplicates``. Labels that
match no logged prediction (yet) are counted as ``unmatched``: a label may arrive before its prediction's
log part is flushed, and a later pass picks it up. Labels that arrive late simply join on a later pass;
the share of predictions labelled so far is part of every window.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd

from shipyard.entities import now_ms
from shipyard.errors import InvalidInput
from shipyard.monitoring.query import When, log_root, query_predictions
from shipyard.serving.predlog import ParquetPredictionLog, read_prediction_log
from shipyard.tracking.fluent import get_client

if TYPE_CHECKING:
    from shipyard.tracking import Client

__all__ = [
    "LabelJoin",
    "join_labels",
    "log_feedback",
    "prediction_rows",
    "read_feedback",
    "read_label_file",
    "read_predictions",
]

_ROW_COLUMNS = ["request_id", "row", "ts", "variant", "model_version", "shadow", "prediction", "proba"]
_MAX_FEEDBACK_ROWS = 1_000_000


def log_feedback(
    deployment: str,
    labels: Sequence[Any] | Any,
    *,
    request_ids: Sequence[str] | None = None,
    keys: Sequence[Any] | None = None,
    rows: Sequence[int | None] | None = None,
    ts: Sequence[int] | int | None = None,
    root: str | os.PathLike[str] | None = None,
    client: Client | None = None,
) -> int:
    """Record ground truth for earlier predictions in the deployment's feedback log (as ``POST /feedback``).

    Args:
        deployment: The deployment whose predictions are labelled.
        labels: One label per request id (or key): any JSON-able value.
        request_ids: The ``x-request-id`` of each labelled request; or
        keys: a user key per label, matched against a key column of the logged inputs
            (``monitor_performance(key=...)``).
        rows: Which row of each request a label is for (default: none, meaning row 0 of one-row requests).
        ts: When the labels became known, epoch ms (one, or one per label; default: now).
        root: The prediction log's root (default: where the deployment writes it).
        client: The client (default: the current one).

    Returns:
        The number of labels written.

    Example:
        >>> sy.log_feedback("flights", [1, 0], request_ids=["r-1", "r-2"])  # doctest: +SKIP
        2
    """
    values = list(labels)
    if (request_ids is None) == (keys is None):
        raise InvalidInput("log_feedback needs exactly one of request_ids= or keys= to say what is labelled")
    names = [str(v) for v in (request_ids if request_ids is not None else keys or [])]
    if len(names) != len(values) or not values or len(values) > _MAX_FEEDBACK_ROWS:
        raise InvalidInput(
            f"log_feedback got {len(values):,} labels for {len(names):,} "
            f"{'request ids' if request_ids is not None else 'keys'}: pass one label each (1 to "
            f"{_MAX_FEEDBACK_ROWS:,} per call)"
        )
    if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in values):
        raise InvalidInput("log_feedback got a null label: leave unlabelled rows out instead")
    row_list = list(rows) if rows is not None else [None] * len(values)
    stamps = [ts] * len(values) if ts is None or isinstance(ts, int) else list(ts)
    if len(row_list) != len(values) or len(stamps) != len(values):
        raise InvalidInput("rows= and ts= need one value per label when given as sequences")
    now = now_ms()
    id_field = "request_id" if request_ids is not None else "key"
    records = [
        {id_field: name, "label": _plain(label), "row": row, "ts": now if t is None else int(t)}
        for name, label, row, t in zip(names, values, row_list, stamps, strict=True)
    ]
    sink = ParquetPredictionLog(log_root(deployment, client or get_client(), root), deployment=deployment)
    try:
        sink.append_feedback(records)
    finally:
        sink.close()
    return len(records)


def _plain(value: Any) -> Any:
    """numpy scalars as Python values, so labels are written as JSON numbers, not text."""
    return value.item() if isinstance(value, np.generic) else value


def read_feedback(
    deployment: str, *, root: str | os.PathLike[str] | None = None, client: Client | None = None
) -> pd.DataFrame:
    """Every feedback row of a deployment: ``request_id``, ``key``, ``row``, ``ts`` (epoch ms), ``label``
    (decoded from its JSON text), oldest first.

    Example:
        >>> read_feedback("flights")[["request_id", "label"]].head()  # doctest: +SKIP
    """
    where = log_root(deployment, client or get_client(), root)
    frame = read_prediction_log(where, kind="feedback", deployment=deployment)
    out = pd.DataFrame(
        {
            "request_id": frame["request_id"].astype(object),
            "key": frame["key"].astype(object),
            "row": frame["row"].astype("Int64"),
            "ts": _epoch_ms(frame["ts"]),
            "label": [orjson.loads(text) if isinstance(text, str) else None for text in frame["label"]],
        }
    )
    return out.reset_index(drop=True)


def read_label_file(
    source: str | os.PathLike[str] | pd.DataFrame, *, label: str = "label", on: str = "request_id"
) -> pd.DataFrame:
    """Labels from a CSV or Parquet file (or a frame): column ``on`` (a request id, or a user key) and
    ``label``; optional ``row`` and ``ts`` (epoch ms or a timestamp; default now), in the shape of
    :func:`read_feedback`.

    Example:
        >>> read_label_file(pd.DataFrame({"request_id": ["r1"], "label": [1]}))["label"].tolist()
        [1]
    """
    if isinstance(source, pd.DataFrame):
        frame = source
    else:
        path = Path(os.fspath(source))
        if path.suffix.lower() not in (".csv", ".parquet", ".pq"):
            raise InvalidInput(f"Label file {str(path)!r} must be .csv or .parquet")
        frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    missing = [c for c in (on, label) if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"The labels have no column {missing}: they have {list(frame.columns)[:20]}; pass on= (the "
            "request-id or key column) and label= (the label column)"
        )
    labelled = frame[frame[label].notna()]
    ids = labelled[on].astype(str).astype(object)
    stamps = _epoch_ms(labelled["ts"]) if "ts" in labelled.columns else np.full(len(labelled), now_ms())
    return pd.DataFrame(
        {
            "request_id": ids if on == "request_id" else None,
            "key": ids if on != "request_id" else None,
            "row": labelled["row"].astype("Int64") if "row" in labelled.columns else pd.NA,
            "ts": stamps,
            "label": [_plain(v) for v in labelled[label]],
        }
    ).reset_index(drop=True)


def _epoch_ms(values: pd.Series) -> np.ndarray[Any, Any]:
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = pd.to_datetime(values, utc=True)
        return np.asarray(
            (stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1), dtype=np.int64
        )
    return np.asarray(values, dtype=np.int64)


def read_predictions(
    deployment: str,
    *,
    variant: str | None = None,
    since: When = None,
    until: When = None,
    root: str | os.PathLike[str] | None = None,
    client: Client | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Answered predictions (status 200) of a deployment, one row per predicted row, and their inputs.

    Example:
        >>> rows, features = read_predictions("flights", since="2013-07-01")  # doctest: +SKIP
    """
    cols = ["request_id", "ts", "variant", "model_version", "shadow", "n_rows", "inputs", "outputs", "status"]
    lf = query_predictions(deployment, variant=variant, since=since, until=until, root=root, client=client)
    import polars as pl

    frame = lf.select(cols).filter(pl.col("status") == 200).sort("ts").collect().to_pandas()
    return prediction_rows(frame)


def prediction_rows(logged: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Logged requests exploded to one row per predicted row: ``request_id``, ``row``, ``ts`` (epoch ms),
    ``variant``, ``model_version``, ``shadow``, ``prediction``, ``proba`` (the probability list, or None);
    and the logged inputs of each row as a second frame (same index).

    Example:
        >>> logged = pd.DataFrame({"request_id": ["r1"], "ts": [5], "variant": ["main"],
        ...     "model_version": ["1"], "shadow": [False], "inputs": ['[{"x":1},{"x":2}]'],
        ...     "outputs": ['{"predictions":[0,1]}']})
        >>> rows, features = prediction_rows(logged)
        >>> rows["row"].tolist(), rows["prediction"].tolist(), features["x"].tolist()
        ([0, 1], [0, 1], [1, 2])
    """
    out: dict[str, list[Any]] = {name: [] for name in _ROW_COLUMNS}
    records: list[dict[str, Any]] = []
    stamps = _epoch_ms(logged["ts"]) if len(logged) else np.zeros(0, dtype=np.int64)
    meta = zip(
        logged["request_id"],
        stamps,
        logged["variant"],
        logged["model_version"],
        logged["shadow"],
        strict=True,
    )
    for (rid, ts, variant, version, shadow), inputs, outputs in zip(
        meta, logged["inputs"], logged["outputs"], strict=True
    ):
        rows = orjson.loads(inputs) if isinstance(inputs, str) and inputs else []
        rows = rows if isinstance(rows, list) else [rows]
        answer = orjson.loads(outputs) if isinstance(outputs, str) and outputs else {}
        answer = answer if isinstance(answer, dict) else {"predictions": answer}
        preds = answer.get("predictions")
        preds = preds if isinstance(preds, list) and len(preds) == len(rows) else [None] * len(rows)
        probs = answer.get("probabilities")
        probs = probs if isinstance(probs, list) and len(probs) == len(rows) else [None] * len(rows)
        for i, (record, pred, prob) in enumerate(zip(rows, preds, probs, strict=True)):
            values = (rid, i, int(ts), variant, version, bool(shadow), pred, prob)
            for name, value in zip(_ROW_COLUMNS, values, strict=True):
                out[name].append(value)
            records.append(record if isinstance(record, dict) else {})
    return pd.DataFrame(out, columns=_ROW_COLUMNS), pd.DataFrame.from_records(records, nrows=len(records))


@dataclass
class LabelJoin:
    """Prediction rows with the labels that have arrived (``label``, ``label_ts``; None where none has).

    ``unmatched`` counts labels naming no logged prediction (yet), ``duplicates`` labels superseded by a
    later label for the same row, ``ambiguous`` labels without ``row`` for a request of several rows.
    """

    rows: pd.DataFrame
    features: pd.DataFrame
    on: str = "request_id"
    labels: int = 0
    matched: int = 0
    unmatched: int = 0
    duplicates: int = 0
    ambiguous: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def labelled(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Which rows have a label."""
        return np.asarray(self.rows["label_ts"].notna(), dtype=bool)

    def counts(self) -> dict[str, int]:
        """Label bookkeeping as numbers (what reports store)."""
        names = ("labels", "matched", "unmatched", "duplicates", "ambiguous")
        return {name: int(getattr(self, name)) for name in names}


def join_labels(
    rows: pd.DataFrame, features: pd.DataFrame, labels: pd.DataFrame, *, key: str | None = None
) -> LabelJoin:
    """Attach labels (shape of :func:`read_feedback`) to prediction rows (:func:`prediction_rows`), by
    ``(request_id, row)`` or, with ``key``, by that column of the logged inputs against the labels' ``key``.

    Example:
        >>> rows = pd.DataFrame({"request_id": ["r1"], "row": [0]})
        >>> labels = pd.DataFrame(
        ...     {"request_id": ["r1"], "key": [None], "row": [None], "ts": [7], "label": [1]})
        >>> join_labels(rows, pd.DataFrame(index=[0]), labels).rows["label"].tolist()
        [1]
    """
    if key is not None and key not in features.columns:
        raise InvalidInput(
            f"Key column {key!r} is not among the logged inputs ({list(features.columns)[:20]}); pass the "
            "input column that names each predicted row"
        )
    id_col = "key" if key is not None else "request_id"
    given = labels[labels[id_col].notna()].copy()
    join = LabelJoin(rows=rows.copy(), features=features, on=key or "request_id", labels=len(given))
    if key is not None:
        target = pd.DataFrame({"_id": features[key].astype(str).to_numpy(), "_row": 0}, index=rows.index)
        given["_row"] = 0
    else:
        target = pd.DataFrame(
            {"_id": rows["request_id"].astype(str).to_numpy(), "_row": rows["row"].to_numpy()},
            index=rows.index,
        )
        given["_row"] = _label_rows(given, rows, join)
        given = given[given["_row"].notna()]
    given["_id"] = given[id_col].astype(str)
    given = given.sort_values("ts", kind="stable")
    last = given.drop_duplicates(["_id", "_row"], keep="last")
    join.duplicates = len(given) - len(last)
    last = last.assign(_row=last["_row"].astype(np.int64))[["_id", "_row", "label", "ts"]]
    merged = target.reset_index().merge(last, on=["_id", "_row"], how="left").set_index("index")
    join.rows["label"] = merged["label"].reindex(rows.index).astype(object)
    join.rows["label_ts"] = merged["ts"].reindex(rows.index)
    found = set(zip(target["_id"], target["_row"], strict=True))
    join.matched = sum((i, r) in found for i, r in zip(last["_id"], last["_row"], strict=True))
    join.unmatched = len(last) - join.matched
    return join


def _label_rows(labels: pd.DataFrame, rows: pd.DataFrame, join: LabelJoin) -> pd.Series:
    """The row each label is for: its ``row``, else 0 for a one-row request; None when ambiguous."""
    sizes = rows.groupby("request_id")["row"].max().add(1)
    size = labels["request_id"].map(sizes)
    explicit = labels["row"].astype("Int64")
    ambiguous = explicit.isna() & (size > 1)
    join.ambiguous = int(ambiguous.sum())
    if join.ambiguous:
        join.notes.append(
            f"{join.ambiguous:,} label(s) name a request of several rows without saying which row "
            "(send 'row'); they were left out."
        )
    return explicit.fillna(0).astype(object).where(~ambiguous, None)
