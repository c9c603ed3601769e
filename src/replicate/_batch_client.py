"""The batch's HTTP client: the caller's settings, every attempt paced and counted
(docs/batch.md, "Within the rate limits")."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ._pacing import Pacer

if TYPE_CHECKING:
    import httpx

    from .client import Client

__all__ = ["BATCH_MAX_ATTEMPTS", "metered_client"]

#: Attempts per request of the batch's client (at least; see metered_client).
BATCH_MAX_ATTEMPTS = 30


def metered_client(client: Client, pacer: Pacer, concurrency: int) -> Client:
    """A client with ``client``'s settings whose every attempt is paced and counted."""
    import httpx

    from .client import Client

    inner = client._async_transport or client._transport
    if inner is None:
        kwargs = client._transport_kwargs()
        kwargs.setdefault(
            "limits",
            httpx.Limits(max_connections=concurrency + 16, max_keepalive_connections=concurrency),
        )
        inner = httpx.AsyncHTTPTransport(**kwargs)
    headers = [(k, v) for k, v in client._headers]
    # A batch outlives storms of 429s and short outages: the same retry policy (creates are
    # still never re-sent when the API may have acted on them), with more attempts.
    retry = dict(client._retry) if isinstance(client._retry, dict) else {}
    retry["max_attempts"] = max(int(retry.get("max_attempts", 0)), BATCH_MAX_ATTEMPTS)
    return Client(
        api_token=client._api_token,
        base_url=client._base_url,
        timeout=client._timeout,
        poll_interval=client.poll_interval,
        retry=retry,
        async_transport=_MeteredTransport(inner, pacer),  # type: ignore[arg-type]
        headers=headers,
        **client._httpx_kwargs,
    )


class _MeteredTransport:
    """Sends through ``inner`` after the pacer's wait; tells the pacer every answer's status.

    It sits inside the client's retry transport, so retries are paced and counted too.
    """

    def __init__(self, inner: Any, pacer: Pacer) -> None:
        if not hasattr(inner, "handle_async_request"):
            raise TypeError(
                f"batch runs need an async transport; {type(inner).__name__} has none: pass "
                "Client(async_transport=...) (e.g. httpx.AsyncHTTPTransport())"
            )
        self._inner = inner
        self._pacer = pacer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        from ._retry import parse_retry_after

        category = self._pacer.category(request.method, request.url.path)
        delay = self._pacer.reserve(category)
        if delay > 0:
            await asyncio.sleep(delay)
        response = await self._inner.handle_async_request(request)
        retry_after = None
        if response.status_code == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
        self._pacer.answered(category, response.status_code, retry_after)
        return response

    async def aclose(self) -> None:
        close = getattr(self._inner, "aclose", None)
        if close is not None:
            await close()
