"""The per-call work done once on the run/get path: cached URLs, refs and routes, the plain-input
fast path of the input encoder, the cached wait timeouts. Each must give what the slow path
gives."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import httpx
import pytest

from replicate import client as client_module
from replicate.client import Client
from replicate.identifier import resolve_ref
from replicate.prediction import _async_encode_input, _encode_input, _is_plain

MODES = ["sync", "async"]
API = "https://api.replicate.com"
PREDICTION = {
    "id": "p1",
    "model": "acme/hello",
    "version": "hidden",
    "status": "succeeded",
    "input": {"text": "x"},
    "output": "hello x",
    "urls": {"get": f"{API}/v1/predictions/p1"},
}


class Recorder:
    """A MockTransport handler that records requests and answers like the API."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        headers = {"preference-applied": "wait"} if request.method == "POST" else {}
        status = 201 if request.method == "POST" else 200
        return httpx.Response(status, json=PREDICTION, headers=headers)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        return self(request)


def make_client(recorder: Recorder, mode: str, **kwargs: Any) -> Client:
    if mode == "sync":
        return Client(api_token="r8_x", transport=httpx.MockTransport(recorder), **kwargs)
    return Client(api_token="r8_x", transport=httpx.MockTransport(recorder.handle), **kwargs)


def run(client: Client, mode: str, ref: str, **kwargs: Any) -> Any:
    if mode == "sync":
        return client.run(ref, **kwargs)
    return asyncio.run(client.async_run(ref, **kwargs))


def get(client: Client, mode: str, pid: str) -> Any:
    if mode == "sync":
        return client.predictions.get(pid)
    return asyncio.run(client.predictions.async_get(pid))


@pytest.mark.parametrize("mode", MODES)
def test_repeated_runs_send_identical_requests(mode: str) -> None:
    recorder = Recorder()
    client = make_client(recorder, mode)
    outputs = [
        run(client, mode, "acme/hello", input={"text": "x", "n": [1, 2.5, None]}) for _ in range(3)
    ]
    assert outputs == ["hello x"] * 3
    urls = {str(r.url) for r in recorder.requests}
    assert urls == {f"{API}/v1/models/acme/hello/predictions"}
    bodies = {r.content for r in recorder.requests}
    assert bodies == {b'{"input":{"text":"x","n":[1,2.5,null]}}'}
    assert all(r.headers["prefer"] == "wait" for r in recorder.requests)
    assert all(r.extensions["timeout"]["read"] >= 60 for r in recorder.requests)


@pytest.mark.parametrize("mode", MODES)
def test_url_cache_keeps_base_path_and_query(mode: str) -> None:
    recorder = Recorder()
    client = make_client(recorder, mode, base_url="http://localhost:5000/prefix/")
    for _ in range(2):
        get(client, mode, "p1")
    if mode == "sync":
        client._request("GET", "/v1/predictions?cursor=a b")
    else:
        asyncio.run(client._async_request("GET", "/v1/predictions?cursor=a b"))
    assert [str(r.url) for r in recorder.requests] == [
        "http://localhost:5000/prefix/v1/predictions/p1",
        "http://localhost:5000/prefix/v1/predictions/p1",
        "http://localhost:5000/prefix/v1/predictions?cursor=a%20b",
    ]


def test_url_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "_URL_CACHE_SIZE", 3)
    recorder = Recorder()
    client = make_client(recorder, "sync")
    for i in range(10):
        client.predictions.get(f"p{i}")
    assert len(client._urls) <= 3
    assert [r.url.path for r in recorder.requests] == [f"/v1/predictions/p{i}" for i in range(10)]


def test_resolve_ref_is_cached_and_still_rejects_bad_refs() -> None:
    assert resolve_ref("acme/hello") is resolve_ref("acme/hello")
    for _ in range(2):
        with pytest.raises(ValueError, match="Invalid"):
            resolve_ref("not a ref")

    class Ref(str):
        pass

    assert resolve_ref(Ref("acme/hello:v1")).version_id == "v1"


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        ({"a": "x", "b": [1, 2.0, True, None, {"c": "d"}]}, True),
        ({"a": (1, 2)}, False),
        ({"a": b"bytes"}, False),
        ({"a": io.BytesIO(b"x")}, False),
        ({1: "int key"}, False),
        ({"a": {"b": {1, 2}}}, False),
    ],
)
def test_is_plain(value: Any, plain: bool) -> None:
    assert _is_plain(value) is plain


@pytest.mark.parametrize("mode", MODES)
def test_plain_input_fast_path_matches_the_encoder(mode: str) -> None:
    client = make_client(Recorder(), mode)
    value = {"a": "x", "b": [1, {"c": None}], "d": 1.5}
    if mode == "sync":
        encoded = _encode_input(client, value)
    else:
        encoded = asyncio.run(_async_encode_input(client, value))
    assert encoded == value
    assert encoded is not value  # a copy: the caller's dict is never sent by reference
    tupled = {"a": (1, 2)}
    if mode == "sync":
        assert _encode_input(client, tupled) == {"a": [1, 2]}
    else:
        assert asyncio.run(_async_encode_input(client, tupled)) == {"a": [1, 2]}


@pytest.mark.parametrize("mode", MODES)
def test_file_inputs_still_upload(mode: str) -> None:
    uploads: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/files":
            uploads.append(request.content)
            return httpx.Response(201, json={"id": "f1", "urls": {"get": f"{API}/v1/files/f1"}})
        body = json.loads(request.content)
        assert body["input"] == {"image": f"{API}/v1/files/f1", "text": "x"}
        return httpx.Response(201, json=PREDICTION, headers={"preference-applied": "wait"})

    async def ahandler(request: httpx.Request) -> httpx.Response:
        return handler(request)

    transport = httpx.MockTransport(handler if mode == "sync" else ahandler)
    client = Client(api_token="r8_x", transport=transport)
    assert run(client, mode, "acme/hello", input={"image": io.BytesIO(b"png"), "text": "x"}) == (
        "hello x"
    )
    assert len(uploads) == 1 and b"png" in uploads[0]
