"""Audit of docs/differences-from-1.0.md: one test (or a small parametrised group) per item.

``test_dNN_*`` covers item DNN ("Known weaknesses of 1.0.x"); ``test_oNN_*`` covers item ONN
("Other observable differences"), with the numbers of that page:

    O01 wait/reload/cancel return self          O08 foreign cursors rejected, http upgraded
    O02 webhooks.validate returns True           O09 trailing /v1 in base_url accepted
    O03 versions.delete True for 202             O10 https://<host> output URL heuristic
    O04 files.list: a list with a cursor         O11 non-SSE stream content type -> ReplicateError
    O05 input=None sends "input": {}             O12 retries: QUERY, cancel, 408/500/502, ...
    O06 files.create respects filename=          O13 1.0.x-pinned behaviours changed as listed
    O07 1xx/3xx API answers raise ReplicateError

Every test runs over ``httpx.MockTransport`` with a small local handler and fails if the
behaviour it names is missing. Where a behaviour has a sync and an async twin the test is
parametrised over both (``aio``). Sleeps are replaced by recorders; nothing waits on the clock.
A test marked ``xfail(strict=True)`` documents a defect of the module named in its reason.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import importlib
import inspect
import io
import json
import logging
import math
import os
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import replicate
from replicate import _polling
from replicate.client import Client, _get_api_token_from_environment
from replicate.deployment import Deployment
from replicate.exceptions import (
    APIRequestError,
    AuthenticationError,
    DownloadError,
    InternalServerError,
    ModelError,
    ModelStreamError,
    NotFoundError,
    PredictionAbortedError,
    PredictionCanceledError,
    PredictionTimeoutError,
    RateLimitError,
    ReplicateError,
    ReplicateException,
)
from replicate.helpers import FileOutput, async_encode_json, encode_json, transform_output
from replicate.model import Model
from replicate.pagination import async_paginate, paginate
from replicate.prediction import Prediction
from replicate.schema import make_schema_backwards_compatible, output_is_concatenate_iterator
from replicate.training import Training
from replicate.version import Version, Versions
from replicate.webhook import (
    InvalidSecretKeyError,
    InvalidSignatureError,
    InvalidTimestampError,
    Webhooks,
    WebhookSigningSecret,
)

stream_mod = importlib.import_module("replicate.stream")
retry_mod = importlib.import_module("replicate._retry")
webhook_mod = importlib.import_module("replicate.webhook")
URLPath = importlib.import_module("replicate.use").URLPath
ServerSentEvent = stream_mod.ServerSentEvent
OUTPUT = ServerSentEvent.EventType.OUTPUT

TOKEN = "r8_deviation_audit_token"
API = "https://api.replicate.com"
VID = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
STREAM_URL = "https://stream.replicate.com/v1/streams/p1"
DELIVERY = "https://replicate.delivery/xezq/out.png"
SYNC_DONE = {"Preference-Applied": "wait"}

ITERATOR_SCHEMA = {
    "components": {
        "schemas": {
            "Output": {"type": "array", "items": {"type": "string"}, "x-cog-array-type": "iterator"}
        }
    }
}
CONCAT_SCHEMA = {
    "components": {
        "schemas": {
            "Output": {
                "type": "array",
                "items": {"type": "string"},
                "x-cog-array-type": "iterator",
                "x-cog-array-display": "concatenate",
            }
        }
    }
}
PLAIN_SCHEMA = {"components": {"schemas": {"Output": {"type": "string"}}}}


# ------------------------------------------------------------------------------------ helpers


@pytest.fixture(params=["sync", "async"])
def aio(request: pytest.FixtureRequest) -> bool:
    """``True`` for the async twin of the behaviour under test."""
    return bool(request.param == "async")


async def call(obj: Any, name: str, /, *args: Any, aio: bool, **kwargs: Any) -> Any:
    """``obj.name(...)`` or ``await obj.async_name(...)``."""
    if aio:
        return await getattr(obj, f"async_{name}")(*args, **kwargs)
    return getattr(obj, name)(*args, **kwargs)


async def collect(iterable: Any) -> list[Any]:
    """The items of a sync or async iterable."""
    if hasattr(iterable, "__aiter__"):
        return [item async for item in iterable]
    return list(iterable)


async def drain(iterable: Any, sink: list[Any]) -> None:
    """Append the items of a sync or async iterable to ``sink`` (keeps them if it raises)."""
    if hasattr(iterable, "__aiter__"):
        async for item in iterable:
            sink.append(item)
    else:
        sink.extend(iterable)


async def resolved(value: Any) -> Any:
    """``await value`` if it is awaitable, else ``value``."""
    return await value if inspect.isawaitable(value) else value


def reply(status: int = 200, body: Any = None, **headers: str) -> Callable[[httpx.Request], Any]:
    """A handler answer: ``status`` with a JSON ``body`` and ``headers`` (``_`` → ``-``)."""
    hdrs = {k.replace("_", "-"): v for k, v in headers.items()}

    def answer(request: httpx.Request) -> httpx.Response:
        if body is None:
            return httpx.Response(status, headers=hdrs)
        return httpx.Response(status, json=body, headers=hdrs)

    return answer


class Fake:
    """A tiny scripted API: queued answers per ``(METHOD, path)``; the last answer repeats."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Any]] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, *answers: Any) -> Fake:
        """Queue answers: a dict/list (200 JSON), a :func:`reply`, or ``request -> Response``."""
        self.routes.setdefault((method, path), []).extend(answers)
        return self

    def set(self, method: str, path: str, *answers: Any) -> Fake:
        """Replace the answers of a route."""
        self.routes[(method, path)] = list(answers)
        return self

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answers = self.routes.get((request.method, request.url.path))
        if not answers:
            return httpx.Response(404, json={"detail": f"no route {request.url.path}"})
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if callable(answer):
            return answer(request)  # type: ignore[no-any-return]
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(200, json=answer)

    def client(self, **kwargs: Any) -> Client:
        return make_client(self, **kwargs)

    def paths(self, method: str | None = None) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests if method in (None, r.method)]

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.url.path == path)


class WireTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Like ``MockTransport`` but reads the body by iterating ``request.stream`` (as a network
    transport does) instead of ``request.read()``, which would buffer it and make it replayable."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.handler = handler
        self.bodies: list[bytes] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(b"".join(request.stream))  # type: ignore[arg-type]
        return self.handler(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(b"".join([c async for c in request.stream]))  # type: ignore[union-attr]
        return self.handler(request)


def make_client(handler: Callable[[httpx.Request], Any], **kwargs: Any) -> Client:
    kwargs.setdefault("api_token", TOKEN)
    kwargs.setdefault("poll_interval", 0)
    kwargs.setdefault("retry", False)
    return Client(transport=httpx.MockTransport(handler), **kwargs)


def pred(status: str = "succeeded", output: Any = None, *, id: str = "p1", **extra: Any) -> dict:
    """A prediction as the API sends it."""
    body: dict[str, Any] = {
        "id": id,
        "model": "acme/model",
        "version": VID,
        "status": status,
        "input": {},
        "output": output,
        "error": None,
        "logs": "",
        "data_removed": False,
        "created_at": "2026-01-01T00:00:00Z",
        "urls": {
            "get": f"{API}/v1/predictions/{id}",
            "cancel": f"{API}/v1/predictions/{id}/cancel",
            "web": f"https://replicate.com/p/{id}",
        },
    }
    body.update(extra)
    return body


def streaming_pred(status: str = "starting", **extra: Any) -> dict:
    data = pred(status, **extra)
    data["urls"]["stream"] = STREAM_URL
    return data


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


class Chunks(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body in chunks, optionally ending with a transport error."""

    def __init__(self, *chunks: bytes, error: Exception | None = None) -> None:
        self.chunks = chunks
        self.error = error

    def __iter__(self) -> Any:
        yield from self.chunks
        if self.error is not None:
            raise self.error

    async def __aiter__(self) -> Any:
        for chunk in self.chunks:
            yield chunk
        if self.error is not None:
            raise self.error


def sse(*chunks: bytes, error: Exception | None = None, ctype: str = "text/event-stream") -> Any:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"Content-Type": ctype}, stream=Chunks(*chunks, error=error)
        )

    return answer


def version_obj(client: Client, schema: dict | None) -> Version:
    return Version._from_api(
        {
            "id": VID,
            "created_at": "2026-01-01T00:00:00Z",
            "cog_version": "0.9.0",
            "openapi_schema": schema,
        },
        client,
    )


async def read(fo: FileOutput, aio: bool) -> bytes:
    return await fo.aread() if aio else fo.read()


# ------------------------------------------- webhook test vector (docs/webhooks.md, "Test vector")

WH_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WH_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
WH_TS = 1614265330
WH_BODY = '{"test": 2432232314}'
WH_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def wh_headers(signature: str = WH_SIG) -> dict[str, str]:
    return {
        "webhook-id": WH_ID,
        "webhook-timestamp": str(WH_TS),
        "webhook-signature": signature,
    }


@pytest.fixture
def at_vector_time(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Pin the webhook clock: ``at_vector_time(offset)`` sets now = vector timestamp + offset."""

    def pin(offset: float = 0.0) -> None:
        monkeypatch.setattr(webhook_mod, "_now", lambda: WH_TS + offset)

    pin(0.0)
    return pin


# ============================================================ D01-D39: known weaknesses of 1.0.x


async def test_d01_file_output_never_sends_token_to_foreign_host(aio: bool) -> None:
    """D01: FileOutput downloads carry Authorization only for the API origin; redirects drop it."""
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        if request.url.path == "/v1/redirect-me":
            return httpx.Response(302, headers={"Location": DELIVERY})
        return httpx.Response(200, content=b"bytes")

    explicit = make_client(handler)
    caller_header = make_client(handler, api_token=None, headers={"Authorization": "Bearer mine"})
    for client, auth in ((explicit, f"Bearer {TOKEN}"), (caller_header, "Bearer mine")):
        seen.clear()
        assert await read(FileOutput(DELIVERY, client), aio) == b"bytes"
        assert await read(FileOutput("https://evil.example/x", client), aio) == b"bytes"
        await read(FileOutput(f"{API}/v1/files/f1/download?owner=a", client), aio)
        await read(FileOutput(f"{API}/v1/redirect-me", client), aio)
        assert seen == [
            (DELIVERY, None),
            ("https://evil.example/x", None),
            (f"{API}/v1/files/f1/download?owner=a", auth),
            (f"{API}/v1/redirect-me", auth),
            (DELIVERY, None),  # httpx strips Authorization on the cross-origin redirect
        ]


def test_d02_invalid_secret_key_error_never_contains_the_secret(at_vector_time: Any) -> None:
    """D02: fixed message "Invalid secret key format"; no secret/signature/header in messages."""
    secret = "whsec_not*base64!SUPERSECRETVALUE"
    with pytest.raises(InvalidSecretKeyError) as err:
        Webhooks.validate(headers=wh_headers(), body=WH_BODY, secret=secret)
    assert str(err.value) == "Invalid secret key format"
    assert "SUPERSECRET" not in repr(err.value) and "SUPERSECRET" not in str(err.value.args)

    wrong = "v1," + base64.b64encode(b"SIGNATURE-VALUE-XYZ!").decode()
    with pytest.raises(InvalidSignatureError) as err2:
        Webhooks.validate(headers=wh_headers(wrong), body=WH_BODY, secret=WH_SECRET)
    assert wrong[3:] not in str(err2.value) and WH_ID not in str(err2.value)
    assert "MfKQ9r8G" not in repr(WebhookSigningSecret(key=WH_SECRET))


def test_d03_webhook_timestamp_tolerance_defaults_to_300s(
    at_vector_time: Callable[[float], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """D03: default tolerance 300 s (``None`` = default); ``math.inf`` disables the check."""
    kwargs = {"headers": wh_headers(), "body": WH_BODY, "secret": WH_SECRET}
    for offset, ok in ((299, True), (-299, True), (301, False), (-301, False)):
        at_vector_time(offset)
        for tolerance in ({}, {"tolerance": None}):
            if ok:
                assert Webhooks.validate(**kwargs, **tolerance) is True
            else:
                with pytest.raises(InvalidTimestampError):
                    Webhooks.validate(**kwargs, **tolerance)
    monkeypatch.setattr(webhook_mod, "_now", time.time)  # the real clock: years later
    with pytest.raises(InvalidTimestampError):
        Webhooks.validate(**kwargs)
    assert Webhooks.validate(**kwargs, tolerance=math.inf) is True


def test_d04_only_strict_v1_signatures_count(at_vector_time: Callable[[float], None]) -> None:
    """D04: only ``v1,`` entries; strict base64 for key and signatures; bad entries cannot
    match; the 1.0.x classes, messages and (with an explicit tolerance) check order are kept."""
    good = WH_SIG.partition(",")[2]

    def check(signature: str, secret: str = WH_SECRET, **kwargs: Any) -> bool:
        return Webhooks.validate(
            headers=wh_headers(signature), body=WH_BODY, secret=secret, **kwargs
        )

    assert check(f"garbage v1 v1,%%%notb64 v2,{good} {WH_SIG}") is True  # malformed skipped
    with pytest.raises(InvalidSignatureError, match="Invalid signature format"):
        check(f"v2,{good}")  # another version tag does not count (1.0.x accepted it)
    with pytest.raises(InvalidSignatureError, match="Webhook signature is invalid"):
        check("v1," + good.rstrip("="))  # non-strict base64 (missing padding) cannot match
    with pytest.raises(InvalidSignatureError, match="Webhook signature is invalid"):
        check(WH_SIG + "AAAA")  # an extended signature (1.0.x accepted it)
    with pytest.raises(InvalidSignatureError) as err:
        check("v1,invalid_signature")
    assert str(err.value) == "Webhook signature is invalid"  # the 1.0.x message
    at_vector_time(11)
    with pytest.raises(InvalidTimestampError, match="tolerance of 10 seconds"):
        check("v1,invalid_signature", tolerance=10)  # the age first, as in 1.0.x
    with pytest.raises(InvalidSignatureError, match="Webhook signature is invalid"):
        check("v1,invalid_signature", tolerance=20)
    with pytest.raises(InvalidSecretKeyError):
        check(WH_SIG, secret="whsec_MfKQ9r8G KYqrTwjUPD8ILPZIo2LaLaSw")  # not strict base64
    with pytest.raises(InvalidSecretKeyError):
        check(WH_SIG, secret="whsec_")


async def test_d05_creates_and_uploads_have_bounded_timeouts(aio: bool) -> None:
    """D05: creates use the client timeout (read extended only for wait); uploads read >= 120 s."""
    timeouts: dict[str, dict[str, float | None]] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        key = f"{request.method} {request.url.path} {request.headers.get('prefer')}"
        timeouts[key] = request.extensions["timeout"]
        if request.url.path == "/v1/files":
            return httpx.Response(201, json={"id": "f1", "urls": {"get": f"{API}/v1/files/f1"}})
        if request.url.path.endswith("/trainings"):
            return httpx.Response(201, json={"id": "t1", "status": "starting"})
        return httpx.Response(201, json=pred("starting"))

    client = make_client(handler)
    await call(client.predictions, "create", version=VID, input={}, aio=aio)
    await call(client.predictions, "create", version=VID, input={}, wait=True, aio=aio)
    await call(client.predictions, "create", version=VID, input={}, wait=40, aio=aio)
    await call(client.files, "create", io.BytesIO(b"x" * 10), aio=aio)
    await call(client.trainings, "create", f"acme/model:{VID}", {}, "acme/dest", aio=aio)
    default = {"connect": 5.0, "read": 30.0, "write": 30.0, "pool": 10.0}
    assert timeouts["POST /v1/predictions None"] == default
    assert timeouts["POST /v1/predictions wait"] == {**default, "read": 65.0}
    assert timeouts["POST /v1/predictions wait=40"] == {**default, "read": 45.0}  # max(30, N+5)
    assert timeouts["POST /v1/files None"] == {**default, "read": 120.0}
    assert timeouts[f"POST /v1/models/acme/model/versions/{VID}/trainings None"] == default


async def test_d06_waits_and_iterators_accept_timeout(aio: bool) -> None:
    """D06: ``timeout=`` on wait()/output_iterator()/namespace waits raises PredictionTimeoutError."""
    fake = Fake().on("GET", "/v1/predictions/p1", pred("processing"))
    fake.on("GET", "/v1/trainings/t1", {"id": "t1", "status": "processing"})
    client = fake.client()
    prediction = Prediction._from_api(pred("processing"), client)
    with pytest.raises(PredictionTimeoutError) as err:
        await call(prediction, "wait", timeout=0, aio=aio)
    assert err.value.prediction is prediction and isinstance(err.value, TimeoutError)
    with pytest.raises(PredictionTimeoutError):
        await call(client.predictions, "wait", "p1", timeout=0, aio=aio)
    iterator = (
        prediction.async_output_iterator(timeout=0)
        if aio
        else prediction.output_iterator(timeout=0)
    )
    with pytest.raises(PredictionTimeoutError):
        await collect(iterator)
    training = Training._from_api({"id": "t1", "status": "processing"}, client)
    with pytest.raises(PredictionTimeoutError):
        await call(training, "wait", timeout=0, aio=aio)


async def test_d06_per_call_poll_interval_and_gentle_backoff(
    aio: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """D06: per-call ``poll_interval``; after 10 polls the delay grows by 1.2x up to 5 s."""
    sleeps: list[float] = []

    async def async_sleep(delay: float) -> None:
        sleeps.append(delay)

    # Patch the sleeps prediction.py sees, not the global ones: servers started by other test
    # modules may still run their event loops in background threads.
    import replicate.prediction as prediction_module

    if aio:
        fake_asyncio = types.SimpleNamespace(**{**vars(asyncio), "sleep": async_sleep})
        monkeypatch.setattr(prediction_module, "asyncio", fake_asyncio)
    else:
        fake_time = types.SimpleNamespace(**{**vars(time), "sleep": sleeps.append})
        monkeypatch.setattr(prediction_module, "time", fake_time)
    answers = [pred("processing")] * 12 + [pred("succeeded", "done")]
    client = Fake().on("GET", "/v1/predictions/p1", *answers).client(poll_interval=9.0)
    prediction = Prediction._from_api(pred("starting"), client)
    await call(prediction, "wait", poll_interval=0.25, aio=aio)
    assert sleeps == pytest.approx([0.25] * 10 + [0.25 * 1.2, 0.25 * 1.2**2, 0.25 * 1.2**3])
    assert _polling.poll_delay(12, 4.0) == 5.0 and _polling.poll_delay(500, 0.5) == 5.0
    assert _polling.poll_delay(11, 10.0) == 10.0  # never below the interval itself


async def test_d07_sse_idle_timeout_reconnects_with_last_event_id(aio: bool) -> None:
    """D07: an idle read timeout (>= 60 s read budget) reconnects with Last-Event-ID."""
    fake = Fake().on(
        "GET",
        "/v1/streams/p1",
        sse(b"retry: 0\nid: 1:0\nevent: output\ndata: a\n\n", error=httpx.ReadTimeout("idle")),
        sse(b"id: 1:1\nevent: output\ndata: b\n\nevent: done\ndata: {}\n\n"),
    )
    client = fake.client()
    prediction = Prediction._from_api(streaming_pred(), client)
    events = await collect(prediction.async_stream() if aio else prediction.stream())
    assert [str(e) for e in events if e.event is OUTPUT] == ["a", "b"]
    first, second = fake.requests
    assert first.extensions["timeout"]["read"] >= 60
    assert "last-event-id" not in first.headers
    assert second.headers["last-event-id"] == "1:0"
    assert second.headers["authorization"] == f"Bearer {TOKEN}"


async def test_d07_idle_reconnects_are_bounded_by_the_overall_deadline(aio: bool) -> None:
    """D07: idle reconnects never fail the stream by themselves (more than the 5-failure limit
    here), but the overall deadline bounds them: cancel + PredictionTimeoutError."""
    now = [0.0]
    gets = [0]

    def idle(request: httpx.Request) -> httpx.Response:
        gets[0] += 1
        if gets[0] == 8:
            now[0] = 100.0  # the deadline passes during the 8th idle connection
        return sse(b"retry: 0\n\n", error=httpx.ReadTimeout("idle"))(request)

    fake = Fake().on("GET", "/v1/streams/p1", idle)
    fake.on("POST", "/v1/predictions/p1/cancel", pred("canceled"))
    client = fake.client()
    prediction = Prediction._from_api(streaming_pred(), client)
    stream_cls = stream_mod.AsyncStream if aio else stream_mod.Stream
    stream = stream_cls(prediction, client=client, timeout=10, clock=lambda: now[0])
    with pytest.raises(PredictionTimeoutError) as err:
        await collect(stream)
    assert gets[0] == 8 and err.value.canceled is True
    assert fake.count("POST", "/v1/predictions/p1/cancel") == 1 and prediction.status == "canceled"


@pytest.mark.parametrize("target", ["model", "deployment"])
async def test_d08_create_forwards_all_params_for_model_and_deployment(
    aio: bool, target: str
) -> None:
    """D08: predictions.create(model=/deployment=) forwards wait, cancel_after, file encoding."""
    path = (
        "/v1/models/acme/m/predictions"
        if target == "model"
        else "/v1/deployments/acme/d/predictions"
    )
    fake = Fake().on("POST", path, reply(201, pred("starting")))
    client = fake.client()
    ref = "acme/m" if target == "model" else "acme/d"
    await call(
        client.predictions,
        "create",
        aio=aio,
        input={"f": io.BytesIO(b"hi")},
        wait=5,
        cancel_after=30,
        file_encoding_strategy="base64",
        webhook="https://example.com/hook",
        **{target: ref},
    )
    assert fake.paths() == [f"POST {path}"]  # base64: nothing uploaded
    request = fake.requests[0]
    assert request.headers["prefer"] == "wait=5"
    assert request.headers["cancel-after"] == "30s"
    assert body_of(request) == {
        "input": {"f": "data:application/octet-stream;base64,aGk="},
        "webhook": "https://example.com/hook",
    }


async def test_d09_unknown_create_params_raise_and_escape_hatches_work(aio: bool) -> None:
    """D09: unknown params → TypeError naming them (before I/O); extra_* reach the wire."""
    fake = Fake().on("POST", "/v1/predictions", reply(201, pred("starting")))
    fake.on("POST", "/v1/models/acme/m/predictions", reply(201, pred("starting")))
    client = fake.client()
    attempts = [
        (client.predictions, "create", (), {"version": VID, "input": {}}),
        (client.models.predictions, "create", ("acme/m", {}), {}),
        (client.deployments.predictions, "create", ("acme/d", {}), {}),
        (client.trainings, "create", (f"acme/m:{VID}", {}, "acme/dest"), {}),
        (client, "run", ("acme/m", {}), {}),
        (client, "stream", ("acme/m", {}), {}),
        (client.files, "create", (b"x",), {}),
        (client.deployments, "update", ("acme", "d"), {"hardware": "cpu"}),
        (
            Deployment._from_api({"owner": "acme", "name": "d"}, client).predictions,
            "create",
            ({},),
            {},
        ),
    ]
    for obj, name, args, kwargs in attempts:
        with pytest.raises(TypeError) as err:
            await call(obj, name, *args, aio=aio, **kwargs, bogus_one=1, bogus_two=2)
        assert "bogus_one" in str(err.value) and "bogus_two" in str(err.value), name
    assert fake.requests == []
    await call(
        client.predictions,
        "create",
        version=VID,
        input={},
        extra_body={"new_field": [1]},
        extra_headers={"X-New": "yes"},
        extra_query={"q": "1"},
        aio=aio,
    )
    request = fake.requests[-1]
    assert body_of(request) == {"input": {}, "version": VID, "new_field": [1]}
    assert request.headers["x-new"] == "yes" and request.url.params["q"] == "1"


async def test_d09_extra_body_never_puts_a_body_on_get_or_delete(aio: bool) -> None:
    """D09: ``extra_body`` is for JSON bodies only: a GET/DELETE is sent without a body
    (or the call raises TypeError, as models.search does)."""
    fake = Fake().on("GET", "/v1/predictions/p1", pred())
    fake.on("DELETE", "/v1/files/f1", reply(204))
    client = fake.client()
    for obj, name, args in (
        (client.predictions, "get", ("p1",)),
        (client.files, "delete", ("f1",)),
    ):
        try:
            await call(obj, name, *args, aio=aio, extra_body={"new_field": 1})
        except TypeError:
            continue
        assert fake.requests[-1].content == b"", f"{fake.requests[-1].method} carried a body"


@pytest.mark.parametrize("complete", [True, False], ids=["sync-complete", "polled"])
async def test_d10_use_file_output_honoured_for_iterators_and_streams(
    aio: bool, complete: bool
) -> None:
    """D10: ``use_file_output=False`` keeps raw strings in iterator outputs and in streams."""
    urls = [DELIVERY, DELIVERY.replace("out", "two")]
    create = (
        reply(201, pred("processing", urls), **SYNC_DONE)
        if complete
        else reply(201, pred("processing", urls[:1]))
    )
    fake = Fake().on("POST", "/v1/predictions", create)
    fake.on("GET", "/v1/predictions/p1", pred("succeeded", urls))
    client = fake.client()
    version = version_obj(client, ITERATOR_SCHEMA)
    for use_file_output, kind in ((False, str), (True, FileOutput)):
        runner = client.async_run if aio else client.run
        result = runner(version, {}, use_file_output=use_file_output)
        items = await collect(await result if aio else result)
        assert [str(i) for i in items] == urls
        assert all(type(i) is kind for i in items), (use_file_output, items)

    fake.set("POST", "/v1/predictions", reply(201, streaming_pred()))
    fake.set(
        "GET",
        "/v1/streams/p1",
        sse(f"event: output\ndata: {DELIVERY}\n\nevent: done\ndata: {{}}\n\n".encode()),
    )
    for use_file_output, kind in ((False, str), (True, FileOutput)):
        streamer = client.async_stream if aio else client.stream
        opened = streamer(VID, {}, use_file_output=use_file_output)
        events = await collect(await opened if aio else opened)
        assert type(events[0].data) is kind and str(events[0]) == DELIVERY
        existing = Prediction._from_api(streaming_pred(), client)
        opener = existing.async_stream if aio else existing.stream
        events = await collect(opener(use_file_output=use_file_output))
        assert type(events[0].data) is kind and str(events[0]) == DELIVERY


@pytest.mark.parametrize(
    ("status_code", "headers", "status", "polls"),
    [
        (201, SYNC_DONE, "processing", 0),
        (201, {}, "processing", 1),
        (202, SYNC_DONE, "processing", 1),
        (201, SYNC_DONE, "starting", 1),
    ],
    ids=["201-applied-processing", "no-preference-applied", "202", "starting"],
)
async def test_d11_processing_alone_is_not_final(
    aio: bool, status_code: int, headers: dict, status: str, polls: int
) -> None:
    """D11: only terminal or sync-complete (201 + Preference-Applied, not starting) end the wait."""
    fake = Fake().on(
        "POST", "/v1/predictions", reply(status_code, pred(status, "partial"), **headers)
    )
    fake.on("GET", "/v1/predictions/p1", pred("succeeded", "final"))
    client = fake.client()
    output = await call(client, "run", VID, {}, aio=aio, use_file_output=False)
    assert output == ("partial" if polls == 0 else "final")
    assert fake.count("GET", "/v1/predictions/p1") == polls
    assert fake.requests[0].headers["prefer"] == "wait"


async def test_d11_without_prefer_only_a_terminal_status_is_final(aio: bool) -> None:
    """D11: ``wait=False`` sends no Prefer, so even 201 + Preference-Applied is polled."""
    fake = Fake().on(
        "POST", "/v1/predictions", reply(201, pred("processing", "partial"), **SYNC_DONE)
    )
    fake.on("GET", "/v1/predictions/p1", pred("succeeded", "final"))
    output = await call(fake.client(), "run", VID, {}, aio=aio, wait=False)
    assert output == "final" and "prefer" not in fake.requests[0].headers


@pytest.mark.parametrize(
    ("status", "error"),
    [("canceled", PredictionCanceledError), ("aborted", PredictionAbortedError)],
)
async def test_d12_canceled_and_aborted_raise_in_run_but_not_in_wait(
    aio: bool, status: str, error: type[ModelError]
) -> None:
    """D12: ``aborted`` parses and is terminal; run/iterators/streams raise; wait() returns."""
    fake = Fake().on("POST", "/v1/predictions", reply(201, pred(status), **SYNC_DONE))
    fake.on("GET", "/v1/predictions/p1", pred(status))
    client = fake.client()
    with pytest.raises(error) as err:
        await call(client, "run", VID, {}, aio=aio)
    assert isinstance(err.value, ModelError) and err.value.prediction.status == status

    prediction = Prediction._from_api(pred("processing"), client)
    assert await call(prediction, "wait", aio=aio) is prediction
    assert prediction.status == status and prediction.is_terminal
    with pytest.raises(error):
        await collect(prediction.async_output_iterator() if aio else prediction.output_iterator())

    fake.on(
        "GET", "/v1/streams/p1", sse(f'event: done\ndata: {{"reason": "{status}"}}\n\n'.encode())
    )
    streaming = Prediction._from_api(streaming_pred(), client)
    with pytest.raises(error):
        await collect(streaming.async_stream() if aio else streaming.stream())
    assert Training._from_api({"id": "t", "status": status}).is_terminal


async def test_d12_unknown_status_terminal_once_completed(aio: bool) -> None:
    """D12: an unknown status is polled while completed_at is null, then raises ModelError."""
    fake = Fake().on("POST", "/v1/predictions", reply(201, pred("vanished")))
    fake.on("GET", "/v1/predictions/p1", pred("vanished", completed_at="2026-01-01T00:01:00Z"))
    with pytest.raises(ModelError) as err:
        await call(fake.client(), "run", VID, {}, aio=aio)
    assert "vanished" in str(err.value) and fake.count("GET", "/v1/predictions/p1") == 1


async def test_d13_bare_version_id_accepted_by_run_and_stream(aio: bool) -> None:
    """D13: a 64-hex version id is routed to POST /v1/predictions with only the id."""
    fake = Fake().on(
        "POST", "/v1/predictions", reply(201, streaming_pred("succeeded", output="ok"), **SYNC_DONE)
    )
    fake.on(
        "GET", f"/v1/models/acme/model/versions/{VID}", {"id": VID, "openapi_schema": PLAIN_SCHEMA}
    )
    fake.on("GET", "/v1/streams/p1", sse(b"event: output\ndata: ok\n\nevent: done\ndata: {}\n\n"))
    client = fake.client()
    assert await call(client, "run", VID, {"x": 1}, aio=aio) == "ok"
    opened = await call(client, "stream", VID, {"x": 1}, aio=aio)
    assert [str(e) for e in await collect(opened) if e.event is OUTPUT] == ["ok"]
    creates = [r for r in fake.requests if r.method == "POST"]
    assert len(creates) == 2
    for request in creates:
        assert request.url.path == "/v1/predictions"
        assert body_of(request)["version"] == VID


async def test_d13_use_accepts_the_same_bare_version_ids_as_run(aio: bool) -> None:
    """D13: every 64-hex id run() accepts is also a pinned version for use()."""
    upper = VID.upper()
    fake = Fake().on("POST", "/v1/predictions", reply(201, pred("succeeded", "ok"), **SYNC_DONE))
    fake.on("GET", f"/v1/models/acme/model/versions/{upper}", {"id": upper})
    client = fake.client()
    assert await call(client, "run", upper, {}, aio=aio) == "ok"
    fn = client.use(upper, use_async=aio)
    assert await resolved(fn(prompt="x")) == "ok"
    assert [body_of(r)["version"] for r in fake.requests if r.method == "POST"] == [upper] * 2


async def test_d14_version_lookup_after_create_cached_and_non_fatal(aio: bool) -> None:
    """D14: schema lookup after the create, cached per version id, skipped for Version refs."""
    lookup = f"/v1/models/acme/model/versions/{VID}"
    fake = Fake().on("POST", "/v1/predictions", reply(201, pred("succeeded", "ok"), **SYNC_DONE))
    fake.on("GET", lookup, {"id": VID, "openapi_schema": PLAIN_SCHEMA})
    client = fake.client()
    for _ in range(2):
        assert await call(client, "run", f"acme/model:{VID}", {}, aio=aio) == "ok"
    assert fake.paths() == ["POST /v1/predictions", f"GET {lookup}", "POST /v1/predictions"]

    failing = Fake().on("POST", "/v1/predictions", reply(201, pred("succeeded", "ok"), **SYNC_DONE))
    failing.on("GET", lookup, reply(500, {"detail": "boom"}))
    assert await call(failing.client(), "run", f"acme/model:{VID}", {}, aio=aio) == "ok"
    assert "POST /v1/predictions/p1/cancel" not in failing.paths()  # not orphaned or canceled

    unauthorized = Fake().on("POST", "/v1/predictions", reply(401, {"detail": "bad token"}))
    with pytest.raises(AuthenticationError):
        await call(unauthorized.client(), "run", f"acme/model:{VID}", {}, aio=aio)
    assert unauthorized.paths() == ["POST /v1/predictions"]  # the create's error surfaces first

    with_version = Fake().on(
        "POST", "/v1/predictions", reply(201, pred("succeeded", "ok"), **SYNC_DONE)
    )
    client = with_version.client()
    assert await call(client, "run", version_obj(client, PLAIN_SCHEMA), {}, aio=aio) == "ok"
    assert with_version.paths() == ["POST /v1/predictions"]


async def test_d15_concatenate_iterators(aio: bool) -> None:
    """D15: use() joins concatenate iterators into a str; run() keeps returning a generator."""
    assert output_is_concatenate_iterator(CONCAT_SCHEMA) is True
    assert output_is_concatenate_iterator(ITERATOR_SCHEMA) is False
    fake = Fake().on(
        "POST", "/v1/predictions", reply(201, pred("succeeded", ["Hello", " world"]), **SYNC_DONE)
    )
    client = fake.client()
    version = version_obj(client, CONCAT_SCHEMA)
    fn = client.use(version, use_async=aio)
    assert await resolved(fn(prompt="x")) == "Hello world"
    result = await call(client, "run", version, {}, aio=aio)
    assert isinstance(result, types.AsyncGeneratorType if aio else types.GeneratorType)
    assert await collect(result) == ["Hello", " world"]
    streaming = client.use(version, streaming=True, use_async=aio)
    assert await collect(await resolved(streaming(prompt="x"))) == ["Hello", " world"]


def test_d16_make_schema_backwards_compatible_copies_and_tolerates_missing_keys() -> None:
    """D16: returns a modified deep copy; never mutates; missing keys tolerated."""
    schema = {"components": {"schemas": {"Output": {"type": "array", "items": {"type": "string"}}}}}
    snapshot = json.loads(json.dumps(schema))
    result = make_schema_backwards_compatible(schema, "0.3.8")
    assert schema == snapshot
    assert result["components"]["schemas"]["Output"]["x-cog-array-type"] == "iterator"
    assert result is not schema and result["components"] is not schema["components"]
    for partial in ({}, {"components": {}}, {"components": {"schemas": {}}}):
        assert make_schema_backwards_compatible(partial, "0.3.8") == partial
    assert make_schema_backwards_compatible(schema, "dev") == snapshot


@pytest.mark.parametrize(
    ("first", "later", "expected"),
    [
        (pred("processing", ["a", "b"]), [pred("succeeded", ["a", "b", "c"])], ["a", "b", "c"]),
        (pred("succeeded", ["a", "b"]), [], ["a", "b"]),
        (pred("processing", None), [pred("succeeded", "whole text")], ["whole text"]),
    ],
    ids=["existing-items-first", "already-complete", "string-whole"],
)
async def test_d17_output_iterator_yields_everything_once(
    aio: bool, first: dict, later: list, expected: list
) -> None:
    """D17: items from index 0; completed predictions yield fully; strings are not sliced."""
    fake = Fake().on("GET", "/v1/predictions/p1", *(later or [first]))
    prediction = Prediction._from_api(first, fake.client())
    iterator = prediction.async_output_iterator() if aio else prediction.output_iterator()
    assert await collect(iterator) == expected
    assert fake.count("GET", "/v1/predictions/p1") == len(later)


async def test_d18_sse_decoder_is_tolerant_and_drops_replays(aio: bool) -> None:
    """D18: unknown events/comments skipped, buffers cleared per blank line, id-less events,
    ``error`` → ModelStreamError (a ModelError that is also the RuntimeError 1.0.x raised),
    ``str(event)`` is the URL, replayed ids dropped after a reconnect."""
    first = (
        b"retry: 0\n: a comment\n\n"
        b"event: ping\ndata: keepalive\n\n"
        b"event: output\ndata: one\n\n"  # no id
        b"data: orphan data without a name\n\n"
        b"event: output\nid: 1:0\ndata: two\n\n"
        + f"event: output\nid: 1:1\ndata: {DELIVERY}\n\n".encode()
    )
    replay = b"event: output\nid: 1:1\ndata: replayed\n\nevent: output\nid: 1:2\ndata: three\n\n"
    fake = Fake().on(
        "GET",
        "/v1/streams/p1",
        sse(first),  # ends before done: reconnect
        sse(replay + b'event: error\ndata: {"detail": "model exploded"}\n\n'),
    )
    prediction = Prediction._from_api(streaming_pred(), fake.client())
    events: list[Any] = []
    with pytest.raises(ModelError) as err:
        await drain(prediction.async_stream() if aio else prediction.stream(), events)
    assert [str(e) for e in events] == ["one", "two", DELIVERY, "three"]
    assert isinstance(events[2].data, FileOutput) and str(events[2]) == DELIVERY
    assert [e.id for e in events] == ["", "1:0", "1:1", "1:2"]
    assert fake.requests[1].headers["last-event-id"] == "1:1"
    assert str(err.value) == "model exploded"
    assert type(err.value) is ModelStreamError and isinstance(err.value, RuntimeError)
    assert err.value.prediction.status == "failed"

    raw = Fake().on(
        "GET",
        "/v1/streams/p1",
        sse(b"event: output\ndata: line one\ndata: line two\n\nevent: error\ndata: plain text\n\n"),
    )
    prediction = Prediction._from_api(streaming_pred(), raw.client())
    events.clear()
    with pytest.raises(ModelError, match="plain text"):
        await drain(prediction.async_stream() if aio else prediction.stream(), events)
    assert [e.data for e in events] == ["line one\nline two"]


async def test_d19_stream_creates_at_call_time(aio: bool) -> None:
    """D19: sync stream() POSTs when called; ``await async_stream()`` POSTs at the await."""
    fake = Fake().on("POST", "/v1/models/acme/m/predictions", reply(201, streaming_pred()))
    fake.on("GET", "/v1/streams/p1", sse(b"event: output\ndata: hi\n\nevent: done\ndata: {}\n\n"))
    client = fake.client()
    if not aio:
        stream = client.stream("acme/m", {"x": 1})
        assert fake.paths() == ["POST /v1/models/acme/m/predictions"]  # before any iteration
        assert body_of(fake.requests[0])["stream"] is True
        assert [str(e) for e in stream] == ["hi", ""]
        return
    pending = client.async_stream("acme/m", {"x": 1})
    assert fake.requests == []  # a coroutine: nothing happens before the await
    events = await pending
    assert fake.paths() == ["POST /v1/models/acme/m/predictions"]  # before any iteration
    first = await events.__anext__()
    assert str(first) == "hi"
    await events.aclose()


async def test_d20_stream_input_positional_and_1_0_types(aio: bool) -> None:
    """D20: ``input`` positional in stream/async_stream; the 1.0.x types are kept: stream()
    returns a generator, async_stream is a coroutine function giving an async generator."""
    fake = Fake().on("POST", "/v1/models/acme/m/predictions", reply(201, streaming_pred()))
    fake.on("GET", "/v1/streams/p1", sse(b"event: output\ndata: hi\n\nevent: done\ndata: {}\n\n"))
    client = fake.client()
    if aio:
        assert inspect.iscoroutinefunction(client.async_stream)
        assert inspect.iscoroutinefunction(replicate.async_stream)
        events = await client.async_stream("acme/m", {"prompt": "p"})
        assert isinstance(events, types.AsyncGeneratorType)
        assert [str(e) async for e in events] == ["hi", ""]
    else:
        events = client.stream("acme/m", {"prompt": "p"})
        assert isinstance(events, types.GeneratorType)
        assert [str(e) for e in events] == ["hi", ""]
    assert all(body_of(r)["input"] == {"prompt": "p"} for r in fake.requests if r.method == "POST")


RETRY_CASES = [
    # (method, path, failure, sends expected with max_attempts=3)
    ("POST", "/v1/predictions", reply(429, {"detail": "slow down"}), 2),
    ("POST", "/v1/predictions", reply(500, {"detail": "boom"}), 1),
    ("POST", "/v1/predictions", reply(503, {"detail": "boom"}), 1),
    ("POST", "/v1/predictions", httpx.ConnectError("refused"), 2),
    ("POST", "/v1/predictions", httpx.ReadTimeout("slow"), 1),
    ("GET", "/v1/predictions/p1", reply(408), 2),
    ("GET", "/v1/predictions/p1", reply(500), 2),
    ("GET", "/v1/predictions/p1", reply(502), 2),
    ("GET", "/v1/predictions/p1", httpx.ReadTimeout("slow"), 2),
    ("GET", "/v1/predictions/p1", httpx.RemoteProtocolError("reset"), 2),
    ("QUERY", "/v1/models", reply(503), 2),
    ("POST", "/v1/predictions/p1/cancel", reply(503), 2),
    ("POST", "/v1/predictions/p1/cancel", httpx.ReadTimeout("slow"), 2),
]


def _retry_call(client: Client, method: str, path: str, aio: bool) -> Any:
    if path == "/v1/predictions":
        return call(client.predictions, "create", version=VID, input={}, aio=aio)
    if path.endswith("/cancel"):
        return call(client.predictions, "cancel", "p1", aio=aio)
    if method == "QUERY":
        return call(client.models, "search", "llm", aio=aio)
    return call(client.predictions, "get", "p1", aio=aio)


@pytest.fixture
def retry_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the RetryTransport's sleeps instead of sleeping."""
    sleeps: list[float] = []

    async def async_sleep(delay: float) -> None:
        sleeps.append(delay)

    monkeypatch.setattr(retry_mod, "_sleep", sleeps.append)
    monkeypatch.setattr(retry_mod, "_async_sleep", async_sleep)
    return sleeps


@pytest.mark.parametrize(
    ("method", "path", "failure", "sends"),
    RETRY_CASES,
    ids=[
        "create-429-retried",
        "create-500-not-retried",
        "create-503-not-retried",
        "create-connect-error-retried",
        "create-read-timeout-not-retried",
        "get-408-retried",
        "get-500-retried",
        "get-502-retried",
        "get-read-timeout-retried",
        "get-remote-protocol-error-retried",
        "query-503-retried",
        "cancel-503-retried",
        "cancel-read-timeout-retried",
    ],
)
async def test_d21_retry_policy_matrix(
    aio: bool, retry_sleeps: list[float], method: str, path: str, failure: Any, sends: int
) -> None:
    """D21/O12: creates retry only 429 and pre-send errors; idempotent calls (QUERY, cancel
    included) retry 408/429/5xx and transport errors."""
    success = pred("starting") if method != "QUERY" else {"results": [], "next": None}
    fake = Fake().on(method, path, failure, reply(201 if method == "POST" else 200, success))
    client = fake.client(retry={"max_attempts": 3})
    if sends == 2:
        await _retry_call(client, method, path, aio)
    else:
        with pytest.raises((ReplicateError, APIRequestError)):
            await _retry_call(client, method, path, aio)
    assert fake.count(method, path) == sends
    assert len(retry_sleeps) == sends - 1


async def test_d21_retry_after_jitter_replay_safety_and_configuration(
    aio: bool, retry_sleeps: list[float]
) -> None:
    """D21: capped seconds and HTTP-date Retry-After; uniform jitter; non-replayable bodies are
    sent once; ``Client(retry=...)`` configures or disables the wrapper."""
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_mod.parse_retry_after(date, now) == pytest.approx(30)
    assert retry_mod.parse_retry_after("1.5", now) == 1.5
    assert retry_mod.parse_retry_after("1000", now, cap=60) == 60
    bounds: list[tuple[float, float]] = []

    def uniform(a: float, b: float) -> float:
        bounds.append((a, b))
        return b

    assert retry_mod.backoff_delay(
        3, backoff_factor=0.1, jitter_ratio=0.1, max_backoff_wait=60, uniform=uniform
    ) == pytest.approx(0.4 * 1.1)
    assert bounds == [(-0.1, 0.1)]

    fake = Fake().on("GET", "/v1/predictions/p1", reply(429, retry_after="1000"), pred())
    fake.on("POST", "/v1/files", reply(429, {"detail": "slow"}, retry_after="0"))
    await call(fake.client(retry={"max_attempts": 3}).predictions, "get", "p1", aio=aio)
    assert retry_sleeps == [60]  # capped at max_backoff_wait
    body_hint = Fake().on(
        "POST", "/v1/predictions", reply(429, {"retry_after": 2.5}), reply(201, pred("starting"))
    )
    await call(
        body_hint.client(retry={"max_attempts": 3}).predictions, "create", version=VID, aio=aio
    )
    assert retry_sleeps == [60, 2.5]  # a 429 body's retry_after when there is no header

    class NonSeekable:
        def __init__(self) -> None:
            self.data = io.BytesIO(b"stream")

        def read(self, size: int = -1) -> bytes:
            return self.data.read(size)

    # A transport that consumes the body like a real one (MockTransport buffers it in memory).
    wire = Client(api_token=TOKEN, transport=WireTransport(fake), retry={"max_attempts": 3})
    with pytest.raises(RateLimitError):
        await call(wire.files, "create", NonSeekable(), aio=aio)
    assert fake.count("POST", "/v1/files") == 1  # cannot be replayed: sent once
    seekable = Fake().on(
        "POST", "/v1/files", reply(429, retry_after="0"), reply(201, {"id": "f1", "urls": {}})
    )
    transport = WireTransport(seekable)
    wire = Client(api_token=TOKEN, transport=transport, retry={"max_attempts": 3})
    await call(wire.files, "create", io.BytesIO(b"payload"), aio=aio)
    assert len(transport.bodies) == 2 and transport.bodies[0] == transport.bodies[1]
    assert b"payload" in transport.bodies[1]  # rewound and re-sent whole

    flaky = Fake().on("GET", "/v1/predictions/p1", reply(503))
    with pytest.raises(ReplicateError):
        await call(flaky.client(retry=False).predictions, "get", "p1", aio=aio)
    with pytest.raises(ReplicateError):
        await call(flaky.client(retry={"max_attempts": 2}).predictions, "get", "p1", aio=aio)
    assert flaky.count("GET", "/v1/predictions/p1") == 1 + 2


def test_d22_async_clients_per_event_loop_and_lifecycle() -> None:
    """D22: one async client per event loop (successive asyncio.run calls work); close/aclose,
    ``with``/``async with``; after closing, the next request builds fresh clients."""
    closed: list[str] = []

    class Transport(httpx.MockTransport):
        def close(self) -> None:
            closed.append("close")

        async def aclose(self) -> None:
            closed.append("aclose")

    fake = Fake().on("GET", "/v1/account", {"type": "user", "username": "me"})
    client = Client(api_token=TOKEN, transport=Transport(fake), retry=False)

    async def current() -> str:
        return (await client.accounts.async_current()).username  # type: ignore[no-any-return]

    assert asyncio.run(current()) == "me"
    assert asyncio.run(current()) == "me"  # 1.0.x: bound to the first (closed) loop

    with client as same:
        assert same is client and client.accounts.current().username == "me"
    assert closed == ["close"]
    client.close()  # idempotent
    assert client.accounts.current().username == "me"  # fresh client after close

    async def scoped() -> None:
        async with client as c:
            await c.accounts.async_current()

    asyncio.run(scoped())
    assert closed[-1] == "aclose"


async def test_d23_token_refreshed_per_request_when_not_explicit(
    aio: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """D23: without an explicit token the env / Cog-scope token is read for every request."""
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"type": "user", "username": "me"})

    monkeypatch.delitem(sys.modules, "cog", raising=False)
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_first")
    client = make_client(handler, api_token=None)
    await call(client.accounts, "current", aio=aio)
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_second")
    await call(client.accounts, "current", aio=aio)
    assert seen == ["Bearer r8_first", "Bearer r8_second"]

    context = {"REPLICATE_API_TOKEN": "r8_scope_one"}
    cog = types.ModuleType("cog")
    cog.current_scope = lambda: types.SimpleNamespace(context=context)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cog", cog)
    seen.clear()
    scoped = make_client(handler, api_token=None)
    await call(scoped.accounts, "current", aio=aio)
    context["REPLICATE_API_TOKEN"] = "r8_scope_two"
    await call(scoped.accounts, "current", aio=aio)
    assert seen == ["Bearer r8_scope_one", "Bearer r8_scope_two"]


def test_d24_construction_is_side_effect_free_and_bad_poll_interval_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """D24: Client() does no I/O and never raises for env values; bad values → warning + 0.5."""

    def explode(request: httpx.Request) -> httpx.Response:
        raise AssertionError("construction must not send requests")

    for bad in ("abc", "-1", "nan", "inf"):
        monkeypatch.setenv("REPLICATE_POLL_INTERVAL", bad)
        monkeypatch.setenv("REPLICATE_BASE_URL", "not a url at all")
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="replicate"):
            client = Client(transport=httpx.MockTransport(explode))
        assert client.poll_interval == 0.5
        assert any("REPLICATE_POLL_INTERVAL" in r.getMessage() for r in caplog.records)
        repr(client)
    monkeypatch.setenv("REPLICATE_POLL_INTERVAL", "0")
    assert Client().poll_interval == 0.0
    env = {**os.environ, "REPLICATE_POLL_INTERVAL": "oops", "REPLICATE_API_TOKEN": ""}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import replicate; c = replicate.default_client; "
            "print(c.poll_interval, c._config_cache, c._sync_api)",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert out.stdout.strip() == "0.5 None None"  # nothing resolved or built at import


def test_d25_cog_lookup_swallows_exceptions_but_not_base_exceptions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """D25: ``except Exception`` only: KeyboardInterrupt/SystemExit propagate."""
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_env")
    cog = types.ModuleType("cog")
    monkeypatch.setitem(sys.modules, "cog", cog)
    for error in (RuntimeError("no scope"), AttributeError("x")):

        def broken(error: Exception = error) -> Any:
            raise error

        cog.current_scope = broken  # type: ignore[attr-defined]
        assert _get_api_token_from_environment() == "r8_env"
    for base in (KeyboardInterrupt, SystemExit):

        def interrupted(base: type[BaseException] = base) -> Any:
            raise base()

        cog.current_scope = interrupted  # type: ignore[attr-defined]
        with pytest.raises(base):
            _get_api_token_from_environment()
    cog.current_scope = lambda: types.SimpleNamespace(context={"replicate_api_token": ""})  # type: ignore[attr-defined]
    assert _get_api_token_from_environment() == ""  # returned as is


async def test_d26_caller_headers_copied_and_checked_case_insensitively(aio: bool) -> None:
    """D26: the caller's headers are never mutated; authorization/user-agent in any case win."""
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200, json={"type": "user", "username": "me"})

    headers = {"authorization": "Token caller", "user-agent": "my-app/1", "X-Extra": "1"}
    snapshot = dict(headers)
    client = make_client(handler, api_token=None, headers=headers)
    await call(client.accounts, "current", aio=aio)
    await call(client.accounts, "current", aio=aio)
    assert headers == snapshot
    for request_headers in seen:
        assert request_headers.get_list("authorization") == ["Token caller"]
        assert request_headers.get_list("user-agent") == ["my-app/1"]
        assert request_headers["x-extra"] == "1"


async def test_d27_shared_client_is_thread_safe_and_reload_is_atomic(aio: bool) -> None:
    """D27: concurrent first use builds one underlying client; reload() replaces all fields in
    one step and leaves the object untouched when the reload fails."""
    fake = Fake().on("GET", "/v1/predictions/p1", pred("processing", extra_old="x"))
    client = fake.client()
    barrier = threading.Barrier(8)
    built: list[Any] = []

    def worker() -> None:
        barrier.wait()
        built.append(client._get_sync_client())
        client.predictions.get("p1")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 8 and len({id(c) for c in built}) == 1
    assert fake.count("GET", "/v1/predictions/p1") == 8

    prediction = await call(client.predictions, "get", "p1", aio=aio)
    before = prediction.model_dump()
    for broken in (reply(500, {"detail": "boom"}), lambda r: httpx.Response(200, text="{not json")):
        fake.set("GET", "/v1/predictions/p1", broken)
        with pytest.raises(ReplicateError):
            await call(prediction, "reload", aio=aio)
        assert prediction.model_dump() == before
    fake.set("GET", "/v1/predictions/p1", pred("succeeded", "out", logs="done"))
    await call(prediction, "reload", aio=aio)
    assert (prediction.status, prediction.output, prediction.logs) == ("succeeded", "out", "done")
    assert "extra_old" not in prediction.model_dump()  # replaced, not merged


async def test_d28_streamed_files_and_rfc2397_data_urls(
    aio: bool, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """D28: FileOutput iteration/save stream; uploads stream from disk; base64 is incremental with
    a size warning; data URLs without ``;base64`` are percent-decoded."""
    assert await read(FileOutput("data:,Hello%2C%20World", None), aio) == b"Hello, World"
    assert (
        await read(FileOutput("data:text/plain;charset=utf-8,caf%C3%A9", None), aio)
        == "café".encode()
    )
    assert await read(FileOutput("data:text/plain;base64,SGk=", None), aio) == b"Hi"

    fake = Fake().on(
        "GET",
        "/xezq/out.png",
        lambda r: httpx.Response(200, stream=Chunks(b"a" * 5, b"b" * 5, b"c" * 5)),
    )
    client = fake.client()
    chunks = await collect(FileOutput(DELIVERY, client))
    assert chunks == [b"a" * 5, b"b" * 5, b"c" * 5]  # not read whole first
    target = tmp_path / "out.bin"
    output = FileOutput(DELIVERY, client)
    saved = await output.asave(target) if aio else output.save(target)
    assert saved.read_bytes() == b"aaaaabbbbbccccc"

    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    sizes: list[int] = []

    def upload(request: httpx.Request) -> httpx.Response:
        sizes.extend(len(chunk) for chunk in request.stream)  # type: ignore[union-attr]
        return httpx.Response(201, json={"id": "f1", "urls": {"get": f"{API}/v1/files/f1"}})

    uploader = Client(api_token=TOKEN, transport=WireTransport(upload), retry=False)
    await call(uploader.files, "create", big, aio=aio)
    assert len(sizes) >= 4 and max(sizes) <= 1024 * 1024 + 1024  # chunks, never the whole file

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="replicate"):
        raw = os.urandom(300 * 1024)
        encoded = replicate.helpers.base64_encode_file(io.BytesIO(raw))
    assert encoded == "data:application/octet-stream;base64," + base64.b64encode(raw).decode()
    assert any("256 KiB" in r.getMessage() or "base64" in r.getMessage() for r in caplog.records)


async def test_d28_data_url_non_ascii_text_is_utf8_like_percent_decoding(aio: bool) -> None:
    """D28: RFC 2397 data URLs: raw non-ASCII text decodes like percent-decoding (UTF-8)."""
    for url, expected in (
        ("data:,€uro", "€uro".encode()),
        ("data:text/plain;charset=utf-8,café", "café".encode()),
        ("data:,café%21", "café!".encode()),
    ):
        assert await read(FileOutput(url, None), aio) == expected, url


async def test_d29_cursor_pagination_for_files_versions_and_search(aio: bool) -> None:
    """D29: files.list/versions.list return cursor Pages usable with paginate; models.search
    takes cursor= and repeats QUERY + body on the cursor URL."""
    fake = Fake()
    fake.on(
        "GET",
        "/v1/files",
        lambda r: httpx.Response(
            200,
            json=(
                {"results": [{"id": "f2"}], "next": None}
                if r.url.params.get("cursor") == "2"
                else {"results": [{"id": "f1"}], "next": f"{API}/v1/files?cursor=2"}
            ),
        ),
    )
    fake.on(
        "GET",
        "/v1/models/acme/m/versions",
        lambda r: httpx.Response(
            200,
            json=(
                {"results": [{"id": "v2"}], "next": None}
                if r.url.params.get("cursor") == "2"
                else {
                    "results": [{"id": "v1"}],
                    "next": f"{API}/v1/models/acme/m/versions?cursor=2",
                }
            ),
        ),
    )
    fake.on(
        "QUERY",
        "/v1/models",
        lambda r: httpx.Response(
            200,
            json=(
                {"results": [{"owner": "b", "name": "m2"}], "next": None}
                if r.url.params.get("cursor")
                else {
                    "results": [{"owner": "a", "name": "m1"}],
                    "next": f"{API}/v1/models?cursor=x",
                }
            ),
        ),
    )
    client = fake.client()

    async def pages(method: Any, *args: Any) -> list[list[str]]:
        if aio:
            return [[i.id for i in page] async for page in async_paginate(method, *args)]
        return [[i.id for i in page] for page in paginate(method, *args)]

    files = client.files.async_list if aio else client.files.list
    versions = Versions(client, "acme/m")
    assert await pages(files) == [["f1"], ["f2"]]
    assert await pages(versions.async_list if aio else versions.list) == [["v1"], ["v2"]]
    assert await pages(client.models.async_search if aio else client.models.search, "llm") == [
        ["a/m1"],
        ["b/m2"],
    ]
    assert fake.count("GET", "/v1/files") == 2  # one GET per page (1.0.x: first page only)
    queries = [r for r in fake.requests if r.method == "QUERY"]
    assert [r.content for r in queries] == [b"llm", b"llm"]
    assert queries[1].url.params["cursor"] == "x"
    page = await call(client.files, "list", aio=aio)
    assert isinstance(page, list) and page.next == f"{API}/v1/files?cursor=2"


async def test_d30_replicate_error_quirks_fixed(aio: bool) -> None:
    """D30: single positional arg → detail; args set; non-object/non-JSON bodies; HTTP status
    authoritative with the body kept; status subclasses."""
    error = ReplicateError("Something broke")
    assert (error.detail, error.args, error.status) == (
        "Something broke",
        ("Something broke",),
        None,
    )
    assert "detail: Something broke" in str(error)
    legacy = ReplicateError("type", "Title", 400, "Detail", "/i")
    assert (legacy.type, legacy.title, legacy.status, legacy.detail, legacy.instance) == (
        "type",
        "Title",
        400,
        "Detail",
        "/i",
    )
    fake = Fake().on(
        "GET",
        "/v1/predictions/p1",
        reply(404, {"detail": "gone", "status": 500}),
        lambda r: httpx.Response(502, text="<html>bad gateway</html>"),
        reply(400, ["not", "an", "object"]),
        reply(429, {"detail": "slow down"}, retry_after="7"),
    )
    client = fake.client()
    with pytest.raises(NotFoundError) as e404:
        await call(client.predictions, "get", "p1", aio=aio)
    assert (e404.value.status, e404.value.status_code, e404.value.body["status"]) == (404, 404, 500)
    with pytest.raises(InternalServerError) as e502:
        await call(client.predictions, "get", "p1", aio=aio)
    assert e502.value.detail == "<html>bad gateway</html>" and e502.value.status == 502
    with pytest.raises(ReplicateError) as e400:
        await call(client.predictions, "get", "p1", aio=aio)
    assert e400.value.status == 400 and "not" in (e400.value.detail or "")
    with pytest.raises(RateLimitError) as e429:
        await call(client.predictions, "get", "p1", aio=aio)
    assert e429.value.retry_after == 7


async def test_d31_download_errors_are_download_error_and_httpx_status_error(aio: bool) -> None:
    """D31: FileOutput failures raise DownloadError (a ReplicateError and httpx.HTTPStatusError);
    transport errors are wrapped but still httpx errors."""
    fake = Fake().on("GET", "/xezq/out.png", lambda r: httpx.Response(404, text="no such file"))
    fake.on("GET", "/broken", httpx.ConnectError("refused"))
    client = fake.client()
    for consume in ("read", "iterate"):
        output = FileOutput(DELIVERY, client)
        with pytest.raises(DownloadError) as err:
            if consume == "read":
                await read(output, aio)
            else:
                await collect(output)
        assert isinstance(err.value, ReplicateError) and isinstance(
            err.value, httpx.HTTPStatusError
        )
        assert err.value.response.status_code == 404 and err.value.status == 404
        assert str(err.value.request.url) == DELIVERY
    with pytest.raises(httpx.ConnectError) as transport_error:
        await read(FileOutput("https://replicate.delivery/broken", client), aio)
    assert isinstance(transport_error.value, ReplicateException)


async def test_d32_model_reload_keeps_nested_objects_typed(aio: bool) -> None:
    """D32: after Model.reload() default_example/latest_version are typed and client-bound."""
    model_json = {
        "owner": "acme",
        "name": "m",
        "default_example": pred("succeeded", "x"),
        "latest_version": {"id": VID, "openapi_schema": PLAIN_SCHEMA},
    }
    client = Fake().on("GET", "/v1/models/acme/m", model_json).client()
    model = Model._from_api({"owner": "acme", "name": "m"}, client)
    assert await call(model, "reload", aio=aio) is model
    assert isinstance(model.default_example, Prediction) and isinstance(
        model.latest_version, Version
    )
    assert model.default_example._api is client and model.latest_version._api is client


async def test_d33_nested_resources_are_bound_to_the_client(aio: bool) -> None:
    """D33: Collection.models (and page results) are bound to the originating client."""
    fake = Fake().on(
        "GET",
        "/v1/collections/tti",
        {
            "slug": "tti",
            "name": "TTI",
            "description": "d",
            "models": [{"owner": "acme", "name": "m"}],
        },
    )
    fake.on("GET", "/v1/models/acme/m", {"owner": "acme", "name": "m", "description": "fresh"})
    fake.on("GET", "/v1/predictions", {"results": [pred()], "next": None})
    client = fake.client()
    collection = await call(client.collections, "get", "tti", aio=aio)
    model = collection.models[0]
    assert isinstance(model, Model) and model._api is client
    await call(model, "reload", aio=aio)  # goes through the bound client, not default_client
    assert model.description == "fresh"
    page = await call(client.predictions, "list", aio=aio)
    assert page[0]._api is client
    fake.on(
        "GET",
        "/v1/search",
        {
            "query": "q",
            "models": [{"model": {"owner": "acme", "name": "m"}, "metadata": {"tags": []}}],
            "collections": [],
            "pages": [],
        },
    )
    found = await call(client, "search", "q", aio=aio)
    assert isinstance(found.models[0].model, Model) and found.models[0].model._api is client


async def test_d34_tolerant_parsing_of_new_and_null_values(aio: bool) -> None:
    """D34: open string enums, optional fields, unknown fields kept, odd scalars kept."""
    odd = pred("exploded", None, source="cli", brand_new={"a": 1}, metrics=None)
    del odd["urls"]
    odd["created_at"] = None
    fake = Fake().on("GET", "/v1/predictions/p1", odd)
    fake.on("GET", "/v1/account", {"type": "robot", "username": "r2", "name": None})
    fake.on(
        "GET",
        "/v1/models/acme/m",
        {
            "owner": "acme",
            "name": "m",
            "visibility": "unlisted",
            "run_count": None,
            "latest_version": {"id": VID, "cog_version": None, "openapi_schema": None},
        },
    )
    fake.on("GET", "/v1/hardware", [{"name": "Future GPU", "sku": "gpu-z", "price": 1}])
    client = fake.client()
    prediction = await call(client.predictions, "get", "p1", aio=aio)
    assert prediction.status == "exploded" and not prediction.is_terminal
    assert prediction.brand_new == {"a": 1} and prediction.model_dump()["brand_new"] == {"a": 1}
    assert prediction.urls is None and prediction.created_at is None
    account = await call(client.accounts, "current", aio=aio)
    assert account.type == "robot"
    model = await call(client.models, "get", "acme/m", aio=aio)
    assert model.visibility == "unlisted" and model.latest_version.openapi_schema is None
    hardware = await call(client.hardware, "list", aio=aio)
    assert hardware[0].sku == "gpu-z"
    odd_model = Model._from_api(
        {"owner": "a", "name": "b", "run_count": "lots", "is_official": None}
    )
    assert odd_model.run_count == "lots" and odd_model.is_official is None
    assert Model._from_api({"run_count": 1e10}).run_count == 10**10
    assert (
        Version._from_api({"id": VID, "created_at": "yesterday-ish"}).created_at == "yesterday-ish"
    )
    assert Prediction._from_api(pred("vanished", completed_at="2026-01-01T00:00:00Z")).is_terminal


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((f"acme/m:{VID}", {"x": 1}, "acme/dest"), {}),  # legacy positional
        ((), {"version": f"acme/m:{VID}", "input": {"x": 1}, "destination": "acme/dest"}),
        (("acme/m", VID, {"x": 1}), {"destination": "acme/dest"}),  # model, version, input
        (
            (),
            {
                "model": ("acme", "m"),
                "version": VID,
                "input": {"x": 1},
                "destination": ("acme", "dest"),
            },
        ),
    ],
    ids=[
        "legacy-positional",
        "shorthand-keyword",
        "model-version-positional",
        "model-version-keyword",
    ],
)
async def test_d35_training_create_forms_sync_and_async(
    aio: bool, args: tuple, kwargs: dict
) -> None:
    """D35: every create form works in sync and async; the legacy positional order is
    (ref, input, destination, ...)."""
    path = f"/v1/models/acme/m/versions/{VID}/trainings"
    fake = Fake().on("POST", path, reply(201, {"id": "t1", "status": "starting"}))
    training = await call(fake.client().trainings, "create", *args, aio=aio, **kwargs)
    assert training.id == "t1"
    assert body_of(fake.requests[0]) == {"input": {"x": 1}, "destination": "acme/dest"}


