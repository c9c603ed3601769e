"""Page, cursor rules and paginate / async_paginate (docs/api.md, "Conventions", "Pagination")."""

from __future__ import annotations

from typing import Any

import pytest

import replicate
from replicate.client import Client
from replicate.pagination import Page, _cursor_url, _page_from_json, async_paginate, paginate


class Item(replicate.resource.Resource):
    name: str | None = None


def test_page_is_a_sequence() -> None:
    page = _page_from_json(Item, {"results": [{"name": "a"}, {"name": "b"}], "next": "n"}, None)
    assert isinstance(page, Page)
    assert len(page) == 2
    assert [i.name for i in page] == ["a", "b"]
    assert page[0].name == "a"
    assert [i.name for i in page[1:]] == ["b"]
    assert page
    assert page.next == "n" and page.previous is None
    empty = _page_from_json(Item, {"results": [], "next": None, "previous": None}, None)
    assert not empty and len(empty) == 0 and list(empty) == []


def test_page_generic_at_runtime_and_dict() -> None:
    assert Page[Item] is not None
    page = _page_from_json(Item, {"results": [{"name": "a"}], "extra": 1}, None)
    dumped = page.dict()
    assert dumped["results"] == [{"name": "a"}]
    assert dumped["extra"] == 1
    assert "1 items" in repr(page)


def test_page_binds_client() -> None:
    client = Client(api_token="t")
    page = _page_from_json(Item, {"results": [{"name": "a"}]}, client)
    assert page[0]._client is client


@pytest.fixture
def client() -> Client:
    return Client(api_token="t", base_url="https://api.replicate.com")


def test_cursor_default_and_none(client: Client) -> None:
    assert _cursor_url(client, ...) is None
    with pytest.raises(ValueError, match=r"^cursor cannot be None$"):
        _cursor_url(client, None)
    with pytest.raises(TypeError):
        _cursor_url(client, 12)


def test_cursor_absolute_same_host(client: Client) -> None:
    url = "https://api.replicate.com/v1/models?cursor=abc"
    assert _cursor_url(client, url) == url


def test_cursor_http_upgraded(client: Client) -> None:
    assert (
        _cursor_url(client, "http://api.replicate.com/v1/models?cursor=abc")
        == "https://api.replicate.com/v1/models?cursor=abc"
    )


def test_cursor_foreign_host_rejected(client: Client) -> None:
    with pytest.raises(ValueError, match="not on the API host") as info:
        _cursor_url(client, "https://evil.example.com/v1/models?cursor=secret")
    assert "secret" not in str(info.value)
    with pytest.raises(ValueError, match="does not match the API origin"):
        _cursor_url(client, "https://api.replicate.com:8443/v1/models")


def test_cursor_relative_joined(client: Client) -> None:
    assert _cursor_url(client, "/v1/models?cursor=x") == "/v1/models?cursor=x"
    assert _cursor_url(client, "v1/models?cursor=x") == "/v1/models?cursor=x"


def test_cursor_http_local_base_not_upgraded() -> None:
    local = Client(api_token="t", base_url="http://127.0.0.1:8000")
    url = "http://127.0.0.1:8000/v1/models?cursor=x"
    assert _cursor_url(local, url) == url


def _pages() -> dict[Any, Page[Item]]:
    return {
        ...: _page_from_json(Item, {"results": [{"name": "1"}], "next": "c2"}, None),
        "c2": _page_from_json(Item, {"results": [{"name": "2"}], "next": "c3"}, None),
        "c3": _page_from_json(Item, {"results": [{"name": "3"}], "next": None}, None),
    }


def test_paginate_positional_form() -> None:
    pages = _pages()
    calls: list[Any] = []

    def list_method(cursor: Any = ...) -> Page[Item]:
        calls.append(cursor)
        return pages[cursor]

    result = [p[0].name for p in paginate(list_method)]
    assert result == ["1", "2", "3"]
    assert calls == [..., "c2", "c3"]


def test_paginate_kwargs_form_and_repeated_cursor() -> None:
    calls: list[tuple[Any, Any]] = []

    def list_method(model: str, *, cursor: Any = ...) -> Page[Item]:
        calls.append((model, cursor))
        return _page_from_json(Item, {"results": [], "next": "same"}, None)

    assert len(list(paginate(list_method, "a/b"))) == 2
    assert calls == [("a/b", ...), ("a/b", "same")]


async def test_async_paginate() -> None:
    pages = _pages()
    calls: list[Any] = []

    async def list_method(cursor: Any = ...) -> Page[Item]:
        calls.append(cursor)
        return pages[cursor]

    names = [p[0].name async for p in async_paginate(list_method)]
    assert names == ["1", "2", "3"]

    kw_calls: list[Any] = []

    async def list_kw(model: str, *, cursor: Any = ...) -> Page[Item]:
        kw_calls.append((model, cursor))
        return pages[cursor]

    assert len([p async for p in async_paginate(list_kw, "m")]) == 3
    assert kw_calls == [("m", ...), ("m", "c2"), ("m", "c3")]


def test_module_level_paginate_is_same_function() -> None:
    assert replicate.paginate is paginate
    assert replicate.async_paginate is async_paginate
