"""Who may call what: the one place the tracking server decides every request.

With ``auth`` on (``shipyard server`` turns it on for any non-loopback bind), :class:`AccessMiddleware`
authenticates each request's ``Authorization: Bearer <token>`` against the store (every request
reads the database, so a revoked or expired token stops working at once in every worker), then
looks the request up in :data:`RULES` — method and path template → the permission it needs, and
whether per-object grants apply — and answers 401, 403 or 429 itself. A route without a rule is
refused (and ``tests/unit/server/test_access_matrix.py`` fails, naming it). The principal is put on
``request.state.principal``; routers take the acting user from it (:func:`actor_for`), never from
a name in the request body.

Grants: a write to an experiment (by its id, or through one of its runs) or a model (by name) that
has grants needs an ``owner`` or ``editor`` grant on it (or the ``admin`` role); objects without
grants are open to every holder of the permission. Creating an experiment or a model through the
server makes the creator its owner.

Failed authentications are limited per client address (in-process: each worker counts on its own,
so the effective limit is ``workers ×`` :data:`MAX_FAILURES`); refused requests and failed
authentications are audited (``object_type`` ``security``), at most once a minute per client and
route. Single sign-on (OIDC) would plug into :func:`authenticate`: verify the ID token with a kept
library (authlib), map its claims to a user and return a ``Principal``; nothing else changes.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.auth import MAX_FAILURES, FailureLimiter, Principal, bearer_credential, session_credential
from shipyard.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
    RateLimited,
    ShipyardError,
    Unauthenticated,
)
from shipyard.server.mlflow import ARTIFACTS_PREFIX, PREFIXES
from shipyard.server.mlflow.wire import error_code_of, mlflow_error_answer
from shipyard.store import Store
from shipyard.store.base import AuthStore, VerifiesCredentials
from shipyard.wire.handlers import error_response

__all__ = [
    "MAX_FAILURES",
    "FailureLimiter",
    "PUBLIC",
    "RULES",
    "SECURITY_HEADERS",
    "AccessMiddleware",
    "Rule",
    "actor_for",
    "authenticate",
    "principal_of",
    "require_grant",
    "require_self_or_admin",
    "rule_for",
]

PUBLIC = "public"
AUTHENTICATED = "authenticated"


@dataclass(frozen=True)
class Rule:
    """What a route needs: a permission (``read`` … ``admin``), ``authenticated`` (any valid token)
    or ``public``; ``obj`` names the path parameter whose grants apply to writes (``experiment_id``,
    ``run_id`` or ``name`` of a model)."""

    permission: str
    obj: str | None = None
    page: bool = False  # a web UI page: the sign-in cookie counts, and a GET without one goes to /login


_R, _W, _D, _A, _ADM = Rule("read"), Rule("write"), Rule("deploy"), Rule("approve"), Rule("admin")
_RUN_W, _MODEL_W = Rule("write", "run_id"), Rule("write", "name")
_PAGE = Rule("read", page=True)

RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/health"): Rule(PUBLIC),
    ("GET", "/api/v1/info"): _R,
    ("POST", "/api/v1/auth/login"): Rule(PUBLIC),
    ("GET", "/api/v1/auth/whoami"): Rule(AUTHENTICATED),
    ("GET", "/api/v1/auth/users"): _ADM,
    ("POST", "/api/v1/auth/users"): _ADM,
    ("GET", "/api/v1/auth/users/{name}"): _ADM,
    ("PATCH", "/api/v1/auth/users/{name}"): _ADM,
    ("GET", "/api/v1/auth/tokens"): Rule(AUTHENTICATED),  # own tokens; admin: anyone's
    ("POST", "/api/v1/auth/tokens"): Rule(AUTHENTICATED),  # for yourself; admin: for anyone
    ("POST", "/api/v1/auth/tokens/{token_id}/revoke"): Rule(AUTHENTICATED),  # own; admin: any
    ("GET", "/api/v1/auth/grants"): _ADM,
    ("PUT", "/api/v1/auth/grants"): _ADM,
    ("POST", "/api/v1/admin/gc"): _ADM,
    ("POST", "/api/v1/admin/purge"): _ADM,
    ("POST", "/api/v1/admin/referenced-digests"): _ADM,
    ("GET", "/api/v1/admin/run-ids"): _ADM,
    ("GET", "/api/v1/experiments"): _R,
    ("POST", "/api/v1/experiments"): _W,
    ("GET", "/api/v1/experiments/by-name"): _R,
    ("GET", "/api/v1/experiments/{experiment_id}"): _R,
    ("POST", "/api/v1/runs"): _W,
    ("POST", "/api/v1/runs/record"): _W,
    ("POST", "/api/v1/runs/search"): _R,
    ("POST", "/api/v1/runs/heartbeat"): _W,
    ("POST", "/api/v1/runs/expire-stale"): _W,
    ("POST", "/api/v1/runs/delete"): _W,
    ("POST", "/api/v1/runs/restore"): _W,
    ("GET", "/api/v1/runs/{run_id}"): _R,
    ("PATCH", "/api/v1/runs/{run_id}"): _RUN_W,
    ("POST", "/api/v1/runs/{run_id}/batch"): _RUN_W,
    ("GET", "/api/v1/runs/{run_id}/metrics/history"): _R,
    ("POST", "/api/v1/runs/{run_id}/artifacts"): _RUN_W,
    ("GET", "/api/v1/runs/{run_id}/artifacts"): _R,
    ("GET", "/api/v1/runs/{run_id}/artifacts/{path}"): _R,
    ("GET", "/api/v1/blobs"): _ADM,
    ("HEAD", "/api/v1/blobs/{digest}"): _R,
    ("GET", "/api/v1/blobs/{digest}"): _R,
    ("DELETE", "/api/v1/blobs/{digest}"): _ADM,
    ("PUT", "/api/v1/blobs/{digest}"): _W,
    ("DELETE", "/api/v1/blobs/tmp"): _ADM,
    ("POST", "/api/v1/datasets/versions"): _W,
    ("GET", "/api/v1/datasets/versions"): _R,
    ("GET", "/api/v1/datasets/resolve"): _R,
    ("POST", "/api/v1/runs/{run_id}/datasets"): _RUN_W,
    ("GET", "/api/v1/runs/{run_id}/datasets"): _R,
    ("POST", "/api/v1/contracts"): _W,
    ("GET", "/api/v1/contracts"): _R,
    ("GET", "/api/v1/contracts/resolve"): _R,
    ("GET", "/api/v1/datasets/profile"): _R,
    ("GET", "/api/v1/datasets/diff"): _R,
    ("POST", "/api/v1/datasets/validate"): _R,
    ("GET", "/api/v1/datasets/pii"): _R,
    ("GET", "/api/v1/audit"): _R,
    ("GET", "/api/v1/audit/head"): _R,
    ("GET", "/api/v1/audit/checkpoints"): _R,
    ("POST", "/api/v1/audit/checkpoints"): _ADM,
    ("GET", "/api/v1/models"): _R,
    ("POST", "/api/v1/models"): _W,
    ("GET", "/api/v1/models/{name}"): _R,
    ("PUT", "/api/v1/models/{name}/policy"): _ADM,
    ("POST", "/api/v1/models/{name}/versions"): _MODEL_W,
    ("GET", "/api/v1/models/{name}/versions"): _R,
    ("GET", "/api/v1/models/{name}/versions/{ref}"): _R,
    ("GET", "/api/v1/runs/{run_id}/models"): _R,
    ("GET", "/api/v1/models/{name}/alias-history"): _R,
    ("POST", "/api/v1/models/{name}/versions/{version}/evaluations"): _MODEL_W,
    ("POST", "/api/v1/models/{name}/versions/{version}/trusted-loads"): _R,  # audits a load the caller did
    ("GET", "/api/v1/models/{name}/records"): _R,
    ("POST", "/api/v1/models/{name}/versions/{version}/promote"): _MODEL_W,
    ("POST", "/api/v1/models/{name}/versions/{version}/approve"): _A,
    ("POST", "/api/v1/models/{name}/versions/{version}/reject"): _A,
    ("POST", "/api/v1/models/{name}/rollback"): _MODEL_W,
    ("POST", "/api/v1/models/{name}/versions/{version}/evaluate"): _MODEL_W,
    ("POST", "/api/v1/deployments"): _D,
    ("GET", "/api/v1/deployments"): _R,
    ("GET", "/api/v1/deployments/{name}/versions/{ref}"): _R,
    ("PUT", "/api/v1/schedules/{name}"): _ADM,
    ("GET", "/api/v1/schedules/{name}"): _R,
    ("DELETE", "/api/v1/schedules/{name}"): _ADM,
    ("GET", "/api/v1/schedules"): _R,
    ("GET", "/api/v1/schedules/{name}/fires"): _R,
    ("POST", "/api/v1/monitoring/reports"): _D,
    ("GET", "/api/v1/monitoring/reports"): _R,
    ("GET", "/api/v1/monitoring/reports/{report_id}"): _R,
    ("POST", "/api/v1/monitoring/alerts/fire"): _D,
    ("POST", "/api/v1/monitoring/alerts/resolve"): _D,
    ("POST", "/api/v1/monitoring/alerts/{alert_id}/actions"): _D,
    ("GET", "/api/v1/monitoring/alerts"): _R,
    ("GET", "/api/v1/monitoring/alerts/{alert_id}"): _R,
    # MLflow's API (shipyard.server.mlflow), under each of its PREFIXES: see _MLFLOW_RULES below
    ("GET", "/api/3.0/mlflow/server-info"): Rule(PUBLIC),  # MLflow serves it without login
    ("PUT", f"{ARTIFACTS_PREFIX}/artifacts/{{path}}"): _W,  # the run is checked for grants by the route
    ("GET", f"{ARTIFACTS_PREFIX}/artifacts/{{path}}"): _R,
    ("GET", f"{ARTIFACTS_PREFIX}/artifacts"): _R,
    # the API's own description
    # The web UI (shipyard.ui): pages read; signing in and its stylesheet are public.
    ("GET", "/"): _PAGE,
    ("GET", "/experiments/{experiment_id}"): _PAGE,
    ("GET", "/runs/{run_id}"): _PAGE,
    ("GET", "/runs/{run_id}/artifacts/view"): _PAGE,
    ("GET", "/runs/{run_id}/artifacts/raw"): _PAGE,
    ("GET", "/compare"): _PAGE,
    ("GET", "/models"): _PAGE,
    ("GET", "/models/{name}"): _PAGE,
    ("GET", "/models/{name}/evaluations/{record_id}/{file}"): _PAGE,  # an evaluation's plot
    ("POST", "/models/{name}/versions/{version}/decide"): Rule("approve", page=True),
    ("GET", "/datasets"): _PAGE,
    ("GET", "/datasets/{name}"): _PAGE,
    ("GET", "/datasets/{name}/versions/{version}"): _PAGE,
    ("GET", "/datasets/{name}/diff"): _PAGE,
    ("GET", "/deployments"): _PAGE,
    ("GET", "/deployments/{name}"): _PAGE,
    ("GET", "/deployments/{name}/live"): _PAGE,
    ("POST", "/deployments/{name}/versions/{version}/rollback"): Rule("deploy", page=True),
    ("GET", "/approvals"): _PAGE,  # the queue; deciding is the POST above
    ("GET", "/audit"): _PAGE,  # the API's audit routes need read too
    ("GET", "/audit/verify"): _PAGE,  # a read: it verifies, changes nothing
    ("GET", "/monitoring"): _PAGE,
    ("GET", "/monitoring/{deployment}"): _PAGE,
    ("GET", "/monitoring/alerts/{alert_id}"): _PAGE,
    ("GET", "/login"): Rule(PUBLIC),
    ("POST", "/login"): Rule(PUBLIC),
    ("POST", "/logout"): Rule(AUTHENTICATED, page=True),
    ("GET", "/static/{path}"): Rule(PUBLIC),
    ("GET", "/openapi.json"): Rule(PUBLIC),
    ("GET", "/docs"): Rule(PUBLIC),
    ("GET", "/docs/oauth2-redirect"): Rule(PUBLIC),
}
"""Method + path template (as ``/openapi.json`` spells it) → :class:`Rule`. HEAD of a GET route
follows the GET rule."""

_MLFLOW_RULES: dict[tuple[str, str], Rule] = {
    # Writes name their run or experiment in the body: the routes check its grants (require_grant).
    ("GET", "/experiments/get-by-name"): _R,
    ("GET", "/experiments/get"): _R,
    ("POST", "/experiments/search"): _R,
    ("POST", "/experiments/create"): _W,
    ("POST", "/experiments/delete"): _W,
    ("POST", "/experiments/restore"): _W,
    ("POST", "/experiments/update"): _W,
    ("POST", "/experiments/set-experiment-tag"): _W,
    ("POST", "/experiments/delete-experiment-tag"): _W,
    ("GET", "/runs/get"): _R,
    ("POST", "/runs/search"): _R,
    ("POST", "/runs/create"): _W,
    ("POST", "/runs/update"): _W,
    ("POST", "/runs/delete"): _W,
    ("POST", "/runs/restore"): _W,
    ("POST", "/runs/log-metric"): _W,
    ("POST", "/runs/log-parameter"): _W,
    ("POST", "/runs/log-batch"): _W,
    ("POST", "/runs/set-tag"): _W,
    ("POST", "/runs/delete-tag"): _W,
    ("POST", "/runs/log-inputs"): _W,
    ("GET", "/metrics/get-history"): _R,
    ("GET", "/metrics/get-history-bulk-interval"): _R,
    ("GET", "/artifacts/list"): _R,
    ("POST", "/logged-models/search"): _R,
    # MLflow 3's logged models (shipyard.server.mlflow.logged_models): writes check the experiment's grants
    ("POST", "/logged-models"): _W,
    ("GET", "/logged-models/{model_id}"): _R,
    ("PATCH", "/logged-models/{model_id}"): _W,
    ("DELETE", "/logged-models/{model_id}"): _W,
    ("PATCH", "/logged-models/{model_id}/tags"): _W,
    ("DELETE", "/logged-models/{model_id}/tags/{tag_key}"): _W,
    ("POST", "/logged-models/{model_id}/params"): _W,
    ("GET", "/logged-models/{model_id}/artifacts/directories"): _R,
    ("POST", "/runs/outputs"): _W,
    # any other MLflow endpoint: answered ENDPOINT_NOT_FOUND (registered last)
    **{(m, "/{path}"): Rule(AUTHENTICATED) for m in ("GET", "POST", "PATCH", "DELETE")},
}
"""MLflow's tracking API, by path under one of its prefixes (``shipyard.server.mlflow.PREFIXES``)."""
RULES.update({(m, prefix + path): rule for prefix in PREFIXES for (m, path), rule in _MLFLOW_RULES.items()})
# MLflow's registry API (shipyard.server.mlflow.registry), under both of MLflow's prefixes. Its routes
# name the model in the body or query, so a write checks the model's grants itself
# (require_grant); moving an alias runs the promotion policy, like /promote.
_MLFLOW_REGISTRY: dict[tuple[str, str], Rule] = {
    **{("GET", f"registered-models/{p}"): _R for p in ("get", "search", "get-latest-versions", "alias")},
    ("POST", "registered-models/get-latest-versions"): _R,
    **{("GET", f"model-versions/{p}"): _R for p in ("get", "search", "get-download-uri")},
    ("POST", "registered-models/create"): _W,
    ("PATCH", "registered-models/update"): _W,
    ("POST", "registered-models/rename"): _W,
    ("DELETE", "registered-models/delete"): _W,
    ("POST", "registered-models/set-tag"): _W,
    ("DELETE", "registered-models/delete-tag"): _W,
    ("POST", "registered-models/alias"): _W,
    ("DELETE", "registered-models/alias"): _W,
    ("POST", "model-versions/create"): _W,
    ("PATCH", "model-versions/update"): _W,
    ("DELETE", "model-versions/delete"): _W,
    ("POST", "model-versions/set-tag"): _W,
    ("DELETE", "model-versions/delete-tag"): _W,
    ("POST", "model-versions/transition-stage"): _W,
}
RULES.update(
    {(m, f"{prefix}/{path}"): rule for prefix in PREFIXES for (m, path), rule in _MLFLOW_REGISTRY.items()}
)

