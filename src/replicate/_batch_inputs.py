"""Rows of a batch: read from JSONL / CSV / an iterable, typed and checked against the schema.

A CSV cell is text; it is typed from the model's input schema the way ``-i key=value`` is on the
command line (integers, numbers, booleans, JSON arrays and objects). An empty cell means "not
given" so that the model's default applies. Which inputs are files is read from the schema
(``format: uri``, or arrays of them); a local path there is uploaded once (see docs/batch.md).
"""

from __future__ import annotations

import csv
import json
import os
import pathlib
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["file_inputs", "input_properties", "load_rows", "type_cell"]

_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def input_properties(openapi_schema: Any) -> dict[str, dict[str, Any]]:
    """The input properties of a Cog OpenAPI schema, with ``$ref``/``allOf`` merged in."""
    if not isinstance(openapi_schema, dict):
        return {}
    schemas = (openapi_schema.get("components") or {}).get("schemas") or {}
    props = (schemas.get("Input") or {}).get("properties") or {}
    out = {}
    for name, spec in props.items():
        merged = {k: v for k, v in spec.items() if k not in ("allOf", "$ref")}
        refs = [spec] if "$ref" in spec else list(spec.get("allOf") or [])
        for part in refs:
            ref = part.get("$ref", "") if isinstance(part, dict) else ""
            target = schemas.get(ref.rsplit("/", 1)[-1]) if ref else part
            for key, value in (target or {}).items():
                merged.setdefault(key, value)
        out[name] = merged
    return out


def file_inputs(props: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """Names of the inputs that take files (``format: uri``, or arrays of them)."""
    names = set()
    for name, spec in props.items():
        items = spec.get("items") if spec.get("type") == "array" else None
        if spec.get("format") == "uri" or (
            isinstance(items, Mapping) and items.get("format") == "uri"
        ):
            names.add(name)
    return names


def type_cell(key: str, raw: str, spec: Mapping[str, Any]) -> Any:
    """Type one CSV cell from its schema; ``ValueError`` names the input and what was expected."""
    kind = spec.get("type")
    if kind == "array":
        if raw.lstrip().startswith("["):
            value = _json(key, raw, "a JSON array")
            if not isinstance(value, list):
                raise ValueError(f"input {key}: expected a JSON array, got {raw!r}")
            return value
        return [type_cell(key, raw, spec.get("items") or {})]
    if kind == "integer":
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"input {key}: expected an integer, got {raw!r}") from None
    if kind == "number":
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"input {key}: expected a number, got {raw!r}") from None
    if kind == "boolean":
        lowered = raw.strip().lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        raise ValueError(f"input {key}: expected true or false, got {raw!r}")
    if kind == "object":
        value = _json(key, raw, "a JSON object")
        if not isinstance(value, dict):
            raise ValueError(f"input {key}: expected a JSON object, got {raw!r}")
        return value
    return raw


def _json(key: str, raw: str, what: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"input {key}: expected {what}: {exc}") from None


def load_rows(
    inputs: Any, props: Mapping[str, Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], pathlib.Path | None]:
    """The rows of ``inputs`` (a ``.jsonl``/``.csv`` path or an iterable of dicts), and the
    directory relative file paths in them are resolved against (the file's, or None)."""
    if isinstance(inputs, (str, os.PathLike)):
        path = pathlib.Path(inputs).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"inputs: no such file: {path}")
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".ndjson"):
            return _jsonl_rows(path), path.parent
        if suffix == ".csv":
            return _csv_rows(path, props), path.parent
        raise ValueError(f"inputs: expected a .jsonl or .csv file, got {path.name!r}")
    if isinstance(inputs, Mapping):
        raise TypeError("inputs must be a list of dicts (one per row) or a path, not one dict")
    if not isinstance(inputs, Iterable):
        raise TypeError(
            f"inputs must be a .jsonl/.csv path or an iterable of dicts, not {type(inputs).__name__}"
        )
    rows = []
    for index, row in enumerate(inputs):
        if not isinstance(row, Mapping):
            raise TypeError(f"inputs[{index}]: expected a dict, got {type(row).__name__}")
        rows.append(dict(row))
    return rows, None


def _jsonl_rows(path: pathlib.Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path.name}:{number}: invalid JSON: {exc}") from None
            if not isinstance(row, dict):
                raise ValueError(
                    f"{path.name}:{number}: expected a JSON object, got {type(row).__name__}"
                )
            rows.append(row)
    return rows


def _csv_rows(path: pathlib.Path, props: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames:
            return []
        unknown = [name for name in reader.fieldnames if props and name not in props]
        if unknown:
            raise ValueError(
                f"{path.name}: unknown column(s) {', '.join(map(repr, unknown))} "
                f"(the model's inputs: {', '.join(sorted(props)) or 'none'})"
            )
        for number, record in enumerate(reader, 2):
            row = {}
            for key, raw in record.items():
                if key is None:
                    raise ValueError(f"{path.name}:{number}: more cells than columns")
                if raw is None or raw == "":
                    continue  # an empty cell: the model's default applies
                try:
                    row[key] = type_cell(key, raw, props.get(key, {}))
                except ValueError as exc:
                    raise ValueError(f"{path.name}:{number}: {exc}") from None
            rows.append(row)
    return rows
