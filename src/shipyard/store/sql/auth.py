"""Users, API tokens and grants in the SQL store (``AuthStore`` and ``VerifiesCredentials``).

Tokens are stored as SHA-256 digests only; a lookup is by digest (unique index) and the match is
confirmed with a constant-time comparison. Every change is audited in its own transaction under
``object_type`` ``security`` (``security.user_add``, ``security.token_create``, …); no secret or
password hash is ever written to the audit log.
"""

from __future__ import annotations

import contextlib
import functools
import json
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, text, update
from sqlalchemy import exc as sa_exc

from shipyard.auth import (
    GRANT_ROLES,
    OBJECT_TYPES,
    ApiToken,
    Grant,
    Principal,
    User,
    check_roles,
    check_scopes,
    digests_match,
    hash_password,
    looks_like_token,
    new_token,
    permissions_for,
    token_digest,
    verify_password,
)
from shipyard.entities import now_ms
from shipyard.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.names import check_name
from shipyard.store.sql import audit
from shipyard.store.sql import schema as t

__all__ = ["AuthMixin", "SECURITY_EVENTS"]

_U, _T, _G = t.users.c, t.api_tokens.c, t.grants.c
SECURITY_EVENTS = frozenset({"login", "login_failed", "auth_failed", "refused"})
LAST_USED_EVERY_MS = 60_000  # last_used_at is written at most once a minute per token
_ANY_SCOPE = ("read", "write", "approve", "admin", "serve")


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def _user(row: Any) -> User:
    return User(
        name=row.name,
        roles=tuple(json.loads(row.roles_json)),
        disabled=bool(row.disabled),
        created_at=int(row.created_at),
        last_login_at=row.last_login_at,
    )


