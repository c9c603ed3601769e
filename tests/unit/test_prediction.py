"""Prediction resource and the predictions namespace (docs/predictions.md)."""

from __future__ import annotations

import datetime
import json
import pickle
import types
from typing import Any

import httpx
import pytest

import replicate
from replicate._http import IDEMPOTENT_EXTENSION
from replicate.exceptions import (
    ModelError,
    NotFoundError,
    PredictionAbortedError,
    PredictionCanceledError,
    PredictionTimeoutError,
    ReplicateError,
)
from replicate.pagination import Page
from replicate.prediction import Prediction, Predictions
from replicate.version import Version

VID = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"


def pred(id: str = "p1", status: str = "starting", **fields: Any) -> dict[str, Any]:
    return {
        "id": id,
        "model": "owner/name",
        "version": VID,
        "status": status,
        "input": {"text": "hi"},
        "output": None,
        "logs": "",
        "error": None,
        "created_at": "2024-01-01T00:00:00Z",
        "urls": {
            "get": f"https://api.replicate.com/v1/predictions/{id}",
            "cancel": f"https://api.replicate.com/v1/predictions/{id}/cancel",
        },
        **fields,
    }


# ---------------------------------------------------------------------- resource


def test_fields_and_tolerance() -> None:
    p = Prediction._from_api(pred(status="brand-new", extra_field=1, logs=3, data_removed=False))
    assert p.status == "brand-new"
    assert p.extra_field == 1  # type: ignore[attr-defined]
    assert p.logs == 3  # wrong type kept as received
    assert p.data_removed is False
    assert Prediction._from_api(pred(extra_field=1)).dict()["extra_field"] == 1
    assert not p.is_terminal
    assert frozenset({"succeeded", "failed", "canceled", "aborted"}) == Prediction.TERMINAL_STATUSES


@pytest.mark.parametrize(
    ("status", "completed_at", "terminal"),
    [
        ("succeeded", None, True),
        ("aborted", None, True),
        ("processing", None, False),
        ("mystery", None, False),
        ("mystery", "2024-01-01T00:00:01Z", True),
    ],
)
def test_is_terminal(status: str, completed_at: str | None, terminal: bool) -> None:
    assert Prediction(status=status, completed_at=completed_at).is_terminal is terminal


def test_progress() -> None:
    logs = "Using seed: 1\n  0%|          | 0/50 [00:00<?, ?it/s]\n 42%|████▏     | 21/50 [00:01<00:01, 17.1it/s]\nother line"
    progress = Prediction(logs=logs).progress
    assert progress == Prediction.Progress(percentage=0.42, current=21, total=50)
    assert Prediction(logs="").progress is None
    assert Prediction(logs=None).progress is None
    assert Prediction(logs="no bars here").progress is None
    assert Prediction.Progress.parse("100%|##########| 50/50") == Prediction.Progress(1.0, 50, 50)


def test_pickle_drops_client(mock_api: Any) -> None:
    client = mock_api.client()
    p = Prediction._from_api(pred(), client)
    clone = pickle.loads(pickle.dumps(p))
    assert clone == p
    assert clone._client is None


# ---------------------------------------------------------------------- get / list / cancel


async def test_get(mock_api: Any, invoke: Any) -> None:
    mock_api.add("GET", "/v1/predictions/p1", pred(status="succeeded", output=["a"]))
    client = mock_api.client()
    p = await invoke(client.predictions, "get", "p1")
    assert isinstance(p, Prediction)
    assert (p.id, p.status, p.output) == ("p1", "succeeded", ["a"])
    assert p._client is client
    request = mock_api.last
    assert request.method == "GET"
    assert str(request.url) == "https://api.replicate.com/v1/predictions/p1"
    assert request.headers["authorization"].startswith("Bearer ")


async def test_get_quotes_id_and_extras(mock_api: Any, invoke: Any) -> None:
    mock_api.add("GET", "/v1/predictions/a/b", pred())  # .path is decoded
    client = mock_api.client()
    await invoke(
        client.predictions, "get", "a/b", extra_headers={"X-T": "1"}, extra_query={"q": "v"}
    )
    assert mock_api.last.url.raw_path == b"/v1/predictions/a%2Fb?q=v"
    assert mock_api.last.headers["x-t"] == "1"
    with pytest.raises(ValueError, match="id"):
        await invoke(client.predictions, "get", "")


