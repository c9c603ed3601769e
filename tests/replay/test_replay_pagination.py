"""Replay of a paginated list: ``GET /v1/predictions`` and the page its ``next`` cursor names.

The recording (``predictions-list.yaml``) was written by hand from the OpenAPI spec and the
shapes of the real recordings (see its first lines): a first page of three predictions whose
``next`` is an absolute cursor URL, then a last page of two whose ``next`` is null and whose
``previous`` points back. Each test walks it through the client, sync and async, and checks the
requests sent (the cursor URL exactly as the API gave it, nothing re-applied) and the items.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

import replicate
from replicate.pagination import Page, async_paginate, paginate
from replicate.prediction import Prediction

RECORDING = "predictions-list"
FIRST_PAGE = "https://api.replicate.com/v1/predictions"
NEXT_CURSOR = "cD0yMDI0LTA4LTIyKzEyJTNBMjklM0E1NS43NjAwMDAlMkIwMCUzQTAw"
SECOND_PAGE = f"{FIRST_PAGE}?cursor={NEXT_CURSOR}"
PREVIOUS_OF_SECOND = (
    f"{FIRST_PAGE}?cursor=cj0xJnA9MjAyNC0wOC0yMisxMiUzQTI4JTNBMTIuMzAxMDAwJTJCMDAlM0EwMA%3D%3D"
)
PAGE_IDS = [
    ["rdx3ph5q0hrj00chbkqbevxhyc", "4s6tv2wqj5rj20chbkqas1vnf8", "q7n2bkmwd9rj00chbkq9k7c1tm"],
    ["w1mzg5rb35rj20chbkq8tv3ewg", "hb3ytak1ddrj00chbkq7r0r5mw"],
]
ALL_IDS = [pid for page in PAGE_IDS for pid in page]

Invoke = Callable[..., Any]


def sent_urls(rep: Any) -> list[str]:
    """The URLs the client requested, in order."""
    return [str(request.url) for request in rep.transport.requests]


def check_requests(rep: Any) -> None:
    assert sent_urls(rep) == [FIRST_PAGE, SECOND_PAGE]
    assert all(r.method == "GET" and not r.content for r in rep.transport.requests)
    assert rep.transport.unused() == [], "recorded interactions left unused"


def check_first_page(page: Page[Prediction]) -> None:
    assert isinstance(page, Page)
    assert [p.id for p in page] == PAGE_IDS[0]
    assert all(isinstance(p, Prediction) for p in page)
    assert page.next == SECOND_PAGE and page.previous is None
    succeeded, streamed, failed = page.results
    assert (succeeded.status, succeeded.output) == ("succeeded", "hello Carol")
    assert streamed.output == ["Fuzzy", " llamas", " graze", "\n"]
    assert streamed.urls is not None and "stream" in streamed.urls
    assert (failed.status, failed.error, failed.output) == (
        "failed",
        "text must not be empty",
        None,
    )


def check_last_page(page: Page[Prediction]) -> None:
    assert [p.id for p in page] == PAGE_IDS[1]
    assert page.next is None and page.previous == PREVIOUS_OF_SECOND
    assert [p.output for p in page] == ["hello Bob", "hello Alice"]


async def test_list_then_its_next_cursor(replay: Any, invoke: Invoke) -> None:
    rep = replay(RECORDING, strict_order=True)
    first = await invoke(rep.client.predictions, "list")
    check_first_page(first)
    second = await invoke(rep.client.predictions, "list", first.next)
    check_last_page(second)
    check_requests(rep)


async def test_cursor_keyword_and_filters_are_not_reapplied(replay: Any, invoke: Invoke) -> None:
    # The cursor URL already carries the query of the first request: a filter passed again
    # with it is not added (the recorded request has the cursor only).
    rep = replay(RECORDING, only=lambda i: "cursor=" in i.uri)
    page = await invoke(
        rep.client.predictions, "list", cursor=SECOND_PAGE, created_after="2024-01-01T00:00:00Z"
    )
    check_last_page(page)
    assert sent_urls(rep) == [SECOND_PAGE]


def test_paginate_walks_every_page(replay: Any) -> None:
    rep = replay(RECORDING, strict_order=True)
    pages = list(paginate(rep.client.predictions.list))
    assert len(pages) == 2
    check_first_page(pages[0])
    check_last_page(pages[1])
    assert [p.id for page in pages for p in page] == ALL_IDS
    check_requests(rep)


async def test_async_paginate_walks_every_page(replay: Any) -> None:
    rep = replay(RECORDING, strict_order=True)
    pages = [page async for page in async_paginate(rep.client.predictions.async_list)]
    assert len(pages) == 2
    check_first_page(pages[0])
    check_last_page(pages[1])
    assert [p.id for page in pages for p in page] == ALL_IDS
    check_requests(rep)


async def test_module_level_api_walks_the_pages(
    replay: Any, use_async: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # replicate.predictions and replicate.paginate go through replicate.default_client.
    rep = replay(RECORDING, strict_order=True)
    monkeypatch.setattr(replicate, "default_client", rep.client)
    if use_async:
        ids = [
            p.id
            async for page in replicate.async_paginate(replicate.predictions.async_list)
            for p in page
        ]
    else:
        ids = [p.id for page in replicate.paginate(replicate.predictions.list) for p in page]
    assert ids == ALL_IDS
    check_requests(rep)


async def test_results_stay_bound_to_the_client(replay: Any, invoke: Invoke) -> None:
    # A listed prediction can make its own requests (reload) with the client that listed it.
    rep = replay(RECORDING, only=lambda i: "cursor=" not in i.uri)
    page = await invoke(rep.client.predictions, "list")
    reloaded: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        reloaded.append(request.url.path)
        return httpx.Response(200, json=page.results[0].model_dump())

    rep.transport.handler = handler  # past the recording: answer the reload by hand
    prediction = page.results[0]
    await invoke(prediction, "reload")
    assert reloaded == [f"/v1/predictions/{PAGE_IDS[0][0]}"]
    assert prediction.output == "hello Carol"