async def test_d35_training_create_without_version_is_a_clear_value_error(aio: bool) -> None:
    """D35: no ``/versions/None/`` request: a clear ValueError before any I/O."""
    fake = Fake()
    trainings = fake.client().trainings
    for args, kwargs in (
        ((), {"version": "acme/m", "input": {}, "destination": "acme/d"}),
        (("acme/m",), {"input": {}, "destination": "acme/d"}),
        ((), {"model": "acme/m", "version": None, "input": {}, "destination": "acme/d"}),
        ((), {"model": "acme/m", "version": 42, "input": {}, "destination": "acme/d"}),
    ):
        with pytest.raises(ValueError, match="A version is required"):
            await call(trainings, "create", *args, aio=aio, **kwargs)
    assert fake.requests == []


async def test_d36_deployment_get_validates_name_and_accepts_owner_name(aio: bool) -> None:
    """D36: get("noslash") → clear ValueError; get(owner, name) added."""
    fake = Fake().on("GET", "/v1/deployments/acme/d", {"owner": "acme", "name": "d"})
    client = fake.client()
    with pytest.raises(ValueError, match="deployment name must be in the format 'owner/name'"):
        await call(client.deployments, "get", "noslash", aio=aio)
    assert fake.requests == []
    assert (await call(client.deployments, "get", "acme", "d", aio=aio)).id == "acme/d"
    assert (await call(client.deployments, "get", "acme/d", aio=aio)).id == "acme/d"


