"""The :class:`Client`: configuration, lazily built httpx clients, and the API namespaces.

This module imports no httpx or pydantic at import time so that ``import replicate`` stays fast;
they are loaded when the first request is built.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from .__about__ import __version__

if TYPE_CHECKING:
    import httpx

    from ._http import Operation
    from ._retry import RetryTransport
    from .account import Accounts
    from .collection import Collections
    from .deployment import Deployments
    from .file import Files
    from .hardware import HardwareNamespace
    from .model import Models
    from .prediction import Predictions
    from .search import SearchResponse
    from .stream import ServerSentEvent
    from .training import Trainings
    from .use import AsyncFunction, Function
    from .webhook import Webhooks

__all__ = ["Client", "RetryTransport"]

logger = logging.getLogger("replicate")
T = TypeVar("T")

DEFAULT_POLL_INTERVAL = 0.5
_URL_CACHE_SIZE = 512
_TRANSPORT_KWARGS = ("verify", "cert", "http1", "http2", "limits", "trust_env")


# Names 1.0.x code imports from this module (``from replicate.client import Predictions``),
# loaded on first access so that ``import replicate`` stays free of httpx and pydantic.
_LAZY: dict[str, tuple[str, str]] = {
    "RetryTransport": ("_retry", "RetryTransport"),
    "Accounts": ("account", "Accounts"),
    "Collections": ("collection", "Collections"),
    "Deployments": ("deployment", "Deployments"),
    "Files": ("file", "Files"),
    "Hardware": ("hardware", "HardwareNamespace"),
    "Models": ("model", "Models"),
    "Predictions": ("prediction", "Predictions"),
    "ReplicateError": ("exceptions", "ReplicateError"),
    "Trainings": ("training", "Trainings"),
    "Webhooks": ("webhook", "Webhooks"),
    "run": ("run", "run"),
    "async_run": ("run", "async_run"),
    "stream": ("stream", "stream"),
    "async_stream": ("stream", "async_stream"),
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    # importlib, not ``from . import run``: the package attributes run/stream are functions.
    value = getattr(importlib.import_module(f"replicate.{target[0]}"), target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def _get_api_token_from_environment() -> str | None:
    """The API token: from Cog's current scope when running inside a Cog model, else the environment."""
    try:
        import cog  # type: ignore[import-not-found]

        for key, value in cog.current_scope().context.items():
            if key.upper() == "REPLICATE_API_TOKEN":
                return value  # type: ignore[no-any-return]
    except Exception:
        pass
    return os.environ.get("REPLICATE_API_TOKEN")


def _env_token() -> str | None:
    return os.environ.get("REPLICATE_API_TOKEN")


def _resolve_poll_interval(value: float | None) -> float:
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"poll_interval must be a number of seconds, not {value!r}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"poll_interval must be a finite number >= 0, not {value!r}")
        return float(value)
    raw = os.environ.get("REPLICATE_POLL_INTERVAL")
    if raw is None or raw.strip() == "":
        return DEFAULT_POLL_INTERVAL
    try:
        parsed = float(raw)
    except ValueError:
        parsed = math.nan
    if not math.isfinite(parsed) or parsed < 0:
        logger.warning(
            "Ignoring invalid REPLICATE_POLL_INTERVAL=%r (expected seconds >= 0); using %s",
            raw,
            DEFAULT_POLL_INTERVAL,
        )
        return DEFAULT_POLL_INTERVAL
    return parsed


