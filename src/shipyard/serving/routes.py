"""The model server's endpoints, over an :class:`~shipyard.serving.engine.Engine`.

``/predict`` and ``/explain`` take the same bodies (JSON records or columns, or an Arrow IPC stream);
the sticky key comes from the ``x-shipyard-key`` header, else the body field the deployment names
(top level, or a column of the first row; a column the model does not take is removed before the check).

``/invocations`` is MLflow's scoring protocol (``shipyard.serving.mlflow_scoring``) on the same path as
``/predict`` — routing, signature check, batching, shadows, prediction log, metrics — differing only in
how the body is read and how the answer and refusals are shaped (``{"predictions": [...]}``,
``{"error_code", "message"}``); ``/ping`` and ``/version`` are its readiness and version probes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from shipyard.entities import now_ms
from shipyard.errors import InvalidInput, InvalidState, PayloadTooLarge, ShipyardError
from shipyard.quoting import quoted, quoted_list
from shipyard.serving.engine import Engine, NotReady, PredictCall, Prediction
from shipyard.serving.explain import MAX_EXPLAIN_ROWS, explain_rows
from shipyard.serving.http import JSONResponse, loads, request_id
from shipyard.serving.lane import Endpoint
from shipyard.serving.metrics import CONTENT_TYPE, UNROUTED
from shipyard.serving.mlflow_scoring import CSV, mlflow_error, parse_invocation
from shipyard.serving.openapi import (
    ADMIN_RESPONSES,
    FEEDBACK_OPENAPI,
    FEEDBACK_RESPONSES,
    INVOCATIONS_RESPONSES,
    METRICS_RESPONSES,
    PING_RESPONSES,
    STATUS_RESPONSES,
    VERSION_RESPONSES,
    explain_responses,
    predict_responses,
)
from shipyard.serving.payload import (
    ARROW_STREAM,
    PredictRequest,
    arrow_answer,
    parse_arrow_request,
    parse_predict_request,
    parse_proba_flag,
    wants_arrow,
)
from shipyard.version import __version__
from shipyard.wire.limits import read_body
from shipyard.wire.shape import error_body

__all__ = ["KEY_HEADER", "install_routes"]

KEY_HEADER = "x-shipyard-key"
VARIANT_HEADER = "x-shipyard-variant"
VERSION_HEADER = "x-shipyard-model-version"
_MAX_FEEDBACK = 10_000


def install_routes(
    app: FastAPI,
    engine: Engine,
    *,
    max_request_bytes: int,
    predict_openapi: dict[str, Any],
    invocations_openapi: dict[str, Any] | None = None,
) -> dict[str, Endpoint]:
    """Add every endpoint to ``app``; returns the traffic ones by path, for the :class:`TrafficLane`.

    Example:
        >>> traffic = install_routes(app, engine, max_request_bytes=64, predict_openapi={})  # doctest: +SKIP
        >>> sorted(traffic)  # doctest: +SKIP
        ['/explain', '/feedback', '/invocations', '/predict']
    """

    app.add_exception_handler(NotReady, _on_not_ready)

    @app.get("/health", summary="Liveness: the process answers", responses=STATUS_RESPONSES["health"])
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get(
        "/ready",
        summary="Readiness: every live variant has its model loaded",
        responses=STATUS_RESPONSES["ready"],
    )
    async def ready() -> JSONResponse:
        return _ready(engine)

    @app.get(
        "/info",
        summary="The deployment: variants, models, versions, shares and the signature",
        responses=STATUS_RESPONSES["info"],
    )
    async def info() -> JSONResponse:
        return JSONResponse(_info(engine))

    @app.get(
        "/metrics",
        summary="Prometheus metrics of this process",
        response_class=Response,  # its media type comes from METRICS_RESPONSES
        responses=METRICS_RESPONSES,
    )
    async def metrics() -> Response:
        return Response(engine.metrics.render(), media_type=CONTENT_TYPE)

    @app.post(
        "/predict",
        summary="Predict on records, columns or an Arrow stream",
        openapi_extra=predict_openapi,
        responses=predict_responses(),
    )
    async def predict(request: Request) -> Response:
        return await _predict(request, engine, max_request_bytes)

    @app.post(
        "/explain",
        summary="Per-row feature attributions",
        openapi_extra=predict_openapi,
        responses=explain_responses(),
    )
    async def explain(request: Request) -> JSONResponse:
        call = await _read_call(request, engine, max_request_bytes)
        return JSONResponse(await _explain(engine, call))

    @app.post(
        "/feedback",
        summary="Ground truth for a request id",
        status_code=202,
        openapi_extra=FEEDBACK_OPENAPI,
        responses=FEEDBACK_RESPONSES,
    )
    async def feedback(request: Request) -> JSONResponse:
        return await _feedback(request, engine, max_request_bytes)

    @app.post(
        "/invocations",
        summary="MLflow's scoring protocol: dataframe_split, dataframe_records, instances, inputs or CSV",
        response_class=Response,  # its media types come from INVOCATIONS_RESPONSES
        openapi_extra=invocations_openapi or {},
        responses=INVOCATIONS_RESPONSES,
    )
    async def invocations(request: Request) -> Response:
        return await _invocations(request, engine, max_request_bytes)

    @app.get(
        "/ping",
        summary="MLflow's health probe: 200 once every live variant is loaded",
        response_class=Response,
        responses=PING_RESPONSES,
    )
    async def ping() -> Response:
        if not engine.ready():
            waiting = [v.name for v in engine.plan.spec.live if not _loaded(engine, v.name)]
            return mlflow_error(NotReady(f"Still loading variant(s) {', '.join(waiting)}; see GET /ready"))
        return Response("\n", media_type="text/plain")

    @app.get(
        "/version",
        summary="The server's version (MLflow's /version probe)",
        response_class=Response,
        responses=VERSION_RESPONSES,
    )
    async def version() -> Response:
        return Response(__version__, media_type="text/plain")

    @app.post(
        "/admin/reload",
        summary="Re-resolve model aliases and the stored deployment now",
        responses=ADMIN_RESPONSES,
    )
    async def reload() -> JSONResponse:
        return JSONResponse(await engine.reload())

    return {"/predict": predict, "/explain": explain, "/feedback": feedback, "/invocations": invocations}


async def _predict(request: Request, engine: Engine, max_bytes: int) -> Response:
    call, prediction = await _routed(engine, lambda: _read_call(request, engine, max_bytes))
    key = prediction.loaded.key
    answer = {
        **prediction.answer,
        "variant": prediction.variant,
        "model": key.ref,
        "version": key.version,
        "model_version": key.version,
        "request_id": call.request_id,
    }
    headers = _served_headers(prediction)
    if wants_arrow(request.headers.get("accept", "")):
        return Response(arrow_answer(answer), media_type=ARROW_STREAM, headers=headers)
    return JSONResponse(answer, headers=headers)


async def _routed(
    engine: Engine, read: Callable[[], Awaitable[PredictCall]]
) -> tuple[PredictCall, Prediction]:
    """Read a request with ``read``, then route and predict it: what /predict and /invocations share."""
    started = time.perf_counter()
    with engine.arrivals.request():
        try:
            with engine.arrivals.arriving():
                call = await read()
        except (ShipyardError, StarletteHTTPException) as exc:  # refused before routing: counted apart
            status = exc.http_status if isinstance(exc, ShipyardError) else exc.status_code
            engine.metrics.request(UNROUTED, status, time.perf_counter() - started)
            raise
        # no await between leaving `arriving` and queueing: the batcher sees this request as queued
        prediction = await engine.predict(call)
    return call, prediction


def _served_headers(prediction: Prediction) -> dict[str, str]:
    return {VARIANT_HEADER: prediction.variant, VERSION_HEADER: prediction.loaded.key.version}


async def _invocations(request: Request, engine: Engine, max_bytes: int) -> Response:
    """MLflow's ``POST /invocations``: ``{"predictions": [...]}``, or a refusal in MLflow's shape."""
    try:
        _call, prediction = await _routed(engine, lambda: _read_invocation(request, engine, max_bytes))
    except (ShipyardError, StarletteHTTPException) as exc:
        return mlflow_error(exc)
    return JSONResponse(
        {"predictions": prediction.answer["predictions"]}, headers=_served_headers(prediction)
    )


async def _read_invocation(request: Request, engine: Engine, max_bytes: int) -> PredictCall:
    content_type = request.headers.get("content-type", "")
    media = _media(request)
    if media and media != CSV and media != "application/json" and not media.endswith("+json"):
        raise StarletteHTTPException(
            415,
            f"Content-Type {quoted(media)} is not one /invocations takes: send JSON as application/json "
            "or a table as text/csv",
        )
    charset = _charset(content_type)
    if charset not in ("", "utf-8", "utf8"):
        raise StarletteHTTPException(415, f"charset={quoted(charset)}: /invocations reads UTF-8 only")
    primary = engine.primary()
    if primary is None:  # the signature names unnamed rows and types CSV values: wait for it
        raise NotReady("The model is still loading; GET /ping answers 200 once it can take traffic")
    body = await read_body(request, max_bytes)
    parsed = parse_invocation(body, media, primary.service.model.signature)
    return _call(request, engine, parsed, proba=False, drop_extra=True)


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return ""


def _loaded(engine: Engine, variant: str) -> bool:
    return engine.plan.variants[variant].slot.current is not None


async def _on_not_ready(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotReady)
    return JSONResponse(error_body(exc.code, exc.message), status_code=exc.http_status)


async def _read_call(request: Request, engine: Engine, max_bytes: int) -> PredictCall:
    # Most requests have no query string: parsing an empty one costs more than the check.
    wanted = parse_proba_flag(request.query_params.get("proba")) if request.scope["query_string"] else None
    media = _media(request)
    sticky = engine.plan.spec.sticky_key
    body = await read_body(request, max_bytes)
    parsed: PredictRequest
    if media == ARROW_STREAM:
        parsed = parse_arrow_request(body)
    else:
        _require_json(request)
        parsed = parse_predict_request(body, sticky)
    return _call(request, engine, parsed, proba=bool(wanted) or bool(parsed.proba))


def _call(
    request: Request, engine: Engine, parsed: PredictRequest, *, proba: bool, drop_extra: bool = False
) -> PredictCall:
    """The call for parsed rows; its sticky key from the header, the body field or the first row."""
    sticky = engine.plan.spec.sticky_key
    key = request.headers.get(KEY_HEADER) or parsed.key
    key_column = None
    columns = parsed.columns
    if sticky and (sticky in columns if columns is not None else sticky in parsed.frame.columns):
        key_column = sticky
        if key is None:
            key = _first_key(columns[sticky]) if columns is not None else None
            if key is None:
                key = str(parsed.frame[sticky].iloc[0])
    return PredictCall(
        parsed, proba, request_id(request), key=key, key_column=key_column, drop_extra=drop_extra
    )


def _first_key(values: list[Any]) -> str | None:
    """The routing key of a sticky-key column's first value, as pandas would print it; None when only
    the column's dtype can tell (mixed types, nulls)."""
    kinds = set(map(type, values))
    if len(kinds) == 1 and kinds <= {str, int, float, bool}:
        return str(values[0])
    return None


