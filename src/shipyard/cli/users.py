"""``shipyard users …``, ``shipyard tokens …`` and ``shipyard login``: the users, API tokens and grants
of a team server.

Against a server (``SHIPYARD_TRACKING_URI=http://…``) these call its ``/api/v1/auth`` routes with
your token (an admin's for users and grants); against the database itself (SQLite or PostgreSQL,
on the server's host) they change it directly and audit under ``SHIPYARD_USER``. Tokens are
printed once, when created, and never again.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from shipyard.auth import GRANT_ROLES, ROLES, SCOPES
from shipyard.cli import render
from shipyard.cli.options import JsonOption
from shipyard.cli.state import get_state
from shipyard.config import credentials_path, load_settings, store_token
from shipyard.entities import now_ms
from shipyard.errors import ConfigError, InvalidInput
from shipyard.store import AuthStore, open_store

__all__ = ["login", "tokens_app", "users_app"]

users_app = typer.Typer(no_args_is_help=True, help="Manage the users of a team server (roles, grants).")
tokens_app = typer.Typer(no_args_is_help=True, help="Create, list and revoke API tokens.")

RoleOption = Annotated[
    list[str] | None,
    typer.Option(
        "--role", "-r", help=f"A role ({', '.join(ROLES)}); repeat for several.", show_default=False
    ),
]


@contextmanager
def _auth_store(ctx: typer.Context) -> Iterator[tuple[AuthStore, str]]:
    """The store that keeps users (the server's API or the database itself) and the acting user
    (against a server: "", the server records the token's user)."""
    settings = get_state(ctx).settings()
    store = open_store(settings.tracking_uri, settings)
    try:
        if not isinstance(store, AuthStore):  # pragma: no cover - both backends are AuthStores
            raise ConfigError(f"The store {settings.tracking_uri} keeps no users")
        yield store, "" if settings.is_remote else settings.user
    finally:
        store.close()


def _password(prompt: bool, from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if prompt:
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    return None


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name (e.g. an e-mail address).")],
    role: RoleOption = None,
    password: Annotated[
        bool, typer.Option("--password", help="Prompt for a password (web sign-in).")
    ] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Add a user with roles.

    Examples:

      shipyard users add ann@example.com --role scientist
      shipyard users add bob --role approver --role viewer --password
    """
    with _auth_store(ctx) as (store, actor):
        user = store.create_user(name, role or [], actor, _password(password, password_stdin))
    if as_json:
        render.print_json(user.to_dict())
    else:
        render.say(f"Added user {user.name} with roles {', '.join(user.roles) or 'none'}")


@users_app.command("ls")
def users_ls(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List users with their roles, state and last sign-in.

    Examples:

      shipyard users ls --json
    """
    with _auth_store(ctx) as (store, _actor):
        users = store.list_users()
    if as_json:
        render.print_json([u.to_dict() for u in users])
        return
    table = render.make_table("name", "roles", "state", "created", "last login")
    for u in users:
        state = "disabled" if u.disabled else "active"
        table.add_row(
            *render.cells(
                [
                    u.name,
                    ", ".join(u.roles),
                    state,
                    render.fmt_time(u.created_at),
                    render.fmt_time(u.last_login_at),
                ]
            )
        )
    render.show(table)


@users_app.command("disable")
def users_disable(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name.")],
    enable: Annotated[bool, typer.Option("--enable", help="Enable the user again instead.")] = False,
) -> None:
    """Disable a user: their tokens stop working at once (or --enable them again).

    Examples:

      shipyard users disable ann@example.com
    """
    with _auth_store(ctx) as (store, actor):
        store.update_user(name, actor, disabled=not enable)
    render.say(f"{'Enabled' if enable else 'Disabled'} user {name}")


@users_app.command("set-roles")
def users_set_roles(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="User name.")], role: RoleOption = None
) -> None:
    """Replace a user's roles (audited as a permission change).

    Examples:

      shipyard users set-roles ann@example.com --role scientist --role engineer
    """
    with _auth_store(ctx) as (store, actor):
        user = store.update_user(name, actor, roles=role or [])
    render.say(f"{user.name} now holds {', '.join(user.roles) or 'no roles'}")


@users_app.command("grant")
def users_grant(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option("--role", help=f"{', '.join(GRANT_ROLES)}, or none to remove.")],
    experiment: Annotated[str | None, typer.Option("--experiment", help="Experiment id.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Registered model name.")] = None,
) -> None:
    """Give a user owner, editor or reader on one experiment or model.

    Once an object has grants, only its owners and editors (and admins) may write to it.

    Examples:

      shipyard users grant bob --model churn --role editor
      shipyard users grant bob --experiment 3 --role none
    """
    if (experiment is None) == (model is None):
        raise InvalidInput("Give exactly one of --experiment ID or --model NAME")
    kind, oid = ("experiment", experiment) if experiment is not None else ("model", model)
    assert oid is not None
    with _auth_store(ctx) as (store, actor):
        store.set_grant(name, kind, oid, None if role == "none" else role, actor)
    render.say(f"{name}: {role} on {kind} {oid}")


