"""Client construction, configuration resolution, auth headers and lifecycle."""

from __future__ import annotations

import asyncio
import builtins
import logging
import sys
import threading
import types
from typing import Any

import httpx
import pytest

import replicate
from replicate.client import Client, _get_api_token_from_environment


class Recorder:
    """A MockTransport handler that records requests and answers with a fixed JSON body."""

    def __init__(self, status: int = 200, body: Any = None) -> None:
        self.requests: list[httpx.Request] = []
        self.status = status
        self.body = {"ok": True} if body is None else body

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.body)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def request(client: Client, mode: str, path: str = "/v1/account") -> httpx.Response:
    if mode == "sync":
        return client._request("GET", path)
    return asyncio.run(client._async_request("GET", path))


MODES = ["sync", "async"]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REPLICATE_API_TOKEN", "REPLICATE_BASE_URL", "REPLICATE_POLL_INTERVAL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("mode", MODES)
def test_explicit_token_user_agent_and_base_url(mode: str) -> None:
    rec = Recorder()
    client = Client("r8_secret", transport=httpx.MockTransport(rec))
    request(client, mode)
    assert rec.last.headers["authorization"] == "Bearer r8_secret"
    assert rec.last.headers["user-agent"] == f"replicate-python/{replicate.__version__}"
    assert str(rec.last.url) == "https://api.replicate.com/v1/account"