async def test_d37_encode_json_bytes_fileoutput_urlpath_strings_generators(
    aio: bool, tmp_path: Any
) -> None:
    """D37: bytes uploaded (or inlined), FileOutput/URLPath → URL, str never a path, generators
    → lists."""
    path = tmp_path / "input.txt"
    path.write_text("path content")
    uploads: list[bytes] = []

    def upload(request: httpx.Request) -> httpx.Response:
        uploads.append(request.content)
        return httpx.Response(201, json={"id": "f1", "urls": {"get": f"{API}/v1/files/f1"}})

    client = Fake().on("POST", "/v1/files", upload).client()
    payload = b"raw-bytes"
    value = {
        "blob": payload,
        "again": payload,  # the same object: uploaded once
        "out": FileOutput(DELIVERY, client),
        "urlpath": URLPath(DELIVERY),
        "path_string": str(path),
        "gen": (i * 2 for i in range(3)),
        "path": path,
    }
    encode = async_encode_json if aio else encode_json
    encoded = await resolved(encode(value, client))
    assert encoded == {
        "blob": f"{API}/v1/files/f1",
        "again": f"{API}/v1/files/f1",
        "out": DELIVERY,
        "urlpath": DELIVERY,
        "path_string": str(path),
        "gen": [0, 2, 4],
        "path": f"{API}/v1/files/f1",
    }
    assert len(uploads) == 2 and payload in uploads[0] and b"path content" in uploads[1]
    inline = await resolved(encode({"b": bytearray(b"hi")}, client, "base64"))
    assert inline == {"b": "data:application/octet-stream;base64,aGk="}