@users_app.command("import-roles")
def users_import_roles(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Roles file (role: [users]).", exists=True, dir_okay=False)],
) -> None:
    """Import a roles file (the local roles_file setting) into the server's users, once.

    A server with auth also does this by itself on its first start when roles_file is set.

    Examples:

      shipyard users import-roles roles.yaml
    """
    from shipyard.registry.policy import load_roles
    from shipyard.server.bootstrap import import_roles

    roles = load_roles(load_settings(roles_file=str(file)))
    with _auth_store(ctx) as (store, actor):
        names = import_roles(store, roles, actor)
    render.say(f"Imported {len(names)} user(s) from {file}")


@tokens_app.command("create")
def tokens_create(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", help="Whose token. Default: yours.")] = None,
    name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "",
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope", help=f"Limit it ({', '.join(SCOPES)}); repeat. Default: all your roles allow."
        ),
    ] = None,
    expires_days: Annotated[
        float | None, typer.Option("--expires-days", min=0.0001, help="Expire after.")
    ] = 90,
    as_json: JsonOption = False,
) -> None:
    """Create an API token; its secret is printed this once (only a digest is stored).

    Examples:

      shipyard tokens create --name ci --scope read --scope write --expires-days 30
      shipyard tokens create --user ann@example.com --name laptop
    """
    expires_at = None if expires_days is None else now_ms() + int(expires_days * 86_400_000)
    with _auth_store(ctx) as (store, actor):
        record, secret = store.create_token(user or actor, name, actor, scope or None, expires_at)
    if as_json:
        render.print_json({"token": secret, "record": record.to_dict()})
        return
    render.say(f"Token {record.id} for {record.user} (scopes {', '.join(record.scopes)}); shown once:")
    typer.echo(secret)


@tokens_app.command("ls")
def tokens_ls(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List tokens (never their secrets): scopes, expiry, revocation and last use.

    Examples:

      shipyard tokens ls --user ann@example.com
    """
    with _auth_store(ctx) as (store, _actor):
        found = store.list_tokens(user)
    if as_json:
        render.print_json([t.to_dict() for t in found])
        return
    table = render.make_table("id", "user", "name", "scopes", "expires", "revoked", "last used")
    for t in found:
        table.add_row(
            *render.cells(
                [
                    t.id,
                    t.user,
                    t.name,
                    ", ".join(t.scopes),
                    render.fmt_time(t.expires_at),
                    render.fmt_time(t.revoked_at),
                    render.fmt_time(t.last_used_at),
                ]
            )
        )
    render.show(table)


@tokens_app.command("revoke")
def tokens_revoke(ctx: typer.Context, token_id: Annotated[str, typer.Argument(help="Token id.")]) -> None:
    """Revoke a token: every server worker refuses it from the next request.

    Examples:

      shipyard tokens revoke 3f9c2a71d0e4b5a6
    """
    with _auth_store(ctx) as (store, actor):
        record = store.revoke_token(token_id, actor)
    render.say(f"Revoked token {record.id} of {record.user}")


def login(
    ctx: typer.Context,
    server: Annotated[
        str | None,
        typer.Option("--server", metavar="URL", help="Default: the tracking URI.", show_default=False),
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="Sign in with this user's password.")] = None,
    token: Annotated[
        bool, typer.Option("--token", help="Paste an existing token (read from stdin) instead of a password.")
    ] = False,
    expires_days: Annotated[float, typer.Option("--expires-days", min=0.0001, help="Token lifetime.")] = 30,
) -> None:
    """Sign in to a Shipyard server and keep the token in your credentials file (mode 0600).

    Afterwards every client on this machine (SDK, CLI) sends it to that server.

    Examples:

      shipyard login --server https://shipyard.example.com --user ann@example.com
      echo "$TOKEN" | shipyard login --server http://tracking:5000 --token
    """
    import httpx

    from shipyard.wire.shape import error_from_response

    settings = get_state(ctx).settings()
    uri = (server or settings.tracking_uri).rstrip("/")
    if not uri.startswith(("http://", "https://")):
        raise ConfigError(f"shipyard login needs a server URL (--server http(s)://…), got {uri!r}")
    with httpx.Client(base_url=uri, timeout=settings.http_timeout) as http:
        if token:
            secret = sys.stdin.readline().strip()
        else:
            name = user or typer.prompt("User")
            password = str(typer.prompt("Password", hide_input=True))
            day = dt.datetime.now().strftime("%Y-%m-%d")
            body = {
                "user": name,
                "password": password,
                "token_name": f"login {day}",
                "expires_in_days": expires_days,
            }
            answer = http.post("/api/v1/auth/login", json=body)
            if answer.is_error:
                raise error_from_response(answer, uri)
            secret = str(answer.json()["token"])
        answer = http.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {secret}"})
        if answer.is_error:
            raise error_from_response(answer, uri)
        me = answer.json()
    if not me.get("auth"):
        raise ConfigError(f"The server {uri} runs without authentication; there is nothing to sign in to")
    path = store_token(uri, secret, credentials_path(settings.credentials_file))
    render.say(
        f"Signed in to {uri} as {me['name']} (roles {', '.join(me.get('roles', []))}); token kept in {path}"
    )
