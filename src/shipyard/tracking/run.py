"""``ActiveRun``: the handle a training script logs through."""

from __future__ import annotations

import io
import json
import operator
import os
import threading
import traceback
import weakref
from collections.abc import Callable, Mapping, Sequence
from numbers import Real
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from shipyard import names
from shipyard.entities import (
    MAX_KEY_LENGTH,
    Artifact,
    DatasetVersion,
    LogBatch,
    MetricSeries,
    Run,
    RunStatus,
    now_ms,
)
from shipyard.errors import InvalidInput, InvalidMetricValue, InvalidState, ShipyardError, StoreUnavailable
from shipyard.tracking.logger import RunLogger

if TYPE_CHECKING:
    from shipyard.tracking.client import Client
    from shipyard.tracking.sysmetrics import SystemSampler

__all__ = ["ActiveRun", "live_runs"]

MAX_PARAM_LEN = 6000
_LIVE: weakref.WeakSet[ActiveRun] = weakref.WeakSet()


def live_runs() -> list[ActiveRun]:
    """Runs of this process that have not ended (ended ``finished`` at interpreter exit)."""
    return [r for r in _LIVE if not r.ended]


def _metric_value(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        if hasattr(value, "item") and getattr(value, "size", 1) == 1:  # numpy/torch scalars
            return _metric_value(key, value.item())
        raise InvalidMetricValue(
            f"Metric '{key}' must be a number, got {type(value).__name__} {value!r}; "
            "log text with set_tags or log_dict instead"
        )
    return float(value)


def check_key(kind: str, key: Any) -> str:
    return names.check_key(f"{kind} key", key)


def param_text(key: str, value: Any) -> str:
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value)
        if isinstance(value, (list, dict))
        else str(value)
    )
    if len(text) > MAX_PARAM_LEN:
        raise InvalidInput(f"Param '{key}' is {len(text)} characters long; the limit is {MAX_PARAM_LEN}")
    return str(names.check_text(f"Param '{key}'", text))


def tag_text(key: str, value: Any) -> str:
    """A tag value as stored: its text, without NUL (it would fail the background flush)."""
    return str(names.check_text(f"Tag '{key}'", str(value)))


def _integer_column(key: str, name: str, data: Any, n: int) -> Any:
    """``data`` as an int64 array of length ``n`` (whole floats allowed), or a clear error."""
    import numpy as np

    arr = np.asarray(data)
    whole = np.issubdtype(arr.dtype, np.integer) or (
        np.issubdtype(arr.dtype, np.floating) and bool(np.all(np.isfinite(arr) & (np.mod(arr, 1) == 0)))
    )
    if arr.shape != (n,) or arr.dtype == np.bool_ or not whole:
        raise InvalidInput(f"Metric '{key}' {name} must be {n} integers, one per value")
    return arr.astype(np.int64)