_GREEDY = {"path"}  # path parameters that span slashes ({path:path} in the router)


def _compile(template: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in re.finditer(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", template):
        out.append(re.escape(template[pos : m.start()]))
        name = m.group(1)
        out.append(f"(?P<{name}>.+)" if name in _GREEDY else f"(?P<{name}>[^/]+)")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("^" + "".join(out) + "$")


# literal templates first, then by fewer parameters: /runs/search before /runs/{run_id}; templates
# with a greedy {path} after all others (MLflow's catch-all must not shadow /logged-models/{a}/tags/{b})
_MATCHERS: list[tuple[str, str, re.Pattern[str]]] = sorted(
    ((method, tpl, _compile(tpl)) for method, tpl in RULES),
    key=lambda item: ("{path}" in item[1], item[1].count("{"), -len(item[1])),
)


def rule_for(method: str, path: str) -> tuple[str, Rule, dict[str, str]] | None:
    """The template, rule and path parameters of a request, or None when no rule matches.

    Example:
        >>> rule_for("PATCH", "/api/v1/runs/abc")[1].permission
        'write'
    """
    for m, tpl, pattern in _MATCHERS:
        if m != method and not (method == "HEAD" and m == "GET"):
            continue
        found = pattern.match(path)
        if found:
            return tpl, RULES[(m, tpl)], found.groupdict()
    return None


SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"interest-cohort=()"),
)
"""Headers every answer of the tracking server carries (``/docs`` gets a CSP that lets its UI load)."""

