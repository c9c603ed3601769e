"""deployments namespace, deployment predictions and the Deployment resource (sync and async)."""

from __future__ import annotations

import asyncio
import io
import json
import warnings
from typing import Any

import httpx
import pytest

from replicate.account import Account
from replicate.client import Client
from replicate.deployment import (
    Deployment,
    DeploymentPredictions,
    Deployments,
    DeploymentsPredictions,
)
from replicate.exceptions import ConflictError
from replicate.pagination import Page
from replicate.prediction import Prediction

MODES = ["sync", "async"]
VID = "da77bc59ee60423279fd632efb4795ab731d9e3ca9705ef3341091fb989b7eaf"
DEPLOYMENT = {
    "owner": "acme",
    "name": "image-gen",
    "current_release": {
        "number": 1,
        "model": "stability-ai/sdxl",
        "version": VID,
        "created_at": "2024-02-15T16:32:57.018467Z",
        "created_by": {"type": "organization", "username": "acme", "name": "Acme"},
        "configuration": {"hardware": "gpu-t4", "min_instances": 1, "max_instances": 5},
    },
}
PREDICTION = {
    "id": "p1",
    "model": "stability-ai/sdxl",
    "version": VID,
    "input": {"prompt": "x"},
    "output": None,
    "status": "starting",
    "created_at": "2024-01-01T00:00:00Z",
    "urls": {
        "get": "https://api.replicate.com/v1/predictions/p1",
        "cancel": "https://api.replicate.com/v1/predictions/p1/cancel",
        "web": "https://replicate.com/p/p1",
    },
}
PRED_PATH = "/v1/deployments/acme/image-gen/predictions"


class Api:
    """A MockTransport handler: answers (METHOD, raw path) with canned responses; else 404."""

    def __init__(self, routes: dict[tuple[str, str], Any] | None = None) -> None:
        self.routes = routes or {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        answer = self.routes.get((request.method, request.url.raw_path.decode()))
        if answer is None:
            return httpx.Response(404, json={"detail": "not found"})
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(201 if request.method == "POST" else 200, json=answer)

    def client(self) -> Client:
        return Client("r8_test", transport=httpx.MockTransport(self), retry=False)


def invoke(mode: str, target: Any, name: str, /, *args: Any, **kwargs: Any) -> Any:
    if mode == "sync":
        return getattr(target, name)(*args, **kwargs)
    return asyncio.run(getattr(target, f"async_{name}")(*args, **kwargs))


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


# --------------------------------------------------------------------------- list / get


@pytest.mark.parametrize("mode", MODES)
def test_list_and_cursor(mode: str) -> None:
    next_url = "https://api.replicate.com/v1/deployments?cursor=xyz"
    api = Api(
        {
            ("GET", "/v1/deployments"): {
                "next": next_url,
                "previous": None,
                "results": [DEPLOYMENT],
            },
            ("GET", "/v1/deployments?cursor=xyz"): {"next": None, "previous": None, "results": []},
        }
    )
    client = api.client()
    assert isinstance(client.deployments, Deployments)
    page = invoke(mode, client.deployments, "list")
    assert isinstance(page, Page)
    (deployment,) = page
    assert isinstance(deployment, Deployment) and deployment._client is client
    assert deployment.current_release is not None
    assert deployment.current_release.created_by is not None
    assert deployment.current_release.created_by._client is client
    assert str(api.requests[0].url) == "https://api.replicate.com/v1/deployments"
    assert len(invoke(mode, client.deployments, "list", page.next)) == 0
    assert str(api.requests[1].url) == next_url
    with pytest.raises(ValueError, match="cursor cannot be None"):
        invoke(mode, client.deployments, "list", None)
    assert len(api.requests) == 2


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("args", "path"),
    [
        (("acme/image-gen",), "/v1/deployments/acme/image-gen"),
        (("acme", "image-gen"), "/v1/deployments/acme/image-gen"),
        (("a b/c/d",), "/v1/deployments/a%20b/c%2Fd"),
    ],
)
def test_get_forms(mode: str, args: tuple[str, ...], path: str) -> None:
    api = Api({("GET", path): DEPLOYMENT})
    client = api.client()
    deployment = invoke(mode, client.deployments, "get", *args)
    (request,) = api.requests
    assert request.method == "GET"
    assert request.url.raw_path.decode() == path
    assert isinstance(deployment, Deployment)
    assert deployment.id == "acme/image-gen"
    release = deployment.current_release
    assert isinstance(release, Deployment.Release)
    assert (release.number, release.model, release.version) == (1, "stability-ai/sdxl", VID)
    assert isinstance(release.created_by, Account)
    assert release.created_by.username == "acme"
    assert isinstance(release.configuration, Deployment.Release.Configuration)
    assert release.configuration.hardware == "gpu-t4"
    assert (release.configuration.min_instances, release.configuration.max_instances) == (1, 5)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bad", ["noslash", "/name", "owner/"])
