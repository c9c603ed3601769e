"""A fake Replicate API for the run() scenarios: handlers for ``httpx.MockTransport``.

Answers a prediction create with HTTP 201, ``Preference-Applied: wait`` and a succeeded
prediction (the API's "finished within the wait" answer), the version lookup that 1.0.7 makes
for ``owner/name:version`` refs, and prediction GETs (never needed when the client honours the
finished answer). Every request is recorded in ``REQUESTS`` while ``RECORD`` is true.
"""

from __future__ import annotations

import asyncio

import httpx
from _common import JSON_HEADERS, load_body, load_json

PREDICTION = load_json("run_prediction.json")
PREDICTION_BODY = load_body("run_prediction.json")
VERSION_BODY = load_body("version.json")
VERSION_ID: str = PREDICTION["version"]
MODEL: str = PREDICTION["model"]
REF = f"{MODEL}:{VERSION_ID}"
#: The kinds of reference the run() scenarios take (``--ref``): a pinned version, or the model
#: alone (official models: one POST to the model's predictions endpoint in every client).
REFS = ("version", "model")
MODEL_PATH = f"/v1/models/{MODEL}/predictions"
INPUT = dict(PREDICTION["input"])
OUTPUT = PREDICTION["output"]
VERSION_PATH = f"/v1/models/{MODEL}/versions/{VERSION_ID}"
CREATED_HEADERS = {**JSON_HEADERS, "preference-applied": "wait"}

RECORD = False
REQUESTS: list[str] = []


def route(request: httpx.Request) -> httpx.Response:
    """Answer one API request."""
    path = request.url.path
    if RECORD:
        prefer = request.headers.get("prefer")
        REQUESTS.append(f"{request.method} {path}" + (f" (Prefer: {prefer})" if prefer else ""))
    if request.method == "POST" and (
        path == "/v1/predictions"
        or (path.startswith("/v1/models/") and path.endswith("/predictions"))
    ):
        return httpx.Response(201, content=PREDICTION_BODY, headers=CREATED_HEADERS)
    if request.method == "GET" and path == VERSION_PATH:
        return httpx.Response(200, content=VERSION_BODY, headers=JSON_HEADERS)
    if request.method == "GET" and path == f"/v1/predictions/{PREDICTION['id']}":
        return httpx.Response(200, content=PREDICTION_BODY, headers=JSON_HEADERS)
    return httpx.Response(404, json={"detail": f"not found: {request.method} {path}"})


def make_async_route(delay: float):  # type: ignore[no-untyped-def]
    """An async handler that sleeps ``delay`` seconds per request, then answers like ``route``."""

    async def async_route(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(delay)
        return route(request)

    return async_route


def ref_of(kind: str) -> str:
    """The ``run()`` reference for ``--ref kind``."""
    return REF if kind == "version" else MODEL


def raw_create(kind: str) -> tuple[str, dict[str, object]]:
    """The path and JSON body raw httpx sends by hand for ``--ref kind`` (with ``Prefer: wait``)."""
    if kind == "version":
        return "/v1/predictions", {"input": INPUT, "version": VERSION_ID}
    return MODEL_PATH, {"input": INPUT}


def output_matches(output: object) -> bool:
    """Whether a run() result is the expected output (a list of FileOutput/URL strings)."""
    if not isinstance(output, list) or len(output) != len(OUTPUT):
        return False
    return all(
        str(item) == url or getattr(item, "url", None) == url
        for item, url in zip(output, OUTPUT, strict=True)
    )