_API_CSP = dict(SECURITY_HEADERS)[b"content-security-policy"]
_UI_CSP = (
    b"default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
"""The web UI's pages: their own stylesheet, scripts (no inline script, no eval) and images, requests
(htmx's fragments) and forms to this site only."""
_DOCS_CSP = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https:; "
    b"frame-ancestors 'none'"
)

_AUDIT_EVERY_S = 60.0
_MLFLOW_PATHS = (*PREFIXES, ARTIFACTS_PREFIX, "/api/3.0/mlflow")


class _Once:
    """True at most once per key per period (rate-limits audit entries of refusals)."""

    def __init__(self, period_s: float = _AUDIT_EVERY_S) -> None:
        self.period_s = period_s
        self._last: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def __call__(self, *key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if len(self._last) > 100_000:
                self._last.clear()
            if now - self._last.get(key, -1e18) < self.period_s:
                return False
            self._last[key] = now
            return True


def authenticate(store: Store, credential: str) -> Principal | None:
    """The principal a bearer credential stands for, or None (unknown, expired, revoked, disabled).

    The seam for single sign-on: an OIDC ID token would be verified here (authlib's JWT with the
    issuer's keys), its claims mapped to a user, and a ``Principal`` returned the same way.
    """
    if not isinstance(store, VerifiesCredentials):
        return None
    found = store.verify_token(credential)
    if found is None:
        return None
    user, token = found
    return Principal(name=user.name, roles=user.roles, scopes=frozenset(token.scopes), token_id=token.id)


def _object_grants(store: Store, principal: Principal, rule: Rule, params: dict[str, str]) -> str | None:
    """Why a write on an object with grants is refused to ``principal``, or None when allowed."""
    if rule.obj is None or principal.is_admin or not isinstance(store, AuthStore):
        return None
    if rule.obj == "name":
        kind, oid = "model", params["name"]
    else:
        kind = "experiment"
        try:
            if rule.obj == "run_id":
                oid = str(store.get_run(params["run_id"]).experiment_id)
            else:
                oid = params[rule.obj]
        except NotFound:
            return None  # the route answers 404 itself
    return _grant_refusal(store, principal, kind, oid)


def _grant_refusal(store: AuthStore, principal: Principal, kind: str, oid: str) -> str | None:
    grants = store.list_grants(kind, oid)
    if not grants:
        return None
    if any(g.user == principal.name and g.role in ("owner", "editor") for g in grants):
        return None
    return f"{kind} {oid} has grants and {principal.name} is not its owner or editor"


def require_grant(request: Request, store: Store, kind: str, object_id: str) -> None:
    """The grant check of :class:`AccessMiddleware` for a write whose object is named in the request
    body, not its path (MLflow's API): an experiment or model with grants takes writes only from its
    owners and editors (and admins). 403 otherwise; nothing to check without auth.

    Example:
        >>> require_grant(request, store, "experiment", str(run.experiment_id))  # doctest: +SKIP
    """
    principal = principal_of(request)
    if principal is None or principal.is_admin or not isinstance(store, AuthStore):
        return
    why = _grant_refusal(store, principal, kind, object_id)
    if why is not None:
        raise PermissionDenied(
            f"{principal.name} may not change {kind} {object_id}: {why}. Its owner or an admin adds a grant "
            "with: shipyard users grant",
            details={"user": principal.name},
        )


class AccessMiddleware:
    """Authenticate, authorise by :data:`RULES`, rate-limit failures, add security headers.

    With ``enabled=False`` (auth off: a loopback server) it only adds the security headers.
    """

    def __init__(self, app: ASGIApp, store: Store, enabled: bool, limiter: FailureLimiter) -> None:
        self.app, self.store, self.enabled = app, store, enabled
        self.limiter = limiter  # shared with the login route
        self._audit_once = _Once()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        page_csp = (
            _DOCS_CSP if path.startswith("/docs") else _API_CSP if path.startswith("/api/") else _UI_CSP
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for k, v in SECURITY_HEADERS:
                    if k not in present:
                        headers.append((k, page_csp if k == b"content-security-policy" else v))
                message = {**message, "headers": headers}
            await send(message)

        if not self.enabled:
            await self.app(scope, receive, send_with_headers)
            return
        try:
            principal = await self._decide(scope)
        except ShipyardError as exc:
            if isinstance(exc, Unauthenticated) and _is_page_view(scope):
                await _to_sign_in(scope)(scope, receive, send_with_headers)
                return
            response = _refusal(exc, path)
            if isinstance(exc, Unauthenticated):
                response.headers["WWW-Authenticate"] = 'Bearer realm="shipyard"'
            if isinstance(exc, RateLimited):
                response.headers["Retry-After"] = str(int(exc.details.get("retry_after_s", 60)))
            await response(scope, receive, send_with_headers)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send_with_headers)

    def _client(self, scope: Scope) -> str:
        client = scope.get("client")
        return str(client[0]) if client else "unknown"

    async def _decide(self, scope: Scope) -> Principal | None:
        method, path = str(scope["method"]), str(scope.get("path", ""))
        found = rule_for(method, path)
        client = self._client(scope)
        if found is None:
            if not path.startswith("/api/"):
                return None  # not an API route: the router answers 404/405
            await self._audit("anonymous", "refused", f"route/{method} {path[:200]}", client, "no rule")
            raise PermissionDenied(
                f"{method} {path} has no access rule on this server, so it is refused; "
                "the API is described at /docs"
            )
        template, rule, params = found
        if rule.permission == PUBLIC:
            return None
        credential = bearer_credential(scope.get("headers", []))
        if credential is None and rule.page:  # a browser signed in to the web UI
            credential = session_credential(scope.get("headers", []))
        wait = self.limiter.retry_after(client)
        if wait > 0:
            raise RateLimited(
                f"Too many failed sign-ins from {client}; retry in {int(wait) + 1} s",
                details={"retry_after_s": int(wait) + 1},
            )
        if not credential:
            if credential == "":  # present but malformed: counts as a failure
                self.limiter.fail(client)
                await self._audit("anonymous", "auth_failed", f"client/{client}", client, "malformed")
            raise Unauthenticated(
                f"{method} {path} needs a token: send 'Authorization: Bearer <token>' "
                "(SHIPYARD_TOKEN, or run: shipyard login)"
            )
        principal = await anyio.to_thread.run_sync(authenticate, self.store, credential)
        if principal is None:
            self.limiter.fail(client)
            await self._audit("anonymous", "auth_failed", f"client/{client}", client, "invalid token")
            raise Unauthenticated(
                "The token is not valid (unknown, expired or revoked, or its user is disabled); "
                "create a new one with: shipyard tokens create"
            )
        if rule.permission == AUTHENTICATED:
            return principal
        if not principal.can(rule.permission):
            await self._audit(
                principal.name, "refused", f"route/{method} {template}", client, rule.permission
            )
            raise PermissionDenied(
                f"{principal.name} may not {method} {path}: it needs the '{rule.permission}' permission "
                f"(roles {', '.join(principal.roles) or 'none'}; token scopes "
                f"{', '.join(sorted(principal.scopes))}). An admin grants roles with: shipyard users",
                details={"permission": rule.permission, "user": principal.name},
            )
        why = await anyio.to_thread.run_sync(_object_grants, self.store, principal, rule, params)
        if why is not None:
            await self._audit(principal.name, "refused", f"route/{method} {template}", client, why)
            raise PermissionDenied(
                f"{principal.name} may not {method} {path}: {why}. Its owner or an admin adds a grant "
                "with: shipyard users grant",
                details={"user": principal.name},
            )
        return principal

    async def _audit(self, actor: str, event: str, subject: str, client: str, why: str) -> None:
        if not isinstance(self.store, VerifiesCredentials) or not self._audit_once(actor, event, subject):
            return
        store = self.store
        details = {"client": client, "why": why}
        with contextlib.suppress(ShipyardError):  # auditing a refusal must not turn it into a 500
            await anyio.to_thread.run_sync(store.record_security_event, actor, event, subject, details)


def _refusal(exc: ShipyardError, path: str) -> Response:
    """The answer to a refused request: MLflow's error shape on MLflow's API (its client raises the
    ``MlflowException`` it knows), Shipyard's everywhere else."""
    if path.startswith(_MLFLOW_PATHS):
        return mlflow_error_answer(error_code_of(exc), exc.message)
    return error_response(exc)


def _is_page_view(scope: Scope) -> bool:
    """A GET of a web UI page (its rule says ``page``): answered by the sign-in page, not a 401."""
    if scope.get("method") != "GET":
        return False
    found = rule_for("GET", str(scope.get("path", "")))
    return found is not None and found[1].page


def _to_sign_in(scope: Scope) -> Response:
    """303 to ``/login``, which sends the browser back to this page once signed in."""
    path = str(scope.get("path", "/"))
    query = scope.get("query_string", b"").decode("latin-1")
    back = f"{path}?{query}" if query else path
    return RedirectResponse("/login?" + urlencode({"next": back}), status_code=303)


def principal_of(request: Request) -> Principal | None:
    """The authenticated principal of a request (None when the server runs without auth)."""
    value = request.scope.get("state", {}).get("principal")
    return value if isinstance(value, Principal) else None


def auth_enabled(request: Request) -> bool:
    return bool(request.app.state.shipyard.settings.auth)


def actor_for(request: Request, claimed: str, *, field: str = "actor", required: bool = True) -> str:
    """The acting user of a request: the authenticated principal when auth is on (a different name
    in the body is refused: 403), else the name the body gives (which must not be empty when
    ``required``).

    Example:
        >>> actor = actor_for(request, body.actor)  # doctest: +SKIP
    """
    principal = principal_of(request)
    if principal is None:
        if auth_enabled(request):  # a public route never acts
            raise PermissionDenied("This route cannot act without an authenticated user")
        if not claimed and required:
            raise InvalidInput(f"'{field}' is required: name the user doing this (the server has no auth)")
        return claimed
    if claimed and claimed != principal.name:
        raise PermissionDenied(
            f"The request names {field} {claimed!r} but the token belongs to {principal.name!r}: "
            "a server with authentication acts only as the token's user",
            details={"claimed": claimed, "user": principal.name},
        )
    return principal.name


def author_for(request: Request, claimed: str) -> str:
    """The recorded author of something created (``created_by``, a run's ``user``): the principal
    when auth is on (the body's name is ignored), else the body's name."""
    principal = principal_of(request)
    return principal.name if principal is not None else claimed


def require_self_or_admin(request: Request, user: str) -> Principal:
    """The principal, if it is ``user`` or an admin (403 otherwise; 403 too without auth)."""
    principal = principal_of(request)
    if principal is None:
        raise PermissionDenied(
            "Users and tokens are managed on a server with authentication (shipyard server --auth), "
            "or locally with: shipyard users / shipyard tokens"
        )
    if principal.name != user and not principal.is_admin:
        raise PermissionDenied(f"{principal.name} may manage only their own tokens (this is {user}'s)")
    return principal
