"""Faces call the SDK (ARCHITECTURE.md): no CLI command, demo stage or server router reaches a store
through a client.

The rule, checked on the syntax tree: in ``shipyard/cli``, ``shipyard/demo`` and
``shipyard/server/routers`` the attribute ``.store`` may only be read from the server's own state
(``state.store``), which the routers use to serve the REST store API itself; everything else goes
through public SDK functions (``sy.list_model_versions``, ``sy.list_deployments``, ``client.list_audit`` …).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import shipyard

PACKAGE = Path(shipyard.__file__).parent
FACES = ["cli", "demo", "server/routers"]
ALLOWED_OWNERS = {"state"}  # the server's ServerState owns its store


def _face_modules() -> list[Path]:
    return sorted(p for face in FACES for p in (PACKAGE / face).rglob("*.py"))


def store_reaches(source: str) -> list[str]:
    """Every ``<expr>.store`` in ``source`` whose owner is not the server state, as ``line: code``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr == "store":
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in ALLOWED_OWNERS):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("path", _face_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_face_module_does_not_reach_into_a_client_store(path: Path) -> None:
    assert store_reaches(path.read_text()) == [], f"{path.relative_to(PACKAGE)}: call an SDK function instead"


@pytest.mark.parametrize(
    "code",
    [
        "client.store.list_deployments()",
        "get_state(ctx).client().store.get_contract('x')",
        "Client.from_stores(s, ctx.client.store, ctx.client.blobs)",
        "store = client.store",
    ],
)
def test_the_scan_finds_a_store_reached_through_a_client(code: str) -> None:
    assert store_reaches(code)


def test_the_scan_allows_the_servers_own_state_and_sdk_calls() -> None:
    code = "state.store.get_model_version(n, v)\nmanage.list_deployments(client=c)\nstore.list_runs()"
    assert store_reaches(code) == []


def test_there_are_face_modules_to_scan() -> None:
    assert {p.parent.name for p in _face_modules()} >= {"cli", "demo", "routers"}
