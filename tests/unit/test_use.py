"""use(): model resolution, output post-processing by schema, chaining, background runs."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import httpx
import pytest

import replicate
from replicate.use import AsyncFunction, Function, URLPath, get_path_url

VERSION = "a" * 64
URI_SCHEMA = {
    "components": {
        "schemas": {
            "Input": {"type": "object", "properties": {"prompt": {"type": "string"}}},
            "Output": {"type": "array", "items": {"type": "string", "format": "uri"}},
        }
    }
}
TEXT_SCHEMA = {
    "components": {
        "schemas": {
            "Output": {
                "type": "array",
                "items": {"type": "string"},
                "x-cog-array-type": "iterator",
                "x-cog-array-display": "concatenate",
            }
        }
    }
}


class FakeAPI:
    """Answers models.get, versions.get, prediction create/get with the given schema and output."""

    def __init__(self, schema: dict[str, Any], output: Any, *, official: bool = False) -> None:
        self.schema = schema
        self.output = output
        self.official = official
        self.requests: list[httpx.Request] = []
        self.polls_before_done = 0

    def prediction(self, status: str) -> dict[str, Any]:
        return {
            "id": "p1",
            "model": "acme/model",
            "version": VERSION,
            "status": status,
            "input": {},
            "output": self.output if status == "succeeded" else None,
            "error": None,
            "urls": {"get": "https://api.replicate.com/v1/predictions/p1"},
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/v1/models/acme/model":
            latest = {
                "id": VERSION,
                "openapi_schema": self.schema,
                "created_at": "2024-01-01T00:00:00Z",
            }
            return httpx.Response(
                200,
                json={
                    "owner": "acme",
                    "name": "model",
                    "latest_version": latest,
                    "is_official": self.official,
                },
            )
        if path == f"/v1/models/acme/model/versions/{VERSION}":
            return httpx.Response(200, json={"id": VERSION, "openapi_schema": self.schema})
        if request.method == "POST" and path in (
            "/v1/predictions",
            "/v1/models/acme/model/predictions",
        ):
            if "wait" in request.headers.get("prefer", ""):
                return httpx.Response(
                    201, json=self.prediction("succeeded"), headers={"Preference-Applied": "wait"}
                )
            return httpx.Response(201, json=self.prediction("starting"))
        if path == "/v1/predictions/p1":
            if self.polls_before_done > 0:
                self.polls_before_done -= 1
                return httpx.Response(200, json=self.prediction("processing"))
            return httpx.Response(200, json=self.prediction("succeeded"))
        if path.startswith("/files/"):
            return httpx.Response(200, content=b"PNGDATA")
        return httpx.Response(404, json={"detail": f"unexpected {request.method} {path}"})


def make(api: FakeAPI) -> replicate.Client:
    return replicate.Client("t", transport=httpx.MockTransport(api), poll_interval=0)


def call(fn: Function | AsyncFunction, mode: str, **inputs: Any) -> Any:
    if mode == "sync":
        return fn(**inputs)
    return asyncio.run(fn(**inputs))  # type: ignore[arg-type]


MODES = ["sync", "async"]


def test_use_does_no_io() -> None:
    api = FakeAPI(URI_SCHEMA, [])
    fn = make(api).use("acme/model")
    assert isinstance(fn, Function)
    assert api.requests == []
    assert fn.ref == "acme/model"


@pytest.mark.parametrize("mode", MODES)
def test_latest_version_and_uri_outputs_become_paths(mode: str, tmp_path: Any) -> None:
    url = f"https://files.example.com/files/{os.getpid()}-{mode}-{id(tmp_path)}.png"
    api = FakeAPI(URI_SCHEMA, [url])
    fn = make(api).use("acme/model", use_async=mode == "async")
    [image] = call(fn, mode, prompt="x")
    assert isinstance(image, URLPath)
    assert get_path_url(image) == url
    create = next(r for r in api.requests if r.method == "POST")
    assert create.url.path == "/v1/predictions"
    assert json.loads(create.content)["version"] == VERSION
    with open(image, "rb") as f:  # downloads on first use
        assert f.read() == b"PNGDATA"
    assert os.fspath(image) == str(image)
    download = api.requests[-1]
    assert download.url.host == "files.example.com"
    assert "authorization" not in download.headers
    call(fn, mode, prompt="again")
    assert sum(r.url.path == "/v1/models/acme/model" for r in api.requests) == 1


@pytest.mark.parametrize("mode", MODES)
def test_official_model_uses_versionless_create_and_concatenates(mode: str) -> None:
    api = FakeAPI(TEXT_SCHEMA, ["hel", "lo"], official=True)
    fn = make(api).use("acme/model", use_async=mode == "async")
    assert call(fn, mode) == "hello"
    create = next(r for r in api.requests if r.method == "POST")
    assert create.url.path == "/v1/models/acme/model/predictions"


@pytest.mark.parametrize("mode", MODES)
def test_pinned_version_looks_up_schema_and_polls(mode: str) -> None:
    api = FakeAPI(TEXT_SCHEMA, ["a", "b"])
    api.polls_before_done = 2
    client = make(api)
    fn = client.use(f"acme/model:{VERSION}", use_async=mode == "async")
    if mode == "sync":
        run = fn.create()
        assert run.output() == "ab"
    else:

        async def main() -> Any:
            run = await fn.create()
            return await run.output()

        assert asyncio.run(main()) == "ab"
    paths = [r.url.path for r in api.requests]
    assert f"/v1/models/acme/model/versions/{VERSION}" in paths
    assert paths.count("/v1/predictions/p1") == 3


def test_chaining_outputs_into_inputs() -> None:
    api = FakeAPI(URI_SCHEMA, ["https://files.example.com/files/out.png"])
    client = make(api)
    fn = client.use("acme/model")
    [image] = fn(prompt="x")
    fn(image=image)
    body = json.loads([r for r in api.requests if r.method == "POST"][-1].content)
    assert body["input"] == {"image": "https://files.example.com/files/out.png"}


def test_streaming_yields_text_chunks() -> None:
    api = FakeAPI(TEXT_SCHEMA, ["a", "b", "c"])
    fn = make(api).use("acme/model", streaming=True)
    assert list(fn()) == ["a", "b", "c"]


def test_openapi_schema_resolves_refs() -> None:
    schema = {
        "components": {
            "schemas": {
                "Input": {"properties": {"s": {"allOf": [{"$ref": "#/components/schemas/s"}]}}},
                "s": {"type": "string", "enum": ["a"]},
                "Output": {"type": "string"},
            }
        }
    }
    fn = make(FakeAPI(schema, "x")).use("acme/model")
    resolved = fn.openapi_schema()
    assert resolved["components"]["schemas"]["Input"]["properties"]["s"]["allOf"][0]["enum"] == [
        "a"
    ]
    assert "$ref" not in json.dumps(resolved)


def test_failed_prediction_raises_model_error() -> None:
    api = FakeAPI(TEXT_SCHEMA, None)

    def failing(request: httpx.Request) -> httpx.Response:
        response = api(request)
        if request.method == "POST":
            body = api.prediction("failed")
            body["error"] = "boom"
            return httpx.Response(201, json=body, headers={"Preference-Applied": "wait"})
        return response

    fn = replicate.Client("t", transport=httpx.MockTransport(failing)).use("acme/model")
    with pytest.raises(replicate.exceptions.ModelError, match="boom"):
        fn()


def test_bad_ref_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Invalid"):
        replicate.Client("t").use("not a ref")
