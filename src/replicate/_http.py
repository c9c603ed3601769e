"""The sans-I/O request pipeline: describe a request, check and decode its response.

Every API call is an :class:`Operation` (method, path, body, how to parse the answer). The sync and
async shells in :mod:`replicate.client` only send it; every decision lives here.
"""

from __future__ import annotations

import json as _json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypedDict, TypeVar
from urllib.parse import urlsplit

import httpx

from ._retry import DEADLINE_EXTENSION, IDEMPOTENT_EXTENSION
from .exceptions import APIResponseValidationError, ReplicateError

logger = logging.getLogger("replicate")

__all__ = [
    "RequestOptions",
    "DEADLINE_EXTENSION",
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "IDEMPOTENT_EXTENSION",
    "Operation",
    "TokenAuth",
    "check_response",
    "json_object_of",
    "json_of",
    "normalize_base_url",
    "origin_of",
    "resolve_timeout",
    "returns_true",
    "with_min_read",
]

T = TypeVar("T")

DEFAULT_BASE_URL = "https://api.replicate.com"
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=10.0)
UPLOAD_MIN_READ = 120.0
STREAM_MIN_READ = 60.0
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


#: The names of :class:`RequestOptions`, in the order ``with_extras`` takes them.
REQUEST_OPTIONS = ("extra_headers", "extra_query", "extra_body")


class RequestOptions(TypedDict, total=False):
    """Keyword options every request-making method accepts (docs/api.md, "Conventions").

    They let a caller send what the client does not know yet; they are never API fields.
    """

    extra_headers: Mapping[str, str] | None
    """Headers added to the request (they win over the library's own)."""
    extra_query: Mapping[str, Any] | None
    """Query parameters added to the URL."""
    extra_body: Mapping[str, Any] | None
    """Keys merged last into a JSON body (only for requests that send a JSON object)."""


