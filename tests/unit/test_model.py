"""Model, Version and the models / versions namespaces (docs/api.md)."""

from __future__ import annotations

import datetime
import json
import warnings
from typing import Any

import pytest

import replicate
from replicate import model as model_module
from replicate.exceptions import NotFoundError, ReplicateException
from replicate.model import Model, Models, ModelsPredictions
from replicate.pagination import Page
from replicate.prediction import Prediction
from replicate.version import Version, Versions

VID = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"


def model_json(owner: str = "acme", name: str = "hello", **fields: Any) -> dict[str, Any]:
    return {
        "url": f"https://replicate.com/{owner}/{name}",
        "owner": owner,
        "name": name,
        "description": "d",
        "visibility": "public",
        "run_count": 3,
        "default_example": {"id": "ex1", "status": "succeeded", "output": "hi"},
        "latest_version": {
            "id": VID,
            "created_at": "2024-01-02T03:04:05.123Z",
            "cog_version": "0.9",
        },
        **fields,
    }


def version_json(id: str = VID, **fields: Any) -> dict[str, Any]:
    return {
        "id": id,
        "created_at": "2024-01-02T03:04:05Z",
        "cog_version": "0.9",
        "openapi_schema": {},
        **fields,
    }


# ---------------------------------------------------------------------- resources


def test_model_nested_and_tolerant(mock_api: Any) -> None:
    client = mock_api.client()
    m = Model._from_api(model_json(run_count=1e10, is_official=True, new_field="x"), client)
    assert m.id == "acme/hello"
    assert m.run_count == 10_000_000_000 and isinstance(m.run_count, int)
    assert isinstance(m.default_example, Prediction) and m.default_example.output == "hi"
    assert isinstance(m.latest_version, Version)
    assert isinstance(m.latest_version.created_at, datetime.datetime)
    assert m.default_example._client is client and m.latest_version._client is client
    assert m.is_official is True
    assert m.new_field == "x"  # type: ignore[attr-defined]
    broken = Model._from_api(model_json(default_example={"id": "e", "input": "not-a-dict"}))
    assert isinstance(broken.default_example, Prediction)
    assert broken.default_example.input == "not-a-dict"
    assert (
        Model._from_api(model_json(default_example=None, latest_version=None)).latest_version
        is None
    )


def test_username_is_deprecated_alias() -> None:
    m = Model(owner="a", name="b")
    with pytest.warns(DeprecationWarning):
        assert m.username == "a"
    with pytest.warns(DeprecationWarning):
        m.username = "z"
    assert m.owner == "z"


def test_predict_removed() -> None:
    with pytest.raises(ReplicateException) as info:
        Model(owner="a", name="b").predict(prompt="x")
    assert str(info.value).startswith("The `model.predict()` method has been removed")
    assert "replicate.run()" in str(info.value)


def test_version_created_at() -> None:
    v = Version._from_api(version_json(created_at="2024-01-02T03:04:05.5Z", cog_version=None))
    assert v.created_at == datetime.datetime(
        2024, 1, 2, 3, 4, 5, 500000, tzinfo=datetime.timezone.utc
    )
    assert v.cog_version is None
    bad = Version._from_api(version_json(created_at="yesterday", openapi_schema=None))
    assert bad.created_at == "yesterday"
    assert bad.openapi_schema is None


def test_exports() -> None:
    assert Models.model is Model
    assert model_module.Page is Page
    assert model_module.Prediction is Prediction
    assert Page[Model] is not None


# ---------------------------------------------------------------------- get / reload


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("acme/hello",), {}),
        (("acme", "hello"), {}),
        ((), {"key": "acme/hello"}),
        ((), {"owner": "acme", "name": "hello"}),
    ],
)
async def test_get_forms(
    mock_api: Any, invoke: Any, args: tuple[str, ...], kwargs: dict[str, str]
) -> None:
    mock_api.add("GET", "/v1/models/acme/hello", model_json())
    client = mock_api.client()
    m = await invoke(client.models, "get", *args, **kwargs)
    assert isinstance(m, Model) and m.id == "acme/hello"
    assert m._client is client
    assert str(mock_api.last.url) == "https://api.replicate.com/v1/models/acme/hello"


async def test_get_errors(mock_api: Any, invoke: Any) -> None:
    client = mock_api.client()
    with pytest.raises(ValueError, match="Cannot mix positional and keyword arguments"):
        await invoke(client.models, "get", "a/b", key="a/b")
    with pytest.raises(ValueError, match="Invalid model reference: ab"):
        await invoke(client.models, "get", "ab")
    with pytest.raises(ValueError, match="Invalid number of arguments"):
        await invoke(client.models, "get", "a", "b", "c")
    assert mock_api.requests == []
    mock_api.add("GET", "/v1/models/a/missing", {"detail": "nope"}, status=404)
    with pytest.raises(NotFoundError):
        await invoke(client.models, "get", "a/missing")


