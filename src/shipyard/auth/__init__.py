"""Identities for a team server: users, API tokens, passwords, roles, permissions and grants.

Nothing here talks to a database or to HTTP: the store keeps users, tokens (as digests) and
grants (``shipyard.store.base.AuthStore``); the tracking server decides every request from the
table in ``shipyard.server.access`` with :func:`allowed`; the model server checks the ``serve``
scope. This module is the one home of the rules they share:

- **Tokens** are random (``secrets.token_urlsafe``, 256 bits) with the prefix ``sy_`` so a
  leaked one is recognisable; only their SHA-256 digest is stored, compared in constant time.
- **Passwords** (for a web login) are hashed with argon2id (argon2-cffi's defaults).
- **Roles** grant permissions; a token's **scopes** narrow what its user may do with it.
- **Grants** give a user ``owner``, ``editor`` or ``reader`` on one experiment or model.

Single sign-on (OIDC) would plug in where a bearer credential becomes a :class:`Principal`
(``shipyard.server.access.authenticate``): validate the ID token with a kept library (authlib),
map its ``sub``/``groups`` claims to a user and roles, and return the same ``Principal``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from shipyard.errors import InvalidInput

__all__ = [
    "ApiToken",
    "FAILURE_WINDOW_S",
    "FailureLimiter",
    "GRANT_ROLES",
    "Grant",
    "MAX_FAILURES",
    "OBJECT_TYPES",
    "PERMISSIONS",
    "Principal",
    "ROLES",
    "ROLE_PERMISSIONS",
    "SCOPES",
    "SESSION_COOKIE",
    "TOKEN_PREFIX",
    "User",
    "bearer_credential",
    "check_roles",
    "check_scopes",
    "csrf_matches",
    "csrf_token",
    "digests_match",
    "hash_password",
    "looks_like_token",
    "new_token",
    "permissions_for",
    "session_credential",
    "token_digest",
    "verify_password",
]

TOKEN_PREFIX = "sy_"
"""Every Shipyard API token starts with this (secret scanners can find leaked ones)."""

MAX_TOKEN_LENGTH = 256
"""Longer bearer values are refused before any hashing or database work."""

ROLES: tuple[str, ...] = ("viewer", "scientist", "engineer", "approver", "admin")
"""The roles a user may hold (several at once)."""

PERMISSIONS: tuple[str, ...] = ("read", "write", "deploy", "approve", "admin", "serve")
"""What a route may require: see ``shipyard.server.access.RULES``."""

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "scientist": frozenset({"read", "write"}),
    "engineer": frozenset({"read", "write", "deploy", "serve"}),
    "approver": frozenset({"read", "approve"}),
    "admin": frozenset(PERMISSIONS),
}
"""Role → permissions. scientist: create and write experiments, runs, datasets, models;
engineer: also deployments and the model server; approver: approve or reject promotions;
admin: everything, including users, tokens, grants and policies."""

SCOPES: tuple[str, ...] = ("read", "write", "approve", "admin", "serve")
"""What a token may be limited to; a token's permissions are its user's, narrowed by its scopes."""

_SCOPE_OF: dict[str, str] = {
    "read": "read",
    "write": "write",
    "deploy": "write",
    "approve": "approve",
    "admin": "admin",
    "serve": "serve",
}

OBJECT_TYPES: tuple[str, ...] = ("experiment", "model")
GRANT_ROLES: tuple[str, ...] = ("owner", "editor", "reader")
GrantRole = Literal["owner", "editor", "reader"]


@dataclass(frozen=True)
class User:
    """A user of a team server (``password_hash`` never leaves the store)."""

    name: str
    roles: tuple[str, ...]
    disabled: bool = False
    created_at: int = 0
    last_login_at: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "roles": list(self.roles),
            "disabled": self.disabled,
            "created_at": self.created_at,
            "last_login_at": self.last_login_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> User:
        return cls(
            name=str(d["name"]),
            roles=tuple(d.get("roles", ())),
            disabled=bool(d.get("disabled", False)),
            created_at=int(d.get("created_at", 0)),
            last_login_at=d.get("last_login_at"),
        )


@dataclass(frozen=True)
class ApiToken:
    """A token's record (never its secret): who owns it, what it may do, until when."""

    id: str
    user: str
    name: str
    scopes: tuple[str, ...]
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None
    last_used_at: int | None = None

    def active(self, now_ms: int) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now_ms < self.expires_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "name": self.name,
            "scopes": list(self.scopes),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "last_used_at": self.last_used_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ApiToken:
        return cls(
            id=str(d["id"]),
            user=str(d["user"]),
            name=str(d.get("name", "")),
            scopes=tuple(d.get("scopes", ())),
            created_at=int(d.get("created_at", 0)),
            expires_at=d.get("expires_at"),
            revoked_at=d.get("revoked_at"),
            last_used_at=d.get("last_used_at"),
        )


@dataclass(frozen=True)
class Grant:
    """``user`` holds ``role`` (owner, editor, reader) on one experiment or model."""

    user: str
    object_type: str
    object_id: str
    role: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Grant:
        return cls(str(d["user"]), str(d["object_type"]), str(d["object_id"]), str(d["role"]))


@dataclass(frozen=True)
class Principal:
    """Who a request is: a user, the permissions its roles give, narrowed by its token's scopes."""

    name: str
    roles: tuple[str, ...]
    scopes: frozenset[str] = field(default_factory=lambda: frozenset(SCOPES))
    token_id: str | None = None

    @property
    def permissions(self) -> frozenset[str]:
        return frozenset(p for p in permissions_for(self.roles) if _SCOPE_OF[p] in self.scopes)

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    @property
    def is_admin(self) -> bool:
        return self.can("admin")


