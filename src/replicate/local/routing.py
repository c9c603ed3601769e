"""What every part of the HTTP layer shares: handlers, how they become endpoints, and the API.

Route modules (``routes_*``) and the catalogue depend on this module and on the core,
never on ``app.py``, which only assembles them. A handler is an ``async def
handler(request)`` that returns a response or raises :class:`~.errors.ApiError`;
:func:`wrap` turns it into a Starlette endpoint. :class:`CoreApi` is what parts mounted
beside the core routes (the catalogue) may ask of them; :func:`api_of` finds it on an app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from .errors import ApiError

__all__ = ["CoreApi", "Handler", "Wrap", "api_of", "wrap"]

Handler = Callable[[Request], Awaitable[Response]]
Wrap = Callable[[Handler], Handler]


def wrap(handler: Handler) -> Handler:
    """The endpoint for ``handler``: an :class:`~.errors.ApiError` becomes its response."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as exc:
            return exc.response()

    endpoint.__name__ = getattr(handler, "__name__", "endpoint")
    return endpoint


class CoreApi(Protocol):
    """The core routes' helpers that other parts of the server use (``app.state.api``)."""

    def account(self, request: Request) -> str:
        """Authenticate the request; returns the username."""
        ...

    def origin(self, request: Request) -> str:
        """The origin used in URLs: the public URL, else the request's own."""
        ...

    async def json_body(self, request: Request) -> Any:
        """The parsed JSON body (400 when it is not JSON)."""
        ...

    def model_json(self, m: dict[str, Any], origin: str, *, search: bool = False) -> dict[str, Any]:
        """The API's model object for a model row."""
        ...

    def _validate_create(self, body: Any, *, with_version: bool) -> dict[str, Any]:
        """A prediction create body, checked (422 otherwise)."""
        ...

    async def _create(
        self,
        request: Request,
        account: str,
        body: dict[str, Any],
        version: dict[str, Any],
        *,
        deployment: str | None = None,
    ) -> Response:
        """Create a prediction of ``version`` and answer as ``POST /v1/predictions`` does."""
        ...

    async def _wait_for(self, pid: str, seconds: float) -> dict[str, Any]:
        """The prediction row once it is terminal or ``seconds`` have passed."""
        ...


def api_of(request: Request) -> CoreApi:
    """The core routes of the app serving ``request``."""
    api = getattr(request.app.state, "api", None)
    if api is None:  # pragma: no cover - the app always sets it
        raise RuntimeError("this route needs the local server's app (app.state.api)")
    return api  # type: ignore[no-any-return]
