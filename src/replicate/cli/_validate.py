"""Check inputs against the model's input schema before a prediction is created.

The API checks again (it is the authority); this only catches what is certain from the schema,
so that a doomed ``replicate run`` fails at once, costs nothing and says which ``-i`` to fix.
"""

from __future__ import annotations

import pathlib
from typing import Any

from ._errors import EXIT_USAGE, CLIError
from ._inputs import input_properties, required_inputs


def validate_inputs(inputs: dict[str, Any], openapi_schema: dict[str, Any] | None) -> None:
    """Raise a one-line :class:`CLIError` for the first input the schema rules out."""
    if not openapi_schema:
        return
    props = input_properties(openapi_schema)
    for name in required_inputs(openapi_schema):
        if name not in inputs and "default" not in props.get(name, {}):
            example = "@file" if props.get(name, {}).get("format") == "uri" else "..."
            raise CLIError(f"input {name} is required; add -i {name}={example}", EXIT_USAGE)
    for name, value in inputs.items():
        spec = props.get(name)
        if spec is None:
            continue
        values = value if spec.get("type") == "array" and isinstance(value, list) else [value]
        item_spec = (spec.get("items") or {}) if spec.get("type") == "array" else spec
        for item in values:
            problem = _problem(item, item_spec)
            if problem:
                raise CLIError(f"input {name}: {problem}; fix -i {name}=...", EXIT_USAGE)


def _problem(value: Any, spec: dict[str, Any]) -> str | None:
    if isinstance(value, pathlib.Path):
        return None
    if "enum" in spec and value not in spec["enum"]:
        choices = ", ".join(str(v) for v in spec["enum"])
        return f"{value!r} is not one of {choices}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for key, ok, words in (
            ("minimum", lambda v, b: v >= b, "at least"),
            ("maximum", lambda v, b: v <= b, "at most"),
            ("exclusiveMinimum", lambda v, b: v > b, "more than"),
            ("exclusiveMaximum", lambda v, b: v < b, "less than"),
        ):
            bound = spec.get(key)
            if isinstance(bound, (int, float)) and not ok(value, bound):
                return f"{value} is out of range: must be {words} {bound}"
    if isinstance(value, str):
        low, high = spec.get("minLength"), spec.get("maxLength")
        if isinstance(low, int) and len(value) < low:
            return f"must be at least {low} characters long, got {len(value)}"
        if isinstance(high, int) and len(value) > high:
            return f"must be at most {high} characters long, got {len(value)}"
    return None
