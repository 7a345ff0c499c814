"""``RestStore``: the ``Store`` protocol over HTTP, talking to a Shipyard server.

One ``httpx.Client`` (connection reuse, ``Settings.http_timeout``) serves every
call; error bodies come back as the same ``ShipyardError`` subclasses the server
raised. When the server cannot be reached (no answer: connection refused or
reset, a timeout, a gateway's 502-504), writes never fail the caller: they go to
the offline spool (``shipyard.store.spool``) and are replayed in order when the
server is back; reads raise ``ServerUnreachable``. A server that *answers* with an
error (a refusal, a full disk: ``storage_full``) has not stored the write: that
error is raised to the caller, never spooled, so no write is reported done that
did not land.

Wire format: JSON. Floats that JSON cannot carry (NaN, ±infinity) travel as the
strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (``shipyard.wire.floats``,
shared with the server); error answers decode with ``shipyard.wire.error_from_response``.
"""

from __future__ import annotations

import atexit
import contextlib
import http.cookiejar
import io
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import blake3
import httpx

from shipyard.artifacts.blobs import CHUNK, BlobStoreBase, check_digest, hash_file
from shipyard.config import Settings, load_settings
from shipyard.entities import (
    Artifact,
    AuditEntry,
    ContractVersion,
    DatasetUse,
    DatasetVersion,
    DatasetVersionCreate,
    Experiment,
    LogBatch,
    MetricHistory,
    Run,
    RunCreate,
    RunPage,
    RunStatus,
    RunView,
    clean_artifact_path,
    now_ms,
)
from shipyard.errors import (
    InvalidInput,
    PermissionDenied,
    RunNotFound,
    ServerUnreachable,
    ShipyardError,
    StoreUnavailable,
)
from shipyard.store.rest_alerts import RestAlertsMixin
from shipyard.store.rest_auth import RestAuthMixin
from shipyard.store.rest_models import RestModelsMixin
from shipyard.store.rest_monitoring import RestMonitoringMixin
from shipyard.store.rest_schedules import RestSchedulesMixin
from shipyard.store.spool import Journal, replay_journal, stash_blob
from shipyard.wire import encode_float, error_from_response

__all__ = ["RestBlobStore", "RestStore"]

log = logging.getLogger("shipyard.rest")

API = "/api/v1"
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_RETRY_503_AFTER_S = 0.2

_STALE_CONNECTION = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
"""What a kept-alive connection the server closed or reset looks like (not timeouts, not refusals)."""


def _run_path(run_id: str, suffix: str = "") -> str:
    return f"{API}/runs/{quote(run_id, safe='')}{suffix}"


def _op_route(op: dict[str, Any]) -> tuple[str, str]:
    kind = op.get("op")
    run_id = str(op.get("run_id", ""))
    if kind == "create_run":
        return "POST", f"{API}/runs"
    if kind == "log_batch":
        return "POST", _run_path(run_id, "/batch")
    if kind == "update_run":
        return "PATCH", _run_path(run_id)
    if kind == "record_artifacts":
        return "POST", _run_path(run_id, "/artifacts")
    if kind == "record_run":
        return "POST", f"{API}/runs/record"
    raise InvalidInput(f"Unknown spooled operation {kind!r}")


def _batch_body(batch: LogBatch) -> dict[str, Any]:
    rows = list(batch.metric_rows())
    return {
        "batch_id": batch.batch_id,
        "params": batch.params,
        "tags": batch.tags,
        "metrics": {
            "keys": [r[0] for r in rows],
            "values": [encode_float(float(r[1])) for r in rows],
            "steps": [int(r[2]) for r in rows],
            "timestamps": [int(r[3]) for r in rows],
        },
    }


def _artifact_rows(artifacts: Sequence[Artifact]) -> list[dict[str, Any]]:
    now = now_ms()
    return [
        {
            "path": clean_artifact_path(a.path),
            "digest": a.digest,
            "size": a.size,
            "created_at": a.created_at or now,
        }
        for a in artifacts
    ]


_END_EXTRAS = frozenset({"batch", "artifacts", "compact"})
"""Fields of ``PATCH /runs/{id}`` that servers from before one-request run ends refuse."""


