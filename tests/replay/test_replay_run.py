"""replicate.run() / async_run() replayed over the real API's run recordings."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from replicate.exceptions import AuthenticationError
from replicate.helpers import FileOutput

SDXL = "stability-ai/sdxl:39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b"
CORGI = {
    "prompt": "a studio photo of a rainbow colored corgi",
    "width": 512,
    "height": 512,
    "seed": 42069,
}


def run(client: Any, use_async: bool, ref: str, input: dict[str, Any], **kwargs: Any) -> Any:
    if use_async:
        return asyncio.run(client.async_run(ref, input=input, **kwargs))
    return client.run(ref, input=input, **kwargs)


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_run_polls_to_the_recorded_output(replay: Any, use_async: bool) -> None:
    rec = replay("run")
    output = run(rec.client, use_async, SDXL, CORGI)
    final = rec.interactions[-1].json()
    assert final["status"] == "succeeded"
    assert isinstance(output, list) and all(isinstance(o, FileOutput) for o in output)
    assert [o.url for o in output] == final["output"]
    paths = [r.url.path for r in rec.transport.requests]
    assert paths[0] == "/v1/predictions"
    assert rec.transport.requests[0].headers["prefer"] == "wait"
    assert paths.count("/v1/models/stability-ai/sdxl/versions/" + SDXL.split(":")[1]) == 1
    assert rec.transport.unused() == [], "every recorded poll was needed and nothing more"


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_run_raw_output_without_file_objects(replay: Any, use_async: bool) -> None:
    rec = replay("run")
    output = run(rec.client, use_async, SDXL, CORGI, use_file_output=False)
    assert output == rec.interactions[-1].json()["output"]


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_run_with_an_invalid_token(replay: Any, use_async: bool) -> None:
    rec = replay("run__invalid-token")
    ref = "73001d654114dad81ec65da3b834e2f691af1e1526453189b7bf36fb3f32d0f9"
    with pytest.raises(AuthenticationError) as info:
        run(rec.client, use_async, ref, {})
    assert info.value.status == 401
    assert info.value.detail == "You did not pass a valid authentication token"
    assert len(rec.transport.requests) == 1, "a 401 on create is not retried and nothing follows"


def test_async_runs_concurrently_over_the_recording(replay: Any) -> None:
    rec = replay("run__concurrently")
    creates = [i for i in rec.interactions if i.method == "POST"]
    inputs = [json.loads(c.body)["input"] for c in creates]
    assert len(inputs) > 1

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(rec.client.async_run(SDXL, input=i, use_file_output=False) for i in inputs)
        )

    outputs = asyncio.run(main())
    finals = {
        i.json()["input"]["prompt"]: i.json()["output"]
        for i in rec.interactions
        if i.method == "GET" and "/predictions/" in i.uri and i.json().get("status") == "succeeded"
    }
    for given, output in zip(inputs, outputs, strict=True):
        assert output == finals[given["prompt"]]
