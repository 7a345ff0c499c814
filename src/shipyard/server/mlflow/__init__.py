"""MLflow's tracking and registry REST API on ``shipyard server``, over Shipyard's own store.

MLflow's client (``mlflow.set_tracking_uri("http://shipyard-host:5000")``) logs and reads runs,
registers models and moves aliases here unchanged. The routes live under :data:`PREFIXES`, speak
MLflow's wire format (:mod:`shipyard.server.mlflow.wire`) and call the same store, registry and
governance functions as Shipyard's own API: one store, one set of rules. See ``docs/mlflow.md``.
"""

from __future__ import annotations

__all__ = ["ARTIFACTS_PREFIX", "DEFAULT_EXPERIMENT", "PREFIXES"]

PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
"""Where MLflow's client (``/api``) and MLflow's web UI (``/ajax-api``) send their requests."""

ARTIFACTS_PREFIX = "/api/2.0/mlflow-artifacts"
"""Where MLflow's client uploads, downloads and lists a run's artifacts (``mlflow-artifacts:/`` URIs)."""

DEFAULT_EXPERIMENT = "default"
"""The Shipyard experiment MLflow's experiment ``0`` (its Default) stands for."""
