"""A model's page behind its ``url`` (``/web/{owner}/{name}``): description, latest version,
the playground, the input schema, examples and recent predictions with their outputs, and the
README rendered as Markdown."""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from .common import (
    Files,
    concatenate,
    document,
    e,
    headers,
    input_excerpt,
    items_schema,
    model_href,
    not_found_page,
    output_summary,
    safe_url,
    static_text,
    table,
    when,
)
from .markdown import render_markdown
from .playground import input_fields, render_playground

if TYPE_CHECKING:
    from ..core import Core

__all__ = ["model_page", "prediction_list", "render_model"]

#: Predictions and examples listed on a model page.
MODEL_PAGE_PREDICTIONS = 10


def _type_label(prop: dict[str, Any]) -> str:
    typ = prop.get("type")
    if typ == "array":
        items = items_schema(prop)
        item = "file" if items.get("format") == "uri" else items.get("type", "any")
        return f"array of {item}"
    if prop.get("format") == "uri":
        return "file"
    return str(typ or "any")


def _input_schema_table(doc: dict[str, Any]) -> str:
    fields = input_fields(doc)
    if not fields:
        return '<p class="note">This model takes no input.</p>'
    rows = []
    for name, prop, required in fields:
        notes = []
        enum = prop.get("enum")
        if isinstance(enum, list) and enum:
            notes.append("one of " + ", ".join(e(json.dumps(x)) for x in enum))
        for key, word in (("minimum", "min"), ("maximum", "max"), ("minLength", "min length")):
            if key in prop:
                notes.append(f"{word} {e(prop[key])}")
        default = e(json.dumps(prop["default"])) if "default" in prop else ""
        rows.append(
            f"<tr><td><code>{e(name)}</code>{' <b>*</b>' if required else ''}</td>"
            f"<td>{e(_type_label(prop))}</td><td><code>{default}</code></td>"
            f"<td>{e(prop.get('description') or '')}"
            f"{'<br><span class=meta>' + '; '.join(notes) + '</span>' if notes else ''}</td></tr>"
        )
    head = "<tr><th>Name</th><th>Type</th><th>Default</th><th>Description</th></tr>"
    return table(head + "".join(rows), "schema") + '<p class="meta">* required</p>'


def _output_label(doc: dict[str, Any]) -> str:
    out = ((doc.get("components") or {}).get("schemas") or {}).get("Output") or {}
    label = _type_label(out)
    if out.get("x-cog-array-type") == "iterator":
        label = "iterator" + (" (concatenated text)" if concatenate(doc) else "")
    return label


def prediction_list(
    core: Core, rows: list[dict[str, Any]], origin: str, *, with_model: bool = False
) -> str:
    """A table of predictions: id and status, (model,) input, output summary, creation time."""
    items = []
    concat_by_version: dict[str, bool] = {}
    for r in rows:
        version = str(r.get("version") or "")
        if version not in concat_by_version:
            v = core.registry.get_version(version) if version else None
            concat_by_version[version] = concatenate(v["openapi_schema"] if v else None)
        files = Files(core, origin)
        files.collect(r.get("output"))
        out = output_summary(
            core.files.render(r.get("output"), origin), files, concat=concat_by_version[version]
        )
        model = ""
        if with_model:
            href = model_href(str(r.get("model") or ""))
            name = e(r.get("model") or "")
            model = f'<td><a href="{href}">{name}</a></td>' if href else f"<td>{name}</td>"
        items.append(
            f'<tr class="prediction"><td><a href="/web/p/{e(r["id"])}">{e(r["id"])}</a><br>'
            f'<span class="status {e(r["status"])}">{e(r["status"])}</span></td>{model}'
            f'<td>{input_excerpt(r.get("input"))}</td><td class="out">{out}</td>'
            f"<td class=meta>{when(r['created_at'])}</td></tr>"
        )
    head = (
        "<tr><th>Prediction</th>"
        + ("<th>Model</th>" if with_model else "")
        + "<th>Input</th><th>Output</th><th>Created</th></tr>"
    )
    return table(head + "".join(items), "predictions")


