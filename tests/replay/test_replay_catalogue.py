"""Replay of the shared recordings for collections, hardware, trainings and files (sync and async).

Each test serves a real recorded API exchange through ``httpx.MockTransport`` (the ``replay``
fixture of ``tests/conftest.py`` checks method, URL and JSON body of every request) and checks
that every recorded interaction was used. There are no recordings for deployments, accounts or
search; those are covered by wire-level unit tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from replicate.collection import Collection
from replicate.exceptions import NotFoundError
from replicate.hardware import Hardware
from replicate.model import Model
from replicate.pagination import Page
from replicate.prediction import Prediction
from replicate.training import Training
from replicate.version import Version

SDXL_VERSION = "39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b"
TRAINING_INPUT = {
    "input_images": "https://replicate.delivery/pbxt/JMV5OrEWpBAC5gO8rre0tPOyJIOkaXvG0TWfVJ9b4zhLeEUY/data.zip",
    "use_face_detection_instead": True,
}
DESTINATION = "replicate/dreambooth-sdxl"

Invoke = Callable[..., Any]


def _all_served(rep: Any) -> None:
    assert rep.transport.unused() == [], "recorded interactions left unused"


# --------------------------------------------------------------------------- collections


async def test_collections_list(replay: Any, invoke: Invoke) -> None:
    rep = replay("collections-list")
    page = await invoke(rep.client.collections, "list")
    _all_served(rep)
    assert isinstance(page, Page)
    assert page.next is None and page.previous is None
    assert len(page) == 19
    assert all(isinstance(c, Collection) and c.models is None for c in page)
    assert all(c._client is rep.client for c in page)
    by_slug = {c.slug: c for c in page}
    assert by_slug["text-to-image"].name == "Text to image"
    assert by_slug["super-resolution"].description.startswith("Upscaling models")


async def test_collections_get(replay: Any, invoke: Invoke) -> None:
    rep = replay("collections-get")
    collection = await invoke(rep.client.collections, "get", "text-to-image")
    _all_served(rep)
    assert isinstance(collection, Collection)
    assert collection.slug == "text-to-image"
    assert len(collection) > 0
    models = list(collection)
    assert all(isinstance(m, Model) and m._client is rep.client for m in models)
    first = collection[0]
    assert first is not None and first.id == "huiyegit/t2i_cl"
    assert isinstance(first.default_example, Prediction)
    assert first.default_example._client is rep.client
    assert isinstance(first.latest_version, Version)


# --------------------------------------------------------------------------- hardware


async def test_hardware_list(replay: Any, invoke: Invoke) -> None:
    rep = replay("hardware-list")
    hardware = await invoke(rep.client.hardware, "list")
    _all_served(rep)
    assert all(isinstance(h, Hardware) for h in hardware)
    assert [(h.sku, h.name) for h in hardware] == [
        ("cpu", "CPU"),
        ("gpu-t4", "Nvidia T4 GPU"),
        ("gpu-a40-small", "Nvidia A40 GPU"),
        ("gpu-a40-large", "Nvidia A40 (Large) GPU"),
    ]


# --------------------------------------------------------------------------- trainings

CREATE_FORMS: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "legacy-positional": ((f"stability-ai/sdxl:{SDXL_VERSION}", TRAINING_INPUT, DESTINATION), {}),
    "keyword-shorthand": (
        (),
        {
            "version": f"stability-ai/sdxl:{SDXL_VERSION}",
            "input": TRAINING_INPUT,
            "destination": DESTINATION,
        },
    ),
    "model-and-version": (
        ("stability-ai/sdxl", SDXL_VERSION, TRAINING_INPUT),
        {"destination": DESTINATION},
    ),
    "model-tuple-keywords": (
        (),
        {
            "model": ("stability-ai", "sdxl"),
            "version": SDXL_VERSION,
            "input": TRAINING_INPUT,
            "destination": ("replicate", "dreambooth-sdxl"),
        },
    ),
}


@pytest.mark.parametrize("form", list(CREATE_FORMS))
async def test_trainings_create(replay: Any, invoke: Invoke, form: str) -> None:
    rep = replay("trainings-create")
    args, kwargs = CREATE_FORMS[form]
    training = await invoke(rep.client.trainings, "create", *args, **kwargs)
    _all_served(rep)
    (request,) = rep.transport.requests
    assert request.headers["content-type"] == "application/json"
    assert "prefer" not in request.headers
    assert isinstance(training, Training)
    assert training.id == "wj4is6lbdqqkdepnwpr6v2kuva"
    assert training.status == "starting"
    assert training.version == SDXL_VERSION
    assert training.input == TRAINING_INPUT
    assert training._client is rep.client


async def test_trainings_create_invalid_destination(replay: Any, invoke: Invoke) -> None:
    rep = replay("trainings-create__invalid-destination")
    with pytest.raises(NotFoundError) as info:
        await invoke(
            rep.client.trainings,
            "create",
            f"stability-ai/sdxl:{SDXL_VERSION}",
            {"input_images": TRAINING_INPUT["input_images"]},
            "<invalid>",
        )
    _all_served(rep)
    assert info.value.status == 404
    assert info.value.detail == "The specified training destination does not exist"


async def test_trainings_get(replay: Any, invoke: Invoke) -> None:
    rep = replay("trainings-get")
    training = await invoke(rep.client.trainings, "get", "medrnz3bm5dd6ultvad2tejrte")
    _all_served(rep)
    assert training.status == "processing"
    assert not training.is_terminal
    assert training.model == "stability-ai/sdxl"
    assert training.metrics == {}
    assert training.urls["cancel"].endswith("/trainings/medrnz3bm5dd6ultvad2tejrte/cancel")


async def test_trainings_cancel_via_namespace(replay: Any, invoke: Invoke) -> None:
    rep = replay("trainings-cancel", strict_order=True)
    training = await invoke(
        rep.client.trainings,
        "create",
        version=f"stability-ai/sdxl:{SDXL_VERSION}",
        input=TRAINING_INPUT,
        destination=DESTINATION,
    )
    canceled = await invoke(rep.client.trainings, "cancel", training.id)
    _all_served(rep)
    assert canceled.status == "canceled"
    assert canceled.is_terminal
    assert canceled.metrics == {"predict_time": 3e-06}


async def test_trainings_cancel_via_resource(replay: Any, invoke: Invoke) -> None:
    rep = replay("trainings-cancel", strict_order=True)
    training = await invoke(
        rep.client.trainings,
        "create",
        "stability-ai/sdxl",
        SDXL_VERSION,
        TRAINING_INPUT,
        destination=DESTINATION,
    )
    assert training.status == "starting"
    assert await invoke(training, "cancel") is training
    _all_served(rep)
    assert training.status == "canceled"
    assert training.completed_at == "2023-08-16T19:33:27.215203Z"


# --------------------------------------------------------------------------- files


class _UploadThenReplay(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Answers the multipart ``POST /v1/files`` from its recording (checking the parts, since the
    boundary differs) and hands every other request to the replay transport."""

    def __init__(self, upload: Any, rest: httpx.MockTransport) -> None:
        self.upload, self.rest = upload, rest
        self.uploads: list[httpx.Request] = []

    def _answer_upload(self, request: httpx.Request) -> httpx.Response:
        self.uploads.append(request)
        content_type = request.headers["content-type"]
        assert content_type.startswith("multipart/form-data; boundary=")
        body = request.content
        assert (
            b'Content-Disposition: form-data; name="content"; filename="test_fileo20o3wth.txt"'
            in body
        )
        assert b"Content-Type: text/plain\r\n\r\n\r\n--" in body
        assert b'name="metadata"' not in body
        return httpx.Response(
            self.upload.status, headers=self.upload.headers, content=self.upload.content
        )

    @staticmethod
    def _is_upload(request: httpx.Request) -> bool:
        return request.method == "POST" and request.url.path == "/v1/files"

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._is_upload(request):
            request.read()
            return self._answer_upload(request)
        return self.rest.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._is_upload(request):
            await request.aread()
            return self._answer_upload(request)
        return await self.rest.handle_async_request(request)


async def test_file_operations(replay: Any, invoke: Invoke) -> None:
    import io

    from replicate.client import Client
    from replicate.file import File

    (upload,) = replay("file-operations", only=lambda i: i.method == "POST").interactions
    rep = replay("file-operations", only=lambda i: i.method != "POST", strict_order=True)
    transport = _UploadThenReplay(upload, rep.transport)
    client = Client("r8_test", transport=transport, poll_interval=0)
    try:
        created = await invoke(
            client.files,
            "create",
            io.BytesIO(b""),
            filename="test_fileo20o3wth.txt",
            content_type="text/plain",
        )
        assert isinstance(created, File)
        assert created.name == "test_fileo20o3wth.txt"
        assert created.size == 0
        fetched = await invoke(client.files, "get", created.id)
        assert fetched == created
        listed = await invoke(client.files, "list")
        assert isinstance(listed, list) and all(isinstance(f, File) for f in listed)  # 1.0.x type
        assert created.id in {f.id for f in listed}
        assert await invoke(client.files, "delete", created.id) is True
        after = await invoke(client.files, "list")
        assert isinstance(after, list)
    finally:
        client.close()
        await client.aclose()
    assert len(transport.uploads) == 1
    _all_served(rep)