def test_get_rejects_names_without_owner(mode: str, bad: str) -> None:
    api = Api()
    with pytest.raises(ValueError, match=r"deployment name must be in the format 'owner/name'"):
        invoke(mode, api.client().deployments, "get", bad)
    assert api.requests == []


def test_get_tolerates_missing_release() -> None:
    api = Api(
        {("GET", "/v1/deployments/a/b"): {"owner": "a", "name": "b", "current_release": None}}
    )
    deployment = api.client().deployments.get("a/b")
    assert deployment.current_release is None


# --------------------------------------------------------------------------- create / update / delete


@pytest.mark.parametrize("mode", MODES)
def test_create_sends_keys_in_caller_order(mode: str) -> None:
    api = Api({("POST", "/v1/deployments"): DEPLOYMENT})
    deployment = invoke(
        mode,
        api.client().deployments,
        "create",
        model="stability-ai/sdxl",
        name="acme/image-gen",
        version=VID,
        hardware="gpu-t4",
        min_instances=0,
        max_instances=3,
    )
    (request,) = api.requests
    assert (request.method, request.url.path) == ("POST", "/v1/deployments")
    assert request.headers["content-type"] == "application/json"
    sent = body_of(request)
    assert list(sent.items()) == [
        ("model", "stability-ai/sdxl"),
        ("name", "image-gen"),
        ("version", VID),
        ("hardware", "gpu-t4"),
        ("min_instances", 0),
        ("max_instances", 3),
    ]
    assert deployment.name == "image-gen"


@pytest.mark.parametrize("mode", MODES)
def test_create_accepts_model_and_version_objects(mode: str) -> None:
    from replicate.model import Model
    from replicate.version import Version

    api = Api({("POST", "/v1/deployments"): DEPLOYMENT})
    invoke(
        mode,
        api.client().deployments,
        "create",
        name="image-gen",
        model=Model(owner="stability-ai", name="sdxl"),
        version=Version(id=VID),
        hardware="gpu-t4",
        min_instances=0,
        max_instances=1,
    )
    sent = body_of(api.requests[0])
    assert (sent["model"], sent["version"]) == ("stability-ai/sdxl", VID)


@pytest.mark.parametrize("mode", MODES)
def test_create_unknown_key_is_type_error(mode: str) -> None:
    api = Api()
    with pytest.raises(TypeError, match="'gpu'"):
        invoke(mode, api.client().deployments, "create", name="x", gpu="t4")
    assert api.requests == []


@pytest.mark.parametrize("mode", MODES)
def test_create_conflict_maps_to_error(mode: str) -> None:
    api = Api({("POST", "/v1/deployments"): httpx.Response(409, json={"detail": "exists"})})
    with pytest.raises(ConflictError, match="exists"):
        invoke(mode, api.client().deployments, "create", name="x")


@pytest.mark.parametrize("mode", MODES)
def test_update_sends_exactly_the_given_keys(mode: str) -> None:
    api = Api({("PATCH", "/v1/deployments/acme/image-gen"): DEPLOYMENT})
    result = invoke(
        mode,
        api.client().deployments,
        "update",
        "acme",
        "image-gen",
        max_instances=10,
        min_instances=3,
    )
    (request,) = api.requests
    assert request.method == "PATCH"
    assert request.url.path == "/v1/deployments/acme/image-gen"
    assert list(body_of(request).items()) == [("max_instances", 10), ("min_instances", 3)]
    assert isinstance(result, Deployment)