def _token(row: Any) -> ApiToken:
    return ApiToken(
        id=row.id,
        user=row.user,
        name=row.name,
        scopes=tuple(json.loads(row.scopes_json)),
        created_at=int(row.created_at),
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


def _security(conn: Connection, actor: str, event: str, subject: str, after: Any, reason: str = "") -> None:
    audit.append(conn, actor, f"security.{event}", "security", subject, None, after, reason)


_VERIFY = text(
    'SELECT api_tokens.id, api_tokens."user", api_tokens.name, api_tokens.digest, api_tokens.scopes_json,'
    " api_tokens.created_at, api_tokens.expires_at, api_tokens.revoked_at, api_tokens.last_used_at,"
    " users.roles_json, users.disabled, users.created_at AS ucreated"
    ' FROM api_tokens JOIN users ON users.name = api_tokens."user" WHERE api_tokens.digest = :digest'
)
"""Every authenticated request runs this: as text it skips building and keying a ``select`` (half
of its cost, 0.5 → 0.25 ms of CPU on PostgreSQL). ``test_auth_store`` checks it reads the columns
of ``schema.api_tokens``."""


class AuthMixin:
    """The authentication methods of ``SqlStore`` (mixed in; uses its transaction helpers)."""

    def _write(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def _read(self, *, one_statement: bool = False) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    # -- users ----------------------------------------------------------------------------------
    def create_user(self, name: str, roles: Sequence[str], actor: str, password: str | None = None) -> User:
        check_name("User name", name, at_sign=True)
        roles_t = check_roles(list(roles))
        row = {
            "name": name,
            "roles_json": json.dumps(list(roles_t)),
            "disabled": False,
            "password_hash": hash_password(password) if password else None,
            "created_at": now_ms(),
        }
        try:
            with self._write() as conn:
                conn.execute(insert(t.users), row)
                _security(conn, actor, "user_add", f"user/{name}", {"roles": list(roles_t)})
        except sa_exc.IntegrityError:
            raise AlreadyExists(
                f"User '{name}' already exists (change it with: shipyard users ...)"
            ) from None
        return self.get_user(name)

    def get_user(self, name: str) -> User:
        with self._read() as conn:
            row = conn.execute(select(t.users).where(_U.name == name)).first()
        if row is None:
            raise NotFound(f"No user '{name}' (list them with: shipyard users ls)")
        return _user(row)

    def list_users(self) -> list[User]:
        with self._read() as conn:
            return [_user(r) for r in conn.execute(select(t.users).order_by(_U.name))]

    def has_users(self) -> bool:
        with self._read() as conn:
            return bool(conn.execute(select(func.count()).select_from(t.users)).scalar_one())

    def update_user(
        self,
        name: str,
        actor: str,
        *,
        roles: Sequence[str] | None = None,
        disabled: bool | None = None,
        password: str | None = None,
    ) -> User:
        changes: dict[str, Any] = {}
        after: dict[str, Any] = {}
        if roles is not None:
            roles_t = check_roles(list(roles))
            changes["roles_json"] = json.dumps(list(roles_t))
            after["roles"] = list(roles_t)
        if disabled is not None:
            changes["disabled"] = bool(disabled)
            after["disabled"] = bool(disabled)
        if password is not None:
            changes["password_hash"] = hash_password(password)
            after["password"] = "changed"  # never the hash
        if not changes:
            raise InvalidInput("Nothing to change: give roles, disabled or a password")
        with self._write() as conn:
            before = conn.execute(select(t.users).where(_U.name == name)).first()
            if before is None:
                raise NotFound(f"No user '{name}' (list them with: shipyard users ls)")
            conn.execute(update(t.users).where(_U.name == name).values(**changes))
            old = _user(before)
            audit.append(
                conn,
                actor,
                "security.user_update",
                "security",
                f"user/{name}",
                {"roles": list(old.roles), "disabled": old.disabled},
                after,
                "",
            )
        return self.get_user(name)

    # -- tokens ---------------------------------------------------------------------------------
    def create_token(
        self,
        user: str,
        name: str,
        actor: str,
        scopes: Sequence[str] | None = None,
        expires_at: int | None = None,
    ) -> tuple[ApiToken, str]:
        owner = self.get_user(user)
        if owner.disabled:
            raise InvalidInput(f"User '{user}' is disabled; enable them before creating a token")
        if scopes is None:  # everything the user's roles allow
            held = permissions_for(owner.roles)
            scopes = [s for s in _ANY_SCOPE if s in held or (s == "write" and "deploy" in held)]
            scopes = scopes or ["read"]
        scopes_t = check_scopes(list(scopes))
        if len(name) > 255:
            raise InvalidInput("A token name has at most 255 characters")
        now = now_ms()
        if expires_at is not None and expires_at <= now:
            raise InvalidInput("A token's expiry must lie in the future")
        secret, token_id = new_token(), secrets.token_hex(8)
        row = {
            "id": token_id,
            "user": user,
            "name": name,
            "digest": token_digest(secret),
            "scopes_json": json.dumps(list(scopes_t)),
            "created_at": now,
            "expires_at": expires_at,
        }
        with self._write() as conn:
            conn.execute(insert(t.api_tokens), row)
            _security(
                conn,
                actor,
                "token_create",
                f"token/{token_id}",
                {"user": user, "name": name, "scopes": list(scopes_t), "expires_at": expires_at},
            )
        return self._get_token(token_id), secret

    def add_token_secret(self, user: str, name: str, secret: str, actor: str) -> ApiToken:
        """Register a token whose secret the operator chose (the bootstrap admin token from
        ``admin_token``); all scopes of the user's roles, no expiry."""
        if len(secret) < 32 or not secret.isascii() or not secret.isprintable() or " " in secret:
            raise InvalidInput("A chosen token needs at least 32 printable ASCII characters and no spaces")
        if not secret.startswith("sy_"):
            raise InvalidInput("A chosen token must start with 'sy_' (e.g. sy_$(openssl rand -hex 32))")
        token_id = secrets.token_hex(8)
        owner = self.get_user(user)
        held = permissions_for(owner.roles)
        scopes = [s for s in _ANY_SCOPE if s in held or (s == "write" and "deploy" in held)] or ["read"]
        row = {
            "id": token_id,
            "user": user,
            "name": name,
            "digest": token_digest(secret),
            "scopes_json": json.dumps(scopes),
            "created_at": now_ms(),
        }
        with self._write() as conn:
            conn.execute(insert(t.api_tokens), row)
            _security(
                conn,
                actor,
                "token_create",
                f"token/{token_id}",
                {"user": user, "name": name, "scopes": scopes},
            )
        return self._get_token(token_id)

    def _get_token(self, token_id: str) -> ApiToken:
        with self._read() as conn:
            row = conn.execute(select(t.api_tokens).where(_T.id == token_id)).first()
        if row is None:
            raise NotFound(f"No token '{token_id}' (list them with: shipyard tokens ls)")
        return _token(row)

    def list_tokens(self, user: str | None = None) -> list[ApiToken]:
        stmt = select(t.api_tokens).order_by(_T.created_at, _T.id)
        if user is not None:
            stmt = stmt.where(_T.user == user)
        with self._read() as conn:
            return [_token(r) for r in conn.execute(stmt)]

    def revoke_token(self, token_id: str, actor: str) -> ApiToken:
        with self._write() as conn:
            row = conn.execute(select(t.api_tokens).where(_T.id == token_id)).first()
            if row is None:
                raise NotFound(f"No token '{token_id}' (list them with: shipyard tokens ls)")
            if row.revoked_at is None:
                conn.execute(update(t.api_tokens).where(_T.id == token_id).values(revoked_at=now_ms()))
                _security(conn, actor, "token_revoke", f"token/{token_id}", {"user": row.user})
        return self._get_token(token_id)

    # -- grants ---------------------------------------------------------------------------------
    def set_grant(self, user: str, object_type: str, object_id: str, role: str | None, actor: str) -> None:
        if object_type not in OBJECT_TYPES:
            raise InvalidInput(f"Grants are on {' or '.join(OBJECT_TYPES)}, got {object_type!r}")
        if role is not None and role not in GRANT_ROLES:
            raise InvalidInput(f"A grant's role is one of {', '.join(GRANT_ROLES)}, got {role!r}")
        if not object_id or len(object_id) > 512:
            raise InvalidInput("A grant needs the experiment's or model's id (at most 512 characters)")
        self.get_user(user)
        key = and_(_G.user == user, _G.object_type == object_type, _G.object_id == object_id)
        with self._write() as conn:
            conn.execute(delete(t.grants).where(key))
            if role is not None:
                conn.execute(
                    insert(t.grants),
                    {"user": user, "object_type": object_type, "object_id": object_id, "role": role},
                )
            _security(
                conn,
                actor,
                "grant" if role is not None else "grant_remove",
                f"grant/{object_type}/{object_id}/{user}",
                {"user": user, "object_type": object_type, "object_id": object_id, "role": role},
            )

    def list_grants(
        self, object_type: str | None = None, object_id: str | None = None, user: str | None = None
    ) -> list[Grant]:
        stmt = select(t.grants).order_by(_G.object_type, _G.object_id, _G.user)
        if object_type is not None:
            stmt = stmt.where(_G.object_type == object_type)
        if object_id is not None:
            stmt = stmt.where(_G.object_id == object_id)
        if user is not None:
            stmt = stmt.where(_G.user == user)
        with self._read(one_statement=True) as conn:
            return [Grant(r.user, r.object_type, r.object_id, r.role) for r in conn.execute(stmt)]

    # -- verification (the server's own database only) -----------------------------------------
    def verify_token(self, secret: str) -> tuple[User, ApiToken] | None:
        if not looks_like_token(secret):
            return None
        digest = token_digest(secret)
        with self._read(one_statement=True) as conn:
            row = conn.execute(_VERIFY, {"digest": digest}).first()
        if row is None or not digests_match(row.digest, digest):
            return None
        token = _token(row)
        now = now_ms()
        if not token.active(now) or row.disabled:
            return None
        user = User(token.user, tuple(json.loads(row.roles_json)), False, int(row.ucreated))
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY_MS:
            with self._write() as conn:
                conn.execute(update(t.api_tokens).where(_T.id == token.id).values(last_used_at=now))
        return user, token

    def check_token(self, secret: str) -> Principal | None:
        found = self.verify_token(secret)
        if found is None:
            return None
        user, token = found
        return Principal(user.name, user.roles, frozenset(token.scopes), token.id)

    def check_password(self, name: str, password: str) -> User | None:
        with self._read() as conn:
            row = conn.execute(select(t.users).where(_U.name == name)).first()
        if row is None or not row.password_hash:
            verify_password(_dummy_hash(), password)  # as slow as a real check: names do not leak by timing
            return None
        if not verify_password(row.password_hash, password) or row.disabled:
            return None
        with self._write() as conn:
            conn.execute(update(t.users).where(_U.name == name).values(last_login_at=now_ms()))
        return _user(row)

    def record_security_event(self, actor: str, event: str, subject: str, details: dict[str, Any]) -> None:
        if event not in SECURITY_EVENTS:
            raise InvalidInput(
                f"Unknown security event {event!r}; known: {', '.join(sorted(SECURITY_EVENTS))}"
            )
        with self._write() as conn:
            _security(conn, actor or "anonymous", event, subject[:512], details)
