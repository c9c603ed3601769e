"""run() / async_run(): routing, completion rules, polling, schema lookup, iterators, timeouts."""

from __future__ import annotations

import asyncio
import io
import json
import types
from typing import Any

import httpx
import pytest

from replicate.client import Client
from replicate.exceptions import (
    ModelError,
    PredictionAbortedError,
    PredictionCanceledError,
    PredictionTimeoutError,
    ReplicateReadTimeout,
    UnprocessableEntityError,
)
from replicate.helpers import FileOutput
from replicate.run import SchemaCache

MODES = ["sync", "async"]
TOKEN = "r8_run_secret"
API = "https://api.replicate.com"
VID = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
OWNER, NAME = "acme", "hello"
IMAGE = "https://replicate.delivery/pbxt/out.png"


def schema(iterator: bool = False, concatenate: bool = False, array: bool = False) -> dict:
    output: dict[str, Any] = {"type": "string"}
    if iterator or array:
        output = {"type": "array", "items": {"type": "string"}}
    if iterator:
        output["x-cog-array-type"] = "iterator"
    if concatenate:
        output["x-cog-array-display"] = "concatenate"
    return {"components": {"schemas": {"Output": output}}}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REPLICATE_API_TOKEN", "REPLICATE_BASE_URL", "REPLICATE_POLL_INTERVAL"):
        monkeypatch.delenv(name, raising=False)


def prediction(status: str, output: Any = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "p1",
        "model": f"{OWNER}/{NAME}",
        "version": VID,
        "status": status,
        "input": {},
        "output": output,
        "error": extra.pop("error", None),
        "logs": "",
        "created_at": "2024-01-01T00:00:00Z",
        "completed_at": "2024-01-01T00:00:01Z" if status in ("succeeded", "failed") else None,
        "urls": {
            "get": f"{API}/v1/predictions/p1",
            "cancel": f"{API}/v1/predictions/p1/cancel",
            "web": "https://replicate.com/p/p1",
        },
        **extra,
    }


class FakeAPI:
    """A fake Replicate API.

    ``create``: (status code, prediction JSON, headers) for the create. ``polls``: successive GET
    answers (the last repeats). ``version``: the version JSON (``None`` → 404).
    """

    def __init__(
        self,
        create: tuple[int, dict[str, Any], dict[str, str]],
        polls: list[dict[str, Any]] | None = None,
        version: dict[str, Any] | None = None,
        version_status: int = 200,
    ) -> None:
        self.create = create
        self.polls = polls or []
        self.version = version
        self.version_status = version_status
        self.requests: list[httpx.Request] = []
        self.create_error: Exception | None = None
        self.on_poll: Any = None

    @property
    def log(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if request.method == "POST" and path == "/v1/files":
            return httpx.Response(201, json={"id": "f", "urls": {"get": f"{API}/v1/files/f"}})
        if request.method == "POST" and path.endswith("/cancel"):
            return httpx.Response(200, json=prediction("canceled"))
        if request.method == "POST":
            if self.create_error is not None:
                raise self.create_error
            status, body, headers = self.create
            return httpx.Response(status, json=body, headers=headers)
        if request.method == "GET" and path == "/v1/predictions/p1":
            if self.on_poll is not None:
                self.on_poll()
            n = sum(1 for r in self.requests if r.url.path == path)
            if not self.polls:
                return httpx.Response(200, json=self.create[1])
            return httpx.Response(200, json=self.polls[min(n, len(self.polls)) - 1])
        if request.method == "GET" and "/versions/" in path:
            if self.version is None:
                return httpx.Response(self.version_status, json={"detail": "nope"})
            return httpx.Response(200, json=self.version)
        return httpx.Response(404, json={"detail": f"unexpected {request.method} {path}"})


DONE = {"preference-applied": "wait"}


def version_json(s: dict | None = None, cog: str = "0.9.0") -> dict[str, Any]:
    return {"id": VID, "cog_version": cog, "openapi_schema": s or schema()}


def make_client(api: FakeAPI, **kwargs: Any) -> Client:
    client = Client(TOKEN, transport=httpx.MockTransport(api), **kwargs)
    client.poll_interval = 0.0
    return client


def do_run(client: Client, mode: str, ref: Any, input: Any = None, **params: Any) -> Any:
    if mode == "sync":
        return client.run(ref, input, **params)
    return asyncio.run(client.async_run(ref, input, **params))


def collect(result: Any, mode: str) -> list[Any]:
    if mode == "sync":
        assert isinstance(result, types.GeneratorType)
        return list(result)
    assert isinstance(result, types.AsyncGeneratorType)

    async def go() -> list[Any]:
        return [item async for item in result]

    return asyncio.run(go())


def run_and_collect(client: Client, mode: str, ref: Any, **params: Any) -> list[Any]:
    """Run and consume an iterator output inside one event loop (async mode)."""
    if mode == "sync":
        return collect(client.run(ref, **params), mode)

    async def go() -> list[Any]:
        result = await client.async_run(ref, **params)
        assert isinstance(result, types.AsyncGeneratorType)
        return [item async for item in result]

    return asyncio.run(go())


# --------------------------------------------------------------------------------------------
# refs and routing
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("ref", "path", "version"),
    [
        (f"{OWNER}/{NAME}", f"/v1/models/{OWNER}/{NAME}/predictions", None),
        (f"{OWNER}/{NAME}:{VID}", "/v1/predictions", VID),
        (VID, "/v1/predictions", VID),
    ],
)
def test_routing_and_wait_header(mode: str, ref: str, path: str, version: str | None) -> None:
    api = FakeAPI((201, prediction("succeeded", "hi"), DONE), version=version_json())
    out = do_run(make_client(api), mode, ref, {"text": "x"})
    assert out == "hi"
    create = api.requests[0]
    assert create.method == "POST" and create.url.path == path
    assert create.headers["prefer"] == "wait"
    assert "cancel-after" not in create.headers
    body = json.loads(create.content)
    assert list(body) == (["input", "version"] if version else ["input"])
    assert body["input"] == {"text": "x"}
    if version:
        assert body["version"] == VID
        # The lookup comes after the create; for a bare id the model comes from the response.
        assert api.log[1] == f"GET /v1/models/{OWNER}/{NAME}/versions/{VID}"
    else:
        assert api.log == [f"POST {path}"]


