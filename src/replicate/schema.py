"""Helpers for a version's OpenAPI schema (docs/run.md, "Schema lookup and iterator outputs").

Cog marks iterator outputs with ``x-cog-array-type: iterator`` on the ``Output`` schema and
text-concatenating iterators with ``x-cog-array-display: concatenate``. Cog versions before 0.3.9
did not mark arrays at all; :func:`make_schema_backwards_compatible` treats their array outputs as
iterators.
"""

from __future__ import annotations

import copy
import re
from typing import Any

__all__ = [
    "make_schema_backwards_compatible",
    "output_is_concatenate_iterator",
    "output_is_iterator",
    "version_has_no_array_type",
]

_VERSION = re.compile(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?P<rest>[-+.~a-zA-Z0-9]*)\s*$")
_FIRST_TYPED = (0, 3, 9)


def version_has_no_array_type(cog_version: Any) -> bool | None:
    """Whether a Cog version predates array types in schemas (< 0.3.9).

    Returns ``None`` when the version cannot be parsed (e.g. ``"dev"`` or ``None``).
    A pre-release of 0.3.9 (``"0.3.9-beta"``) counts as older.
    """
    if not isinstance(cog_version, str):
        return None
    match = _VERSION.match(cog_version)
    if match is None:
        return None
    parts = tuple(int(part) if part is not None else 0 for part in match.group(1, 2, 3))
    if parts != _FIRST_TYPED:
        return parts < _FIRST_TYPED
    rest = match.group("rest")
    # "0.3.9-alpha" / "0.3.9a1" are pre-releases (older); "0.3.9+build" is 0.3.9 itself.
    return bool(rest) and not rest.startswith("+")


def _output_schema(schema: Any) -> dict[str, Any] | None:
    """``components.schemas.Output`` (following one local ``$ref``), or ``None``."""
    if not isinstance(schema, dict):
        return None
    components = schema.get("components")
    schemas = components.get("schemas") if isinstance(components, dict) else None
    output = schemas.get("Output") if isinstance(schemas, dict) else None
    if not isinstance(output, dict):
        return None
    ref = output.get("$ref")
    if (
        isinstance(ref, str)
        and ref.startswith("#/components/schemas/")
        and isinstance(schemas, dict)
    ):
        target = schemas.get(ref.rsplit("/", 1)[-1])
        if isinstance(target, dict):
            return target
    allof = output.get("allOf")
    if isinstance(allof, list) and len(allof) == 1 and isinstance(allof[0], dict):
        ref = allof[0].get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            target = schemas.get(ref.rsplit("/", 1)[-1]) if isinstance(schemas, dict) else None
            if isinstance(target, dict):
                merged = {**target, **{k: v for k, v in output.items() if k != "allOf"}}
                return merged
    return output


def make_schema_backwards_compatible(schema: Any, cog_version: Any) -> Any:
    """A deep copy of ``schema`` adjusted for old Cog versions; the input is never modified.

    For Cog < 0.3.9 an ``Output`` of ``type: array`` gets ``x-cog-array-type: iterator``.
    Missing keys are tolerated (the copy is returned unchanged).
    """
    result = copy.deepcopy(schema)
    if version_has_no_array_type(cog_version):
        output = _output_schema(result)
        if output is not None and output.get("type") == "array":
            output["x-cog-array-type"] = "iterator"
    return result


def output_is_iterator(schema: Any) -> bool:
    """Whether the ``Output`` of an OpenAPI schema is an iterator (``x-cog-array-type: iterator``)."""
    output = _output_schema(schema)
    return (
        output is not None
        and output.get("type") == "array"
        and output.get("x-cog-array-type") == "iterator"
    )


def output_is_concatenate_iterator(schema: Any) -> bool:
    """Whether the ``Output`` is an iterator whose items are text to concatenate."""
    output = _output_schema(schema)
    return (
        output_is_iterator(schema)
        and output is not None
        and (output.get("x-cog-array-display") == "concatenate")
    )
