"""First start of a server with auth: import the roles file into users, create the admin and its token.

Runs once, in ``serve`` before the workers start, and only while the store has no users: the
roles file's users become store users with those roles (roles the server does not know are
skipped, with a warning), and a user ``admin`` gets the ``admin`` role and one token — the
``admin_token`` setting (``SHIPYARD_ADMIN_TOKEN``), the content of ``admin_token_file`` when that
file exists, or a fresh token that is written to ``admin_token_file`` (mode 0600) or else printed
once on standard error. The token is never logged.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO

from shipyard.auth import ROLES, new_token
from shipyard.config import Settings
from shipyard.errors import ConfigError
from shipyard.registry.policy import load_roles
from shipyard.store import AuthStore, Store, VerifiesCredentials

__all__ = ["ADMIN_USER", "bootstrap_auth", "import_roles"]

ADMIN_USER = "admin"
SYSTEM_ACTOR = "shipyard-bootstrap"


def import_roles(
    store: AuthStore, roles: dict[str, set[str]], actor: str, out: TextIO = sys.stderr
) -> list[str]:
    """Create or update users from a role → users mapping (the roles file); returns the names touched.

    A user already in the store gets the imported roles added to theirs.
    """
    by_user: dict[str, set[str]] = {}
    for role, users in roles.items():
        if role not in ROLES:
            print(
                f"shipyard: skipping role '{role}' of the roles file: the server knows {', '.join(ROLES)}",
                file=out,
            )
            continue
        for user in users:
            by_user.setdefault(user, set()).add(role)
    existing = {u.name: u for u in store.list_users()}
    for name, user_roles in sorted(by_user.items()):
        if name in existing:
            merged = sorted(set(existing[name].roles) | user_roles)
            store.update_user(name, actor, roles=merged)
        else:
            store.create_user(name, sorted(user_roles), actor)
    return sorted(by_user)


def _chosen_token(settings: Settings) -> str | None:
    if settings.admin_token:
        return settings.admin_token.strip()
    if settings.admin_token_file and Path(settings.admin_token_file).is_file():
        return Path(settings.admin_token_file).read_text().strip()
    return None


def bootstrap_auth(store: Store, settings: Settings, out: TextIO = sys.stderr) -> bool:
    """Set up users on the first start with auth; True when it did (the store had no users)."""
    if not isinstance(store, AuthStore) or not isinstance(store, VerifiesCredentials):
        raise ConfigError(f"The store {store.uri} cannot keep users")
    if store.list_users():
        return False
    if settings.roles_file:
        names = import_roles(store, load_roles(settings), SYSTEM_ACTOR, out)
        print(f"shipyard: imported {len(names)} user(s) from the roles file {settings.roles_file}", file=out)
    if ADMIN_USER in {u.name for u in store.list_users()}:
        store.update_user(
            ADMIN_USER, SYSTEM_ACTOR, roles=sorted({*store.get_user(ADMIN_USER).roles, "admin"})
        )
    else:
        store.create_user(ADMIN_USER, ["admin"], SYSTEM_ACTOR)
    chosen = _chosen_token(settings)
    if chosen is not None:
        store.add_token_secret(ADMIN_USER, "bootstrap", chosen, SYSTEM_ACTOR)
        print("shipyard: created user 'admin' with the configured admin token", file=out)
        return True
    secret = new_token()
    store.add_token_secret(ADMIN_USER, "bootstrap", secret, SYSTEM_ACTOR)
    if settings.admin_token_file:
        path = Path(settings.admin_token_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secret + "\n")
        print(f"shipyard: created user 'admin'; its token is in {path} (mode 0600)", file=out)
    else:
        print(
            "shipyard: created user 'admin'. Its token is shown this once; keep it now:\n\n"
            f"    {secret}\n\n"
            "Use it with: export SHIPYARD_TOKEN=<token>   (or: shipyard login --token)",
            file=out,
        )
    out.flush()
    return True