@pytest.mark.parametrize("mode", MODES)
def test_version_and_deployment_refs(mode: str) -> None:
    from replicate.deployment import Deployment
    from replicate.version import Version

    api = FakeAPI((201, prediction("succeeded", ["a", "b"]), DONE))
    client = make_client(api)
    version = Version._from_api({"id": VID, "openapi_schema": schema(iterator=True)}, client)
    assert run_and_collect(client, mode, version) == ["a", "b"]
    assert api.log == ["POST /v1/predictions"]  # the Version carries its schema: no lookup
    deployment = Deployment._from_api({"owner": "o", "name": "d"}, client)
    assert do_run(client, mode, deployment) == ["a", "b"]
    assert api.log[-1] == "POST /v1/deployments/o/d/predictions"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ref", ["nope", "a/b/c", 42, None, "owner/"])
def test_invalid_refs_raise_before_io(mode: str, ref: Any) -> None:
    api = FakeAPI((201, prediction("succeeded"), DONE))
    with pytest.raises(ValueError):
        do_run(make_client(api), mode, ref)
    assert api.requests == []


@pytest.mark.parametrize("mode", MODES)
def test_unknown_params_raise_before_io(mode: str) -> None:
    api = FakeAPI((201, prediction("succeeded"), DONE))
    with pytest.raises(TypeError, match="bogus"):
        do_run(make_client(api), mode, f"{OWNER}/{NAME}", bogus=1)
    with pytest.raises(TypeError, match="progress"):
        do_run(make_client(api), mode, f"{OWNER}/{NAME}", progress=5)
    assert api.requests == []


@pytest.mark.parametrize("mode", MODES)
def test_files_in_input_are_uploaded_first(mode: str) -> None:
    api = FakeAPI((201, prediction("succeeded", "ok"), DONE))
    do_run(make_client(api), mode, f"{OWNER}/{NAME}", {"image": io.BytesIO(b"png")})
    assert api.log == ["POST /v1/files", f"POST /v1/models/{OWNER}/{NAME}/predictions"]
    assert json.loads(api.requests[1].content)["input"] == {"image": f"{API}/v1/files/f"}


@pytest.mark.parametrize("mode", MODES)
def test_params_forwarded(mode: str) -> None:
    api = FakeAPI((201, prediction("succeeded", "ok"), DONE))
    do_run(
        make_client(api),
        mode,
        f"{OWNER}/{NAME}",
        wait=10,
        cancel_after="1h",
        webhook="https://hook.example/",
        webhook_events_filter=["completed"],
        extra_headers={"X-Extra": "1"},
        extra_body={"new_field": True},
    )
    create = api.requests[0]
    assert create.headers["prefer"] == "wait=10"
    assert create.headers["cancel-after"] == "1h"
    assert create.headers["x-extra"] == "1"
    body = json.loads(create.content)
    assert list(body) == ["input", "webhook", "webhook_events_filter", "new_field"]