@dataclass
class Operation(Generic[T]):
    """One API call: what to send and how to turn the response into a value."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: dict[str, Any] | None = None
    json: Any = None
    content: Any = None
    files: Any = None
    data: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: httpx.Timeout | None = None
    extensions: dict[str, Any] = field(default_factory=dict)

    def with_extras(
        self,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Operation[T]:
        """Merge the per-call escape hatches (they win over the library's own values)."""
        if extra_headers:
            self.headers = {**self.headers, **extra_headers}
        if extra_query:
            self.params = {**(self.params or {}), **extra_query}
        if extra_body:
            if self.json is None:
                if self.method.upper() in ("GET", "HEAD", "DELETE") or self.content is not None:
                    raise TypeError(
                        f"extra_body cannot be used with {self.method} {self.path}: "
                        "this request has no JSON body"
                    )
                self.json = {}
            if not isinstance(self.json, dict):
                raise TypeError("extra_body can only be used with calls that send a JSON object")
            self.json = {**self.json, **extra_body}
        return self

    def with_options(self, options: Mapping[str, Any]) -> Operation[T]:
        """:meth:`with_extras` from a method's ``**options``; unknown names are a ``TypeError``."""
        unknown = [name for name in options if name not in REQUEST_OPTIONS]
        if unknown:
            names = ", ".join(repr(name) for name in unknown)
            raise TypeError(f"unexpected keyword argument(s): {names}")
        return self.with_extras(*(options.get(name) for name in REQUEST_OPTIONS))

    def request_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client.build_request``."""
        kwargs: dict[str, Any] = {}
        if self.params:
            kwargs["params"] = self.params
        if self.json is not None:
            # Compact JSON, keys in insertion order, UTF-8: the exact bytes the API sees.
            kwargs["content"] = _json.dumps(
                self.json, separators=(",", ":"), ensure_ascii=False
            ).encode()
            kwargs["headers"] = {"Content-Type": "application/json", **self.headers}
        else:
            if self.content is not None:
                kwargs["content"] = self.content
            if self.files is not None:
                kwargs["files"] = self.files
            if self.data is not None:
                kwargs["data"] = self.data
            if self.headers:
                kwargs["headers"] = self.headers
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        if self.extensions:
            kwargs["extensions"] = self.extensions
        return kwargs


def normalize_base_url(url: str) -> str:
    """Strip trailing slashes and one trailing ``/v1`` segment; warn on plain HTTP to a remote host."""
    url = url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")].rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"Invalid base_url: {url!r}. Expected an http(s) URL such as {DEFAULT_BASE_URL}"
        )
    if parts.scheme != "https" and (parts.hostname or "") not in _LOCAL_HOSTS:
        logger.warning("Using a non-HTTPS base URL for the Replicate API: %s", url)
    return url


def origin_of(url: str | httpx.URL) -> tuple[str, str, int | None]:
    """The (scheme, host, port) of a URL, with default ports made explicit."""
    u = httpx.URL(url) if isinstance(url, str) else url
    port = u.port or {"http": 80, "https": 443}.get(u.scheme)
    return (u.scheme, u.host, port)


def resolve_timeout(timeout: httpx.Timeout | float | int | None) -> httpx.Timeout:
    """The client's default timeout: an explicit ``httpx.Timeout`` as given, a number for every phase."""
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(
            f"timeout must be an httpx.Timeout, a number of seconds or None, not {timeout!r}"
        )
    if not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return httpx.Timeout(float(timeout))


def with_min_read(timeout: httpx.Timeout, seconds: float) -> httpx.Timeout:
    """A copy of ``timeout`` whose read timeout is at least ``seconds`` (``None`` stays unbounded)."""
    if timeout.read is None or timeout.read >= seconds:
        return timeout
    return httpx.Timeout(
        connect=timeout.connect, read=seconds, write=timeout.write, pool=timeout.pool
    )


def check_response(response: httpx.Response) -> httpx.Response:
    """Return a successful response, or raise the status-mapped :class:`ReplicateError`.

    A streamed response must have been read (``read()``/``aread()``) before an error is raised here.
    """
    if 200 <= response.status_code < 300:
        return response
    raise ReplicateError.from_response(response)


def json_of(response: httpx.Response) -> Any:
    """The JSON body of a successful response, or :class:`APIResponseValidationError`."""
    try:
        return _json.loads(response.content)
    except ValueError as exc:
        text = response.text.strip()[:2000]
        raise APIResponseValidationError(
            title="Invalid response body",
            status=response.status_code,
            detail=f"Expected a JSON response body from {response.request.method} "
            f"{response.request.url.copy_with(query=None)}, got: {text!r}",
            body=text,
            response=response,
            request=response.request,
        ) from exc


def json_object_of(response: httpx.Response) -> dict[str, Any]:
    """Like :func:`json_of`, but the body must be a JSON object."""
    body = json_of(response)
    if not isinstance(body, dict):
        raise APIResponseValidationError(
            title="Invalid response body",
            status=response.status_code,
            detail=f"Expected a JSON object, got {type(body).__name__}",
            body=body,
            response=response,
            request=response.request,
        )
    return body


def returns_true(response: httpx.Response) -> bool:
    """Parser for deletes: any 2xx is ``True``."""
    return True


class TokenAuth(httpx.Auth):
    """Adds ``Authorization: Bearer <token>`` per request, reading the token each time.

    Used when the client was given no explicit token, so that a token set in the environment (or
    the current Cog request scope) after the client was built is still picked up.
    """

    def __init__(self, get_token: Callable[[], str | None]) -> None:
        self._get_token = get_token
        self._warned = False

    def auth_flow(self, request: httpx.Request) -> Any:
        if "authorization" not in request.headers:
            token = self._get_token()
            if token:
                request.headers["Authorization"] = f"Bearer {token}"
            elif not self._warned:
                self._warned = True
                logger.warning(
                    "No API token found: set REPLICATE_API_TOKEN or pass Client(api_token=...). "
                    "Sending requests without authentication."
                )
        yield request