class _Config:
    """Settings resolved once, when the first underlying httpx client is built."""

    def __init__(self, client: Client) -> None:
        import httpx

        from ._http import (
            DEFAULT_BASE_URL,
            TokenAuth,
            normalize_base_url,
            origin_of,
            resolve_timeout,
        )

        self.base_url = normalize_base_url(
            client._base_url or os.environ.get("REPLICATE_BASE_URL") or DEFAULT_BASE_URL
        )
        self.api_origin = origin_of(self.base_url)
        self.timeout = resolve_timeout(client._timeout)
        caller = httpx.Headers(client._headers)
        self.caller_authorization = caller.get("authorization")
        self.user_agent = caller.get("user-agent") or f"replicate-python/{__version__}"
        headers = httpx.Headers({"User-Agent": self.user_agent})
        headers.update(caller)
        self.auth: httpx.Auth | None = None
        self.token_getter = _env_token
        if self.caller_authorization is None:
            if client._api_token:
                headers["Authorization"] = f"Bearer {client._api_token}"
                token = client._api_token
                self.token_getter = lambda: token
            else:
                _get_api_token_from_environment()
                import sys

                if sys.modules.get("cog") is not None:
                    self.token_getter = _get_api_token_from_environment
                self.auth = TokenAuth(self.token_getter)
        self.headers = headers
        # Prefer value -> the timeout of a create waiting that long (see prediction._wait_timeout).
        self.wait_timeouts: dict[str, httpx.Timeout] = {}
        self.download_headers = httpx.Headers({"User-Agent": self.user_agent})


