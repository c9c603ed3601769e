"""The request options (``extra_headers``, ``extra_query``, ``extra_body``) as one keyword set.

Namespace methods take them as ``**options: Unpack[RequestOptions]`` (docs/api.md,
"Conventions"): they reach the request, and any other keyword is still a ``TypeError`` raised
before a request is made, as an unexpected keyword argument always was.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from replicate._http import REQUEST_OPTIONS, RequestOptions
from replicate.account import Accounts
from replicate.collection import Collections
from replicate.hardware import HardwareNamespace
from replicate.model import Models, ModelsVersions
from replicate.prediction import Predictions
from replicate.version import Versions
from replicate.webhook import Webhooks

PREDICTION = {"id": "p1", "status": "succeeded", "urls": {}}
PAGE: dict[str, Any] = {"next": None, "previous": None, "results": []}

#: (route to answer, how to call it on a client, the sync method it exercises)
CALLS: list[tuple[str, str, Any, Callable[[Any], Any]]] = [
    ("GET", "/v1/account", {"type": "user", "username": "u"}, lambda c: c.accounts.current),
    ("GET", "/v1/hardware", [], lambda c: c.hardware.list),
    ("GET", "/v1/collections", PAGE, lambda c: c.collections.list),
    ("GET", "/v1/predictions/p1", PREDICTION, lambda c: lambda **o: c.predictions.get("p1", **o)),
    ("GET", "/v1/predictions", PAGE, lambda c: c.predictions.list),
    (
        "GET",
        "/v1/models/a/b/versions",
        PAGE,
        lambda c: lambda **o: c.models.versions.list("a/b", **o),
    ),
    ("GET", "/v1/webhooks/default/secret", {"key": "whsec_x"}, lambda c: c.webhooks.default.secret),
]


@pytest.mark.parametrize(("method", "path", "answer", "pick"), CALLS, ids=[c[1] for c in CALLS])
def test_options_reach_the_request(
    mock_api: Any, method: str, path: str, answer: Any, pick: Callable[[Any], Any]
) -> None:
    mock_api.add(method, path, answer)
    call = pick(mock_api.client())
    call(extra_headers={"x-trace": "t1"}, extra_query={"debug": "1"})
    sent = mock_api.last
    assert sent.headers["x-trace"] == "t1"
    assert sent.url.params["debug"] == "1"


@pytest.mark.parametrize(("method", "path", "answer", "pick"), CALLS, ids=[c[1] for c in CALLS])
def test_any_other_keyword_is_a_type_error(
    mock_api: Any, method: str, path: str, answer: Any, pick: Callable[[Any], Any]
) -> None:
    mock_api.add(method, path, answer)
    call = pick(mock_api.client())
    with pytest.raises(TypeError, match="'extra_header'"):
        call(extra_header={"x": "y"})  # a typo of extra_headers
    assert mock_api.requests == []


async def test_async_twins_check_the_same_way(mock_api: Any) -> None:
    mock_api.add("GET", "/v1/predictions/p1", PREDICTION)
    client = mock_api.client()
    with pytest.raises(TypeError, match="'wait'"):
        await client.predictions.async_get("p1", wait=True)  # type: ignore[call-arg]
    await client.predictions.async_get("p1", extra_headers={"x-trace": "t2"})
    assert [r.headers["x-trace"] for r in mock_api.requests] == ["t2"]


def test_request_options_names_match() -> None:
    assert tuple(RequestOptions.__annotations__) == REQUEST_OPTIONS


@pytest.mark.parametrize(
    "method",
    [
        Accounts.current,
        HardwareNamespace.list,
        Collections.get,
        Predictions.get,
        Predictions.async_list,
        Models.get,
        ModelsVersions.delete,
        Versions.async_get,
        Webhooks.Default.secret,
    ],
    ids=lambda m: m.__qualname__,
)
def test_signatures_take_the_options_as_one_keyword_set(method: Callable[..., Any]) -> None:
    params = list(inspect.signature(method).parameters.values())
    assert params[-1].kind is inspect.Parameter.VAR_KEYWORD
    assert params[-1].name == "options"
    assert "Unpack[RequestOptions]" in str(params[-1].annotation)
    assert not {p.name for p in params} & set(REQUEST_OPTIONS)
