"""Every operation of the OpenAPI document is reachable from a public sync and async method.

For each ``operationId`` there is a ``(sync callable, async callable)`` pair. Each one is called
with a client over an ``httpx.MockTransport`` that matches the request against the spec's
method + path templates; the test asserts that exactly the expected operation was requested.

The 37 operations are listed below so the test runs without the shared directory; when
``shared/spec/replicate-openapi.json`` is available the list is checked against it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from replicate.client import Client

OPERATIONS: dict[str, tuple[str, str]] = {
    "account.get": ("GET", "/account"),
    "collections.list": ("GET", "/collections"),
    "collections.get": ("GET", "/collections/{collection_slug}"),
    "deployments.list": ("GET", "/deployments"),
    "deployments.create": ("POST", "/deployments"),
    "deployments.delete": ("DELETE", "/deployments/{deployment_owner}/{deployment_name}"),
    "deployments.get": ("GET", "/deployments/{deployment_owner}/{deployment_name}"),
    "deployments.update": ("PATCH", "/deployments/{deployment_owner}/{deployment_name}"),
    "deployments.predictions.create": (
        "POST",
        "/deployments/{deployment_owner}/{deployment_name}/predictions",
    ),
    "files.list": ("GET", "/files"),
    "files.create": ("POST", "/files"),
    "files.delete": ("DELETE", "/files/{file_id}"),
    "files.get": ("GET", "/files/{file_id}"),
    "files.download": ("GET", "/files/{file_id}/download"),
    "hardware.list": ("GET", "/hardware"),
    "models.list": ("GET", "/models"),
    "models.create": ("POST", "/models"),
    "models.search": ("QUERY", "/models"),
    "models.delete": ("DELETE", "/models/{model_owner}/{model_name}"),
    "models.get": ("GET", "/models/{model_owner}/{model_name}"),
    "models.update": ("PATCH", "/models/{model_owner}/{model_name}"),
    "models.examples.list": ("GET", "/models/{model_owner}/{model_name}/examples"),
    "models.predictions.create": ("POST", "/models/{model_owner}/{model_name}/predictions"),
    "models.readme.get": ("GET", "/models/{model_owner}/{model_name}/readme"),
    "models.versions.list": ("GET", "/models/{model_owner}/{model_name}/versions"),
    "models.versions.delete": (
        "DELETE",
        "/models/{model_owner}/{model_name}/versions/{version_id}",
    ),
    "models.versions.get": ("GET", "/models/{model_owner}/{model_name}/versions/{version_id}"),
    "trainings.create": (
        "POST",
        "/models/{model_owner}/{model_name}/versions/{version_id}/trainings",
    ),
    "predictions.list": ("GET", "/predictions"),
    "predictions.create": ("POST", "/predictions"),
    "predictions.get": ("GET", "/predictions/{prediction_id}"),
    "predictions.cancel": ("POST", "/predictions/{prediction_id}/cancel"),
    "search": ("GET", "/search"),
    "trainings.list": ("GET", "/trainings"),
    "trainings.get": ("GET", "/trainings/{training_id}"),
    "trainings.cancel": ("POST", "/trainings/{training_id}/cancel"),
    "webhooks.default.secret.get": ("GET", "/webhooks/default/secret"),
}

# ---------------------------------------------------------------------- canned answers

VID = "5" * 64
PAGE: dict[str, Any] = {"next": None, "previous": None, "results": []}
MODEL = {"owner": "o", "name": "n", "url": "https://replicate.com/o/n", "visibility": "public"}
VERSION = {"id": VID, "created_at": "2024-01-01T00:00:00Z", "cog_version": None}
PREDICTION = {
    "id": "p1",
    "model": "o/n",
    "version": VID,
    "input": {},
    "output": None,
    "status": "starting",
    "created_at": "2024-01-01T00:00:00Z",
    "urls": {"get": "https://api.replicate.com/v1/predictions/p1", "cancel": "x", "web": "y"},
}
TRAINING = {**PREDICTION, "id": "t1"}
DEPLOYMENT = {"owner": "o", "name": "n", "current_release": None}
FILE = {
    "id": "f1",
    "urls": {"get": "https://api.replicate.com/v1/files/f1"},
    "content_type": "application/octet-stream",
    "size": 1,
    "checksums": {"sha256": "0"},
    "metadata": {},
    "created_at": "2024-01-01T00:00:00Z",
    "expires_at": "2024-01-02T00:00:00Z",
}


JSON_ANSWERS: dict[str, Any] = {
    "account.get": {"type": "user", "username": "u"},
    "collections.get": {"slug": "s", "name": "S", "description": "d", "models": [MODEL]},
    "deployments.create": DEPLOYMENT,
    "deployments.get": DEPLOYMENT,
    "deployments.update": DEPLOYMENT,
    "deployments.predictions.create": PREDICTION,
    "files.create": FILE,
    "files.get": FILE,
    "hardware.list": [{"sku": "cpu", "name": "CPU"}],
    "models.create": MODEL,
    "models.get": MODEL,
    "models.update": MODEL,
    "models.predictions.create": PREDICTION,
    "models.versions.get": VERSION,
    "trainings.create": TRAINING,
    "predictions.create": PREDICTION,
    "predictions.get": PREDICTION,
    "predictions.cancel": PREDICTION,
    "search": {"query": "q", "models": [], "collections": [], "pages": []},
    "trainings.get": TRAINING,
    "trainings.cancel": TRAINING,
    "webhooks.default.secret.get": {"key": "whsec_dGVzdA=="},
}


def _answer(operation_id: str) -> httpx.Response:
    if operation_id.endswith(".delete"):
        return httpx.Response(202 if "versions" in operation_id else 204)
    if operation_id == "files.download":
        return httpx.Response(200, content=b"file bytes")
    if operation_id == "models.readme.get":
        return httpx.Response(200, text="# readme", headers={"Content-Type": "text/markdown"})
    if operation_id.endswith(".list") and operation_id != "hardware.list":
        return httpx.Response(200, json=PAGE)
    if operation_id == "models.search":
        return httpx.Response(200, json=PAGE)
    status = 201 if operation_id.endswith("create") else 200
    return httpx.Response(status, json=JSON_ANSWERS[operation_id])


class SpecRouter:
    """A MockTransport handler that names the spec operation of every request."""

    def __init__(self) -> None:
        self.patterns = [
            (method, re.compile("^/v1" + re.sub(r"\{[^}/]+\}", "[^/]+", template) + "$"), op)
            for op, (method, template) in OPERATIONS.items()
        ]
        self.matched: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        path = request.url.raw_path.decode().split("?", 1)[0]
        found = [
            op for method, rx, op in self.patterns if method == request.method and rx.match(path)
        ]
        assert len(found) == 1, f"{request.method} {path} matches {found or 'no operation'}"
        self.matched.append(found[0])
        return _answer(found[0])

    def client(self) -> Client:
        return Client("r8_test", transport=httpx.MockTransport(self), retry=False, poll_interval=0)


# ---------------------------------------------------------------------- the mapping

Sync = Callable[[Client], Any]
Async = Callable[[Client], Awaitable[Any]]


def twin(path: str, *args: Any, **kwargs: Any) -> tuple[Sync, Async]:
    """The sync and async public methods at ``path`` (e.g. ``"models.versions.get"``)."""
    *namespaces, name = path.split(".")

    def target(client: Client) -> Any:
        obj: Any = client
        for part in namespaces:
            obj = getattr(obj, part)
        return obj

    def sync(client: Client) -> Any:
        return getattr(target(client), name)(*args, **kwargs)

    async def async_(client: Client) -> Any:
        return await getattr(target(client), f"async_{name}")(*args, **kwargs)

    sync.__qualname__ = f"client.{path}"
    async_.__qualname__ = f"client.{'.'.join([*namespaces, 'async_' + name])}"
    return sync, async_


def _download_sync(client: Client) -> Any:
    return client.files.download("f1", owner="o", expiry=1700000000, signature="c2ln").read()


async def _download_async(client: Client) -> Any:
    output = await client.files.async_download("f1", owner="o", expiry=1700000000, signature="c2ln")
    return await output.aread()


_download_sync.__qualname__ = "client.files.download(...).read"
_download_async.__qualname__ = "client.files.async_download(...).aread"


DEPLOYMENT_PARAMS = {
    "name": "n",
    "model": "o/n",
    "version": VID,
    "hardware": "cpu",
    "min_instances": 0,
    "max_instances": 1,
}

MAPPING: dict[str, tuple[Sync, Async]] = {
    "account.get": twin("accounts.current"),
    "collections.list": twin("collections.list"),
    "collections.get": twin("collections.get", "text-to-image"),
    "deployments.list": twin("deployments.list"),
    "deployments.create": twin("deployments.create", **DEPLOYMENT_PARAMS),
    "deployments.delete": twin("deployments.delete", "o", "n"),
    "deployments.get": twin("deployments.get", "o/n"),
    "deployments.update": twin("deployments.update", "o", "n", min_instances=1),
    "deployments.predictions.create": twin("deployments.predictions.create", "o/n", {"a": 1}),
    "files.list": twin("files.list"),
    "files.create": twin("files.create", b"x", filename="x.bin"),
    "files.delete": twin("files.delete", "f1"),
    "files.get": twin("files.get", "f1"),
    "files.download": (_download_sync, _download_async),
    "hardware.list": twin("hardware.list"),
    "models.list": twin("models.list"),
    "models.create": twin("models.create", "o", "n", visibility="private", hardware="cpu"),
    "models.search": twin("models.search", "upscaler"),
    "models.delete": twin("models.delete", "o/n"),
    "models.get": twin("models.get", "o/n"),
    "models.update": twin("models.update", "o/n", description="new"),
    "models.examples.list": twin("models.examples.list", "o/n"),
    "models.predictions.create": twin("models.predictions.create", "o/n", {"a": 1}),
    "models.readme.get": twin("models.readme.get", "o/n"),
    "models.versions.list": twin("models.versions.list", "o/n"),
    "models.versions.delete": twin("models.versions.delete", "o/n", VID),
    "models.versions.get": twin("models.versions.get", "o/n", VID),
    "trainings.create": twin("trainings.create", f"o/n:{VID}", {"a": 1}, "me/dest"),
    "predictions.list": twin("predictions.list"),
    "predictions.create": twin("predictions.create", version=VID, input={"a": 1}),
    "predictions.get": twin("predictions.get", "p1"),
    "predictions.cancel": twin("predictions.cancel", "p1"),
    "search": twin("search", "nano banana", limit=5),
    "trainings.list": twin("trainings.list"),
    "trainings.get": twin("trainings.get", "t1"),
    "trainings.cancel": twin("trainings.cancel", "t1"),
    "webhooks.default.secret.get": twin("webhooks.default.secret"),
}


# ---------------------------------------------------------------------- the spec


SPEC_PATH = Path(__file__).resolve().parents[2] / "tests" / "data" / "openapi.json"


def test_the_operation_list_is_the_spec() -> None:
    path = SPEC_PATH
    spec = json.loads(path.read_text(encoding="utf-8"))
    found = {
        operation["operationId"]: (method.upper(), template)
        for template, item in spec["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "operationId" in operation
    }
    assert found == OPERATIONS
    assert len(found) == 37


def test_every_operation_is_mapped() -> None:
    assert set(MAPPING) == set(OPERATIONS)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("operation_id", list(OPERATIONS))
def test_operation_is_reachable(operation_id: str, mode: str) -> None:
    sync, async_ = MAPPING[operation_id]
    router = SpecRouter()
    client = router.client()
    result = sync(client) if mode == "sync" else asyncio.run(async_(client))
    assert router.matched == [operation_id]
    assert result is not None


def test_public_methods_only() -> None:
    """The mapped callables go through public names only (no underscore in the path)."""
    for operation_id, (sync, async_) in MAPPING.items():
        for func in (sync, async_):
            name = func.__qualname__
            assert not any(part.startswith("_") for part in name.split(".") if part), (
                operation_id,
                name,
            )
