"""The playground on a model page: a form generated from the latest version's input schema.

The server renders the form (every label, default, choice and description escaped); the page's
script (``static/playground.js``, allowed by the CSP nonce) reads the fields' ``data-*``
attributes, uploads file inputs through ``POST /v1/files``, creates the prediction with
``stream: true``, follows it (``urls.stream`` when the model streams, else polling), renders its
logs and output with DOM APIs only, and keeps the equivalent ``replicate run`` command line and
Python call up to date. When the server only accepts configured tokens, the form asks for one and
the script keeps it in the tab's ``sessionStorage`` only.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .common import concatenate, e, items_schema, logs_box

__all__ = ["cli_command", "field_kind", "input_fields", "python_call", "render_playground"]

#: The token the page sends when the server accepts any token.
ANY_TOKEN = "r8_local_playground"

_PLAIN = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")


def _resolve(spec: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    """A property with its ``$ref`` / ``allOf`` targets merged in (its own keys win)."""
    if not isinstance(spec, dict):
        return {}
    merged = {k: v for k, v in spec.items() if k not in ("allOf", "$ref")}
    refs = [spec] if "$ref" in spec else list(spec.get("allOf") or [])
    for part in refs:
        ref = part.get("$ref", "") if isinstance(part, dict) else ""
        target = schemas.get(ref.rsplit("/", 1)[-1]) if ref else part
        if isinstance(target, dict):
            for key, value in target.items():
                merged.setdefault(key, value)
    return merged


def input_fields(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
    """``(name, resolved property, required)`` of a schema's inputs, in ``x-order``."""
    schemas = (doc.get("components") or {}).get("schemas") or {}
    inp = schemas.get("Input") or {}
    props = inp.get("properties") or {}
    if not isinstance(props, dict):
        return []
    required = set(inp.get("required") or [])
    fields = [(str(k), _resolve(v, schemas), k in required) for k, v in props.items()]

    def order(f: tuple[str, dict[str, Any], bool]) -> tuple[float, str]:
        x = f[1].get("x-order")
        return (x if isinstance(x, (int, float)) else float(1 << 30), f[0])

    return sorted(fields, key=order)


def field_kind(prop: dict[str, Any]) -> str:
    """How a property is entered: enum, boolean, integer, number, file, files, array, string or json."""
    if isinstance(prop.get("enum"), list) and prop["enum"]:
        return "enum"
    typ = prop.get("type")
    if typ == "array":
        items = items_schema(prop)
        return "files" if items.get("format") == "uri" else "array"
    if typ == "string":
        return "file" if prop.get("format") == "uri" else "string"
    if typ in ("boolean", "integer", "number"):
        return str(typ)
    return "json"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1e15


def _control(name: str, prop: dict[str, Any], kind: str, required: bool) -> str:
    """The input element(s) of one field."""
    ident = f"in-{name}"
    default = prop.get("default")
    has_default = "default" in prop and default is not None
    req = " required" if required and not has_default else ""
    if kind == "enum":
        choices = prop["enum"]
        options = []
        if not required and not has_default:
            options.append('<option value="">(not set)</option>')
        for i, choice in enumerate(choices):
            sel = " selected" if has_default and choice == default else ""
            label = choice if isinstance(choice, str) else json.dumps(choice)
            options.append(f'<option value="{i}"{sel}>{e(label)}</option>')
        return (
            f'<select id="{e(ident)}" data-choices="{e(json.dumps(choices))}"{req}>'
            f"{''.join(options)}</select>"
        )
    if kind == "boolean":
        return f'<input type="checkbox" id="{e(ident)}"{" checked" if default is True else ""}>'
    if kind in ("integer", "number"):
        lo, hi = prop.get("minimum"), prop.get("maximum")
        attrs = f' step="{"1" if kind == "integer" else "any"}"'
        attrs += f' min="{e(lo)}"' if _finite(lo) else ""
        attrs += f' max="{e(hi)}"' if _finite(hi) else ""
        value = f' value="{e(default)}"' if _finite(default) else ""
        box = f'<input type="number" id="{e(ident)}"{attrs}{value}{req}>'
        if _finite(lo) and _finite(hi):
            box += (
                f'<input type="range" data-for="{e(ident)}"{attrs}{value} aria-label="{e(name)}">'
            )
        return box
    if kind == "file":
        return (
            f'<input type="file" id="{e(ident)}">'
            f'<div class="or">or a URL</div><input type="url" id="url-{e(name)}" '
            'placeholder="https://...">'
        )
    if kind == "files":
        return f'<input type="file" id="{e(ident)}" multiple>'
    if kind == "array":
        text = "\n".join(
            x if isinstance(x, str) else json.dumps(x)
            for x in (default if isinstance(default, list) else [])
        )
        return f'<textarea id="{e(ident)}" rows="3">{e(text)}</textarea>'
    if kind == "json":
        text = json.dumps(default) if has_default else ""
        return f'<textarea id="{e(ident)}" rows="3">{e(text)}</textarea>'
    text = default if isinstance(default, str) else ""
    rows = 3 if len(text) > 60 or "\n" in text else 1
    return f'<textarea id="{e(ident)}" rows="{rows}"{req}>{e(text)}</textarea>'


