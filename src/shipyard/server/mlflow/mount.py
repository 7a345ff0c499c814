"""Where MLflow's API goes in the server: :func:`include_mlflow` mounts its routers under each of
:data:`~shipyard.server.mlflow.PREFIXES` (the artifact proxy under
:data:`~shipyard.server.mlflow.ARTIFACTS_PREFIX`), the ``server-info`` MLflow's client asks for, and
last an answer for every other MLflow endpoint: ``ENDPOINT_NOT_FOUND`` in MLflow's shape, which its
client reads (and which lets it fall back to another endpoint where it has one).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response

from shipyard.server.mlflow import ARTIFACTS_PREFIX, PREFIXES, artifacts, logged_models, registry, tracking
from shipyard.server.mlflow.wire import ERROR_RESPONSES, MlflowRoute, mlflow_error_answer

__all__ = ["SERVER_INFO", "include_mlflow"]

SERVER_INFO: dict[str, object] = {
    "store_type": None,
    "workspaces_enabled": False,
    "trace_archival_enabled": False,
    "multipart_uploads_enabled": False,
    "multipart_downloads_enabled": False,
    "presigned_upload_run_id_supported": False,
    "presigned_upload_model_id_supported": False,
    "features_enabled": {"gateway": False},
}
"""What ``GET /api/3.0/mlflow/server-info`` answers: artifacts go through the proxy whole (no
multipart or presigned uploads), no workspaces, no trace archival, no AI gateway."""

_info = APIRouter(tags=["mlflow"])


@_info.get("/api/3.0/mlflow/server-info")
def server_info() -> dict[str, object]:
    """How this server serves MLflow's client (asked before large artifact transfers)."""
    return SERVER_INFO


_unknown = APIRouter(route_class=MlflowRoute, tags=["mlflow"], responses=ERROR_RESPONSES)


def endpoint_not_found(path: str, request: Request) -> Response:
    """Any MLflow endpoint this server does not serve (traces, prompts, …): MLflow's 404."""
    return mlflow_error_answer(
        "ENDPOINT_NOT_FOUND",
        f"Shipyard's MLflow API does not serve {request.method} {request.url.path}; the endpoints it "
        "serves and the MLflow client calls that use them are listed in docs/mlflow.md",
    )


for _method in ("GET", "POST", "PATCH", "DELETE"):  # one route per method: one OpenAPI operation each
    _unknown.add_api_route("/{path:path}", endpoint_not_found, methods=[_method])


def include_mlflow(app: FastAPI) -> None:
    """Mount MLflow's API on ``app`` (before any catch-all route of the app itself).

    Example:
        >>> include_mlflow(FastAPI())
    """
    for prefix in PREFIXES:
        app.include_router(tracking.router, prefix=prefix)
        app.include_router(logged_models.router, prefix=prefix)  # MLflow 3's logged models
        app.include_router(registry.router, prefix=prefix)  # models, versions, aliases
    app.include_router(artifacts.router, prefix=ARTIFACTS_PREFIX)
    app.include_router(_info)
    for prefix in PREFIXES:  # last: after every route under the prefix
        app.include_router(_unknown, prefix=prefix)