async def test_get_not_found(mock_api: Any, invoke: Any) -> None:
    mock_api.add("GET", "/v1/predictions/x", {"detail": "Not found."}, status=404)
    with pytest.raises(NotFoundError):
        await invoke(mock_api.client().predictions, "get", "x")


async def test_list_default_and_filters(mock_api: Any, invoke: Any) -> None:
    mock_api.add("GET", "/v1/predictions", {"results": [pred()], "next": None, "previous": None})
    client = mock_api.client()
    page = await invoke(client.predictions, "list")
    assert isinstance(page, Page) and len(page) == 1 and isinstance(page[0], Prediction)
    assert page[0]._client is client
    assert str(mock_api.last.url) == "https://api.replicate.com/v1/predictions"

    naive = datetime.datetime(2024, 1, 2, 3, 4, 5)
    aware = datetime.datetime(
        2024, 1, 2, 5, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    await invoke(
        client.predictions, "list", created_after=naive, created_before=aware, source="web"
    )
    params = mock_api.last.url.params
    assert params["created_after"] == "2024-01-02T03:04:05Z"
    assert params["created_before"] == "2024-01-02T03:04:05Z"
    assert params["source"] == "web"
    await invoke(client.predictions, "list", created_after="2024-01-01")
    assert mock_api.last.url.params["created_after"] == "2024-01-01"


async def test_list_cursor(mock_api: Any, invoke: Any) -> None:
    mock_api.add("GET", "/v1/predictions", {"results": [], "next": None})
    client = mock_api.client()
    cursor = "https://api.replicate.com/v1/predictions?cursor=abc&created_after=x"
    await invoke(client.predictions, "list", cursor, created_after="ignored")
    assert str(mock_api.last.url) == cursor
    with pytest.raises(ValueError, match="cursor cannot be None"):
        await invoke(client.predictions, "list", None)
    with pytest.raises(ValueError, match="API host"):
        await invoke(client.predictions, "list", "https://example.com/v1/predictions?cursor=1")
    assert len(mock_api.requests) == 1


async def test_paginate_predictions(mock_api: Any) -> None:
    mock_api.add(
        "GET", "/v1/predictions", {"results": [pred("a")], "next": "/v1/predictions?cursor=2"}
    )
    mock_api.add("GET", "/v1/predictions", {"results": [pred("b")], "next": None})
    client = mock_api.client()
    ids = [p.id for page in replicate.paginate(client.predictions.list) for p in page]
    assert ids == ["a", "b"]
    assert mock_api.requests[1].url.params["cursor"] == "2"


async def test_cancel_is_idempotent_post(mock_api: Any, invoke: Any) -> None:
    seen: list[dict[str, Any]] = []
    mock_api.add("POST", "/v1/predictions/p1/cancel", pred(status="canceled"))
    handler = mock_api.handler

    def spy(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.extensions))
        return handler(request)

    client = replicate.Client(api_token="t", transport=httpx.MockTransport(spy), retry=False)
    p = await invoke(client.predictions, "cancel", "p1")
    assert p.status == "canceled"
    assert mock_api.last.method == "POST" and mock_api.last.content == b""
    assert seen[0][IDEMPOTENT_EXTENSION] is True


# ---------------------------------------------------------------------- create


async def test_create_positional_version(mock_api: Any, invoke: Any) -> None:
    mock_api.add("POST", "/v1/predictions", pred(), status=201)
    client = mock_api.client()
    p = await invoke(client.predictions, "create", VID, {"text": "hi"})
    assert p.id == "p1" and p._sync_complete is False
    assert (
        mock_api.last.content
        == json.dumps({"input": {"text": "hi"}, "version": VID}, separators=(",", ":")).encode()
    )
    assert mock_api.last.headers["content-type"] == "application/json"
    assert "prefer" not in mock_api.last.headers
    assert "cancel-after" not in mock_api.last.headers