async def test_reload_keeps_nested_types(mock_api: Any, invoke: Any) -> None:
    mock_api.add("GET", "/v1/models/acme/hello", model_json(description="new"))
    client = mock_api.client()
    m = Model._from_api(model_json(default_example=None), client)
    assert await invoke(m, "reload") is m
    assert m.description == "new"
    assert isinstance(m.default_example, Prediction)
    assert isinstance(m.latest_version, Version)


# ---------------------------------------------------------------------- list / search


async def test_list(mock_api: Any, invoke: Any) -> None:
    mock_api.add(
        "GET",
        "/v1/models",
        {
            "results": [model_json()],
            "next": "https://api.replicate.com/v1/models?cursor=c2",
            "previous": None,
        },
    )
    client = mock_api.client()
    page = await invoke(client.models, "list")
    assert isinstance(page, Page) and isinstance(page[0], Model)
    assert isinstance(page[0].latest_version, Version)
    assert page.next.endswith("cursor=c2")
    assert str(mock_api.last.url) == "https://api.replicate.com/v1/models"
    await invoke(client.models, "list", sort_by="model_created_at", sort_direction="asc")
    assert mock_api.last.url.query == b"sort_by=model_created_at&sort_direction=asc"
    await invoke(client.models, "list", page.next, sort_by="model_created_at")
    assert mock_api.last.url.query == b"cursor=c2"


async def test_search_uses_query_method(mock_api: Any, invoke: Any) -> None:
    mock_api.add("QUERY", "/v1/models", {"results": [model_json()], "next": "/v1/models?cursor=2"})
    client = mock_api.client()
    page = await invoke(client.models, "search", "llama ✨")
    request = mock_api.last
    assert request.method == "QUERY"
    assert request.headers["content-type"] == "text/plain"
    assert request.content == "llama ✨".encode()
    assert len(page) == 1
    await invoke(client.models, "search", "llama ✨", cursor=page.next)
    assert mock_api.last.method == "QUERY"
    assert mock_api.last.url.query == b"cursor=2"
    assert mock_api.last.content == "llama ✨".encode()
    with pytest.raises(TypeError, match="extra_body"):
        await invoke(client.models, "search", "x", extra_body={"a": 1})


def test_paginate_search(mock_api: Any) -> None:
    mock_api.add(
        "QUERY", "/v1/models", {"results": [model_json("a", "1")], "next": "/v1/models?cursor=2"}
    )
    mock_api.add("QUERY", "/v1/models", {"results": [model_json("b", "2")], "next": None})
    client = mock_api.client()
    ids = [m.id for page in replicate.paginate(client.models.search, "q") for m in page]
    assert ids == ["a/1", "b/2"]


# ---------------------------------------------------------------------- create / update / delete


async def test_create(mock_api: Any, invoke: Any) -> None:
    mock_api.add("POST", "/v1/models", model_json(visibility="private"), status=201)
    client = mock_api.client()
    m = await invoke(
        client.models, "create", "acme", "hello", hardware="cpu", visibility="private",
        paper_url="https://p", description="An example",
    )  # fmt: skip
    assert m.visibility == "private"
    assert mock_api.last.content == (
        b'{"owner":"acme","name":"hello","visibility":"private","hardware":"cpu",'
        b'"description":"An example","paper_url":"https://p"}'
    )
    with pytest.raises(TypeError):
        await invoke(client.models, "create", "acme", "hello", visibility="public")


async def test_update(mock_api: Any, invoke: Any) -> None:
    mock_api.add("PATCH", "/v1/models/acme/hello", model_json(description="x"))
    client = mock_api.client()
    m = await invoke(client.models, "update", "acme/hello", description="x", readme="# hi")
    assert m.description == "x"
    assert json.loads(mock_api.last.content) == {"description": "x", "readme": "# hi"}
    await invoke(client.models, "update", owner="acme", name="hello", weights_url="https://w")
    assert json.loads(mock_api.last.content) == {"weights_url": "https://w"}


async def test_delete(mock_api: Any, invoke: Any) -> None:
    mock_api.add("DELETE", "/v1/models/acme/hello", status=204, text="")
    assert await invoke(mock_api.client().models, "delete", "acme", "hello") is True
    assert mock_api.last.method == "DELETE"


