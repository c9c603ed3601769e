"""replicate.stream: ServerSentEvent, EventSource, Stream/AsyncStream, stream()/async_stream().

Every stream is served from memory through ``httpx.MockTransport``; sleeps and clocks are
injected, so no test waits on wall-clock time.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import inspect
import json
import pickle
import types
from typing import Any

import httpx
import pytest

import replicate
from replicate.client import Client
from replicate.exceptions import (
    APIResponseValidationError,
    AuthenticationError,
    InternalServerError,
    ModelError,
    ModelStreamError,
    NotFoundError,
    PredictionAbortedError,
    PredictionCanceledError,
    PredictionTimeoutError,
    ReplicateError,
    ReplicateReadError,
)
from replicate.helpers import FileOutput
from replicate.prediction import Prediction

stream_mod = importlib.import_module("replicate.stream")
reader_mod = importlib.import_module("replicate._stream_reader")
ServerSentEvent = stream_mod.ServerSentEvent
EventSource = stream_mod.EventSource
Stream = stream_mod.Stream
AsyncStream = stream_mod.AsyncStream
EventType = ServerSentEvent.EventType

MODES = ["sync", "async"]
TOKEN = "r8_stream_secret"
API = "https://api.replicate.com"
STREAM_URL = "https://stream.replicate.test/v1/streams/p1"
VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"


def prediction_json(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "p1",
        "model": "acme/llm",
        "version": VERSION,
        "status": "starting",
        "input": {"prompt": "hi"},
        "output": None,
        "logs": "",
        "error": None,
        "created_at": "2024-01-01T00:00:00Z",
        "urls": {
            "get": f"{API}/v1/predictions/p1",
            "cancel": f"{API}/v1/predictions/p1/cancel",
            "web": "https://replicate.com/p/p1",
            "stream": STREAM_URL,
        },
    }
    data.update(overrides)
    return data


# ----------------------------------------------------------------------------------- fakes


class Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body from memory, in fixed chunks, optionally failing after the last chunk."""

    def __init__(self, data: bytes, chunk: int, error: Exception | None) -> None:
        self.chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)] or []
        self.error = error
        self.closed = False
        self.served = 0

    def __iter__(self) -> Any:
        for c in self.chunks:
            self.served += 1
            yield c
        if self.error is not None:
            raise self.error

    async def __aiter__(self) -> Any:
        for c in self.chunks:
            self.served += 1
            yield c
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


class Conn:
    """What the stream URL answers to one connection attempt."""

    def __init__(
        self,
        body: str | bytes = "",
        *,
        status: int = 200,
        content_type: str = "text/event-stream; charset=utf-8",
        chunk: int = 7,
        error: Exception | None = None,
        raise_on_connect: Exception | None = None,
        json_body: Any = None,
    ) -> None:
        self.body = body.encode() if isinstance(body, str) else body
        self.status = status
        self.content_type = content_type
        self.chunk = chunk
        self.error = error
        self.raise_on_connect = raise_on_connect
        self.json_body = json_body
        self.stream: Body | None = None


class FakeAPI:
    """MockTransport handler: the API (create, cancel) and the stream URL (scripted)."""

    def __init__(self, conns: list[Conn] | None = None, **prediction: Any) -> None:
        self.conns = list(conns or [])
        self.served: list[Conn] = []
        self.requests: list[httpx.Request] = []
        self.stream_requests: list[httpx.Request] = []
        self.prediction = prediction_json(**prediction)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host == "stream.replicate.test":
            self.stream_requests.append(request)
            assert self.conns, "unexpected extra connection to the stream URL"
            conn = self.conns.pop(0)
            self.served.append(conn)
            if conn.raise_on_connect is not None:
                raise conn.raise_on_connect
            if conn.json_body is not None:
                return httpx.Response(conn.status, json=conn.json_body)
            conn.stream = Body(conn.body, conn.chunk, conn.error)
            return httpx.Response(
                conn.status, headers={"content-type": conn.content_type}, stream=conn.stream
            )
        path = request.url.path
        if request.method == "POST" and path.endswith("/cancel"):
            return httpx.Response(200, json={**self.prediction, "status": "canceled"})
        if request.method == "POST" and path.endswith("predictions"):
            return httpx.Response(201, json=self.prediction)
        return httpx.Response(404, json={"detail": f"no route {request.method} {path}"})

    def closed_all(self) -> bool:
        return all(c.stream is None or c.stream.closed for c in self.served)


def make_client(api: FakeAPI, **kwargs: Any) -> Client:
    kwargs.setdefault("retry", False)
    return Client(api_token=TOKEN, base_url=API, transport=httpx.MockTransport(api), **kwargs)


