"""The account behind the API token: ``client.accounts.current()``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._http import Operation, json_object_of
from .resource import Namespace, Resource

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._http import RequestOptions

__all__ = ["Account", "Accounts"]


class Account(Resource):
    """A user or organization account.

    ``type`` is ``"user"`` or ``"organization"`` (or any value a newer API sends).
    """

    type: str | None = None
    """The account type: ``"user"`` or ``"organization"``."""

    username: str | None = None
    """The account's username."""

    name: str | None = None
    """The display name of the account."""

    github_url: str | None = None
    """The GitHub URL of the account."""

    avatar_url: str | None = None
    """The avatar URL of the account."""


class Accounts(Namespace):
    """The ``accounts`` namespace.

    Every method also accepts the keyword-only escape hatches ``extra_headers``, ``extra_query``
    and ``extra_body``.
    """

    def current(self, **options: Unpack[RequestOptions]) -> Account:
        """The account that owns the API token (``GET /v1/account``)."""
        return self._call(self._current().with_options(options))

    async def async_current(self, **options: Unpack[RequestOptions]) -> Account:
        """Async twin of :meth:`current`."""
        return await self._acall(self._current().with_options(options))

    def _current(self) -> Operation[Account]:
        client = self._client
        return Operation(
            "GET",
            "/v1/account",
            parse=lambda response: Account._from_api(json_object_of(response), client),
        )
