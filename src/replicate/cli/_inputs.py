"""Turn ``-i key=value`` arguments into model inputs, typed by the model's input schema."""

from __future__ import annotations

import json
import pathlib
from typing import Any

from replicate._batch_inputs import input_properties, type_cell

from ._errors import EXIT_USAGE, CLIError

__all__ = ["convert", "input_properties", "parse_inputs", "readable_file", "required_inputs"]


def required_inputs(openapi_schema: dict[str, Any] | None) -> list[str]:
    """Names of the required inputs."""
    if not openapi_schema:
        return []
    schemas = (openapi_schema.get("components") or {}).get("schemas") or {}
    return list((schemas.get("Input") or {}).get("required") or [])


def parse_inputs(pairs: list[str], openapi_schema: dict[str, Any] | None) -> dict[str, Any]:
    """Parse ``key=value`` pairs. ``@path`` uploads a file; repeated keys of arrays accumulate."""
    try:
        return _parse(pairs, openapi_schema)
    except CLIError as exc:
        exc.code = EXIT_USAGE  # a bad input: nothing was created
        raise


def _parse(pairs: list[str], openapi_schema: dict[str, Any] | None) -> dict[str, Any]:
    props = input_properties(openapi_schema)
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CLIError(
                f"invalid input {pair!r}: expected key=value (for example -i text=hello)"
            )
        if props and key not in props:
            known = ", ".join(sorted(props)) or "none"
            raise CLIError(f"unknown input {key!r} for this model (inputs: {known})")
        spec = props.get(key, {})
        value = convert(key, raw, spec)
        if spec.get("type") == "array" and not isinstance(value, list):
            result.setdefault(key, []).append(value)
        else:
            result[key] = value
    return result


def convert(key: str, raw: str, spec: dict[str, Any]) -> Any:
    """Convert one raw value according to its schema (or guess JSON when there is none).

    The typing itself is the library's (``type_cell``, shared with CSV rows of batch runs);
    ``@file`` and the untyped JSON guess are the command line's own.
    """
    if raw.startswith("@"):
        path = readable_file(key, raw[1:])
        if _is_text(spec):
            return _read_text(key, path)
        return path
    kind = spec.get("type")
    if kind == "array" and not raw.lstrip().startswith("["):
        return convert(key, raw, spec.get("items") or {})  # one item; repeated -i accumulate
    if kind is None and raw.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    try:
        return type_cell(key, raw, spec)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def readable_file(key: str, name: str) -> pathlib.Path:
    """The path of an ``@file`` input, checked now (before any prediction is created)."""
    path = pathlib.Path(name).expanduser()
    if not name:
        raise CLIError(f"input {key}: '@' needs a file name, as in -i {key}=@photo.png", EXIT_USAGE)
    if path.is_dir():
        raise CLIError(f"input {key}: {name} is a directory; give a file", EXIT_USAGE)
    if not path.exists():
        raise CLIError(f"input {key}: file not found: {name}; check the path", EXIT_USAGE)
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise CLIError(
            f"input {key}: cannot read {name}: {exc.strerror or exc}; check its permissions",
            EXIT_USAGE,
        ) from None
    return path


def _is_text(spec: dict[str, Any]) -> bool:
    """A text input (``@file`` sends the file's text), not a file/URI input (it uploads)."""
    if spec.get("type") == "array":
        return _is_text(spec.get("items") or {})
    return spec.get("type") == "string" and spec.get("format") != "uri"


def _read_text(key: str, path: pathlib.Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CLIError(
            f"input {key} is text but {path} is not UTF-8 text; give a text file", EXIT_USAGE
        ) from None


def describe_type(spec: dict[str, Any]) -> str:
    """A short human description of a property's type (for ``models schema``)."""
    kind = spec.get("type", "any")
    if kind == "array":
        return f"array of {describe_type(spec.get('items') or {})}"
    if spec.get("format") == "uri":
        return "file (uri)"
    return str(kind)


def describe_constraints(spec: dict[str, Any]) -> str:
    """Enum choices and numeric bounds of a property."""
    parts = []
    if "enum" in spec:
        parts.append("one of " + ", ".join(str(v) for v in spec["enum"]))
    for key, symbol in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
    ):
        if key in spec:
            parts.append(f"{symbol} {spec[key]}")
    for key, label in (("minLength", "min length"), ("maxLength", "max length")):
        if key in spec:
            parts.append(f"{label} {spec[key]}")
    return "; ".join(parts)
