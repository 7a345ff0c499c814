"""The deployment engine: routes each request to a variant, predicts (micro-batched), mirrors it to the
shadows, logs it, and keeps every variant's model current.

State that requests read is swapped whole: :attr:`Engine.plan` (the spec, its variants and the router)
and each variant's ``slot.current`` are replaced by single assignments on the event loop, so a request
sees one consistent plan and one model version from start to end.

Reloads (the poller every ``reload.poll_interval_s`` seconds, and ``POST /admin/reload``): re-read the
stored deployment (when serving one), re-resolve every variant's model reference, load what changed in
a worker thread, then swap. A load that fails leaves the variant on its current version (logged and
reported); nothing waits for a load. This is polling, not notification: an alias move is served within
one poll interval (default 5 s), or at once after ``POST /admin/reload``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from anyio import to_thread

from shipyard.entities import now_ms
from shipyard.errors import NotReady, ShipyardError
from shipyard.serving.batching import Arrivals, Checked, MicroBatcher, PredictorOutput, frame_of
from shipyard.serving.deployment import DeploymentSpec, VariantSpec
from shipyard.serving.logfeed import LogFeed
from shipyard.serving.metrics import ServingMetrics
from shipyard.serving.payload import PredictRequest
from shipyard.serving.router import Router
from shipyard.serving.service import ModelService
from shipyard.serving.slots import Loaded, ModelSlot, ModelSource, load_version

__all__ = ["DeploymentReader", "Engine", "NotReady", "PredictCall", "Prediction", "Variant"]

log = logging.getLogger("shipyard.serving")

DeploymentReader = Callable[[], tuple[int, DeploymentSpec]]
"""Blocking: the latest stored version of the served deployment, as (version, spec)."""

MAX_SHADOW_TASKS = 1_000  # shadow copies in flight; past this a copy is skipped (counted as a shadow error)
_RETRY_S = 5.0


def _share(variant: VariantSpec, deployment: DeploymentSpec) -> float:
    """The part of all requests a variant sees: its traffic share, or all of them for a shadow."""
    return 1.0 if variant.mode == "shadow" else deployment.shares().get(variant.name, 0.0)


@dataclass(eq=False)
class Variant:
    """A variant at run time: its spec, its model slot and its batcher (None: batching off)."""

    spec: VariantSpec
    slot: ModelSlot
    batcher: MicroBatcher | None


@dataclass(frozen=True, eq=False)
class Plan:
    """Everything routing reads, replaced as one object."""

    spec: DeploymentSpec
    variants: dict[str, Variant]
    router: Router
    record_version: int | None = None


@dataclass
class PredictCall:
    """A parsed request on its way: its rows, whether probabilities are wanted, the sticky key."""

    request: PredictRequest
    proba: bool
    request_id: str
    key: str | None = None
    key_column: str | None = None  # the sticky-key column, removed when the model does not take it
    drop_extra: bool = False  # drop every column the model does not take (MLflow's /invocations ignores them)

    @property
    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame (built on first use for a JSON request of plain values)."""
        return self.request.frame

    @property
    def rows(self) -> int:
        return self.request.rows

    @property
    def inputs(self) -> Any:
        """The rows as sent (records list, columns dict), for the prediction log; None: use ``frame``."""
        return self.request.inputs

    def ignored(self) -> tuple[str, ...] | bool:
        """Columns a model that does not take them may be sent anyway (True: any such column)."""
        if self.drop_extra:
            return True
        return (self.key_column,) if self.key_column is not None else ()

    def frame_for(self, service: ModelService) -> pd.DataFrame:
        """The rows this model sees: without the sticky-key column unless the model takes it, and without
        any column it does not take when ``drop_extra``."""
        signature = service.model.signature
        if signature is None:
            return self.frame
        if self.drop_extra:
            taken = set(signature.names)
            extra = [name for name in self.frame.columns if name not in taken]
            return self.frame.drop(columns=extra) if extra else self.frame
        if self.key_column is None or self.key_column in signature.names:
            return self.frame
        return self.frame.drop(columns=[self.key_column])

    def checked_for(self, service: ModelService) -> Checked:
        """The rows checked against this model's signature, the way the batcher takes them: plain typed
        columns when every value fits as it is, else the signature-checked frame (or its refusal)."""
        return service.check_request(
            self.request.columns,
            self.rows,
            lambda: self.frame_for(service),
            proba=self.proba,
            ignore=self.ignored(),
        )


