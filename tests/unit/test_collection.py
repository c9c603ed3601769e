"""collections.list / get (sync and async): wire format, pages, nested client-bound models."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import httpx
import pytest

from replicate.client import Client
from replicate.collection import Collection, Collections
from replicate.exceptions import NotFoundError
from replicate.model import Model
from replicate.pagination import Page, async_paginate, paginate

MODES = ["sync", "async"]
MODEL = {
    "url": "https://replicate.com/acme/painter",
    "owner": "acme",
    "name": "painter",
    "description": "Paints",
    "visibility": "public",
    "run_count": 12,
    "latest_version": {
        "id": "a" * 64,
        "created_at": "2024-01-01T00:00:00Z",
        "cog_version": "0.9.0",
        "openapi_schema": {},
    },
    "default_example": None,
}
COLLECTION = {
    "name": "Text to image",
    "slug": "text-to-image",
    "description": "Models that generate images",
    "full_description": "# Text to image",
    "models": [MODEL, {**MODEL, "name": "sketcher", "url": "https://replicate.com/acme/sketcher"}],
}
LIST_PAGE = {
    "next": "https://api.replicate.com/v1/collections?cursor=abc",
    "previous": None,
    "results": [
        {"name": "Vision", "slug": "vision-models", "description": "Vision"},
        {"name": "Audio", "slug": "audio-generation", "description": "Audio"},
    ],
}
LAST_PAGE = {
    "next": None,
    "previous": "https://api.replicate.com/v1/collections",
    "results": [{"name": "Video", "slug": "text-to-video", "description": "Video"}],
}


class Api:
    """A MockTransport handler: records requests, answers from a {path_and_query: body} map."""

    def __init__(self, routes: dict[str, Any], status: int = 200) -> None:
        self.routes, self.status = routes, status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        target = request.url.raw_path.decode()
        if target not in self.routes:
            return httpx.Response(404, json={"detail": f"no route {target}"})
        return httpx.Response(self.status, json=self.routes[target])

    def client(self) -> Client:
        return Client("r8_test", transport=httpx.MockTransport(self), retry=False)


def invoke(mode: str, target: Any, name: str, /, *args: Any, **kwargs: Any) -> Any:
    if mode == "sync":
        return getattr(target, name)(*args, **kwargs)
    return asyncio.run(getattr(target, f"async_{name}")(*args, **kwargs))


@pytest.mark.parametrize("mode", MODES)
def test_list_first_page(mode: str) -> None:
    api = Api({"/v1/collections": LIST_PAGE})
    client = api.client()
    assert isinstance(client.collections, Collections)
    page = invoke(mode, client.collections, "list")
    (request,) = api.requests
    assert request.method == "GET"
    assert str(request.url) == "https://api.replicate.com/v1/collections"
    assert isinstance(page, Page)
    assert page.next == LIST_PAGE["next"]
    assert page.previous is None
    assert [c.slug for c in page] == ["vision-models", "audio-generation"]
    assert all(isinstance(c, Collection) and c.models is None for c in page)
    assert all(c._client is client for c in page)


@pytest.mark.parametrize("mode", MODES)
def test_list_with_cursor_uses_the_cursor_url(mode: str) -> None:
    api = Api({"/v1/collections?cursor=abc": LAST_PAGE})
    page = invoke(mode, api.client().collections, "list", LIST_PAGE["next"])
    assert str(api.requests[0].url) == "https://api.replicate.com/v1/collections?cursor=abc"
    assert [c.slug for c in page] == ["text-to-video"]
    assert page.next is None


@pytest.mark.parametrize("mode", MODES)
def test_list_cursor_none_and_foreign_host_raise_before_any_request(mode: str) -> None:
    api = Api({})
    with pytest.raises(ValueError, match="cursor cannot be None"):
        invoke(mode, api.client().collections, "list", None)
    with pytest.raises(ValueError, match="API host"):
        invoke(mode, api.client().collections, "list", "https://evil.example/v1/collections")
    assert api.requests == []


def test_paginate_walks_all_pages() -> None:
    api = Api({"/v1/collections": LIST_PAGE, "/v1/collections?cursor=abc": LAST_PAGE})
    client = api.client()
    slugs = [c.slug for page in paginate(client.collections.list) for c in page]
    assert slugs == ["vision-models", "audio-generation", "text-to-video"]

    async def collect() -> list[str]:
        return [c.slug async for p in async_paginate(client.collections.async_list) for c in p]

    assert asyncio.run(collect()) == slugs
    assert len(api.requests) == 4


@pytest.mark.parametrize("mode", MODES)
def test_get_parses_nested_models_bound_to_the_client(mode: str) -> None:
    api = Api({"/v1/collections/text-to-image": COLLECTION})
    client = api.client()
    collection = invoke(mode, client.collections, "get", "text-to-image")
    (request,) = api.requests
    assert request.method == "GET"
    assert str(request.url) == "https://api.replicate.com/v1/collections/text-to-image"
    assert isinstance(collection, Collection)
    assert collection.name == "Text to image"
    assert collection.full_description == "# Text to image"
    assert len(collection) == 2
    models = list(collection)
    assert all(isinstance(m, Model) for m in models)
    assert [m.id for m in models] == ["acme/painter", "acme/sketcher"]
    assert all(m._client is client for m in models)
    assert models[0].latest_version is not None
    assert models[0].latest_version._client is client
    assert collection[1].name == "sketcher"
    assert [m.name for m in collection[0:1]] == ["painter"]


@pytest.mark.parametrize("mode", MODES)
def test_get_quotes_the_slug_and_maps_404(mode: str) -> None:
    api = Api({})
    with pytest.raises(NotFoundError):
        invoke(mode, api.client().collections, "get", "a b/c")
    assert api.requests[0].url.raw_path == b"/v1/collections/a%20b%2Fc"


@pytest.mark.parametrize("mode", MODES)
def test_get_rejects_empty_slug(mode: str) -> None:
    api = Api({})
    with pytest.raises(ValueError, match="slug"):
        invoke(mode, api.client().collections, "get", "")
    assert api.requests == []


@pytest.mark.parametrize("mode", MODES)
def test_extras_and_unknown_keywords(mode: str) -> None:
    api = Api({"/v1/collections?x=1": LAST_PAGE, "/v1/collections/s": COLLECTION})
    invoke(mode, api.client().collections, "list", extra_query={"x": "1"})
    invoke(mode, api.client().collections, "get", "s", extra_headers={"X-Y": "z"})
    assert api.requests[1].headers["x-y"] == "z"
    with pytest.raises(TypeError, match="bogus"):
        invoke(mode, api.client().collections, "get", "s", bogus=1)
    assert len(api.requests) == 2


def test_collection_sequence_behaviour_without_models() -> None:
    collection = Collection(slug="s", name="n", description="d")
    assert collection.models is None
    assert list(collection) == []
    assert len(collection) == 0
    assert collection[0] is None
    assert collection[0:2] is None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert collection.id == "s"
    assert [w.category for w in caught] == [DeprecationWarning]


def test_collection_tolerates_missing_fields_and_keeps_extras() -> None:
    collection = Collection._from_api({"slug": "s", "models": [], "weird": True})
    assert collection.name is None
    assert collection.weird is True
    assert len(collection) == 0
    assert collection[0:1] == []


def test_one_odd_model_does_not_demote_the_others() -> None:
    odd = {
        **MODEL,
        "name": "odd",
        "run_count": "many",
        "latest_version": {"id": 5, "created_at": "?"},
    }
    collection = Collection._from_api({**COLLECTION, "models": [MODEL, odd]})
    assert all(isinstance(m, Model) for m in collection)
    assert collection[1].run_count == "many"
    assert collection[0].run_count == 12