# ---------------------------------------------------------------------- sub-namespaces


@pytest.mark.parametrize(
    "model", ["meta/llama", ("meta", "llama"), Model(owner="meta", name="llama")]
)
async def test_models_predictions_create(mock_api: Any, invoke: Any, model: Any) -> None:
    mock_api.add(
        "POST", "/v1/models/meta/llama/predictions", {"id": "p", "status": "starting"}, status=201
    )
    client = mock_api.client()
    p = await invoke(
        client.models.predictions, "create", model, {"prompt": "x"}, wait=10, webhook="https://w"
    )
    assert isinstance(p, Prediction) and p._client is client
    assert mock_api.last.content == b'{"input":{"prompt":"x"},"webhook":"https://w"}'
    assert mock_api.last.headers["prefer"] == "wait=10"


async def test_models_predictions_create_errors(mock_api: Any, invoke: Any) -> None:
    ns = mock_api.client().models.predictions
    assert isinstance(ns, ModelsPredictions)
    with pytest.raises(
        ValueError, match=r"^Invalid reference to model version: a/b:v\. Expected model"
    ):
        await invoke(ns, "create", "a/b:v", {})
    with pytest.raises(ValueError, match=r"^model must be a Model, a tuple of \(owner, name\)"):
        await invoke(ns, "create", "nope", {})
    with pytest.raises(TypeError, match="'version'"):
        await invoke(ns, "create", "a/b", {}, version="v")
    assert mock_api.requests == []


async def test_models_versions(mock_api: Any, invoke: Any) -> None:
    mock_api.add(
        "GET", "/v1/models/acme/hello/versions", {"results": [version_json()], "next": None}
    )
    mock_api.add("GET", f"/v1/models/acme/hello/versions/{VID}", version_json())
    mock_api.add("DELETE", f"/v1/models/acme/hello/versions/{VID}", status=202, text="")
    client = mock_api.client()
    page = await invoke(client.models.versions, "list", "acme/hello")
    assert isinstance(page[0], Version)
    v = await invoke(client.models.versions, "get", ("acme", "hello"), VID)
    assert v.id == VID and v._client is client
    assert await invoke(client.models.versions, "delete", "acme/hello", VID) is True
    assert mock_api.paths() == [
        "GET /v1/models/acme/hello/versions",
        f"GET /v1/models/acme/hello/versions/{VID}",
        f"DELETE /v1/models/acme/hello/versions/{VID}",
    ]


async def test_versions_namespace(mock_api: Any, invoke: Any) -> None:
    mock_api.add(
        "GET", "/v1/models/acme/hello/versions", {"results": [version_json()], "next": None}
    )
    mock_api.add("GET", f"/v1/models/acme/hello/versions/{VID}", version_json())
    mock_api.add("DELETE", f"/v1/models/acme/hello/versions/{VID}", status=204, text="")
    client = mock_api.client()
    m = Model._from_api(model_json(), client)
    versions = m.versions
    assert isinstance(versions, Versions)
    assert (await invoke(versions, "get", VID)).id == VID
    assert len(await invoke(versions, "list")) == 1
    assert await invoke(versions, "delete", VID) is True
    standalone = Versions(client, "acme/hello")
    assert (await invoke(standalone, "get", VID)).id == VID
    with pytest.raises(ValueError, match="cursor cannot be None"):
        await invoke(standalone, "list", None)
    with pytest.raises(ValueError):
        Versions(client, "a/b/c")
    with pytest.raises(ValueError):
        Versions(client, "ab")


async def test_examples_and_readme(mock_api: Any, invoke: Any) -> None:
    mock_api.add(
        "GET",
        "/v1/models/acme/hello/examples",
        {"results": [{"id": "e1", "status": "succeeded"}], "next": None},
    )
    mock_api.add(
        "GET",
        "/v1/models/acme/hello/readme",
        status=200,
        text="# Hello\n",
        headers={"content-type": "text/plain"},
    )
    mock_api.add("GET", "/v1/models/acme/none/readme", {"detail": "Not found"}, status=404)
    client = mock_api.client()
    page = await invoke(client.models.examples, "list", "acme/hello")
    assert isinstance(page[0], Prediction) and page[0].id == "e1"
    assert await invoke(client.models.readme, "get", "acme/hello") == "# Hello\n"
    assert await invoke(client.models.readme, "get", "acme", "hello") == "# Hello\n"
    with pytest.raises(NotFoundError):
        await invoke(client.models.readme, "get", key="acme/none")


def test_username_warning_not_emitted_by_owner() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Model(owner="a", name="b").owner == "a"
