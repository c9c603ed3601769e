"""trainings namespace and Training resource (sync and async): every create form, wire format,
cancel/reload/wait, parsing."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import httpx
import pytest

from replicate.client import Client
from replicate.exceptions import NotFoundError, PredictionTimeoutError
from replicate.pagination import Page
from replicate.training import Training, Trainings

MODES = ["sync", "async"]
VID = "39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b"
TRAIN_PATH = f"/v1/models/stability-ai/sdxl/versions/{VID}/trainings"


def training(status: str = "starting", **extra: Any) -> dict[str, Any]:
    return {
        "id": "tr1",
        "model": "stability-ai/sdxl",
        "version": VID,
        "input": {"a": 1},
        "status": status,
        "created_at": "2023-08-16T19:33:26.678378653Z",
        "urls": {
            "get": "https://api.replicate.com/v1/trainings/tr1",
            "cancel": "https://api.replicate.com/v1/trainings/tr1/cancel",
        },
        **extra,
    }


class Api:
    """A MockTransport handler: answers (METHOD, raw path) from queues of canned responses.

    The last response of a queue is repeated; unknown routes answer 404.
    """

    def __init__(self, routes: dict[tuple[str, str], Any] | None = None) -> None:
        self.routes: dict[tuple[str, str], list[Any]] = {}
        for key, value in (routes or {}).items():
            self.routes[key] = list(value) if isinstance(value, list) else [value]
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        queue = self.routes.get((request.method, request.url.raw_path.decode()))
        if not queue:
            return httpx.Response(404, json={"detail": "not found"})
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, httpx.Response):
            return answer
        status = 201 if request.method == "POST" and request.url.path.endswith("trainings") else 200
        return httpx.Response(status, json=answer)

    def client(self, **kwargs: Any) -> Client:
        return Client("r8_test", transport=httpx.MockTransport(self), retry=False, **kwargs)

    def bodies(self, path: str) -> list[Any]:
        return [json.loads(r.content) for r in self.requests if r.url.path == path]


def invoke(mode: str, target: Any, name: str, /, *args: Any, **kwargs: Any) -> Any:
    if mode == "sync":
        return getattr(target, name)(*args, **kwargs)
    return asyncio.run(getattr(target, f"async_{name}")(*args, **kwargs))


def create(mode: str, client: Client, *args: Any, **kwargs: Any) -> Training:
    result: Training = invoke(mode, client.trainings, "create", *args, **kwargs)
    return result


# --------------------------------------------------------------------------- list/get/cancel


@pytest.mark.parametrize("mode", MODES)
def test_list_and_cursor(mode: str) -> None:
    next_url = "https://api.replicate.com/v1/trainings?cursor=c2"
    api = Api(
        {
            ("GET", "/v1/trainings"): {"next": next_url, "previous": None, "results": [training()]},
            ("GET", "/v1/trainings?cursor=c2"): {"next": None, "results": []},
        }
    )
    client = api.client()
    assert isinstance(client.trainings, Trainings)
    page = invoke(mode, client.trainings, "list")
    assert isinstance(page, Page)
    assert [t.id for t in page] == ["tr1"]
    assert isinstance(page[0], Training) and page[0]._client is client
    assert str(api.requests[0].url) == "https://api.replicate.com/v1/trainings"
    second = invoke(mode, client.trainings, "list", page.next)
    assert str(api.requests[1].url) == next_url
    assert len(second) == 0
    with pytest.raises(ValueError, match="cursor cannot be None"):
        invoke(mode, client.trainings, "list", None)
    assert len(api.requests) == 2


@pytest.mark.parametrize("mode", MODES)
def test_get(mode: str) -> None:
    api = Api({("GET", "/v1/trainings/tr1"): training("processing")})
    client = api.client()
    result = invoke(mode, client.trainings, "get", "tr1")
    (request,) = api.requests
    assert (request.method, str(request.url)) == (
        "GET",
        "https://api.replicate.com/v1/trainings/tr1",
    )
    assert isinstance(result, Training)
    assert result.status == "processing"
    assert result._client is client
    with pytest.raises(NotFoundError):
        invoke(mode, client.trainings, "get", "missing")
    with pytest.raises(ValueError, match="training id"):
        invoke(mode, client.trainings, "get", "")


@pytest.mark.parametrize("mode", MODES)
def test_get_quotes_the_id(mode: str) -> None:
    api = Api()
    with pytest.raises(NotFoundError):
        invoke(mode, api.client().trainings, "get", "a/b c")
    assert api.requests[0].url.raw_path == b"/v1/trainings/a%2Fb%20c"


@pytest.mark.parametrize("mode", MODES)
def test_cancel_is_marked_idempotent(mode: str) -> None:
    api = Api({("POST", "/v1/trainings/tr1/cancel"): training("canceled")})
    result = invoke(mode, api.client().trainings, "cancel", "tr1")
    (request,) = api.requests
    assert request.method == "POST"
    assert request.url.path == "/v1/trainings/tr1/cancel"
    assert request.content == b""
    assert request.extensions.get("replicate.idempotent") is True
    assert result.status == "canceled"


# --------------------------------------------------------------------------- create forms


def _check_create_request(api: Api, body: dict[str, Any], path: str = TRAIN_PATH) -> None:
    (request,) = api.requests
    assert request.method == "POST"
    assert request.url.raw_path.decode() == path
    assert request.headers["content-type"] == "application/json"
    assert "prefer" not in request.headers
    assert "cancel-after" not in request.headers
    sent = json.loads(request.content)
    assert sent == body
    assert list(sent) == list(body), "body key order"


@pytest.mark.parametrize("mode", MODES)
def test_create_legacy_positional_form(mode: str) -> None:
    api = Api({("POST", TRAIN_PATH): training()})
    client = api.client()
    result = create(
        mode,
        client,
        f"stability-ai/sdxl:{VID}",
        {"a": 1},
        "me/dest",
        "https://hook.example/t",
        "https://hook.example/done",
        ["completed"],
    )
    _check_create_request(
        api,
        {
            "input": {"a": 1},
            "destination": "me/dest",
            "webhook": "https://hook.example/t",
            "webhook_completed": "https://hook.example/done",
            "webhook_events_filter": ["completed"],
        },
    )
    assert isinstance(result, Training)
    assert result.id == "tr1" and result._client is client


@pytest.mark.parametrize("mode", MODES)
def test_create_legacy_positional_with_keyword_destination(mode: str) -> None:
    api = Api({("POST", TRAIN_PATH): training()})
    create(mode, api.client(), f"stability-ai/sdxl:{VID}", {"a": 1}, destination="me/dest")
    _check_create_request(api, {"input": {"a": 1}, "destination": "me/dest"})


@pytest.mark.parametrize("mode", MODES)
def test_create_keyword_shorthand(mode: str) -> None:
    api = Api({("POST", TRAIN_PATH): training()})
    create(
        mode,
        api.client(),
        version=f"stability-ai/sdxl:{VID}",
        input={"a": 1},
        destination="me/dest",
        webhook="https://hook.example/t",
    )
    _check_create_request(
        api, {"input": {"a": 1}, "destination": "me/dest", "webhook": "https://hook.example/t"}
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", ["stability-ai/sdxl", ("stability-ai", "sdxl")])
def test_create_model_and_version_positional(mode: str, model: Any) -> None:
    api = Api({("POST", TRAIN_PATH): training()})
    create(mode, api.client(), model, VID, {"a": 1}, destination=("me", "dest"))
    _check_create_request(api, {"input": {"a": 1}, "destination": "me/dest"})


@pytest.mark.parametrize("mode", MODES)
def test_create_model_and_version_keywords_with_resource_objects(mode: str) -> None:
    from replicate.model import Model
    from replicate.version import Version

    api = Api({("POST", TRAIN_PATH): training()})
    model = Model(owner="stability-ai", name="sdxl")
    version = Version(id=VID)
    destination = Model(owner="me", name="dest")
    create(
        mode,
        api.client(),
        model=model,
        version=version,
        input={"a": 1},
        destination=destination,
    )
    _check_create_request(api, {"input": {"a": 1}, "destination": "me/dest"})


@pytest.mark.parametrize("mode", MODES)
def test_create_without_input_sends_empty_object(mode: str) -> None:
    api = Api({("POST", TRAIN_PATH): training()})
    create(mode, api.client(), version=f"stability-ai/sdxl:{VID}", destination="me/dest")
    _check_create_request(api, {"input": {}, "destination": "me/dest"})


@pytest.mark.parametrize("mode", MODES)
def test_create_quotes_path_parts(mode: str) -> None:
    api = Api()
    with pytest.raises(NotFoundError):
        create(mode, api.client(), "o/n", "v 1", {}, destination="me/dest")
    assert api.requests[0].url.raw_path == b"/v1/models/o/n/versions/v%201/trainings"


@pytest.mark.parametrize("mode", MODES)
def test_create_uploads_files_in_input(mode: str) -> None:
    file_json = {
        "id": "f1",
        "urls": {"get": "https://api.replicate.com/v1/files/f1"},
        "content_type": "application/zip",
        "size": 3,
        "checksums": {},
        "metadata": {},
        "created_at": "2024-01-01T00:00:00Z",
        "expires_at": "2024-01-02T00:00:00Z",
    }
    api = Api(
        {
            ("POST", "/v1/files"): httpx.Response(201, json=file_json),
            ("POST", TRAIN_PATH): training(),
        }
    )
    data = io.BytesIO(b"zip")
    data.name = "data.zip"
    create(mode, api.client(), f"stability-ai/sdxl:{VID}", {"images": data}, "me/dest")
    assert [r.url.path for r in api.requests] == ["/v1/files", TRAIN_PATH]
    assert api.bodies(TRAIN_PATH) == [
        {"input": {"images": "https://api.replicate.com/v1/files/f1"}, "destination": "me/dest"}
    ]


@pytest.mark.parametrize("mode", MODES)
def test_create_base64_strategy_inlines_files(mode: str) -> None:
    api = Api({("POST", TRAIN_PATH): training()})
    data = io.BytesIO(b"Hello, World!")
    data.name = "test.txt"
    create(
        mode,
        api.client(),
        f"stability-ai/sdxl:{VID}",
        {"f": data},
        "me/dest",
        file_encoding_strategy="base64",
    )
    _check_create_request(
        api,
        {"input": {"f": "data:text/plain;base64,SGVsbG8sIFdvcmxkIQ=="}, "destination": "me/dest"},
    )


@pytest.mark.parametrize("mode", MODES)
def test_create_extras(mode: str) -> None:
    api = Api({("POST", TRAIN_PATH + "?q=1"): training()})
    create(
        mode,
        api.client(),
        version=f"stability-ai/sdxl:{VID}",
        destination="me/dest",
        extra_headers={"X-H": "1"},
        extra_query={"q": "1"},
        extra_body={"new_field": True},
    )
    (request,) = api.requests
    assert request.headers["x-h"] == "1"
    assert json.loads(request.content) == {"input": {}, "destination": "me/dest", "new_field": True}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (("stability-ai/sdxl", {"a": 1}, "me/dest"), {}, ValueError, "A version is required"),
        (
            (),
            {"version": "stability-ai/sdxl", "destination": "me/dest"},
            ValueError,
            "A version is required",
        ),
        (
            (),
            {"version": "stability-ai/sdxl:", "destination": "me/dest"},
            ValueError,
            "A version is required",
        ),
        ((), {"model": "a/b", "destination": "me/dest"}, ValueError, "A version is required"),
        (
            (),
            {"model": "a/b", "version": 3, "destination": "me/dest"},
            ValueError,
            "A version is required",
        ),
        ((), {"input": {}, "destination": "me/dest"}, ValueError, "model and version or shorthand"),
        ((f"a/b:{VID}", {}), {}, ValueError, "A destination must be provided"),
        ((), {"version": f"a/b:{VID}"}, ValueError, "A destination must be provided"),
        ((), {"version": f"a/b:{VID}", "destination": 7}, ValueError, "destination must be"),
        (
            (),
            {"model": "nope", "version": VID, "destination": "me/dest"},
            ValueError,
            "model must be",
        ),
        ((), {"version": f"a/b:{VID}", "destination": "d/e", "wait": True}, TypeError, "'wait'"),
        (
            (),
            {"version": f"a/b:{VID}", "destination": "d/e", "bogus": 1, "cancel_after": 5},
            TypeError,
            "'bogus', 'cancel_after'",
        ),
        (
            (f"a/b:{VID}", {}, "d/e"),
            {"destination": "x/y"},
            TypeError,
            "multiple values for argument 'destination'",
        ),
        (
            (f"a/b:{VID}", {}),
            {"input": {}, "destination": "x/y"},
            TypeError,
            "multiple values for argument 'input'",
        ),
        (
            ("a/b", VID, {}),
            {"model": "a/b", "destination": "x/y"},
            TypeError,
            "multiple values for argument 'model'",
        ),
        (("a/b", VID, {}, "extra"), {"destination": "x/y"}, TypeError, "at most 3 positional"),
        (
            (f"a/b:{VID}", {}, "d/e", None, None, None, "extra"),
            {},
            TypeError,
            "at most 6 positional",
        ),
        (
            (),
            {"version": f"a/b:{VID}", "destination": "d/e", "input": [1]},
            TypeError,
            "input must be a dict",
        ),
    ],
)
def test_create_argument_errors_before_any_request(
    mode: str, args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    api = Api()
    with pytest.raises(error, match=message.replace("(", r"\(")):
        create(mode, api.client(), *args, **kwargs)
    assert api.requests == []


def test_create_signatures_match_between_sync_and_async() -> None:
    import inspect

    assert inspect.signature(Trainings.create) == inspect.signature(Trainings.async_create)


# --------------------------------------------------------------------------- resource


def test_destination_is_derived_from_output_version() -> None:
    done = Training._from_api(
        training("succeeded", output={"version": f"me/dest:{VID}", "weights": "w"})
    )
    assert done.destination == "me/dest"
    bare = Training._from_api(training("succeeded", output={"version": VID}))
    assert bare.destination is None
    explicit = Training._from_api(training(destination="x/y", output={"version": f"me/dest:{VID}"}))
    assert explicit.destination == "x/y"
    assert Training._from_api(training(output="weird")).destination is None


def test_training_tolerates_future_values() -> None:
    t = Training._from_api(
        training("aborted", metrics={"predict_time": 1.5}, source="api", extra=1)
    )
    assert t.is_terminal
    assert t.metrics == {"predict_time": 1.5}
    assert t.extra == 1
    assert not Training._from_api(training("processing")).is_terminal
    assert not Training._from_api(training("queued")).is_terminal
    assert Training._from_api(training("queued", completed_at="2024-01-01T00:00:00Z")).is_terminal
    assert frozenset({"succeeded", "failed", "canceled", "aborted"}) == Training.TERMINAL_STATUSES


@pytest.mark.parametrize("mode", MODES)
def test_training_reload_and_cancel_replace_fields_and_return_self(mode: str) -> None:
    api = Api(
        {
            ("GET", "/v1/trainings/tr1"): training("processing", logs="step 1"),
            ("POST", "/v1/trainings/tr1/cancel"): training("canceled", completed_at="x"),
        }
    )
    client = api.client()
    t = Training._from_api(training(), client)
    assert invoke(mode, t, "reload") is t
    assert (t.status, t.logs) == ("processing", "step 1")
    assert invoke(mode, t, "cancel") is t
    assert t.status == "canceled"
    assert [(r.method, r.url.path) for r in api.requests] == [
        ("GET", "/v1/trainings/tr1"),
        ("POST", "/v1/trainings/tr1/cancel"),
    ]


@pytest.mark.parametrize("mode", MODES)
def test_training_wait_polls_until_terminal_without_raising(mode: str) -> None:
    api = Api(
        {
            ("GET", "/v1/trainings/tr1"): [
                training("processing"),
                training("processing"),
                training("failed", error="boom"),
            ]
        }
    )
    client = api.client(poll_interval=0)
    t = Training._from_api(training(), client)
    assert invoke(mode, t, "wait") is t
    assert (t.status, t.error) == ("failed", "boom")
    assert len(api.requests) == 3
    # already terminal: no request at all
    assert invoke(mode, t, "wait") is t
    assert len(api.requests) == 3


@pytest.mark.parametrize("mode", MODES)
def test_training_wait_timeout(mode: str) -> None:
    api = Api({("GET", "/v1/trainings/tr1"): training("processing")})
    t = Training._from_api(training(), api.client())
    with pytest.raises(PredictionTimeoutError) as info:
        invoke(mode, t, "wait", 0, poll_interval=0)
    assert info.value.prediction is t
    assert api.requests == []
    with pytest.raises(ValueError):
        invoke(mode, t, "wait", -1)
    with pytest.raises(ValueError):
        invoke(mode, t, "wait", poll_interval=-1)


@pytest.mark.parametrize("mode", MODES)
def test_namespace_wait_by_id_and_by_object(mode: str) -> None:
    api = Api(
        {("GET", "/v1/trainings/tr1"): [training("processing"), training("succeeded", output={})]}
    )
    client = api.client(poll_interval=0)
    result = invoke(mode, client.trainings, "wait", "tr1")
    assert result.status == "succeeded"
    assert len(api.requests) == 2
    obj = Training._from_api(training("succeeded"), client)
    assert invoke(mode, client.trainings, "wait", obj, timeout=5) is obj
    assert len(api.requests) == 2


def test_user_built_training_uses_default_client(monkeypatch: pytest.MonkeyPatch) -> None:
    import replicate

    api = Api({("GET", "/v1/trainings/tr1"): training("succeeded")})
    monkeypatch.setattr(replicate, "default_client", api.client())
    t = Training(id="tr1", status="starting")
    assert t.reload().status == "succeeded"
    assert len(api.requests) == 1


def test_training_without_id_cannot_reload() -> None:
    with pytest.raises(ValueError, match="no id"):
        Training(status="starting").reload()


@pytest.mark.parametrize("mode", MODES)
def test_namespace_wait_argument_errors_before_any_request(mode: str) -> None:
    api = Api({("GET", "/v1/trainings/tr1"): training("processing")})
    client = api.client()
    with pytest.raises(TypeError, match="Training or an id"):
        invoke(mode, client.trainings, "wait", 42)
    with pytest.raises(ValueError):
        invoke(mode, client.trainings, "wait", "tr1", timeout=-1)
    with pytest.raises(TypeError):
        invoke(mode, client.trainings, "wait", "tr1", poll_interval="fast")
    assert api.requests == []
