"""The model registry: registered models and versions, flavors, signatures, evaluation, aliases,
promotion policies with gates and four-eyes approvals, safe loading and packaging (layer 3)."""

from __future__ import annotations

__all__: list[str] = []