def _media(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _require_json(request: Request) -> None:
    media = _media(request)
    if media and media != "application/json" and not media.endswith("+json"):
        raise StarletteHTTPException(
            415,
            f"Content-Type {quoted(media)} is not JSON; send the body as JSON with "
            "'Content-Type: application/json' (curl: -H 'Content-Type: application/json'), "
            f"or an Arrow IPC stream as {ARROW_STREAM}",
        )


def loads_or_400(body: bytes) -> Any:
    """The JSON of a body, or ``InvalidInput`` (400)."""
    try:
        return loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"Malformed JSON in the request body: {exc}") from None


def _ready(engine: Engine) -> JSONResponse:
    plan = engine.plan
    variants = {
        name: (v.slot.current.key.version if v.slot.current is not None else None)
        for name, v in plan.variants.items()
    }
    waiting = [v.name for v in plan.spec.live if plan.variants[v.name].slot.current is None]
    body: dict[str, Any] = {"deployment": plan.spec.name, "variants": variants}
    primary = engine.primary()
    if primary is not None:
        body.update(model=primary.key.ref, version=primary.key.version)
    if waiting:
        return JSONResponse({"status": "loading", "waiting": waiting, **body}, status_code=503)
    return JSONResponse({"status": "ready", **body})


def _info(engine: Engine) -> dict[str, Any]:
    plan = engine.plan
    shares = plan.router.shares
    variants = []
    for spec in plan.spec.variants:
        loaded = plan.variants[spec.name].slot.current
        variants.append(
            {
                "name": spec.name,
                "mode": spec.mode,
                "weight": spec.weight,
                "share": shares.get(spec.name, 0.0),
                "model": spec.model,
                "resolved": loaded.key.ref if loaded is not None else None,
                "version": loaded.key.version if loaded is not None else None,
                "loaded": loaded is not None,
            }
        )
    primary = engine.primary()
    head = primary.service.info() if primary is not None else {"model": None, "version": None}
    return {
        **head,
        "deployment": plan.spec.name,
        "deployment_version": plan.record_version,
        "variants": variants,
        "sticky_key": plan.spec.sticky_key,
        "batching": plan.spec.batching.model_dump(),
        "prediction_log": engine.feed is not None,
        "last_reload": engine.last_reload,
    }


