"""Schema helpers: Cog version parsing, backwards compatibility (deep copy), iterator detection."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from replicate.schema import (
    make_schema_backwards_compatible,
    output_is_concatenate_iterator,
    output_is_iterator,
    version_has_no_array_type,
)


def schema_with(output: Any) -> dict[str, Any]:
    return {"openapi": "3.0.2", "components": {"schemas": {"Output": output}}}


ARRAY = {"type": "array", "items": {"type": "string"}}


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.3.8", True),
        ("0.2.1", True),
        ("0.3.9", False),
        ("0.3.10", False),
        ("0.4.0", False),
        ("1.0.0", False),
        ("v0.3.8", True),
        ("0.3.9-beta1", True),
        ("0.3.9+dev", False),
        ("0.16.8", False),
        ("0.3", True),
        ("dev", None),
        ("", None),
        (None, None),
        (38, None),
    ],
)
def test_version_has_no_array_type(version: Any, expected: bool | None) -> None:
    assert version_has_no_array_type(version) is expected


def test_backwards_compatible_marks_old_arrays_and_never_mutates() -> None:
    original = schema_with(dict(ARRAY))
    snapshot = copy.deepcopy(original)
    result = make_schema_backwards_compatible(original, "0.3.8")
    assert original == snapshot
    assert result is not original
    assert result["components"]["schemas"]["Output"]["x-cog-array-type"] == "iterator"
    assert output_is_iterator(result) and not output_is_iterator(original)
    # Newer Cog: unchanged copy.
    newer = make_schema_backwards_compatible(original, "0.9.0")
    assert newer == snapshot and newer is not original
    # Non-array output on old Cog: unchanged.
    plain = schema_with({"type": "string"})
    assert make_schema_backwards_compatible(plain, "0.3.0") == plain


@pytest.mark.parametrize(
    "schema",
    [{}, {"components": {}}, {"components": {"schemas": {}}}, None, [], {"components": None}],
)
def test_missing_keys_are_tolerated(schema: Any) -> None:
    assert make_schema_backwards_compatible(schema, "0.3.8") == schema
    assert output_is_iterator(schema) is False
    assert output_is_concatenate_iterator(schema) is False


def test_iterator_detection() -> None:
    iterator = schema_with({**ARRAY, "x-cog-array-type": "iterator"})
    concat = schema_with(
        {**ARRAY, "x-cog-array-type": "iterator", "x-cog-array-display": "concatenate"}
    )
    display_only = schema_with({**ARRAY, "x-cog-array-display": "concatenate"})
    assert output_is_iterator(iterator) and not output_is_concatenate_iterator(iterator)
    assert output_is_iterator(concat) and output_is_concatenate_iterator(concat)
    assert not output_is_iterator(schema_with(ARRAY))
    assert not output_is_concatenate_iterator(display_only)
    assert not output_is_iterator(schema_with({"type": "string"}))


def test_output_reference_is_followed() -> None:
    schema = {
        "components": {
            "schemas": {
                "Output": {"$ref": "#/components/schemas/Real"},
                "Real": {**ARRAY, "x-cog-array-type": "iterator"},
            }
        }
    }
    assert output_is_iterator(schema)
    wrapped = {
        "components": {
            "schemas": {
                "Output": {"allOf": [{"$ref": "#/components/schemas/Real"}]},
                "Real": {**ARRAY, "x-cog-array-type": "iterator"},
            }
        }
    }
    assert output_is_iterator(wrapped)
