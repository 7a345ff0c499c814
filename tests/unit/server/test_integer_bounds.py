"""Every integer the tracking server accepts is bounded by the store column it lands in.

The class of bug: an unbounded ``int`` in a schema or a Query/Path parameter lets ``10**30`` reach
the store (SQLite ``OverflowError``, PostgreSQL ``integer out of range``: a 500). This walks the
OpenAPI document, so a new unbounded integer anywhere in a request fails here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server_harness import make_settings

from shipyard.bounds import INT64_MAX, INT64_MIN
from shipyard.server import create_app


def _integers(schema: Any, components: dict[str, Any], where: str, seen: set[str]) -> list[tuple[str, Any]]:
    """Every ``type: integer`` sub-schema of ``schema`` (references followed once), with its path."""
    if not isinstance(schema, dict):
        return []
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        if name in seen:
            return []
        return _integers(components[name], components, f"{where}->{name}", seen | {name})
    found = [(where, schema)] if schema.get("type") == "integer" else []
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for i, sub in enumerate(schema.get(key, [])):
            found += _integers(sub, components, f"{where}.{key}[{i}]", seen)
    for key in ("items", "additionalProperties"):
        found += _integers(schema.get(key), components, f"{where}.{key}", seen)
    for name, sub in schema.get("properties", {}).items():
        found += _integers(sub, components, f"{where}.{name}", seen)
    return found


def _request_integers(tmp_path: Path) -> list[tuple[str, Any]]:
    spec = create_app(make_settings(tmp_path)).openapi()
    components = spec.get("components", {}).get("schemas", {})
    found: list[tuple[str, Any]] = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            for param in op.get("parameters", []):
                found += _integers(param.get("schema"), components, f"{where} ?{param['name']}", set())
            for media in op.get("requestBody", {}).get("content", {}).values():
                found += _integers(media.get("schema"), components, f"{where} body", set())
    return found


def test_every_request_integer_has_bounds_within_64_bits(tmp_path: Path) -> None:
    integers = _request_integers(tmp_path)
    assert len(integers) > 20  # the walk does find them (times, sizes, versions, ids, ...)
    unbounded = [
        where
        for where, schema in integers
        if not (
            INT64_MIN
            <= schema.get("minimum", INT64_MIN - 1)
            <= schema.get("maximum", INT64_MAX + 1)
            <= INT64_MAX
        )
    ]
    assert not unbounded, "integers without a store-sized minimum/maximum:\n" + "\n".join(unbounded)
