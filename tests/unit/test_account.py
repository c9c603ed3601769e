"""accounts.current() / async_current(): wire format and parsing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

import replicate
from replicate.account import Account, Accounts
from replicate.client import Client
from replicate.exceptions import APIResponseValidationError, AuthenticationError

MODES = ["sync", "async"]
ACCOUNT = {
    "type": "organization",
    "username": "acme",
    "name": "Acme Corp, Inc.",
    "github_url": "https://github.com/acme",
    "avatar_url": "https://cdn.replicate.com/avatars/acme.png",
}


class Api:
    """A MockTransport handler: records requests, answers with one canned response."""

    def __init__(self, status: int = 200, body: Any = ACCOUNT) -> None:
        self.status, self.body = status, body
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self.body, (bytes, str)):
            return httpx.Response(self.status, content=self.body)
        return httpx.Response(self.status, json=self.body)

    def client(self) -> Client:
        return Client("r8_test", transport=httpx.MockTransport(self), retry=False)


def invoke(mode: str, target: Any, name: str, /, *args: Any, **kwargs: Any) -> Any:
    if mode == "sync":
        return getattr(target, name)(*args, **kwargs)
    return asyncio.run(getattr(target, f"async_{name}")(*args, **kwargs))


@pytest.mark.parametrize("mode", MODES)
def test_current_request_and_parse(mode: str) -> None:
    api = Api()
    client = api.client()
    account = invoke(mode, client.accounts, "current")
    (request,) = api.requests
    assert request.method == "GET"
    assert str(request.url) == "https://api.replicate.com/v1/account"
    assert request.headers["authorization"] == "Bearer r8_test"
    assert request.content == b""
    assert isinstance(account, Account)
    assert account.type == "organization"
    assert account.username == "acme"
    assert account.name == "Acme Corp, Inc."
    assert account.github_url == "https://github.com/acme"
    assert account.avatar_url == "https://cdn.replicate.com/avatars/acme.png"
    assert account._client is client


@pytest.mark.parametrize("mode", MODES)
def test_current_tolerates_missing_unknown_and_future_values(mode: str) -> None:
    api = Api(body={"type": "team", "username": "x", "name": None, "new_field": [1]})
    account = invoke(mode, api.client().accounts, "current")
    assert account.type == "team"
    assert account.name is None
    assert account.github_url is None
    assert account.new_field == [1]
    assert account.dict()["new_field"] == [1]


@pytest.mark.parametrize("mode", MODES)
def test_current_error_status(mode: str) -> None:
    api = Api(status=401, body={"title": "Unauthenticated", "detail": "bad token", "status": 401})
    with pytest.raises(AuthenticationError) as info:
        invoke(mode, api.client().accounts, "current")
    assert info.value.status == 401
    assert info.value.detail == "bad token"


@pytest.mark.parametrize("mode", MODES)
def test_current_rejects_non_object_body(mode: str) -> None:
    api = Api(body=[1, 2])
    with pytest.raises(APIResponseValidationError):
        invoke(mode, api.client().accounts, "current")


@pytest.mark.parametrize("mode", MODES)
def test_current_extras(mode: str) -> None:
    api = Api()
    invoke(
        mode,
        api.client().accounts,
        "current",
        extra_headers={"X-Trace": "1"},
        extra_query={"expand": "all"},
    )
    (request,) = api.requests
    assert request.headers["x-trace"] == "1"
    assert request.url.params["expand"] == "all"


@pytest.mark.parametrize("mode", MODES)
def test_current_unknown_keyword_is_type_error(mode: str) -> None:
    api = Api()
    with pytest.raises(TypeError, match="bogus"):
        invoke(mode, api.client().accounts, "current", bogus=1)
    assert api.requests == []


def test_module_level_namespace_uses_default_client(monkeypatch: pytest.MonkeyPatch) -> None:
    api = Api()
    monkeypatch.setattr(replicate, "default_client", api.client())
    assert replicate.accounts.current().username == "acme"
    assert isinstance(replicate.default_client.accounts, Accounts)


def test_account_roundtrip() -> None:
    account = Account._from_api(ACCOUNT)
    assert json.loads(account.json()) == ACCOUNT
    assert Account.parse_obj(ACCOUNT) == account