async def test_d38_prediction_output_stays_raw_json(aio: bool) -> None:
    """D38: Prediction.output holds raw JSON after wait(); transform_output gives FileOutputs."""
    fake = Fake().on("GET", "/v1/predictions/p1", pred("succeeded", [DELIVERY]))
    client = fake.client()
    prediction = Prediction._from_api(pred("processing"), client)
    await call(prediction, "wait", aio=aio)
    assert prediction.output == [DELIVERY] and type(prediction.output[0]) is str
    (converted,) = transform_output(prediction.output, client)
    assert isinstance(converted, FileOutput) and converted.url == DELIVERY


async def test_d39_no_version_predict_use_run_with_a_version(aio: bool) -> None:
    """D39: ``Version.predict`` does not exist; ``run(version, input=...)`` is the way."""
    fake = Fake().on("POST", "/v1/predictions", reply(201, pred("succeeded", "ok"), **SYNC_DONE))
    client = fake.client()
    version = version_obj(client, PLAIN_SCHEMA)
    assert not hasattr(version, "predict") and not hasattr(Version, "predict")
    assert await call(client, "run", version, input={"x": 1}, aio=aio) == "ok"
    assert body_of(fake.requests[0]) == {"input": {"x": 1}, "version": VID}
    with pytest.raises(
        ReplicateException, match=r"The `model.predict\(\)` method has been removed"
    ):
        Model(owner="a", name="b").predict()