def _meta(core: Core, m: dict[str, Any], ref: str) -> str:
    meta = [f"<span>{e(m.get('visibility') or 'public')}</span>"]
    if m.get("is_official"):
        meta.append("<span>official</span>")
    try:
        tags = json.loads(m.get("tags") or "[]")
    except ValueError:
        tags = []
    if isinstance(tags, list) and tags:
        meta.append(f"<span>Tags: {e(', '.join(str(t) for t in tags))}</span>")
    count = core.store.one(
        "SELECT COUNT(*) AS n FROM predictions WHERE model = ? AND is_example = 0", (ref,)
    )
    meta.append(f"<span>{count['n'] if count else 0} runs</span>")
    for key, label in (
        ("github_url", "GitHub"),
        ("paper_url", "Paper"),
        ("license_url", "License"),
        ("weights_url", "Weights"),
    ):
        url = safe_url(m.get(key))
        if url:
            meta.append(f'<span><a href="{e(url)}" rel="noopener noreferrer">{label}</a></span>')
    return f'<p class="meta">{"".join(meta)}</p>'


def render_model(core: Core, m: dict[str, Any], origin: str, *, nonce: str | None = None) -> str:
    """The HTML page of a model row (with the playground when it has a version and a nonce)."""
    owner, name = str(m["owner"]), str(m["name"])
    ref = f"{owner}/{name}"
    parts = [f"<h1>{e(ref)}</h1>"]
    if m.get("description"):
        parts.append(f'<p id="description">{e(m["description"])}</p>')
    parts.append(_meta(core, m, ref))
    cover = safe_url(m.get("cover_image_url"))
    if cover:
        parts.append(f'<div class="media"><img src="{e(cover)}" alt="cover" height="160"></div>')
    versions = core.registry.list_versions(owner, name)
    playground = False
    if versions:
        latest = versions[0]
        doc = latest["openapi_schema"] or {}
        parts.append(
            f'<h2>Latest version</h2><p class="meta"><span><code id="latest-version">'
            f"{e(latest['id'])}</code></span><span>{when(latest['created_at'])}</span>"
            + (f"<span>Cog {e(latest['cog_version'])}</span>" if latest.get("cog_version") else "")
            + f"<span>{len(versions)} version{'s' if len(versions) != 1 else ''}</span></p>"
        )
        example = core.store.query_predictions(
            "model = ? AND is_example = 1", (ref,), "created_at DESC", 1
        )
        sample = (
            example[0]["input"] if example and isinstance(example[0].get("input"), dict) else {}
        )
        if nonce:
            playground = True
            parts.append(
                render_playground(
                    doc, ref, origin, token_required=core.config.tokens is not None, sample=sample
                )
            )
        parts.append(f"<h2>Input</h2>{_input_schema_table(doc)}")
        parts.append(f"<h2>Output</h2><p><code>{e(_output_label(doc))}</code></p>")
    else:
        parts.append('<h2>Latest version</h2><p class="note">No versions yet.</p>')
    examples = core.store.query_predictions(
        "model = ? AND is_example = 1", (ref,), "created_at DESC", MODEL_PAGE_PREDICTIONS
    )
    if examples:
        parts.append(f"<h2>Examples</h2>{prediction_list(core, examples, origin)}")
    if core.config.tokens is None:
        # Without configured tokens any bearer token can list predictions through the API, so
        # listing them here reveals nothing new; with tokens, prediction ids stay private.
        recent = core.store.query_predictions(
            "model = ? AND is_example = 0 AND kind = 'prediction'",
            (ref,),
            "created_at DESC, id DESC",
            MODEL_PAGE_PREDICTIONS,
        )
        if recent:
            parts.append(f"<h2>Recent predictions</h2>{prediction_list(core, recent, origin)}")
    if m.get("readme"):
        parts.append(
            f'<h2>README</h2><div class="readme" id="readme">{render_markdown(str(m["readme"]))}</div>'
        )
    script = static_text("playground.js") if playground else ""
    return document(ref, "".join(parts), nonce=nonce if playground else None, script=script)


def model_page(core: Core, request: Request, origin: str) -> Response:
    """``GET /web/{owner}/{name}``: the model page.

    Private models are shown only when the server accepts any token (then the API shows them to
    anyone anyway); with configured tokens they get the 404 page like unknown models.
    """
    owner, name = request.path_params["owner"], request.path_params["name"]
    m = core.registry.get_model(owner, name)
    if m is None or (m["visibility"] != "public" and core.config.tokens is not None):
        return not_found_page(f"Model {owner}/{name}")
    nonce = secrets.token_urlsafe(16) if core.registry.latest_version(owner, name) else None
    return HTMLResponse(render_model(core, m, origin, nonce=nonce), headers=headers(nonce))