def _refuses_end_extras(exc: InvalidInput, body: dict[str, Any]) -> bool:
    """True when ``exc`` is an older server refusing only the end-of-run fields it does not know."""
    errors = exc.details.get("errors") if isinstance(exc.details, dict) else None
    if not errors or not _END_EXTRAS & body.keys() or not isinstance(errors, list):
        return False
    return all(
        isinstance(e, dict)
        and e.get("type") == "extra_forbidden"
        and str(e.get("field", "")).split(".")[0].split("[")[0] in _END_EXTRAS
        for e in errors
    )


class _NoCookies(http.cookiejar.CookieJar):
    """A cookie jar that keeps nothing: parsing every answer for ``Set-Cookie`` (httpx does it through
    ``http.cookiejar``) costs a client more CPU per request than building the request."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


def _create_body(spec: RunCreate) -> dict[str, Any]:
    return {
        "run_id": spec.run_id,
        "experiment_name": spec.experiment_name,
        "name": spec.name,
        "start_time": spec.start_time,
        "user": spec.user,
        "source": spec.source,
        "parent_run_id": spec.parent_run_id,
        "params": spec.params,
        "tags": spec.tags,
    }


def _predates_record(exc: ShipyardError) -> bool:
    """True when ``exc`` is a server from before ``POST /runs/record`` not knowing the route."""
    if exc.remote_code in ("not_found", "method_not_allowed"):
        return True
    return isinstance(exc, PermissionDenied) and "has no access rule" in exc.message


def _local_run(spec: RunCreate, experiment_id: int = 0) -> Run:
    """The run as the server will create it, for a ``create_run`` spooled or held back (id 0: not
    known yet)."""
    return Run(
        id=spec.run_id,
        experiment_id=experiment_id,
        experiment_name=spec.experiment_name,
        name=spec.name,
        status=RunStatus.RUNNING,
        start_time=spec.start_time,
        parent_run_id=spec.parent_run_id,
        user=spec.user,
        source=spec.source,
        params=dict(spec.params),
        tags=dict(spec.tags),
    )


def _as_token_user(fields: Any) -> Any:
    """With a token, a request acts as the token's user: an ``actor`` name is left out (the server
    fills it in, and refuses a name that is not the token's)."""
    if isinstance(fields, dict) and fields.get("actor"):
        return {**fields, "actor": ""}
    return fields


