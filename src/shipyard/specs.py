"""Specs written by people: YAML (or dicts, or Python) read into strict pydantic models.

One reader and one error format for every spec Shipyard takes from a user — data contracts, promotion
policies, deployments:

- :class:`StrictModel` is their base: unknown keys are errors (a typo fails loudly), instances are
  frozen, and building one with a bad value raises :class:`~shipyard.errors.InvalidInput`, never
  pydantic's ``ValidationError``.
- :func:`invalid_input` turns a ``ValidationError`` into that ``InvalidInput``, naming each problem by
  where it is: ``batching.max_wait_ms``, or ``column 'age' field 'type'`` for an item of a list that has
  a ``name``.
- :func:`load_yaml` reads YAML text or a ``.yaml``/``.yml`` file; a syntax error names the file (or
  "text") and the line. :func:`parse_spec` does both steps.

pydantic and PyYAML are imported here; ``import shipyard`` does not import this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from shipyard.errors import InvalidInput

__all__ = ["StrictModel", "invalid_input", "is_yaml_path", "load_yaml", "parse_spec"]

M = TypeVar("M", bound=BaseModel)

_MAX_LISTED = 8


class StrictModel(BaseModel):
    """Base of user-written specs: extra keys refused, frozen, bad values raise ``InvalidInput``.

    Example:
        >>> class Point(StrictModel):
        ...     x: int
        >>> Point(x=1, y=2)
        Traceback (most recent call last):
        shipyard.errors.InvalidInput: Point is not valid: y: Extra inputs are not permitted
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    item_noun: ClassVar[str] = ""
    """What one is called in messages when it has a ``name`` (``"column"`` → ``column 'age'``)."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            name = _name_of(data)
            subject = f"{self.item_noun} {name!r}" if self.item_noun and name else ""
            raise invalid_input(type(self).__name__, exc, data, subject=subject) from exc

    # Nested specs are validated by pydantic without calling this __init__, so that one error names the
    # full path from the outermost spec (pydantic would call a custom __init__ and lose it).
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]


def invalid_input(noun: str, exc: ValidationError, data: Any = None, *, subject: str = "") -> InvalidInput:
    """One readable ``InvalidInput`` naming where each problem pydantic found is.

    ``data`` is what was validated: an item of a list that has a ``name`` is called by it (``column
    'age' field 'type'`` rather than ``columns.3.type``). ``subject`` prefixes every location (a
    column built on its own). ``details["problems"]`` lists every problem; the message the first 8.

    Example:
        >>> from pydantic import BaseModel
        >>> class Column(BaseModel):
        ...     name: str
        ...     min: int = 0
        >>> class Table(BaseModel):
        ...     columns: list[Column]
        >>> data = {"columns": [{"name": "age", "min": "x"}]}
        >>> try:
        ...     Table.model_validate(data)
        ... except ValidationError as exc:
        ...     print(invalid_input("Table", exc, data).message[:48])
        Table is not valid: column 'age' field 'min': In
    """
    problems = []
    for err in exc.errors():
        where = _where(tuple(err["loc"]), data, subject)
        msg = str(err["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {msg}" if where else msg)
    shown = "; ".join(problems[:_MAX_LISTED])
    more = f" (and {len(problems) - _MAX_LISTED} more)" if len(problems) > _MAX_LISTED else ""
    return InvalidInput(f"{noun} is not valid: {shown}{more}", details={"problems": problems})


def _where(loc: Sequence[int | str], data: Any, subject: str) -> str:
    """``columns.3.type`` → ``column 'age' field 'type'`` when item 3 has a name; else the dotted path."""
    named, node = subject, data
    field: list[int | str] = []
    for key in loc:
        node = _child(node, key)
        name = _name_of(node) if isinstance(key, int) and field and isinstance(field[-1], str) else None
        if name is not None:
            named, field = f"{str(field[-1]).removesuffix('s')} {name!r}", []
        else:
            field.append(key)
    dotted = ".".join(str(p) for p in field)
    if named and dotted:
        return f"{named} field {dotted!r}"
    return named or dotted


def _child(node: Any, key: int | str) -> Any:
    if isinstance(key, int) and isinstance(node, Sequence) and not isinstance(node, str):
        return node[key] if -len(node) <= key < len(node) else None
    if isinstance(node, Mapping):
        return node.get(key)
    return getattr(node, str(key), None) if isinstance(node, BaseModel) else None


def _name_of(item: Any) -> str | None:
    name = item.get("name") if isinstance(item, Mapping) else getattr(item, "name", None)
    return name if isinstance(name, str) and name else None


def is_yaml_path(source: str | Path) -> bool:
    """Whether ``source`` names a YAML file (a ``Path``, or one line ending in ``.yaml``/``.yml``).

    Example:
        >>> is_yaml_path("policy.yaml"), is_yaml_path("gates: []")
        (True, False)
    """
    return isinstance(source, Path) or ("\n" not in source and source.endswith((".yaml", ".yml")))


def load_yaml(source: str | Path, *, noun: str) -> Any:
    """Parse YAML text, or the file ``source`` names; a syntax error is ``InvalidInput`` naming the line.

    ``noun`` names the thing in messages ("Deployment"). A missing file is ``InvalidInput`` too.

    Example:
        >>> load_yaml("gates: [{max_size_mb: 50}]", noun="Policy")
        {'gates': [{'max_size_mb': 50}]}
    """
    origin = "text"
    text = str(source)
    if is_yaml_path(source):
        path = Path(source)
        if not path.is_file():
            raise InvalidInput(
                f"{noun} file {path} does not exist (give a path to a .yaml file or YAML text)"
            )
        origin = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"{noun} file {path} cannot be read: {exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _syntax_error(noun, origin, exc) from exc


def _syntax_error(noun: str, origin: str, exc: yaml.YAMLError) -> InvalidInput:
    line: int | None = None
    problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        line = exc.problem_mark.line + 1
        problem = exc.problem or problem
    at = f"line {line}" if line is not None else "somewhere"
    where = f"{origin}, {at}" if origin != "text" else at
    return InvalidInput(
        f"{noun} YAML does not parse ({where}): {problem}; fix the YAML syntax there",
        details={"source": origin, "line": line},
    )


def parse_spec(source: M | str | Path | Mapping[str, Any], cls: type[M], *, noun: str, shape: str) -> M:
    """``source`` as a ``cls``: an instance, a mapping, YAML text, or a ``.yaml``/``.yml`` file path.

    ``noun`` names the thing in messages ("Deployment"); ``shape`` says what a valid one looks like.

    Example:
        >>> class Point(StrictModel):
        ...     x: int
        >>> parse_spec("x: 3", Point, noun="Point", shape="a mapping with x:").x
        3
    """
    if isinstance(source, cls):
        return source
    data = load_yaml(source, noun=noun) if isinstance(source, str | Path) else source
    if not isinstance(data, Mapping):
        raise InvalidInput(f"A {noun.lower()} is {shape}, got {type(data).__name__}")
    try:
        return cls.model_validate(dict(data))
    except ValidationError as exc:
        raise invalid_input(noun, exc, data) from exc
