"""Build a Cog OpenAPI document for a predictor directory without ``cog build``.

This file is executed as a script *inside the model's interpreter* (which has the ``cog``
package), so it must not import anything from ``replicate``. It loads the predictor the way
the Cog runtime does (``predict.py:Predictor`` from the current directory), runs Cog's own
inspector (``cog._inspector.create_predictor``) and wraps the result in the OpenAPI 3.0.2
document that ``cog build`` would have stored in ``.cog/openapi_schema.json``.

Usage::

    python schema_probe.py REF [--train] [--packages A,B]
    python schema_probe.py --version [--packages A,B]

``REF`` is ``file.py:Class`` (or ``file.py:function``). The document is printed to stdout as
one JSON object: ``{"ok": true, "schema": {...}, "cog_version": "..."}`` on success or
``{"ok": false, "error": "..."}`` on failure, both with ``missing_packages`` (those
named by ``--packages`` that the interpreter lacks) (exit status 0 either way, non-zero only when
this script itself breaks). Anything the predictor prints at import time goes to stderr.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import importlib.util
import json
import os
import sys
import traceback
import warnings
from typing import Any

MARKER = "@@COG_SCHEMA@@"


def title_case(name: str) -> str:
    """``wait_for_file`` -> ``Wait For File`` (Cog's property titles)."""
    return " ".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def _json_value(value: Any) -> Any:
    """Turn a normalized Cog default into plain JSON."""
    if isinstance(value, enum.Enum):
        return _json_value(value.value)
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    getter = getattr(value, "get_secret_value", None)
    if callable(getter):
        return getter()
    return str(value)


def _number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def build_input_schema(adt: Any, inputs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Build the ``Input`` component and the enum components for ``choices`` inputs."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    enums: dict[str, Any] = {}
    optional_reps = {adt.Repetition.OPTIONAL, adt.Repetition.OPTIONAL_REPEATED}
    for name, field in sorted(inputs.items(), key=lambda item: item[1].order):
        prop: dict[str, Any] = {}
        ftype = field.type
        if field.choices:
            enum_type = ftype.primitive.json_type().get("type", "string")
            enums[name] = {
                "title": name,
                "description": "An enumeration.",
                "enum": [_json_value(c) for c in field.choices],
                "type": enum_type,
            }
            prop["allOf"] = [{"$ref": f"#/components/schemas/{name}"}]
        else:
            prop["title"] = title_case(name)
            prop.update(ftype.json_type())

        nullable = ftype.repetition in optional_reps
        default = field.default
        has_default = default is not None
        if isinstance(default, dataclasses.Field):
            # default_factory: a per-call default, not a schema default; the field is optional.
            has_default = False
            nullable = nullable or default.default_factory is not dataclasses.MISSING
        if not has_default and not nullable:
            required.append(name)
        if has_default:
            prop["default"] = _json_value(default)
        if nullable:
            prop["nullable"] = True
        if field.description is not None:
            prop["description"] = field.description
        if field.ge is not None:
            prop["minimum"] = _number(field.ge)
        if field.le is not None:
            prop["maximum"] = _number(field.le)
        if field.min_length is not None:
            prop["minLength"] = field.min_length
        if field.max_length is not None:
            prop["maxLength"] = field.max_length
        if field.regex is not None:
            prop["pattern"] = field.regex
        if field.deprecated:
            prop["deprecated"] = True
        prop["x-order"] = field.order
        properties[name] = prop

    schema: dict[str, Any] = {"title": "Input", "type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema, enums


def _ok_response(schema_ref: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schema": {"$ref": schema_ref} if schema_ref else {}}
    return {"description": "Successful Response", "content": {"application/json": body}}


def _validation_response() -> dict[str, Any]:
    return {
        "description": "Validation Error",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
        },
    }


def build_document(
    input_schema: dict[str, Any],
    output_schema: dict[str, Any],
    enums: dict[str, Any],
    *,
    train: bool = False,
) -> dict[str, Any]:
    """Wrap ``Input``/``Output`` in the full Cog OpenAPI document."""
    kind = "training" if train else "prediction"
    in_key, out_key = ("TrainingInput", "TrainingOutput") if train else ("Input", "Output")
    request, response = (
        ("TrainingRequest", "TrainingResponse")
        if train
        else ("PredictionRequest", "PredictionResponse")
    )
    endpoint = f"/{kind}s"
    ref = "#/components/schemas/"
    input_schema = dict(input_schema, title=in_key)
    output_schema = dict(output_schema, title=out_key)
    schemas: dict[str, Any] = {in_key: input_schema, out_key: output_schema}
    schemas.update(enums)
    schemas["Status"] = {
        "title": "Status",
        "description": "An enumeration.",
        "enum": ["starting", "processing", "succeeded", "canceled", "failed"],
        "type": "string",
    }
    schemas["WebhookEvent"] = {
        "title": "WebhookEvent",
        "description": "An enumeration.",
        "enum": ["start", "output", "logs", "completed"],
        "type": "string",
    }
    schemas[request] = {
        "title": request,
        "type": "object",
        "properties": {
            "id": {"title": "Id", "type": "string"},
            "created_at": {"title": "Created At", "type": "string", "format": "date-time"},
            "input": {"$ref": ref + in_key},
            "webhook": {
                "title": "Webhook",
                "maxLength": 65536,
                "minLength": 1,
                "type": "string",
                "format": "uri",
            },
            "webhook_events_filter": {
                "type": "array",
                "items": {"$ref": ref + "WebhookEvent"},
                "default": ["start", "output", "logs", "completed"],
            },
            "output_file_prefix": {"title": "Output File Prefix", "type": "string"},
        },
    }
    schemas[response] = {
        "title": response,
        "type": "object",
        "properties": {
            "input": {"$ref": ref + in_key},
            "output": {"$ref": ref + out_key},
            "id": {"title": "Id", "type": "string"},
            "version": {"title": "Version", "type": "string"},
            "created_at": {"title": "Created At", "type": "string", "format": "date-time"},
            "started_at": {"title": "Started At", "type": "string", "format": "date-time"},
            "completed_at": {"title": "Completed At", "type": "string", "format": "date-time"},
            "status": {"$ref": ref + "Status"},
            "error": {"title": "Error", "type": "string"},
            "logs": {"title": "Logs", "type": "string", "default": ""},
            "metrics": {"title": "Metrics", "type": "object"},
        },
    }
    schemas["ValidationError"] = {
        "title": "ValidationError",
        "required": ["loc", "msg", "type"],
        "type": "object",
        "properties": {
            "loc": {
                "title": "Location",
                "type": "array",
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            },
            "msg": {"title": "Message", "type": "string"},
            "type": {"title": "Error Type", "type": "string"},
        },
    }
    schemas["HTTPValidationError"] = {
        "title": "HTTPValidationError",
        "type": "object",
        "properties": {
            "detail": {
                "title": "Detail",
                "type": "array",
                "items": {"$ref": ref + "ValidationError"},
            },
        },
    }
    id_param = f"{kind}_id"
    paths: dict[str, Any] = {
        "/": {
            "get": {
                "summary": "Root",
                "operationId": "root__get",
                "responses": {"200": _ok_response()},
            }
        },
        "/health-check": {
            "get": {
                "summary": "Healthcheck",
                "operationId": "healthcheck_health_check_get",
                "responses": {"200": _ok_response()},
            }
        },
        endpoint: {
            "post": {
                "summary": "Train" if train else "Predict",
                "description": f"Run a single {kind} on the model",
                "operationId": f"{'train' if train else 'predict'}_{kind}s_post",
                "requestBody": {
                    "content": {"application/json": {"schema": {"$ref": ref + request}}}
                },
                "responses": {"200": _ok_response(ref + response), "422": _validation_response()},
            }
        },
        f"{endpoint}/{{{id_param}}}/cancel": {
            "post": {
                "summary": "Cancel",
                "operationId": f"cancel_{kind}s__{id_param}__cancel_post",
                "parameters": [
                    {
                        "required": True,
                        "schema": {"title": title_case(id_param), "type": "string"},
                        "name": id_param,
                        "in": "path",
                    }
                ],
                "responses": {"200": _ok_response(), "422": _validation_response()},
            }
        },
        "/shutdown": {
            "post": {
                "summary": "Start Shutdown",
                "operationId": "start_shutdown_shutdown_post",
                "responses": {"200": _ok_response()},
            }
        },
    }
    return {
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": "0.1.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def load_ref(ref: str) -> tuple[str, str]:
    """Import ``file.py:Name`` the way the Cog runtime does; return (module, name)."""
    module_path, _, name = ref.partition(":")
    module_name = os.path.basename(module_path)
    if module_name.endswith(".py"):
        module_name = module_name[:-3]
    spec = importlib.util.spec_from_file_location(module_name, module_path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load a module from {module_path!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    if not name:
        name = "Runner" if hasattr(module, "Runner") else "Predictor"
    return module_name, name


def probe(ref: str, train: bool) -> dict[str, Any]:
    """Inspect the predictor named by ``ref`` and return the full document."""
    from cog import __version__ as cog_version
    from cog import _adt as adt
    from cog import _inspector

    module_name, name = load_ref(ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        info = _inspector.create_predictor(module_name, name)
    input_schema, enums = build_input_schema(adt, info.inputs)
    output_schema = info.output.json_type()
    doc = build_document(input_schema, output_schema, enums, train=train)
    return {"ok": True, "schema": doc, "cog_version": cog_version}


def missing_packages(names: list[str]) -> list[str]:
    """The distributions among ``names`` that this interpreter does not have."""
    import importlib.metadata as metadata

    missing = []
    for name in names:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def main(argv: list[str]) -> int:
    packages: list[str] = []
    if "--packages" in argv:
        at = argv.index("--packages")
        packages = [p for p in (argv[at + 1] if at + 1 < len(argv) else "").split(",") if p]
        argv = argv[:at] + argv[at + 2 :]
    if not argv:
        print(
            "usage: schema_probe.py (REF [--train] | --version) [--packages A,B]", file=sys.stderr
        )
        return 2
    if argv[0] == "--version":
        from cog import __version__ as cog_version

        version = {"ok": True, "cog_version": cog_version}
        version["missing_packages"] = missing_packages(packages)
        sys.stdout.write(MARKER + json.dumps(version) + "\n")
        return 0
    ref, train = argv[0], "--train" in argv[1:]
    sys.path.insert(0, os.getcwd())
    # The predictor's own prints must not corrupt the JSON on stdout.
    real_stdout = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):
            result = probe(ref, train)
    except BaseException as exc:
        tb = traceback.format_exc(limit=-3)
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": tb}
    result["missing_packages"] = missing_packages(packages)
    real_stdout.write(MARKER + json.dumps(result) + "\n")
    real_stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