class RestStore(RestModelsMixin, RestSchedulesMixin, RestMonitoringMixin, RestAlertsMixin, RestAuthMixin):
    """The metadata store of a Shipyard server at ``uri`` (``http(s)://host:port``).

    Example:
        >>> store = RestStore("http://127.0.0.1:5000")  # doctest: +SKIP
        >>> [e.name for e in store.list_experiments()]  # doctest: +SKIP
        ['default', 'churn']
    """

    def __init__(
        self,
        uri: str,
        settings: Settings | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        replay_interval: float = 2.0,
    ) -> None:
        self.uri = uri.rstrip("/")
        self.settings = settings or load_settings(tracking_uri=self.uri)
        self.spool_dir = self.settings.spool_dir.absolute()  # stable if the process changes directory
        self.replay_interval = replay_interval
        headers = {"Accept": "application/json", "User-Agent": "shipyard-rest-store"}
        self._token = self.settings.token
        if self._token:  # every request, blob transfer and spool replay goes through this client
            headers["Authorization"] = f"Bearer {self._token}"
        self._http = httpx.Client(
            base_url=self.uri, timeout=self.settings.http_timeout, transport=transport, headers=headers
        )
        self._http.cookies = _NoCookies()  # the API authenticates by token, never by cookie
        self._lock = threading.Lock()  # guards the switch between sending and spooling
        self._journal: Journal | None = None
        self._replayer: threading.Thread | None = None
        self._stop = threading.Event()
        self._blobs: RestBlobStore | None = None
        self._closed = False
        self._split_ends = False  # the server predates one-request run ends (found at the first end)
        # Held-back run creates (settings.defer_run_start): sent before any other request of this
        # client, by the flusher within flush_interval, or with the run's end as one record_run.
        self._deferred: dict[str, RunCreate] = {}
        self._deferred_lock = threading.RLock()  # held while sending them: an end never overtakes
        self._deferred_errors: dict[str, ShipyardError] = {}
        self._experiment_ids: dict[str, int] = {}  # experiments this client created a run in
        self._tls = threading.local()
        self._no_record = False  # the server predates POST /runs/record (found at the first use)

    def __repr__(self) -> str:
        return f"<RestStore {self.uri}>"

    # -- plumbing -----------------------------------------------------------------------------
    def _unreachable(self, exc: Exception) -> ServerUnreachable:
        return ServerUnreachable(
            f"Shipyard server {self.uri} is unreachable ({type(exc).__name__}: {exc}). Reads need the "
            f"server; writes are kept in {self.spool_dir} and sent when it is back."
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        idempotent: bool | None = None,
        headers: dict[str, str] | None = None,
        send_deferred: bool = True,
    ) -> httpx.Response:
        """Send one request; error answers raise their ``ShipyardError``, no answer ``ServerUnreachable``.

        Held-back run creates are sent first (``send_deferred=False``: only for requests that
        cannot concern them, such as heartbeats of runs already created).

        An idempotent request (GET, PUT, DELETE, HEAD by default; ``idempotent=True`` for POSTs that
        are safe to repeat, such as a create with its id or a batch with its ``batch_id``) is sent a
        second time when its kept-alive connection turns out reset or closed: that is a stale
        connection, not an unreachable server, and must not switch writes to the spool.
        """
        if self._token:  # a read's ``actor`` is a filter (list_audit): keep it
            body = _as_token_user(body)
            params = params if method == "GET" else _as_token_user(params)
        content = None if body is None else json.dumps(body, allow_nan=False, separators=(",", ":")).encode()
        if content is not None:
            headers = {**(headers or {}), "Content-Type": "application/json"}
        repeatable = method in _IDEMPOTENT_METHODS if idempotent is None else idempotent
        if self._deferred and send_deferred and not getattr(self._tls, "busy", False):
            self.send_deferred()  # whatever this request reads or writes may concern those runs
        try:
            try:
                response = self._http.request(method, path, content=content, params=params, headers=headers)
            except _STALE_CONNECTION as exc:
                if not repeatable:
                    raise
                log.debug("Connection to %s was reset (%s); sending %s %s again", self.uri, exc, method, path)
                response = self._http.request(method, path, content=content, params=params, headers=headers)
            if response.status_code == 503 and repeatable:
                # The server's database dropped a connection (a restart): the server has replaced
                # its pool by now, so a request that is safe to repeat is sent once more.
                time.sleep(_RETRY_503_AFTER_S)
                response = self._http.request(method, path, content=content, params=params, headers=headers)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.is_error:
            raise error_from_response(response, self.uri)
        return response

    def _get(self, path: str, **params: Any) -> Any:
        return self._request("GET", path, params=params or None).json()

    def _post(self, path: str, body: Any) -> Any:
        return self._request("POST", path, body=body).json()

    def close(self) -> None:
        """Stop the background replay, try a last replay of spooled writes, close connections."""
        if self._closed:
            return
        with contextlib.suppress(ShipyardError):  # runs still open keep their start (spooled if need be)
            self.send_deferred()
        self._closed = True
        self._stop.set()
        thread = self._replayer
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2 * self.settings.http_timeout + 5)
        try:
            if not self.flush_spool():
                log.warning(
                    "Shipyard server %s is still unreachable: spooled writes stay in %s; "
                    "send them later with: shipyard sync",
                    self.uri,
                    self.spool_dir,
                )
        finally:
            with self._lock:
                if self._journal is not None:
                    self._journal.close()
                    self._journal = None
            atexit.unregister(self.flush_spool)
            self._http.close()

    def schema_version(self) -> str:
        return str(self._get(f"{API}/info")["schema_version"])

    # -- writes: sent now, or spooled when the server cannot be reached -----------------------
    @property
    def spooling(self) -> bool:
        """True while writes go to the offline spool (until a replay has sent them all)."""
        return self._journal is not None

    def send_op(self, op: dict[str, Any]) -> None:
        """Send one spooled entry to the server now (``ReplayTarget``); never spools."""
        self._send(op)

    def _send(self, op: dict[str, Any]) -> httpx.Response:
        method, path = _op_route(op)
        if op.get("op") == "update_run" and self._split_ends and _END_EXTRAS & op["body"].keys():
            return self._send_split_end(op)
        if op.get("op") in ("create_run", "record_run") and op["body"].get("parent_run_id"):
            return self._send_child(op)
        if op.get("op") == "record_run":
            return self._send_record(op)
        # Every spooled operation is idempotent by design (a run id, a batch id, set-status, overwrite).
        try:
            return self._request(method, path, body=op["body"], idempotent=True)
        except InvalidInput as exc:
            if op.get("op") != "update_run" or not _refuses_end_extras(exc, op["body"]):
                raise
        # A server from before one-request run ends: send the batch, artifacts and status apart.
        log.info("Shipyard server %s predates one-request run ends; sending them in parts", self.uri)
        self._split_ends = True
        return self._send_split_end(op)

    def _send_split_end(self, op: dict[str, Any]) -> httpx.Response:
        """An ``update_run`` carrying a batch or artifacts as the requests an older server takes."""
        run_id, body = str(op.get("run_id", "")), dict(op["body"])
        batch, artifacts = body.pop("batch", None), body.pop("artifacts", None)
        body.pop("compact", None)
        if batch:
            self._send({"op": "log_batch", "run_id": run_id, "body": batch})
        if artifacts:
            self._send({"op": "record_artifacts", "run_id": run_id, "body": {"artifacts": artifacts}})
        return self._send({"op": "update_run", "run_id": run_id, "body": body})

    def _send_child(self, op: dict[str, Any]) -> httpx.Response:
        """A child run's create: its parent may be another client's run whose start that client
        holds back (``defer_run_start``) for up to its ``flush_interval``; wait for it that long."""
        deadline = time.monotonic() + 2 * self.settings.flush_interval + 1.0
        while True:
            try:
                if op.get("op") == "record_run":
                    return self._send_record(op)
                method, path = _op_route(op)
                return self._request(method, path, body=op["body"], idempotent=True)
            except RunNotFound:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def _send_record(self, op: dict[str, Any]) -> httpx.Response:
        """A whole ended run in one request; to a server that predates it, as create + end."""
        if not self._no_record:
            try:
                return self._request("POST", f"{API}/runs/record", body=op["body"], idempotent=True)
            except ShipyardError as exc:
                if not _predates_record(exc):
                    raise
            log.info("Shipyard server %s predates one-request runs; sending create and end apart", self.uri)
            self._no_record = True
        body = dict(op["body"])
        end = {k: body.pop(k) for k in ("status", "end_time", "batch", "artifacts") if k in body}
        self._send({"op": "create_run", "body": body})
        return self._send({"op": "update_run", "run_id": body["run_id"], "body": {**end, "compact": False}})

    # -- held-back run creates ----------------------------------------------------------------
    def send_deferred(self, run_ids: Sequence[str] | None = None) -> None:
        """Send the held-back creates of ``run_ids`` (all when None) now, oldest first.

        A create the server refuses is kept and raised by that run's next write or end (the flusher
        that usually sends them must not raise into training); a server that cannot be reached
        spools it like any write.
        """
        if not self._deferred:
            return
        with self._deferred_lock:
            wanted = list(self._deferred) if run_ids is None else [r for r in run_ids if r in self._deferred]
            if not wanted:
                return
            self._tls.busy = True
            sent: list[str] = []
            try:
                for run_id in wanted:
                    spec = self._deferred.pop(run_id, None)
                    if spec is None:
                        continue
                    try:
                        if self._write({"op": "create_run", "body": _create_body(spec)}) is not None:
                            sent.append(run_id)
                    except ShipyardError as exc:
                        self._deferred_errors[run_id] = exc
                        log.warning("Shipyard server %s refused to start run %s: %s", self.uri, run_id, exc)
                if sent:  # their first sign of life: a process killed from now on gets them marked killed
                    with contextlib.suppress(ShipyardError):
                        self._request(
                            "POST", f"{API}/runs/heartbeat", body={"run_ids": sent}, idempotent=True
                        )
            finally:
                self._tls.busy = False

    def _take_deferred(self, run_id: str) -> RunCreate | None:
        if not self._deferred:
            return None
        with self._deferred_lock:  # waits for a send of this create that is under way
            return self._deferred.pop(run_id, None)

    def _raise_refused_start(self, run_id: str) -> None:
        exc = self._deferred_errors.get(run_id)
        if exc is not None:
            raise exc

    def _write(self, op: dict[str, Any]) -> httpx.Response | None:
        """Send a write, or journal it; the response, or None when it was spooled."""
        with self._lock:
            if self._journal is not None:  # keep order: once spooling, everything spools
                self._journal.append(op)
                return None
        try:
            return self._send(op)
        except ServerUnreachable as exc:  # no answer; an error answer is raised to the caller
            self._spool(op, exc)
            return None

    def _spool(self, op: dict[str, Any], reason: StoreUnavailable | None) -> None:
        with self._lock:
            if self._journal is None:
                self._journal = Journal(self.spool_dir, self.uri)
                log.warning(
                    "Shipyard server %s is unreachable (%s); writes are kept in %s and sent when it is "
                    "back (or with: shipyard sync)",
                    self.uri,
                    reason,
                    self._journal.path,
                )
                atexit.register(self.flush_spool)
            self._journal.append(op)
            if (self._replayer is None or not self._replayer.is_alive()) and not self._closed:
                self._replayer = threading.Thread(
                    target=self._replay_loop, name="shipyard-spool-replay", daemon=True
                )
                self._replayer.start()

    def _replay_loop(self) -> None:
        while not self._stop.wait(self.replay_interval):
            try:
                if self.flush_spool():
                    return
            except Exception:  # the replay thread must survive anything; close() retries
                log.exception("Replaying the Shipyard spool failed; will retry")

    def flush_spool(self) -> bool:
        """Try to send every spooled write now; True when nothing is left in the spool.

        Example:
            >>> store.flush_spool()  # doctest: +SKIP
            True
        """
        with self._lock:
            journal = self._journal
        if journal is None:
            return True
        result = replay_journal(journal.path, self)
        if not result.done:
            return False
        with self._lock:
            if self._journal is journal and journal.gone():
                log.info("Sent %d spooled writes to %s", journal.appended, self.uri)
                journal.close()
                self._journal = None
                self._replayer = None
                return True
        return False

    def create_run(self, spec: RunCreate) -> Run:
        """Start a run on the server, or hold the create back (``defer_run_start``) when this client
        has started a run in that experiment before: it is then sent before this client's next
        request, by the flusher within ``flush_interval``, or with the run's end (``record_run``)."""
        exp_id = self._experiment_ids.get(spec.experiment_name)
        if self.settings.defer_run_start and exp_id is not None and not self.spooling:
            with self._deferred_lock:
                self._deferred[spec.run_id] = spec
            return _local_run(spec, exp_id)
        response = self._write({"op": "create_run", "body": _create_body(spec)})
        if response is None:
            return _local_run(spec)
        run = Run.from_dict(response.json())
        self._experiment_ids[run.experiment_name] = run.experiment_id
        return run

    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus,
        end_time: int | None = None,
        final_batch: LogBatch | None = None,
        compact: bool = True,
        artifacts: Sequence[Artifact] = (),
    ) -> None:
        """One request (``PATCH /runs/{id}``) for the status, the last batch and the artifacts, which
        the server writes in one transaction; spooled as one entry when the server is away. A run
        whose create is still held back is sent whole instead (``POST /runs/record``)."""
        self._raise_refused_start(run_id)
        status = RunStatus(status)
        if status.is_terminal and end_time is None:
            end_time = now_ms()  # the moment it ended, not the moment a replay gets through
        spec = self._take_deferred(run_id) if status.is_terminal else None
        if spec is not None:
            self._record(spec, status, end_time or now_ms(), final_batch, artifacts)
            return
        body: dict[str, Any] = {"status": status.value, "end_time": end_time}
        if final_batch:
            if final_batch.batch_id is None:
                final_batch.batch_id = uuid.uuid4().hex  # before the first attempt: retries are no-ops
            body["batch"] = _batch_body(final_batch)
        if artifacts:
            body["artifacts"] = _artifact_rows(artifacts)
        if not compact:
            body["compact"] = False
        self._write({"op": "update_run", "run_id": run_id, "body": body})

    def log_run(
        self,
        spec: RunCreate,
        *,
        status: RunStatus,
        end_time: int,
        batch: LogBatch | None = None,
        artifacts: Sequence[Artifact] = (),
    ) -> None:
        """The whole ended run in one request (``POST /runs/record``, one transaction on the server;
        spooled as one entry when the server is away)."""
        status = RunStatus(status)
        if not status.is_terminal:
            raise InvalidInput(f"log_run records ended runs; status {status.value!r} is not an end status")
        self._record(spec, status, end_time, batch, artifacts)

    def _record(
        self,
        spec: RunCreate,
        status: RunStatus,
        end_time: int,
        batch: LogBatch | None,
        artifacts: Sequence[Artifact],
    ) -> None:
        body: dict[str, Any] = {**_create_body(spec), "status": status.value, "end_time": end_time}
        if batch:
            if batch.batch_id is None:
                batch.batch_id = uuid.uuid4().hex
            body["batch"] = _batch_body(batch)
        if artifacts:
            body["artifacts"] = _artifact_rows(artifacts)
        self._write({"op": "record_run", "run_id": spec.run_id, "body": body})

    def log_batch(self, run_id: str, batch: LogBatch) -> None:
        if not batch:
            return
        self._raise_refused_start(run_id)
        if batch.batch_id is None:
            batch.batch_id = uuid.uuid4().hex  # before the first attempt, so every retry is idempotent
        self._write({"op": "log_batch", "run_id": run_id, "body": _batch_body(batch)})

    def heartbeat(self, run_ids: Sequence[str]) -> None:
        """Tell the server these runs are alive; never spooled (a late heartbeat means nothing)."""
        live = [r for r in run_ids if r not in self._deferred]  # a held-back run is not there yet
        if live:
            self._request(
                "POST", f"{API}/runs/heartbeat", body={"run_ids": live}, idempotent=True, send_deferred=False
            )

    def expire_stale_runs(self) -> list[str]:
        """Have the server mark its stale runs ``killed`` (by its own ``run_heartbeat_timeout``)."""
        return list(self._request("POST", f"{API}/runs/expire-stale").json()["run_ids"])

    def record_artifacts(self, run_id: str, artifacts: Sequence[Artifact]) -> None:
        if not artifacts:
            return
        rows = _artifact_rows(artifacts)
        self._write({"op": "record_artifacts", "run_id": run_id, "body": {"artifacts": rows}})

    # -- experiments --------------------------------------------------------------------------
    def create_experiment(self, name: str, description: str = "") -> Experiment:
        return Experiment(**self._post(f"{API}/experiments", {"name": name, "description": description}))

    def get_experiment(self, experiment_id: int) -> Experiment:
        return Experiment(**self._get(f"{API}/experiments/{int(experiment_id)}"))

    def get_experiment_by_name(self, name: str) -> Experiment:
        return Experiment(**self._get(f"{API}/experiments/by-name", name=name))

    def list_experiments(self) -> list[Experiment]:
        return [Experiment(**e) for e in self._get(f"{API}/experiments")["experiments"]]

    # -- datasets -----------------------------------------------------------------------------
    def create_dataset_version(self, spec: DatasetVersionCreate) -> DatasetVersion:
        body = {**spec.__dict__, "schema": [list(c) for c in spec.schema]}
        return DatasetVersion.from_dict(self._post(f"{API}/datasets/versions", body))

    def get_dataset_version(self, name: str, ref: str = "latest") -> DatasetVersion:
        return DatasetVersion.from_dict(self._get(f"{API}/datasets/resolve", name=name, ref=ref))

    def list_dataset_versions(self, name: str | None = None) -> list[DatasetVersion]:
        params = {"name": name} if name is not None else {}
        data = self._get(f"{API}/datasets/versions", **params)
        return [DatasetVersion.from_dict(v) for v in data["versions"]]

    def record_dataset_use(self, run_id: str, name: str, version: int, role: str) -> None:
        self._request(
            "POST", _run_path(run_id, "/datasets"), body={"name": name, "version": version, "role": role}
        )

    def list_run_datasets(self, run_id: str) -> list[DatasetUse]:
        data = self._get(_run_path(run_id, "/datasets"))
        return [
            DatasetUse(u["run_id"], DatasetVersion.from_dict(u["dataset"]), u["role"]) for u in data["uses"]
        ]

    # -- audit log (read-only over REST: the server appends as it acts) ------------------------
    def list_audit(
        self,
        after_seq: int = 0,
        limit: int = 1000,
        actor: str | None = None,
        action: str | None = None,
        object_type: str | None = None,
        object_id: str | None = None,
    ) -> list[AuditEntry]:
        params = {"after_seq": after_seq, "limit": limit, "actor": actor, "action": action}
        params.update({"object_type": object_type, "object_id": object_id})
        data = self._get(f"{API}/audit", **{k: v for k, v in params.items() if v is not None})
        return [AuditEntry(**e) for e in data["entries"]]

    # -- contracts ----------------------------------------------------------------------------
    def save_contract(self, name: str, yaml: str, digest: str, created_by: str = "") -> ContractVersion:
        body = {"name": name, "yaml": yaml, "digest": digest, "created_by": created_by}
        return ContractVersion(**self._post(f"{API}/contracts", body))

    def get_contract(self, name: str, ref: str = "latest") -> ContractVersion:
        return ContractVersion(**self._get(f"{API}/contracts/resolve", name=name, ref=ref))

    def list_contracts(self, name: str | None = None) -> list[ContractVersion]:
        params = {"name": name} if name is not None else {}
        return [ContractVersion(**c) for c in self._get(f"{API}/contracts", **params)["contracts"]]

    # -- runs ---------------------------------------------------------------------------------
    def get_run(self, run_id: str) -> Run:
        return Run.from_dict(self._get(_run_path(run_id)))

    def get_metric_history(self, run_id: str, key: str) -> MetricHistory:
        data = self._get(_run_path(run_id, "/metrics/history"), key=key)
        return MetricHistory(
            key=data["key"],
            steps=data["steps"],
            timestamps=data["timestamps"],
            values=[float(v) for v in data["values"]],
        )

    def search_runs(
        self,
        experiment_ids: Sequence[int] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        limit: int = 1000,
        page_token: str | None = None,
        columns: Sequence[str] | None = None,
        view: RunView | str = RunView.ACTIVE,
    ) -> RunPage:
        view = RunView.parse(view)
        body: dict[str, Any] = {
            "experiment_ids": None if experiment_ids is None else [int(e) for e in experiment_ids],
            "filter": filter,
            "order_by": [order_by]
            if isinstance(order_by, str)
            else (None if order_by is None else list(order_by)),
            "limit": limit,
            "page_token": page_token,
            "columns": None if columns is None else list(columns),
        }
        if view is not RunView.ACTIVE:  # the default is not sent: a server before views takes the body
            body["view"] = view.value
        data = self._request("POST", f"{API}/runs/search", body=body, idempotent=True).json()
        return RunPage([Run.from_dict(r) for r in data["runs"]], data.get("next_page_token"))

    def delete_runs(self, run_ids: Iterable[str], actor: str = "", reason: str = "") -> int:
        body = {"run_ids": list(run_ids), "actor": actor, "reason": reason}
        return int(self._post(f"{API}/runs/delete", body)["count"])

    def restore_runs(self, run_ids: Iterable[str], actor: str = "", reason: str = "") -> int:
        body = {"run_ids": list(run_ids), "actor": actor, "reason": reason}
        return int(self._post(f"{API}/runs/restore", body)["count"])

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]:
        params = {"prefix": prefix} if prefix else {}
        data = self._get(_run_path(run_id, "/artifacts"), **params)
        return [Artifact(a["path"], a["digest"], a["size"], a["created_at"]) for a in data["artifacts"]]

    # -- maintenance --------------------------------------------------------------------------
    def purge_deleted_runs(self, batch_size: int = 500) -> int:
        return int(self._post(f"{API}/admin/purge", {"batch_size": batch_size})["runs_purged"])

    def referenced_digests(self, digests: Sequence[str]) -> set[str]:
        return set(self._post(f"{API}/admin/referenced-digests", {"digests": list(digests)})["digests"])

    def iter_run_ids(self, batch_size: int = 1000) -> Iterator[list[str]]:
        """Every run id in pages, streamed from the server one JSON line per page."""
        for page in self._stream_lines(f"{API}/admin/run-ids", batch_size=batch_size):
            yield list(page["run_ids"])

    def _stream_lines(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """The JSON objects of a streamed NDJSON answer, one per line, read as they arrive."""
        try:
            with self._http.stream("GET", path, params=params) as response:
                if response.is_error:
                    response.read()
                    raise error_from_response(response, self.uri)
                for line in response.iter_lines():
                    if line.strip():
                        yield dict(json.loads(line))
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    # -- blobs --------------------------------------------------------------------------------
    def blob_store(self) -> RestBlobStore:
        """The server's blob store (``Client`` stores artifacts through it)."""
        with self._lock:
            if self._blobs is None:
                self._blobs = RestBlobStore(self)
            return self._blobs

    def blob_exists(self, digest: str) -> bool:
        try:
            response = self._http.head(f"{API}/blobs/{check_digest(digest)}")
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code == 404:
            return False
        if response.is_error:
            raise error_from_response(response, self.uri)
        return True

    def upload_blob(self, path: Path, digest: str) -> None:
        """Upload a local file as blob ``digest`` unless the server has it (``ReplayTarget``)."""
        if self.blob_exists(digest):
            return
        with open(path, "rb") as fh:
            try:
                response = self._http.put(
                    f"{API}/blobs/{digest}", content=fh, headers={"Content-Type": "application/octet-stream"}
                )
            except httpx.TransportError as exc:
                raise self._unreachable(exc) from exc
        if response.is_error:
            raise error_from_response(response, self.uri)

    def put_blob_file(self, path: Path, digest: str, size: int, *, move: bool) -> None:
        """Upload a file already hashed to ``digest``, or keep it in the spool when offline."""
        reason: StoreUnavailable | None = None
        if not self.spooling:
            try:
                self.upload_blob(path, digest)
                return
            except ServerUnreachable as exc:  # an error answer (say storage_full) is raised
                reason = exc
        stash_blob(self.spool_dir, path, digest, move=move)
        self._spool({"op": "put_blob", "digest": digest, "size": size}, reason)

    def open_blob(self, digest: str) -> IO[bytes]:
        """A streamed read of blob ``digest`` (unverified: ``RestBlobStore.iter_chunks`` verifies)."""
        request = self._http.build_request("GET", f"{API}/blobs/{check_digest(digest)}")
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.is_error:
            response.read()
            response.close()
            raise error_from_response(response, self.uri)
        return io.BufferedReader(_ResponseReader(response, self), CHUNK)


class _ResponseReader(io.RawIOBase):
    """A streamed HTTP body as a binary file (closing it closes the response)."""

    def __init__(self, response: httpx.Response, store: RestStore) -> None:
        super().__init__()
        self._response = response
        self._store = store
        self._chunks = response.iter_bytes(CHUNK)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: memoryview | bytearray) -> int:  # type: ignore[override]
        if not self._buffer:
            try:
                self._buffer = next(self._chunks, b"")
            except httpx.TransportError as exc:
                raise self._store._unreachable(exc) from exc
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size

    def close(self) -> None:
        self._response.close()
        super().close()


