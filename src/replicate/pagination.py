"""Pages of API results, cursor handling, and the ``paginate`` / ``async_paginate`` helpers.

Every ``list``-style method takes ``cursor=...`` (the default: the first page), or the ``next`` /
``previous`` URL of a page it returned. ``cursor=None`` is a caller error (it usually means the last
page was reached), so it raises :class:`ValueError` before any request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from .resource import Resource

if TYPE_CHECKING:
    import httpx

    from .client import Client

__all__ = ["Page", "PageList", "async_paginate", "paginate"]

T = TypeVar("T")
R = TypeVar("R", bound=Resource)


class Page(Resource, Generic[T]):
    """One page of results: ``results`` plus the ``next`` / ``previous`` cursor URLs.

    A page is a sequence of its own results: ``for item in page``, ``len(page)``, ``page[0]``,
    ``page[1:3]``; it is false when empty. Pass ``page.next`` as ``cursor=`` to get the next page,
    or use :func:`paginate`.
    """

    previous: str | None = None
    next: str | None = None
    results: list[T] = []

    def __iter__(self) -> Iterator[T]:  # type: ignore[override]
        return iter(self.results or [])

    def __len__(self) -> int:
        return len(self.results or [])

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        return (self.results or [])[index]

    def __bool__(self) -> bool:
        return bool(self.results)

    def __repr__(self) -> str:
        return f"Page(results=<{len(self)} items>, next={self.next!r}, previous={self.previous!r})"


class PageList(list[T]):
    """One page of results that is a real ``list`` (what ``files.list()`` returned in 1.0.x).

    It also carries the ``next`` / ``previous`` cursor URLs, so ``paginate(files.list)`` walks
    every page; ``results`` is the page itself (the :class:`Page` spelling).
    """

    next: str | None
    previous: str | None

    def __init__(
        self, results: Iterable[T] = (), *, next: str | None = None, previous: str | None = None
    ) -> None:
        super().__init__(results)
        self.next = next
        self.previous = previous

    @property
    def results(self) -> list[T]:
        """The items of this page (the list itself)."""
        return self

    def __reduce__(self) -> Any:
        return (_page_list, (list(self), self.next, self.previous))


def _page_list(results: list[Any], next: str | None, previous: str | None) -> PageList[Any]:
    return PageList(results, next=next, previous=previous)


def _list_parser(item_cls: type[R], client: Client) -> Callable[[httpx.Response], PageList[R]]:
    """A response parser that builds a :class:`PageList` of ``item_cls`` bound to ``client``."""
    parse_page = _page_parser(item_cls, client)

    def parse(response: httpx.Response) -> PageList[R]:
        page = parse_page(response)
        return PageList(page.results or [], next=page.next, previous=page.previous)

    return parse


def _page_parser(item_cls: type[R], client: Client) -> Callable[[httpx.Response], Page[R]]:
    """A response parser that builds a :class:`Page` of ``item_cls`` bound to ``client``."""

    def parse(response: httpx.Response) -> Page[R]:
        from ._http import json_object_of

        return _page_from_json(item_cls, json_object_of(response), client)

    return parse


def _page_from_json(item_cls: type[R], data: dict[str, Any], client: Client | None) -> Page[R]:
    raw = data.get("results")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        from .exceptions import APIResponseValidationError

        raise APIResponseValidationError(
            title="Invalid response body",
            detail=f"Expected a list of results, got {type(raw).__name__}",
            body=data,
        )
    results = [item_cls._from_api(item, client) for item in raw]
    extra = {k: v for k, v in data.items() if k not in ("previous", "next", "results")}
    page: Page[R] = Page.model_construct(
        previous=_str_or_none(data.get("previous")),
        next=_str_or_none(data.get("next")),
        results=results,
        **extra,
    )
    page._client = client
    return page


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _cursor_url(client: Client, cursor: Any) -> str | None:
    """The request target for ``cursor``: ``None`` for the first page, else a path or URL.

    Raises :class:`ValueError` for ``cursor=None``, a non-string cursor, or an absolute URL on
    another host. An ``http://`` cursor on the API host is upgraded to HTTPS when the base URL is
    HTTPS; relative cursors are joined to the base URL.
    """
    if cursor is ...:
        return None
    if cursor is None:
        raise ValueError("cursor cannot be None")
    if not isinstance(cursor, str):
        raise TypeError(
            f"cursor must be a string URL from a previous page (or omitted), not {cursor!r}"
        )
    if not cursor.strip():
        raise ValueError("cursor must not be empty")
    import httpx

    from ._http import origin_of

    api_scheme, api_host, api_port = client._config.api_origin
    url = httpx.URL(cursor.strip())
    if not url.is_absolute_url:
        text = str(url)
        return text if text.startswith("/") else "/" + text
    if url.host != api_host:
        raise ValueError(
            f"Invalid cursor: {_safe_url(url)} is not on the API host {api_host!r}. "
            "Pass the next/previous URL of a page returned by this client."
        )
    if url.scheme == "http" and api_scheme == "https":
        port = url.port
        url = url.copy_with(scheme="https", port=None if port in (None, 80) else port)
    if origin_of(url) != (api_scheme, api_host, api_port):
        raise ValueError(
            f"Invalid cursor: {_safe_url(url)} does not match the API origin. "
            "Pass the next/previous URL of a page returned by this client."
        )
    return str(url)


def _safe_url(url: httpx.URL) -> str:
    """A URL for an error message, without its query string (it may carry signatures)."""
    return str(url.copy_with(query=None, fragment=None))


def paginate(list_method: Callable[..., Page[T]], *args: Any, **kwargs: Any) -> Iterator[Page[T]]:
    """Iterate over every page of a ``list``-style method, starting with the first page.

    With no extra arguments the method is called as ``list_method(cursor)`` (1.0.x); otherwise
    as ``list_method(*args, cursor=cursor, **kwargs)``. Stops when a page has no ``next`` or its
    ``next`` repeats the cursor that produced it.
    """
    cursor: Any = ...
    while True:
        if args or kwargs:
            page = list_method(*args, cursor=cursor, **kwargs)
        else:
            page = list_method(cursor)
        yield page
        following = page.next
        if not following or following == cursor:
            return
        cursor = following


async def async_paginate(
    list_method: Callable[..., Awaitable[Page[T]]], *args: Any, **kwargs: Any
) -> AsyncIterator[Page[T]]:
    """Async twin of :func:`paginate`: ``async for page in async_paginate(client.models.async_list)``."""
    cursor: Any = ...
    while True:
        if args or kwargs:
            page = await list_method(*args, cursor=cursor, **kwargs)
        else:
            page = await list_method(cursor)
        yield page
        following = page.next
        if not following or following == cursor:
            return
        cursor = following
