"""Replay multi-step flows of the shared recordings: polling to completion, blocking creates,
cancels, concurrency and errors (the prediction/model/version parts; ``run()`` itself is tested
with the run module)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from replicate import _polling
from replicate.exceptions import AuthenticationError
from replicate.pagination import _cursor_url
from replicate.prediction import Prediction

SDXL = "39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b"


def no_version_lookups(item: Any) -> bool:
    return not (item.method == "GET" and "/versions/" in item.uri)


async def _create(client: Any, item: Any, use_async: bool, **params: Any) -> Prediction:
    sent = json.loads(item.body)
    if use_async:
        return await client.predictions.async_create(
            version=sent["version"], input=sent["input"], **params
        )  # type: ignore[no-any-return]
    return client.predictions.create(version=sent["version"], input=sent["input"], **params)  # type: ignore[no-any-return]


async def test_run_recording_create_then_wait(replay: Any, use_async: bool) -> None:
    session = replay("run", only=no_version_lookups, strict_order=True)
    create = session.interactions[0]
    prediction = await _create(session.client, create, use_async)
    assert prediction.status == "starting" and not prediction.is_terminal
    assert prediction._sync_complete is False
    if use_async:
        result = await prediction.async_wait()
    else:
        result = prediction.wait()
    assert result is prediction
    assert prediction.status == "succeeded"
    final = session.interactions[-1].json()
    assert prediction.output == final["output"]
    assert prediction.completed_at == final["completed_at"]
    assert session.transport.unused() == []  # polled exactly until the terminal status
    polls = [r for r in session.transport.requests if r.method == "GET"]
    assert all(r.url.path == f"/v1/predictions/{prediction.id}" for r in polls)


async def test_run_recording_output_iterator(replay: Any, use_async: bool) -> None:
    session = replay("run", only=no_version_lookups, strict_order=True)
    prediction = await _create(session.client, session.interactions[0], use_async)
    if use_async:
        items = [item async for item in prediction.async_output_iterator()]
    else:
        items = list(prediction.output_iterator())
    assert items == session.interactions[-1].json()["output"]
    assert session.transport.unused() == []


async def test_run_recording_version_lookup(replay: Any, use_async: bool) -> None:
    session = replay("run", only=lambda i: "/versions/" in i.uri)
    versions = session.client.models.versions
    if use_async:
        version = await versions.async_get("stability-ai/sdxl", SDXL)
    else:
        version = versions.get("stability-ai/sdxl", SDXL)
    schema = version.openapi_schema
    assert schema["components"]["schemas"]["Output"]["type"] == "array"


async def test_run_concurrently(replay: Any) -> None:
    session = replay("run__concurrently", only=no_version_lookups)
    creates = [i for i in session.interactions if i.method == "POST"]
    predictions = await asyncio.gather(*(_create(session.client, item, True) for item in creates))
    assert len({p.id for p in predictions}) == 4
    await asyncio.gather(*(p.async_wait() for p in predictions))
    assert all(p.status == "succeeded" for p in predictions)
    assert all(isinstance(p.output, list) and p.output for p in predictions)
    assert session.transport.unused() == []


async def test_invalid_token(replay: Any, use_async: bool) -> None:
    session = replay("run__invalid-token")
    with pytest.raises(AuthenticationError) as info:
        await _create(session.client, session.interactions[0], use_async)
    assert info.value.status == 401
    assert info.value.detail
    assert "r8_" not in str(info.value)


@pytest.mark.parametrize(
    "name",
    [
        "test_predictions_create_blocking[True-True]",
        "test_predictions_create_blocking[False-10]",
    ],
)
async def test_blocking_create_is_sync_complete(replay: Any, use_async: bool, name: str) -> None:
    session = replay(name, only=lambda i: i.method == "POST")
    for item in session.interactions:
        prefer = item.request_headers["prefer"]
        wait: Any = True if prefer == "wait" else int(prefer.partition("=")[2])
        prediction = await _create(session.client, item, use_async, wait=wait)
        assert prediction.status == "processing"
        assert prediction._sync_complete is True  # 201 + Preference-Applied: final output inline
        assert not prediction.is_terminal
        assert prediction.output[0].startswith("data:image/png;base64,")
        sent = session.transport.requests[-1]
        assert sent.headers["prefer"] == prefer
    assert session.transport.unused() == []


@pytest.mark.parametrize(
    "name",
    [
        "test_models_predictions_create_blocking[True-True]",
        "test_models_predictions_create_blocking[False-10]",
    ],
)
async def test_blocking_model_create(replay: Any, use_async: bool, name: str) -> None:
    session = replay(name)
    item = session.interactions[0]
    prefer = item.request_headers["prefer"]
    wait: Any = True if prefer == "wait" else int(prefer.partition("=")[2])
    ns = session.client.models.predictions
    args = ("meta/meta-llama-3-8b-instruct", {"prompt": "Please write a haiku about llamas"})
    if use_async:
        prediction = await ns.async_create(*args, wait=wait)
    else:
        prediction = ns.create(*args, wait=wait)
    assert prediction._sync_complete is True
    assert "".join(prediction.output).strip()


async def test_cancel_recording(replay: Any, use_async: bool) -> None:
    session = replay(
        "test_predictions_cancel[True]", only=lambda i: i.url.path.startswith("/v1/predictions")
    )
    prediction = await _create(session.client, session.interactions[0], use_async)
    assert prediction.status == "starting"
    if use_async:
        assert await prediction.async_cancel() is prediction
    else:
        assert prediction.cancel() is prediction
    assert prediction.status == "canceled"
    assert prediction.is_terminal
    assert session.transport.unused() == []


async def test_create_by_model_twice(replay: Any, use_async: bool) -> None:
    session = replay("test_predictions_create_by_model[True]")
    for _ in session.interactions:
        kwargs = {
            "model": "meta/meta-llama-3-8b-instruct",
            "input": {"prompt": "write a haiku about llamas"},
        }
        if use_async:
            p = await session.client.predictions.async_create(**kwargs)
        else:
            p = session.client.predictions.create(**kwargs)
        assert p.status == "starting"
        assert p.version.startswith("dp-")  # opaque ids are accepted
    assert session.transport.unused() == []


async def test_predictions_get_progress(replay: Any, use_async: bool) -> None:
    session = replay("predictions-get")
    pid = session.interactions[0].url.path.rsplit("/", 1)[1]
    ns = session.client.predictions
    p = await ns.async_get(pid) if use_async else ns.get(pid)
    assert p.is_terminal
    assert p.progress is not None and p.progress.total == 50
    waited = await ns.async_wait(p) if use_async else ns.wait(p)
    assert waited is p
    assert len(session.transport.requests) == 1  # already terminal: no poll


async def test_models_get_empty_model(replay: Any, use_async: bool) -> None:
    session = replay("models-get", only=lambda i: "mattt/empty" in i.uri)
    ns = session.client.models
    model = await ns.async_get("mattt/empty") if use_async else ns.get("mattt", "empty")
    assert model.latest_version is None and model.default_example is None
    assert model.description is None and model.run_count == 0


async def test_models_list_next_cursor_is_accepted(replay: Any, use_async: bool) -> None:
    session = replay("models-list")
    ns = session.client.models
    page = await ns.async_list() if use_async else ns.list()
    assert page.next and page.previous is None
    assert _cursor_url(session.client, page.next) == page.next
    assert all(m._client is session.client for m in page)


async def test_models_search_official_models(replay: Any, use_async: bool) -> None:
    session = replay("models-search")
    ns = session.client.models
    page = await ns.async_search("llama") if use_async else ns.search("llama")
    assert len(page) > 0
    assert any(m.owner == "meta" for m in page)
    assert all(m.id == f"{m.owner}/{m.name}" for m in page)


async def test_stream_create_has_stream_url(replay: Any, use_async: bool) -> None:
    session = replay("predictions-stream", only=lambda i: i.method == "POST")
    p = await _create(session.client, session.interactions[0], use_async, stream=True)
    assert p._stream_url() == p.urls["stream"]
    assert not _polling.is_terminal(p.status, p.completed_at)
