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

import starlette.routing
from starlette.convertors import StringConvertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from .errors import ApiError

__all__ = ["CoreApi", "Endpoint", "Handler", "Router", "Wrap", "api_of", "wrap"]

Handler = Callable[[Request], Awaitable[Response]]
Wrap = Callable[[Handler], "Endpoint"]


class Endpoint:
    """The ASGI app of a handler: an :class:`~.errors.ApiError` becomes its response.

    Starlette's ``Route`` uses it as is (it is not a function), so a request costs one
    ``Request`` and no exception-handling layers; other errors go up to ``front.Front``.
    """

    __slots__ = ("__name__", "handler")

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.__name__ = getattr(handler, "__name__", "endpoint")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = await self.handler(Request(scope, receive, send))
        except ApiError as exc:
            response = exc.response()
        await response(scope, receive, send)


def wrap(handler: Handler) -> Endpoint:
    """The endpoint for ``handler`` (see :class:`Endpoint`)."""
    return Endpoint(handler)


#: ``Router._hits`` entries kept at most, and the longest path kept (a few hundred kB in all).
_HITS_KEPT = 512
_HIT_PATH_MAX = 256


class Router(starlette.routing.Router):
    """Starlette's router, but a request is only matched against the routes of its shape.

    Routes are grouped by their number of path segments and first two segments (the
    second one may be a parameter); a request tries, in the routes' order, only its
    group, with Starlette's own matching. Whatever that does not settle (no route of the
    group matched: a 404 or a trailing-slash redirect) goes through Starlette's full scan,
    so the answers are Starlette's. Without an index (a route that is not a plain
    ``Route`` with ``str`` parameters) every request does. A method and path matched to a
    route lately (up to ``_HITS_KEPT`` of them, paths up to ``_HIT_PATH_MAX`` characters) go to
    it again without being matched.
    """

    _index: dict[tuple[int, str, str | None], list[BaseRoute]] | None = None
    _indexed: int = -1  # how many routes the index covers (routes may be added later)
    _segments: dict[int, tuple[tuple[str | None, str], ...]]  # see _dispatch

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # ``(method, path)`` of requests lately matched to a route with an allowed method:
        # ``(route, path parameters)``, so that a path asked for again is not matched again.
        self._hits: dict[tuple[str, str], tuple[BaseRoute, dict[str, str]]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Starlette's goes through ``middleware_stack``, which is ``app`` when the router has
        # no middleware of its own (ours never has): one call less per request.
        if self.middleware_stack == self.app:
            await self.app(scope, receive, send)
        else:  # pragma: no cover - a router built with middleware
            await self.middleware_stack(scope, receive, send)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            hit = self._hits.get((scope["method"], scope["path"]))
            if hit is not None and self._indexed == len(self.routes):
                route, params = hit  # the route this request's method and path matched lately
                scope.setdefault("router", self)
                scope["route"] = route
                scope["endpoint"] = route.endpoint  # type: ignore[attr-defined]
                scope["path_params"] = {**scope.get("path_params", {}), **params}
                await route.app(scope, receive, send)  # type: ignore[attr-defined]
                return
            group = self.group(scope["path"])
            if group is not None and await self._dispatch(group, scope, receive, send):
                return
        await super().app(scope, receive, send)

    def group(self, path: str) -> list[BaseRoute] | None:
        """The routes, in order, that may match ``path``; None: try them all."""
        if self._indexed != len(self.routes):
            self._build_index()
        if self._index is None:
            return None
        parts = path.split("/", 3)
        # (A regex's "$" also matches before a final newline: leave those to the full scan.)
        if len(parts) < 2 or path.endswith("\n"):
            return None
        n = path.count("/") + 1
        group = self._index.get((n, parts[1], parts[2] if len(parts) > 2 else None))
        if group is None:
            group = self._index.get((n, parts[1], None))
        return group

    async def _dispatch(
        self, group: list[BaseRoute], scope: Scope, receive: Receive, send: Send
    ) -> bool:
        """Starlette's matching over ``group``; False when no route of it matched.

        An indexed route's path is literal segments and ``{name}`` segments (``str``
        parameters: ``[^/]+``), so it matches a path of as many segments whose literal ones
        are equal and whose parameter ones are not empty: compared so, without its regex.
        """
        partial = partial_scope = None
        parts = scope["path"].split("/")
        method = scope["method"]
        segments = self._segments
        full = False
        for route in group:
            params = _match_segments(segments[id(route)], parts)
            if params is None:
                continue
            child_scope = {
                "endpoint": route.endpoint,  # type: ignore[attr-defined]
                "path_params": {**scope.get("path_params", {}), **params},
            }
            methods = route.methods  # type: ignore[attr-defined]
            if not methods or method in methods:
                partial, partial_scope, full = route, child_scope, True
                break
            if partial is None:
                partial, partial_scope = route, child_scope
        if partial is None or partial_scope is None:
            return False
        scope.setdefault("router", self)
        scope["route"] = partial
        scope.update(partial_scope)
        if full:  # what ``Route.handle`` does for an allowed method
            path = scope["path"]
            if len(path) <= _HIT_PATH_MAX:  # paths are the client's: stay bounded
                if len(self._hits) >= _HITS_KEPT:
                    self._hits.clear()
                self._hits[(method, path)] = (partial, params)  # type: ignore[assignment]
            await partial.app(scope, receive, send)  # type: ignore[attr-defined]
        else:  # its 405
            await partial.handle(scope, receive, send)
        return True

    def _build_index(self) -> None:
        self._hits.clear()
        self._indexed = len(self.routes)
        keys: list[tuple[BaseRoute, tuple[int, str, str | None]]] = []
        segments: dict[int, tuple[tuple[str | None, str], ...]] = {}  # by id: routes are unhashable
        for route in self.routes:
            key = _shape(route)
            if key is None:
                self._index = None
                return
            keys.append((route, key))
            segments[id(route)] = tuple(
                (None, part[1:-1]) if part.startswith("{") else (part, "")
                for part in route.path.split("/")  # type: ignore[attr-defined]
            )
        self._segments = segments
        index: dict[tuple[int, str, str | None], list[BaseRoute]] = {}
        for _, (n, first, second) in keys:
            index.setdefault((n, first, second), [])
            index.setdefault((n, first, None), [])
        for group_key, group in index.items():
            n, first, second = group_key
            group.extend(
                route
                for route, (rn, rfirst, rsecond) in keys
                if rn == n and rfirst == first and rsecond in (second, None)
            )
        self._index = index


def _match_segments(
    pattern: tuple[tuple[str | None, str], ...], parts: list[str]
) -> dict[str, str] | None:
    """The parameters of a path split at ``/`` that a route's segments match, or None;
    ``pattern`` holds ``(literal, "")`` or ``(None, parameter name)`` per segment."""
    if len(pattern) != len(parts):
        return None
    params: dict[str, str] = {}
    for (literal, name), part in zip(pattern, parts, strict=True):
        if literal is None:
            if not part:
                return None
            params[name] = part
        elif part != literal:
            return None
    return params


def _shape(route: BaseRoute) -> tuple[int, str, str | None] | None:
    """``(segments, first, second or None for a parameter)`` of a route, or None when its
    path could match requests of other shapes (or it is not a plain route)."""
    if type(route) is not starlette.routing.Route or not all(
        type(c) is StringConvertor for c in route.param_convertors.values()
    ):
        return None
    if not all(
        (p.startswith("{") and p.endswith("}") and p.count("{") == 1 and ":" not in p)
        or "{" not in p
        for p in route.path.split("/")
    ):
        return None  # a segment mixing text and a parameter: left to its regex
    parts = route.path.split("/")
    if len(parts) < 2 or "{" in parts[1]:
        return None
    second = parts[2] if len(parts) > 2 and "{" not in parts[2] else None
    return len(parts), parts[1], second


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