async def _explain(engine: Engine, call: PredictCall) -> dict[str, Any]:
    if call.rows > MAX_EXPLAIN_ROWS:
        raise PayloadTooLarge(
            f"/explain takes at most {MAX_EXPLAIN_ROWS} rows per request (got {call.rows}); "
            "send smaller batches",
            details={"limit": MAX_EXPLAIN_ROWS, "rows": call.rows},
        )
    _plan, variant = engine.choose(call.key)
    loaded = variant.slot.current
    if loaded is None:
        raise NotReady(f"Variant {variant.spec.name} is still loading; try again when GET /ready is 200")
    frame = loaded.service.check(call.frame_for(loaded.service), proba=False)
    service = loaded.service
    result = await to_thread.run_sync(lambda: explain_rows(service.model, frame, service.background()))
    return {
        **result,
        "variant": variant.spec.name,
        "model": loaded.key.ref,
        "version": loaded.key.version,
        "request_id": call.request_id,
    }


async def _feedback(request: Request, engine: Engine, max_bytes: int) -> JSONResponse:
    _require_json(request)
    rows = _feedback_rows(loads_or_400(await read_body(request, max_bytes)))
    if engine.feed is None:
        raise InvalidState(
            "This server keeps no prediction log (started with --no-prediction-log or "
            "prediction_log.enabled: false), so feedback has nowhere to go"
        )
    await engine.feed.append_feedback(rows)
    return JSONResponse({"accepted": len(rows)}, status_code=202)


