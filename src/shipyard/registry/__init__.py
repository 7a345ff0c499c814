"""The model registry: registered models and versions, flavors, signatures, evaluation, aliases,
promotion policies with gates and four-eyes approvals, safe loading and packaging (layer 3).

The SDK surface is ``shipyard.register_model``, ``load_model``, ``evaluate``, ``promote_model`` and
friends (see ``docs/models.md``); the modules here are imported on first use, so this package stays
cheap to import.
"""

from __future__ import annotations

from shipyard.registry.references import ModelRef, parse_model_ref

__all__ = ["ModelRef", "parse_model_ref"]
