"""The Ray executor: every step task runs as a Ray task, on a cluster given by address or an existing
``ray.init`` connection.

Ray is imported here only, when an executor starts (``import shipyard`` stays cheap). The remote
function is :func:`~shipyard.pipelines.runner.run_step_task`: a task carries its inputs as blob digests
and its settings, so the worker opens the tracking and artifact stores itself and data never passes
through the driver. Retries, backoff and per-attempt timeouts are the runner's (as with the local
executor); a timed step gets a worker process of its own (``max_calls=1``, so an attempt that overran
ends with it) and the driver ends a task that never reports within
:func:`~shipyard.pipelines.executor.report_deadline`.
"""

from __future__ import annotations

import concurrent.futures as cf
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

from shipyard.config import Settings
from shipyard.errors import ConfigError, InvalidInput, MissingExtra
from shipyard.pipelines.executor import ExecutorContext, report_deadline
from shipyard.pipelines.runner import StepResult, StepTask, run_step_task

__all__ = ["RayExecutor", "import_ray", "ray_options", "shareable_settings"]

_RAY_NAMES = {"cpus": ("num_cpus", "CPU"), "gpus": ("num_gpus", "GPU"), "memory": ("memory", "memory")}
_PATH_SETTINGS = ("home", "artifact_uri", "roles_file", "package_allowlist_file", "audit_key_file")


def import_ray() -> ModuleType:
    """The ``ray`` module, or :class:`~shipyard.errors.MissingExtra` with the install hint.

    Example:
        >>> ray = import_ray()  # doctest: +SKIP
    """
    try:
        import ray
    except ImportError:
        raise MissingExtra(
            "The Ray executor needs ray, which is not installed: pip install 'shipyard[ray]'"
        ) from None
    return ray


def ray_options(resources: Mapping[str, float]) -> dict[str, Any]:
    """Ray task options for a step's ``resources`` hints.

    ``cpus`` → ``num_cpus`` (default 1, as in Ray), ``gpus`` → ``num_gpus``, ``memory`` (bytes) →
    ``memory``; any other key is a custom Ray resource (``ray start --resources='{"tpu": 1}'``).

    Example:
        >>> ray_options({"cpus": 2, "memory": 4e9})
        {'num_cpus': 2.0, 'memory': 4000000000}
    """
    bad = {k: v for k, v in resources.items() if not isinstance(v, (int, float)) or v < 0}
    if bad:
        raise InvalidInput(
            f"Step resources must be numbers >= 0, got {bad}; e.g. resources={{'cpus': 2, 'memory': 4e9}}"
        )
    options: dict[str, Any] = {"num_cpus": float(resources.get("cpus", 1))}
    if "gpus" in resources:
        options["num_gpus"] = float(resources["gpus"])
    if "memory" in resources:
        options["memory"] = int(resources["memory"])
    custom = {k: float(v) for k, v in resources.items() if k not in _RAY_NAMES}
    if custom:
        options["resources"] = custom
    return options


def _demand(options: Mapping[str, Any]) -> dict[str, float]:
    """The node resources (Ray's names) a task with these options needs."""
    need = {ray_name: float(options[opt]) for opt, ray_name in _RAY_NAMES.values() if opt in options}
    need.update(options.get("resources", {}))
    return {k: v for k, v in need.items() if v > 0}


def _is_local_path(value: str) -> bool:
    return bool(value) and ("://" not in value or value.startswith("file://"))


def _absolute(value: str, base: Path) -> str:
    path = value.removeprefix("file://")
    return value if Path(path).is_absolute() else str(base / path)


def shareable_settings(settings: Settings, base: Path) -> Settings:
    """Settings a worker in another folder can use: relative local paths made absolute against ``base``.

    Ray workers run in their own folders (a ``working_dir`` runtime env unpacks elsewhere), so the
    default ``sqlite:///.shipyard/shipyard.db`` would open a different, empty store there.

    Example:
        >>> from shipyard.config import load_settings
        >>> shareable_settings(load_settings(tracking_uri="sqlite:///a.db"), Path("/p")).tracking_uri
        'sqlite:////p/a.db'
    """
    uri = settings.tracking_uri
    if uri.startswith("sqlite:"):
        path = uri.removeprefix("sqlite:").removeprefix("///")
        if path in ("", "//", ":memory:") or path.startswith(":memory:"):
            raise InvalidInput(
                f"Tracking URI {uri!r} is an in-memory SQLite database, which Ray workers cannot "
                "reach; use a file (sqlite:////abs/path.db), PostgreSQL or a Shipyard server"
            )
        uri = f"sqlite:///{_absolute(path, base)}"
    changes = {
        name: _absolute(getattr(settings, name), base)
        for name in _PATH_SETTINGS
        if _is_local_path(getattr(settings, name))
    }
    return settings.replace(tracking_uri=uri, **changes)


