"""The web UI: server-rendered pages over the store's read functions (layer 5, no business logic).

``shipyard server`` serves it at ``/``; ``shipyard ui`` opens it on the local store with no set-up.
Pages are Jinja2 templates with autoescaping on (everything a user typed is shown as text) and
read without JavaScript. See ``docs/ui.md``.
"""

from __future__ import annotations

from shipyard.ui.core import STATIC_DIR
from shipyard.ui.pages import build_router

__all__ = ["STATIC_DIR", "build_router"]
