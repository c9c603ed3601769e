"""Model versions: the :class:`Version` resource and the :class:`Versions` namespace of one model."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from ._http import Operation, json_object_of, returns_true
from .identifier import split_key
from .pagination import Page, _cursor_url, _page_parser
from .resource import Namespace, Resource

if TYPE_CHECKING:
    import httpx
    from typing_extensions import Unpack

    from ._http import RequestOptions
    from .client import Client
    from .model import Model

__all__ = ["Version", "Versions"]


class Version(Resource):
    """A version of a model: an immutable build with its OpenAPI schema.

    Run it with ``replicate.run(version, input=...)``.
    """

    id: str | None = None
    """The version id (64 hexadecimal characters)."""
    created_at: datetime.datetime | None = None
    """When the version was created (kept as the original string if unparseable)."""
    cog_version: str | None = None
    """The Cog version that built it."""
    openapi_schema: dict[str, Any] | None = None
    """The OpenAPI schema of the model's inputs and outputs."""


def _model_path(model: Any) -> str:
    """``/v1/models/{owner}/{name}`` for a ``Model``, ``"owner/name"`` or ``(owner, name)``."""
    from urllib.parse import quote

    owner: Any
    name: Any
    if isinstance(model, str):
        owner, name = split_key(model)
    elif isinstance(model, tuple) and len(model) == 2:
        owner, name = model
    else:
        owner, name = getattr(model, "owner", None), getattr(model, "name", None)
    if not (isinstance(owner, str) and owner and isinstance(name, str) and name):
        raise ValueError(
            "model must be a Model, a tuple of (owner, name), or a string in the format "
            "'owner/name'"
        )
    return f"/v1/models/{quote(owner, safe='')}/{quote(name, safe='')}"


def _version_parser(client: Client) -> Any:
    def parse(response: httpx.Response) -> Version:
        return Version._from_api(json_object_of(response), client)

    return parse


def _version_path(base: str, id: str) -> str:
    from urllib.parse import quote

    if not isinstance(id, str) or not id:
        raise ValueError(f"version id must be a non-empty string, not {id!r}")
    return f"{base}/versions/{quote(id, safe='')}"


class Versions(Namespace):
    """The versions of one model: ``model.versions`` or ``Versions(client, "owner/name")``."""

    model: Any
    """The model: a ``Model``, ``"owner/name"`` or ``(owner, name)``."""

    def __init__(self, client: Client, model: Model | str | tuple[str, str]) -> None:
        super().__init__(client)
        self._base = _model_path(model)
        self.model = model

    def get(self, id: str, **options: Unpack[RequestOptions]) -> Version:
        """Get a version by id."""
        return self._call(self._get(id).with_options(options))

    async def async_get(self, id: str, **options: Unpack[RequestOptions]) -> Version:
        """Async twin of :meth:`get`."""
        return await self._acall(self._get(id).with_options(options))

    def _get(self, id: str) -> Operation[Version]:
        return Operation("GET", _version_path(self._base, id), parse=_version_parser(self._client))

    def list(
        self,
        cursor: str | None = ...,  # type: ignore[assignment]
        **options: Unpack[RequestOptions],
    ) -> Page[Version]:
        """List the model's versions, newest first."""
        return self._call(self._list(cursor).with_options(options))

    async def async_list(
        self,
        cursor: str | None = ...,  # type: ignore[assignment]
        **options: Unpack[RequestOptions],
    ) -> Page[Version]:
        """Async twin of :meth:`list`."""
        return await self._acall(self._list(cursor).with_options(options))

    def _list(self, cursor: Any) -> Operation[Page[Version]]:
        url = _cursor_url(self._client, cursor) or f"{self._base}/versions"
        return Operation("GET", url, parse=_page_parser(Version, self._client))

    def delete(self, id: str, **options: Unpack[RequestOptions]) -> bool:
        """Delete a version (the API answers 202: deletion is asynchronous). Returns ``True``."""
        return self._call(self._delete(id).with_options(options))

    async def async_delete(self, id: str, **options: Unpack[RequestOptions]) -> bool:
        """Async twin of :meth:`delete`."""
        return await self._acall(self._delete(id).with_options(options))

    def _delete(self, id: str) -> Operation[bool]:
        return Operation("DELETE", _version_path(self._base, id), parse=returns_true)
