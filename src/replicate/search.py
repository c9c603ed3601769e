"""Search public models, collections and documentation: ``replicate.search(query, limit=)``.

The endpoint (``GET /v1/search``) is in beta server-side; unknown fields are kept on the result
objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._http import Operation, json_object_of
from .model import Model
from .resource import Resource

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._http import RequestOptions
    from .client import Client

__all__ = [
    "SearchCollection",
    "SearchModelMetadata",
    "SearchModelResult",
    "SearchPage",
    "SearchResponse",
    "async_search",
    "search",
]

MAX_LIMIT = 50


class SearchModelMetadata(Resource):
    """Search-specific data about a model result."""

    generated_description: str | None = None
    """A longer, AI-generated description of the model."""

    tags: list[str] | None = None
    """Tags of the model."""

    score: float | None = None
    """The relevance of the model to the query."""


class SearchModelResult(Resource):
    """A model found by a search, with its search metadata."""

    model: Model | None = None
    """The model (a full :class:`~replicate.model.Model`, bound to the client)."""

    metadata: SearchModelMetadata | None = None
    """Search metadata: generated description, tags and score."""


class SearchCollection(Resource):
    """A collection found by a search."""

    name: str | None = None
    slug: str | None = None
    description: str | None = None
    models: list[str] | None = None
    """The ``"owner/name"`` of the models in the collection, when sent."""


class SearchPage(Resource):
    """A documentation page found by a search."""

    name: str | None = None
    href: str | None = None
    """The page's path on replicate.com (e.g. ``"/docs/guides/image-editing"``)."""


class SearchResponse(Resource):
    """The results of :func:`search`: models, collections and documentation pages."""

    query: str | None = None
    models: list[SearchModelResult] = []
    collections: list[SearchCollection] = []
    pages: list[SearchPage] = []


def search(
    client: Client, query: str, *, limit: int | None = None, **options: Unpack[RequestOptions]
) -> SearchResponse:
    """Search with ``client`` (``GET /v1/search``). See :meth:`replicate.client.Client.search`."""
    return client._call(_search(client, query, limit).with_options(options))


async def async_search(
    client: Client, query: str, *, limit: int | None = None, **options: Unpack[RequestOptions]
) -> SearchResponse:
    """Async twin of :func:`search`."""
    return await client._acall(_search(client, query, limit).with_options(options))


def _search(client: Client, query: str, limit: int | None) -> Operation[SearchResponse]:
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, not {type(query).__name__}")
    if not query.strip():
        raise ValueError("query must not be empty")
    params: dict[str, Any] = {"query": query}
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise TypeError(f"limit must be an integer between 1 and {MAX_LIMIT}, not {limit!r}")
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
        params["limit"] = limit
    return Operation(
        "GET",
        "/v1/search",
        params=params,
        parse=lambda response: _parse(response, client),
    )


def _parse(response: Any, client: Client) -> SearchResponse:
    data = json_object_of(response)
    return SearchResponse._from_api(
        {
            **data,
            "models": [_model_result(item, client) for item in _list_of(data.get("models"))],
            "collections": _list_of(data.get("collections")),
            "pages": _list_of(data.get("pages")),
        },
        client,
    )


def _model_result(item: Any, client: Client) -> Any:
    """Each result's model is parsed on its own (tolerantly) as a client-bound Model."""
    if not isinstance(item, dict):
        return item
    model, metadata = item.get("model"), item.get("metadata")
    return SearchModelResult._from_api(
        {
            **item,
            "model": Model._from_api(model, client) if isinstance(model, dict) else model,
            "metadata": SearchModelMetadata._from_api(metadata, client)
            if isinstance(metadata, dict)
            else metadata,
        },
        client,
    )


def _list_of(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
