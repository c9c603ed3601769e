"""hardware.list() / async_list(): wire format and parsing."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import httpx
import pytest

from replicate.client import Client
from replicate.exceptions import APIResponseValidationError, InternalServerError
from replicate.hardware import Hardware, HardwareNamespace

MODES = ["sync", "async"]
HARDWARE = [
    {"sku": "cpu", "name": "CPU"},
    {"sku": "gpu-t4", "name": "Nvidia T4 GPU"},
    {"sku": "gpu-a40-large", "name": "Nvidia A40 (Large) GPU", "memory": "48GB"},
]


class Api:
    """A MockTransport handler: records requests, answers with one canned response."""

    def __init__(self, status: int = 200, body: Any = HARDWARE) -> None:
        self.status, self.body = status, body
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.body)

    def client(self) -> Client:
        return Client("r8_test", transport=httpx.MockTransport(self), retry=False)


def invoke(mode: str, target: Any, name: str, /, *args: Any, **kwargs: Any) -> Any:
    if mode == "sync":
        return getattr(target, name)(*args, **kwargs)
    return asyncio.run(getattr(target, f"async_{name}")(*args, **kwargs))


@pytest.mark.parametrize("mode", MODES)
def test_list_request_and_parse(mode: str) -> None:
    api = Api()
    client = api.client()
    assert isinstance(client.hardware, HardwareNamespace)
    result = invoke(mode, client.hardware, "list")
    (request,) = api.requests
    assert request.method == "GET"
    assert str(request.url) == "https://api.replicate.com/v1/hardware"
    assert request.content == b""
    assert isinstance(result, list)
    assert [h.sku for h in result] == ["cpu", "gpu-t4", "gpu-a40-large"]
    assert [h.name for h in result] == ["CPU", "Nvidia T4 GPU", "Nvidia A40 (Large) GPU"]
    assert all(isinstance(h, Hardware) and h._client is client for h in result)
    assert result[2].memory == "48GB"


@pytest.mark.parametrize("mode", MODES)
def test_list_empty(mode: str) -> None:
    assert invoke(mode, Api(body=[]).client().hardware, "list") == []


@pytest.mark.parametrize("mode", MODES)
def test_list_rejects_object_body(mode: str) -> None:
    with pytest.raises(APIResponseValidationError, match="array"):
        invoke(mode, Api(body={"results": []}).client().hardware, "list")


@pytest.mark.parametrize("mode", MODES)
def test_list_error(mode: str) -> None:
    with pytest.raises(InternalServerError):
        invoke(mode, Api(status=500, body={"detail": "boom"}).client().hardware, "list")


@pytest.mark.parametrize("mode", MODES)
def test_list_extras_and_unknown_keyword(mode: str) -> None:
    api = Api()
    invoke(mode, api.client().hardware, "list", extra_headers={"X-A": "b"})
    assert api.requests[-1].headers["x-a"] == "b"
    with pytest.raises(TypeError, match="nope"):
        invoke(mode, api.client().hardware, "list", nope=True)
    assert len(api.requests) == 1


def test_id_is_deprecated_alias_of_sku() -> None:
    hw = Hardware(sku="gpu-t4", name="T4")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert hw.id == "gpu-t4"
    assert [w.category for w in caught] == [DeprecationWarning]
    assert "sku" in str(caught[0].message)
