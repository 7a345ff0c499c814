"""Verified code sources: a model's packages checked against an organisation allowlist."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from shipyard.entities import ModelVersion
from shipyard.errors import ConfigError, InvalidInput

__all__ = ["PackageCheck", "check_packages", "read_allowlist"]


@dataclass(frozen=True)
class PackageCheck:
    """One package of a model: ``allowed``, ``version_not_allowed`` or ``not_listed``."""

    package: str
    version: str
    status: str
    rule: str

    @property
    def ok(self) -> bool:
        return self.status == "allowed"


def read_allowlist(path: str | os.PathLike[str]) -> dict[str, Requirement]:
    """Parse an allowlist: one requirement per line (``numpy``, ``scikit-learn>=1.4,<2``), ``#`` comments."""
    file = Path(path)
    try:
        lines = file.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"Cannot read the package allowlist {file}: {exc}") from exc
    rules: dict[str, Requirement] = {}
    for number, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            raise ConfigError(
                f"{file}:{number}: {line!r} is not a requirement such as numpy>=1.26 ({exc})"
            ) from exc
        rules[canonicalize_name(req.name)] = req
    return rules


def check_packages(version: ModelVersion, allowlist: str | os.PathLike[str]) -> list[PackageCheck]:
    """Check every pinned requirement of ``version`` against the allowlist file.

    Example:
        >>> [c.status for c in check_packages(mv, "allowed-packages.txt")]  # doctest: +SKIP
        ['allowed', 'allowed', 'not_listed']
    """
    rules = read_allowlist(allowlist)
    checks = []
    for line in version.metadata.get("requirements") or []:
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            raise InvalidInput(f"{version.ref} has an unreadable requirement {line!r}: {exc}") from exc
        pinned = next((s.version for s in req.specifier if s.operator == "=="), "")
        rule = rules.get(canonicalize_name(req.name))
        if rule is None:
            checks.append(PackageCheck(req.name, pinned, "not_listed", ""))
        elif pinned and rule.specifier and not rule.specifier.contains(pinned, prereleases=True):
            checks.append(PackageCheck(req.name, pinned, "version_not_allowed", str(rule)))
        else:
            checks.append(PackageCheck(req.name, pinned, "allowed", str(rule)))
    return checks
