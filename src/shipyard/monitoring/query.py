"""Ad hoc questions over the whole prediction log, lazily, and the windows drift monitoring reads.

:func:`query_predictions` returns a polars ``LazyFrame`` over the partitioned Parquet of
``shipyard.serving.predlog``. Partitions outside the asked deployment and time range are pruned from the
file list by their path (``deployment=…/date=…/hour=…``) before anything is opened; the remaining filters
(variant, model version, exact time bounds) are pushed down into the Parquet scan, which skips row groups
by their statistics. Nothing is read until ``collect()``. Polars rather than DuckDB: it is already a core
dependency (profiles and diffs use it), returns frames the rest of Shipyard takes as they are, and its
lazy scans push predicates and projections into Parquet as DuckDB's do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import fsspec
import numpy as np
import polars as pl

from shipyard.errors import InvalidInput
from shipyard.monitoring.decode import decode_requests
from shipyard.registry.references import parse_model_ref
from shipyard.serving.deployment import PredictionLogSpec
from shipyard.serving.predlog import FEEDBACK_SCHEMA, PREDICTION_SCHEMA, prediction_log_root
from shipyard.tracking.fluent import get_client

if TYPE_CHECKING:
    from shipyard.tracking import Client

__all__ = [
    "Window",
    "WindowSummary",
    "iter_window",
    "log_root",
    "query_predictions",
    "read_window",
    "summarize_window",
    "to_ms",
]

Kind = Literal["predictions", "feedback"]
When = datetime | int | str | None


def to_ms(when: When) -> int | None:
    """Epoch milliseconds of a datetime (naive means UTC), an ISO 8601 string or an int (already ms).

    Example:
        >>> to_ms("2025-11-27T07:00:00Z")
        1764226800000
    """
    if when is None or isinstance(when, int):
        return when
    if isinstance(when, str):
        try:
            when = datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"Time {when!r} is not ISO 8601 (e.g. 2025-11-27T07:00:00Z)") from None
    if isinstance(when, datetime):
        aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
        return int(aware.timestamp() * 1000)
    raise InvalidInput(f"Time {when!r} must be a datetime, an ISO 8601 string or epoch milliseconds")


def log_root(deployment: str | None, client: Client, root: str | os.PathLike[str] | None = None) -> str:
    """Where a deployment's prediction log lives: ``root`` if given, else the stored deployment's
    ``prediction_log.path``, else ``<artifact_uri>/predictions-log``."""
    if root is not None:
        return os.fspath(root)
    spec = PredictionLogSpec()
    if deployment is not None:
        names = {r.name for r in client.store.list_deployments()}
        if deployment in names:
            from shipyard.serving.manage import get_deployment

            spec = get_deployment(deployment, client=client).prediction_log
    return prediction_log_root(spec, client.settings.artifact_uri)


def _partition_files(
    fs: Any, base: str, kind: Kind, deployment: str | None, since: int | None, until: int | None
) -> list[str]:
    """Part files of the partitions that can hold rows in [since, until]: pruned by path, not opened."""
    pattern = f"{base.rstrip('/')}/{kind}/deployment={deployment or '*'}/date=*/hour=*/part-*.parquet"
    low = (
        None
        if since is None
        else datetime.fromtimestamp(since / 1000, UTC).replace(minute=0, second=0, microsecond=0)
    )
    high = None if until is None else datetime.fromtimestamp(until / 1000, UTC)
    kept = []
    # refresh: another process (a model server) adds parts; object-store drivers cache listings
    for path in sorted(fs.glob(pattern, refresh=True)):
        parts = dict(p.split("=", 1) for p in str(path).split("/") if p.startswith(("date=", "hour=")))
        try:
            hour = datetime.strptime(f"{parts['date']} {parts['hour']}", "%Y-%m-%d %H").replace(tzinfo=UTC)
        except (KeyError, ValueError):
            continue
        if (low is None or hour >= low) and (high is None or hour <= high):
            kept.append(str(path))
    return kept


def query_predictions(
    deployment: str | None = None,
    *,
    variant: str | None = None,
    model_version: str | int | None = None,
    since: When = None,
    until: When = None,
    columns: list[str] | None = None,
    kind: Kind = "predictions",
    root: str | os.PathLike[str] | None = None,
    client: Client | None = None,
) -> pl.LazyFrame:
    """A lazy scan over the prediction log (or its feedback), filtered, without loading the log.

    Args:
        deployment: Only this deployment's partitions (all deployments when ``None``).
        variant: Only this variant's rows.
        model_version: Only rows served by this model version.
        since: Rows at or after this time (datetime, ISO 8601 or epoch ms).
        until: Rows before this time.
        columns: The columns to read (all by default).
        kind: ``"predictions"`` or ``"feedback"``.
        root: The log's root folder or URL (default: where the deployment writes it).
        client: The client to use (default: the current one).

    Returns:
        A polars LazyFrame; call ``.collect()`` (or ``.collect(engine="streaming")``) to run it.

    Example:
        >>> lf = sy.query_predictions("churn", since="2025-11-27T00:00:00Z")  # doctest: +SKIP
        >>> lf.group_by("variant").agg(pl.col("latency_ms").quantile(0.99)).collect()  # doctest: +SKIP
    """
    if kind not in ("predictions", "feedback"):
        raise InvalidInput(f"kind must be 'predictions' or 'feedback', not {kind!r}")
    schema = PREDICTION_SCHEMA if kind == "predictions" else FEEDBACK_SCHEMA
    start, end = to_ms(since), to_ms(until)
    # an explicit root needs no store (nor a client): the log is read where it is
    where = os.fspath(root) if root is not None else log_root(deployment, client or get_client())
    try:
        fs, base = fsspec.core.url_to_fs(where)
    except (ImportError, ValueError) as exc:
        raise InvalidInput(f"Cannot read the prediction log at {where!r}: {exc}") from exc
    files = _partition_files(fs, base, kind, deployment, start, end)
    frame = _scan(fs, files, schema)
    filters = []
    if deployment is not None:
        filters.append(pl.col("deployment") == deployment)
    if variant is not None and kind == "predictions":
        filters.append(pl.col("variant") == variant)
    if model_version is not None and kind == "predictions":
        filters.append(pl.col("model_version") == str(model_version))
    if start is not None:
        filters.append(pl.col("ts") >= pl.lit(start).cast(pl.Datetime("ms", "UTC")))
    if end is not None:
        filters.append(pl.col("ts") < pl.lit(end).cast(pl.Datetime("ms", "UTC")))
    if filters:
        frame = frame.filter(*filters)
    return frame.select(columns) if columns else frame


def _scan(fs: Any, files: list[str], schema: Any) -> pl.LazyFrame:
    empty = pl.from_arrow(schema.empty_table())
    assert isinstance(empty, pl.DataFrame)
    if not files:
        return empty.lazy()
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    if "file" in protocols:
        return pl.scan_parquet(files, schema=empty.schema, hive_partitioning=False)
    import pyarrow.dataset as pads

    return pl.scan_pyarrow_dataset(pads.dataset(files, schema=schema, format="parquet", filesystem=fs))


@dataclass
class Window:
    """A window of a deployment's traffic: features and predictions as one row per predicted row.

    ``features`` holds the logged inputs; ``predictions`` the ``prediction`` column and, for models that
    returned probabilities, ``score`` (the positive class's for two classes, the top one's otherwise).
    ``skipped`` counts requests left out because their logged JSON could not be read.
    """

    features: pl.DataFrame
    predictions: pl.DataFrame
    start: int
    end: int
    requests: int
    model_versions: dict[str, int]
    skipped: int = 0


_COLUMNS = ["ts", "model", "model_version", "n_rows", "inputs", "outputs", "status", "shadow"]


def _answered(
    deployment: str,
    variant: str | None,
    since: When,
    until: When,
    root: str | os.PathLike[str] | None,
    client: Client | None,
    columns: list[str],
) -> pl.LazyFrame:
    """Answered requests (status 200; shadow answers only when ``variant`` names the shadow), lazily."""
    lf = query_predictions(
        deployment, variant=variant, since=since, until=until, root=root, client=client, columns=columns
    ).filter(pl.col("status") == 200)
    if variant is None:
        lf = lf.filter(~pl.col("shadow").fill_null(False))
    return lf


def read_window(
    deployment: str,
    *,
    variant: str | None = None,
    since: When = None,
    until: When = None,
    last: int | None = None,
    schema: Mapping[str, pl.DataType] | None = None,
    root: str | os.PathLike[str] | None = None,
    client: Client | None = None,
) -> Window:
    """Answered requests (status 200; shadow answers only when ``variant`` names the shadow) of a window
    by time (``since``/``until``) or by count (the ``last`` rows), decoded into features and predictions.

    The whole window is held in memory; :func:`iter_window` reads it partition by partition instead.
    ``schema`` (feature name to polars type) decodes only those features, with those types (faster);
    without it every logged field is decoded and its type inferred from every row.

    Example:
        >>> window = read_window("churn", last=10_000)  # doctest: +SKIP
    """
    if last is not None and last < 1:
        raise InvalidInput(f"last must be a positive number of rows, not {last}")
    lf = _answered(deployment, variant, since, until, root, client, _COLUMNS)
    if last is not None:
        lf = lf.sort("ts", descending=True)
        lf = lf.filter((pl.col("n_rows").cum_sum() - pl.col("n_rows")) < last).sort("ts")
    frame = lf.sort("ts").collect()
    decoded = decode_requests(frame.select("inputs", "outputs"), schema)
    features, predictions = decoded.features, decoded.predictions
    if last is not None and features.height > last:
        features, predictions = features.tail(last), predictions.tail(last)
    stamps = frame.get_column("ts").dt.epoch("ms")
    versions = frame.group_by("model", "model_version").agg(pl.col("n_rows").sum()).iter_rows()
    return Window(
        features=features,
        predictions=predictions,
        start=_bound(stamps, np.min),
        end=_bound(stamps, np.max),
        requests=frame.height,
        model_versions={_served_by(m, v): int(n) for m, v, n in versions},
        skipped=decoded.skipped,
    )


@dataclass
class WindowSummary:
    """What a window holds, read from the log's small columns only (no JSON decoded)."""

    requests: int
    rows: int
    start: int
    end: int
    model_versions: dict[str, int]