def _feedback_rows(payload: Any) -> list[dict[str, Any]]:
    items = payload.get("feedback") if isinstance(payload, dict) and "feedback" in payload else payload
    items = items if isinstance(items, list) else [items]
    if not items or len(items) > _MAX_FEEDBACK:
        raise InvalidInput(f"Send 1 to {_MAX_FEEDBACK} feedback items, got {len(items)}")
    now = now_ms()
    rows = []
    for i, item in enumerate(items):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("request_id"), str)
            or not item["request_id"]
        ):
            raise InvalidInput(
                f'Feedback item {i} needs a "request_id" (string) and a "label": '
                '{"request_id": "…", "label": 1, "row": 0}'
            )
        if "label" not in item:
            raise InvalidInput(f'Feedback item {i} (request {quoted(item["request_id"])}) has no "label"')
        unknown = sorted(set(item) - {"request_id", "label", "row"})
        if unknown:
            raise InvalidInput(
                f"Feedback item {i} has unknown keys {quoted_list(unknown)}; send request_id, label, row"
            )
        row = item.get("row")
        if row is not None and (not isinstance(row, int) or isinstance(row, bool) or row < 0):
            raise InvalidInput(f'Feedback item {i}: "row" must be a row number (0, 1, ...) or null')
        rows.append({"request_id": item["request_id"], "ts": now, "label": item["label"], "row": row})
    return rows