@pytest.mark.parametrize("mode", MODES)
def test_update_unknown_key_is_type_error(mode: str) -> None:
    api = Api()
    with pytest.raises(TypeError, match="'name'"):
        invoke(mode, api.client().deployments, "update", "a", "b", name="c")
    assert api.requests == []


@pytest.mark.parametrize("mode", MODES)
def test_update_and_delete_keyword_names(mode: str) -> None:
    api = Api(
        {
            ("PATCH", "/v1/deployments/a/b"): DEPLOYMENT,
            ("DELETE", "/v1/deployments/a/b"): httpx.Response(204),
        }
    )
    client = api.client()
    invoke(
        mode,
        client.deployments,
        "update",
        deployment_owner="a",
        deployment_name="b",
        hardware="cpu",
    )
    assert body_of(api.requests[0]) == {"hardware": "cpu"}
    assert (
        invoke(mode, client.deployments, "delete", deployment_owner="a", deployment_name="b")
        is True
    )
    assert api.requests[1].method == "DELETE"
    assert api.requests[1].content == b""


@pytest.mark.parametrize("mode", MODES)
def test_delete_error(mode: str) -> None:
    api = Api()
    with pytest.raises(Exception) as info:
        invoke(mode, api.client().deployments, "delete", "a", "b")
    assert getattr(info.value, "status", None) == 404
    with pytest.raises(ValueError):
        invoke(mode, api.client().deployments, "delete", "", "b")


# --------------------------------------------------------------------------- predictions


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ref", ["acme/image-gen", ("acme", "image-gen"), "deployment"])
def test_deployments_predictions_create_targets(mode: str, ref: Any) -> None:
    api = Api({("POST", PRED_PATH): PREDICTION})
    client = api.client()
    if ref == "deployment":
        ref = Deployment._from_api(DEPLOYMENT, client)
    assert isinstance(client.deployments.predictions, DeploymentsPredictions)
    prediction = invoke(mode, client.deployments.predictions, "create", ref, {"prompt": "x"})
    (request,) = api.requests
    assert (request.method, request.url.path) == ("POST", PRED_PATH)
    assert body_of(request) == {"input": {"prompt": "x"}}
    assert "prefer" not in request.headers
    assert isinstance(prediction, Prediction)
    assert prediction.id == "p1" and prediction._client is client


@pytest.mark.parametrize("mode", MODES)
def test_deployments_predictions_create_full_contract(mode: str) -> None:
    api = Api({("POST", PRED_PATH): PREDICTION})
    invoke(
        mode,
        api.client().deployments.predictions,
        "create",
        "acme/image-gen",
        input={"prompt": "x"},
        wait=10,
        cancel_after=30,
        webhook="https://hook.example/w",
        webhook_completed="https://hook.example/c",
        webhook_events_filter=["start", "completed"],
        stream=True,
    )
    (request,) = api.requests
    assert request.headers["prefer"] == "wait=10"
    assert request.headers["cancel-after"] == "30s"
    sent = body_of(request)
    assert list(sent.items()) == [
        ("input", {"prompt": "x"}),
        ("webhook", "https://hook.example/w"),
        ("webhook_completed", "https://hook.example/c"),
        ("webhook_events_filter", ["start", "completed"]),
        ("stream", True),
    ]
    assert "version" not in sent
    assert request.extensions["timeout"]["read"] >= 15


@pytest.mark.parametrize("mode", MODES)
def test_deployments_predictions_create_uploads_files(mode: str) -> None:
    file_json = {
        "id": "f1",
        "urls": {"get": "https://api.replicate.com/v1/files/f1"},
        "content_type": "image/png",
        "size": 3,
        "checksums": {},
        "metadata": {},
        "created_at": "2024-01-01T00:00:00Z",
        "expires_at": "2024-01-02T00:00:00Z",
    }
    api = Api({("POST", "/v1/files"): file_json, ("POST", PRED_PATH): PREDICTION})
    image = io.BytesIO(b"png")
    image.name = "a.png"
    invoke(mode, api.client().deployments.predictions, "create", "acme/image-gen", {"image": image})
    assert [r.url.path for r in api.requests] == ["/v1/files", PRED_PATH]
    assert body_of(api.requests[1]) == {"input": {"image": "https://api.replicate.com/v1/files/f1"}}