README = Path(__file__).resolve().parents[2] / "README.md"


def test_d38_d39_documentation_matches_the_behaviour() -> None:
    """D38/D39: docs say Prediction.output is raw (use transform_output/run/use for files) and
    show ``replicate.run(version, input=...)``; nothing documents ``version.predict``."""
    assert "raw" in (Prediction.__doc__ or "") and "transform_output" in (Prediction.__doc__ or "")
    assert "replicate.run(version" in (Version.__doc__ or "")
    readme = README.read_text(encoding="utf-8")
    assert ".predict(" not in readme
    assert "prediction.output" not in readme or "transform_output" in readme


def test_d39_readme_shows_use() -> None:
    """D39: the README shows ``replicate.use(...)``."""
    assert "replicate.use(" in README.read_text(encoding="utf-8")


# ========================================================== O01-O13: other observable differences


async def test_o01_wait_reload_cancel_return_self(aio: bool) -> None:
    """O01: Prediction/Training wait(), reload(), cancel() return ``self`` (1.0.x: None)."""
    fake = Fake().on("GET", "/v1/predictions/p1", pred("succeeded"))
    fake.on("POST", "/v1/predictions/p1/cancel", pred("canceled"))
    fake.on("GET", "/v1/trainings/t1", {"id": "t1", "status": "succeeded"})
    fake.on("POST", "/v1/trainings/t1/cancel", {"id": "t1", "status": "canceled"})
    client = fake.client()
    prediction = Prediction._from_api(pred("processing"), client)
    training = Training._from_api({"id": "t1", "status": "processing"}, client)
    for obj in (prediction, training):
        for method in ("wait", "reload", "cancel"):
            assert await call(obj, method, aio=aio) is obj, (type(obj).__name__, method)
        assert obj.status == "canceled"


