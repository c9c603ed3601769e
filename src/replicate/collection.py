"""Curated collections of models: ``client.collections.list()`` / ``.get(slug)``."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, overload
from urllib.parse import quote

from ._http import Operation, json_object_of
from .model import Model
from .pagination import Page, _cursor_url, _page_parser
from .resource import Namespace, Resource

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._http import RequestOptions
    from .client import Client

__all__ = ["Collection", "Collections"]


class Collection(Resource):
    """A collection of models.

    Iterating over a collection, indexing it and ``len()`` work on its :attr:`models` (``models`` is
    ``None`` for the items of ``collections.list()``; fetch one with ``collections.get(slug)``).
    """

    slug: str | None = None
    """The collection's slug, e.g. ``"text-to-image"``."""

    name: str | None = None
    """The collection's name."""

    description: str | None = None
    """A short description."""

    full_description: str | None = None
    """A longer description in Markdown, when the API sends one."""

    models: list[Model] | None = None
    """The models in the collection (``None`` in list results)."""

    @classmethod
    def _from_api(cls, data: Any, client: Client | None = None) -> Collection:
        models = data.get("models") if isinstance(data, dict) else None
        if isinstance(models, list):
            # Each model is parsed on its own (tolerantly), so one odd model cannot turn the
            # whole list back into plain dicts.
            data = {
                **data,
                "models": [
                    Model._from_api(item, client) if isinstance(item, dict) else item
                    for item in models
                ],
            }
        return super()._from_api(data, client)

    @property
    def id(self) -> str | None:
        """Deprecated alias of :attr:`slug`."""
        warnings.warn("Use `slug` instead of `id`", DeprecationWarning, stacklevel=2)
        return self.slug

    def __iter__(self) -> Iterator[Model]:  # type: ignore[override]
        return iter(self.models or [])

    @overload
    def __getitem__(self, index: int) -> Model | None: ...

    @overload
    def __getitem__(self, index: slice) -> list[Model] | None: ...

    def __getitem__(self, index: int | slice) -> Model | list[Model] | None:
        if self.models is None:
            return None
        return self.models[index]

    def __len__(self) -> int:
        return len(self.models or [])


class Collections(Namespace):
    """The ``collections`` namespace.

    Every method also accepts the keyword-only escape hatches ``extra_headers``, ``extra_query``
    and ``extra_body``.
    """

    def list(self, cursor: str | Any = ..., **options: Unpack[RequestOptions]) -> Page[Collection]:
        """A page of collections (``GET /v1/collections``).

        ``cursor`` is the ``next``/``previous`` URL of a previous page; omit it for the first page.
        """
        return self._call(self._list(cursor).with_options(options))

    async def async_list(
        self, cursor: str | Any = ..., **options: Unpack[RequestOptions]
    ) -> Page[Collection]:
        """Async twin of :meth:`list`."""
        return await self._acall(self._list(cursor).with_options(options))

    def get(self, slug: str, **options: Unpack[RequestOptions]) -> Collection:
        """A collection with its models (``GET /v1/collections/{slug}``)."""
        return self._call(self._get(slug).with_options(options))

    async def async_get(self, slug: str, **options: Unpack[RequestOptions]) -> Collection:
        """Async twin of :meth:`get`."""
        return await self._acall(self._get(slug).with_options(options))

    def _list(self, cursor: Any) -> Operation[Page[Collection]]:
        path = _cursor_url(self._client, cursor) or "/v1/collections"
        return Operation("GET", path, parse=_page_parser(Collection, self._client))

    def _get(self, slug: str) -> Operation[Collection]:
        if not isinstance(slug, str) or not slug:
            raise ValueError(f"slug must be a non-empty string, not {slug!r}")
        client = self._client
        return Operation(
            "GET",
            f"/v1/collections/{quote(slug, safe='')}",
            parse=lambda response: Collection._from_api(json_object_of(response), client),
        )