class Client:
    """A client for the Replicate API.

    Args:
        api_token: The API token. Defaults to the Cog request scope (inside a Cog model) or
            ``REPLICATE_API_TOKEN``, looked up when requests are made.
        base_url: The API base URL. Defaults to ``REPLICATE_BASE_URL`` or https://api.replicate.com.
        timeout: Default per-request timeout: an ``httpx.Timeout`` or seconds.
        poll_interval: Seconds between polls while waiting. Defaults to ``REPLICATE_POLL_INTERVAL`` or 0.5.
        retry: ``None``/``True`` for the default :class:`RetryTransport`, ``False`` for no retries, or a
            mapping of :class:`RetryTransport` keyword arguments.
        async_transport: Transport for async requests (default: ``transport`` if given).
        **httpx_kwargs: Passed to ``httpx.Client`` / ``httpx.AsyncClient`` (``headers``, ``transport``,
            ``verify``, ``limits``, ``event_hooks``, ...).

    Building a client performs no I/O and reads no token; the underlying httpx clients are created
    on first use. Use it as a context manager, or call :meth:`close` / :meth:`aclose`.
    """

    poll_interval: float

    def __init__(
        self,
        api_token: str | None = None,
        *,
        base_url: str | None = None,
        timeout: httpx.Timeout | float | None = None,
        poll_interval: float | None = None,
        retry: bool | dict[str, Any] | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        **httpx_kwargs: Any,
    ) -> None:
        if api_token is not None and not isinstance(api_token, str):
            raise TypeError("api_token must be a string or None")
        if base_url is not None and not isinstance(base_url, str):
            raise TypeError("base_url must be a string or None")
        if (
            timeout is not None
            and (isinstance(timeout, bool) or not hasattr(timeout, "__float__"))
            and type(timeout).__name__ != "Timeout"
        ):
            raise TypeError("timeout must be an httpx.Timeout, a number of seconds or None")
        if retry is not None and not isinstance(retry, (bool, dict)):
            from collections.abc import Mapping

            if not isinstance(retry, Mapping):
                raise TypeError(
                    "retry must be None, a bool, or a mapping of RetryTransport arguments"
                )
        self._api_token = api_token or None
        self._base_url = base_url
        self._timeout = timeout
        self.poll_interval = _resolve_poll_interval(poll_interval)
        self._retry = retry
        self._async_transport = async_transport
        headers = httpx_kwargs.pop("headers", None)
        self._headers: list[tuple[str, str]] = list(
            headers.items() if hasattr(headers, "items") else (headers or [])
        )
        self._transport = httpx_kwargs.pop("transport", None)
        self._httpx_kwargs = httpx_kwargs
        self._lock = threading.RLock()
        self._config_cache: _Config | None = None
        self._sync_api: httpx.Client | None = None
        self._sync_download: httpx.Client | None = None
        self._async_api: weakref.WeakKeyDictionary[Any, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._async_download: weakref.WeakKeyDictionary[Any, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._wrapped_transports: dict[int, Any] = {}
        self._schema_cache: Any = None
        # API path -> absolute httpx.URL (see _url): joining a path to the base URL is the
        # most expensive step of building a request, and the same paths recur.
        self._urls: dict[str, Any] = {}

    def __repr__(self) -> str:
        base = (
            self._config_cache.base_url
            if self._config_cache
            else (self._base_url or "<from environment>")
        )
        return f"{self.__class__.__name__}(base_url={base!r})"

    # ----------------------------------------------------------------- configuration

    @property
    def _config(self) -> _Config:
        config = self._config_cache
        if config is None:
            with self._lock:
                config = self._config_cache
                if config is None:
                    config = self._config_cache = _Config(self)
        return config

    @property
    def base_url(self) -> str:
        """The API base URL (the origin; request paths add ``/v1/...``)."""
        return self._config.base_url

    def _current_token(self) -> str | None:
        config = self._config
        if config.caller_authorization is not None:
            return None
        return config.token_getter() or None

    def _download_auth(self, url: str | httpx.URL, *, issued: bool = False) -> dict[str, str]:
        """``Authorization`` for a download: only for the API origin or a URL the API issued."""
        from ._http import origin_of

        config = self._config
        if not issued and origin_of(url) != config.api_origin:
            return {}
        if config.caller_authorization is not None:
            return {"Authorization": config.caller_authorization}
        token = self._current_token()
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _wrap(self, transport: Any) -> Any:
        from ._retry import RetryTransport

        if self._retry is False or isinstance(transport, RetryTransport):
            return transport
        key = id(transport)
        wrapped = self._wrapped_transports.get(key)
        if wrapped is None or wrapped._wrapped_transport is not transport:
            options = dict(self._retry) if isinstance(self._retry, dict) else {}
            wrapped = self._wrapped_transports[key] = RetryTransport(transport, **options)
        return wrapped

    def _transport_kwargs(self) -> dict[str, Any]:
        return {k: self._httpx_kwargs[k] for k in _TRANSPORT_KWARGS if k in self._httpx_kwargs}

    def _sync_transport(self) -> Any:
        import httpx

        return self._wrap(self._transport or httpx.HTTPTransport(**self._transport_kwargs()))

    def _new_async_transport(self) -> Any:
        import httpx

        transport = self._async_transport or self._transport
        if transport is None:
            return self._wrap(httpx.AsyncHTTPTransport(**self._transport_kwargs()))
        if not hasattr(transport, "handle_async_request"):
            raise TypeError(
                f"The transport {type(transport).__name__} cannot send async requests; "
                "pass an httpx.AsyncBaseTransport as Client(async_transport=...)"
            )
        return self._wrap(transport)

    def _client_kwargs(self, *, download: bool) -> dict[str, Any]:
        config = self._config
        kwargs: dict[str, Any] = {"timeout": config.timeout}
        if download:
            kwargs.update(headers=config.download_headers, follow_redirects=True)
        else:
            kwargs.update(
                base_url=config.base_url,
                headers=config.headers,
                follow_redirects=False,
                auth=config.auth,
            )
        kwargs.update(self._httpx_kwargs)
        return kwargs

    # ----------------------------------------------------------------- underlying clients

    def _get_sync_client(self, *, download: bool = False) -> httpx.Client:
        client = self._sync_download if download else self._sync_api
        if client is not None:
            return client
        with self._lock:
            client = self._sync_download if download else self._sync_api
            if client is None:
                import httpx

                client = httpx.Client(
                    transport=self._sync_transport(), **self._client_kwargs(download=download)
                )
                if download:
                    self._sync_download = client
                else:
                    self._sync_api = client
        return client

    def _get_async_client(self, *, download: bool = False) -> httpx.AsyncClient:
        import asyncio

        loop = asyncio.get_running_loop()
        clients = self._async_download if download else self._async_api
        client = clients.get(loop)
        if client is not None:
            return client
        with self._lock:
            for other in [other for other in clients if other.is_closed()]:
                clients.pop(other, None)
            client = clients.get(loop)
            if client is None:
                import httpx

                _remember_missing_sniffio()
                client = httpx.AsyncClient(
                    transport=self._new_async_transport(), **self._client_kwargs(download=download)
                )
                clients[loop] = client
        return client

    # ----------------------------------------------------------------- request shells

    def _url(self, client: httpx.Client | httpx.AsyncClient, path: str) -> Any:
        """The absolute URL of an API ``path``, joined to the base URL once per path.

        The sync and async API clients share one base URL (``_client_kwargs``), so one cache
        serves both. Bounded: cleared when it grows past ``_URL_CACHE_SIZE`` paths.
        """
        urls = self._urls
        url = urls.get(path)
        if url is None:
            merge = getattr(client, "_merge_url", None)
            if merge is None:  # pragma: no cover - an httpx without the helper
                return path
            if len(urls) >= _URL_CACHE_SIZE:
                urls.clear()
            url = urls[path] = merge(path)
        return url

    def _call(self, op: Operation[T]) -> T:
        """Send one operation with the sync client and parse its answer."""
        request_error, check_response, wrap_transport_error = _pipeline()
        client = self._sync_api or self._get_sync_client()
        request = client.build_request(op.method, self._url(client, op.path), **op.request_kwargs())
        try:
            response = client.send(request)
        except request_error as exc:
            raise wrap_transport_error(exc) from exc
        return op.parse(check_response(response))

    async def _acall(self, op: Operation[T]) -> T:
        """Send one operation with the async client of the running event loop and parse its answer."""
        request_error, check_response, wrap_transport_error = _pipeline()
        client = self._get_async_client()
        request = client.build_request(op.method, self._url(client, op.path), **op.request_kwargs())
        try:
            response = await client.send(request)
        except request_error as exc:
            raise wrap_transport_error(exc) from exc
        return op.parse(check_response(response))

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request to the API; raises :class:`ReplicateError` on an error status."""
        from ._http import Operation

        return self._call(Operation(method, path, parse=_identity, **_operation_kwargs(kwargs)))

    async def _async_request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Async twin of :meth:`_request`."""
        from ._http import Operation

        return await self._acall(
            Operation(method, path, parse=_identity, **_operation_kwargs(kwargs))
        )

    # ----------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close the sync clients. The next request builds fresh ones."""
        with self._lock:
            clients = [self._sync_api, self._sync_download]
            self._sync_api = self._sync_download = None
        for client in clients:
            if client is not None:
                client.close()

    async def aclose(self) -> None:
        """Close the async clients of the running event loop and forget those of other loops."""
        import asyncio

        try:
            loop: Any = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            mine = [
                d.get(loop) for d in (self._async_api, self._async_download) if loop is not None
            ]
            self._async_api = weakref.WeakKeyDictionary()
            self._async_download = weakref.WeakKeyDictionary()
        for client in mine:
            if client is not None:
                await client.aclose()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    # ----------------------------------------------------------------- namespaces

    @cached_property
    def accounts(self) -> Accounts:
        """The ``accounts`` namespace."""
        from .account import Accounts

        return Accounts(self)

    @cached_property
    def collections(self) -> Collections:
        """The ``collections`` namespace."""
        from .collection import Collections

        return Collections(self)

    @cached_property
    def deployments(self) -> Deployments:
        """The ``deployments`` namespace."""
        from .deployment import Deployments

        return Deployments(self)

    @cached_property
    def files(self) -> Files:
        """The ``files`` namespace."""
        from .file import Files

        return Files(self)

    @cached_property
    def hardware(self) -> HardwareNamespace:
        """The ``hardware`` namespace."""
        from .hardware import HardwareNamespace

        return HardwareNamespace(self)

    @cached_property
    def models(self) -> Models:
        """The ``models`` namespace."""
        from .model import Models

        return Models(self)

    @cached_property
    def predictions(self) -> Predictions:
        """The ``predictions`` namespace."""
        from .prediction import Predictions

        return Predictions(self)

    @cached_property
    def trainings(self) -> Trainings:
        """The ``trainings`` namespace."""
        from .training import Trainings

        return Trainings(self)

    @cached_property
    def webhooks(self) -> Webhooks:
        """The ``webhooks`` namespace."""
        from .webhook import Webhooks

        return Webhooks(self)

    # ----------------------------------------------------------------- high-level calls

    def run(
        self,
        ref: Any,
        input: dict[str, Any] | None = None,
        *,
        use_file_output: bool = True,
        timeout: float | None = None,
        **params: Any,
    ) -> Any:
        """Run a model and return its output. See :func:`replicate.run`."""
        from .run import run

        return run(self, ref, input, use_file_output=use_file_output, timeout=timeout, **params)

    async def async_run(
        self,
        ref: Any,
        input: dict[str, Any] | None = None,
        *,
        use_file_output: bool = True,
        timeout: float | None = None,
        **params: Any,
    ) -> Any:
        """Async twin of :meth:`run`."""
        from .run import async_run

        return await async_run(
            self, ref, input, use_file_output=use_file_output, timeout=timeout, **params
        )

    def stream(
        self,
        ref: Any,
        input: dict[str, Any] | None = None,
        *,
        use_file_output: bool = True,
        timeout: float | None = None,
        **params: Any,
    ) -> Iterator[ServerSentEvent]:
        """Run a model and stream its output as server-sent events. See :func:`replicate.stream`.

        The prediction is created now; the returned generator connects on the first ``next()``.
        """
        from .stream import _open

        return _open(self, ref, input, use_file_output=use_file_output, timeout=timeout, **params)

    async def async_stream(
        self,
        ref: Any,
        input: dict[str, Any] | None = None,
        *,
        use_file_output: bool = True,
        timeout: float | None = None,
        **params: Any,
    ) -> AsyncIterator[ServerSentEvent]:
        """Async twin of :meth:`stream`: ``async for ev in await client.async_stream(...)``."""
        from .stream import _async_open

        return await _async_open(
            self, ref, input, use_file_output=use_file_output, timeout=timeout, **params
        )

    def use(self, ref: Any, **options: Any) -> Function | AsyncFunction:
        """A callable handle on a model. See :func:`replicate.use`."""
        from .use import use

        return use(self, ref, **options)

    def search(self, query: str, *, limit: int | None = None, **options: Any) -> SearchResponse:
        """Search models, collections and docs. See :func:`replicate.search`."""
        from .search import search

        return search(self, query, limit=limit, **options)

    async def async_search(
        self, query: str, *, limit: int | None = None, **options: Any
    ) -> SearchResponse:
        """Async twin of :meth:`search`."""
        from .search import async_search

        return await async_search(self, query, limit=limit, **options)


_PIPELINE: tuple[Any, Any, Any] | None = None


def _remember_missing_sniffio() -> None:
    """Record once that the optional ``sniffio`` is not installed.

    httpcore tries ``import sniffio`` for every async lock, event and semaphore it creates; when
    the package is absent each try searches ``sys.path`` again (about a millisecond per async
    request, measured in benchmarks/bench_batch.py). ``None`` in ``sys.modules`` makes those
    imports fail at once; ``importlib.util.find_spec("sniffio")`` still answers ``None``.
    """
    import sys

    if "sniffio" not in sys.modules:
        import importlib.util

        if importlib.util.find_spec("sniffio") is None:
            sys.modules["sniffio"] = None  # type: ignore[assignment]


def _pipeline() -> tuple[Any, Any, Any]:
    """The request-error class, the response check and the error wrapper, imported once."""
    global _PIPELINE
    if _PIPELINE is None:
        import httpx

        from ._http import check_response
        from .exceptions import wrap_transport_error

        _PIPELINE = (httpx.RequestError, check_response, wrap_transport_error)
    return _PIPELINE


def _identity(response: Any) -> Any:
    return response


_OPERATION_FIELDS = {
    "params",
    "json",
    "content",
    "files",
    "data",
    "headers",
    "timeout",
    "extensions",
}


def _operation_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    unknown = set(kwargs) - _OPERATION_FIELDS
    if unknown:
        raise TypeError(f"Unsupported request arguments: {', '.join(sorted(unknown))}")
    out = dict(kwargs)
    if out.get("headers") is not None:
        out["headers"] = dict(out["headers"])
    else:
        out.pop("headers", None)
    timeout = out.get("timeout")
    if timeout is not None and not hasattr(timeout, "read"):
        from ._http import resolve_timeout

        out["timeout"] = resolve_timeout(timeout)
    return out