def test_o02_webhooks_validate_returns_true(at_vector_time: Any) -> None:
    """O02: validate returns True (1.0.x: None) from every access path."""
    kwargs = {"headers": wh_headers(), "body": WH_BODY, "secret": WH_SECRET}
    assert Webhooks.validate(**kwargs) is True
    assert replicate.webhooks.validate(**kwargs) is True
    assert Client().webhooks.validate(**kwargs) is True
    request = httpx.Request(
        "POST", "https://example.com/hook", headers=wh_headers(), content=WH_BODY
    )
    assert Webhooks.validate(request=request, secret=WebhookSigningSecret(key=WH_SECRET)) is True


async def test_o03_versions_delete_returns_true_for_202(aio: bool) -> None:
    """O03: Versions.delete returns True for the API's 202 (1.0.x: False)."""
    fake = Fake().on("DELETE", f"/v1/models/acme/m/versions/{VID}", reply(202))
    client = fake.client()
    assert await call(Versions(client, "acme/m"), "delete", VID, aio=aio) is True
    assert await call(client.models.versions, "delete", "acme/m", VID, aio=aio) is True
    assert fake.count("DELETE", f"/v1/models/acme/m/versions/{VID}") == 2


async def test_o04_files_list_returns_a_list_with_a_cursor(aio: bool) -> None:
    """O04: files.list() still returns a ``list`` of File (1.0.x), one that carries the cursors."""
    fake = Fake().on(
        "GET", "/v1/files", {"results": [{"id": "f1"}, {"id": "f2"}], "next": f"{API}/v1/files?c=2"}
    )
    page = await call(fake.client().files, "list", aio=aio)
    assert isinstance(page, list) and len(page) == 2 and page[1].id == "f2"
    assert [f.id for f in page + []] == ["f1", "f2"] and type(page[0]).__name__ == "File"  # noqa: RUF005
    assert page.next == f"{API}/v1/files?c=2" and page.previous is None


