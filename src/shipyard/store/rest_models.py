"""The model registry, deployments and audit checkpoints of ``RestStore`` (mixed in), plus the
governed actions that a server decides itself (promote, approve, reject, rollback, set policy:
``RemoteGovernance``).

There is deliberately no raw alias move, arbitrary record write or policy write here (the
``LocalGovernance`` capability): over REST, governed changes exist only as governed operations,
which the server runs with its own checks. Evaluations have a narrow route of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from shipyard.audit import Checkpoint
from shipyard.entities import (
    AliasMove,
    Artifact,
    DeploymentRecord,
    ModelRecord,
    ModelVersion,
    ModelVersionCreate,
    RegisteredModel,
)

__all__ = ["RestModelsMixin"]

API = "/api/v1"


def _m(name: str) -> str:
    return f"{API}/models/{quote(name, safe='')}"


class RestModelsMixin:
    """Registry calls over HTTP; each maps one-to-one onto a route of ``server/routers/models.py``."""

    def _request(
        self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        raise NotImplementedError

    def _get(self, path: str, **params: Any) -> Any:
        raise NotImplementedError

    def _post(self, path: str, body: Any) -> Any:
        raise NotImplementedError

    def create_registered_model(
        self, name: str, description: str = "", created_by: str = ""
    ) -> RegisteredModel:
        body = {"name": name, "description": description, "created_by": created_by}
        return RegisteredModel.from_dict(self._post(f"{API}/models", body))

    def get_registered_model(self, name: str) -> RegisteredModel:
        return RegisteredModel.from_dict(self._get(_m(name)))

    def list_registered_models(self) -> list[RegisteredModel]:
        return [RegisteredModel.from_dict(m) for m in self._get(f"{API}/models")["items"]]

    def create_model_version(self, spec: ModelVersionCreate) -> ModelVersion:
        return ModelVersion.from_dict(self._post(f"{_m(spec.name)}/versions", spec.to_dict()))

    def get_model_version(self, name: str, ref: str | int = "latest") -> ModelVersion:
        return ModelVersion.from_dict(self._get(f"{_m(name)}/versions/{quote(str(ref), safe='')}"))

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        return [ModelVersion.from_dict(v) for v in self._get(f"{_m(name)}/versions")["items"]]

    def models_for_run(self, run_id: str) -> list[ModelVersion]:
        return [
            ModelVersion.from_dict(v)
            for v in self._get(f"{API}/runs/{quote(run_id, safe='')}/models")["items"]
        ]

    def list_alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        params = {"alias": alias} if alias is not None else {}
        return [AliasMove(**m) for m in self._get(f"{_m(name)}/alias-history", **params)["items"]]

    def add_model_evaluation(
        self,
        name: str,
        version: int,
        actor: str,
        body: dict[str, Any],
        *,
        files: Sequence[Artifact] = (),
    ) -> ModelRecord:
        payload = {"actor": actor, "body": body, "files": [f.__dict__ for f in files]}
        return ModelRecord.from_dict(self._post(f"{_m(name)}/versions/{version}/evaluations", payload))

    def record_trusted_load(self, name: str, version: int, actor: str, reason: str = "") -> None:
        self._post(f"{_m(name)}/versions/{version}/trusted-loads", {"actor": actor, "reason": reason})

    def list_model_records(
        self, name: str, version: int | None = None, kind: str | None = None
    ) -> list[ModelRecord]:
        params = {k: v for k, v in (("version", version), ("kind", kind)) if v is not None}
        return [ModelRecord.from_dict(r) for r in self._get(f"{_m(name)}/records", **params)["items"]]

    # -- decided on the server -----------------------------------------------------------------
    def remote_promote(self, name: str, version: int, actor: str, to: str, reason: str) -> dict[str, Any]:
        body = {"actor": actor, "to": to, "reason": reason}
        return dict(self._post(f"{_m(name)}/versions/{version}/promote", body))

    def remote_decide(self, name: str, version: int, actor: str, decision: str, comment: str) -> ModelRecord:
        body = {"actor": actor, "comment": comment}
        return ModelRecord.from_dict(self._post(f"{_m(name)}/versions/{version}/{decision}", body))

    def remote_rollback(self, name: str, actor: str, to: int | None, alias: str, reason: str) -> int:
        body = {"actor": actor, "to": to, "alias": alias, "reason": reason}
        return int(self._post(f"{_m(name)}/rollback", body)["version"])

    def remote_set_policy(
        self, name: str, actor: str, policy_yaml: str | None, reason: str
    ) -> RegisteredModel:
        body = {"policy_yaml": policy_yaml, "actor": actor, "reason": reason}
        return RegisteredModel.from_dict(self._request("PUT", f"{_m(name)}/policy", body=body).json())

    # -- audit checkpoints ---------------------------------------------------------------------
    def audit_head(self) -> Checkpoint:
        return Checkpoint.from_dict(self._get(f"{API}/audit/head"), where="the server's audit head")

    def list_audit_checkpoints(self) -> list[Checkpoint]:
        items = self._get(f"{API}/audit/checkpoints")["items"]
        return [Checkpoint.from_dict(c, where="a checkpoint from the server") for c in items]

    def write_audit_checkpoint(self) -> Checkpoint:
        return Checkpoint.from_dict(self._post(f"{API}/audit/checkpoints", {}), where="the new checkpoint")

    # -- deployments ---------------------------------------------------------------------------
    def save_deployment(self, name: str, spec_yaml: str, actor: str, reason: str = "") -> DeploymentRecord:
        body = {"name": name, "spec_yaml": spec_yaml, "actor": actor, "reason": reason}
        return DeploymentRecord(**self._post(f"{API}/deployments", body))

    def get_deployment(self, name: str, ref: str | int = "latest") -> DeploymentRecord:
        path = f"{API}/deployments/{quote(name, safe='')}/versions/{quote(str(ref), safe='')}"
        return DeploymentRecord(**self._get(path))

    def list_deployments(self, name: str | None = None) -> list[DeploymentRecord]:
        params = {"name": name} if name is not None else {}
        return [DeploymentRecord(**d) for d in self._get(f"{API}/deployments", **params)["items"]]
