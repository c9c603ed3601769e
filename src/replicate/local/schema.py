"""Cog-style OpenAPI schemas for plain Python callables, and input validation.

``Input(...)`` mirrors ``cog.Input`` (description, default, ge, le, choices,
min_length, max_length, regex) for users without Cog. ``ConcatenateIterator`` marks
a streamed-text output (``x-cog-array-display: concatenate``).
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import pathlib
import re
import types
import typing
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from .fetch import OwnAddress

T = TypeVar("T")

_MISSING: Any = object()


@dataclasses.dataclass(eq=False)
class InputSpec:
    """Constraints and metadata for one input (what ``Input(...)`` returns)."""

    default: Any = _MISSING
    _: dataclasses.KW_ONLY
    description: str | None = None
    ge: float | None = None
    le: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    regex: str | None = None
    choices: list[Any] | None = None


def Input(
    default: Any = _MISSING,
    *,
    description: str | None = None,
    ge: float | None = None,
    le: float | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    regex: str | None = None,
    choices: list[Any] | None = None,
) -> Any:
    """Constraints and metadata for one input, used as a parameter default.

    Example: ``def run(n: int = Input(description="How many", default=1, ge=1, le=10))``.
    """
    return InputSpec(
        default,
        description=description,
        ge=ge,
        le=le,
        min_length=min_length,
        max_length=max_length,
        regex=regex,
        choices=choices,
    )


class ConcatenateIterator(Iterator[T], Generic[T]):
    """Return annotation for token streams: the output is shown concatenated."""

    def __next__(self) -> T:  # pragma: no cover - annotation only
        raise StopIteration


class AsyncConcatenateIterator(AsyncIterator[T], Generic[T]):
    """``ConcatenateIterator`` of an ``async`` generator (as Cog's of the same name)."""

    async def __anext__(self) -> T:  # pragma: no cover - annotation only
        raise StopAsyncIteration


_SPECIAL_PARAMS = {"cancel_event"}


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _is_file_type(tp: Any) -> bool:
    return tp in (pathlib.Path, bytes) or (
        isinstance(tp, type) and issubclass(tp, pathlib.PurePath)
    )


def _type_schema(tp: Any) -> tuple[dict[str, Any], list[Any] | None, bool]:
    """Schema for an annotation: (schema, enum choices or None, optional?)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        schema, choices, _ = _type_schema(non_none[0] if len(non_none) == 1 else Any)
        return schema, choices, type(None) in args
    if origin is typing.Literal:
        return {"type": _json_type(args[0])}, list(args), False
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        values = [m.value for m in tp]
        return {"type": _json_type(values[0]) if values else "string"}, values, False
    if origin in (list, typing.List):  # noqa: UP006
        item, _, _ = _type_schema(args[0] if args else Any)
        return {"type": "array", "items": item}, None, False
    if tp is str:
        return {"type": "string"}, None, False
    if tp is bool:
        return {"type": "boolean"}, None, False
    if tp is int:
        return {"type": "integer"}, None, False
    if tp is float:
        return {"type": "number"}, None, False
    if _is_file_type(tp):
        return {"type": "string", "format": "uri"}, None, False
    if tp is dict or origin is dict:
        return {"type": "object"}, None, False
    return {}, None, False


def _title(name: str) -> str:
    return " ".join(p.capitalize() for p in name.split("_") if p) or name


def callable_signature(fn: Callable[..., Any]) -> tuple[inspect.Signature, dict[str, Any]]:
    """The signature and resolved type hints of ``fn``."""
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    return sig, hints


def build_input_schema(fn: Callable[..., Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``Input`` component schema of a callable and any enum component schemas."""
    sig, hints = callable_signature(fn)
    props: dict[str, Any] = {}
    required: list[str] = []
    enums: dict[str, Any] = {}
    order = 0
    for name, p in sig.parameters.items():
        if name in _SPECIAL_PARAMS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        tp = hints.get(name, Any)
        base, choices, optional = _type_schema(tp)
        spec = p.default if isinstance(p.default, InputSpec) else None
        default = spec.default if spec is not None else p.default
        if default is inspect.Parameter.empty:
            default = _MISSING
        if spec is not None and spec.choices is not None:
            choices = list(spec.choices)
        prop: dict[str, Any] = {}
        if choices is not None:
            enums[name] = {
                "enum": choices,
                "type": base.get("type", "string"),
                "title": name,
                "description": "An enumeration.",
            }
            prop["allOf"] = [{"$ref": f"#/components/schemas/{name}"}]
        else:
            prop.update(base)
            prop["title"] = _title(name)
        if default is not _MISSING and default is not None:
            if isinstance(default, enum.Enum):
                default = default.value
            prop["default"] = default
        prop["x-order"] = order
        order += 1
        if spec is not None:
            if spec.description is not None:
                prop["description"] = spec.description
            if spec.ge is not None:
                prop["minimum"] = spec.ge
            if spec.le is not None:
                prop["maximum"] = spec.le
            if spec.min_length is not None:
                prop["minLength"] = spec.min_length
            if spec.max_length is not None:
                prop["maxLength"] = spec.max_length
            if spec.regex is not None:
                prop["pattern"] = spec.regex
        if default is _MISSING and not optional:
            required.append(name)
        props[name] = prop
    schema: dict[str, Any] = {"type": "object", "title": "Input", "properties": props}
    if required:
        schema["required"] = required
    return schema, enums


def build_output_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    """The ``Output`` component schema from a callable's return annotation."""
    _, hints = callable_signature(fn)
    tp = hints.get("return", Any)
    origin = typing.get_origin(tp) or tp
    args = typing.get_args(tp)
    out: dict[str, Any]
    if origin in (ConcatenateIterator, AsyncConcatenateIterator) or (
        isinstance(origin, type)
        and origin is not str
        and issubclass(origin, (ConcatenateIterator, AsyncConcatenateIterator))
    ):
        item, _, _ = _type_schema(args[0] if args else str)
        out = {
            "type": "array",
            "items": item or {"type": "string"},
            "x-cog-array-type": "iterator",
            "x-cog-array-display": "concatenate",
        }
    elif origin in (Iterator, Generator, AsyncIterator, typing.Iterator, typing.Generator):
        item, _, _ = _type_schema(args[0] if args else Any)
        out = {"type": "array", "items": item, "x-cog-array-type": "iterator"}
    elif tp is type(None):
        out = {}
    else:
        out, _, _ = _type_schema(tp)
    return {**out, "title": "Output"}


def cog_openapi_document(
    input_schema: dict[str, Any], output_schema: dict[str, Any], enums: dict[str, Any]
) -> dict[str, Any]:
    """Wrap Input/Output into the document shape Cog produces (openapi 3.0.2)."""
    ref = {"$ref": "#/components/schemas/PredictionResponse"}
    verr = {"$ref": "#/components/schemas/HTTPValidationError"}

    def resp(schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "content": {"application/json": {"schema": schema}},
            "description": "Successful Response",
        }

    validation = {
        "content": {"application/json": {"schema": verr}},
        "description": "Validation Error",
    }
    prefer = {
        "in": "header",
        "name": "prefer",
        "schema": {"type": "string", "title": "Prefer"},
        "required": False,
    }
    paths = {
        "/": {
            "get": {
                "summary": "Root",
                "operationId": "root__get",
                "responses": {"200": resp({"title": "Response Root  Get"})},
            }
        },
        "/shutdown": {
            "post": {
                "summary": "Start Shutdown",
                "operationId": "start_shutdown_shutdown_post",
                "responses": {"200": resp({"title": "Response Start Shutdown Shutdown Post"})},
            }
        },
        "/health-check": {
            "get": {
                "summary": "Healthcheck",
                "operationId": "healthcheck_health_check_get",
                "responses": {"200": resp({"title": "Response Healthcheck Health Check Get"})},
            }
        },
        "/predictions": {
            "post": {
                "summary": "Predict",
                "description": "Run a single prediction on the model",
                "operationId": "predict_predictions_post",
                "parameters": [prefer],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/PredictionRequest"}
                        }
                    }
                },
                "responses": {"200": resp(ref), "422": validation},
            }
        },
        "/predictions/{prediction_id}": {
            "put": {
                "summary": "Predict Idempotent",
                "description": "Run a single prediction on the model (idempotent creation).",
                "operationId": "predict_idempotent_predictions__prediction_id__put",
                "parameters": [
                    {
                        "in": "path",
                        "name": "prediction_id",
                        "schema": {"type": "string", "title": "Prediction ID"},
                        "required": True,
                    },
                    prefer,
                ],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "allOf": [{"$ref": "#/components/schemas/PredictionRequest"}],
                                "title": "Prediction Request",
                            }
                        }
                    },
                    "required": True,
                },
                "responses": {"200": resp(ref), "422": validation},
            }
        },
        "/predictions/{prediction_id}/cancel": {
            "post": {
                "summary": "Cancel",
                "description": "Cancel a running prediction",
                "operationId": "cancel_predictions__prediction_id__cancel_post",
                "parameters": [
                    {
                        "in": "path",
                        "name": "prediction_id",
                        "schema": {"type": "string", "title": "Prediction ID"},
                        "required": True,
                    }
                ],
                "responses": {
                    "200": resp(
                        {"title": "Response Cancel Predictions  Prediction Id  Cancel Post"}
                    ),
                    "422": validation,
                },
            }
        },
    }
    schemas: dict[str, Any] = {
        "Input": input_schema,
        "Output": output_schema,
        "Status": {
            "enum": ["starting", "processing", "succeeded", "canceled", "failed"],
            "type": "string",
            "title": "Status",
            "description": "An enumeration.",
        },
        "WebhookEvent": {
            "enum": ["start", "output", "logs", "completed"],
            "type": "string",
            "title": "WebhookEvent",
            "description": "An enumeration.",
        },
        "ValidationError": {
            "type": "object",
            "title": "ValidationError",
            "required": ["loc", "msg", "type"],
            "properties": {
                "loc": {
                    "type": "array",
                    "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    "title": "Location",
                },
                "msg": {"type": "string", "title": "Message"},
                "type": {"type": "string", "title": "Error Type"},
            },
        },
        "PredictionRequest": {
            "type": "object",
            "title": "PredictionRequest",
            "properties": {
                "id": {"type": "string", "title": "Id"},
                "input": {"$ref": "#/components/schemas/Input"},
                "webhook": {
                    "type": "string",
                    "title": "Webhook",
                    "format": "uri",
                    "maxLength": 65536,
                    "minLength": 1,
                },
                "created_at": {"type": "string", "title": "Created At", "format": "date-time"},
                "output_file_prefix": {"type": "string", "title": "Output File Prefix"},
                "webhook_events_filter": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/WebhookEvent"},
                    "default": ["start", "output", "logs", "completed"],
                    "uniqueItems": True,
                },
            },
        },
        "PredictionResponse": {
            "type": "object",
            "title": "PredictionResponse",
            "properties": {
                "id": {"type": "string", "title": "Id"},
                "logs": {"type": "string", "title": "Logs", "default": ""},
                "error": {"type": "string", "title": "Error"},
                "input": {"$ref": "#/components/schemas/Input"},
                "output": {"$ref": "#/components/schemas/Output"},
                "status": {"$ref": "#/components/schemas/Status"},
                "metrics": {"type": "object", "title": "Metrics"},
                "version": {"type": "string", "title": "Version"},
                "created_at": {"type": "string", "title": "Created At", "format": "date-time"},
                "started_at": {"type": "string", "title": "Started At", "format": "date-time"},
                "completed_at": {"type": "string", "title": "Completed At", "format": "date-time"},
            },
        },
        "HTTPValidationError": {
            "type": "object",
            "title": "HTTPValidationError",
            "properties": {
                "detail": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/ValidationError"},
                    "title": "Detail",
                }
            },
        },
    }
    schemas.update(enums)
    return {
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": "0.1.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def canonical_json(value: Any) -> str:
    """Canonical JSON used for hashing."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# ---------------------------------------------------------------------------- validation


def _resolve(doc: dict[str, Any], prop: dict[str, Any]) -> dict[str, Any]:
    """Merge ``allOf`` references into one property schema."""
    if "allOf" not in prop:
        return prop
    out = {k: v for k, v in prop.items() if k != "allOf"}
    for part in prop.get("allOf", []):
        ref = part.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            target = doc.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[1], {})
            out = {**target, **out}
        else:
            out = {**part, **out}
    return out


def _check_value(
    field: str,
    value: Any,
    schema: dict[str, Any],
    doc: dict[str, Any],
    issues: list[dict[str, str]],
) -> None:
    schema = _resolve(doc, schema)
    typ = schema.get("type")
    ok = True
    if typ == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif typ == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif typ == "string":
        ok = isinstance(value, str)
    elif typ == "boolean":
        ok = isinstance(value, bool)
    elif typ == "array":
        ok = isinstance(value, list)
    elif typ == "object":
        ok = isinstance(value, dict)
    if not ok:
        issues.append(
            {
                "type": "invalid_type",
                "field": field,
                "description": f"Invalid type. Expected: {typ}, given: {_json_type(value)}",
            }
        )
        return
    if "enum" in schema and value not in schema["enum"]:
        name = field.rsplit(".", 1)[-1]
        choices = ", ".join(json.dumps(c) for c in schema["enum"])
        issues.append(
            {
                "type": "enum",
                "field": field,
                "description": f"{name} must be one of the following: {choices}",
            }
        )
        return
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            issues.append(
                {
                    "type": "number_gte",
                    "field": field,
                    "description": f"Must be greater than or equal to {schema['minimum']}",
                }
            )
        if "maximum" in schema and value > schema["maximum"]:
            issues.append(
                {
                    "type": "number_lte",
                    "field": field,
                    "description": f"Must be less than or equal to {schema['maximum']}",
                }
            )
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            issues.append(
                {
                    "type": "string_gte",
                    "field": field,
                    "description": f"String length must be greater than or equal to {schema['minLength']}",
                }
            )
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            issues.append(
                {
                    "type": "string_lte",
                    "field": field,
                    "description": f"String length must be less than or equal to {schema['maxLength']}",
                }
            )
        if "pattern" in schema and not re.search(schema["pattern"], value):
            issues.append(
                {
                    "type": "pattern",
                    "field": field,
                    "description": f"Does not match pattern '{schema['pattern']}'",
                }
            )
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check_value(f"{field}.{i}", item, schema["items"], doc, issues)


def validate_input(
    doc: dict[str, Any], value: dict[str, Any], own: OwnAddress | None = None
) -> list[dict[str, str]]:
    """Check an input object against a version's ``Input`` schema.

    Returns ``invalid_fields`` entries ``{type, field, description}``; empty when valid.
    Unknown keys are allowed (they pass through to the model). File inputs must be URLs
    (see ``fetch.file_input_problem``; ``own``: the server's addresses).
    """
    facts = schema_facts(doc)
    props = facts.input_props
    issues: list[dict[str, str]] = []
    for name in facts.required:
        if name not in value:
            issues.append(
                {"type": "required", "field": "input", "description": f"{name} is required"}
            )
    for name, v in value.items():
        prop = props.get(name)
        if prop is not None:
            _check_value(f"input.{name}", v, prop, doc, issues)
    if facts.files:
        issues.extend(file_input_issues(doc, value, own))
    return issues


def file_input_issues(
    doc: dict[str, Any], value: dict[str, Any], own: OwnAddress | None = None
) -> list[dict[str, str]]:
    """``invalid_fields`` entries for file inputs that are not URLs the server may fetch
    (a path on the server, ``file://``, this server's ``/_local`` controls)."""
    files = schema_facts(doc).files
    if not files:
        return []
    from .fetch import OwnAddress, file_input_problem

    own = own or OwnAddress()
    issues: list[dict[str, str]] = []
    for name, is_list in files.items():
        v = value.get(name)
        if v is None:
            continue
        items = list(enumerate(v)) if is_list and isinstance(v, list) else [(None, v)]
        for i, item in items:
            problem = file_input_problem(item, own)
            if problem is not None:
                field = f"input.{name}" if i is None else f"input.{name}.{i}"
                issues.append({"type": "file_url", "field": field, "description": problem})
    return issues


def output_is_iterator(doc: dict[str, Any]) -> bool:
    """Whether a version's output is an iterator (so predictions get ``urls.stream``)."""
    return schema_facts(doc).iterator


class SchemaFacts:
    """What every prediction of a version asks of its schema, worked out once."""

    __slots__ = ("doc", "files", "input_props", "iterator", "required")

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc  # held: its id stays this document's while it is cached
        schemas = doc.get("components", {}).get("schemas", {})
        input_schema = schemas.get("Input") or {}
        props = input_schema.get("properties", {})
        #: Required input names.
        self.required: list[str] = list(input_schema.get("required", []))
        #: Input properties with their ``allOf`` references merged.
        self.input_props = {name: _resolve(doc, prop) for name, prop in props.items()}
        #: File inputs (``format: uri``) mapped to "is a list".
        self.files: dict[str, bool] = {}
        for name, p in self.input_props.items():
            if p.get("format") == "uri":
                self.files[name] = False
            elif p.get("type") == "array" and (p.get("items") or {}).get("format") == "uri":
                self.files[name] = True
        self.iterator = (schemas.get("Output") or {}).get("x-cog-array-type") == "iterator"


_FACTS: dict[int, SchemaFacts] = {}
_FACTS_KEPT = 256


def schema_facts(doc: dict[str, Any]) -> SchemaFacts:
    """The facts of a version's OpenAPI document, cached while the same (unchanged) document
    object is asked about: the registry decodes each version's schema once and shares it."""
    facts = _FACTS.get(id(doc))
    if facts is None or facts.doc is not doc:
        facts = SchemaFacts(doc)
        if len(_FACTS) >= _FACTS_KEPT:
            _FACTS.clear()
        _FACTS[id(doc)] = facts
    return facts


def file_inputs(doc: dict[str, Any]) -> dict[str, bool]:
    """Input names whose schema is a file (``format: uri``), mapped to "is a list"."""
    return dict(schema_facts(doc).files)