async def test_o05_input_none_sends_empty_object(aio: bool) -> None:
    """O05: ``input=None`` (or no input) sends ``"input": {}``: the field is required."""
    fake = Fake().on("POST", "/v1/predictions", reply(201, pred("succeeded", "ok"), **SYNC_DONE))
    fake.on("POST", "/v1/models/acme/m/predictions", reply(201, pred("starting")))
    fake.on("POST", f"/v1/models/acme/m/versions/{VID}/trainings", reply(201, {"id": "t1"}))
    client = fake.client()
    await call(client.predictions, "create", version=VID, aio=aio)
    await call(client.predictions, "create", VID, None, aio=aio)
    await call(client.models.predictions, "create", "acme/m", None, aio=aio)
    await call(client.trainings, "create", f"acme/m:{VID}", None, "acme/dest", aio=aio)
    await call(client, "run", VID, aio=aio)
    assert [body_of(r)["input"] for r in fake.requests if r.method == "POST"] == [{}] * 5


async def test_o06_files_create_respects_explicit_filename(aio: bool, tmp_path: Any) -> None:
    """O06: files.create(path, filename=...) keeps the given filename (1.0.x: the basename)."""
    path = tmp_path / "original.bin"
    path.write_bytes(b"content")
    seen: list[bytes] = []

    def upload(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        return httpx.Response(201, json={"id": "f1", "urls": {}})

    client = Fake().on("POST", "/v1/files", upload).client()
    await call(client.files, "create", path, filename="custom.txt", aio=aio)
    await call(client.files, "create", str(path), aio=aio)
    assert b'filename="custom.txt"' in seen[0] and b"original.bin" not in seen[0]
    assert b"Content-Type: text/plain" in seen[0]
    assert b'filename="original.bin"' in seen[1]


@pytest.mark.parametrize("status", [101, 301, 302, 304, 307])
async def test_o07_informational_and_redirect_answers_raise(aio: bool, status: int) -> None:
    """O07: a 1xx/3xx answer to an API call raises ReplicateError (redirects not followed)."""
    fake = Fake().on("GET", "/v1/predictions/p1", reply(status, Location=f"{API}/v1/elsewhere"))
    fake.on("GET", "/v1/elsewhere", pred())
    with pytest.raises(ReplicateError) as err:
        await call(fake.client().predictions, "get", "p1", aio=aio)
    assert err.value.status == status
    assert fake.paths() == ["GET /v1/predictions/p1"]


async def test_o08_foreign_cursors_rejected_and_http_cursors_upgraded(aio: bool) -> None:
    """O08: absolute cursor URLs on another host raise ValueError; http:// becomes https://."""
    fake = Fake().on("GET", "/v1/predictions", {"results": [], "next": None})
    client = fake.client()
    for cursor in ("https://evil.example/v1/predictions?cursor=x", "http://evil.example/v1/x"):
        with pytest.raises(ValueError):
            await call(client.predictions, "list", cursor, aio=aio)
    with pytest.raises(ValueError, match="cursor cannot be None"):
        await call(client.predictions, "list", None, aio=aio)
    assert fake.requests == []
    await call(
        client.predictions, "list", "http://api.replicate.com/v1/predictions?cursor=abc", aio=aio
    )
    assert str(fake.requests[0].url) == f"{API}/v1/predictions?cursor=abc"


@pytest.mark.parametrize("base", ["https://api.replicate.com/v1", "https://api.replicate.com/v1/"])
async def test_o09_trailing_v1_in_base_url_accepted(
    aio: bool, base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """O09: a trailing ``/v1`` in base_url or REPLICATE_BASE_URL is accepted (no /v1/v1)."""
    fake = Fake().on("GET", "/v1/account", {"type": "user", "username": "me"})
    await call(fake.client(base_url=base).accounts, "current", aio=aio)
    monkeypatch.setenv("REPLICATE_BASE_URL", base)
    await call(fake.client().accounts, "current", aio=aio)
    assert [str(r.url) for r in fake.requests] == [f"{API}/v1/account"] * 2


@pytest.mark.parametrize(
    ("value", "is_file"),
    [
        (DELIVERY, True),
        ("https://replicate.delivery/a b.png", False),  # whitespace
        ("https: not a url", False),
        ("https://", False),  # no host
        ("https:/missing-slash", False),
        ("http://replicate.delivery/x.png", False),  # plain http stays a string
        ("The answer is https://example.com", False),
        ("data:text/plain;base64,SGk=", True),
        ("data:nocomma", False),
    ],
)
def test_o10_output_url_heuristic_requires_https_host_without_whitespace(
    value: str, is_file: bool
) -> None:
    """O10: only ``https://<host>`` without whitespace (or a data: URL) becomes a FileOutput."""
    result = transform_output({"v": [value]}, Client())["v"][0]
    assert isinstance(result, FileOutput) is is_file
    if not is_file:
        assert result == value


async def test_o11_non_sse_content_type_raises_replicate_error(aio: bool) -> None:
    """O11: a 2xx stream answer that is not text/event-stream → ReplicateError (1.0.x ValueError)."""
    fake = Fake().on("GET", "/v1/streams/p1", sse(b'{"not": "sse"}', ctype="application/json"))
    prediction = Prediction._from_api(streaming_pred(), fake.client())
    with pytest.raises(ReplicateError):
        await collect(prediction.async_stream() if aio else prediction.stream())


def test_o12_retry_defaults_cover_query_cancel_and_more_statuses() -> None:
    """O12: QUERY is retryable, 408/500/502 are retry statuses, cancels are marked idempotent
    (the wire-level matrix is test_d21_retry_policy_matrix)."""
    transport = retry_mod.RetryTransport(httpx.MockTransport(lambda r: httpx.Response(200)))
    assert "QUERY" in transport.retryable_methods and "POST" not in transport.retryable_methods
    assert transport.retry_status_codes == {408, 429, 500, 502, 503, 504}
    client = Client(api_token=TOKEN)
    from replicate.prediction import _cancel_operation
    from replicate.training import _cancel as training_cancel

    for op in (_cancel_operation(client, "p1"), training_cancel(client, "t1")):
        assert op.extensions[retry_mod.IDEMPOTENT_EXTENSION] is True


async def test_o13_behaviours_pinned_by_1_0_tests_changed(
    aio: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """O13: the 1.0.x-pinned behaviours listed above changed: the 2021 webhook vector without
    tolerance fails; canceled raises; versions.delete is True; processing without
    Preference-Applied is polled."""
    monkeypatch.setattr(webhook_mod, "_now", time.time)
    with pytest.raises(InvalidTimestampError):
        Webhooks.validate(headers=wh_headers(), body=WH_BODY, secret=WH_SECRET)
    fake = Fake().on("POST", "/v1/predictions", reply(201, pred("processing", "partial")))
    fake.on("GET", "/v1/predictions/p1", pred("succeeded", "final"), pred("canceled"))
    fake.on("DELETE", f"/v1/models/acme/m/versions/{VID}", reply(202))
    client = fake.client()
    assert await call(client, "run", VID, {}, aio=aio, use_file_output=False) == "final"
    with pytest.raises(PredictionCanceledError):
        await call(client, "run", VID, {}, aio=aio)
    assert await call(client.models.versions, "delete", "acme/m", VID, aio=aio) is True
