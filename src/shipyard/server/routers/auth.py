"""Users, API tokens, grants and sign-in (``/api/v1/auth``); who may call each route is decided by
``shipyard.server.access.RULES`` (admins manage users and grants; everyone their own tokens)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import BaseModel, Field

from shipyard.auth import GRANT_ROLES, OBJECT_TYPES, ROLES, SCOPES
from shipyard.entities import now_ms
from shipyard.errors import InvalidInput, PermissionDenied, RateLimited, Unauthenticated
from shipyard.server.access import principal_of, require_self_or_admin
from shipyard.server.errors import ERROR_RESPONSES
from shipyard.server.schemas import _In
from shipyard.server.state import StoreDep
from shipyard.store import Store
from shipyard.store.base import AuthStore, VerifiesCredentials

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], responses=ERROR_RESPONSES)

UserName = Annotated[str, Field(min_length=1, max_length=255)]
Role = Literal["viewer", "scientist", "engineer", "approver", "admin"]
Scope = Literal["read", "write", "approve", "admin", "serve"]
assert set(Role.__args__) == set(ROLES) and set(Scope.__args__) == set(SCOPES)  # type: ignore[attr-defined]
MAX_TOKEN_DAYS = 3650


def _auth(store: Store) -> AuthStore:
    if not isinstance(store, AuthStore):  # pragma: no cover - the server's store is always a SqlStore
        raise InvalidInput(f"The store {store.uri} keeps no users")
    return store


def _me(request: Request) -> str:
    principal = principal_of(request)
    if principal is None:
        raise PermissionDenied("This server runs without authentication (start it with --auth)")
    return principal.name


class LoginIn(_In):
    user: UserName
    password: Annotated[str, Field(min_length=1, max_length=1024)]
    token_name: Annotated[str, Field(max_length=255)] = "login"
    expires_in_days: Annotated[float, Field(gt=0, le=MAX_TOKEN_DAYS)] = 30


class TokenOut(BaseModel):
    token: str
    record: dict[str, Any]


class UserIn(_In):
    name: UserName
    roles: Annotated[list[Role], Field(max_length=len(ROLES))] = []
    password: Annotated[str, Field(min_length=8, max_length=1024)] | None = None


class UserPatch(_In):
    roles: Annotated[list[Role], Field(max_length=len(ROLES))] | None = None
    disabled: bool | None = None
    password: Annotated[str, Field(min_length=8, max_length=1024)] | None = None


class TokenIn(_In):
    user: UserName | None = None
    name: Annotated[str, Field(max_length=255)] = ""
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=len(SCOPES))] | None = None
    expires_in_days: Annotated[float, Field(gt=0, le=MAX_TOKEN_DAYS)] | None = None


class GrantIn(_In):
    user: UserName
    object_type: Literal["experiment", "model"]
    object_id: Annotated[str, Field(min_length=1, max_length=512)]
    role: Literal["owner", "editor", "reader"] | None
    assert set(OBJECT_TYPES) == {"experiment", "model"} and set(GRANT_ROLES) == {"owner", "editor", "reader"}


class Items(BaseModel):
    items: list[dict[str, Any]]


def _expiry(days: float | None) -> int | None:
    return None if days is None else now_ms() + int(days * 86_400_000)


@router.post("/login", status_code=status.HTTP_201_CREATED)
def login(body: LoginIn, store: StoreDep, request: Request) -> TokenOut:
    """Sign in with a password: a new token (shown once) for that user, scoped to their roles.

    Failed attempts are limited per client address and audited (``security.login_failed``).
    """
    limiter = request.app.state.access_limiter
    client = request.client.host if request.client is not None else "unknown"
    if limiter.retry_after(client) > 0:
        raise RateLimited(
            f"Too many failed sign-ins from {client}; retry in a minute", details={"retry_after_s": 60}
        )
    if not isinstance(store, VerifiesCredentials):  # pragma: no cover
        raise Unauthenticated("This server cannot check passwords")
    user = store.check_password(body.user, body.password)
    if user is None:
        limiter.fail(client)
        store.record_security_event("anonymous", "login_failed", f"user/{body.user}", {"client": client})
        raise Unauthenticated("Wrong user name or password (or the user is disabled)")
    store.record_security_event(user.name, "login", f"user/{user.name}", {"client": client})
    record, secret = _auth(store).create_token(
        user.name, body.token_name, user.name, expires_at=_expiry(body.expires_in_days)
    )
    return TokenOut(token=secret, record=record.to_dict())


@router.get("/whoami")
def whoami(request: Request) -> dict[str, Any]:
    """The authenticated user: name, roles, the token's scopes and permissions."""
    principal = principal_of(request)
    if principal is None:
        return {"name": None, "auth": False}
    return {
        "name": principal.name,
        "roles": list(principal.roles),
        "scopes": sorted(principal.scopes),
        "permissions": sorted(principal.permissions),
        "token_id": principal.token_id,
        "auth": True,
    }


