"""Who may call the admin routes (gc, purge, blob deletion, audit checkpoints) on a server without auth.

With auth on, ``shipyard.server.access`` has already required the ``admin`` permission of the
caller's token, and this guard lets the request through. Without auth, admin routes answer only to
clients on the loopback interface, or to anyone when the server was started with
``--allow-remote-admin`` (setting ``allow_remote_admin``). Everyone else gets 403
``permission_denied`` saying so. Note: a reverse proxy on the same host makes every request
look local; block ``/api/v1/admin`` and ``DELETE /api/v1/blobs`` at such a proxy.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import Depends, Request

from shipyard.errors import PermissionDenied
from shipyard.server.state import ServerState

__all__ = ["AdminOnly", "require_admin"]


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:  # a name, not an address: never trusted as local
        return False


async def require_admin(request: Request) -> None:
    """Allow loopback clients, or everyone when ``allow_remote_admin`` is set; else 403.

    Example:
        >>> @router.post("/admin/gc", dependencies=[AdminOnly])  # doctest: +SKIP
        ... def gc(): ...
    """
    state: ServerState = request.app.state.shipyard
    if state.settings.allow_remote_admin or state.settings.auth:
        return
    host = request.client.host if request.client is not None else None
    if _is_loopback(host):
        return
    raise PermissionDenied(
        f"{request.method} {request.url.path} is an admin route and answers only to clients on this "
        f"machine (loopback); the request came from {host or 'an unknown address'}. Run it on the "
        "server host, or start the server with --allow-remote-admin (setting allow_remote_admin) "
        "on a trusted network",
        details={"client": host},
    )


AdminOnly = Depends(require_admin)
AdminDep = Annotated[None, AdminOnly]
