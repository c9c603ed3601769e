"""replicate.search / client.search (sync and async): query string, validation, result types."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

import replicate
from replicate.client import Client
from replicate.exceptions import BadRequestError
from replicate.model import Model
from replicate.search import (
    SearchCollection,
    SearchModelMetadata,
    SearchModelResult,
    SearchPage,
    SearchResponse,
)

MODES = ["sync", "async"]
RESPONSE = {
    "query": "nano banana",
    "models": [
        {
            "metadata": {
                "generated_description": "Edits images",
                "score": 1.38,
                "tags": ["text-to-image", "image-editing"],
            },
            "model": {
                "owner": "google",
                "name": "nano-banana",
                "url": "https://replicate.com/google/nano-banana",
                "visibility": "public",
                "run_count": 4304274,
                "default_example": None,
                "latest_version": {
                    "id": "5" * 64,
                    "created_at": "2025-09-12T16:36:33.884779Z",
                    "cog_version": "0.16.7",
                    "openapi_schema": {},
                },
            },
        }
    ],
    "collections": [
        {
            "name": "Image Editing",
            "slug": "image-editing",
            "description": "Edit images",
            "models": ["google/nano-banana"],
        },
        {"name": "Other", "slug": "other", "description": "x", "models": None},
    ],
    "pages": [{"href": "/docs/guides/image-editing", "name": "Image editing"}],
}


class Api:
    def __init__(self, status: int = 200, body: Any = RESPONSE) -> None:
        self.status, self.body = status, body
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.body)

    def client(self) -> Client:
        return Client("r8_test", transport=httpx.MockTransport(self), retry=False)


def run_search(mode: str, client: Client, *args: Any, **kwargs: Any) -> SearchResponse:
    if mode == "sync":
        return client.search(*args, **kwargs)
    return asyncio.run(client.async_search(*args, **kwargs))


@pytest.mark.parametrize("mode", MODES)
def test_search_request_and_result_types(mode: str) -> None:
    api = Api()
    client = api.client()
    result = run_search(mode, client, "nano banana")
    (request,) = api.requests
    assert request.method == "GET"
    assert request.url.path == "/v1/search"
    assert request.url.query == b"query=nano+banana"
    assert request.content == b""
    assert isinstance(result, SearchResponse)
    assert result.query == "nano banana"
    (hit,) = result.models
    assert isinstance(hit, SearchModelResult)
    assert isinstance(hit.model, Model)
    assert hit.model.id == "google/nano-banana"
    assert hit.model._client is client
    assert hit.model.latest_version is not None and hit.model.latest_version._client is client
    assert isinstance(hit.metadata, SearchModelMetadata)
    assert hit.metadata.tags == ["text-to-image", "image-editing"]
    assert hit.metadata.score == pytest.approx(1.38)
    assert hit.metadata.generated_description == "Edits images"
    assert all(isinstance(c, SearchCollection) for c in result.collections)
    assert result.collections[0].models == ["google/nano-banana"]
    assert result.collections[1].models is None
    (page,) = result.pages
    assert isinstance(page, SearchPage)
    assert (page.name, page.href) == ("Image editing", "/docs/guides/image-editing")


@pytest.mark.parametrize("mode", MODES)
def test_search_limit_is_sent(mode: str) -> None:
    api = Api()
    run_search(mode, api.client(), "flux", limit=7)
    assert api.requests[0].url.params == httpx.QueryParams({"query": "flux", "limit": "7"})


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("query", "limit", "error"),
    [
        ("", None, ValueError),
        ("   ", None, ValueError),
        ("ok", 0, ValueError),
        ("ok", 51, ValueError),
        ("ok", -1, ValueError),
        ("ok", True, TypeError),
        ("ok", 2.5, TypeError),
        (None, None, TypeError),
    ],
)
def test_search_validation_happens_before_any_request(
    mode: str, query: Any, limit: Any, error: type[Exception]
) -> None:
    api = Api()
    with pytest.raises(error):
        run_search(mode, api.client(), query, limit=limit)
    assert api.requests == []


@pytest.mark.parametrize("mode", MODES)
def test_search_limit_bounds_are_inclusive(mode: str) -> None:
    api = Api()
    run_search(mode, api.client(), "a", limit=1)
    run_search(mode, api.client(), "a", limit=50)
    assert [r.url.params["limit"] for r in api.requests] == ["1", "50"]


@pytest.mark.parametrize("mode", MODES)
def test_search_tolerates_missing_lists_and_unknown_fields(mode: str) -> None:
    api = Api(body={"query": "x", "models": None, "beta": {"a": 1}})
    result = run_search(mode, api.client(), "x")
    assert result.models == []
    assert result.collections == []
    assert result.pages == []
    assert result.beta == {"a": 1}


@pytest.mark.parametrize("mode", MODES)
def test_search_error_detail(mode: str) -> None:
    api = Api(status=400, body={"detail": 'Query parameter "query" is required'})
    with pytest.raises(BadRequestError, match="required"):
        run_search(mode, api.client(), "x")


def test_module_level_search_uses_default_client(monkeypatch: pytest.MonkeyPatch) -> None:
    api = Api()
    monkeypatch.setattr(replicate, "default_client", api.client())
    assert replicate.search("nano banana", limit=3).query == "nano banana"
    assert asyncio.run(replicate.async_search("nano banana")).models[0].model.name == "nano-banana"
    assert [r.url.params.get("limit") for r in api.requests] == ["3", None]


def test_search_extras_and_unknown_keyword() -> None:
    api = Api()
    client = api.client()
    client.search("x", extra_query={"beta": "1"}, extra_headers={"X-Q": "2"})
    assert api.requests[0].url.params["beta"] == "1"
    assert api.requests[0].headers["x-q"] == "2"
    with pytest.raises(TypeError, match="nonsense"):
        client.search("x", nonsense=1)
    assert len(api.requests) == 1


def test_one_odd_result_does_not_demote_the_others() -> None:
    odd = {
        "model": {"owner": "x", "name": "y", "run_count": "lots"},
        "metadata": {"tags": "not-a-list", "score": "high"},
    }
    api = Api(body={**RESPONSE, "models": [*RESPONSE["models"], odd]})
    result = api.client().search("x")
    assert [type(r.model) for r in result.models] == [Model, Model]
    assert result.models[1].model.run_count == "lots"
    assert result.models[1].metadata.tags == "not-a-list"
    assert result.models[0].metadata.score == pytest.approx(1.38)
