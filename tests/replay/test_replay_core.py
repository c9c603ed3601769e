"""Replay the shared recordings about predictions, models and versions through the client.

Every recorded exchange is re-issued with the namespace call that produces it; the
:class:`ReplayTransport` checks the method, path, query and body the client sends (and here also
the ``Prefer`` header), and the parsed result is compared with the recorded response.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from replicate.client import Client
from replicate.exceptions import ReplicateError
from replicate.model import Model
from replicate.pagination import Page
from replicate.prediction import Prediction
from replicate.version import Version

RECORDINGS = [
    "predictions-get",
    "predictions-create",
    "predictions-cancel",
    "predictions-stream",
    "models-create",
    "models-get",
    "models-list",
    "models-predictions-create",
    "models-search",
    "run",
    "run__concurrently",
    "run__invalid-token",
    "test_models_predictions_create_blocking[False-10]",
    "test_models_predictions_create_blocking[False-True]",
    "test_models_predictions_create_blocking[True-10]",
    "test_models_predictions_create_blocking[True-True]",
    "test_predictions_cancel[False]",
    "test_predictions_cancel[True]",
    "test_predictions_create_blocking[False-10]",
    "test_predictions_create_blocking[False-True]",
    "test_predictions_create_blocking[True-10]",
    "test_predictions_create_blocking[True-True]",
    "test_predictions_create_by_model[False]",
    "test_predictions_create_by_model[True]",
]


def check_prefer(request: httpx.Request, interaction: Any) -> None:
    """The client sends the recorded ``Prefer`` header (or none)."""
    assert request.headers.get("prefer") == interaction.request_headers.get("prefer")


def _wait_param(prefer: str | None) -> Any:
    if prefer is None:
        return {}
    if prefer == "wait":
        return {"wait": True}
    return {"wait": int(prefer.partition("=")[2])}


async def drive(client: Client, item: Any, use_async: bool) -> Any:
    """Issue the namespace call that sends the recorded request ``item``."""
    parts = item.url.path.strip("/").split("/")[1:]  # drop "v1"
    method = item.method
    body = json.loads(item.body) if item.body and method in ("POST", "PATCH") else None

    async def run(obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        if use_async:
            return await getattr(obj, f"async_{name}")(*args, **kwargs)
        return getattr(obj, name)(*args, **kwargs)

    wait = _wait_param(item.request_headers.get("prefer"))
    if parts[0] == "predictions":
        if method == "GET" and len(parts) == 2:
            return await run(client.predictions, "get", parts[1])
        if method == "POST" and len(parts) == 3 and parts[2] == "cancel":
            return await run(client.predictions, "cancel", parts[1])
        if method == "POST" and len(parts) == 1:
            extra = {k: v for k, v in body.items() if k not in ("input", "version")}
            return await run(
                client.predictions,
                "create",
                version=body["version"],
                input=body["input"],
                **extra,
                **wait,
            )
    if parts[0] == "models":
        if len(parts) == 1:
            if method == "GET":
                return await run(client.models, "list")
            if method == "QUERY":
                return await run(client.models, "search", item.body.decode())
            if method == "POST":
                owner, name = body.pop("owner"), body.pop("name")
                return await run(client.models, "create", owner, name, **body)
        if len(parts) == 3 and method == "GET":
            return await run(client.models, "get", parts[1], parts[2])
        if len(parts) == 4 and parts[3] == "predictions" and method == "POST":
            return await run(
                client.models.predictions, "create", f"{parts[1]}/{parts[2]}", body["input"], **wait
            )
        if len(parts) == 5 and parts[3] == "versions" and method == "GET":
            return await run(client.models.versions, "get", (parts[1], parts[2]), parts[4])
    raise AssertionError(f"no driver for {method} {item.uri}")


def compare(result: Any, item: Any) -> None:
    """The parsed result matches the recorded response body."""
    data = item.json()
    if isinstance(result, Prediction):
        assert result.id == data["id"]
        assert result.status == data["status"]
        assert result.output == data.get("output")
        assert result.urls == data.get("urls")
        assert result.input == data.get("input")
    elif isinstance(result, Model):
        assert (result.owner, result.name) == (data["owner"], data["name"])
        assert result.run_count == data.get("run_count")
        if data.get("latest_version"):
            assert isinstance(result.latest_version, Version)
            assert result.latest_version.id == data["latest_version"]["id"]
        if data.get("default_example"):
            assert isinstance(result.default_example, Prediction)
            assert result.default_example.id == data["default_example"]["id"]
    elif isinstance(result, Version):
        assert result.id == data["id"]
        assert result.openapi_schema == data.get("openapi_schema")
        assert result.created_at is not None and not isinstance(result.created_at, str)
    elif isinstance(result, Page):
        assert len(result) == len(data["results"])
        assert result.next == data.get("next")
        assert all(isinstance(m, Model) for m in result)
        assert [m.id for m in result] == [f"{r['owner']}/{r['name']}" for r in data["results"]]
    else:
        raise AssertionError(f"unexpected result {result!r}")


@pytest.mark.parametrize("name", RECORDINGS)
async def test_replay_every_exchange(replay: Any, use_async: bool, name: str) -> None:
    session = replay(name, strict_order=True, check=check_prefer)
    for item in session.interactions:
        if item.status >= 400:
            with pytest.raises(ReplicateError) as info:
                await drive(session.client, item, use_async)
            assert info.value.status == item.status
            continue
        result = await drive(session.client, item, use_async)
        compare(result, item)
    assert session.transport.unused() == []
    assert len(session.transport.requests) == len(session.interactions)