@dataclass
class Prediction:
    """What answered: the variant, the model version and the JSON fields of the outputs."""

    variant: str
    loaded: Loaded
    answer: dict[str, Any]
    output: PredictorOutput = field(repr=False)


class Engine:
    """Runs one deployment (see the module docstring).

    Example:
        >>> engine = Engine(spec, RegistrySource(client), metrics=ServingMetrics())  # doctest: +SKIP
        >>> await engine.start()  # doctest: +SKIP
        >>> prediction = await engine.predict(call)  # doctest: +SKIP
    """

    def __init__(
        self,
        spec: DeploymentSpec,
        source: ModelSource,
        *,
        metrics: ServingMetrics,
        feed: LogFeed | None = None,
        read_deployment: DeploymentReader | None = None,
        record_version: int | None = None,
        adjust: Callable[[DeploymentSpec], DeploymentSpec] | None = None,
        poll: bool = True,
    ) -> None:
        self.source = source
        self.metrics = metrics
        self.feed = feed
        self.read_deployment = read_deployment
        self.adjust = adjust or (lambda s: s)
        self.poll = poll
        self.arrivals = Arrivals()
        self.last_reload: dict[str, Any] | None = None  # what the last reload changed and what failed
        spec = self.adjust(spec)
        variants = {v.name: self._new_variant(v, spec) for v in spec.variants}
        self.plan = Plan(spec, variants, Router(spec.shares()), record_version)
        self._reload_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._shadows: set[asyncio.Task[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------------------------
    def preload(self) -> None:
        """Load every variant now (blocking; before the server starts, so a bad model fails fast)."""
        for variant in self.plan.variants.values():
            fresh = load_version(self.source, variant.slot.model, variant.slot.current)
            if fresh is not None:
                self._swap(variant, fresh)

    def primary(self) -> Loaded | None:
        """What the first live variant serves now (the model ``/info`` describes), if loaded."""
        plan = self.plan
        return plan.variants[plan.spec.live[0].name].slot.current

    def ready(self) -> bool:
        """Whether every live variant has a model loaded."""
        plan = self.plan
        return all(plan.variants[v.name].slot.current is not None for v in plan.spec.live)

    async def start(self, *, load: bool = True) -> None:
        """Start on the running loop: load every variant (unless preloaded), then poll in the background.

        The first load runs before the server takes traffic (each ``--workers`` process accepts
        connections only once its models are loaded). If it fails — a reference that does not resolve
        yet, a store that is down — the server starts anyway with ``GET /ready`` answering 503 and keeps
        retrying in the background; ``load=False`` starts at once and loads in the background.
        """
        if self.feed is not None:
            self.feed.start()
        if load and not self.ready():
            try:
                await self.reload()
            except Exception:  # the retry loop below logs and tries again
                log.exception("Loading deployment %s failed", self.plan.spec.name)
        if not self.ready():
            self._spawn(self._load_until_ready(), "shipyard-initial-load")
        if self.poll:
            self._spawn(self._poll(), "shipyard-reload-poller")

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self, timeout: float = 10.0) -> None:
        """Graceful shutdown: stop polling, let shadow copies finish, drain batchers, flush the log."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._shadows:
            await asyncio.wait(list(self._shadows), timeout=timeout)
        for variant in self.plan.variants.values():
            if variant.batcher is not None:
                await variant.batcher.close()
        if self.feed is not None:
            await self.feed.close()

    async def _load_until_ready(self) -> None:
        while not self.ready():
            try:
                errors: Any = (await self.reload()).get("errors")
            except Exception as exc:  # the store is down, say: try again later
                errors = f"{type(exc).__name__}: {exc}"
            if self.ready():
                return
            log.warning(
                "Deployment %s not ready: %s; retrying in %.0f s", self.plan.spec.name, errors, _RETRY_S
            )
            await asyncio.sleep(_RETRY_S)

    async def _poll(self) -> None:
        while True:
            interval = self.plan.spec.reload.poll_interval_s
            await asyncio.sleep(interval if interval > 0 else 3600.0)
            if interval <= 0:
                continue
            try:
                await self.reload()
            except Exception:  # a failing store must not stop the poller
                log.exception("Reloading deployment %s failed", self.plan.spec.name)

    # -- reload ------------------------------------------------------------------------------------------
    async def reload(self) -> dict[str, Any]:
        """Re-read the deployment and re-resolve every model now; swap what changed. Returns what changed.

        Example:
            >>> await engine.reload()  # doctest: +SKIP
            {'deployment_version': None, 'changed': {'main': {'from': '7', 'to': '8'}}, 'errors': {}}
        """
        async with self._reload_lock:
            result = await self._reload()
            self.last_reload = {"at": now_ms(), **result}
            return result

    async def _reload(self) -> dict[str, Any]:
        plan = self.plan
        result: dict[str, Any] = {"deployment_version": plan.record_version, "changed": {}, "errors": {}}
        spec, version = plan.spec, plan.record_version
        if self.read_deployment is not None:
            version, stored = await to_thread.run_sync(self.read_deployment)
            if version != plan.record_version:
                spec = self.adjust(stored)
                result["deployment_version"] = version
                result["deployment"] = {"from": plan.record_version, "to": version}
        variants = {v.name: self._carry(v, spec, plan) for v in spec.variants}
        fresh = await self._load_changed(variants, result["errors"])
        if spec is not plan.spec and any(
            variants[v.name].slot.current is None and v.name not in fresh for v in spec.live
        ):
            result["errors"]["deployment"] = "a live variant of the new version could not be loaded"
            return result  # keep the old plan: the new one cannot answer yet
        for name, loaded in fresh.items():
            old = variants[name].slot.current
            result["changed"][name] = {
                "from": old.key.ref if old else None,
                "to": loaded.key.ref,
                "version": loaded.key.version,
            }
            self._swap(variants[name], loaded)
        self.plan = Plan(spec, variants, Router(spec.shares()), version)
        await self._retire(plan, variants)
        return result

    async def _load_changed(self, variants: dict[str, Variant], errors: dict[str, str]) -> dict[str, Loaded]:
        """Each variant's new version when its reference moved, loaded in a worker thread (errors noted)."""
        fresh: dict[str, Loaded] = {}
        for name, variant in variants.items():
            try:
                loaded = await to_thread.run_sync(
                    load_version, self.source, variant.slot.model, variant.slot.current
                )
            except Exception as exc:  # keep serving what is loaded; report and retry next poll
                log.exception("Could not load %s for variant %s", variant.slot.model, name)
                errors[name] = f"{type(exc).__name__}: {exc}"
                continue
            if loaded is not None:
                fresh[name] = loaded
        return fresh

    def _carry(self, spec: VariantSpec, deployment: DeploymentSpec, plan: Plan) -> Variant:
        """The variant's run-time object: the old one (slot and batcher kept) when its model is the same."""
        old = plan.variants.get(spec.name)
        if old is None or old.spec.model != spec.model:
            return self._new_variant(spec, deployment)
        if deployment.batching != plan.spec.batching:  # same model, new batching: keep the loaded model
            return Variant(spec, old.slot, self._new_variant(spec, deployment).batcher)
        if old.batcher is not None:
            old.batcher.share = _share(spec, deployment)
        return old if old.spec == spec else Variant(spec, old.slot, old.batcher)

    def _new_variant(self, spec: VariantSpec, deployment: DeploymentSpec) -> Variant:
        batching = deployment.batching
        batcher = None
        if batching.enabled:
            batcher = MicroBatcher(
                max_batch_size=batching.max_batch_size,
                max_wait_ms=batching.max_wait_ms,
                arrivals=self.arrivals,
                observe=self.metrics.batch_observer(spec.name),
                share=_share(spec, deployment),
            )
        return Variant(spec, ModelSlot(spec.model), batcher)

    def _swap(self, variant: Variant, loaded: Loaded) -> None:
        variant.slot.current = loaded  # the atomic swap: requests holding the old one finish with it
        self.metrics.served(variant.spec.name, loaded.key.ref, loaded.key.version)
        log.info(
            "Variant %s now serves %s (version %s)", variant.spec.name, loaded.key.ref, loaded.key.version
        )

    async def _retire(self, old: Plan, current: dict[str, Variant]) -> None:
        kept = {id(v.batcher) for v in current.values()}
        for name, variant in old.variants.items():
            if name not in current:
                self.metrics.forget(name)
            if variant.batcher is not None and id(variant.batcher) not in kept:
                self._spawn(variant.batcher.close(), "shipyard-batcher-close")

    # -- predictions -------------------------------------------------------------------------------------
    def choose(self, key: str | None) -> tuple[Plan, Variant]:
        """The plan in force and the live variant for this request."""
        plan = self.plan
        return plan, plan.variants[plan.router.choose(key)]

    async def predict(self, call: PredictCall) -> Prediction:
        """Answer ``call`` from its variant; mirror it to the shadows and log it (both asynchronous)."""
        plan, variant = self.choose(call.key)
        started = time.perf_counter()
        loaded = variant.slot.current
        status = 500
        output: PredictorOutput | None = None
        try:
            if loaded is None:
                raise NotReady(
                    f"Variant {variant.spec.name} ({variant.spec.model}) is still loading; GET /ready "
                    "answers 200 once every variant can take traffic"
                )
            output = await self._run(variant, loaded.service, call)
            status = 200
        except ShipyardError as exc:
            status = exc.http_status
            raise
        finally:
            seconds = time.perf_counter() - started
            self.metrics.request(variant.spec.name, status, seconds)
            if self.feed is not None and loaded is not None:
                await self.feed.put(
                    self._log_row(call, variant, loaded, output, status, seconds, shadow=False)
                )
        assert loaded is not None and output is not None
        if plan.spec.shadows:
            self._mirror(plan, call)
        return Prediction(variant.spec.name, loaded, loaded.service.answer(output), output)

    async def _run(self, variant: Variant, service: ModelService, call: PredictCall) -> PredictorOutput:
        checked = call.checked_for(service)  # before batching: a bad request fails alone
        if variant.batcher is None:
            observe = self.metrics.batch_observer(variant.spec.name)

            def direct() -> PredictorOutput:  # one model call for this request alone (batching off)
                started = time.perf_counter()
                try:
                    return service.predict_checked(frame_of(service, checked), proba=call.proba)
                finally:
                    observe(1, call.rows, time.perf_counter() - started)

            return await to_thread.run_sync(direct)
        return await variant.batcher.submit(service, checked, proba=call.proba)

    def _log_row(
        self,
        call: PredictCall,
        variant: Variant,
        loaded: Loaded,
        output: PredictorOutput | None,
        status: int,
        seconds: float,
        *,
        shadow: bool,
    ) -> dict[str, Any]:
        outputs: Any = None
        if output is not None:
            outputs = {"predictions": output.predictions}
            if output.probabilities is not None:
                outputs["probabilities"] = output.probabilities
        return {
            "request_id": call.request_id,
            "ts": now_ms(),
            "deployment": self.plan.spec.name,
            "variant": variant.spec.name,
            "model": loaded.key.ref,
            "model_version": loaded.key.version,
            "shadow": shadow,
            "latency_ms": round(seconds * 1000.0, 3),
            "n_rows": call.rows,
            "inputs": call.inputs if call.inputs is not None else call.frame,
            "outputs": outputs,
            "status": status,
        }

    def _mirror(self, plan: Plan, call: PredictCall) -> None:
        for spec in plan.spec.shadows:
            variant = plan.variants[spec.name]
            if len(self._shadows) >= MAX_SHADOW_TASKS:
                self.metrics.shadow_error(spec.name)
                continue
            task = asyncio.get_running_loop().create_task(self._shadow(variant, call))
            self._shadows.add(task)
            task.add_done_callback(self._shadows.discard)

    async def _shadow(self, variant: Variant, call: PredictCall) -> None:
        """A shadow copy: predicted and logged with shadow=True; failures only counted and logged."""
        loaded = variant.slot.current
        started = time.perf_counter()
        output: PredictorOutput | None = None
        status = 200
        try:
            if loaded is None:
                raise NotReady(f"shadow variant {variant.spec.name} is not loaded")
            output = await self._run(variant, loaded.service, call)
        except Exception as exc:
            status = exc.http_status if isinstance(exc, ShipyardError) else 500
            self.metrics.shadow_error(variant.spec.name)
            log.warning("Shadow variant %s failed on request %s: %s", variant.spec.name, call.request_id, exc)
        if self.feed is not None and loaded is not None:
            seconds = time.perf_counter() - started
            await self.feed.put(self._log_row(call, variant, loaded, output, status, seconds, shadow=True))
