"""Read a pydantic-described spec (a promotion policy, a deployment) from YAML text, a file or a dict.

Errors say where: a missing file, bad YAML, a non-mapping, or each invalid field by its dotted path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from shipyard.errors import InvalidInput

__all__ = ["parse_spec"]

M = TypeVar("M", bound=BaseModel)


def parse_spec(source: M | str | Path | dict[str, Any], cls: type[M], *, noun: str, shape: str) -> M:
    """``source`` as a ``cls``: an instance, a dict, YAML text, or a ``.yaml``/``.yml`` file path.

    ``noun`` names the thing in messages ("Deployment"); ``shape`` says what a valid one looks like.

    Example:
        >>> from pydantic import BaseModel
        >>> class Point(BaseModel):
        ...     x: int
        >>> parse_spec("x: 3", Point, noun="Point", shape="a mapping with x:").x
        3
    """
    if isinstance(source, cls):
        return source
    data: Any = source
    if isinstance(source, Path) or (
        isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml"))
    ):
        path = Path(source)
        if not path.is_file():
            raise InvalidInput(f"{noun} file {path} does not exist")
        data = yaml.safe_load(path.read_text())
    elif isinstance(source, str):
        try:
            data = yaml.safe_load(source)
        except yaml.YAMLError as exc:
            raise InvalidInput(f"{noun} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"A {noun.lower()} is {shape}")
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        root = noun.split()[-1].lower()
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or root}: {e['msg']}" for e in exc.errors()[:8]
        )
        raise InvalidInput(f"{noun} is not valid: {problems}") from exc