@pytest.mark.parametrize("mode", MODES)
def test_token_from_environment_is_read_per_request(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = Recorder()
    client = Client(transport=httpx.MockTransport(rec))
    monkeypatch.setenv("REPLICATE_API_TOKEN", "first")
    request(client, mode)
    assert rec.last.headers["authorization"] == "Bearer first"
    monkeypatch.setenv("REPLICATE_API_TOKEN", "second")
    request(client, mode)
    assert rec.last.headers["authorization"] == "Bearer second"


@pytest.mark.parametrize("mode", MODES)
def test_no_token_sends_no_authorization_and_warns_once(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()
    client = Client(api_token="", transport=httpx.MockTransport(rec))
    with caplog.at_level(logging.WARNING, logger="replicate"):
        request(client, mode)
        request(client, mode)
    assert "authorization" not in rec.last.headers
    assert sum("No API token" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("mode", MODES)
def test_caller_authorization_header_wins_and_headers_are_copied(mode: str) -> None:
    rec = Recorder()
    headers = {"authorization": "Token custom", "X-Extra": "1", "USER-AGENT": "mine/1"}
    original = dict(headers)
    client = Client("ignored", headers=headers, transport=httpx.MockTransport(rec))
    request(client, mode)
    assert rec.last.headers["authorization"] == "Token custom"
    assert rec.last.headers["user-agent"] == "mine/1"
    assert rec.last.headers["x-extra"] == "1"
    assert headers == original


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://api.example.com/", "https://api.example.com/v1/account"),
        ("https://api.example.com/v1", "https://api.example.com/v1/account"),
        ("https://api.example.com/v1/", "https://api.example.com/v1/account"),
        ("http://127.0.0.1:5080", "http://127.0.0.1:5080/v1/account"),
        ("https://proxy.example.com/replicate", "https://proxy.example.com/replicate/v1/account"),
    ],
)
def test_base_url_normalisation(given: str, expected: str) -> None:
    rec = Recorder()
    client = Client("t", base_url=given, transport=httpx.MockTransport(rec))
    client._request("GET", "/v1/account")
    assert str(rec.last.url) == expected


def test_base_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLICATE_BASE_URL", "http://localhost:9999/v1")
    rec = Recorder()
    client = Client("t", transport=httpx.MockTransport(rec))
    client._request("GET", "/v1/account")
    assert str(rec.last.url) == "http://localhost:9999/v1/account"
    assert "localhost:9999" in repr(client)


def test_invalid_base_url_is_a_clear_error() -> None:
    client = Client("t", base_url="not a url", transport=httpx.MockTransport(Recorder()))
    with pytest.raises(ValueError, match="base_url"):
        client._request("GET", "/v1/account")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("2", 2.0), ("0", 0.0), ("abc", 0.5), ("-1", 0.5), ("nan", 0.5), ("inf", 0.5), ("", 0.5)],
)
def test_poll_interval_from_environment(
    raw: str, expected: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLICATE_POLL_INTERVAL", raw)
    assert Client().poll_interval == expected


def test_bad_poll_interval_never_breaks_import(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    env = {"REPLICATE_POLL_INTERVAL": "not-a-number", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", "import replicate; print(replicate.default_client.poll_interval)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "0.5"


def test_explicit_arguments_are_validated() -> None:
    with pytest.raises(TypeError, match="api_token"):
        Client(api_token=123)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="poll_interval"):
        Client(poll_interval=-1)
    with pytest.raises(TypeError, match="timeout"):
        Client(timeout="soon")  # type: ignore[arg-type]


def test_timeouts_default_and_explicit() -> None:
    rec = Recorder()
    client = Client("t", transport=httpx.MockTransport(rec))
    client._request("GET", "/v1/account")
    assert rec.last.extensions["timeout"] == {
        "connect": 5.0,
        "read": 30.0,
        "write": 30.0,
        "pool": 10.0,
    }
    client = Client("t", timeout=7, transport=httpx.MockTransport(rec))
    client._request("GET", "/v1/account")
    assert rec.last.extensions["timeout"]["read"] == 7.0
    client = Client("t", timeout=httpx.Timeout(None), transport=httpx.MockTransport(rec))
    client._request("GET", "/v1/account")
    assert rec.last.extensions["timeout"]["read"] is None


def test_construction_is_lazy_and_repr_hides_token() -> None:
    client = Client("r8_very_secret_token")
    assert client._sync_api is None
    assert client._config_cache is None
    assert "r8_very_secret_token" not in repr(client)


def test_async_client_survives_successive_event_loops() -> None:
    rec = Recorder()
    client = Client("t", transport=httpx.MockTransport(rec))
    for _ in range(3):
        asyncio.run(client._async_request("GET", "/v1/account"))
    assert len(rec.requests) == 3
    assert len(client._async_api) <= 1


def test_close_then_reuse_and_context_managers() -> None:
    rec = Recorder()
    with Client("t", transport=httpx.MockTransport(rec)) as client:
        client._request("GET", "/v1/account")
        first = client._sync_api
    assert client._sync_api is None
    client._request("GET", "/v1/account")
    assert client._sync_api is not first

    async def main() -> None:
        async with Client("t", transport=httpx.MockTransport(rec)) as aclient:
            await aclient._async_request("GET", "/v1/account")
        assert len(aclient._async_api) == 0

    asyncio.run(main())
    assert len(rec.requests) == 3


def test_one_underlying_client_under_thread_contention() -> None:
    rec = Recorder()
    client = Client("t", transport=httpx.MockTransport(rec))
    barrier = threading.Barrier(8)
    built: list[int] = []

    def worker() -> None:
        barrier.wait()
        built.append(id(client._get_sync_client()))
        client._request("GET", "/v1/account")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(built)) == 1
    assert len(rec.requests) == 8


def test_sync_only_transport_gives_a_clear_async_error() -> None:
    class SyncOnly(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json={})

    client = Client("t", transport=SyncOnly(), retry=False)
    with pytest.raises(TypeError, match="async_transport"):
        asyncio.run(client._async_request("GET", "/v1/account"))


def test_async_transport_is_used_for_async_requests() -> None:
    sync_rec, async_rec = Recorder(), Recorder()
    client = Client(
        "t",
        transport=httpx.MockTransport(sync_rec),
        async_transport=httpx.MockTransport(async_rec),
    )
    client._request("GET", "/v1/account")
    asyncio.run(client._async_request("GET", "/v1/account"))
    assert len(sync_rec.requests) == 1
    assert len(async_rec.requests) == 1


def test_httpx_kwargs_are_forwarded() -> None:
    rec = Recorder()
    hooked: list[str] = []
    client = Client(
        "t",
        transport=httpx.MockTransport(rec),
        event_hooks={"request": [lambda r: hooked.append(r.url.path)]},
    )
    client._request("GET", "/v1/account")
    assert hooked == ["/v1/account"]


def test_download_auth_only_for_api_origin_and_issued_urls() -> None:
    client = Client("tok", base_url="https://api.replicate.com")
    assert client._download_auth("https://api.replicate.com/v1/files/x") == {
        "Authorization": "Bearer tok"
    }
    assert client._download_auth("https://api.replicate.com:443/v1/files/x") != {}
    assert client._download_auth("https://replicate.delivery/x.png") == {}
    assert client._download_auth("http://api.replicate.com/v1/files/x") == {}
    assert client._download_auth("https://stream.replicate.com/v1/x", issued=True) == {
        "Authorization": "Bearer tok"
    }


# ---------------------------------------------------------------- Cog scope token lookup


def _fake_cog(context: Any) -> types.ModuleType:
    module = types.ModuleType("cog")

    class Scope:
        def __init__(self, ctx: Any) -> None:
            self.context = ctx

    module.current_scope = lambda: Scope(context)  # type: ignore[attr-defined]
    return module


def test_token_from_cog_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", "env")
    monkeypatch.setitem(sys.modules, "cog", _fake_cog({"replicate_api_token": "scoped"}))
    assert _get_api_token_from_environment() == "scoped"
    monkeypatch.setitem(sys.modules, "cog", _fake_cog({"REPLICATE_API_TOKEN": ""}))
    assert _get_api_token_from_environment() == ""
    monkeypatch.setitem(sys.modules, "cog", _fake_cog({"other": "x"}))
    assert _get_api_token_from_environment() == "env"
    monkeypatch.setitem(sys.modules, "cog", _fake_cog(None))  # not a mapping: swallowed
    assert _get_api_token_from_environment() == "env"


def test_cog_lookup_lets_keyboard_interrupt_through(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "cog":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(KeyboardInterrupt):
        _get_api_token_from_environment()


def test_cog_scoped_token_is_refreshed_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    context = {"REPLICATE_API_TOKEN": "request-1"}
    monkeypatch.setitem(sys.modules, "cog", _fake_cog(context))
    rec = Recorder()
    client = Client(transport=httpx.MockTransport(rec))
    client._request("GET", "/v1/account")
    assert rec.last.headers["authorization"] == "Bearer request-1"
    context["REPLICATE_API_TOKEN"] = "request-2"
    client._request("GET", "/v1/account")
    assert rec.last.headers["authorization"] == "Bearer request-2"