@router.get("/users")
def list_users(store: StoreDep) -> Items:
    return Items(items=[u.to_dict() for u in _auth(store).list_users()])


@router.post("/users", status_code=status.HTTP_201_CREATED)
def create_user(body: UserIn, store: StoreDep, request: Request) -> dict[str, Any]:
    """Add a user with roles (and optionally a password for signing in); audited."""
    return _auth(store).create_user(body.name, body.roles, _me(request), body.password).to_dict()


@router.get("/users/{name}")
def get_user(name: str, store: StoreDep) -> dict[str, Any]:
    return _auth(store).get_user(name).to_dict()


@router.patch("/users/{name}")
def update_user(name: str, body: UserPatch, store: StoreDep, request: Request) -> dict[str, Any]:
    """Change roles, disable or enable, or set the password; audited."""
    me = _me(request)
    if name == me and (body.disabled or (body.roles is not None and "admin" not in body.roles)):
        raise InvalidInput("You cannot disable yourself or drop your own admin role; ask another admin")
    user = _auth(store).update_user(
        name, me, roles=body.roles, disabled=body.disabled, password=body.password
    )
    return user.to_dict()


@router.get("/tokens")
def list_tokens(
    store: StoreDep, request: Request, user: Annotated[str | None, Query(max_length=255)] = None
) -> Items:
    """Your tokens (an admin: anyone's, or all with no ``user``); never their secrets."""
    principal = principal_of(request)
    if principal is None or not principal.is_admin:
        user = require_self_or_admin(request, user or _me(request)).name
    return Items(items=[t.to_dict() for t in _auth(store).list_tokens(user)])


@router.post("/tokens", status_code=status.HTTP_201_CREATED)
def create_token(body: TokenIn, store: StoreDep, request: Request) -> TokenOut:
    """A new token (its secret is in this answer only). For yourself, scopes at most your own
    token's; an admin may create one for any user."""
    principal = require_self_or_admin(request, body.user or _me(request))
    owner = body.user or principal.name
    scopes: list[str] | None = list(body.scopes) if body.scopes is not None else None
    if owner == principal.name and not principal.is_admin:
        allowed = set(principal.scopes)
        scopes = scopes if scopes is not None else sorted(allowed)
        wider = sorted(set(scopes) - allowed)
        if wider:
            raise PermissionDenied(f"Your token cannot create a token with wider scopes ({', '.join(wider)})")
    record, secret = _auth(store).create_token(
        owner, body.name, principal.name, scopes=scopes, expires_at=_expiry(body.expires_in_days)
    )
    return TokenOut(token=secret, record=record.to_dict())


@router.post("/tokens/{token_id}/revoke")
def revoke_token(
    token_id: Annotated[str, Path(max_length=32)], store: StoreDep, request: Request
) -> dict[str, Any]:
    """Revoke a token at once (every worker refuses it from the next request); audited."""
    auth = _auth(store)
    owner = next((t.user for t in auth.list_tokens() if t.id == token_id), None)
    if owner is None:
        raise InvalidInput(f"No token '{token_id}' (list them with: shipyard tokens ls)")
    principal = require_self_or_admin(request, owner)
    return auth.revoke_token(token_id, principal.name).to_dict()


@router.get("/grants")
def list_grants(
    store: StoreDep,
    object_type: Annotated[Literal["experiment", "model"] | None, Query()] = None,
    object_id: Annotated[str | None, Query(max_length=512)] = None,
    user: Annotated[str | None, Query(max_length=255)] = None,
) -> Items:
    return Items(items=[g.to_dict() for g in _auth(store).list_grants(object_type, object_id, user)])


@router.put("/grants")
def set_grant(body: GrantIn, store: StoreDep, request: Request) -> dict[str, Any]:
    """Give a user owner, editor or reader on one experiment (by id) or model (by name); ``role:
    null`` removes it. Audited."""
    _auth(store).set_grant(body.user, body.object_type, body.object_id, body.role, _me(request))
    return {
        "user": body.user,
        "object_type": body.object_type,
        "object_id": body.object_id,
        "role": body.role,
    }
