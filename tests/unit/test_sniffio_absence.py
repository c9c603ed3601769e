"""httpcore's per-lock ``import sniffio`` is made cheap when sniffio is not installed."""

from __future__ import annotations

import asyncio
import importlib.util
import sys

import httpx
import pytest

import replicate


def test_an_async_request_records_a_missing_sniffio_once(monkeypatch: pytest.MonkeyPatch) -> None:
    if "sniffio" in sys.modules and sys.modules["sniffio"] is not None:
        pytest.skip("sniffio is installed here: nothing to record")
    monkeypatch.delitem(sys.modules, "sniffio", raising=False)
    client = replicate.Client(
        api_token="t",
        base_url="https://api.example.test",
        transport=httpx.MockTransport(lambda request: httpx.Response(200, json={"type": "user"})),
    )

    async def call() -> None:
        await client.accounts.async_current()

    asyncio.run(call())
    assert sys.modules["sniffio"] is None
    assert importlib.util.find_spec("sniffio") is None  # still answers "not installed"
    with pytest.raises(ImportError):
        import sniffio  # noqa: F401