def _hint(prop: dict[str, Any], kind: str) -> str:
    parts = []
    if prop.get("description"):
        parts.append(str(prop["description"]))
    label = {"file": "file", "files": "files", "json": "JSON"}.get(
        kind, str(prop.get("type") or kind)
    )
    if kind == "array":
        item = (
            (prop.get("items") or {}).get("type", "any")
            if isinstance(prop.get("items"), dict)
            else "any"
        )
        label = f"list of {item}, one per line"
    bounds = []
    for key, word in (
        ("minimum", "min"),
        ("maximum", "max"),
        ("minLength", "min length"),
        ("maxLength", "max length"),
    ):
        if _finite(prop.get(key)):
            bounds.append(f"{word} {prop[key]}")
    parts.append(label + (f" ({', '.join(bounds)})" if bounds else ""))
    return f'<p class="hint">{e(" · ".join(parts))}</p>'


def _item_attr(prop: dict[str, Any], kind: str) -> str:
    if kind != "array":
        return ""
    items = items_schema(prop)
    return f' data-item="{e(items.get("type") or "any")}"'


def _field(name: str, prop: dict[str, Any], required: bool) -> str:
    kind = field_kind(prop)
    default = json.dumps(prop["default"]) if "default" in prop else ""
    star = " <b>*</b>" if required else ""
    if kind == "boolean":
        head = ""
        control = f"<label>{_control(name, prop, kind, required)} {e(name)}{star}</label>"
    else:
        head = f'<label for="in-{e(name)}">{e(name)}{star}</label>'
        control = _control(name, prop, kind, required)
    return (
        f'<div class="field{" bool" if kind == "boolean" else ""}" data-name="{e(name)}" '
        f'data-kind="{e(kind)}" data-default="{e(default)}"{_item_attr(prop, kind)}'
        f"{' data-required=1' if required else ''}>{head}{control}{_hint(prop, kind)}</div>"
    )


def _shell(value: str) -> str:
    """POSIX shell quoting, as the page's script does it."""
    return value if _PLAIN.match(value) else "'" + value.replace("'", "'\\''") + "'"


def _cli_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def cli_command(ref: str, inputs: dict[str, Any]) -> str:
    """``replicate run REF -i key=value ...`` for an input (the page's script builds the same)."""
    args = [f"-i {_shell(f'{k}={_cli_value(v)}')}" for k, v in inputs.items()]
    return " ".join(["replicate run", _shell(ref), *args])


def python_call(ref: str, inputs: dict[str, Any]) -> str:
    """The ``replicate.run`` call for an input."""
    body = "".join(f"        {json.dumps(k)}: {_py(v)},\n" for k, v in inputs.items())
    body = f"\n{body}    " if body else ""
    return (
        "import replicate\n\noutput = replicate.run(\n"
        f"    {json.dumps(ref)},\n    input={{{body}}},\n)\nprint(output)"
    )


def _py(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_py(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def render_playground(
    doc: dict[str, Any], ref: str, origin: str, *, token_required: bool, sample: dict[str, Any]
) -> str:
    """The playground's HTML: the form, the run area, the command line and the Python call."""
    fields = input_fields(doc)
    rendered = "".join(_field(n, p, r) for n, p, r in fields) or (
        '<p class="note">This model takes no input.</p>'
    )
    token = ""
    if token_required:
        token = (
            '<div class="field" id="pg-token-field"><label for="pg-token">API token</label>'
            '<input type="password" id="pg-token" autocomplete="off" spellcheck="false">'
            '<p class="hint">This server only accepts its own tokens (--token). The token is '
            "kept in this tab only.</p></div>"
        )
    output = "concat" if concatenate(doc) else ""
    return (
        f'<h2 id="try">Playground</h2><form id="playground" class="pg" data-model="{e(ref)}" '
        f'data-output="{output}" data-origin="{e(origin)}" '
        f'data-token="{"required" if token_required else e(ANY_TOKEN)}">'
        f"{rendered}{token}"
        '<div class="actions"><button type="submit" id="pg-run">Run</button>'
        '<button type="button" id="pg-cancel" hidden>Cancel</button>'
        '<span id="pg-status" class="status"></span>'
        '<a id="pg-link" hidden target="_blank" rel="noopener">prediction page</a></div>'
        '<pre class="error" id="pg-error"></pre></form>'
        '<div id="pg-result" hidden><h3>Output</h3><div id="pg-output"></div>'
        f"<h3>Logs</h3>{logs_box('', 'pg-logs')}</div>"
        f'<h3>Command line</h3><pre id="pg-cli">{e(cli_command(ref, sample))}</pre>'
        f'<p class="meta">with <code>REPLICATE_BASE_URL={e(origin)}</code> and an API token in '
        "<code>REPLICATE_API_TOKEN</code></p>"
        f'<h3>Python</h3><pre id="pg-python">{e(python_call(ref, sample))}</pre>'
    )
