"""Model references: ``models:/churn@champion``, ``models:/churn/7``, ``churn@champion``, ``churn``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shipyard.errors import InvalidInput

__all__ = ["ModelRef", "parse_model_ref"]

_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
_PATTERN = re.compile(rf"^(?:models:/)?(?P<name>{_NAME})(?:(?:/|@)(?P<ref>[A-Za-z0-9_.-]+))?$")


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference: ``ref`` is ``latest``, a version number as text, or an alias."""

    name: str
    ref: str = "latest"

    @property
    def version(self) -> int | None:
        """The version number when the reference names one directly."""
        return int(self.ref.lstrip("v")) if self.ref.isascii() and self.ref.lstrip("v").isdigit() else None

    def __str__(self) -> str:
        if self.version is not None:
            return f"models:/{self.name}/{self.version}"
        return f"models:/{self.name}@{self.ref}"


def parse_model_ref(text: str) -> ModelRef:
    """Parse a model reference.

    Example:
        >>> parse_model_ref("models:/churn@champion")
        ModelRef(name='churn', ref='champion')
        >>> parse_model_ref("churn/7").version
        7
    """
    if not isinstance(text, str) or not (m := _PATTERN.match(text.strip())):
        raise InvalidInput(
            f"Model reference {text!r} is not understood; use models:/NAME@ALIAS (models:/churn@champion), "
            "models:/NAME/VERSION (models:/churn/7) or models:/NAME for the latest version"
        )
    return ModelRef(m["name"], m["ref"] or "latest")