async def test_create_body_order_and_params(mock_api: Any, invoke: Any) -> None:
    mock_api.add("POST", "/v1/predictions", pred(), status=201)
    client = mock_api.client()
    await invoke(
        client.predictions,
        "create",
        version=Version(id=VID),
        stream=True,
        webhook_events_filter=("start", "completed"),
        webhook_completed="https://e/c",
        webhook="https://e/w",
        input=None,
    )
    body = mock_api.last.content.decode()
    assert body == (
        '{"input":{},"version":"' + VID + '","webhook":"https://e/w",'
        '"webhook_completed":"https://e/c","webhook_events_filter":["start","completed"],'
        '"stream":true}'
    )


async def test_create_positionals_override_keywords(mock_api: Any, invoke: Any) -> None:
    mock_api.add("POST", "/v1/predictions", pred(), status=201)
    client = mock_api.client()
    await invoke(client.predictions, "create", "v-pos", {"a": 1}, version="v-kw", input={"b": 2})
    assert json.loads(mock_api.last.content) == {"input": {"a": 1}, "version": "v-pos"}


@pytest.mark.parametrize(
    ("wait", "prefer", "read"),
    [(True, "wait", 65.0), (10, "wait=10", 30.0), (45, "wait=45", 50.0), (100, "wait=60", 65.0)],
)
async def test_create_wait(mock_api: Any, invoke: Any, wait: Any, prefer: str, read: float) -> None:
    timeouts: list[Any] = []
    mock_api.add(
        "POST", "/v1/predictions", pred(status="processing"), status=201,
        headers={"Preference-Applied": prefer},
    )  # fmt: skip

    def spy(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"])
        return mock_api.handler(request)

    client = replicate.Client(api_token="t", transport=httpx.MockTransport(spy))
    p = await invoke(client.predictions, "create", version="v", input={}, wait=wait)
    assert mock_api.last.headers["prefer"] == prefer
    assert timeouts[0]["read"] == read
    assert timeouts[0]["connect"] == 5.0
    assert p._sync_complete is True


async def test_create_without_wait_uses_client_timeout(mock_api: Any, invoke: Any) -> None:
    timeouts: list[Any] = []
    mock_api.add("POST", "/v1/predictions", pred(), status=201)

    def spy(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"])
        return mock_api.handler(request)

    client = replicate.Client(api_token="t", transport=httpx.MockTransport(spy), timeout=7)
    await invoke(client.predictions, "create", version="v", input={}, wait=False)
    assert timeouts[0]["read"] == 7.0
    assert "prefer" not in mock_api.last.headers


async def test_create_not_sync_complete_on_202(mock_api: Any, invoke: Any) -> None:
    mock_api.add(
        "POST", "/v1/predictions", pred(status="processing"), status=202,
        headers={"Preference-Applied": "wait"},
    )  # fmt: skip
    p = await invoke(mock_api.client().predictions, "create", version="v", wait=True)
    assert p._sync_complete is False


async def test_create_cancel_after_and_extras(mock_api: Any, invoke: Any) -> None:
    mock_api.add("POST", "/v1/predictions", pred(), status=201)
    client = mock_api.client()
    await invoke(
        client.predictions,
        "create",
        version="v",
        input={"a": 1},
        cancel_after=datetime.timedelta(minutes=2),
        extra_headers={"X-Extra": "1"},
        extra_query={"debug": "1"},
        extra_body={"new_field": True, "input": {"b": 2}},
    )
    request = mock_api.last
    assert request.headers["cancel-after"] == "120s"
    assert request.headers["x-extra"] == "1"
    assert request.url.params["debug"] == "1"
    assert json.loads(request.content) == {"input": {"b": 2}, "version": "v", "new_field": True}


async def test_create_argument_errors_before_io(mock_api: Any, invoke: Any) -> None:
    client = mock_api.client()
    ns = client.predictions
    with pytest.raises(TypeError, match=r"'bogus', 'other'"):
        await invoke(ns, "create", version="v", bogus=1, other=2)
    with pytest.raises(ValueError, match=r"Exactly one of 'model', 'version', or 'deployment'"):
        await invoke(ns, "create", input={})
    with pytest.raises(ValueError, match="Exactly one of"):
        await invoke(ns, "create", version="v", model="a/b")
    with pytest.raises(ValueError, match="wait"):
        await invoke(ns, "create", version="v", wait=-1)
    with pytest.raises(ValueError, match="cancel_after"):
        await invoke(ns, "create", version="v", cancel_after=1)
    with pytest.raises(ValueError, match="file_encoding_strategy"):
        await invoke(ns, "create", version="v", file_encoding_strategy="zip")
    with pytest.raises(TypeError, match="input"):
        await invoke(ns, "create", version="v", input=[1, 2])
    with pytest.raises(TypeError, match="positional"):
        await invoke(ns, "create", "v", {}, "x")
    assert mock_api.requests == []


async def test_create_by_model_forwards_params(mock_api: Any, invoke: Any) -> None:
    mock_api.add(
        "POST", "/v1/models/meta/llama/predictions", pred(status="succeeded"), status=201,
        headers={"Preference-Applied": "wait=5"},
    )  # fmt: skip
    client = mock_api.client()
    p = await invoke(
        client.predictions, "create", model="meta/llama", input={"p": 1}, wait=5, cancel_after=30
    )
    assert p.status == "succeeded"
    request = mock_api.last
    assert json.loads(request.content) == {"input": {"p": 1}}
    assert request.headers["prefer"] == "wait=5"
    assert request.headers["cancel-after"] == "30s"


async def test_create_by_deployment(mock_api: Any, invoke: Any) -> None:
    pytest.importorskip("replicate.deployment")
    mock_api.add("POST", "/v1/deployments/acme/dep/predictions", pred(), status=201)
    client = mock_api.client()
    await invoke(client.predictions, "create", deployment="acme/dep", input={"x": 1}, wait=True)
    assert mock_api.last.headers["prefer"] == "wait"
    assert json.loads(mock_api.last.content) == {"input": {"x": 1}}


async def test_create_encodes_files(mock_api: Any, invoke: Any) -> None:
    pytest.importorskip("replicate.helpers")
    mock_api.add("POST", "/v1/predictions", pred(), status=201)
    await invoke(
        mock_api.client().predictions,
        "create",
        version="v",
        input={"file": b"hello world"},
        file_encoding_strategy="base64",
    )
    body = json.loads(mock_api.last.content)
    assert body["input"]["file"] == "data:application/octet-stream;base64,aGVsbG8gd29ybGQ="


# ---------------------------------------------------------------------- waiting


async def test_prediction_wait_polls_until_terminal(mock_api: Any, invoke: Any) -> None:
    for status in ("starting", "processing", "failed"):
        mock_api.add(
            "GET",
            "/v1/predictions/p1",
            pred(status=status, error="boom" if status == "failed" else None),
        )
    client = mock_api.client()
    p = Prediction._from_api(pred(), client)
    result = await invoke(p, "wait")
    assert result is p
    assert p.status == "failed" and p.error == "boom"  # wait() does not raise
    assert mock_api.paths() == ["GET /v1/predictions/p1"] * 3


async def test_wait_no_request_when_terminal(mock_api: Any, invoke: Any) -> None:
    p = Prediction._from_api(pred(status="succeeded"), mock_api.client())
    assert await invoke(p, "wait") is p
    assert mock_api.requests == []


async def test_namespace_wait_by_id(mock_api: Any, invoke: Any) -> None:
    mock_api.add("GET", "/v1/predictions/p1", pred(status="processing"))
    mock_api.add("GET", "/v1/predictions/p1", pred(status="succeeded", output="ok"))
    client = mock_api.client()
    p = await invoke(client.predictions, "wait", "p1", poll_interval=0)
    assert p.output == "ok"
    assert len(mock_api.requests) == 2
    with pytest.raises(TypeError):
        await invoke(client.predictions, "wait", 42)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    import replicate._polling as polling_module
    import replicate.prediction as prediction_module

    monkeypatch.setattr(polling_module, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    monkeypatch.setattr(prediction_module, "time", types.SimpleNamespace(sleep=fake.sleep))
    monkeypatch.setattr(prediction_module, "asyncio", types.SimpleNamespace(sleep=fake.async_sleep))
    return fake


async def test_wait_timeout(mock_api: Any, invoke: Any, clock: FakeClock) -> None:
    mock_api.add("GET", "/v1/predictions/p1", pred(status="processing"))
    p = Prediction._from_api(pred(), mock_api.client())
    with pytest.raises(PredictionTimeoutError) as info:
        await invoke(p, "wait", 2.2, poll_interval=1.0)
    assert info.value.prediction is p
    assert p.status == "processing"
    assert clock.sleeps == [1.0, 1.0, pytest.approx(0.2)]
    assert len(mock_api.requests) == 2  # never sleeps past the deadline, no poll after it


async def test_wait_uses_backoff_schedule(mock_api: Any, invoke: Any, clock: FakeClock) -> None:
    for _ in range(12):
        mock_api.add("GET", "/v1/predictions/p1", pred(status="processing"))
    mock_api.add("GET", "/v1/predictions/p1", pred(status="succeeded"))
    client = mock_api.client(poll_interval=1.0)
    p = Prediction._from_api(pred(), client)
    await invoke(p, "wait")
    assert clock.sleeps[:10] == [1.0] * 10
    assert clock.sleeps[10:] == [pytest.approx(1.2), pytest.approx(1.44), pytest.approx(1.728)]


async def test_wait_timeout_zero(mock_api: Any, invoke: Any) -> None:
    p = Prediction._from_api(pred(), mock_api.client())
    with pytest.raises(PredictionTimeoutError):
        await invoke(p, "wait", 0)
    assert mock_api.requests == []


async def test_reload_and_cancel_return_self(mock_api: Any, invoke: Any) -> None:
    mock_api.add("GET", "/v1/predictions/p1", pred(status="processing", logs="x"))
    mock_api.add("POST", "/v1/predictions/p1/cancel", pred(status="canceled"))
    client = mock_api.client()
    p = Prediction._from_api(pred(), client)
    assert await invoke(p, "reload") is p
    assert (p.status, p.logs) == ("processing", "x")
    assert await invoke(p, "cancel") is p
    assert p.status == "canceled"
    assert p._client is client


def test_user_built_prediction_uses_default_client(
    monkeypatch: pytest.MonkeyPatch, mock_api: Any
) -> None:
    mock_api.add("GET", "/v1/predictions/p9", pred("p9", status="succeeded"))
    monkeypatch.setattr(replicate, "default_client", mock_api.client())
    p = Prediction(id="p9", status="starting")
    assert p.reload().status == "succeeded"


# ---------------------------------------------------------------------- output_iterator


async def _collect(p: Prediction, use_async: bool, **kwargs: Any) -> list[Any]:
    if use_async:
        return [item async for item in p.async_output_iterator(**kwargs)]
    return list(p.output_iterator(**kwargs))


async def test_output_iterator_yields_each_item_once(mock_api: Any, use_async: bool) -> None:
    mock_api.add("GET", "/v1/predictions/p1", pred(status="processing", output=["a", "b"]))
    mock_api.add("GET", "/v1/predictions/p1", pred(status="processing", output=["a", "b"]))
    mock_api.add("GET", "/v1/predictions/p1", pred(status="succeeded", output=["a", "b", "c", "d"]))
    p = Prediction._from_api(pred(status="processing", output=["a"]), mock_api.client())
    assert await _collect(p, use_async) == ["a", "b", "c", "d"]
    assert len(mock_api.requests) == 3


async def test_output_iterator_completed_prediction(mock_api: Any, use_async: bool) -> None:
    p = Prediction._from_api(pred(status="succeeded", output=["x", "y"]), mock_api.client())
    assert await _collect(p, use_async) == ["x", "y"]
    s = Prediction._from_api(pred(status="succeeded", output="whole string"), mock_api.client())
    assert await _collect(s, use_async) == ["whole string"]
    assert mock_api.requests == []


async def test_output_iterator_non_list_at_completion(mock_api: Any, use_async: bool) -> None:
    mock_api.add("GET", "/v1/predictions/p1", pred(status="succeeded", output={"k": 1}))
    p = Prediction._from_api(pred(status="processing"), mock_api.client())
    assert await _collect(p, use_async) == [{"k": 1}]


@pytest.mark.parametrize(
    ("status", "error_cls"),
    [
        ("failed", ModelError),
        ("canceled", PredictionCanceledError),
        ("aborted", PredictionAbortedError),
    ],
)
async def test_output_iterator_raises(
    mock_api: Any, use_async: bool, status: str, error_cls: type[Exception]
) -> None:
    mock_api.add("GET", "/v1/predictions/p1", pred(status=status, output=["a", "b"], error="bad"))
    p = Prediction._from_api(pred(status="processing", output=["a"]), mock_api.client())
    got: list[Any] = []
    with pytest.raises(error_cls) as info:
        if use_async:
            async for item in p.async_output_iterator():
                got.append(item)
        else:
            for item in p.output_iterator():
                got.append(item)
    assert type(info.value) is error_cls
    assert got == ["a", "b"]
    assert info.value.prediction is p  # type: ignore[attr-defined]


async def test_output_iterator_unknown_terminal_status(mock_api: Any, use_async: bool) -> None:
    mock_api.add(
        "GET", "/v1/predictions/p1", pred(status="exploded", completed_at="2024-01-01T00:00:01Z")
    )
    p = Prediction._from_api(pred(status="processing"), mock_api.client())
    with pytest.raises(ModelError, match="exploded"):
        await _collect(p, use_async)


async def test_output_iterator_timeout(mock_api: Any, use_async: bool, clock: FakeClock) -> None:
    mock_api.add("GET", "/v1/predictions/p1", pred(status="processing", output=["a"]))
    p = Prediction._from_api(pred(status="processing"), mock_api.client(poll_interval=1.0))
    with pytest.raises(PredictionTimeoutError):
        await _collect(p, use_async, timeout=2.5)
    assert sum(clock.sleeps) == pytest.approx(2.5)


async def test_output_iterator_validates_timeout_on_first_iteration(mock_api: Any) -> None:
    # (Async) generator functions as in 1.0.x, so arguments are checked when iteration starts.
    p = Prediction._from_api(pred(), mock_api.client())
    with pytest.raises(ValueError, match="timeout"):
        next(p.output_iterator(timeout=-1))
    with pytest.raises(ValueError, match="timeout"):
        await p.async_output_iterator(timeout=-1).__anext__()


async def test_stream_without_url_raises_on_first_iteration(mock_api: Any) -> None:
    p = Prediction._from_api(pred(), mock_api.client())
    with pytest.raises(ReplicateError, match="Model does not support streaming"):
        next(p.stream())
    with pytest.raises(ReplicateError, match="Model does not support streaming"):
        await p.async_stream().__anext__()


def test_create_prediction_params_typed_dict() -> None:
    keys = set(Predictions.CreatePredictionParams.__annotations__)
    assert {"wait", "cancel_after", "webhook", "webhook_completed", "webhook_events_filter"} <= keys
    assert {"stream", "file_encoding_strategy", "extra_body"} <= keys


async def test_get_tolerates_unexpected_types(mock_api: Any, invoke: Any) -> None:
    mock_api.add("GET", "/v1/predictions/p1", pred(logs=3, status="new-status", extra={"k": 1}))
    p = await invoke(mock_api.client().predictions, "get", "p1")
    assert p.logs == 3 and p.status == "new-status" and p.extra == {"k": 1}


async def test_get_rejects_non_object_body(mock_api: Any, invoke: Any) -> None:
    from replicate.exceptions import APIResponseValidationError

    mock_api.add("GET", "/v1/predictions/p1", [1, 2])
    mock_api.add("GET", "/v1/predictions/p2", status=200, text="<html>oops</html>")
    client = mock_api.client()
    with pytest.raises(APIResponseValidationError):
        await invoke(client.predictions, "get", "p1")
    with pytest.raises(APIResponseValidationError):
        await invoke(client.predictions, "get", "p2")