# --------------------------------------------------------------------------------------------
# completion (docs/predictions.md, "The sync-complete rule")
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_sync_complete_processing_is_final(mode: str) -> None:
    api = FakeAPI((201, prediction("processing", IMAGE), DONE))
    out = do_run(make_client(api), mode, f"{OWNER}/{NAME}")
    assert isinstance(out, FileOutput) and out.url == IMAGE
    assert api.log == [f"POST /v1/models/{OWNER}/{NAME}/predictions"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("status", "headers"),
    [(201, {}), (202, DONE), (202, {})],
    ids=["201-no-preference-applied", "202-applied", "202"],
)
def test_incomplete_create_polls(mode: str, status: int, headers: dict[str, str]) -> None:
    api = FakeAPI(
        (status, prediction("processing", "partial"), headers),
        polls=[prediction("processing", "partial"), prediction("succeeded", "final")],
    )
    seen: list[str] = []
    out = do_run(
        make_client(api), mode, f"{OWNER}/{NAME}", progress=lambda p: seen.append(p.status)
    )
    assert out == "final"
    assert api.log.count("GET /v1/predictions/p1") == 2
    assert seen == ["processing", "processing", "succeeded"]


@pytest.mark.parametrize("mode", MODES)
def test_starting_with_preference_applied_polls(mode: str) -> None:
    api = FakeAPI((201, prediction("starting"), DONE), polls=[prediction("succeeded", "x")])
    assert do_run(make_client(api), mode, f"{OWNER}/{NAME}") == "x"
    assert "GET /v1/predictions/p1" in api.log


@pytest.mark.parametrize("mode", MODES)
def test_wait_false_sends_no_prefer_and_still_polls(mode: str) -> None:
    api = FakeAPI((201, prediction("starting"), {}), polls=[prediction("succeeded", "x")])
    assert do_run(make_client(api), mode, f"{OWNER}/{NAME}", wait=False) == "x"
    assert "prefer" not in api.requests[0].headers


# --------------------------------------------------------------------------------------------
# terminal handling (docs/predictions.md, "Final statuses and errors")
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("where", ["create", "poll"])
@pytest.mark.parametrize(
    ("status", "error_cls", "message"),
    [
        ("failed", ModelError, "boom"),
        ("canceled", PredictionCanceledError, "Prediction p1 was canceled"),
        ("aborted", PredictionAbortedError, "Prediction p1 was aborted before it started"),
    ],
)
def test_unsuccessful_terminal_statuses_raise(
    mode: str, where: str, status: str, error_cls: type, message: str
) -> None:
    final = prediction(status, error="boom" if status == "failed" else None)
    if where == "create":
        api = FakeAPI((201, final, DONE))
    else:
        api = FakeAPI((201, prediction("starting"), DONE), polls=[final])
    with pytest.raises(error_cls) as info:
        do_run(make_client(api), mode, f"{OWNER}/{NAME}")
    assert str(info.value) == message
    assert info.value.prediction.status == status
    assert isinstance(info.value, ModelError)


@pytest.mark.parametrize("mode", MODES)
def test_unknown_terminal_status_raises_model_error(mode: str) -> None:
    odd = prediction("exploded", completed_at="2024-01-01T00:00:02Z")
    api = FakeAPI((201, prediction("starting"), {}), polls=[prediction("weird"), odd])
    with pytest.raises(ModelError, match="exploded"):
        do_run(make_client(api), mode, f"{OWNER}/{NAME}")


@pytest.mark.parametrize("mode", MODES)
def test_create_errors_surface_first(mode: str) -> None:
    api = FakeAPI((422, {"detail": "bad input"}, {}), version=version_json())
    with pytest.raises(UnprocessableEntityError):
        do_run(make_client(api), mode, f"{OWNER}/{NAME}:{VID}")
    assert api.log == ["POST /v1/predictions"]  # no version lookup after a failed create


@pytest.mark.parametrize("mode", MODES)
def test_read_timeout_on_create_is_not_retried(mode: str) -> None:
    api = FakeAPI((201, prediction("succeeded"), DONE))
    api.create_error = httpx.ReadTimeout("slow")
    with pytest.raises(ReplicateReadTimeout):
        do_run(make_client(api), mode, f"{OWNER}/{NAME}")
    assert api.log == [f"POST /v1/models/{OWNER}/{NAME}/predictions"]