def make_prediction(api: FakeAPI, **kwargs: Any) -> Prediction:
    return Prediction._from_api(api.prediction, make_client(api, **kwargs))


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REPLICATE_API_TOKEN", "REPLICATE_BASE_URL", "REPLICATE_POLL_INTERVAL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the reconnect sleeps instead of sleeping (sync and async)."""
    record: list[float] = []

    async def asleep(seconds: float) -> None:
        record.append(seconds)

    monkeypatch.setattr(reader_mod, "_sleep", record.append)
    monkeypatch.setattr(reader_mod, "_async_sleep", asleep)
    return record


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def open_stream(prediction: Prediction, mode: str, **kwargs: Any) -> Any:
    """What ``Prediction.stream()`` / ``async_stream()`` return: a generator / async generator."""
    if mode == "sync":
        return prediction.stream(**kwargs)
    return prediction.async_stream(**kwargs)


async def drain(obj: Any, mode: str) -> tuple[list[Any], BaseException | None]:
    events: list[Any] = []
    try:
        if mode == "sync":
            for event in obj:
                events.append(event)
        else:
            async for event in obj:
                events.append(event)
    except Exception as exc:
        return events, exc
    return events, None


def sse(event: str | None = None, data: str | None = None, id: str | None = None) -> str:
    lines = []
    if event is not None:
        lines.append(f"event: {event}")
    if id is not None:
        lines.append(f"id: {id}")
    if data is not None:
        lines.extend(f"data: {line}" for line in data.split("\n"))
    return "\n".join(lines) + "\n\n"


def outputs(n: int, start: int = 1) -> str:
    return "".join(sse("output", f"tok{i}", id=str(i)) for i in range(start, start + n))


DONE = sse("done", "{}")


def summary(events: list[Any]) -> list[tuple[str, str, str]]:
    return [(e.event.value, str(e.data), e.id) for e in events]


# ----------------------------------------------------------------------------------- ServerSentEvent


def test_event_type_values() -> None:
    assert [k.value for k in EventType] == ["output", "logs", "error", "done"]
    assert EventType("output") is EventType.OUTPUT


def test_event_fields_str_and_repr() -> None:
    ev = ServerSentEvent(event="output", data="hello", id="1")
    assert ev.event is EventType.OUTPUT
    assert (ev.data, ev.id, ev.retry) == ("hello", "1", None)
    assert str(ev) == "hello"
    assert repr(ev) == (
        "ServerSentEvent(event=<EventType.OUTPUT: 'output'>, data='hello', id='1', retry=None)"
    )
    for kind in ("logs", "error", "done"):
        assert str(ServerSentEvent(event=kind, data="x", id="")) == ""


def test_event_str_of_file_output_is_the_url() -> None:
    url = "https://replicate.delivery/out.png"
    ev = ServerSentEvent(event=EventType.OUTPUT, data=FileOutput(url), id="")
    assert str(ev) == url


def test_event_validation() -> None:
    with pytest.raises(ValueError, match="event must be one of"):
        ServerSentEvent(event="ping", data="", id="")
    with pytest.raises(TypeError, match="id must be a str"):
        ServerSentEvent(event="output", data="", id=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="data must be"):
        ServerSentEvent(event="output", data=[1], id="")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="retry must be"):
        ServerSentEvent(event="output", data="", id="", retry="5")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ServerSentEvent("output", "x", "1")  # type: ignore[misc]
    assert ServerSentEvent(event="output", data=1, id="").data == "1"  # type: ignore[arg-type]


def test_event_equality_dump_copy_pickle() -> None:
    ev = ServerSentEvent(event="logs", data="line", id="7", retry=1500)
    same = ServerSentEvent(event=EventType.LOGS, data="line", id="7", retry=1500)
    assert ev == same
    assert ev != ServerSentEvent(event="logs", data="other", id="7", retry=1500)
    with pytest.raises(TypeError):
        hash(ev)
    assert ev.dict() == {"event": EventType.LOGS, "data": "line", "id": "7", "retry": 1500}
    assert dict(ev) == ev.dict()
    assert json.loads(ev.json()) == {"event": "logs", "data": "line", "id": "7", "retry": 1500}
    assert json.loads(ev.model_dump_json()) == ev.model_dump(mode="json")
    assert ev.copy() == ev and ev.copy() is not ev
    assert ev.copy(update={"data": "new"}).data == "new"
    with pytest.raises(ValueError):
        ev.copy(update={"event": "nope"})
    assert pickle.loads(pickle.dumps(ev)) == ev
    ev.data = "changed"
    assert ev.data == "changed"


def test_names_importable_from_the_module() -> None:
    from replicate.stream import AsyncStream as A
    from replicate.stream import EventSource as E
    from replicate.stream import ServerSentEvent as S
    from replicate.stream import Stream as St
    from replicate.stream import async_stream, stream

    assert (A, E, S, St) == (AsyncStream, EventSource, ServerSentEvent, Stream)
    assert stream is stream_mod.stream and async_stream is stream_mod.async_stream


def test_names_reachable_as_attributes_of_the_stream_function() -> None:
    from replicate.stream import AsyncStream as A
    from replicate.stream import EventSource as E
    from replicate.stream import ServerSentEvent as S
    from replicate.stream import Stream as St

    assert replicate.stream.ServerSentEvent is S is ServerSentEvent
    assert replicate.stream.EventSource is E
    assert replicate.stream.Stream is St
    assert replicate.stream.AsyncStream is A
    assert callable(replicate.stream)


# ----------------------------------------------------------------------------------- basic streams


async def test_events_headers_and_done(mode: str, sleeps: list[float]) -> None:
    body = (
        ": keep-alive comment\n\n"
        + sse("output", "Hello", id="1")
        + sse("logs", "step 1\nstep 2", id="2")
        + sse("ping", "{}")
        + sse(None, "nameless")
        + sse("output", " world", id="3")
        + DONE
        + sse("output", "after done", id="4")
    )
    api = FakeAPI([Conn(body)])
    prediction = make_prediction(api)
    events, error = await drain(open_stream(prediction, mode), mode)
    assert error is None
    assert summary(events) == [
        ("output", "Hello", "1"),
        ("logs", "step 1\nstep 2", "2"),
        ("output", " world", "3"),
        ("done", "{}", ""),
    ]
    assert "".join(str(e) for e in events) == "Hello world"
    (request,) = api.stream_requests
    assert str(request.url) == STREAM_URL
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["cache-control"] == "no-store"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert "last-event-id" not in request.headers
    assert request.extensions["timeout"]["read"] >= 60
    assert sleeps == []
    assert api.closed_all()


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 4096])
async def test_any_chunking_gives_the_same_events(mode: str, chunk: int) -> None:
    body = "\ufeff" + outputs(3).replace("tok2", "naïve 😀 café") + DONE
    body = body.replace("\n", "\r\n", 4)
    api = FakeAPI([Conn(body, chunk=chunk)])
    events, error = await drain(open_stream(make_prediction(api), mode), mode)
    assert error is None
    assert [str(e.data) for e in events] == ["tok1", "naïve 😀 café", "tok3", "{}"]


async def test_missing_stream_url_raises_on_first_iteration(mode: str) -> None:
    api = FakeAPI()
    api.prediction["urls"].pop("stream")
    prediction = make_prediction(api)
    events, error = await drain(open_stream(prediction, mode), mode)
    assert events == []
    assert isinstance(error, ReplicateError)
    assert "Model does not support streaming" in str(error)
    assert api.requests == []
    with pytest.raises(ReplicateError, match="Model does not support streaming"):
        Stream(prediction)


async def test_non_sse_content_type_raises(mode: str) -> None:
    api = FakeAPI([Conn('{"ok": true}', content_type="application/json")])
    events, error = await drain(open_stream(make_prediction(api), mode), mode)
    assert isinstance(error, APIResponseValidationError)
    assert isinstance(error, ReplicateError)
    assert "application/json" in str(error)
    assert events == []
    assert api.closed_all()


@pytest.mark.parametrize(
    ("status", "cls"), [(401, AuthenticationError), (404, NotFoundError), (400, ReplicateError)]
)
async def test_4xx_raises_at_once(mode: str, sleeps: list[float], status: int, cls: type) -> None:
    api = FakeAPI([Conn(status=status, json_body={"detail": "nope"})])
    _, error = await drain(open_stream(make_prediction(api), mode), mode)
    assert isinstance(error, cls)
    assert error.status == status  # type: ignore[union-attr]
    assert len(api.stream_requests) == 1
    assert sleeps == []


# ----------------------------------------------------------------------------------- file outputs


async def test_file_outputs(mode: str) -> None:
    data_url = "data:text/plain;base64,aGk="
    body = (
        sse("output", "https://replicate.delivery/a.png", id="1")
        + sse("output", data_url, id="2")
        + sse("output", "http://insecure.example/a.png", id="3")
        + sse("output", "https://two urls.example", id="4")
        + sse("logs", "https://replicate.delivery/log.txt", id="5")
        + DONE
    )
    api = FakeAPI([Conn(body), Conn(body)])
    prediction = make_prediction(api)
    events, _ = await drain(open_stream(prediction, mode), mode)
    kinds = [type(e.data) for e in events]
    assert kinds == [FileOutput, FileOutput, str, str, str, str]
    assert str(events[0]) == "https://replicate.delivery/a.png"
    assert events[0].data.url == "https://replicate.delivery/a.png"
    assert events[1].data.read() == b"hi"

    raw, _ = await drain(open_stream(prediction, mode, use_file_output=False), mode)
    assert all(type(e.data) is str for e in raw)
    assert str(raw[0]) == "https://replicate.delivery/a.png"


# ----------------------------------------------------------------------------------- terminal events


async def test_error_event_raises_model_error(mode: str) -> None:
    body = outputs(2) + sse("error", json.dumps({"detail": "CUDA out of memory"})) + outputs(1, 9)
    api = FakeAPI([Conn(body)])
    prediction = make_prediction(api)
    events, error = await drain(open_stream(prediction, mode), mode)
    assert [e.data for e in events] == ["tok1", "tok2"]
    # 1.0.x raised RuntimeError here: the error is both a ModelError and a RuntimeError.
    assert type(error) is ModelStreamError
    assert isinstance(error, ModelError) and isinstance(error, RuntimeError)
    assert error.prediction is prediction
    assert prediction.status == "failed"
    assert prediction.error == "CUDA out of memory"
    assert str(error) == "CUDA out of memory"
    assert api.closed_all()


async def test_error_event_with_plain_text(mode: str) -> None:
    api = FakeAPI([Conn(sse("error", "boom"))])
    prediction = make_prediction(api)
    _, error = await drain(open_stream(prediction, mode), mode)
    assert isinstance(error, ModelStreamError) and isinstance(error, RuntimeError)
    assert prediction.error == "boom"


@pytest.mark.parametrize(
    ("reason", "cls", "status"),
    [
        ("canceled", PredictionCanceledError, "canceled"),
        ("aborted", PredictionAbortedError, "aborted"),
        ("error", ModelStreamError, "failed"),
    ],
)
async def test_done_reasons_raise(mode: str, reason: str, cls: type, status: str) -> None:
    api = FakeAPI([Conn(outputs(1) + sse("done", json.dumps({"reason": reason})))])
    prediction = make_prediction(api)
    events, error = await drain(open_stream(prediction, mode), mode)
    assert [e.data for e in events] == ["tok1"]
    assert type(error) is cls
    assert isinstance(error, ModelError)
    assert error.prediction is prediction  # type: ignore[attr-defined]
    assert prediction.status == status


@pytest.mark.parametrize("data", ["{}", "", '{"reason": "finished-early"}', "not json"])
async def test_other_done_events_finish(mode: str, data: str) -> None:
    body = outputs(1) + ("event: done\n\n" if data == "" else sse("done", data))
    api = FakeAPI([Conn(body)])
    events, error = await drain(open_stream(make_prediction(api), mode), mode)
    assert error is None
    assert [e.event for e in events] == [EventType.OUTPUT, EventType.DONE]
    assert events[-1].data == data


# ----------------------------------------------------------------------------------- reconnects


async def test_dropped_connection_resumes_without_loss_or_duplicates(
    mode: str, sleeps: list[float]
) -> None:
    first = Conn(outputs(3) + "event: output\nid: 4\ndata: half", error=httpx.ReadError("reset"))
    # The server replays from an earlier point: 2 and 3 are duplicates and must be dropped.
    second = Conn(outputs(5, start=2) + DONE)
    api = FakeAPI([first, second])
    events, error = await drain(open_stream(make_prediction(api), mode), mode)
    assert error is None
    assert [e.data for e in events] == ["tok1", "tok2", "tok3", "tok4", "tok5", "tok6", "{}"]
    assert [e.id for e in events[:-1]] == ["1", "2", "3", "4", "5", "6"]
    assert "last-event-id" not in api.stream_requests[0].headers
    assert api.stream_requests[1].headers["last-event-id"] == "3"
    assert api.stream_requests[1].headers["authorization"] == f"Bearer {TOKEN}"
    assert sleeps == [1.0]
    assert api.closed_all()


async def test_body_ending_before_done_reconnects(mode: str, sleeps: list[float]) -> None:
    api = FakeAPI([Conn(outputs(2)), Conn(outputs(2, start=3)), Conn(DONE)])
    events, error = await drain(open_stream(make_prediction(api), mode), mode)
    assert error is None
    assert [e.data for e in events] == ["tok1", "tok2", "tok3", "tok4", "{}"]
    assert [r.headers.get("last-event-id") for r in api.stream_requests] == [None, "2", "4"]
    assert sleeps == [1.0, 1.0]


async def test_server_retry_value_sets_the_delay(mode: str, sleeps: list[float]) -> None:
    api = FakeAPI(
        [
            Conn("retry: 250\n\n" + outputs(1), error=httpx.ReadError("x")),
            Conn(outputs(1, 2) + DONE),
        ]
    )
    _, error = await drain(open_stream(make_prediction(api), mode), mode)
    assert error is None
    assert sleeps == [0.25]


async def test_idle_timeouts_do_not_count_as_failures(mode: str, sleeps: list[float]) -> None:
    conns = [Conn(outputs(1), error=httpx.ReadTimeout("idle"))]
    conns += [Conn(": ping\n\n", error=httpx.ReadTimeout("idle")) for _ in range(7)]
    conns.append(Conn(outputs(1, 2) + DONE))
    api = FakeAPI(conns)
    events, error = await drain(open_stream(make_prediction(api), mode), mode)
    assert error is None
    assert [e.data for e in events] == ["tok1", "tok2", "{}"]
    assert sleeps == [1.0] * 8
    assert all(r.headers["last-event-id"] == "1" for r in api.stream_requests[1:])


async def test_five_consecutive_failures_raise_the_last_error(
    mode: str, sleeps: list[float]
) -> None:
    conns = [Conn(outputs(2), error=httpx.ReadError("reset"))]
    conns += [
        Conn(status=503, json_body={"detail": "busy"}),
        Conn(raise_on_connect=httpx.ConnectError("refused")),
        Conn(status=429, json_body={"detail": "slow down"}),
        Conn(status=500, json_body={"detail": "oops"}),
        Conn(status=502, json_body={"detail": "bad gateway"}),
    ]
    api = FakeAPI(conns)
    events, error = await drain(open_stream(make_prediction(api), mode), mode)
    assert [e.data for e in events] == ["tok1", "tok2"]
    assert isinstance(error, InternalServerError)
    assert error.status == 502
    # The first drop had made progress (not a failure); then failures 1-4 back off 1, 2, 4, 8 s.
    assert sleeps == [1.0, 1.0, 2.0, 4.0, 8.0]
    assert not api.conns
    assert api.closed_all()


async def test_failures_reset_after_progress_and_backoff_is_capped(
    mode: str, sleeps: list[float]
) -> None:
    conns = [Conn("retry: 20000\n\n" + outputs(1), error=httpx.ReadError("reset"))]
    conns += [Conn(status=503, json_body={}) for _ in range(4)]
    conns.append(Conn(outputs(1, 2), error=httpx.RemoteProtocolError("cut")))
    conns += [Conn(status=429, json_body={}) for _ in range(4)]
    conns.append(Conn(outputs(1, 3) + DONE))
    api = FakeAPI(conns)
    events, error = await drain(open_stream(make_prediction(api), mode), mode)
    assert error is None
    assert [e.data for e in events] == ["tok1", "tok2", "tok3", "{}"]
    assert sleeps == [20.0, 20.0, 30.0, 30.0, 30.0] * 2


async def test_progress_then_idle_resets_the_failure_count(mode: str, sleeps: list[float]) -> None:
    conns = [Conn(status=503, json_body={}) for _ in range(4)]
    conns.append(Conn(outputs(1), error=httpx.ReadTimeout("idle")))
    conns += [Conn(status=503, json_body={}) for _ in range(4)]
    conns.append(Conn(outputs(1, 2) + DONE))
    api = FakeAPI(conns)
    events, error = await drain(open_stream(make_prediction(api), mode), mode)
    assert error is None
    assert [e.data for e in events] == ["tok1", "tok2", "{}"]
    assert sleeps == [1.0, 2.0, 4.0, 8.0, 1.0, 1.0, 2.0, 4.0, 8.0]


async def test_drops_without_progress_count_as_failures(mode: str, sleeps: list[float]) -> None:
    conns = [Conn(outputs(1) + DONE.replace("done", "output"), error=httpx.ReadError("x"))]
    conns += [Conn(": nothing\n\n", error=httpx.ReadError("x")) for _ in range(5)]
    api = FakeAPI(conns)
    events, error = await drain(open_stream(make_prediction(api), mode), mode)
    assert len(events) == 2
    assert isinstance(error, ReplicateReadError)
    assert isinstance(error, httpx.ReadError)
    assert sleeps == [1.0, 1.0, 2.0, 4.0, 8.0]
    assert not api.conns


async def test_4xx_on_reconnect_raises_at_once(mode: str, sleeps: list[float]) -> None:
    api = FakeAPI(
        [
            Conn(outputs(1), error=httpx.ReadError("x")),
            Conn(status=404, json_body={"detail": "gone"}),
        ]
    )
    events, error = await drain(open_stream(make_prediction(api), mode), mode)
    assert [e.data for e in events] == ["tok1"]
    assert isinstance(error, NotFoundError)
    assert sleeps == [1.0]


async def test_rate_limit_on_first_connect_is_retried(mode: str, sleeps: list[float]) -> None:
    api = FakeAPI([Conn(status=429, json_body={"detail": "slow"}), Conn(outputs(1) + DONE)])
    events, error = await drain(open_stream(make_prediction(api), mode), mode)
    assert error is None and len(events) == 2
    assert sleeps == [1.0]


async def test_rate_limit_retry_after_is_honoured(mode: str, sleeps: list[float]) -> None:
    api = FakeAPI(
        [
            Conn(status=429, json_body={"detail": "slow", "retry_after": 7}),
            Conn(status=429, json_body={"detail": "slow", "retry_after": 500}),
            Conn(status=429, json_body={"detail": "slow"}),
            Conn(outputs(1) + DONE),
        ]
    )
    events, error = await drain(open_stream(make_prediction(api), mode), mode)
    assert error is None and len(events) == 2
    assert sleeps == [7.0, 30.0, 4.0]


async def test_reconnect_after_the_client_was_closed(mode: str, sleeps: list[float]) -> None:
    api = FakeAPI([Conn(outputs(1), error=httpx.ReadError("x")), Conn(outputs(1, 2) + DONE)])
    prediction = make_prediction(api)
    client = prediction._client
    events: list[Any] = []
    if mode == "sync":
        for ev in open_stream(prediction, mode):
            events.append(ev)
            client.close()
    else:
        async for ev in open_stream(prediction, mode):
            events.append(ev)
            await client.aclose()
    assert [e.data for e in events] == ["tok1", "tok2", "{}"]


async def test_retry_transport_does_not_retry_the_stream_get(
    mode: str, sleeps: list[float]
) -> None:
    conns = [Conn(status=503, json_body={"detail": "busy"}) for _ in range(5)]
    api = FakeAPI(conns)
    prediction = make_prediction(api, retry=True)
    _, error = await drain(open_stream(prediction, mode), mode)
    assert isinstance(error, InternalServerError)
    assert len(api.stream_requests) == 5


# ----------------------------------------------------------------------------------- deadline


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def make_stream(prediction: Prediction, mode: str, clock: FakeClock, **kwargs: Any) -> Any:
    if mode == "sync":
        return Stream(prediction, clock=clock, sleep=clock.sleep, **kwargs)
    return AsyncStream(prediction, clock=clock, sleep=clock.asleep, **kwargs)


async def test_deadline_cancels_and_raises(mode: str) -> None:
    conns = [Conn(outputs(1), error=httpx.ReadError("x"))]
    conns += [Conn(status=503, json_body={}) for _ in range(3)]
    api = FakeAPI(conns)
    prediction = make_prediction(api)
    clock = FakeClock()
    events, error = await drain(make_stream(prediction, mode, clock, timeout=2.5), mode)
    assert [e.data for e in events] == ["tok1"]
    assert isinstance(error, PredictionTimeoutError)
    assert isinstance(error, TimeoutError)
    assert error.canceled is True
    assert error.timeout == 2.5
    assert error.prediction is prediction
    assert prediction.status == "canceled"
    assert clock.sleeps == [1.0, 1.0, 0.5]
    cancels = [r for r in api.requests if r.url.path.endswith("/cancel")]
    assert len(cancels) == 1
    assert cancels[0].headers["authorization"] == f"Bearer {TOKEN}"


async def test_deadline_caps_request_timeouts(mode: str) -> None:
    api = FakeAPI([Conn(outputs(1) + DONE)])
    clock = FakeClock()
    _, error = await drain(make_stream(make_prediction(api), mode, clock, timeout=7), mode)
    assert error is None
    timeouts = api.stream_requests[0].extensions["timeout"]
    assert all(value <= 7 for value in timeouts.values())


async def test_deadline_passing_mid_stream(mode: str) -> None:
    api = FakeAPI([Conn(outputs(3) + DONE, chunk=7)])
    clock = FakeClock()
    prediction = make_prediction(api)
    obj = make_stream(prediction, mode, clock, timeout=5)
    events: list[Any] = []
    with pytest.raises(PredictionTimeoutError) as info:
        if mode == "sync":
            for ev in obj:
                events.append(ev)
                clock.now += 10
        else:
            async for ev in obj:
                events.append(ev)
                clock.now += 10
    assert [e.data for e in events] == ["tok1"]
    assert info.value.canceled is True
    assert api.closed_all()


async def test_read_timeout_shrinks_with_the_deadline(mode: str) -> None:
    api = FakeAPI([Conn(outputs(3) + DONE, chunk=7)])
    clock = FakeClock()
    obj = make_stream(make_prediction(api), mode, clock, timeout=100)
    reads: list[float] = []
    events: list[Any] = []
    if mode == "sync":
        for ev in obj:
            events.append(ev)
            reads.append(api.stream_requests[0].extensions["timeout"]["read"])
            clock.now += 30
    else:
        async for ev in obj:
            events.append(ev)
            reads.append(api.stream_requests[0].extensions["timeout"]["read"])
            clock.now += 30
    assert len(events) == 4
    assert reads == [60, 60, pytest.approx(40), pytest.approx(10)]


# ----------------------------------------------------------------------------------- closing


async def test_close_releases_the_connection(mode: str) -> None:
    api = FakeAPI([Conn(outputs(5) + DONE)])
    prediction = make_prediction(api)
    if mode == "sync":
        s = open_stream(prediction, "sync")
        assert next(s).data == "tok1"
        s.close()
        assert api.closed_all()
        assert list(s) == []
        with Stream(make_prediction(api := FakeAPI([Conn(outputs(5) + DONE)]))) as obj:
            assert next(obj).data == "tok1"
        assert api.closed_all()
        assert list(obj) == []
    else:
        a = open_stream(prediction, "async")
        assert (await a.__anext__()).data == "tok1"
        await a.aclose()
        assert api.closed_all()
        assert [e async for e in a] == []
        async with AsyncStream(make_prediction(api := FakeAPI([Conn(outputs(5) + DONE)]))) as b:
            assert (await b.__anext__()).data == "tok1"
        assert api.closed_all()
        assert [e async for e in b] == []


def test_garbage_collection_closes_the_connection() -> None:
    api = FakeAPI([Conn(outputs(5) + DONE)])
    s = open_stream(make_prediction(api), "sync")
    assert next(s).data == "tok1"
    assert not api.closed_all()
    del s
    gc.collect()
    assert api.closed_all()


async def test_garbage_collection_closes_the_async_connection() -> None:
    api = FakeAPI([Conn(outputs(5) + DONE)])
    s = open_stream(make_prediction(api), "async")
    assert (await s.__anext__()).data == "tok1"
    assert not api.closed_all()
    del s
    gc.collect()
    # The event loop's async-generator finalizer schedules the close as a task.
    for _ in range(20):
        if api.closed_all():
            break
        await asyncio.sleep(0)
    assert api.closed_all()


async def test_stream_is_an_iterator_and_context_manager() -> None:
    api = FakeAPI([Conn(outputs(2) + DONE)])
    prediction = make_prediction(api)
    s = Stream(prediction)
    assert s.prediction is prediction
    assert iter(s) is iter(s)
    assert api.stream_requests == []  # connects on first next()
    assert [e.data for e in s] == ["tok1", "tok2", "{}"]
    with pytest.raises(StopIteration):
        next(s)


# ----------------------------------------------------------------------------------- EventSource


async def test_event_source_over_a_response(mode: str) -> None:
    body = outputs(2) + sse("ping", "") + DONE + outputs(1, 3)
    api = FakeAPI([Conn(body)])
    client = make_client(api)
    if mode == "sync":
        http = client._get_sync_client(download=True)
        with http.stream("GET", STREAM_URL) as response:
            events = list(EventSource(client, response))
    else:
        http = client._get_async_client(download=True)
        async with http.stream("GET", STREAM_URL) as response:
            events = [e async for e in EventSource(client, response)]
    assert [e.data for e in events] == ["tok1", "tok2", "{}"]


async def test_event_source_error_and_content_type(mode: str) -> None:
    api = FakeAPI([Conn(sse("error", '{"detail": "bad"}')), Conn("x", content_type="text/plain")])
    client = make_client(api)
    for expected in (ModelError, ReplicateError):
        if mode == "sync":
            with client._get_sync_client(download=True).stream("GET", STREAM_URL) as response:
                _, error = await drain(EventSource(client, response), mode)
        else:
            async with client._get_async_client(download=True).stream(
                "GET", STREAM_URL
            ) as response:
                _, error = await drain(EventSource(client, response), mode)
        assert isinstance(error, expected)
        if expected is ModelError:
            assert str(error) == "bad"
            assert error.prediction.status == "failed"  # type: ignore[union-attr]


async def test_event_source_does_not_reconnect(mode: str) -> None:
    api = FakeAPI([Conn(outputs(1), error=httpx.ReadError("x"))])
    client = make_client(api)
    if mode == "sync":
        with client._get_sync_client(download=True).stream("GET", STREAM_URL) as response:
            events, error = await drain(EventSource(client, response), mode)
    else:
        async with client._get_async_client(download=True).stream("GET", STREAM_URL) as response:
            events, error = await drain(EventSource(client, response), mode)
    assert [e.data for e in events] == ["tok1"]
    assert isinstance(error, ReplicateReadError)


# ----------------------------------------------------------------------------------- stream()


def create_body(request: httpx.Request) -> dict[str, Any]:
    return json.loads(request.content)  # type: ignore[no-any-return]


async def test_client_stream_creates_at_call_time(sleeps: list[float]) -> None:
    api = FakeAPI([Conn(outputs(2) + DONE)])
    client = make_client(api)
    s = client.stream("acme/llm", {"prompt": "hi"})
    # A real generator, as in 1.0.x (instrumentation records stream output only for these).
    assert isinstance(s, types.GeneratorType)
    (create,) = api.requests
    assert create.method == "POST"
    assert create.url.path == "/v1/models/acme/llm/predictions"
    assert create_body(create) == {"input": {"prompt": "hi"}, "stream": True}
    assert "prefer" not in create.headers
    assert "cancel-after" not in create.headers
    assert api.stream_requests == []  # connects on first next()
    assert "".join(str(e) for e in s) == "tok1tok2"


async def test_stream_routing_and_params() -> None:
    api = FakeAPI([])
    client = make_client(api)
    client.stream(f"acme/llm:{VERSION}", input={"a": 1}, stream=False, webhook="https://x.test")
    client.stream(VERSION, timeout=12.2)
    first, second = api.requests
    assert first.url.path == "/v1/predictions"
    assert create_body(first) == {
        "input": {"a": 1},
        "version": VERSION,
        "webhook": "https://x.test",
        "stream": False,
    }
    assert create_body(second) == {"input": {}, "version": VERSION, "stream": True}
    assert second.headers["cancel-after"] == "13s"
    with pytest.raises(TypeError, match="bogus"):
        client.stream("acme/llm", bogus=1)
    with pytest.raises(ValueError, match="Invalid"):
        client.stream("not a ref")
    assert len(api.requests) == 2


async def test_stream_create_errors_raise_at_call_time() -> None:
    api = FakeAPI([])
    api.prediction = {"detail": "Unauthenticated"}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"detail": "Unauthenticated"})

    client = Client(api_token=TOKEN, transport=httpx.MockTransport(handler), retry=False)
    with pytest.raises(AuthenticationError):
        client.stream("acme/llm")
    s = client.async_stream("acme/llm")
    with pytest.raises(AuthenticationError):
        await s


async def test_module_generator_functions_create_on_first_iteration(sleeps: list[float]) -> None:
    """replicate.stream.stream/async_stream(client, ...) are the 1.0.x (async) generator functions."""
    assert inspect.isgeneratorfunction(stream_mod.stream)
    assert inspect.isasyncgenfunction(stream_mod.async_stream)
    api = FakeAPI([Conn(outputs(1) + DONE), Conn(outputs(1) + DONE)])
    client = make_client(api)
    gen = stream_mod.stream(client, "acme/llm", {"prompt": "hi"})
    agen = stream_mod.async_stream(client, "acme/llm", {"prompt": "hi"})
    assert api.requests == []
    assert [str(e) for e in gen] == ["tok1", ""]
    assert [str(e) async for e in agen] == ["tok1", ""]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"detail": "prompt is required"})

    failing = Client(api_token=TOKEN, transport=httpx.MockTransport(handler), retry=False)
    with pytest.raises(ReplicateError, match="prompt is required"):
        async for _ in stream_mod.async_stream(failing, "acme/llm"):
            pass


async def test_async_stream_is_a_coroutine_function(sleeps: list[float]) -> None:
    api = FakeAPI([Conn(outputs(2) + DONE), Conn(outputs(1) + DONE)])
    client = make_client(api)
    assert inspect.iscoroutinefunction(Client.async_stream)
    assert inspect.iscoroutinefunction(replicate.async_stream)

    coro = client.async_stream("acme/llm", {"prompt": "hi"})
    assert inspect.iscoroutine(coro)
    events = await coro
    assert isinstance(events, types.AsyncGeneratorType)
    assert len([r for r in api.requests if r.method == "POST"]) == 1  # created at the await
    assert api.stream_requests == []
    assert [e.data async for e in events] == ["tok1", "tok2", "{}"]

    # asyncio.create_task needs a coroutine (1.0.x code does this).
    task = asyncio.create_task(client.async_stream("acme/llm", {"prompt": "again"}))
    assert [e.data async for e in await task] == ["tok1", "{}"]
    creates = [r for r in api.requests if r.method == "POST"]
    assert [create_body(r)["input"] for r in creates] == [{"prompt": "hi"}, {"prompt": "again"}]


async def test_module_level_stream_uses_default_client(
    monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    api = FakeAPI([Conn(outputs(1) + DONE), Conn(outputs(1) + DONE)])
    monkeypatch.setattr(replicate, "default_client", make_client(api))
    events = replicate.stream("acme/llm", input={"x": 1})
    # OpenTelemetry's instrumentor records a stream's output only for a types.GeneratorType.
    assert isinstance(events, types.GeneratorType)
    assert [str(e) for e in events] == ["tok1", ""]
    agen = await replicate.async_stream("acme/llm", input={"x": 1})
    assert isinstance(agen, types.AsyncGeneratorType)
    assert [str(e) async for e in agen] == ["tok1", ""]


async def test_stream_use_file_output_per_call() -> None:
    url = "https://replicate.delivery/x.png"
    api = FakeAPI([Conn(sse("output", url) + DONE), Conn(sse("output", url) + DONE)])
    client = make_client(api)
    assert isinstance(next(iter(client.stream("acme/llm"))).data, FileOutput)
    assert next(iter(client.stream("acme/llm", use_file_output=False))).data == url


def test_no_token_in_logs(caplog: pytest.LogCaptureFixture, sleeps: list[float]) -> None:
    caplog.set_level("DEBUG", logger="replicate")
    api = FakeAPI(
        [
            Conn(outputs(1), error=httpx.ReadError("x")),
            Conn(status=503, json_body={}),
            Conn(outputs(1, 2) + DONE),
        ]
    )
    events = list(open_stream(make_prediction(api), "sync"))
    assert len(events) == 3
    assert caplog.records
    assert TOKEN not in caplog.text


async def test_prediction_stream_methods(sleeps: list[float]) -> None:
    api = FakeAPI([Conn(outputs(1) + DONE) for _ in range(3)])
    prediction = make_prediction(api)
    # (Async) generator functions, as in 1.0.x.
    assert inspect.isgeneratorfunction(Prediction.stream)
    assert inspect.isasyncgenfunction(Prediction.async_stream)
    assert inspect.isgeneratorfunction(Prediction.output_iterator)
    assert inspect.isasyncgenfunction(Prediction.async_output_iterator)
    s = prediction.stream()
    assert isinstance(s, types.GeneratorType)
    assert [str(e) for e in s] == ["tok1", ""]
    a = prediction.async_stream()
    assert isinstance(a, types.AsyncGeneratorType)
    assert [str(e) async for e in a] == ["tok1", ""]
    raw = prediction.stream(use_file_output=False, timeout=30)
    assert [type(e.data) for e in raw] == [str, str]


def test_event_source_line_decoder() -> None:
    decoder = EventSource.Decoder()
    lines = ["event: output", "id: 1", "data: hi", "", "event: ping", "data: x", ""]
    results = [decoder.decode(line) for line in lines]
    assert results[:3] == [None, None, None]
    assert results[3] == ServerSentEvent(event="output", data="hi", id="1")
    assert results[4:] == [None, None, None]