class ActiveRun:
    """A run in progress. Use as a context manager, or call :meth:`end`.

    Example:
        >>> import shipyard as sy
        >>> with sy.start_run(experiment="doc") as run:  # doctest: +SKIP
        ...     run.log_metric("loss", 0.5)
    """

    def __init__(self, client: Client, run: Run, previous: ActiveRun | None = None) -> None:
        self.client = client
        self.info = run
        self.id = run.id
        self.previous = previous
        settings = client.settings
        self._logger = RunLogger(
            client.store,
            run.id,
            settings.flush_interval,
            settings.buffer_size,
            heartbeat_interval=settings.run_heartbeat_timeout / 5,
        )
        self._next_step: dict[str, int] = {}
        self._params: dict[str, str] = dict(run.params)
        self._sampler: SystemSampler | None = None
        self._aux: list[threading.Thread] = []
        self.ended = False
        self.on_end: list[Callable[[ActiveRun], None]] = []
        # Called with (key, value, step) after each metric point is queued (sweeps report to optuna).
        self.on_metric: list[Callable[[str, float, int], None]] = []
        _LIVE.add(self)

    def __repr__(self) -> str:
        return f"<ActiveRun {self.id} experiment={self.info.experiment_name!r} name={self.info.name!r}>"

    # -- metrics, params, tags ----------------------------------------------------------------
    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Log one point of a metric series (``step`` defaults to the next step of that key)."""
        if value.__class__ is not float:
            value = _metric_value(key, value)
        # A bad key must fail here: in the background flush it would lose the whole batch.
        if key.__class__ is not str or not key or len(key) > MAX_KEY_LENGTH or "\x00" in key:
            check_key("Metric", key)
        if step is None:
            step = self._next_step.get(key, 0)
        elif step.__class__ is not int:
            step = self._step(step)
        self._next_step[key] = step + 1
        self._logger.add_metric(key, value, step, timestamp or now_ms())
        for hook in self.on_metric:
            hook(key, value, step)

    @staticmethod
    def _step(step: Any) -> int:
        if not isinstance(step, bool):
            try:
                return operator.index(step)  # int, numpy integers
            except TypeError:
                if isinstance(step, float) and step.is_integer():
                    return int(step)
        raise InvalidInput(f"step must be an integer, got {step!r}")

    def log_metrics(
        self, metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Log several metrics at the same step and time."""
        if not isinstance(metrics, Mapping):
            raise InvalidInput(f"log_metrics takes a mapping of name -> number, got {type(metrics).__name__}")
        ts = timestamp or now_ms()
        rows = []
        for key, value in metrics.items():
            check_key("Metric", key)
            v = value if value.__class__ is float else _metric_value(key, value)
            s = self._next_step.get(key, 0) if step is None else self._step(step)
            self._next_step[key] = s + 1
            rows.append((key, v, s, ts))
        self._logger.add_metrics(rows)
        for hook in self.on_metric:
            for key, v, s, _ in rows:
                hook(key, v, s)

    def log_metric_series(
        self,
        key: str,
        values: Any,
        steps: Any = None,
        timestamps: Any = None,
    ) -> None:
        """Log a whole series at once (a learning curve, a Keras history): the cheapest way in.

        ``values`` is any 1-D array-like of numbers; ``steps`` defaults to the key's next steps;
        ``timestamps`` (epoch ms) defaults to now, and may be one number or one per value.

        Example:
            >>> run.log_metric_series("val_loss", model.validation_score_)  # doctest: +SKIP
        """
        import numpy as np

        check_key("Metric", key)
        try:
            vals = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidMetricValue(f"Metric '{key}' series must hold numbers only") from None
        if vals.ndim != 1:
            raise InvalidInput(f"Metric '{key}' series must be one-dimensional, got shape {vals.shape}")
        n = len(vals)
        if steps is None:
            start = self._next_step.get(key, 0)
            step_arr = np.arange(start, start + n, dtype=np.int64)
        else:
            step_arr = _integer_column(key, "steps", steps, n)
        if timestamps is None or np.ndim(timestamps) == 0:
            stamp = now_ms() if timestamps is None else int(timestamps)
            ts = np.full(n, stamp, dtype=np.int64)
        else:
            ts = _integer_column(key, "timestamps", timestamps, n)
        if n:
            self._next_step[key] = int(step_arr.max()) + 1
            self._logger.add_series(MetricSeries(key, step_arr, ts, vals))

    def use_dataset(self, dataset: DatasetVersion | str, role: str = "train") -> DatasetVersion:
        """Record that this run consumed a dataset version (``"name@v3"`` or a ``DatasetVersion``).

        Lineage then answers "which data made this model": ``client.list_run_datasets(run.id)``.
        """
        if isinstance(dataset, str):
            name, _, ref = dataset.partition("@")
            dataset = self.client.store.get_dataset_version(name, ref or "latest")
        self.client.store.record_dataset_use(self.id, dataset.name, dataset.version, role)
        return dataset

    @property
    def logged_params(self) -> dict[str, str]:
        """Params logged so far on this run (a copy)."""
        return dict(self._params)

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log hyperparameters; a param cannot change once logged (clear error if it does)."""
        clean = {check_key("Param", k): param_text(k, v) for k, v in params.items()}
        for k, v in clean.items():
            old = self._params.get(k)
            if old is not None and old != v:
                raise InvalidInput(
                    f"Param '{k}' of run '{self.id}' is already {old!r}; cannot change it to {v!r}. "
                    "Params are immutable; use a tag or a metric for values that change."
                )
        self._params.update(clean)
        self._logger.add_params(clean)

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._logger.add_tags({check_key("Tag", k): tag_text(k, v) for k, v in tags.items()})

    # -- artifacts ----------------------------------------------------------------------------
    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[Artifact]:
        """Log a file or a whole directory; returns what was recorded (path → digest)."""
        return self.client.log_artifact(self.id, local_path, artifact_path)

    def log_bytes(self, data: bytes, artifact_path: str) -> Artifact:
        return self.client.log_bytes(self.id, data, artifact_path)

    def log_text(self, text: str, artifact_path: str) -> Artifact:
        return self.log_bytes(text.encode(), artifact_path)

    def log_dict(self, data: Mapping[str, Any] | list[Any], artifact_path: str) -> Artifact:
        """Log a dict as JSON (or YAML when the path ends in .yaml/.yml)."""
        if artifact_path.endswith((".yaml", ".yml")):
            try:
                import yaml
            except ModuleNotFoundError:
                from shipyard.errors import MissingExtra

                raise MissingExtra("Logging YAML needs PyYAML: pip install pyyaml") from None
            text = yaml.safe_dump(data, sort_keys=False)
        else:
            text = json.dumps(data, indent=2, default=str, allow_nan=True)
        return self.log_text(text, artifact_path)

    def log_figure(self, figure: Any, artifact_path: str) -> Artifact:
        """Log a matplotlib figure (PNG/SVG/PDF by extension) or a plotly figure (self-contained HTML)."""
        module = type(figure).__module__
        if module.startswith("plotly"):
            path = artifact_path if artifact_path.endswith(".html") else artifact_path + ".html"
            return self.log_text(figure.to_html(include_plotlyjs=True, full_html=True), path)
        if module.startswith("matplotlib"):
            buf = io.BytesIO()
            fmt = Path(artifact_path).suffix.lstrip(".") or "png"
            figure.savefig(buf, format=fmt, bbox_inches="tight")
            path = artifact_path if Path(artifact_path).suffix else artifact_path + ".png"
            return self.log_bytes(buf.getvalue(), path)
        raise InvalidInput(
            "log_figure takes a matplotlib or plotly figure, "
            f"got {type(figure).__module__}.{type(figure).__name__}"
        )

    # -- lifecycle ----------------------------------------------------------------------------
    def flush(self) -> None:
        """Make everything logged so far durable (returns when written)."""
        self._logger.flush()

    def end(
        self, status: RunStatus | str = RunStatus.FINISHED, *, artifacts: Sequence[Artifact] = ()
    ) -> None:
        """Flush, stop background samplers and mark the run ended (idempotent).

        ``artifacts`` (records of blobs already stored) are recorded with the end, in the same
        store transaction as the last batch and the status.

        Example:
            >>> record = Artifact("outputs/0", digest, size, now_ms())  # a blob already stored
            >>> run.end("finished", artifacts=[record])  # doctest: +SKIP
        """
        if self.ended:
            return
        status = RunStatus(status)
        self.ended = True
        end_time = now_ms()
        try:
            if self._sampler is not None:
                self._sampler.stop()
            for thread in self._aux:
                thread.join(timeout=30)
        finally:
            self._logger.close(lambda batch: self._finish(batch, status, end_time, artifacts))
            self.info.status = status
            for callback in self.on_end:
                callback(self)

    def _finish(
        self, batch: LogBatch, status: RunStatus, end_time: int, artifacts: Sequence[Artifact] = ()
    ) -> None:
        """Write the last batch, artifacts and the end of the run together (one transaction on SQL)."""
        store = self.client.store
        compact = self._logger.metric_batches + bool(batch.series) > 1
        try:
            store.update_run(
                self.id,
                status=status,
                end_time=end_time,
                final_batch=batch,
                compact=compact,
                artifacts=artifacts,
            )
        except StoreUnavailable:
            raise
        except ShipyardError:
            store.update_run(self.id, status=status, end_time=end_time)  # the run still ends
            raise

    def _record_failure(self, exc: BaseException, tb: TracebackType | None) -> None:
        text = "".join(traceback.format_exception(type(exc), exc, tb))
        self.set_tags({"sy.error": f"{type(exc).__name__}: {exc}"[:5000]})
        try:
            self.log_text(text, "error/traceback.txt")
        except Exception:  # never hide the user's exception behind ours
            self.set_tags({"sy.traceback": text[-5000:]})

    def __enter__(self) -> ActiveRun:
        if self.ended:
            raise InvalidState(f"Run '{self.id}' has already ended")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.end(RunStatus.FINISHED)
            return
        self._record_failure(exc, tb)
        killed = isinstance(exc, (KeyboardInterrupt, SystemExit))
        self.end(RunStatus.KILLED if killed else RunStatus.FAILED)