def summarize_window(
    deployment: str,
    *,
    variant: str | None = None,
    since: When = None,
    until: When = None,
    root: str | os.PathLike[str] | None = None,
    client: Client | None = None,
) -> WindowSummary:
    """Requests, predicted rows, first and last time and rows per served model version of a time window,
    from a lazy aggregate over ``ts``, ``model``, ``model_version`` and ``n_rows`` (flat memory).

    Example:
        >>> summarize_window("churn", since="2025-11-27").rows  # doctest: +SKIP
        1000000
    """
    lf = _answered(
        deployment,
        variant,
        since,
        until,
        root,
        client,
        ["ts", "model", "model_version", "n_rows", "status", "shadow"],
    )
    per = (
        lf.group_by("model", "model_version")
        .agg(
            pl.len().alias("requests"),
            pl.col("n_rows").cast(pl.Int64).sum().alias("rows"),
            pl.col("ts").dt.epoch("ms").min().alias("start"),
            pl.col("ts").dt.epoch("ms").max().alias("end"),
        )
        .collect(engine="streaming")
    )
    if per.is_empty():
        return WindowSummary(0, 0, 0, 0, {})
    versions: dict[str, int] = {}
    for model, version, _, rows, _, _ in per.iter_rows():
        key = _served_by(model, version)
        versions[key] = versions.get(key, 0) + int(rows or 0)
    return WindowSummary(
        requests=int(per.get_column("requests").sum()),
        rows=int(per.get_column("rows").sum()),
        start=_bound(per.get_column("start"), np.min),
        end=_bound(per.get_column("end"), np.max),
        model_versions=versions,
    )