def permissions_for(roles: tuple[str, ...] | list[str] | frozenset[str]) -> frozenset[str]:
    """The union of the permissions of ``roles`` (unknown roles give nothing)."""
    out: set[str] = set()
    for role in roles:
        out |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(out)


def check_roles(roles: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``roles`` as a sorted tuple, or InvalidInput naming the unknown ones."""
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise InvalidInput(f"Unknown role(s) {', '.join(unknown)}; roles are: {', '.join(ROLES)}")
    return tuple(sorted(set(roles)))


def check_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``scopes`` as a sorted tuple, or InvalidInput naming the unknown ones."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise InvalidInput(f"Unknown token scope(s) {', '.join(unknown)}; scopes are: {', '.join(SCOPES)}")
    if not scopes:
        raise InvalidInput(f"A token needs at least one scope ({', '.join(SCOPES)})")
    return tuple(sorted(set(scopes)))


def new_token() -> str:
    """A fresh secret token: ``sy_`` + 43 URL-safe characters (256 random bits).

    Example:
        >>> new_token().startswith("sy_")
        True
    """
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def looks_like_token(value: str) -> bool:
    """Cheap shape check before any work: the prefix, a sane length, printable ASCII only."""
    return (
        value.startswith(TOKEN_PREFIX)
        and 16 <= len(value) <= MAX_TOKEN_LENGTH
        and value.isascii()
        and value.isprintable()
        and " " not in value
    )


def token_digest(token: str) -> str:
    """The SHA-256 hex digest stored for a token (tokens are high-entropy: no salt or slow hash needed).

    Example:
        >>> len(token_digest("sy_example"))
        64
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def digests_match(a: str, b: str) -> bool:
    """Constant-time comparison of two digests."""
    return hmac.compare_digest(a.encode(), b.encode())


def _hasher() -> Any:
    from argon2 import PasswordHasher  # imported when used: the CLI's start stays fast

    return PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (with its own salt and parameters)."""
    if len(password) < 8:
        raise InvalidInput("A password needs at least 8 characters")
    return str(_hasher().hash(password))


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash`` (False for any mismatch or malformed hash)."""
    from argon2.exceptions import Argon2Error, InvalidHashError

    if not stored_hash:
        return False
    try:
        return bool(_hasher().verify(stored_hash, password))
    except (Argon2Error, InvalidHashError):
        return False


MAX_FAILURES = 10
"""Failed authentications one client address may make per :data:`FAILURE_WINDOW_S` (per worker)."""
FAILURE_WINDOW_S = 60.0


class FailureLimiter:
    """Failed authentications per client address in a sliding window (in-process, thread-safe)."""

    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = FAILURE_WINDOW_S) -> None:
        self.max_failures, self.window_s = max_failures, window_s
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails.setdefault(key, deque())
        while q and now - q[0] > self.window_s:
            q.popleft()
        return q

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again (0: it may now)."""
        now = time.monotonic()
        with self._lock:
            q = self._recent(key, now)
            if len(q) < self.max_failures:
                if not q:
                    self._fails.pop(key, None)
                return 0.0
            return max(0.0, self.window_s - (now - q[0]))

    def fail(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._fails) > 100_000:  # bound memory under a spray of addresses
                self._fails.clear()
            self._recent(key, now).append(now)


def bearer_credential(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The bearer credential of a request: None when there is no Authorization header, "" when it
    is not a well-formed ``Bearer <token>`` (never raises, whatever the bytes)."""
    values = [v for k, v in headers if k.lower() == b"authorization"]
    if not values:
        return None
    if len(values) > 1 or len(values[0]) > 1024:
        return ""
    try:
        text = values[0].decode("ascii")
    except UnicodeDecodeError:
        return ""
    scheme, _, credential = text.strip().partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return credential.strip()


SESSION_COOKIE = "shipyard_session"
"""The web UI's sign-in cookie: an API token of the signed-in user (HttpOnly, SameSite=Strict)."""


def session_credential(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The session token in a request's ``Cookie`` header, or None (never raises, whatever the bytes).

    Example:
        >>> session_credential([(b"cookie", b"a=1; shipyard_session=sy_abc")])
        'sy_abc'
    """
    for key, value in headers:
        if key.lower() != b"cookie" or len(value) > 8192:
            continue
        try:
            text = value.decode("latin-1")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes any bytes
            continue
        for part in text.split(";"):
            name, sep, found = part.strip().partition("=")
            if sep and name == SESSION_COOKIE and found:
                return found.strip().strip('"')[:MAX_TOKEN_LENGTH]
    return None


def csrf_token(session: str) -> str:
    """The anti-forgery token a page's forms carry for the session ``session``: derived from the
    session's secret, which only the signed-in browser holds (its cookie is HttpOnly), so a page on
    another site can neither read nor compute it.

    Example:
        >>> len(csrf_token("sy_abc"))
        43
    """
    digest = hmac.new(session.encode(), b"shipyard-csrf", hashlib.sha256).digest()
    import base64

    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_matches(session: str | None, given: str | None) -> bool:
    """Whether ``given`` is the anti-forgery token of ``session`` (constant time)."""
    if not session or not given:
        return False
    return hmac.compare_digest(csrf_token(session).encode(), given.encode("utf-8", "replace"))