# --------------------------------------------------------------------------------------------
# output handling
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_use_file_output(mode: str) -> None:
    out = {"images": [IMAGE], "meta": {"url": IMAGE}, "n": 1}
    api = FakeAPI((201, prediction("succeeded", out), DONE))
    client = make_client(api)
    got = do_run(client, mode, f"{OWNER}/{NAME}")
    assert isinstance(got["images"][0], FileOutput) and isinstance(got["meta"]["url"], FileOutput)
    assert got["images"][0]._client is client
    raw = do_run(client, mode, f"{OWNER}/{NAME}", use_file_output=False)
    assert raw == out


@pytest.mark.parametrize("mode", MODES)
def test_schema_lookup_is_cached_and_bounded(mode: str) -> None:
    api = FakeAPI((201, prediction("succeeded", ["a"]), DONE), version=version_json(schema()))
    client = make_client(api)
    for _ in range(3):
        assert do_run(client, mode, f"{OWNER}/{NAME}:{VID}") == ["a"]
    assert api.log.count(f"GET /v1/models/{OWNER}/{NAME}/versions/{VID}") == 1
    cache = client._schema_cache
    assert isinstance(cache, SchemaCache) and cache.maxsize >= 128
    small = SchemaCache(maxsize=2)
    for key in "abc":
        small.put(key, {})
    assert small.get("a") is None and small.get("c") == {} and len(small) == 2


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("failure", [404, 500])
def test_failed_lookup_is_not_fatal(mode: str, failure: int) -> None:
    api = FakeAPI(
        (201, prediction("succeeded", ["a", "b"]), DONE), version=None, version_status=failure
    )
    client = Client(TOKEN, transport=httpx.MockTransport(api), retry=False)
    assert do_run(client, mode, f"{OWNER}/{NAME}:{VID}") == ["a", "b"]
    do_run(client, mode, f"{OWNER}/{NAME}:{VID}")
    lookups = api.log.count(f"GET /v1/models/{OWNER}/{NAME}/versions/{VID}")
    assert lookups == (1 if failure == 404 else 2)  # permanent failures are remembered


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("use_file_output", [True, False])
def test_iterator_output_complete(mode: str, use_file_output: bool) -> None:
    api = FakeAPI(
        (201, prediction("succeeded", [IMAGE, "text"]), DONE),
        version=version_json(schema(iterator=True, concatenate=True)),
    )
    items = run_and_collect(
        make_client(api), mode, f"{OWNER}/{NAME}:{VID}", use_file_output=use_file_output
    )
    assert [str(i) for i in items] == [IMAGE, "text"]
    assert isinstance(items[0], FileOutput) is use_file_output


@pytest.mark.parametrize("mode", MODES)
def test_old_cog_arrays_are_iterators(mode: str) -> None:
    api = FakeAPI(
        (201, prediction("succeeded", ["x", "y"]), DONE),
        version=version_json(schema(array=True), cog="0.3.8"),
    )
    assert run_and_collect(make_client(api), mode, f"{OWNER}/{NAME}:{VID}") == ["x", "y"]


@pytest.mark.parametrize("mode", MODES)
def test_iterator_output_polls_lazily(mode: str) -> None:
    api = FakeAPI(
        (201, prediction("starting"), DONE),
        polls=[
            prediction("processing", ["a"]),
            prediction("processing", ["a", "b"]),
            prediction("succeeded", ["a", "b", "c"]),
        ],
        version=version_json(schema(iterator=True)),
    )
    client = make_client(api)
    if mode == "sync":
        result = client.run(f"{OWNER}/{NAME}:{VID}")
        assert isinstance(result, types.GeneratorType)
        assert "GET /v1/predictions/p1" not in api.log  # nothing polled before iteration
        assert list(result) == ["a", "b", "c"]
    else:
        assert run_and_collect(client, mode, f"{OWNER}/{NAME}:{VID}") == ["a", "b", "c"]
    assert api.log.count("GET /v1/predictions/p1") == 3


@pytest.mark.parametrize("mode", MODES)
def test_iterator_output_failure_raises_during_iteration(mode: str) -> None:
    api = FakeAPI(
        (201, prediction("processing", ["a"]), {}),
        polls=[prediction("failed", ["a", "b"], error="oops")],
        version=version_json(schema(iterator=True)),
    )
    client = make_client(api)
    got: list[Any] = []
    with pytest.raises(ModelError, match="oops"):
        if mode == "sync":
            for item in client.run(f"{OWNER}/{NAME}:{VID}"):
                got.append(item)
        else:

            async def go() -> None:
                async for item in await client.async_run(f"{OWNER}/{NAME}:{VID}"):
                    got.append(item)

            asyncio.run(go())
    assert got == ["a", "b"]