def iter_window(
    deployment: str,
    *,
    variant: str | None = None,
    since: When = None,
    until: When = None,
    schema: Mapping[str, pl.DataType] | None = None,
    root: str | os.PathLike[str] | None = None,
    client: Client | None = None,
) -> Iterator[Window]:
    """A time window read one hour partition at a time: each item is that partition's answered requests,
    decoded (with ``schema``, only those features). Memory follows one partition, not the window.

    Example:
        >>> rows = sum(w.features.height for w in iter_window("churn", since="2025-11-01"))  # doctest: +SKIP
    """
    start, end = to_ms(since), to_ms(until)
    where = os.fspath(root) if root is not None else log_root(deployment, client or get_client())
    try:
        fs, base = fsspec.core.url_to_fs(where)
    except (ImportError, ValueError) as exc:
        raise InvalidInput(f"Cannot read the prediction log at {where!r}: {exc}") from exc
    files = _partition_files(fs, base, "predictions", deployment, start, end)
    hours: dict[str, list[str]] = {}
    for path in files:
        hours.setdefault(path.rsplit("/", 1)[0], []).append(path)
    for _, group in sorted(hours.items()):
        lf = _scan(fs, group, PREDICTION_SCHEMA).filter(pl.col("deployment") == deployment)
        lf = lf.filter(pl.col("status") == 200)
        if variant is None:
            lf = lf.filter(~pl.col("shadow").fill_null(False))
        else:
            lf = lf.filter(pl.col("variant") == variant)
        if start is not None:
            lf = lf.filter(pl.col("ts") >= pl.lit(start).cast(pl.Datetime("ms", "UTC")))
        if end is not None:
            lf = lf.filter(pl.col("ts") < pl.lit(end).cast(pl.Datetime("ms", "UTC")))
        frame = lf.select(_COLUMNS).sort("ts").collect()
        if frame.is_empty():
            continue
        decoded = decode_requests(frame.select("inputs", "outputs"), schema)
        stamps = frame.get_column("ts").dt.epoch("ms")
        versions = frame.group_by("model", "model_version").agg(pl.col("n_rows").sum()).iter_rows()
        yield Window(
            features=decoded.features,
            predictions=decoded.predictions,
            start=_bound(stamps, np.min),
            end=_bound(stamps, np.max),
            requests=frame.height,
            model_versions={_served_by(m, v): int(n) for m, v, n in versions},
            skipped=decoded.skipped,
        )


def _bound(values: pl.Series, pick: Any) -> int:
    """The smallest or largest (``pick``) of integer values, 0 when there are none."""
    array = values.drop_nulls().to_numpy()
    return int(pick(array)) if len(array) else 0


def _served_by(model: str | None, version: str | None) -> str:
    """``models:/NAME/VERSION`` for a registered model (whatever alias it was served by), else the model."""
    if model and model.startswith("models:/") and version:
        return f"models:/{parse_model_ref(model).name}/{version}"
    return model or ""
