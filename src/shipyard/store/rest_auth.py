"""Users, tokens and grants of ``RestStore`` (mixed in): each call maps onto a route of
``server/routers/auth.py``, which only an ``admin`` token may call (a user may manage their own
tokens). The ``actor`` arguments are not sent: the server records the token's user."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from shipyard.auth import ApiToken, Grant, Principal, User, looks_like_token
from shipyard.entities import now_ms
from shipyard.errors import Unauthenticated

__all__ = ["RestAuthMixin"]

API = "/api/v1/auth"


def _days(expires_at: int | None) -> float | None:
    return None if expires_at is None else max((expires_at - now_ms()) / 86_400_000, 1e-6)


class RestAuthMixin:
    """Auth calls over HTTP."""

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        raise NotImplementedError

    def _get(self, path: str, **params: Any) -> Any:
        raise NotImplementedError

    def _post(self, path: str, body: Any) -> Any:
        raise NotImplementedError

    def whoami(self) -> dict[str, Any]:
        """The server's view of this client's token (name, roles, scopes, permissions)."""
        return dict(self._get(f"{API}/whoami"))

    def check_token(self, secret: str) -> Principal | None:
        """Ask the server whose ``secret`` is (one request; None when it answers 401)."""
        if not looks_like_token(secret):
            return None
        try:
            answer = self._request("GET", f"{API}/whoami", headers={"Authorization": f"Bearer {secret}"})
        except Unauthenticated:
            return None
        me = answer.json()
        if not me.get("auth"):
            return None
        return Principal(str(me["name"]), tuple(me["roles"]), frozenset(me["scopes"]), me.get("token_id"))

    def login(self, user: str, password: str, token_name: str = "login", expires_in_days: float = 30) -> str:
        """Sign in with a password; the new token's secret (the caller stores it)."""
        body = {
            "user": user,
            "password": password,
            "token_name": token_name,
            "expires_in_days": expires_in_days,
        }
        return str(self._post(f"{API}/login", body)["token"])

    def create_user(self, name: str, roles: Sequence[str], actor: str, password: str | None = None) -> User:
        body = {"name": name, "roles": list(roles), "password": password}
        return User.from_dict(self._post(f"{API}/users", body))

    def get_user(self, name: str) -> User:
        return User.from_dict(self._get(f"{API}/users/{quote(name, safe='')}"))

    def list_users(self) -> list[User]:
        return [User.from_dict(u) for u in self._get(f"{API}/users")["items"]]

    def update_user(
        self,
        name: str,
        actor: str,
        *,
        roles: Sequence[str] | None = None,
        disabled: bool | None = None,
        password: str | None = None,
    ) -> User:
        body: dict[str, Any] = {}
        if roles is not None:
            body["roles"] = list(roles)
        if disabled is not None:
            body["disabled"] = disabled
        if password is not None:
            body["password"] = password
        answer = self._request("PATCH", f"{API}/users/{quote(name, safe='')}", body=body)
        return User.from_dict(answer.json())

    def create_token(
        self,
        user: str,
        name: str,
        actor: str,
        scopes: Sequence[str] | None = None,
        expires_at: int | None = None,
    ) -> tuple[ApiToken, str]:
        body = {
            "user": user or None,
            "name": name,
            "scopes": list(scopes) if scopes is not None else None,
            "expires_in_days": _days(expires_at),
        }
        answer = self._post(f"{API}/tokens", body)
        return ApiToken.from_dict(answer["record"]), str(answer["token"])

    def list_tokens(self, user: str | None = None) -> list[ApiToken]:
        params = {"user": user} if user is not None else {}
        return [ApiToken.from_dict(t) for t in self._get(f"{API}/tokens", **params)["items"]]

    def revoke_token(self, token_id: str, actor: str) -> ApiToken:
        return ApiToken.from_dict(self._post(f"{API}/tokens/{quote(token_id, safe='')}/revoke", {}))

    def set_grant(self, user: str, object_type: str, object_id: str, role: str | None, actor: str) -> None:
        body = {"user": user, "object_type": object_type, "object_id": object_id, "role": role}
        self._request("PUT", f"{API}/grants", body=body)

    def list_grants(
        self, object_type: str | None = None, object_id: str | None = None, user: str | None = None
    ) -> list[Grant]:
        params = {
            k: v for k, v in {"object_type": object_type, "object_id": object_id, "user": user}.items() if v
        }
        return [Grant.from_dict(g) for g in self._get(f"{API}/grants", **params)["items"]]