@pytest.mark.parametrize("mode", MODES)
def test_deployments_predictions_create_none_input(mode: str) -> None:
    api = Api({("POST", PRED_PATH): PREDICTION})
    invoke(mode, api.client().deployments.predictions, "create", "acme/image-gen", None)
    assert body_of(api.requests[0]) == {"input": {}}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bad", ["noslash", ("only-one",), 42, ("a", ""), None])
def test_deployments_predictions_create_rejects_bad_deployment(mode: str, bad: Any) -> None:
    api = Api()
    with pytest.raises(
        ValueError, match=r"deployment must be a Deployment, a tuple of \(owner, name\)"
    ):
        invoke(mode, api.client().deployments.predictions, "create", bad, {})
    assert api.requests == []


@pytest.mark.parametrize("mode", MODES)
def test_deployments_predictions_create_unknown_param(mode: str) -> None:
    api = Api()
    with pytest.raises(TypeError, match="'version'"):
        invoke(mode, api.client().deployments.predictions, "create", "a/b", {}, version=VID)
    with pytest.raises(ValueError):
        invoke(mode, api.client().deployments.predictions, "create", "a/b", {}, wait=-1)
    assert api.requests == []


@pytest.mark.parametrize("mode", MODES)
def test_deployment_object_predictions_create(mode: str) -> None:
    api = Api({("POST", PRED_PATH): PREDICTION})
    client = api.client()
    deployment = Deployment._from_api(DEPLOYMENT, client)
    assert isinstance(deployment.predictions, DeploymentPredictions)
    prediction = invoke(mode, deployment.predictions, "create", {"prompt": "x"}, wait=True)
    (request,) = api.requests
    assert request.url.path == PRED_PATH
    assert request.headers["prefer"] == "wait"
    assert body_of(request) == {"input": {"prompt": "x"}}
    assert prediction._client is client


@pytest.mark.parametrize("mode", MODES)
def test_predictions_create_with_deployment_routes_here(mode: str) -> None:
    api = Api({("POST", PRED_PATH): PREDICTION})
    invoke(
        mode,
        api.client().predictions,
        "create",
        deployment="acme/image-gen",
        input={"a": 1},
        wait=5,
    )
    (request,) = api.requests
    assert request.url.path == PRED_PATH
    assert request.headers["prefer"] == "wait=5"
    assert body_of(request) == {"input": {"a": 1}}


def test_user_built_deployment_uses_default_client(monkeypatch: pytest.MonkeyPatch) -> None:
    import replicate

    api = Api({("POST", PRED_PATH): PREDICTION})
    monkeypatch.setattr(replicate, "default_client", api.client())
    Deployment(owner="acme", name="image-gen").predictions.create({"a": 1})
    assert len(api.requests) == 1


def test_deployment_id_and_deprecated_username() -> None:
    deployment = Deployment(owner="acme", name="image-gen")
    assert deployment.id == "acme/image-gen"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert deployment.username == "acme"
    assert [w.category for w in caught] == [DeprecationWarning]


def test_deployment_tolerates_unknown_fields_and_wrong_types() -> None:
    data = {**DEPLOYMENT, "future": 1, "owner": 7}
    data["current_release"] = {**DEPLOYMENT["current_release"], "extra": True}  # type: ignore[dict-item]
    deployment = Deployment._from_api(data)
    assert deployment.future == 1
    assert deployment.owner == 7
    assert deployment.current_release is not None
    assert deployment.current_release.extra is True


def test_odd_nested_values_keep_nested_objects_typed() -> None:
    release = {
        **DEPLOYMENT["current_release"],  # type: ignore[dict-item]
        "number": "two",
        "created_by": {"type": "user", "username": 5},
        "configuration": {"hardware": "cpu", "min_instances": "none", "max_instances": 2},
    }
    deployment = Deployment._from_api({**DEPLOYMENT, "current_release": release})
    assert isinstance(deployment.current_release, Deployment.Release)
    assert deployment.current_release.number == "two"
    assert isinstance(deployment.current_release.created_by, Account)
    assert deployment.current_release.created_by.username == 5
    configuration = deployment.current_release.configuration
    assert isinstance(configuration, Deployment.Release.Configuration)
    assert (configuration.min_instances, configuration.max_instances) == ("none", 2)