class RestBlobStore(BlobStoreBase):
    """Blobs through a Shipyard server: uploads skip content it has; reads are verified here too.

    Example:
        >>> blobs = RestStore("http://127.0.0.1:5000").blob_store()  # doctest: +SKIP
        >>> digest, size = blobs.put_bytes(b"hello")  # doctest: +SKIP
    """

    def __init__(self, store: RestStore) -> None:
        self._store = store
        self.url = f"{store.uri}{API}/blobs"

    def exists(self, digest: str) -> bool:
        return self._store.blob_exists(check_digest(digest))

    def put_file(self, path: str | os.PathLike[str]) -> tuple[str, int]:
        """Hash locally, then upload unless the server already has the content (or spool it offline)."""
        digest, size = hash_file(path)
        self._store.put_blob_file(Path(path), digest, size, move=False)
        return digest, size

    def _do_put_stream(self, stream: IO[bytes]) -> tuple[str, int]:
        tmp_dir = self._store.spool_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / f"{uuid.uuid4().hex}.part"
        hasher = blake3.blake3()
        size = 0
        try:
            with open(tmp, "wb") as out:
                while chunk := stream.read(CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = hasher.hexdigest()
            self._store.put_blob_file(tmp, digest, size, move=True)
        finally:
            tmp.unlink(missing_ok=True)
        return digest, size

    def _do_open(self, digest: str) -> IO[bytes]:
        return self._store.open_blob(digest)

    def delete(self, digest: str) -> None:
        """Delete the blob on the server; it refuses (``InvalidState``) while anything refers to it."""
        self._store._request("DELETE", f"{API}/blobs/{check_digest(digest)}")

    def iter_digests(self, batch_size: int = 1000) -> Iterator[tuple[str, float]]:
        """Every blob on the server with its modified time, streamed a page at a time.

        Times are moved onto this machine's clock (each page carries the server's ``now``), so
        garbage collection judges a blob's age right even when the two clocks disagree.
        """
        for page in self._store._stream_lines(f"{API}/blobs", batch_size=batch_size):
            skew = time.time() - float(page["now"])
            for digest, mtime in page["blobs"]:
                yield str(digest), float(mtime) + skew

    def clean_tmp(self, older_than_s: float = 3600.0) -> int:
        """Remove temp files that crashed uploads left on the server (older than ``older_than_s``)."""
        answer = self._store._request("DELETE", f"{API}/blobs/tmp", params={"older_than_s": older_than_s})
        return int(answer.json()["count"])