def _machine_local(settings: Settings) -> list[str]:
    """The stores in ``settings`` that live on this machine's disk (unreachable from other machines)."""
    local = []
    if settings.tracking_uri.startswith("sqlite:"):
        local.append(f"tracking store {settings.tracking_uri}")
    if _is_local_path(settings.artifact_uri):
        local.append(f"artifact folder {settings.artifact_uri}")
    return local


class RayExecutor:
    """Runs each step as a Ray task, with the step's ``resources`` as its Ray resource request.

    Args:
        address: a Ray cluster's address (``"10.0.0.5:6379"``, ``"auto"``, ``"ray://…"``); None uses
            an existing ``ray.init`` connection, else ``$RAY_ADDRESS`` or a cluster started with
            ``ray start`` on this machine, else a new local Ray instance. When this executor connects,
            it disconnects in :meth:`close`; an existing connection is left as it is.
        runtime_env: passed to ``ray.init`` when this executor connects (e.g. ``{"working_dir": "."}``
            ships the project's code to the workers).
        shared_filesystem: the SQLite store and artifact folder are on a file system mounted at the
            same path on every node (otherwise a cluster spanning machines needs PostgreSQL or a
            Shipyard server and an object store, and is refused).
        infeasible_timeout: seconds to wait for a node that can hold a step's resource request (an
            autoscaler may add one) before the step fails.

    Example:
        >>> result = train.run(executor=RayExecutor("127.0.0.1:6379"))  # doctest: +SKIP
        >>> result = train.run(executor="ray", ray_address="127.0.0.1:6379")  # doctest: +SKIP
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        runtime_env: Mapping[str, Any] | None = None,
        shared_filesystem: bool = False,
        infeasible_timeout: float = 60.0,
    ) -> None:
        self.address = address
        self.runtime_env = dict(runtime_env) if runtime_env else None
        self.shared_filesystem = shared_filesystem
        self.infeasible_timeout = infeasible_timeout
        self._ray: ModuleType | None = None
        self._remote: Any = None
        self._remote_once: Any = None
        self._settings: Settings | None = None
        self._connected_here = False
        self._refs: set[Any] = set()
        self._lock = threading.Lock()

    def start(self, context: ExecutorContext) -> None:
        settings = shareable_settings(context.client.settings, Path.cwd())
        ray = import_ray()
        if not ray.is_initialized():
            _check_listening(self.address)
            try:
                ray.init(address=self.address, runtime_env=self.runtime_env)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(
                    f"Cannot connect to a Ray cluster at {self.address or 'the default address'!r}: "
                    f"{exc}; start one with `ray start --head --port=6379` and pass its address "
                    "(ray_address='host:6379'), or connect with ray.init() yourself"
                ) from None
            self._connected_here = True
        self._ray, self._settings = ray, settings
        try:
            self._check_stores_reachable(ray, settings)
        except BaseException:
            self.close()
            raise
        self._remote = ray.remote(run_step_task)
        self._remote_once = ray.remote(max_calls=1)(run_step_task)

    def _check_stores_reachable(self, ray: ModuleType, settings: Settings) -> None:
        local = _machine_local(settings)
        if not local or self.shared_filesystem:
            return
        here = ray.util.get_node_ip_address()
        elsewhere = sorted({n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]} - {here})
        if elsewhere:
            raise ConfigError(
                f"The Ray cluster has nodes on other machines ({', '.join(elsewhere)}), but the "
                f"{' and the '.join(local)} are on this machine ({here}), where those workers cannot "
                "reach them: set SHIPYARD_TRACKING_URI to PostgreSQL or a Shipyard server and "
                "SHIPYARD_ARTIFACT_URI to an object store (s3://…, gs://…), or pass "
                "RayExecutor(shared_filesystem=True) if those paths are on a file system every node mounts"
            )

    def submit(self, task: StepTask, *, alone: bool) -> cf.Future[StepResult]:
        if self._ray is None or self._settings is None:
            raise RuntimeError("RayExecutor.start() was not called")
        future: cf.Future[StepResult] = cf.Future()
        if not task.step.importable:
            future.set_exception(
                InvalidInput(
                    f"Step '{task.node}' ({task.step!r}) cannot run on Ray: workers import steps by "
                    "module and name, and it is defined in __main__ or inside a function; move it "
                    "into a module the workers can import (installed on every node, or shipped with "
                    "RayExecutor(runtime_env={'working_dir': '.'})), or use executor='local'"
                )
            )
            return future
        task = replace(task, settings=self._settings)
        threading.Thread(
            target=self._run, args=(task, future), name=f"shipyard-ray-{task.node}", daemon=True
        ).start()
        return future

    def _run(self, task: StepTask, future: cf.Future[StepResult]) -> None:
        """Wait for a node that fits, submit, wait for the report (bounded for timed steps)."""
        ray = self._ray
        assert ray is not None
        ref = None
        try:
            options = ray_options(task.step.options.resources)
            self._wait_until_feasible(ray, task.node, _demand(options))
            # a timed step's worker exits after it (max_calls=1), ending an attempt that overran
            remote = self._remote if task.step.options.timeout is None else self._remote_once
            ref = remote.options(
                **options, max_retries=0, name=f"shipyard:{task.pipeline}:{task.node}"
            ).remote(task)
            with self._lock:
                self._refs.add(ref)
            deadline = report_deadline(task.step.options)
            ready, _ = ray.wait([ref], timeout=deadline)
            if not ready:
                ray.cancel(ref, force=True)
                raise TimeoutError(f"Step '{task.node}' Ray task did not report within {deadline:.0f} s")
            future.set_result(ray.get(ref))
        except Exception as exc:
            if isinstance(exc, ray.exceptions.RayError):  # the worker died, or could not load the task
                exc = RuntimeError(
                    f"Ray task of step '{task.node}' failed outside the step: {_first_lines(exc)}; a "
                    "ModuleNotFoundError means the step's module is not importable on the workers "
                    "(install the project on every node or pass RayExecutor(runtime_env=...))"
                )
            future.set_exception(exc)
        finally:
            with self._lock:
                self._refs.discard(ref)

    def _wait_until_feasible(self, ray: ModuleType, node: str, need: dict[str, float]) -> None:
        """Return once some alive node has ``need`` in total; fail after ``infeasible_timeout``.

        Ray keeps an infeasible task pending forever; a clear error is more useful.
        """
        deadline = time.monotonic() + self.infeasible_timeout
        while True:
            nodes = [n["Resources"] for n in ray.nodes() if n["Alive"]]
            if any(all(res.get(k, 0.0) >= v for k, v in need.items()) for res in nodes):
                return
            if time.monotonic() >= deadline:
                largest = {k: max((res.get(k, 0.0) for res in nodes), default=0.0) for k in need}
                raise InvalidInput(
                    f"Step '{node}' asks Ray for {_fmt(need)}, but no node of the cluster has that much "
                    f"(largest: {_fmt(largest)}; waited {self.infeasible_timeout:g} s for one to join); "
                    "lower @sy.step(resources=...) or add a node that has it"
                )
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))

    def close(self) -> None:
        ray = self._ray
        if ray is not None:
            with self._lock:
                refs, self._refs = list(self._refs), set()
            for ref in refs:  # only when the driver stops early (an exception, Ctrl-C)
                ray.cancel(ref, force=True)
            if self._connected_here:
                ray.shutdown()
        self._ray, self._remote, self._remote_once, self._connected_here = None, None, None, False


def _check_listening(address: str | None) -> None:
    """Fail fast when nothing listens at a ``host:port`` address (``ray.init`` would retry for minutes)."""
    if address is None or "://" in address or ":" not in address:
        return  # None, "auto", "local" and ray:// addresses are Ray's to resolve
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5.0).close()
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"Cannot connect to a Ray cluster at {address!r}: {exc}; start one with "
            "`ray start --head --port=6379` and pass its address (ray_address='host:6379'), or "
            "connect with ray.init() yourself"
        ) from None


def _fmt(resources: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in sorted(resources.items())) or "nothing"


def _first_lines(exc: BaseException, n: int = 3) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return " / ".join(lines[-n:]) if lines else type(exc).__name__