# --------------------------------------------------------------------------------------------
# timeout (docs/predictions.md, "Deadlines and timeouts") and interruption
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_timeout_cancels_and_raises(mode: str) -> None:
    api = FakeAPI((201, prediction("starting"), {}), polls=[prediction("processing")])
    client = make_client(api)
    client.poll_interval = 0.01
    with pytest.raises(PredictionTimeoutError) as info:
        do_run(client, mode, f"{OWNER}/{NAME}", timeout=0.2)
    err = info.value
    assert isinstance(err, TimeoutError)
    assert err.canceled is True and err.timeout == 0.2
    assert err.prediction.id == "p1"
    assert api.log[-1] == "POST /v1/predictions/p1/cancel"
    create = api.requests[0]
    assert create.headers["cancel-after"] == "5s"
    assert create.headers["prefer"] == "wait=1"  # the wait is bounded by the remaining time


@pytest.mark.parametrize("mode", MODES)
def test_timeout_cancel_failure_is_logged_not_raised(mode: str) -> None:
    class NoCancel(FakeAPI):
        def __call__(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/cancel"):
                self.requests.append(request)
                return httpx.Response(500, json={"detail": "down"})
            return super().__call__(request)

    api = NoCancel((201, prediction("starting"), {}), polls=[prediction("processing")])
    client = Client(TOKEN, transport=httpx.MockTransport(api), retry=False)
    client.poll_interval = 0.0
    with pytest.raises(PredictionTimeoutError) as info:
        do_run(client, mode, f"{OWNER}/{NAME}", timeout=0.05)
    assert info.value.canceled is False


@pytest.mark.parametrize("mode", MODES)
def test_timeout_explicit_cancel_after_kept(mode: str) -> None:
    api = FakeAPI((201, prediction("succeeded", "x"), DONE))
    do_run(make_client(api), mode, f"{OWNER}/{NAME}", timeout=100, cancel_after=600)
    assert api.requests[0].headers["cancel-after"] == "600s"
    assert api.requests[0].headers["prefer"] == "wait"


def test_keyboard_interrupt_cancels_the_prediction() -> None:
    api = FakeAPI((201, prediction("starting"), {}), polls=[prediction("processing")])
    client = make_client(api)

    def interrupt() -> None:
        raise KeyboardInterrupt

    api.on_poll = interrupt
    with pytest.raises(KeyboardInterrupt):
        client.run(f"{OWNER}/{NAME}")
    assert api.log[-1] == "POST /v1/predictions/p1/cancel"


async def test_async_task_cancellation_cancels_the_prediction() -> None:
    api = FakeAPI((201, prediction("starting"), {}), polls=[prediction("processing")])
    client = make_client(api)
    client.poll_interval = 0.01
    polled = asyncio.Event()
    api.on_poll = polled.set
    task = asyncio.create_task(client.async_run(f"{OWNER}/{NAME}"))
    await polled.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert api.log[-1] == "POST /v1/predictions/p1/cancel"


async def test_async_progress_may_be_a_coroutine_function() -> None:
    api = FakeAPI((201, prediction("starting"), {}), polls=[prediction("succeeded", "x")])
    seen: list[str] = []

    async def progress(p: Any) -> None:
        await asyncio.sleep(0)
        seen.append(p.status)

    assert await make_client(api).async_run(f"{OWNER}/{NAME}", progress=progress) == "x"
    assert seen == ["starting", "succeeded"]


@pytest.mark.parametrize("mode", MODES)
def test_deadline_passed_before_create_sends_nothing(mode: str) -> None:
    api = FakeAPI((201, prediction("succeeded", "x"), DONE))
    with pytest.raises(PredictionTimeoutError) as info:
        do_run(make_client(api), mode, f"{OWNER}/{NAME}", timeout=0)
    assert info.value.prediction is None and info.value.canceled is False
    assert api.requests == []


def test_keyboard_interrupt_right_after_the_create_cancels() -> None:
    api = FakeAPI((201, prediction("starting"), {}), version=version_json())

    def interrupt(p: Any) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_client(api).run(f"{OWNER}/{NAME}:{VID}", progress=interrupt)
    assert api.log == ["POST /v1/predictions", "POST /v1/predictions/p1/cancel"]
